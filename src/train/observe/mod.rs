//! What a person sees while a model trains: the records the loop emits after each step and
//! each epoch, and the observers that turn them into a progress bar, a metrics log and a
//! curve image.
//!
//! The loop calls one [`Observer`]; [`Observers`] fans that out to several. [`Progress`] draws
//! the bar (or plain per-epoch lines when stderr is not a terminal), [`MetricsLog`] writes a
//! CSV or JSON-lines log, [`TensorBoard`] writes the same figures as TensorBoard event files,
//! [`CurvePlot`] draws the curves as SVG at the end, and
//! [`final_report`] renders the lines a person reads when the run is over.

mod log;
mod plot;
mod progress;
mod report;
pub mod tensorboard;
mod text;

pub use log::MetricsLog;
pub use plot::{render_curves, render_lr_curve, CurvePlot};
pub use progress::Progress;
pub use report::{final_report, folds_report};
pub use tensorboard::TensorBoard;
pub(crate) use text::{figure, seconds};

/// The shape of a run, known before the first step.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub epochs: usize,
    /// Optimizer steps per epoch (batches / accumulation).
    pub steps_per_epoch: usize,
    pub batch_size: usize,
    pub train_rows: usize,
    pub val_rows: usize,
    /// The figures every epoch reports for each split, in [`Metrics`] order (`loss` first);
    /// the metrics log's CSV header is built from them before the first row.
    pub metric_names: Vec<String>,
}

/// Named figures, in a stable order: `loss` first, then the configured metrics
/// (`accuracy`, `top5_accuracy`, ...).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Metrics(pub Vec<(String, f64)>);

/// JSON writes a NaN figure (one not measured that epoch, as a FID every few epochs) as
/// `null`: read back as NaN, so a checkpoint holding one loads.
impl<'de> serde::Deserialize<'de> for Metrics {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Metrics, D::Error> {
        let read: Vec<(String, Option<f64>)> = serde::Deserialize::deserialize(d)?;
        Ok(Metrics(read.into_iter().map(|(n, v)| (n, v.unwrap_or(f64::NAN))).collect()))
    }
}

impl Metrics {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// One optimizer step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    /// 1-based.
    pub epoch: usize,
    /// Optimizer steps so far, this one included.
    pub step: u64,
    pub lr: f64,
    /// The mean loss over the step's samples (its first figure).
    pub loss: f64,
    /// Every figure the step measured, under the program's names (`loss`, `accuracy`;
    /// `d_loss`, `g_loss`, ...).
    pub figures: Metrics,
    /// Samples this step consumed (batch size times accumulation).
    pub samples: usize,
    /// Seconds since the run started.
    pub elapsed_s: f64,
}

/// One finished epoch: training figures averaged over its steps, validation figures over the
/// whole validation split.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    pub step: u64,
    /// The rate of the epoch's last step.
    pub lr: f64,
    pub train: Metrics,
    pub val: Metrics,
    /// Samples trained over the epoch's wall time (its steps and its validation).
    pub samples_per_s: f64,
    pub elapsed_s: f64,
    /// Samples trained in the epoch (0 in records written before it was kept).
    #[serde(default)]
    pub samples: usize,
    /// Seconds spent in the epoch's training steps alone (forward, backward, update).
    #[serde(default)]
    pub train_s: f64,
}

/// Something that watches a run. Every method has a no-op default.
pub trait Observer {
    fn start(&mut self, _plan: &Plan) -> std::io::Result<()> {
        Ok(())
    }
    fn step(&mut self, _record: &StepRecord) -> std::io::Result<()> {
        Ok(())
    }
    fn epoch(&mut self, _record: &EpochRecord) -> std::io::Result<()> {
        Ok(())
    }
    /// A resumed run's earlier epochs, told right after `start`; files that keep a history
    /// (the log, the curves) take them as epochs.
    fn resumed(&mut self, history: &[EpochRecord]) -> std::io::Result<()> {
        history.iter().try_for_each(|r| self.epoch(r))
    }
    /// The run ended (finished, stopped early or failed); `history` holds every epoch.
    fn finish(&mut self, _history: &[EpochRecord]) -> std::io::Result<()> {
        Ok(())
    }
    /// The test split's figures, evaluated once after the run on the weights it reports (at
    /// `step`, the end of epoch `epoch`).
    fn test(&mut self, _figures: &Metrics, _epoch: usize, _step: u64) -> std::io::Result<()> {
        Ok(())
    }
}

/// Several observers watching one run, each told everything in the order given.
#[derive(Default)]
pub struct Observers(pub Vec<Box<dyn Observer>>);

