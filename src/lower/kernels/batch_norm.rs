//! Batch norm in training mode, with its affine part, as one CPU op with its own backward.
//! On candle's primitives the per-channel statistics are means over the batch and spatial
//! axes, which candle 0.11 reduces element by element through strided indices, and every
//! broadcast's backward (the mean's, the weight's, the bias's) is such a sum again: 22% of a
//! 64x64 DCGAN's training step. Here each channel's values are a few contiguous runs (one per
//! sample), walked twice forward and twice backward.
//!
//! Per channel over its `M = N * spatial` values, with `x̂ = (x - mean) * rstd` and
//! `rstd = 1 / sqrt(var + eps)` (biased variance):
//! `dx = rstd * w * (g - mean(g) - x̂ * mean(g * x̂))`, `dw = Σ g * x̂`, `db = Σ g`.
//! The statistics are taken once, in f64, and kept for the backward: forward, two passes for
//! them and one to normalise; backward, one pass for both sums and one for `dx`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType};

use super::norm::BatchNorm as BatchNormLayer;
use crate::lower::fold::{ChannelAffine, Role};
use crate::lower::{Forward, ForwardCtx};

use super::cpu::{affine_bwd, for_float, slice, with_slice, AffineBackward, Elem};

/// `x` `[N, C, ...]` normalised per channel with the batch's statistics, scaled by `weight`
/// `[C]` and shifted by `bias` `[C]`; also each channel's mean and biased variance (`[C]`, f64,
/// detached), which the running statistics move toward. The caller checks the device and
/// dtype (see `on_cpu_float`).
pub fn batch_norm_train(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<(Tensor, Vec<f64>, Vec<f64>)> {
    let (n, c) = (x.dim(0)?, x.dim(1)?);
    let runs = x.contiguous()?.reshape((n, c, x.elem_count() / (n * c).max(1)))?;
    // The statistics are taken once, here, and kept in the op for its forward and backward.
    let (mean, var) = for_float!(x.dtype(), T => with_slice(&runs, |v: &[T]| moments_all(v, n, c))?);
    let rstd = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let op = BatchNorm { mean: mean.clone(), rstd };
    let y = runs.apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?.reshape(x.shape())?;
    Ok((y, mean, var))
}

/// The batch's statistics per channel: its mean and `1 / sqrt(var + eps)`.
struct BatchNorm {
    mean: Vec<f64>,
    rstd: Vec<f64>,
}

/// Partial sums kept apart, so that the adds of a long reduction do not wait on one another
/// and vectorize (a single f64 sum is a chain of dependent adds: most of the kernel's time).
const LANES: usize = 8;

/// `Σ f(v)` over `values`, in f64, into the lanes of `acc`.
fn sum_into<T: Elem>(acc: &mut [f64; LANES], values: &[T], f: impl Fn(f64) -> f64) {
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += f(v.to_f64());
        }
    }
    for (a, v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(v.to_f64());
    }
}

/// Channel `ch`'s runs of `x` `[n, c, s]`: one contiguous slice per sample.
fn runs<T>(x: &[T], n: usize, c: usize, ch: usize) -> impl Iterator<Item = &[T]> {
    let s = x.len() / (n * c).max(1);
    (0..n).map(move |i| &x[(i * c + ch) * s..(i * c + ch + 1) * s])
}

/// A channel's mean and biased variance, in f64 (two passes).
fn moments<T: Elem>(x: &[T], n: usize, c: usize, ch: usize) -> (f64, f64) {
    let count = (x.len() / c.max(1)) as f64;
    let (mut sum, mut sq) = ([0.0; LANES], [0.0; LANES]);
    runs(x, n, c, ch).for_each(|r| sum_into(&mut sum, r, |v| v));
    let mean = sum.iter().sum::<f64>() / count;
    runs(x, n, c, ch).for_each(|r| sum_into(&mut sq, r, |v| (v - mean) * (v - mean)));
    (mean, sq.iter().sum::<f64>() / count)
}

