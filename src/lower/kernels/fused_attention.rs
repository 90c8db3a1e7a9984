//! Self-attention's core on the packed projections `[N, L, 3E]` as one CPU op with its own
//! backward: per head, the scores, the (causal) softmax, the dropout and the weighted values
//! forward, and their gradients back, each head's products on strided views of the packed
//! tensor. On candle's primitives the same is fifteen ops (three narrows, head reshapes and
//! transposed copies, a scale, two batched products, softmax, dropout, the merge of heads),
//! and candle's backward adds each of their gradients into a fresh zeroed buffer; the narrows'
//! gradients are zero-padded copies. The softmax's probabilities are kept from the forward.
//!
//! Per head, with `P = softmax(scale * Q K^T)` (entries above the diagonal zero when causal),
//! the kept-and-rescaled dropout mask `M`, and `A = P ⊙ M`: `O = A V`;
//! `dV = A^T dO`, `dP = (dO V^T) ⊙ M`, `dS = scale * P ⊙ (dP - rowsum(dP ⊙ P))`,
//! `dQ = dS K`, `dK = dS^T Q`. The backward is first order only: a pass whose gradients are
//! differentiated again takes the composition (`cpu::composed_if`).

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};

use super::cpu::{for_float, par_chunks, slice, with_slice, Elem};
use super::gemm::{matmul_into, Mat};

/// `qkv` `[N, L, 3E]` (query, key and value columns in that order, as the packed input
/// projection gives them) attended over `heads` heads -> `[N, L, E]`, heads merged. `keep`,
/// `[N, heads, L, L]` in `qkv`'s dtype, multiplies the attention weights (dropout's mask,
/// already rescaled). The caller checks the device and dtype (see `on_cpu_float`).
pub fn self_attention(
    qkv: &Tensor,
    heads: usize,
    scale: f64,
    causal: bool,
    keep: Option<&Tensor>,
) -> Result<Tensor> {
    let (n, l, e3) = qkv.dims3()?;
    if heads == 0 || e3 % (3 * heads) != 0 {
        candle_core::bail!("self-attention: {e3} packed columns do not split into 3 x {heads} heads");
    }
    let shape = Heads { n, l, h: heads, d: e3 / (3 * heads) };
    let keep = match keep {
        Some(k) if k.dims() != [n, heads, l, l] || k.dtype() != qkv.dtype() => candle_core::bail!(
            "self-attention: the dropout mask must be [{n}, {heads}, {l}, {l}] {:?}, found {:?} {:?}",
            qkv.dtype(),
            k.dims(),
            k.dtype()
        ),
        k => k.map(Tensor::contiguous).transpose()?,
    };
    let op = SelfAttention { shape, scale, causal, keep, probs: Mutex::new(None) };
    qkv.contiguous()?.apply_op1(op)
}

/// The sizes: `n` examples of `l` positions, `h` heads of `d` features.
#[derive(Clone, Copy)]
struct Heads {
    n: usize,
    l: usize,
    h: usize,
    d: usize,
}

impl Heads {
    fn e(&self) -> usize {
        self.h * self.d
    }

    /// Head `task % h` of example `task / h`, `part` 0 (query), 1 (key) or 2 (value): an
    /// `l x d` view into the packed `[N, L, 3E]`.
    fn packed<'a, T>(&self, qkv: &'a [T], task: usize, part: usize) -> Mat<'a, T> {
        let start = (task / self.h) * self.l * 3 * self.e() + part * self.e() + (task % self.h) * self.d;
        Mat {
            data: &qkv[start.min(qkv.len())..],
            rows: self.l,
            cols: self.d,
            row_stride: 3 * self.e(),
            col_stride: 1,
        }
    }

    /// The same head's `l x d` view into a heads-merged `[N, L, E]` (the output's gradient).
    fn merged<'a, T>(&self, t: &'a [T], task: usize) -> Mat<'a, T> {
        let start = (task / self.h) * self.l * self.e() + (task % self.h) * self.d;
        Mat {
            data: &t[start.min(t.len())..],
            rows: self.l,
            cols: self.d,
            row_stride: self.e(),
            col_stride: 1,
        }
    }
}

