//! Adagrad (`torch.optim.Adagrad`): per-element rates from the sum of squared gradients, with
//! an optional decay of the base rate over steps.

use candle_core::backprop::GradStore;
use candle_core::Result;

use super::{effective_grad, Optimizer, Param, Slots};

#[derive(Clone, Debug)]
pub struct AdagradConfig {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub initial_accumulator_value: f64,
    pub eps: f64,
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

pub struct Adagrad {
    params: Vec<Param>,
    pub config: AdagradConfig,
    slots: Slots,
}

impl Adagrad {
    pub fn new(params: Vec<Param>, config: AdagradConfig) -> Adagrad {
        Adagrad { params, config, slots: Slots::default() }
    }
}

impl Optimizer for Adagrad {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let c = &self.config;
        let t = self.slots.step + 1;
        let clr = c.lr / (1.0 + (t - 1) as f64 * c.lr_decay);
        for p in &self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else { continue };
            let g = effective_grad(&p.var, g, c.weight_decay, c.maximize)?;
            let sum = match self.slots.get(&p.key, "sum") {
                Some(s) => s.clone(),
                None => (g.zeros_like()? + c.initial_accumulator_value)?,
            };
            let sum = (sum + g.sqr()?)?;
            let update = ((&g / (sum.sqrt()? + c.eps)?)? * clr)?;
            p.var.set(&(p.var.as_tensor() - update)?)?;
            self.slots.set(&p.key, "sum", sum);
        }
        self.slots.step = t;
        Ok(())
    }

    fn lr_mut(&mut self) -> &mut f64 {
        &mut self.config.lr
    }

    fn slots(&self) -> &Slots {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut Slots {
        &mut self.slots
    }
}
