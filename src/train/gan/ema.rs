//! An exponential moving average of the generator's weights (StyleGAN's `G_ema`): after each
//! generator update, `avg = decay * avg + (1 - decay) * w` for every trainable parameter. The
//! averages are what the samples and the generator's weights file hold; buffers (batch-norm
//! statistics) are the live model's.

use std::collections::BTreeMap;

use candle_core::{Result, Tensor};

use crate::train::optim::Param;

pub struct Ema {
    pub decay: f64,
    averages: BTreeMap<String, Tensor>,
}

impl Ema {
    /// The averages' namespace in a checkpoint's optimizer section.
    pub const NAMESPACE: &'static str = "ema";

    /// Averages starting at the parameters' current values.
    pub fn new(decay: f64, params: &[Param]) -> Result<Ema> {
        let averages =
            params.iter().map(|p| Ok((p.key.clone(), p.var.as_tensor().copy()?))).collect::<Result<_>>()?;
        Ok(Ema { decay, averages })
    }

    pub fn update(&mut self, params: &[Param]) -> Result<()> {
        for p in params {
            if let Some(avg) = self.averages.get_mut(&p.key) {
                *avg = ((&*avg * self.decay)? + (p.var.as_tensor().detach() * (1.0 - self.decay))?)?;
            }
        }
        Ok(())
    }

    /// The averages by parameter key.
    pub fn averages(&self) -> BTreeMap<String, Tensor> {
        self.averages.clone()
    }

    /// Put back averages a checkpoint held (keys it does not know are refused).
    pub fn restore<'a>(&mut self, saved: impl Iterator<Item = (&'a str, &'a Tensor)>) -> Result<()> {
        for (key, t) in saved {
            match self.averages.get_mut(key) {
                Some(avg) => *avg = t.to_dtype(avg.dtype())?.to_device(avg.device())?,
                None => candle_core::bail!(
                    "the checkpoint's generator average has `{key}`, which the model has not"
                ),
            }
        }
        Ok(())
    }

    /// Run `f` with the averages in the parameters, then put the live values back.
    pub fn swapped_in<R>(&self, params: &[Param], f: impl FnOnce() -> Result<R>) -> Result<R> {
        let live: Vec<Tensor> = params.iter().map(|p| p.var.as_tensor().copy()).collect::<Result<_>>()?;
        for p in params {
            if let Some(avg) = self.averages.get(&p.key) {
                p.var.set(avg)?;
            }
        }
        let result = f();
        for (p, value) in params.iter().zip(&live) {
            p.var.set(value)?;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn the_average_moves_by_one_minus_decay_and_swaps_in_and_out() {
        let var = Var::new(&[1.0f64, 2.0], &Device::Cpu).unwrap();
        let params = vec![Param { key: "w".into(), var: var.clone() }];
        let mut ema = Ema::new(0.5, &params).unwrap();
        var.set(&Tensor::new(&[11.0f64, 2.0], &Device::Cpu).unwrap()).unwrap();
        ema.update(&params).unwrap();
        assert_eq!(ema.averages()["w"].to_vec1::<f64>().unwrap(), vec![6.0, 2.0]);
        let seen = ema.swapped_in(&params, || var.as_tensor().to_vec1::<f64>()).unwrap();
        assert_eq!(seen, vec![6.0, 2.0]);
        assert_eq!(var.as_tensor().to_vec1::<f64>().unwrap(), vec![11.0, 2.0]);
    }
}