struct SelfAttention {
    shape: Heads,
    scale: f64,
    causal: bool,
    keep: Option<Tensor>,
    /// The forward's probabilities `P`, `[N, h, L, L]`, for the backward.
    probs: Mutex<Option<CpuStorage>>,
}

/// `f(index, chunk)` on every `chunk`-long piece of `out`, in parallel; the first error.
fn try_par_chunks<T: Send>(
    out: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) -> Result<()> + Sync,
) -> Result<()> {
    let first = Mutex::new(None);
    par_chunks(out, chunk, |i, c| {
        if let Err(e) = f(i, c) {
            first.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
        }
    });
    match first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Head `task`'s attention weights `P ⊙ M`, or `P` itself without dropout.
fn weights<'a, T: Elem>(p: &'a [T], keep: Option<&[T]>, task: usize, ll: usize) -> std::borrow::Cow<'a, [T]> {
    let p = &p[task * ll..(task + 1) * ll];
    match keep {
        Some(k) => p.iter().zip(&k[task * ll..(task + 1) * ll]).map(|(p, k)| *p * *k).collect(),
        None => p.into(),
    }
}

impl SelfAttention {
    /// The heads-merged output and the probabilities.
    fn forward<T: Elem>(&self, qkv: &[T], keep: Option<&[T]>) -> Result<(Vec<T>, Vec<T>)> {
        let s = self.shape;
        let (l, d, zero) = (s.l, s.d, T::from_f64(0.0));
        let mut probs = vec![zero; s.n * s.h * l * l];
        try_par_chunks(&mut probs, l * l, |task, p| {
            matmul_into(p, s.packed(qkv, task, 0), s.packed(qkv, task, 1).t(), false)?;
            for (i, row) in p.chunks_exact_mut(l).enumerate() {
                let seen = if self.causal { i + 1 } else { l };
                softmax_scaled(&mut row[..seen], T::from_f64(self.scale));
                row[seen..].fill(zero);
            }
            Ok(())
        })?;
        let mut heads = vec![zero; s.n * s.h * l * d];
        try_par_chunks(&mut heads, l * d, |task, o| {
            let a = weights(&probs, keep, task, l * l);
            matmul_into(o, Mat::rows(&a, l, l), s.packed(qkv, task, 2), false)
        })?;
        let mut out = vec![zero; s.n * l * s.e()];
        par_chunks(&mut out, l * s.e(), |b, example| {
            for (i, row) in example.chunks_exact_mut(s.e()).enumerate() {
                for (h, dst) in row.chunks_exact_mut(d).enumerate() {
                    let src = ((b * s.h + h) * l + i) * d;
                    dst.copy_from_slice(&heads[src..src + d]);
                }
            }
        });
        Ok((out, probs))
    }

