//! The learning-rate range test (Smith, "Cyclical Learning Rates", 2017): train for a few
//! hundred steps while the rate grows exponentially from tiny to huge, record the loss, and
//! suggest a rate from the valley the loss falls through. Written to a CSV and an SVG curve.
//!
//! The suggestion is fastai's `valley` rule: the longest descending run of the smoothed loss
//! (its longest strictly decreasing subsequence), and the rate halfway down it. The rate of
//! steepest fall, which wick suggested before, lies near the bottom of the valley: on the
//! digits CNN with Adam it was 2.6e-2, which trained to 80.5% validation accuracy against 97.5%
//! at the spec's 3e-3; the valley gives 2.3e-3 (96.9%).

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
    /// The rate halfway down the longest descent of the smoothed loss ([`valley`]).
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
    let suggested = valley(&points);
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

/// The rate halfway down the longest descent of the smoothed loss: the longest strictly
/// decreasing subsequence of the points (the first of equal length), taken as the run of
/// points before its end as long as it is, and the point a half of the way along it (fastai's
/// `valley`, with its rounding). `None` without a descent of three points.
pub fn valley(points: &[RangePoint]) -> Option<f64> {
    // Patience sorting on the negated losses: `tails[k]` is the least negated loss that ends
    // an increasing run of k + 1, so each point's run length is found in O(log n).
    let mut tails: Vec<f64> = Vec::new();
    let (mut end, mut longest) = (0, 0);
    for (i, p) in points.iter().enumerate() {
        let x = -p.smoothed;
        let k = tails.partition_point(|t| *t < x);
        match tails.get_mut(k) {
            Some(t) => *t = x,
            None => tails.push(x),
        }
        if k + 1 > longest {
            (end, longest) = (i, k + 1);
        }
    }
    if longest < 3 {
        return None;
    }
    let start = end.saturating_sub(longest);
    let third = (end - start) as f64 / 3.0;
    let at = start + third as usize + (third / 2.0) as usize;
    points.get(at).map(|p| p.lr)
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

    fn curve(losses: &[f64]) -> Vec<RangePoint> {
        let lr = |i: usize| 10f64.powf(i as f64 / 4.0 - 7.0);
        losses.iter().enumerate().map(|(i, &l)| RangePoint { lr: lr(i), loss: l, smoothed: l }).collect()
    }

    #[test]
    fn the_suggestion_is_halfway_down_the_longest_descent() {
        // Flat and noisy, then a descent of 13 points (indices 4 to 16), then a rise.
        let mut losses = vec![2.30, 2.31, 2.30, 2.31];
        losses.extend((0..13).map(|i| 2.3 - 0.1 * i as f64));
        losses.extend([1.5, 3.0, 9.0]);
        let points = curve(&losses);
        // The subsequence: 2.31 at 3, then the 13 points down to 1.1 at 16: length 14, so the
        // run taken is 2..16 and the point 2 + 4 + 2 = 8 along it.
        assert_eq!(valley(&points), Some(points[8].lr));
        assert_eq!(valley(&points[..2]), None);
        assert_eq!(valley(&curve(&[1.0, 2.0, 3.0])), None, "no descent, no suggestion");
    }

    #[test]
    fn the_valley_of_a_long_sweep_is_found_in_n_log_n() {
        // A million points (a `--steps` typo) descending all the way: no quadratic search.
        let points = curve(&(0..1_000_000).map(|i| 1e6 - i as f64).collect::<Vec<_>>());
        let started = std::time::Instant::now();
        assert!(valley(&points).is_some());
        assert!(started.elapsed().as_secs_f64() < 5.0);
    }
}
