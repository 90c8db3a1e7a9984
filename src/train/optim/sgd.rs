//! SGD with momentum, dampening, Nesterov and coupled weight decay (`torch.optim.SGD`).

use candle_core::{Result, Tensor};

use super::in_place::{self, Direction};
use super::{effective_grad, Optim, Param, Rule, Slots};

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

pub type Sgd = Optim<SgdConfig>;

impl Sgd {
    pub fn new(params: Vec<Param>, config: SgdConfig) -> Result<Sgd> {
        if config.nesterov && (config.momentum <= 0.0 || config.dampening != 0.0) {
            candle_core::bail!("Nesterov momentum needs momentum > 0 and dampening 0");
        }
        Ok(Optim::with(params, config))
    }
}

impl SgdConfig {
    /// The step in place (see `in_place`) where the tensors allow it: false, and nothing
    /// done, where they do not.
    fn step_in_place(&self, p: &Param, d: &Tensor, slots: &mut Slots) -> Result<bool> {
        let d = d.contiguous()?;
        if self.momentum == 0.0 {
            if !in_place::applies(&[p.var.as_tensor(), &d]) {
                return Ok(false);
            }
            in_place::sgd_update(p.var.as_tensor(), &d, &d, self.lr, Direction::Gradient)?;
            return Ok(true);
        }
        let buffer = match slots.get(&p.key, "momentum_buffer") {
            Some(b) if in_place::applies(&[p.var.as_tensor(), &d, b]) => {
                in_place::momentum(b, &d, self.momentum, self.dampening)?;
                b.clone()
            }
            Some(_) => return Ok(false),
            // The buffer starts as the gradient itself, undamped; a copy, as it is updated in place.
            None if in_place::applies(&[p.var.as_tensor(), &d]) => d.copy()?,
            None => return Ok(false),
        };
        let direction = match self.nesterov {
            true => Direction::Nesterov { momentum: self.momentum },
            false => Direction::Buffer,
        };
        in_place::sgd_update(p.var.as_tensor(), &d, &buffer, self.lr, direction)?;
        slots.set(&p.key, "momentum_buffer", buffer);
        Ok(true)
    }
}

impl Rule for SgdConfig {
    fn lr_mut(&mut self) -> &mut f64 {
        &mut self.lr
    }

    fn update(&self, p: &Param, g: &Tensor, _t: u64, slots: &mut Slots) -> Result<()> {
        let mut d = effective_grad(&p.var, g, self.weight_decay, self.maximize)?;
        if self.step_in_place(p, &d, slots)? {
            return Ok(());
        }
        if self.momentum != 0.0 {
            // The buffer starts as the gradient itself, undamped (PyTorch's first step).
            let b = match slots.get(&p.key, "momentum_buffer") {
                Some(b) => ((b * self.momentum)? + (&d * (1.0 - self.dampening))?)?,
                None => d.clone(),
            };
            d = if self.nesterov { (&d + (&b * self.momentum)?)? } else { b.clone() };
            slots.set(&p.key, "momentum_buffer", b);
        }
        p.var.set(&(p.var.as_tensor() - (d * self.lr)?)?)
    }
}
