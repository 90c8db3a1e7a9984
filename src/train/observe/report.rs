//! The few lines a person reads when a run is over: how long it trained and how fast, where
//! it ended, its best epoch, and where its files are.

use super::text::{figure, figures, rate, seconds};
use crate::train::fit::Stop;
use crate::train::kfold::FoldsReport;
use crate::train::run::TrainReport;

/// Why the run ended before its last epoch, in words, if it did.
fn stop_reason(report: &TrainReport) -> Option<String> {
    match report.stopped {
        Stop::Finished => None,
        Stop::EarlyStopped => Some("the monitored metric stopped improving".into()),
        Stop::MaxSteps => Some(format!("reached max_steps ({})", report.steps)),
        Stop::Interrupted => Some("interrupted; resume with --resume".into()),
    }
}

/// The report's lines, without trailing newlines.
pub fn final_report(report: &TrainReport) -> Vec<String> {
    let mut lines = Vec::new();
    let plural = if report.epochs == 1 { "" } else { "s" };
    let mut head = format!("Trained {} epoch{plural}", report.epochs);
    if let Some(last) = report.history.last() {
        head.push_str(&format!(" ({} steps) in {}", last.step, seconds(report.wall_s)));
    }
    head.push_str(&format!(
        ", {} samples/s ({} in the training steps alone)",
        rate(report.samples_per_s),
        rate(report.compute_samples_per_s)
    ));
    lines.push(head);
    if let Some(why) = stop_reason(report) {
        lines.push(format!("Stopped early: {why}"));
    }
    let unvalidated = report.history.last().filter(|r| r.val.0.is_empty());
    let mut last = match unvalidated {
        // Without validation (a GAN), every training figure of the last epoch.
        Some(r) => format!("Final: train {}", figures(&r.train)),
        None => format!(
            "Final: train loss {} | val loss {}",
            figure("loss", report.train_loss),
            figure("loss", report.val_loss)
        ),
    };
    if let Some(acc) = report.val_accuracy {
        last.push_str(&format!("  accuracy {}", figure("accuracy", acc)));
    }
    lines.push(last);
    if let Some(test) = &report.test {
        lines.push(format!("Test ({} examples, the weights below): {}", report.test_examples, figures(test)));
    }
    match report.history.iter().find(|r| r.epoch == report.best_epoch) {
        Some(best) => lines.push(format!(
            "Best epoch {}: train {} | val {}",
            best.epoch,
            figures(&best.train),
            figures(&best.val)
        )),
        None if report.best_epoch > 0 => lines.push(format!("Best epoch {}", report.best_epoch)),
        None => {}
    }
    lines.push(format!("{:<12}{} ({})", "Weights", report.weight_files.join(", "), report.kept));
    let files = [("Checkpoint", &report.checkpoint), ("Metrics log", &report.log), ("Curves", &report.plot)];
    for (label, path) in files.into_iter().filter(|(_, p)| !p.is_empty()) {
        lines.push(format!("{label:<12}{path}"));
    }
    lines
}

/// k-fold training's lines: per figure its mean ± deviation over the folds, then each fold's.
pub fn folds_report(report: &FoldsReport) -> Vec<String> {
    let mut lines = vec![format!(
        "{} of {} folds trained; validation figures at each fold's last epoch (mean ± std, then each fold):",
        report.folds.len(),
        report.k
    )];
    for f in &report.figures {
        let each: Vec<String> = f.values.iter().map(|v| figure(&f.name, *v)).collect();
        lines.push(format!(
            "  {:<18}{} ± {}   ({})",
            f.name,
            figure(&f.name, f.mean),
            figure(&f.name, f.std),
            each.join(", ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::super::fixture::report;
    use super::*;
    use crate::train::folder::Kept;

    #[test]
    fn the_report_names_time_figures_best_epoch_and_files() {
        assert_eq!(
            final_report(&report()),
            [
                "Trained 4 epochs (20 steps) in 20.0s, 1,234 samples/s (5,679 in the training steps alone)",
                "Final: train loss 0.2500 | val loss 0.3000  accuracy 85.00%",
                "Best epoch 3: train loss 0.3333  accuracy 83.33% | val loss 0.4000  accuracy 80.00%",
                "Weights     runs/iris/weights.safetensors (the best epoch's weights (epoch 3, step 15), \
                 restored by early stopping)",
                "Checkpoint  runs/iris/checkpoint.safetensors",
                "Metrics log runs/iris/metrics.csv",
            ]
        );
    }

    #[test]
    fn a_stopped_run_without_history_or_accuracy_still_reads_well() {
        let r = TrainReport {
            epochs: 1,
            val_accuracy: None,
            stopped: Stop::MaxSteps,
            kept: Kept::Last { step: 20 },
            checkpoint: String::new(),
            log: String::new(),
            history: vec![],
            ..report()
        };
        assert_eq!(
            final_report(&r),
            [
                "Trained 1 epoch, 1,234 samples/s (5,679 in the training steps alone)",
                "Stopped early: reached max_steps (20)",
                "Final: train loss 0.2500 | val loss 0.3000",
                "Best epoch 3",
                "Weights     runs/iris/weights.safetensors (the weights after the last step, step 20)",
            ]
        );
    }
}
