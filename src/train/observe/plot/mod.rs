//! The curves of a run as a standalone SVG: a panel for the loss (train and validation per
//! epoch, each step's training loss as a faint line beneath, the epoch of least validation
//! loss marked), one per metric, and the learning rate step by step when a schedule moved it;
//! side by side two to a row. Redrawn after every epoch, so the picture of a run that dies is
//! its last.

mod axis;
mod panel;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{EpochRecord, Metrics, Observer, Plan, StepRecord};
use crate::report::graph::xml_escape;
use axis::Axis;
use panel::{draw_panel, Panel, Series, FONT, PANEL_H, PANEL_W};

const TITLE_H: f64 = 34.0;
const COLUMNS: usize = 2;
/// Named families before the generic one: renderers without a default sans-serif (resvg
/// maps it to Arial) then still find a font.
const FONTS: &str = "Helvetica, Arial, 'DejaVu Sans', 'Liberation Sans', sans-serif";
const TRAIN: &str = "#2b6cb0";
const VAL: &str = "#dd6b20";
const BEST: &str = "#2f855a";
const RATE: &str = "#6b46c1";
/// More step points than a panel has pixels only makes the file big; they are averaged down.
const MAX_STEP_POINTS: usize = 800;

/// Draws the run's curves into an SVG file; see the module docs.
pub struct CurvePlot {
    path: PathBuf,
    title: String,
    steps_per_epoch: usize,
    epoch: usize,
    in_epoch: usize,
    steps: Vec<(f64, f64)>,
    /// (fractional epoch, learning rate) per step.
    rates: Vec<(f64, f64)>,
    history: Vec<EpochRecord>,
}

impl CurvePlot {
    /// A plot to be written to `path` (an `.svg` file), headed `title` (the spec's name, say).
    pub fn new(path: &Path, title: &str) -> std::io::Result<CurvePlot> {
        if path.extension().and_then(|e| e.to_str()) != Some("svg") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the curve plot `{}` must end in `.svg`", path.display()),
            ));
        }
        Ok(CurvePlot {
            path: path.to_path_buf(),
            title: title.to_string(),
            steps_per_epoch: 0,
            epoch: 0,
            in_epoch: 0,
            steps: Vec::new(),
            rates: Vec::new(),
            history: Vec::new(),
        })
    }

    /// Write through a temporary file and a rename, so a reader never sees half a picture.
    fn write(&self, history: &[EpochRecord]) -> std::io::Result<()> {
        let svg = render_curves(&self.title, history, &self.steps, &self.rates);
        crate::train::files::replace_unsynced(&self.path, |tmp| std::fs::write(tmp, svg)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot write the curve plot `{}`: {e}", self.path.display()),
            )
        })
    }
}

impl Observer for CurvePlot {
    fn start(&mut self, plan: &Plan) -> std::io::Result<()> {
        self.steps_per_epoch = plan.steps_per_epoch;
        Ok(())
    }

    fn step(&mut self, r: &StepRecord) -> std::io::Result<()> {
        if r.epoch != self.epoch {
            (self.epoch, self.in_epoch) = (r.epoch, 0);
        }
        self.in_epoch += 1;
        let per_epoch = self.steps_per_epoch.max(self.in_epoch) as f64;
        let at = (r.epoch - 1) as f64 + self.in_epoch as f64 / per_epoch;
        self.steps.push((at, r.loss));
        self.rates.push((at, r.lr));
        Ok(())
    }

    fn epoch(&mut self, r: &EpochRecord) -> std::io::Result<()> {
        self.history.push(r.clone());
        self.write(&self.history)
    }

    fn finish(&mut self, history: &[EpochRecord]) -> std::io::Result<()> {
        self.write(history)
    }
}

/// The SVG for `history`, with `steps` as (fractional epoch, loss) pairs and `rates` as
/// (fractional epoch, learning rate) pairs (either may be empty).
pub fn render_curves(
    title: &str,
    history: &[EpochRecord],
    steps: &[(f64, f64)],
    rates: &[(f64, f64)],
) -> String {
    let mut panels = panels(history, steps);
    // A constant rate needs no picture; a schedule's does.
    if rates.iter().any(|r| r.1 != rates[0].1) {
        let series =
            vec![Series { name: "rate", color: RATE, points: thin(rates, MAX_STEP_POINTS), faint: false }];
        panels.push(Panel { title: "learning rate".into(), series, allow_log: true, x_label: "epoch" });
    }
    let last_step = steps.iter().map(|s| s.0.ceil() as usize).max().unwrap_or(0);
    let x = Axis::epochs(history.iter().map(|r| r.epoch).max().unwrap_or(0).max(last_step));
    render_panels(title, &panels, &x)
}

