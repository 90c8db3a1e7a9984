//! Supervised training as a [`Program`]: one model (lowered at each batch size the data needs),
//! one loss reading one output and one target by name, one optimizer; per iteration the
//! gradients of a group of batches summed, an optional L1 penalty, clipping and one update.
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
}

/// One model, one loss, one optimizer.
pub struct Supervised {
    pub nets: Nets,
    pub optimizer: Box<dyn Optimizer>,
    pub objective: Objective,
    pub clip: Option<Clip>,
    pub l1: f64,
    /// Batches whose gradients are summed into one update.
    pub accumulate: usize,
}

impl Supervised {
    /// The model's outputs for `batch` and the loss on the objective's output; `train` picks the
    /// mode (and whether autograd records).
    fn forward(&self, batch: &Batch, train: bool) -> Result<(Vec<Tensor>, Tensor), FitError> {
        let (net, inputs) = self.fed(batch)?;
        let outs = if train { net.forward(&inputs, true)? } else { net.infer(&inputs, false)? };
        let at = net.output_names().iter().position(|n| *n == self.objective.output).ok_or_else(|| {
            candle_core::Error::msg(format!("the model has no output `{}`", self.objective.output))
        })?;
        let loss = self.objective.loss.compute(&outs[at..], batch.get(&self.objective.target)?)?;
        Ok((outs.into_iter().skip(at).collect(), loss))
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

    fn counts(&self, outs: &[Tensor], batch: &Batch) -> Result<Vec<(f64, f64)>, FitError> {
        let target = batch.get(&self.objective.target)?;
        let axis = self.objective.loss.class_axis();
        let Some(first) = outs.first() else { return Ok(vec![]) };
        Ok(self
            .objective
            .metrics
            .iter()
            .map(|m| m.count(first, target, axis))
            .collect::<candle_core::Result<_>>()?)
    }
}

impl Program for Supervised {
    fn figures(&self) -> Vec<String> {
        std::iter::once("loss".to_string()).chain(self.objective.metrics.iter().map(Metric::name)).collect()
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
        let mut tally = Tally::new(self.objective.metrics.len());
        let mut grads: Option<GradStore> = None;
        let rows: usize = group.iter().map(|b| b.rows).sum();
        for batch in group {
            // The group's loss is the mean over its rows, however its batches divide them.
            let share = batch.rows as f64 / rows as f64;
            let (outs, loss) = self.forward(batch, true)?;
            let value = scalar(&loss)?;
            if !value.is_finite() {
                let layer = self.first_non_finite(batch, true)?;
                return Err(FitError::NonFinite { value, step: 0, epoch: 0, layer });
            }
            tally.add(value, batch.rows, &self.counts(&outs, batch)?);
            let objective = (loss + l1_penalty(self.optimizer.as_ref(), self.l1)?)?;
            let g = self.nets.for_rows(batch.rows)?.backward(&(objective * share)?)?;
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
        let mut tally = Tally::new(self.objective.metrics.len());
        for batch in batches {
            let (outs, loss) = self.forward(batch, false)?;
            let value = scalar(&loss)?;
            if !value.is_finite() {
                let layer = self.first_non_finite(batch, false)?;
                return Err(FitError::NonFiniteValidation { value, epoch: 0, layer });
            }
            tally.add(value, batch.rows, &self.counts(&outs, batch)?);
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
