//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`): one rule, the weight decay either
//! coupled (added to the gradient) or decoupled (the parameter shrinks before the step).

use candle_core::{Result, Tensor};

use super::{effective_grad, in_place, Optim, Param, Rule, Slots};

#[derive(Clone, Debug)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW: `p <- p * (1 - lr * wd)` before the step instead of `g + wd * p`.
    pub decoupled: bool,
    pub amsgrad: bool,
    pub maximize: bool,
}

impl AdamConfig {
    /// `torch.optim.Adam`'s defaults.
    pub fn adam() -> AdamConfig {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
            maximize: false,
        }
    }

    /// `torch.optim.AdamW`'s defaults (weight decay 0.01, decoupled).
    pub fn adamw() -> AdamConfig {
        AdamConfig { weight_decay: 0.01, decoupled: true, ..AdamConfig::adam() }
    }
}

pub type Adam = Optim<AdamConfig>;

impl Adam {
    pub fn new(params: Vec<Param>, config: AdamConfig) -> Adam {
        Optim::with(params, config)
    }
}

impl Rule for AdamConfig {
    fn lr_mut(&mut self) -> &mut f64 {
        &mut self.lr
    }

    fn update(&self, p: &Param, g: &Tensor, t: u64, slots: &mut Slots) -> Result<()> {
        let c = self;
        let (bias1, bias2) = (1.0 - c.beta1.powi(t as i32), 1.0 - c.beta2.powi(t as i32));
        let coupled = if c.decoupled { 0.0 } else { c.weight_decay };
        let g = effective_grad(&p.var, g, coupled, c.maximize)?;
        if c.decoupled && c.weight_decay != 0.0 {
            p.var.set(&(p.var.as_tensor() * (1.0 - c.lr * c.weight_decay))?)?;
        }
        let zeros = || g.zeros_like();
        let m = slots.get(&p.key, "exp_avg").cloned().map_or_else(zeros, Ok)?;
        let v = slots.get(&p.key, "exp_avg_sq").cloned().map_or_else(zeros, Ok)?;
        let g = g.contiguous()?;
        if !c.amsgrad && in_place::applies(&[p.var.as_tensor(), &g, &m, &v]) {
            in_place::moment(&m, &g, c.beta1, false)?;
            in_place::moment(&v, &g, c.beta2, true)?;
            in_place::adam_update(p.var.as_tensor(), &m, &v, c.lr / bias1, bias2.sqrt(), c.eps)?;
            slots.set(&p.key, "exp_avg", m);
            slots.set(&p.key, "exp_avg_sq", v);
            return Ok(());
        }
        let m = ((m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
        let v = ((v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
        let v_hat = if c.amsgrad {
            let max = slots.get(&p.key, "max_exp_avg_sq").cloned().map_or_else(zeros, Ok)?;
            let max = max.maximum(&v)?;
            slots.set(&p.key, "max_exp_avg_sq", max.clone());
            max
        } else {
            v.clone()
        };
        // PyTorch's order: sqrt(v) / sqrt(bias2) + eps, then lr / bias1 on the ratio.
        let denom = ((v_hat.sqrt()? / bias2.sqrt())? + c.eps)?;
        let update = ((&m / denom)? * (c.lr / bias1))?;
        p.var.set(&(p.var.as_tensor() - update)?)?;
        slots.set(&p.key, "exp_avg", m);
        slots.set(&p.key, "exp_avg_sq", v);
        Ok(())
    }
}
