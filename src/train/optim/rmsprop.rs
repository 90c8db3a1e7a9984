//! RMSprop (`torch.optim.RMSprop`): a running mean of squared gradients, optionally centred by
//! the running mean gradient, optionally with momentum.

use candle_core::{Result, Tensor};

use super::{effective_grad, Optim, Param, Rule, Slots};

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

pub type RmsProp = Optim<RmsPropConfig>;

impl RmsProp {
    pub fn new(params: Vec<Param>, config: RmsPropConfig) -> RmsProp {
        Optim::with(params, config)
    }
}

impl Rule for RmsPropConfig {
    fn lr_mut(&mut self) -> &mut f64 {
        &mut self.lr
    }

    fn update(&self, p: &Param, g: &Tensor, _t: u64, slots: &mut Slots) -> Result<()> {
        let c = self;
        let g = effective_grad(&p.var, g, c.weight_decay, c.maximize)?;
        let zeros = || g.zeros_like();
        let sq = slots.get(&p.key, "square_avg").cloned().map_or_else(zeros, Ok)?;
        let sq = ((sq * c.alpha)? + (g.sqr()? * (1.0 - c.alpha))?)?;
        let avg = if c.centered {
            let ga = slots.get(&p.key, "grad_avg").cloned().map_or_else(zeros, Ok)?;
            let ga = ((ga * c.alpha)? + (&g * (1.0 - c.alpha))?)?;
            let avg = ((&sq - ga.sqr()?)?.sqrt()? + c.eps)?;
            slots.set(&p.key, "grad_avg", ga);
            avg
        } else {
            (sq.sqrt()? + c.eps)?
        };
        let step = if c.momentum > 0.0 {
            let buf = slots.get(&p.key, "momentum_buffer").cloned().map_or_else(zeros, Ok)?;
            let buf = ((buf * c.momentum)? + (&g / &avg)?)?;
            slots.set(&p.key, "momentum_buffer", buf.clone());
            buf
        } else {
            (&g / &avg)?
        };
        p.var.set(&(p.var.as_tensor() - (step * c.lr)?)?)?;
        slots.set(&p.key, "square_avg", sq);
        Ok(())
    }
}