    /// The gradient of the packed `qkv` for the output's gradient `g` `[N, L, E]`.
    fn backward<T: Elem>(&self, qkv: &[T], probs: &[T], keep: Option<&[T]>, g: &[T]) -> Result<Vec<T>> {
        let s = self.shape;
        let (l, d, zero) = (s.l, s.d, T::from_f64(0.0));
        let scale = T::from_f64(self.scale);
        // dS, the scores' gradient (the scale folded in).
        let mut ds = vec![zero; s.n * s.h * l * l];
        try_par_chunks(&mut ds, l * l, |task, ds| {
            matmul_into(ds, s.merged(g, task), s.packed(qkv, task, 2).t(), false)?;
            let p = &probs[task * l * l..(task + 1) * l * l];
            if let Some(k) = keep {
                ds.iter_mut().zip(&k[task * l * l..(task + 1) * l * l]).for_each(|(g, k)| *g *= *k);
            }
            for (dr, pr) in ds.chunks_exact_mut(l).zip(p.chunks_exact(l)) {
                let dot = dr.iter().zip(pr).fold(zero, |acc, (g, p)| acc + *g * *p);
                dr.iter_mut().zip(pr).for_each(|(g, p)| *g = scale * *p * (*g - dot));
            }
            Ok(())
        })?;
        // dQ, dK, dV of each head, heads apart.
        let mut heads = vec![zero; s.n * s.h * 3 * l * d];
        try_par_chunks(&mut heads, 3 * l * d, |task, out| {
            let (dq, rest) = out.split_at_mut(l * d);
            let (dk, dv) = rest.split_at_mut(l * d);
            let dsm = Mat::rows(&ds[task * l * l..(task + 1) * l * l], l, l);
            matmul_into(dq, dsm, s.packed(qkv, task, 1), false)?;
            matmul_into(dk, dsm.t(), s.packed(qkv, task, 0), false)?;
            let a = weights(probs, keep, task, l * l);
            matmul_into(dv, Mat::rows(&a, l, l).t(), s.merged(g, task), false)
        })?;
        let (e, mut dqkv) = (s.e(), vec![zero; qkv.len()]);
        par_chunks(&mut dqkv, l * 3 * e, |b, example| {
            for (i, row) in example.chunks_exact_mut(3 * e).enumerate() {
                for (j, dst) in row.chunks_exact_mut(d).enumerate() {
                    let (part, h) = (j / s.h, j % s.h);
                    let src = (((b * s.h + h) * 3 + part) * l + i) * d;
                    dst.copy_from_slice(&heads[src..src + d]);
                }
            }
        });
        Ok(dqkv)
    }
}

