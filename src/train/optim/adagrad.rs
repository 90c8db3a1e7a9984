//! Adagrad (`torch.optim.Adagrad`): per-element rates from the sum of squared gradients, with
//! an optional decay of the base rate over steps.

use candle_core::{Result, Tensor};

use super::{effective_grad, Optim, Param, Rule, Slots};

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

pub type Adagrad = Optim<AdagradConfig>;

impl Adagrad {
    pub fn new(params: Vec<Param>, config: AdagradConfig) -> Adagrad {
        Optim::with(params, config)
    }
}

impl Rule for AdagradConfig {
    fn lr_mut(&mut self) -> &mut f64 {
        &mut self.lr
    }

    fn update(&self, p: &Param, g: &Tensor, t: u64, slots: &mut Slots) -> Result<()> {
        let clr = self.lr / (1.0 + (t - 1) as f64 * self.lr_decay);
        let g = effective_grad(&p.var, g, self.weight_decay, self.maximize)?;
        let sum = match slots.get(&p.key, "sum") {
            Some(s) => s.clone(),
            None => (g.zeros_like()? + self.initial_accumulator_value)?,
        };
        let sum = (sum + g.sqr()?)?;
        let update = ((&g / (sum.sqrt()? + self.eps)?)? * clr)?;
        p.var.set(&(p.var.as_tensor() - update)?)?;
        slots.set(&p.key, "sum", sum);
        Ok(())
    }
}
