//! Supervised training as a [`Program`]: one model (lowered at each batch size the data needs),
//! its objectives (a loss reading one output and one target by name, or one such loss per
//! output, weighted and summed), one optimizer; per iteration the gradients of a group of
//! batches summed, an optional L1 penalty, clipping and one update.
//!
//! Every row is used: a split's last batch may be short, and runs on the model lowered for its
//! size ([`Nets`]); its loss is the mean over its own rows.

use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, D};

use super::batch::Batch;
use super::config::Clip;
use super::fit::FitError;
use super::grads::{add_grads, clip_grads, l1_penalty};
use super::nets::Nets;
use super::objective::{LossConfig, Metric};
use super::optim::Optimizer;
use super::program::{Program, Tally};

/// The loss of one output against one target, both by name.
#[derive(Clone, Debug)]
pub struct Objective {
    pub loss: LossConfig,
    /// The model output the loss reads.
    pub output: String,
    /// The batch tensor it compares that output with.
    pub target: String,
    pub metrics: Vec<Metric>,
    /// Its share of the summed loss.
    pub weight: f64,
    /// Whether its figures carry the output's name (`logits_loss`, `logits_accuracy`): a loss
    /// per output reports each; the one-loss form reports `loss` and bare metric names.
    pub labelled: bool,
}

impl Objective {
    /// Its own figures besides the summed `loss`: its loss (when labelled), then its metrics.
    pub fn figures(&self) -> Vec<String> {
        let own = self.labelled.then(|| "loss".to_string());
        let named = own.into_iter().chain(self.metrics.iter().map(Metric::name));
        named.map(|f| if self.labelled { format!("{}_{f}", self.output) } else { f }).collect()
    }
}

/// The figures a run with `objectives` reports: `loss` (their weighted sum), then each
/// objective's own.
pub fn figures(objectives: &[Objective]) -> Vec<String> {
    std::iter::once("loss".to_string()).chain(objectives.iter().flat_map(Objective::figures)).collect()
}

/// One model, its objectives, one optimizer.
pub struct Supervised {
    pub nets: Nets,
    pub optimizer: Box<dyn Optimizer>,
    pub objectives: Vec<Objective>,
    pub clip: Option<Clip>,
    pub l1: f64,
    /// Batches whose gradients are summed into one update.
    pub accumulate: usize,
}

impl Supervised {
    /// The model's outputs for `batch`, the summed loss and the figures each objective
    /// measured (its loss when labelled, then its metrics' counts, over `batch.rows`); `train`
    /// picks the mode (and whether autograd records).
    fn forward(&self, batch: &Batch, train: bool) -> Result<(Tensor, Vec<(f64, f64)>), FitError> {
        let (net, inputs) = self.fed(batch)?;
        let outs = if train { net.forward(&inputs, true)? } else { net.infer(&inputs, false)? };
        let names = net.output_names();
        let rows = batch.rows as f64;
        let mut total: Option<Tensor> = None;
        let mut counts = Vec::new();
        for objective in &self.objectives {
            let at = names.iter().position(|n| *n == objective.output).ok_or_else(|| {
                candle_core::Error::msg(format!("the model has no output `{}`", objective.output))
            })?;
            let target = batch.get(&objective.target)?;
            // The VAE loss reads the outputs after its own too.
            let loss = objective.loss.compute(&outs[at..], target)?;
            if objective.labelled {
                counts.push((scalar(&loss)? * rows, rows));
            }
            let axis = objective.loss.class_axis();
            for m in &objective.metrics {
                counts.push(m.count(&outs[at], target, axis, objective.loss.ignore_index())?);
            }
            let weighted = if objective.weight == 1.0 { loss } else { (loss * objective.weight)? };
            total = Some(match total {
                None => weighted,
                Some(t) => (t + weighted)?,
            });
        }
        let total = total.ok_or_else(|| candle_core::Error::msg("no loss to train on"))?;
        Ok((total, counts))
    }

    /// The outputs some loss reads: the parameters they depend on are the ones that must get
    /// gradients.
    fn trained_outputs(&self) -> Vec<&str> {
        self.objectives.iter().map(|o| o.output.as_str()).collect()
    }