fn moments_all<T: Elem>(x: &[T], n: usize, c: usize) -> (Vec<f64>, Vec<f64>) {
    (0..c).map(|ch| moments(x, n, c, ch)).unzip()
}

impl BatchNorm {
    fn forward<T: Elem>(&self, x: &[T], w: &[T], b: &[T], n: usize) -> Vec<T> {
        let (c, s) = (w.len(), x.len() / (n * w.len()).max(1));
        let mut y = vec![T::from_f64(0.0); x.len()];
        for ch in 0..c {
            let scale = self.rstd[ch] * w[ch].to_f64();
            let shift = b[ch].to_f64() - self.mean[ch] * scale;
            let (scale, shift) = (T::from_f64(scale), T::from_f64(shift));
            for i in 0..n {
                let at = (i * c + ch) * s;
                for (y, x) in y[at..at + s].iter_mut().zip(&x[at..at + s]) {
                    *y = *x * scale + shift;
                }
            }
        }
        y
    }
}

impl AffineBackward for BatchNorm {
    fn backward<T: Elem>(&self, x: &[T], w: &[T], g: &[T], n: usize) -> (Vec<T>, Vec<T>, Vec<T>) {
        let (c, s) = (w.len(), x.len() / (n * w.len()).max(1));
        let count = (n * s) as f64;
        let zero = T::from_f64(0.0);
        let (mut dx, mut dw, mut db) = (vec![zero; x.len()], vec![zero; c], vec![zero; c]);
        for ch in 0..c {
            let (mean, rstd) = (self.mean[ch], self.rstd[ch]);
            // Σ g and Σ g * x̂ = rstd * (Σ g * x - mean * Σ g), in one pass.
            let (mut g_acc, mut gx_acc) = ([0.0; LANES], [0.0; LANES]);
            for (xr, gr) in runs(x, n, c, ch).zip(runs(g, n, c, ch)) {
                sum_into(&mut g_acc, gr, |g| g);
                let (mut xs, mut gs) = (xr.chunks_exact(LANES), gr.chunks_exact(LANES));
                for (xc, gc) in (&mut xs).zip(&mut gs) {
                    for ((a, x), g) in gx_acc.iter_mut().zip(xc).zip(gc) {
                        *a += x.to_f64() * g.to_f64();
                    }
                }
                for ((a, x), g) in gx_acc.iter_mut().zip(xs.remainder()).zip(gs.remainder()) {
                    *a += x.to_f64() * g.to_f64();
                }
            }
            let g_sum: f64 = g_acc.iter().sum();
            let g_xhat_sum = rstd * (gx_acc.iter().sum::<f64>() - mean * g_sum);
            dw[ch] = T::from_f64(g_xhat_sum);
            db[ch] = T::from_f64(g_sum);
            // dx = k * (g - mean(g) - x̂ * mean(g x̂)), as one affine map of g and x per channel.
            let (g_mean, g_xhat_mean) = (g_sum / count, g_xhat_sum / count);
            let k = rstd * w[ch].to_f64();
            let (per_x, constant) = (-k * rstd * g_xhat_mean, k * (rstd * g_xhat_mean * mean - g_mean));
            for i in 0..n {
                let at = (i * c + ch) * s;
                for ((dx, x), g) in dx[at..at + s].iter_mut().zip(&x[at..at + s]).zip(&g[at..at + s]) {
                    *dx = T::from_f64(k * g.to_f64() + per_x * x.to_f64() + constant);
                }
            }
        }
        (dx, dw, db)
    }
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "batch_norm"
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
        let (n, c) = match l1.dims() {
            [n, c, _] => (*n, *c),
            other => candle_core::bail!("batch_norm: expected [N, C, S], found {other:?}"),
        };
        if c == 0 || c != self.mean.len() || l2.shape().elem_count() != c || l3.shape().elem_count() != c {
            candle_core::bail!(
                "batch_norm: weight {:?} and bias {:?} for {:?}",
                l2.shape(),
                l3.shape(),
                l1.shape()
            );
        }
        let y = for_float!(s1.dtype(), T => {
            T::to_cpu_storage_owned(self.forward(slice::<T>(s1, l1)?, slice::<T>(s2, l2)?, slice::<T>(s3, l3)?, n))
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

/// A batch norm layer: in eval mode with running statistics, the per-channel affine map that
/// inference folds into the layer before it (`lower::fold`).
impl Forward for BatchNormLayer {
    fn forward(&self, inputs: &[Tensor], ctx: &mut ForwardCtx) -> Result<Vec<Tensor>> {
        match inputs {
            [x] => Ok(vec![BatchNormLayer::forward(self, x, ctx.train)?]),
            _ => candle_core::bail!("expected 1 input, found {}", inputs.len()),
        }
    }

    fn fold_role(&self) -> Role<'_> {
        match self.running {
            Some(_) => Role::Affine(self),
            None => Role::None,
        }
    }
}

impl ChannelAffine for BatchNormLayer {
    /// `scale = weight / sqrt(running_var + eps)`, `shift = bias - running_mean * scale`.
    fn eval_affine(&self) -> Result<(Tensor, Tensor)> {
        let Some((mean, var)) = &self.running else {
            candle_core::bail!("a batch norm without running statistics has no fixed map")
        };
        let f64 = |t: &Tensor| t.detach().to_dtype(DType::F64);
        let (mean, var) = (f64(mean.as_tensor())?, f64(var.as_tensor())?);
        let rstd = (var + self.eps)?.sqrt()?.recip()?;
        let scale = match &self.weight {
            Some(w) => (f64(w)? * rstd)?,
            None => rstd,
        };
        let shift = match &self.bias {
            Some(b) => (f64(b)? - (&mean * &scale)?)?,
            None => (&mean * &scale)?.neg()?,
        };
        Ok((scale, shift))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;
    use crate::lower::gradcheck::{check_fn, wave};
    use crate::lower::kernels::norm::{affine, standardize};
    use crate::lower::kernels::per_channel;

    #[test]
    fn gradcheck_on_odd_non_square_maps() {
        let (x, w, b) = (wave(&[3, 5, 2, 7], 1.3, 0.2), wave(&[5], 1.1, 1.0), wave(&[5], 0.9, 2.0));
        let vars = [("x".to_string(), x.clone()), ("w".to_string(), w.clone()), ("b".to_string(), b.clone())];
        let report = check_fn(&vars, || {
            // A weighted sum, so that the gradient reaching the norm is not uniform.
            let y = batch_norm_train(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5)?.0;
            Ok(vec![(y.clone() * y.sin()?)?])
        })
        .unwrap();
        report.assert_within(1e-6);
    }

    #[test]
    fn equals_the_primitive_composition_and_gives_the_batch_moments() {
        let (x, w, b): (Var, Var, Var) =
            (wave(&[4, 3, 5, 2], 1.7, 0.5), wave(&[3], 1.5, 1.0), wave(&[3], 0.5, 2.5));
        let (x, w, b) = (x.as_tensor(), w.as_tensor(), b.as_tensor());
        let (fused, mean, var) = batch_norm_train(x, w, b, 1e-5).unwrap();
        let (y, m, v) = standardize(x, &[0, 2, 3], 1e-5).unwrap();
        let composed =
            affine(y, Some(&per_channel(w, 4).unwrap()), Some(&per_channel(b, 4).unwrap())).unwrap();
        let diff = (fused - composed).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        assert!(diff.to_scalar::<f64>().unwrap() < 1e-12);
        let close = |a: &[f64], t: &Tensor| {
            let t = t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            a.iter().zip(&t).all(|(a, b)| (a - b).abs() < 1e-12)
        };
        assert!(close(&mean, &m) && close(&var, &v), "{mean:?} {var:?}");
    }
}
