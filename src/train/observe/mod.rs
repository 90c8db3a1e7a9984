//! What a person sees while a model trains: the records the loop emits after each step and
//! each epoch, and the observers that turn them into a progress bar, a metrics log and a
//! curve image.

/// The shape of a run, known before the first step.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub epochs: usize,
    /// Optimizer steps per epoch (batches / accumulation).
    pub steps_per_epoch: usize,
    pub batch_size: usize,
    pub train_rows: usize,
    pub val_rows: usize,
}

/// Named figures, in a stable order: `loss` first, then the configured metrics
/// (`accuracy`, `top5_accuracy`, ...).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics(pub Vec<(String, f64)>);

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
    /// The mean loss over the step's samples.
    pub loss: f64,
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
    pub samples_per_s: f64,
    pub elapsed_s: f64,
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
    /// The run ended (finished, stopped early or failed); `history` holds every epoch.
    fn finish(&mut self, _history: &[EpochRecord]) -> std::io::Result<()> {
        Ok(())
    }
}
