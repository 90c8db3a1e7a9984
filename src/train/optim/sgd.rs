//! SGD with momentum, dampening, Nesterov and coupled weight decay (`torch.optim.SGD`).

use candle_core::backprop::GradStore;
use candle_core::Result;

use super::{effective_grad, Optimizer, Param, Slots};

#[derive(Clone, Debug)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

pub struct Sgd {
    params: Vec<Param>,
    pub config: SgdConfig,
    slots: Slots,
}

impl Sgd {
    pub fn new(params: Vec<Param>, config: SgdConfig) -> Result<Sgd> {
        if config.nesterov && (config.momentum <= 0.0 || config.dampening != 0.0) {
            candle_core::bail!("Nesterov momentum needs momentum > 0 and dampening 0");
        }
        Ok(Sgd { params, config, slots: Slots::default() })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let c = &self.config;
        for p in &self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else { continue };
            let mut d = effective_grad(&p.var, g, c.weight_decay, c.maximize)?;
            if c.momentum != 0.0 {
                // The buffer starts as the gradient itself, undamped (PyTorch's first step).
                let b = match self.slots.get(&p.key, "momentum_buffer") {
                    Some(b) => ((b * c.momentum)? + (&d * (1.0 - c.dampening))?)?,
                    None => d.clone(),
                };
                d = if c.nesterov { (&d + (&b * c.momentum)?)? } else { b.clone() };
                self.slots.set(&p.key, "momentum_buffer", b);
            }
            p.var.set(&(p.var.as_tensor() - (d * c.lr)?)?)?;
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
