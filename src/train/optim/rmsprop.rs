//! RMSprop (`torch.optim.RMSprop`): a running mean of squared gradients, optionally centred by
//! the running mean gradient, optionally with momentum.

use candle_core::backprop::GradStore;
use candle_core::Result;

use super::{effective_grad, Optimizer, Param, Slots};

#[derive(Clone, Debug)]
pub struct RmsPropConfig {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
    pub maximize: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

pub struct RmsProp {
    params: Vec<Param>,
    pub config: RmsPropConfig,
    slots: Slots,
}

impl RmsProp {
    pub fn new(params: Vec<Param>, config: RmsPropConfig) -> RmsProp {
        RmsProp { params, config, slots: Slots::default() }
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let c = &self.config;
        for p in &self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else { continue };
            let g = effective_grad(&p.var, g, c.weight_decay, c.maximize)?;
            let zeros = || g.zeros_like();
            let sq = self.slots.get(&p.key, "square_avg").cloned().map_or_else(zeros, Ok)?;
            let sq = ((sq * c.alpha)? + (g.sqr()? * (1.0 - c.alpha))?)?;
            let avg = if c.centered {
                let ga = self.slots.get(&p.key, "grad_avg").cloned().map_or_else(zeros, Ok)?;
                let ga = ((ga * c.alpha)? + (&g * (1.0 - c.alpha))?)?;
                let avg = ((&sq - ga.sqr()?)?.sqrt()? + c.eps)?;
                self.slots.set(&p.key, "grad_avg", ga);
                avg
            } else {
                (sq.sqrt()? + c.eps)?
            };
            let step = if c.momentum > 0.0 {
                let buf = self.slots.get(&p.key, "momentum_buffer").cloned().map_or_else(zeros, Ok)?;
                let buf = ((buf * c.momentum)? + (&g / &avg)?)?;
                self.slots.set(&p.key, "momentum_buffer", buf.clone());
                buf
            } else {
                (&g / &avg)?
            };
            p.var.set(&(p.var.as_tensor() - (step * c.lr)?)?)?;
            self.slots.set(&p.key, "square_avg", sq);
        }
        self.slots.step += 1;
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