    /// The first layer whose output is not finite for `batch`, to name where a loss went bad.
    fn first_non_finite(&self, batch: &Batch, train: bool) -> Result<Option<(String, String)>, FitError> {
        let (net, inputs) = self.fed(batch)?;
        Ok(net.first_non_finite(&inputs, train)?)
    }

    /// The lowering for `batch`'s rows, and its inputs taken from the batch by their names.
    fn fed(&self, batch: &Batch) -> candle_core::Result<(&crate::Lowered, Vec<Tensor>)> {
        let net = self.nets.for_rows(batch.rows)?;
        let inputs =
            net.inputs().iter().map(|i| batch.get(&i.name).cloned()).collect::<candle_core::Result<_>>()?;
        Ok((net, inputs))
    }

    fn tally(&self) -> Tally {
        Tally::new(figures(&self.objectives).len() - 1)
    }
}

impl Program for Supervised {
    fn figures(&self) -> Vec<String> {
        figures(&self.objectives)
    }

    fn batch_size(&self) -> usize {
        self.nets.batch_size()
    }

    fn base_learning_rate(&mut self) -> f64 {
        *self.optimizer.lr_mut()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_learning_rate(lr);
    }

    fn batches_per_step(&self) -> usize {
        self.accumulate.max(1)
    }

    fn step(&mut self, group: &[Batch], _iteration: u64) -> Result<Tally, FitError> {
        let mut tally = self.tally();
        let mut grads: Option<GradStore> = None;
        let rows: usize = group.iter().map(|b| b.rows).sum();
        for batch in group {
            // The group's loss is the mean over its rows, however its batches divide them.
            let share = batch.rows as f64 / rows as f64;
            let (loss, counts) = self.forward(batch, true)?;
            let value = scalar(&loss)?;
            if !value.is_finite() {
                let layer = self.first_non_finite(batch, true)?;
                return Err(FitError::NonFinite { value, step: 0, epoch: 0, layer });
            }
            tally.add(value, batch.rows, &counts);
            let objective = (loss + l1_penalty(self.optimizer.as_ref(), self.l1)?)?;
            let net = self.nets.for_rows(batch.rows)?;
            let g = net.backward_from(&(objective * share)?, &self.trained_outputs())?;
            grads = Some(match grads {
                None => g,
                Some(acc) => add_grads(acc, g, self.optimizer.as_ref())?,
            });
        }
        let Some(mut grads) = grads else { return Ok(tally) };
        if let Some(clip) = self.clip {
            clip_grads(&mut grads, self.optimizer.as_ref(), clip)?;
        }
        self.optimizer.step(&grads)?;
        Ok(tally)
    }

    fn evaluate(&self, batches: &[Batch]) -> Result<Tally, FitError> {
        let mut tally = self.tally();
        for batch in batches {
            let (loss, counts) = self.forward(batch, false)?;
            let value = scalar(&loss)?;
            if !value.is_finite() {
                let layer = self.first_non_finite(batch, false)?;
                return Err(FitError::NonFiniteValidation { value, epoch: 0, layer });
            }
            tally.add(value, batch.rows, &counts);
        }
        Ok(tally)
    }

    fn weights(&self) -> BTreeMap<String, Tensor> {
        self.nets.full().params().state_dict()
    }

    fn optimizer_state(&self) -> BTreeMap<String, Tensor> {
        self.optimizer.state()
    }

    fn restore(
        &mut self,
        weights: &HashMap<String, Tensor>,
        optimizer: Option<&BTreeMap<String, Tensor>>,
    ) -> Result<(), FitError> {
        self.nets.full().params().load_map(weights, false)?;
        if let Some(state) = optimizer {
            self.optimizer.load_state(state)?;
        }
        Ok(())
    }

    fn passes(&self) -> Vec<u64> {
        vec![self.nets.full().params().passes()]
    }

    fn set_passes(&mut self, passes: &[u64]) {
        if let Some(n) = passes.first() {
            self.nets.full().params().set_passes(*n);
        }
    }
}

/// A one-element tensor (a loss) as an `f64`.
pub(crate) fn scalar(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(DType::F64)?.flatten_all()?.max(D::Minus1)?.to_scalar::<f64>()
}