/// The loss of a learning-rate range test against the rate (log axis), with the suggested
/// rate marked as a single point.
pub fn render_lr_curve(
    title: &str,
    points: &[(f64, f64)],
    smoothed: &[(f64, f64)],
    suggested: Option<(f64, f64)>,
) -> String {
    let (lo, hi) = points.iter().fold((f64::INFINITY, 0f64), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let x = if lo < hi && lo > 0.0 { Axis::log(lo, hi) } else { Axis::linear(0.0, 1.0) };
    let mut series = vec![
        Series { name: "loss", color: "#90cdf4", points: points.to_vec(), faint: true },
        Series { name: "smoothed", color: "#2b6cb0", points: smoothed.to_vec(), faint: false },
    ];
    if let Some(p) = suggested {
        series.push(Series { name: "suggested", color: "#dd6b20", points: vec![p], faint: false });
    }
    let panel = Panel { title: "loss".into(), series, allow_log: false, x_label: "learning rate" };
    render_panels(title, std::slice::from_ref(&panel), &x)
}

fn render_panels(title: &str, panels: &[Panel], x: &Axis) -> String {
    let cols = COLUMNS.min(panels.len()).max(1);
    let rows = panels.len().div_ceil(cols);
    let (w, h) = (cols as f64 * PANEL_W, TITLE_H + rows as f64 * PANEL_H);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"{FONTS}\" font-size=\"{FONT}\">"
    );
    let _ = writeln!(out, "<title>{}</title>", xml_escape(title));
    let _ = writeln!(out, "<rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>");
    let _ = writeln!(
        out,
        "<text x=\"16\" y=\"23\" font-size=\"16\" font-weight=\"bold\" fill=\"#1a202c\">{}</text>",
        xml_escape(title)
    );
    for (i, panel) in panels.iter().enumerate() {
        let origin = ((i % cols) as f64 * PANEL_W, TITLE_H + (i / cols) as f64 * PANEL_H);
        draw_panel(&mut out, i, origin, panel, x);
    }
    out.push_str("</svg>\n");
    out
}

