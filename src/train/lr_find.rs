//! The learning-rate range test (Smith, "Cyclical Learning Rates", 2017): train for a few
//! hundred steps while the rate grows exponentially from tiny to huge, record the loss, and
//! suggest the rate where it fell fastest. Written to a CSV and an SVG curve.

use std::path::Path;

use super::config::TrainConfig;
use super::fit::FitError;
use super::observe::render_lr_curve;
use super::program::Program;
use super::run::TrainError;
use super::session::{feeds, Session};

/// The sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeTest {
    pub start: f64,
    pub end: f64,
    pub steps: usize,
}

impl Default for RangeTest {
    fn default() -> Self {
        RangeTest { start: 1e-7, end: 10.0, steps: 100 }
    }
}

/// Exponential smoothing of the recorded loss (with bias correction, as an average started
/// at zero needs). Its lag is about 1 / (1 - 0.9) = 10 steps, a tenth of a default sweep; 0.98
/// would lag 50 steps, four decades of rate.
const SMOOTHING: f64 = 0.9;
/// The sweep stops once the smoothed loss exceeds this multiple of its best.
const DIVERGED: f64 = 4.0;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RangePoint {
    pub lr: f64,
    pub loss: f64,
    pub smoothed: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct RangeReport {
    pub points: Vec<RangePoint>,
    /// The rate at the steepest fall of the smoothed loss, before its minimum.
    pub suggested: Option<f64>,
    /// True when the loss diverged before the sweep reached `end`.
    pub diverged: bool,
    pub csv: String,
    pub plot: String,
}

/// Run the range test on `spec` with its training configuration; files go into `out`.
pub fn lr_find(
    spec: &str,
    config: &TrainConfig,
    config_dir: &Path,
    test: &RangeTest,
    out: &Path,
) -> Result<RangeReport, TrainError> {
    if !(test.start > 0.0 && test.end > test.start && test.steps >= 2) {
        return Err(TrainError::Usage(format!(
            "the range test needs 0 < start < end and at least 2 steps (start {}, end {}, steps {})",
            test.start, test.end, test.steps
        )));
    }
    let Session { mut program, splits, input, target, .. } =
        Session::prepare(spec, config, config_dir, true)?;
    let (train, _) = feeds(&splits, &input, &target);
    let batch = program.batch_size();
    let mut points = Vec::with_capacity(test.steps);
    let (mut avg, mut best, mut diverged) = (0.0, f64::INFINITY, false);
    let mut epoch = 0u64;
    let mut batches = Vec::new().into_iter();
    for i in 0..test.steps {
        let part = match batches.next() {
            Some(b) => b,
            None => {
                batches = train.batches(batch, Some(config.seed.wrapping_add(epoch)))?.into_iter();
                epoch += 1;
                batches.next().ok_or_else(|| TrainError::Usage("the training split is empty".into()))?
            }
        };
        let lr = test.start * (test.end / test.start).powf(i as f64 / (test.steps - 1) as f64);
        program.set_learning_rate(lr);
        // The same iteration training takes; the loss it measured is the one before its update.
        let loss = match program.step(std::slice::from_ref(&part), i as u64) {
            Ok(tally) => tally.mean_loss(),
            Err(FitError::NonFinite { value, .. }) => value,
            Err(e) => return Err(e.into()),
        };
        avg = SMOOTHING * avg + (1.0 - SMOOTHING) * loss;
        let smoothed = avg / (1.0 - SMOOTHING.powi(i as i32 + 1));
        if !smoothed.is_finite() || smoothed > DIVERGED * best {
            diverged = true;
            break;
        }
        best = best.min(smoothed);
        points.push(RangePoint { lr, loss, smoothed });
    }
    let suggested = steepest_fall(&points);
    let (csv, plot) = (out.join("lr_find.csv"), out.join("lr_find.svg"));
    write(&csv, &table(&points))?;
    let smoothed: Vec<(f64, f64)> = points.iter().map(|p| (p.lr, p.smoothed)).collect();
    // Single-batch spikes would flatten the curve that matters: the raw loss is drawn only
    // within the smoothed curve's range (with some headroom).
    let ceiling = 1.5 * smoothed.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let raw: Vec<(f64, f64)> = points.iter().map(|p| (p.lr, p.loss)).filter(|p| p.1 <= ceiling).collect();
    let mark = suggested.and_then(|lr| points.iter().find(|p| p.lr == lr)).map(|p| (p.lr, p.smoothed));
    let title = format!("{}: learning-rate range test", program.nets.full().name);
    write(&plot, &render_lr_curve(&title, &raw, &smoothed, mark))?;
    Ok(RangeReport { points, suggested, diverged, csv: shown(&csv), plot: shown(&plot) })
}

/// The rate where the smoothed loss falls fastest per decade, looking only before its
/// minimum (past it the loss is already turning up).
pub fn steepest_fall(points: &[RangePoint]) -> Option<f64> {
    let min = points.iter().enumerate().min_by(|a, b| a.1.smoothed.total_cmp(&b.1.smoothed))?.0;
    (1..min.min(points.len().saturating_sub(1)))
        .map(|i| {
            let (a, b) = (&points[i - 1], &points[i + 1]);
            (i, (b.smoothed - a.smoothed) / (b.lr.log10() - a.lr.log10()))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| points[i].lr)
}

fn table(points: &[RangePoint]) -> String {
    let mut out = String::from("lr,loss,smoothed\n");
    for p in points {
        out.push_str(&format!("{},{},{}\n", p.lr, p.loss, p.smoothed));
    }
    out
}

fn write(path: &Path, text: &str) -> Result<(), TrainError> {
    super::files::replace_unsynced(path, |tmp| std::fs::write(tmp, text))
        .map_err(|e| TrainError::Usage(format!("cannot write `{}`: {e}", path.display())))
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suggestion_is_the_steepest_fall_before_the_minimum() {
        // Flat, then falling fastest between 1e-3 and 1e-2, then rising past the minimum.
        let losses = [2.0, 2.0, 1.9, 1.0, 0.8, 0.7, 3.0, 9.0];
        let points: Vec<RangePoint> = losses
            .iter()
            .enumerate()
            .map(|(i, &l)| RangePoint { lr: 10f64.powi(i as i32 - 5), loss: l, smoothed: l })
            .collect();
        assert_eq!(steepest_fall(&points), Some(1e-2));
        assert_eq!(steepest_fall(&points[..1]), None);
    }
}