impl Observers {
    /// Tell each observer; one failing does not keep the others from hearing (a log still
    /// flushes when the plot cannot be written). The first failure is returned.
    fn each(
        &mut self,
        mut call: impl FnMut(&mut dyn Observer) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut first = Ok(());
        for o in &mut self.0 {
            let result = call(o.as_mut());
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

impl Observer for Observers {
    fn start(&mut self, plan: &Plan) -> std::io::Result<()> {
        self.each(|o| o.start(plan))
    }
    fn step(&mut self, record: &StepRecord) -> std::io::Result<()> {
        self.each(|o| o.step(record))
    }
    fn epoch(&mut self, record: &EpochRecord) -> std::io::Result<()> {
        self.each(|o| o.epoch(record))
    }
    fn resumed(&mut self, history: &[EpochRecord]) -> std::io::Result<()> {
        self.each(|o| o.resumed(history))
    }
    fn finish(&mut self, history: &[EpochRecord]) -> std::io::Result<()> {
        self.each(|o| o.finish(history))
    }
    fn test(&mut self, figures: &Metrics, epoch: usize, step: u64) -> std::io::Result<()> {
        self.each(|o| o.test(figures, epoch, step))
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A small run's records, shared by the observers' tests.

    use super::{EpochRecord, Metrics, Plan, StepRecord};
    use crate::train::fit::Stop;
    use crate::train::folder::Kept;
    use crate::train::run::TrainReport;

    /// A finished run's report over [`run`]`(4, 5)`.
    pub fn report() -> TrainReport {
        TrainReport {
            epochs: 4,
            steps: 20,
            train_loss: 0.25,
            val_loss: 0.3,
            val_accuracy: Some(0.85),
            best_epoch: 3,
            samples_per_s: 1234.4,
            compute_samples_per_s: 5678.9,
            wall_s: 20.0,
            stopped: Stop::Finished,
            frozen_params: 0,
            out: "runs/iris".into(),
            checkpoint: "runs/iris/checkpoint.safetensors".into(),
            weights: "runs/iris/weights.safetensors".into(),
            weight_files: vec!["runs/iris/weights.safetensors".into()],
            kept: Kept::Best { epoch: 3, step: 15 },
            log: "runs/iris/metrics.csv".into(),
            plot: String::new(),
            history: run(4, 5).1,
            test: None,
            test_examples: 0,
            notes: vec![],
        }
    }

    pub fn plan(epochs: usize, steps_per_epoch: usize) -> Plan {
        Plan {
            epochs,
            steps_per_epoch,
            batch_size: 10,
            train_rows: 10 * steps_per_epoch,
            val_rows: 30,
            metric_names: vec!["loss".into(), "accuracy".into()],
        }
    }

    pub fn metrics(loss: f64, accuracy: f64) -> Metrics {
        Metrics(vec![("loss".into(), loss), ("accuracy".into(), accuracy)])
    }

    /// Steps whose loss falls from 2 towards 0, one second each, and the epochs they make.
    pub fn run(epochs: usize, steps_per_epoch: usize) -> (Vec<StepRecord>, Vec<EpochRecord>) {
        let mut steps = Vec::new();
        let mut history = Vec::new();
        for epoch in 1..=epochs {
            for k in 0..steps_per_epoch {
                let step = ((epoch - 1) * steps_per_epoch + k + 1) as u64;
                steps.push(StepRecord {
                    epoch,
                    step,
                    lr: 0.1,
                    loss: 2.0 / step as f64,
                    figures: Metrics(vec![("loss".into(), 2.0 / step as f64)]),
                    samples: 10,
                    elapsed_s: step as f64,
                });
            }
            let t = epoch as f64;
            history.push(EpochRecord {
                epoch,
                step: (epoch * steps_per_epoch) as u64,
                lr: 0.1,
                train: metrics(1.0 / t, 1.0 - 0.5 / t),
                val: metrics(1.2 / t, 1.0 - 0.6 / t),
                samples_per_s: 10.0,
                elapsed_s: (epoch * steps_per_epoch) as f64,
                samples: 10 * steps_per_epoch,
                train_s: 0.5 * steps_per_epoch as f64,
            });
        }
        (steps, history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn a_figure_not_measured_survives_a_round_trip_through_json() {
        let m = Metrics(vec![("loss".into(), 0.5), ("fid".into(), f64::NAN)]);
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"[["loss",0.5],["fid",null]]"#);
        let back: Metrics = serde_json::from_str(&text).unwrap();
        assert_eq!(back.get("loss"), Some(0.5));
        assert!(back.get("fid").is_some_and(f64::is_nan));
    }

    /// Counts the calls it hears; fails each one if asked to.
    struct Counter(Rc<RefCell<Vec<&'static str>>>, bool);

    impl Observer for Counter {
        fn epoch(&mut self, _: &EpochRecord) -> std::io::Result<()> {
            self.0.borrow_mut().push("epoch");
            if self.1 {
                return Err(std::io::Error::other("disk full"));
            }
            Ok(())
        }
        fn finish(&mut self, _: &[EpochRecord]) -> std::io::Result<()> {
            self.0.borrow_mut().push("finish");
            Ok(())
        }
    }

    #[test]
    fn every_observer_hears_every_call_even_after_one_fails() {
        let heard = Rc::new(RefCell::new(Vec::new()));
        let mut all =
            Observers(vec![Box::new(Counter(heard.clone(), true)), Box::new(Counter(heard.clone(), false))]);
        let (_, history) = fixture::run(1, 2);
        let err = all.epoch(&history[0]).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        all.finish(&history).unwrap();
        assert_eq!(*heard.borrow(), ["epoch", "epoch", "finish", "finish"]);
    }
}
