//! `x W^T + b` over the last axis of `x`, any leading axes: one 2-D product for all of them.
//! Linear layers, attention's projections and the recurrent cells' gates all use it.
//!
//! On the CPU it is one op with its own backward: the bias is the product's starting value and
//! its gradient a row sum. On candle's primitives it is a transposed view, a product, a bias
//! add and two reshapes, each gradient of which candle accumulates into a fresh zeroed buffer.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Result, Shape, Tensor, WithDType};

use super::bias::sum_rows;
use super::cpu::{for_float, on_cpu_float, slice, Elem};
use super::gemm::{matmul_into, Mat};
use super::weighted::{apply, Grads, Operand, WeightedOp};

/// `x` is `[..., in]`, `weight` `[out, in]`, `bias` `[out]`; the result is `[..., out]`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (out, in_features) = weight.dims2()?;
    let same_dtype = weight.dtype() == x.dtype() && bias.is_none_or(|b| b.dtype() == x.dtype());
    if on_cpu_float(x) && same_dtype && x.dims().last() == Some(&in_features) {
        // Leading axes stay on the op, not reshapes around it: candle's backward adds each
        // reshape's gradient into a fresh zeroed buffer, two passes over the activations.
        return apply(x, weight, bias, Linear);
    }
    let rows = x.reshape((x.elem_count() / in_features.max(1), in_features))?;
    let y = rows.matmul(&weight.t()?)?;
    let y = match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut shape = x.dims().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = out;
    }
    y.reshape(shape)
}

/// The op on `x` `[..., K]` (`M` rows of `K`), `weight` `[N, K]` and an optional `bias` `[N]`.
struct Linear;

impl Linear {
    fn forward<T: Elem>(x: &[T], (w, k): (&[T], usize), bias: Option<&[T]>) -> Result<Vec<T>> {
        let (m, n) = (x.len() / k.max(1), w.len() / k.max(1));
        let mut y = match bias {
            Some(b) => {
                let mut y = Vec::with_capacity(m * n);
                (0..m).for_each(|_| y.extend_from_slice(b));
                y
            }
            None => vec![T::from_f64(0.0); m * n],
        };
        matmul_into(&mut y, Mat::rows(x, m, k), Mat::rows(w, n, k).t(), bias.is_some())?;
        Ok(y)
    }
}

impl WeightedOp for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu(&self, x: Operand<'_>, w: Operand<'_>, b: Option<Operand<'_>>) -> Result<(CpuStorage, Shape)> {
        let (Some((k, lead)), [n, k2]) = (x.1.dims().split_last(), w.1.dims()) else {
            candle_core::bail!(
                "linear takes [..., K] and [N, K], found {:?} and {:?}",
                x.1.shape(),
                w.1.shape()
            )
        };
        if k != k2 || b.is_some_and(|(_, l)| l.shape().elem_count() != *n) {
            candle_core::bail!(
                "linear: input {:?}, weight {:?}, bias {:?}",
                x.1.shape(),
                w.1.shape(),
                b.map(|b| b.1.shape())
            );
        }
        let shape = Shape::from([lead, &[*n]].concat());
        let y = for_float!(x.0.dtype(), T => {
            let bias = b.map(|(s, l)| slice::<T>(s, l)).transpose()?;
            T::to_cpu_storage_owned(Self::forward(slice::<T>(x.0, x.1)?, (slice::<T>(w.0, w.1)?, *k), bias)?)
        });
        Ok((y, shape))
    }

    /// `dx = g W`, `dW = g^T x`, `db` = the row sums of `g`, each where it is tracked.
    fn backward(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, grad: &Tensor) -> Result<Grads> {
        // Detached: a gradient that kept the forward's graph would keep every step's alive
        // through the optimizer's running averages.
        let (n, k) = w.dims2()?;
        let grad = grad.detach().contiguous()?;
        let grad = grad.reshape((grad.elem_count() / n.max(1), n))?;
        let rows = |t: &Tensor| t.detach().reshape((t.elem_count() / k.max(1), k));
        let dx = if x.track_op() { Some(grad.matmul(&w.detach())?.reshape(x.shape())?) } else { None };
        let dw = if w.track_op() { Some(grad.t()?.matmul(&rows(x)?)?) } else { None };
        let db = match bias {
            Some(b) if b.track_op() => Some(sum_rows(&grad)?),
            _ => None,
        };
        Ok((dx, dw, db))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;
    use crate::lower::gradcheck::{check_fn, wave};

    fn var(shape: &[usize], phase: f64) -> Var {
        wave(shape, 0.77, phase)
    }

    #[test]
    fn gradcheck_with_and_without_bias_on_three_axes() {
        let (x, w, b) = (var(&[2, 3, 5], 0.1), var(&[7, 5], 0.9), var(&[7], 1.7));
        let vars = [("x".to_string(), x.clone()), ("w".to_string(), w.clone()), ("b".to_string(), b.clone())];
        let report = check_fn(&vars, || {
            let (x, w) = (x.as_tensor(), w.as_tensor());
            Ok(vec![linear(x, w, Some(b.as_tensor()))?, linear(x, w, None)?])
        });
        report.unwrap().assert_within(1e-7);
    }

    #[test]
    fn equals_the_primitive_product_on_leading_axes() {
        let (x, w, b) = (var(&[2, 4, 6], 0.3), var(&[3, 6], 1.1), var(&[3], 2.1));
        let fused = linear(x.as_tensor(), w.as_tensor(), Some(b.as_tensor())).unwrap();
        assert_eq!(fused.dims(), [2, 4, 3]);
        let rows = x.as_tensor().reshape((8, 6)).unwrap();
        let composed =
            rows.matmul(&w.as_tensor().t().unwrap()).unwrap().broadcast_add(b.as_tensor()).unwrap();
        let composed = composed.reshape((2, 4, 3)).unwrap();
        let diff = (fused - composed).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        assert!(diff.to_scalar::<f64>().unwrap() < 1e-14);
    }

    #[test]
    fn gradients_carry_no_graph() {
        // A graph on a weight's gradient kept each training step's forward alive (3.7 GB
        // after a few hundred steps of the small CNN bench) through Adam's averages.
        let (x, w, b) = (var(&[4, 6], 0.3), var(&[3, 6], 1.1), var(&[3], 2.1));
        let hidden = linear(x.as_tensor(), w.as_tensor(), Some(b.as_tensor())).unwrap();
        let y = linear(
            &hidden,
            w.as_tensor().narrow(1, 0, 3).unwrap().t().unwrap().contiguous().as_ref().unwrap(),
            None,
        );
        let grads = y.unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w, &b] {
            assert!(!grads.get(v.as_tensor()).unwrap().track_op());
        }
    }
}
