//! Training programs. The loop ([`super::fit`]) owns the run — epochs, batch order, schedules,
//! early stopping, observers, checkpoints — and a program owns what one iteration does: its
//! models, their optimizers and losses. Supervised training ([`super::supervised`]) is the
//! program of one model, its losses (one, or one per output) and one optimizer; an
//! adversarial one (two models, two optimizers, several updates an iteration) plugs into the
//! same loop.

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::batch::Batch;
use super::fit::FitError;
use super::observe::Metrics;

/// What one iteration of training does, and what a checkpoint needs of it.
pub trait Program {
    /// The figures each epoch reports for each split, `loss` first.
    fn figures(&self) -> Vec<String>;
    /// The rows of a full batch: a split's last batch may be shorter.
    fn batch_size(&self) -> usize;
    /// The rate the (first) optimizer was configured with: where schedules start.
    fn base_learning_rate(&mut self) -> f64;
    /// The rate every optimizer takes its next update at.
    fn set_learning_rate(&mut self, lr: f64);
    /// Batches each iteration takes (accumulated into one update, or one per update of a
    /// program that updates several times).
    fn batches_per_step(&self) -> usize {
        1
    }
    /// Iteration `iteration` (0-based: the run's steps before it) on `group`, at most
    /// [`Program::batches_per_step`] batches; the figures it measured on them. Random draws
    /// a program makes itself are keyed by the iteration, so a resumed run repeats them.
    fn step(&mut self, group: &[Batch], iteration: u64) -> Result<Tally, FitError>;
    /// The figures in evaluation mode over `batches`.
    fn evaluate(&self, batches: &[Batch]) -> Result<Tally, FitError>;
    /// Every model's parameters and buffers, keyed like a PyTorch `state_dict` (namespaced by
    /// model where there are several): what a checkpoint holds.
    fn weights(&self) -> BTreeMap<String, Tensor>;
    /// The run's result files: a name (`weights`, or each model's) and its tensors, keyed like
    /// that model's own `state_dict`.
    fn weight_files(&self) -> Vec<(String, BTreeMap<String, Tensor>)> {
        vec![("weights".into(), self.weights())]
    }
    /// Every optimizer's state, namespaced by the program.
    fn optimizer_state(&self) -> BTreeMap<String, Tensor>;
    /// Put back what [`Program::weights`] and [`Program::optimizer_state`] returned; `None`:
    /// the optimizers start afresh.
    fn restore(
        &mut self,
        weights: &std::collections::HashMap<String, Tensor>,
        optimizer: Option<&BTreeMap<String, Tensor>>,
    ) -> Result<(), FitError>;
    /// Files to write after each whole epoch, by path relative to the run folder (a GAN's
    /// grid of samples).
    fn epoch_files(&self, _epoch: usize) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>, FitError> {
        Ok(Vec::new())
    }
    /// Where the models' random streams (dropout, noise) stand: each model's forward passes
    /// so far.
    fn passes(&self) -> Vec<u64>;
    fn set_passes(&mut self, passes: &[u64]);
}

/// Running sums of the loss (per row) and of each metric's correct and total counts: what a
/// step or an evaluation measured, added up over an epoch.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub loss: f64,
    pub samples: usize,
    pub counts: Vec<(f64, f64)>,
}

impl Tally {
    /// Nothing yet, for `metrics` metrics besides the loss.
    pub fn new(metrics: usize) -> Tally {
        Tally { loss: 0.0, samples: 0, counts: vec![(0.0, 0.0); metrics] }
    }

    /// Count `rows` rows whose mean loss was `loss`, and each metric's (correct, total).
    pub fn add(&mut self, loss: f64, rows: usize, counts: &[(f64, f64)]) {
        self.merge(&Tally { loss: loss * rows as f64, samples: rows, counts: counts.to_vec() });
    }

    pub fn merge(&mut self, other: &Tally) {
        self.loss += other.loss;
        self.samples += other.samples;
        for ((c, t), (dc, dt)) in self.counts.iter_mut().zip(&other.counts) {
            *c += dc;
            *t += dt;
        }
    }

    /// The mean loss over the rows counted.
    pub fn mean_loss(&self) -> f64 {
        mean(self.loss, self.samples as f64)
    }

    /// The figures under `names` (`loss` first, then one per metric count).
    pub fn metrics(&self, names: &[String]) -> Metrics {
        let values = std::iter::once(self.mean_loss()).chain(self.counts.iter().map(|(c, t)| mean(*c, *t)));
        Metrics(names.iter().cloned().zip(values).collect())
    }
}

fn mean(sum: f64, n: f64) -> f64 {
    if n > 0.0 {
        sum / n
    } else {
        f64::NAN
    }
}
