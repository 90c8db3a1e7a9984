//! The few lines a person reads when a run is over: how long it trained and how fast, where
//! it ended, its best epoch, and where its files are.

use std::path::PathBuf;

use super::text::{figure, figures, rate, seconds};
use super::EpochRecord;

/// What the run reports beside its history (the figures `--format json` prints).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// Epochs trained.
    pub epochs: usize,
    pub best_epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    /// `None` when the run measures no accuracy.
    pub val_accuracy: Option<f64>,
    pub samples_per_s: f64,
    /// Why the run ended before its last epoch (early stopping, a non-finite loss), if it did.
    pub stopped: Option<String>,
    pub checkpoint: Option<PathBuf>,
    /// The run's result, and what it holds (the last step's weights, or the best epoch's).
    pub weights: Option<(PathBuf, String)>,
    pub log: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

/// The report's lines, without trailing newlines.
pub fn final_report(history: &[EpochRecord], totals: &Totals) -> Vec<String> {
    let mut lines = Vec::new();
    let plural = if totals.epochs == 1 { "" } else { "s" };
    let mut head = format!("Trained {} epoch{plural}", totals.epochs);
    if let Some(last) = history.last() {
        head.push_str(&format!(" ({} steps) in {}", last.step, seconds(last.elapsed_s)));
    }
    head.push_str(&format!(", {} samples/s", rate(totals.samples_per_s)));
    lines.push(head);
    if let Some(why) = &totals.stopped {
        lines.push(format!("Stopped early: {why}"));
    }
    let mut last = format!(
        "Final: train loss {} | val loss {}",
        figure("loss", totals.train_loss),
        figure("loss", totals.val_loss)
    );
    if let Some(acc) = totals.val_accuracy {
        last.push_str(&format!("  accuracy {}", figure("accuracy", acc)));
    }
    lines.push(last);
    match history.iter().find(|r| r.epoch == totals.best_epoch) {
        Some(best) => lines.push(format!(
            "Best epoch {}: train {} | val {}",
            best.epoch,
            figures(&best.train),
            figures(&best.val)
        )),
        None if totals.best_epoch > 0 => lines.push(format!("Best epoch {}", totals.best_epoch)),
        None => {}
    }
    if let Some((path, what)) = &totals.weights {
        lines.push(format!("{:<12}{} ({what})", "Weights", path.display()));
    }
    let files = [("Checkpoint", &totals.checkpoint), ("Metrics log", &totals.log), ("Curves", &totals.plot)];
    for (label, path) in files {
        if let Some(p) = path {
            lines.push(format!("{label:<12}{}", p.display()));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn totals() -> Totals {
        Totals {
            epochs: 4,
            best_epoch: 3,
            train_loss: 0.25,
            val_loss: 0.3,
            val_accuracy: Some(0.85),
            samples_per_s: 1234.4,
            stopped: None,
            checkpoint: Some("runs/iris/last.safetensors".into()),
            weights: Some(("runs/iris/weights.safetensors".into(), "the best epoch's weights".into())),
            log: Some("runs/iris/metrics.csv".into()),
            plot: None,
        }
    }

    #[test]
    fn the_report_names_time_figures_best_epoch_and_files() {
        let (_, history) = fixture::run(4, 5);
        assert_eq!(
            final_report(&history, &totals()),
            [
                "Trained 4 epochs (20 steps) in 20.0s, 1,234 samples/s",
                "Final: train loss 0.2500 | val loss 0.3000  accuracy 85.00%",
                "Best epoch 3: train loss 0.3333  accuracy 83.33% | val loss 0.4000  accuracy 80.00%",
                "Weights     runs/iris/weights.safetensors (the best epoch's weights)",
                "Checkpoint  runs/iris/last.safetensors",
                "Metrics log runs/iris/metrics.csv",
            ]
        );
    }

    #[test]
    fn a_stopped_run_without_history_or_accuracy_still_reads_well() {
        let t = Totals {
            epochs: 1,
            val_accuracy: None,
            stopped: Some("val_loss has not improved for 5 epochs".into()),
            checkpoint: None,
            weights: None,
            log: None,
            ..totals()
        };
        assert_eq!(
            final_report(&[], &t),
            [
                "Trained 1 epoch, 1,234 samples/s",
                "Stopped early: val_loss has not improved for 5 epochs",
                "Final: train loss 0.2500 | val loss 0.3000",
                "Best epoch 3",
            ]
        );
    }
}
