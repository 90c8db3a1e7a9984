//! Gradient arithmetic between backward and the optimizer step: summing accumulated batches,
//! clipping, and the L1 penalty's term.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};

use super::config::Clip;
use super::optim::Optimizer;

/// `l1 * sum |p|` over the optimizer's parameters, or zero.
pub fn l1_penalty(optimizer: &dyn Optimizer, l1: f64) -> candle_core::Result<Tensor> {
    let params = optimizer.params();
    let Some(first) = params.first() else { return Tensor::new(0f32, &candle_core::Device::Cpu) };
    let zero = Tensor::zeros((), first.var.dtype(), first.var.device())?;
    if l1 == 0.0 {
        return Ok(zero);
    }
    let mut total = zero;
    for p in params {
        total = (total + p.var.as_tensor().abs()?.sum_all()?)?;
    }
    total * l1
}

pub fn add_grads(
    mut acc: GradStore,
    more: GradStore,
    optimizer: &dyn Optimizer,
) -> candle_core::Result<GradStore> {
    for p in optimizer.params() {
        let t = p.var.as_tensor();
        let sum = match (acc.get(t), more.get(t)) {
            (Some(a), Some(b)) => (a + b)?,
            (None, Some(b)) => b.clone(),
            _ => continue,
        };
        acc.insert(t, sum);
    }
    Ok(acc)
}

/// Clip in place: by global L2 norm (`clip_grad_norm_`, with its 1e-6) or element-wise.
pub fn clip_grads(grads: &mut GradStore, optimizer: &dyn Optimizer, clip: Clip) -> candle_core::Result<()> {
    let present: Vec<(&Tensor, Tensor)> = optimizer
        .params()
        .iter()
        .filter_map(|p| grads.get(p.var.as_tensor()).map(|g| (p.var.as_tensor(), g.clone())))
        .collect();
    match clip {
        Clip::Value(v) => {
            for (t, g) in present {
                grads.insert(t, g.clamp(-v, v)?);
            }
        }
        Clip::Norm(max) => {
            let mut sq = 0.0;
            for (_, g) in &present {
                sq += g.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
            }
            let coef = max / (sq.sqrt() + 1e-6);
            if coef < 1.0 {
                for (t, g) in present {
                    grads.insert(t, (g * coef)?);
                }
            }
        }
    }
    Ok(())
}
