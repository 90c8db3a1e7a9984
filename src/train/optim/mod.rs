//! Optimizers written here, PyTorch's update rules exactly (candle-nn has plain SGD and AdamW
//! only). Each keeps its per-parameter state as named tensors so a checkpoint can save and
//! restore it.
//!
//! The update order follows `torch.optim`: coupled weight decay is added to the gradient first
//! (`g + wd * p`, biases included), AdamW's decoupled decay scales the parameter before the
//! Adam step, `maximize` negates the gradient.

mod adagrad;
mod adam;
pub mod config;
pub mod groups;
mod in_place;
mod rmsprop;
mod sgd;

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{Sgd, SgdConfig};

/// One optimizer over a fixed list of parameters.
pub trait Optimizer {
    /// One update from the gradients in `grads`; parameters without a gradient are skipped.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The base learning rate; schedules set it before each step.
    fn lr_mut(&mut self) -> &mut f64;
    fn slots(&self) -> &Slots;
    fn slots_mut(&mut self) -> &mut Slots;
    /// The parameters it updates.
    fn params(&self) -> &[Param];

    fn set_learning_rate(&mut self, lr: f64) {
        *self.lr_mut() = lr;
    }

    /// The state to checkpoint, keyed `<param>.<slot>` (`fc.weight.exp_avg`), plus `step`.
    fn state(&self) -> BTreeMap<String, Tensor> {
        self.slots().state()
    }

    /// Restore what [`Optimizer::state`] returned.
    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        self.slots_mut().load(state)
    }
}

/// One update rule (its hyper-parameters): how a parameter moves given its gradient.
pub trait Rule {
    fn lr_mut(&mut self) -> &mut f64;
    /// Update `p` from its gradient `g` at step `t` (1 at the first step).
    fn update(&self, p: &Param, g: &Tensor, t: u64, slots: &mut Slots) -> Result<()>;
}

/// An optimizer: a rule applied to a fixed list of parameters, with its per-parameter state.
pub struct Optim<R> {
    params: Vec<Param>,
    pub config: R,
    slots: Slots,
}

impl<R: Rule> Optim<R> {
    fn with(params: Vec<Param>, config: R) -> Optim<R> {
        Optim { params, config, slots: Slots::default() }
    }
}

impl<R: Rule> Optimizer for Optim<R> {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let t = self.slots.step + 1;
        for p in &self.params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                // A gradient may carry the graph it was computed on; slots derived from it
                // would keep every step's graph alive.
                self.config.update(p, &g.detach(), t, &mut self.slots)?;
            }
        }
        self.slots.step = t;
        Ok(())
    }

    fn lr_mut(&mut self) -> &mut f64 {
        self.config.lr_mut()
    }

    fn slots(&self) -> &Slots {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut Slots {
        &mut self.slots
    }

    fn params(&self) -> &[Param] {
        &self.params
    }
}

/// Decoupled weight decay around any optimizer: each parameter with a gradient shrinks by
/// `lr * weight_decay` of itself before the update (the form AdamW uses, here for all).
pub struct Decoupled {
    pub inner: Box<dyn Optimizer>,
    pub weight_decay: f64,
}

impl Optimizer for Decoupled {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let keep = 1.0 - *self.inner.lr_mut() * self.weight_decay;
        for p in self.inner.params() {
            if grads.get(p.var.as_tensor()).is_some() {
                p.var.set(&(p.var.as_tensor() * keep)?)?;
            }
        }
        self.inner.step(grads)
    }

    fn lr_mut(&mut self) -> &mut f64 {
        self.inner.lr_mut()
    }

    fn slots(&self) -> &Slots {
        self.inner.slots()
    }

    fn slots_mut(&mut self) -> &mut Slots {
        self.inner.slots_mut()
    }

    fn params(&self) -> &[Param] {
        self.inner.params()
    }
}

/// A trainable parameter under its state_dict key.
#[derive(Clone, Debug)]
pub struct Param {
    pub key: String,
    pub var: Var,
}

impl Param {
    /// The trainable parameters of a lowered model, in its order.
    pub fn trainable(net: &crate::Lowered) -> Vec<Param> {
        net.params()
            .trainable()
            .into_iter()
            .map(|(k, v)| Param { key: k.to_string(), var: v.clone() })
            .collect()
    }
}

/// Per-parameter state slots (`momentum_buffer`, `exp_avg`, ...), created lazily at the first
/// step as PyTorch does, so "first step" rules can tell.
#[derive(Debug, Default)]
pub struct Slots {
    slots: BTreeMap<String, Tensor>,
    /// Steps taken.
    pub step: u64,
}

impl Slots {
    pub fn get(&self, key: &str, slot: &str) -> Option<&Tensor> {
        self.slots.get(&format!("{key}.{slot}"))
    }

    pub fn set(&mut self, key: &str, slot: &str, t: Tensor) {
        self.slots.insert(format!("{key}.{slot}"), t);
    }

    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = self.slots.clone();
        if let Ok(step) = Tensor::new(self.step as f64, &candle_core::Device::Cpu) {
            out.insert("step".into(), step);
        }
        out
    }

    pub fn load(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        self.slots =
            state.iter().filter(|(k, _)| *k != "step").map(|(k, v)| (k.clone(), v.clone())).collect();
        self.step = match state.get("step") {
            Some(t) => t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? as u64,
            None => 0,
        };
        Ok(())
    }
}

/// The gradient a rule sees: `maximize` flips it, coupled weight decay adds `wd * p`.
pub(crate) fn effective_grad(p: &Var, g: &Tensor, weight_decay: f64, maximize: bool) -> Result<Tensor> {
    let g = if maximize { g.neg()? } else { g.clone() };
    if weight_decay != 0.0 {
        g + (p.as_tensor() * weight_decay)?
    } else {
        Ok(g)
    }
}

#[cfg(test)]
mod tests;