/// `row` replaced by `softmax(scale * row)`.
fn softmax_scaled<T: Elem>(row: &mut [T], scale: T) {
    row.iter_mut().for_each(|v| *v *= scale);
    let Some(first) = row.first().copied() else { return };
    let max = row.iter().fold(first, |m, v| if *v > m { *v } else { m });
    let mut sum = T::from_f64(0.0);
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = T::from_f64(1.0) / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

impl CustomOp1 for SelfAttention {
    fn name(&self) -> &'static str {
        "self_attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let shape = Shape::from((self.shape.n, self.shape.l, self.shape.e()));
        let (out, probs) = for_float!(s.dtype(), T => {
            let qkv = slice::<T>(s, l)?;
            let (out, probs) = match &self.keep {
                Some(k) => with_slice(k, |k: &[T]| self.forward(qkv, Some(k)))??,
                None => self.forward(qkv, None)?,
            };
            (T::to_cpu_storage_owned(out), T::to_cpu_storage_owned(probs))
        });
        *self.probs.lock().unwrap_or_else(|p| p.into_inner()) = Some(probs);
        Ok((out, shape))
    }

    fn bwd(&self, qkv: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let saved = self.probs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(probs) = saved.as_ref() else {
            candle_core::bail!("self-attention's backward ran before its forward")
        };
        let dqkv = for_float!(qkv.dtype(), T => {
            let probs = probs.as_slice::<T>()?;
            let backward = |keep: Option<&[T]>| {
                with_slice(qkv, |x: &[T]| with_slice(&grad, |g: &[T]| self.backward(x, probs, keep, g)))
            };
            let dqkv = match &self.keep {
                Some(k) => with_slice(k, |k: &[T]| backward(Some(k)))????,
                None => backward(None)???,
            };
            Tensor::from_vec(dqkv, qkv.shape(), qkv.device())?
        });
        Ok(Some(dqkv))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, D};

    use super::*;
    use crate::lower::gradcheck::{check_fn, wave};

    /// The composition on candle's primitives that the op replaces.
    fn composed(qkv: &Tensor, heads: usize, scale: f64, causal: bool, keep: Option<&Tensor>) -> Tensor {
        let (n, l, e3) = qkv.dims3().unwrap();
        let (e, d) = (e3 / 3, e3 / 3 / heads);
        let split = |i: usize| {
            let t = qkv.narrow(D::Minus1, i * e, e).unwrap().reshape((n, l, heads, d)).unwrap();
            t.transpose(1, 2).unwrap().contiguous().unwrap()
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let mut scores = (q.matmul(&k.t().unwrap().contiguous().unwrap()).unwrap() * scale).unwrap();
        if causal {
            let bias = super::super::attention::causal_bias(l, l, 0, qkv.dtype(), &Device::Cpu).unwrap();
            scores = scores.broadcast_add(&bias).unwrap();
        }
        let mut w = super::super::softmax::softmax(&scores, 3).unwrap();
        if let Some(k) = keep {
            w = (w * k).unwrap();
        }
        w.matmul(&v).unwrap().transpose(1, 2).unwrap().reshape((n, l, e)).unwrap()
    }

    /// A fixed dropout mask (a third dropped, the rest scaled by 1.5).
    fn mask(dims: &[usize]) -> Tensor {
        let count: usize = dims.iter().product();
        let values: Vec<f64> = (0..count).map(|i| if (i * 7) % 3 == 0 { 0.0 } else { 1.5 }).collect();
        Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
    }

    #[test]
    fn equals_the_composition_with_and_without_causal_mask_and_dropout() {
        // 2 examples, 5 positions, 3 heads of 2 features.
        let qkv = wave(&[2, 5, 18], 0.61, 0.4);
        let keep = mask(&[2, 3, 5, 5]);
        for (causal, keep) in [(false, None), (true, None), (false, Some(&keep)), (true, Some(&keep))] {
            let fused = self_attention(qkv.as_tensor(), 3, 0.7, causal, keep).unwrap();
            let want = composed(qkv.as_tensor(), 3, 0.7, causal, keep);
            let diff = (fused - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            assert!(diff.to_scalar::<f64>().unwrap() < 1e-13, "causal {causal}, dropout {}", keep.is_some());
        }
    }

    #[test]
    fn gradcheck_on_odd_shapes_causal_and_with_dropout() {
        // 3 examples, 7 positions, 2 heads of 3 features; a second run with 1 head of 5.
        for (shape, heads) in [([3, 7, 18], 2), ([2, 3, 15], 1)] {
            let qkv = wave(&shape, 0.37, 1.3);
            let keep = mask(&[shape[0], heads, shape[1], shape[1]]);
            let vars = [("qkv".to_string(), qkv.clone())];
            let report = check_fn(&vars, || {
                let x = qkv.as_tensor();
                Ok(vec![
                    self_attention(x, heads, 0.8, false, None)?,
                    self_attention(x, heads, 0.8, true, Some(&keep))?,
                ])
            });
            report.unwrap().assert_within(1e-7);
        }
    }

    #[test]
    fn gradient_matches_the_composition() {
        let qkv = wave(&[2, 4, 12], 0.53, 0.2);
        let keep = mask(&[2, 2, 4, 4]);
        let weights = wave(&[2, 4, 4], 0.9, 0.5);
        let grad = |y: Tensor| {
            let g = (y * weights.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
            g.get(qkv.as_tensor()).unwrap().clone()
        };
        let fused = grad(self_attention(qkv.as_tensor(), 2, 0.6, true, Some(&keep)).unwrap());
        let want = grad(composed(qkv.as_tensor(), 2, 0.6, true, Some(&keep)));
        let diff = (fused - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        assert!(diff.to_scalar::<f64>().unwrap() < 1e-13);
    }

    #[test]
    fn rejects_a_mask_of_the_wrong_shape() {
        let qkv = wave(&[1, 3, 6], 0.5, 0.0);
        let err = self_attention(qkv.as_tensor(), 2, 1.0, false, Some(&mask(&[1, 2, 3, 2]))).unwrap_err();
        assert!(err.to_string().contains("[1, 2, 3, 3]"), "{err}");
        assert!(self_attention(qkv.as_tensor(), 4, 1.0, false, None).is_err());
    }
}
