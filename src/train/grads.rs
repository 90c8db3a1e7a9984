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

/// Clip in place: by the total norm of every gradient together (`clip_grad_norm_`, with its
/// 1e-6), or element-wise.
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
        Clip::Norm { max, norm_type } => {
            let total = total_norm(present.iter().map(|(_, g)| g), norm_type)?;
            let coef = max / (total + 1e-6);
            if coef < 1.0 {
                for (t, g) in present {
                    grads.insert(t, (g * coef)?);
                }
            }
        }
    }
    Ok(())
}

/// The `p`-norm of all of `grads` as one vector: `(sum |g|^p)^(1/p)`, the largest |g| for
/// `p = inf`; in f64.
fn total_norm<'a>(grads: impl Iterator<Item = &'a Tensor>, p: f64) -> candle_core::Result<f64> {
    let mut total = 0.0f64;
    for g in grads {
        let g = g.to_dtype(DType::F64)?;
        total = match p {
            f64::INFINITY => total.max(g.abs()?.max_all()?.to_scalar::<f64>()?),
            2.0 => total + g.sqr()?.sum_all()?.to_scalar::<f64>()?,
            _ => total + g.abs()?.powf(p)?.sum_all()?.to_scalar::<f64>()?,
        };
    }
    Ok(match p {
        f64::INFINITY => total,
        2.0 => total.sqrt(),
        _ => total.powf(1.0 / p),
    })
}