/// `loss` first, then every other figure in the order the records name them.
fn panels(history: &[EpochRecord], steps: &[(f64, f64)]) -> Vec<Panel> {
    let mut names = vec!["loss"];
    for r in history {
        for (n, _) in r.train.0.iter().chain(&r.val.0) {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let per_epoch = |name: &str, split: fn(&EpochRecord) -> &Metrics| -> Vec<(f64, f64)> {
        history.iter().filter_map(|r| split(r).get(name).map(|v| (r.epoch as f64, v))).collect()
    };
    names
        .iter()
        .map(|&name| {
            let mut series = Vec::new();
            if name == "loss" {
                series.push(Series {
                    name: "train (per step)",
                    color: TRAIN,
                    points: thin(steps, MAX_STEP_POINTS),
                    faint: true,
                });
            }
            series.push(Series {
                name: "train",
                color: TRAIN,
                points: per_epoch(name, |r| &r.train),
                faint: false,
            });
            let val = per_epoch(name, |r| &r.val);
            let best = val.iter().filter(|p| p.1.is_finite()).min_by(|a, b| a.1.total_cmp(&b.1)).copied();
            let marked = (name == "loss" && val.len() > 1).then_some(best).flatten();
            series.push(Series { name: "validation", color: VAL, points: val, faint: false });
            if let Some(best) = marked {
                series.push(Series {
                    name: "least validation loss",
                    color: BEST,
                    points: vec![best],
                    faint: false,
                });
            }
            series.retain(|s| !s.points.is_empty());
            Panel { title: name.to_string(), series, allow_log: name == "loss", x_label: "epoch" }
        })
        .collect()
}

/// At most `max` points: runs of neighbours averaged (their finite values; NaN if none).
fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let size = points.len().div_ceil(max);
    let mean = |v: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = v.filter(|v| v.is_finite()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        if n == 0 {
            f64::NAN
        } else {
            sum / n as f64
        }
    };
    points
        .chunks(size)
        .map(|c| (mean(&mut c.iter().map(|p| p.0)), mean(&mut c.iter().map(|p| p.1))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    /// The tags opened and closed in order, checked to nest; returns the names opened.
    fn balanced(svg: &str) -> Vec<String> {
        let mut open: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        for piece in svg.split('<').skip(1) {
            let tag = &piece[..piece.find('>').expect("unterminated tag")];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name), "</{name}> closes the wrong tag");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap().to_string();
                seen.push(name.clone());
                open.push(name);
            } else {
                seen.push(tag.split_whitespace().next().unwrap().to_string());
            }
        }
        assert!(open.is_empty(), "left open: {open:?}");
        seen
    }

    fn steps(n: usize, per_epoch: usize) -> Vec<(f64, f64)> {
        (1..=n).map(|s| (s as f64 / per_epoch as f64, 2.0 / s as f64)).collect()
    }

    #[test]
    fn a_run_draws_a_loss_and_an_accuracy_panel_with_legends() {
        let (_, history) = fixture::run(5, 4);
        let svg = render_curves("iris <mlp>", &history, &steps(20, 4), &[]);
        let tags = balanced(&svg);
        assert_eq!(tags.iter().filter(|t| *t == "polyline").count(), 5, "3 loss lines, 2 accuracy lines");
        assert_eq!(svg.matches("class=\"panel\"").count(), 2);
        assert!(svg.contains("<title>iris &lt;mlp&gt;</title>"));
        for name in ["train (per step)", "train", "validation", ">accuracy<", ">epoch<"] {
            assert!(svg.contains(name), "missing {name}");
        }
        assert!(svg.contains("data-series=\"validation\""));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn non_finite_values_break_lines_and_never_reach_the_file() {
        let (_, mut history) = fixture::run(6, 1);
        history[2].val.0[0].1 = f64::NAN;
        history[3].train.0[0].1 = f64::INFINITY;
        let svg = render_curves("run", &history, &[], &[]);
        balanced(&svg);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let loss_lines: Vec<&str> = svg.lines().filter(|l| l.contains("<polyline")).take(4).collect();
        // Train loss: epochs 1-3 and 5-6; validation: 1-2 and 4-6.
        let counts: Vec<usize> = loss_lines.iter().map(|l| l.matches(',').count()).collect();
        assert_eq!(counts, [3, 2, 2, 3]);
    }

    #[test]
    fn one_epoch_or_none_still_makes_a_picture() {
        let (_, history) = fixture::run(1, 1);
        let svg = render_curves("run", &history, &[], &[]);
        balanced(&svg);
        assert_eq!(svg.matches("<circle").count(), 4, "a dot for each lone value");
        let empty = render_curves("run", &[], &[], &[]);
        balanced(&empty);
        assert!(empty.contains("no finite values"));
    }

    #[test]
    fn a_loss_over_decades_gets_a_log_axis_and_long_runs_are_thinned() {
        let (_, history) = fixture::run(3, 1000);
        let svg = render_curves("run", &history, &steps(3000, 1000), &[]);
        assert!(svg.contains("loss (log scale)"));
        let faint = svg.lines().find(|l| l.contains("data-series=\"train (per step)\"")).unwrap();
        assert_eq!(faint.matches(',').count(), 750);
    }

    #[test]
    fn a_scheduled_rate_gets_its_panel_and_the_least_validation_loss_is_marked() {
        let (_, mut history) = fixture::run(4, 2);
        history[1].val.0[0].1 = 0.01;
        let rates: Vec<(f64, f64)> = (1..=8).map(|s| (s as f64 / 2.0, 0.1 * 0.5f64.powi(s))).collect();
        let svg = render_curves("run", &history, &steps(8, 2), &rates);
        balanced(&svg);
        assert_eq!(svg.matches("class=\"panel\"").count(), 3, "loss, accuracy, learning rate");
        assert!(svg.contains(">learning rate<") && svg.contains("data-series=\"rate\""));
        // One mark, in the legend and as a dot on epoch 2, whose validation loss is the least:
        // the same x as the second of the validation line's four points.
        assert!(svg.contains(">least validation loss<"));
        let dots: Vec<&str> = svg.lines().filter(|l| l.contains("<circle") && l.contains(BEST)).collect();
        assert_eq!(dots.len(), 1, "{svg}");
        let val = svg.lines().find(|l| l.contains("data-series=\"validation\"")).unwrap();
        let second = val.split("points=\"").nth(1).unwrap().split(' ').nth(1).unwrap();
        let x = second.split(',').next().unwrap();
        assert!(dots[0].contains(&format!("cx=\"{x}\"")), "{} vs {x}", dots[0]);
        // A constant rate draws no panel.
        let flat: Vec<(f64, f64)> = (1..=8).map(|s| (s as f64 / 2.0, 0.1)).collect();
        assert_eq!(render_curves("run", &history, &[], &flat).matches("class=\"panel\"").count(), 2);
    }

    #[test]
    fn the_observer_writes_the_file_after_each_epoch() {
        let path = std::env::temp_dir().join(format!("wick-plot-{}/curves.svg", std::process::id()));
        let mut plot = CurvePlot::new(&path, "run").unwrap();
        let (steps, history) = fixture::run(2, 2);
        plot.start(&fixture::plan(2, 2)).unwrap();
        for s in &steps[..2] {
            plot.step(s).unwrap();
        }
        plot.epoch(&history[0]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        assert!(svg.contains("data-series=\"train (per step)\" points=\""));
        assert_eq!(plot.steps, [(0.5, 2.0), (1.0, 1.0)]);
        assert!(CurvePlot::new(Path::new("curves.png"), "run").is_err());
    }
}
