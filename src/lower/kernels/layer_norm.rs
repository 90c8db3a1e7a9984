//! Layer norm with its affine part as one CPU op with its own backward. On candle's
//! primitives a layer norm is eight ops (mean, subtract, square, mean, add, root, divide, then
//! scale and shift), each with a fresh buffer and its own backward, and the weight and bias
//! gradients are sums over leading axes, which candle 0.11 walks element by element. Here the
//! forward is one pass per row and the backward two, recomputing each row's statistics
//! instead of keeping them.
//!
//! Per row of `F` features, with `x̂ = (x - mean) * rstd` and `rstd = 1 / sqrt(var + eps)`:
//! `dx = rstd * (g·w - mean(g·w) - x̂ * mean(g·w * x̂))`, `dw = Σ_rows g * x̂`, `db = Σ_rows g`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};

use super::cpu::{affine_bwd, for_float, slice, AffineBackward, Elem};

/// `x` `[..., F]` normalised over its last axis, scaled by `weight` `[F]` and shifted by `bias`
/// `[F]`. The caller checks the device and dtype (see `on_cpu_float`).
pub fn layer_norm_affine(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNorm { eps })
}

struct LayerNorm {
    eps: f64,
}

/// A row's mean and reciprocal standard deviation (biased variance, two passes).
fn moments<T: Elem>(row: &[T], eps: f64) -> (T, T) {
    let n = T::from_f64(row.len() as f64);
    let mean = row.iter().fold(T::from_f64(0.0), |s, v| s + *v) / n;
    let var = row.iter().fold(T::from_f64(0.0), |s, v| s + (*v - mean) * (*v - mean)) / n;
    (mean, T::from_f64(1.0) / (var + T::from_f64(eps)).sqrt())
}

impl LayerNorm {
    fn forward<T: Elem>(&self, x: &[T], w: &[T], b: &[T]) -> Vec<T> {
        let mut y = vec![T::from_f64(0.0); x.len()];
        for (xr, yr) in x.chunks_exact(w.len()).zip(y.chunks_exact_mut(w.len())) {
            let (mean, rstd) = moments(xr, self.eps);
            for (((y, x), w), b) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                *y = (*x - mean) * rstd * *w + *b;
            }
        }
        y
    }
}

impl AffineBackward for LayerNorm {
    /// Rows are independent: `_rows` is not needed.
    fn backward<T: Elem>(&self, x: &[T], w: &[T], g: &[T], _rows: usize) -> (Vec<T>, Vec<T>, Vec<T>) {
        let (f, zero) = (w.len(), T::from_f64(0.0));
        let n = T::from_f64(f as f64);
        let (mut dx, mut dw, mut db) = (vec![zero; x.len()], vec![zero; f], vec![zero; f]);
        for ((xr, gr), dxr) in x.chunks_exact(f).zip(g.chunks_exact(f)).zip(dx.chunks_exact_mut(f)) {
            let (mean, rstd) = moments(xr, self.eps);
            let (mut gw_sum, mut gw_xhat_sum) = (zero, zero);
            for ((((x, g), w), dw), db) in xr.iter().zip(gr).zip(w).zip(dw.iter_mut()).zip(db.iter_mut()) {
                let xhat = (*x - mean) * rstd;
                let gw = *g * *w;
                gw_sum += gw;
                gw_xhat_sum += gw * xhat;
                *dw += *g * xhat;
                *db += *g;
            }
            let (gw_mean, gw_xhat_mean) = (gw_sum / n, gw_xhat_sum / n);
            for (((dx, x), g), w) in dxr.iter_mut().zip(xr).zip(gr).zip(w) {
                let xhat = (*x - mean) * rstd;
                *dx = rstd * (*g * *w - gw_mean - xhat * gw_xhat_mean);
            }
        }
        (dx, dw, db)
    }
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer_norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let features = l1.dims().last().copied().unwrap_or(0);
        if features == 0 || l2.shape().elem_count() != features || l3.shape().elem_count() != features {
            candle_core::bail!(
                "layer_norm: weight {:?} and bias {:?} for {:?}",
                l2.shape(),
                l3.shape(),
                l1.shape()
            );
        }
        let y = for_float!(s1.dtype(), T => {
            T::to_cpu_storage_owned(self.forward(slice::<T>(s1, l1)?, slice::<T>(s2, l2)?, slice::<T>(s3, l3)?))
        });
        Ok((y, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        affine_bwd(self, x, w, b, grad)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Var, D};

    use super::*;
    use crate::lower::gradcheck::{check_fn, wave};
    use crate::lower::kernels::norm::{affine, standardize};

    fn var(shape: &[usize], phase: f64) -> Var {
        wave(shape, 1.3, phase)
    }

    #[test]
    fn gradcheck_rows_of_seven() {
        let (x, w, b) = (var(&[3, 5, 7], 0.2), var(&[7], 1.0), var(&[7], 2.0));
        let vars = [("x".to_string(), x.clone()), ("w".to_string(), w.clone()), ("b".to_string(), b.clone())];
        let report = check_fn(&vars, || {
            Ok(vec![layer_norm_affine(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5)?])
        })
        .unwrap();
        report.assert_within(1e-6);
    }

    #[test]
    fn equals_the_primitive_composition() {
        let (x, w, b) = (var(&[4, 9], 0.5), var(&[9], 1.5), var(&[9], 2.5));
        let (x, w, b) = (x.as_tensor(), w.as_tensor(), b.as_tensor());
        let fused = layer_norm_affine(x, w, b, 1e-5).unwrap();
        let (y, _, _) = standardize(x, &[1], 1e-5).unwrap();
        let composed = affine(y, Some(w), Some(b)).unwrap();
        let diff = (fused - composed).unwrap().abs().unwrap().max(D::Minus1).unwrap().max(0).unwrap();
        assert!(diff.to_scalar::<f64>().unwrap() < 1e-12);
    }
}
