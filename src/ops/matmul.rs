//! `matmul(a, b)`: matrix product with batch broadcasting, as `torch.matmul`.
//!
//! A 1-D `a` is a row vector and a 1-D `b` a column vector, their unit axis dropped from the
//! result; the batch axes (all but the last two) broadcast as NumPy's do, aligned from the
//! right, each pair equal or one of them 1.

#[cfg(feature = "lower")]
use candle_core::Tensor;

use super::elementwise::{broadcast, same_dtype_pair};
use super::signature::Inputs;
use super::{Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

pub static MATMUL: OpDef = OpDef {
    name: "matmul",
    signature: Signature { inputs: Inputs::Fixed(&["a", "b"]), attrs: &[] },
    build: |_| Ok(Box::new(MatMul)),
};

#[derive(Debug)]
pub struct MatMul;

/// The contracted size: `a`'s last axis.
fn inner(a: &TensorType) -> Dim {
    a.shape.last().cloned().unwrap_or_default()
}

impl Op for MatMul {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let [a, b] = same_dtype_pair(inputs)?;
        let both = || format!("{} and {}", shape_string(&a.shape), shape_string(&b.shape));
        if let Some((i, t)) = [a, b].into_iter().enumerate().find(|(_, t)| t.rank() == 0) {
            return Err(OpError::new(format!("expected at least one axis, found a scalar {t}")).input(i));
        }
        let one = Dim::one();
        // Promote vectors to matrices; the added axes are dropped again below.
        let a_m = if a.rank() == 1 { vec![one.clone(), inner(a)] } else { a.shape.clone() };
        let b_m = if b.rank() == 1 { vec![b.shape[0].clone(), one.clone()] } else { b.shape.clone() };
        let (a_batch, a_mat) = a_m.split_at(a_m.len() - 2);
        let (b_batch, b_mat) = b_m.split_at(b_m.len() - 2);
        if a_mat[1] != b_mat[0] {
            return Err(OpError::new(format!(
                "inner dims must match: `a` has {} columns, `b` has {} rows, shapes {}",
                a_mat[1],
                b_mat[0],
                both()
            ))
            .input(1));
        }
        let rank = a_batch.len().max(b_batch.len());
        let mut shape = Vec::with_capacity(rank + 2);
        for axis in 0..rank {
            // Right-aligned: a missing axis acts as size 1.
            let pick = |batch: &[Dim]| {
                (axis + batch.len()).checked_sub(rank).map_or(one.clone(), |i| batch[i].clone())
            };
            let (x, y) = (pick(a_batch), pick(b_batch));
            let Some(d) = broadcast(&x, &y) else {
                return Err(OpError::new(format!(
                    "batch axes do not broadcast ({x} vs {y}): sizes must be equal or 1, shapes {}",
                    both()
                ))
                .input(1));
            };
            shape.push(d);
        }
        if a.rank() > 1 {
            shape.push(a_mat[0].clone());
        }
        if b.rank() > 1 {
            shape.push(b_mat[1].clone());
        }
        Ok(vec![a.with_shape(shape)])
    }

    /// One MAC per output element per contracted index.
    fn cost(&self, inputs: &[TensorType], outputs: &[TensorType]) -> Cost {
        match (inputs.first(), outputs.first()) {
            (Some(a), Some(out)) => Cost::Macs(out.numel().mul(&inner(a))),
            _ => Cost::Uncounted,
        }
    }
}

#[cfg(feature = "lower")]
impl Lower for MatMul {
    /// Vectors become matrices; a 2-D `b` takes all of `a`'s leading axes as rows of one
    /// product; otherwise both broadcast to the common batch axes (whose backward sums the
    /// gradient over the broadcast ones) and multiply batch by batch.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let out = ctx.output_dims(0)?;
        Ok(Box::new(move |xs: &[Tensor], _: &mut ForwardCtx| {
            let [a, b] = xs else { candle_core::bail!("matmul takes 2 inputs, found {}", xs.len()) };
            let a = if a.rank() == 1 { a.unsqueeze(0)? } else { a.clone() };
            let b = if b.rank() == 1 { b.unsqueeze(1)? } else { b.clone() };
            let (ra, rb) = (a.rank(), b.rank());
            let (m, k, n) = (a.dim(ra - 2)?, a.dim(ra - 1)?, b.dim(rb - 1)?);
            let y = if rb == 2 {
                a.reshape((a.elem_count() / k, k))?.matmul(&b)?
            } else {
                let batch: Vec<usize> = out_batch(a.dims(), b.dims());
                let full = |t: &Tensor, rows: usize, cols: usize| -> candle_core::Result<Tensor> {
                    let shape: Vec<usize> = batch.iter().copied().chain([rows, cols]).collect();
                    t.broadcast_as(shape)?.contiguous()?.reshape(((), rows, cols))
                };
                full(&a, m, k)?.matmul(&full(&b, k, n)?)?
            };
            Ok(vec![y.reshape(out.as_slice())?])
        }))
    }
}

/// The broadcast batch axes of two matrices' shapes (all but the last two axes).
#[cfg(feature = "lower")]
fn out_batch(a: &[usize], b: &[usize]) -> Vec<usize> {
    let (a, b) = (&a[..a.len() - 2], &b[..b.len() - 2]);
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank).map(|i| at(a, i).max(at(b, i))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, macs, out_shape};

    #[test]
    fn lm_head_and_attention_scores() {
        let op = build(&MATMUL, &[]).unwrap();
        // GPT-2's tied head: [1, 1024, 768] @ [768, 50257]
        let (h, w) = (f32(&[1, 1024, 768]), f32(&[768, 50257]));
        assert_eq!(out_shape(&*op, &[h.clone(), w.clone()]), vec![1, 1024, 50257]);
        assert_eq!(macs(&*op, &[h, w]), 1024 * 768 * 50257);
        // Q K^T per head: [N, H, L, d] @ [N, H, d, S]
        let (q, k) = (f32(&[2, 12, 197, 64]), f32(&[2, 1, 64, 197]));
        assert_eq!(out_shape(&*op, &[q.clone(), k.clone()]), vec![2, 12, 197, 197]);
        assert_eq!(macs(&*op, &[q, k]), 2 * 12 * 197 * 197 * 64);
    }

    #[test]
    fn vectors_drop_their_unit_axis() {
        let op = build(&MATMUL, &[]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[3, 4, 5]), f32(&[5])]), vec![3, 4]);
        assert_eq!(out_shape(&*op, &[f32(&[5]), f32(&[3, 5, 6])]), vec![3, 6]);
        assert_eq!(out_shape(&*op, &[f32(&[5]), f32(&[5])]), Vec::<i64>::new());
        assert_eq!(macs(&*op, &[f32(&[5]), f32(&[5])]), 5);
        let n = TensorType::new(DType::F32, vec![Dim::sym("N"), 8.into(), 16.into()]);
        let out = op.infer(&[n, f32(&[16, 4])]).unwrap();
        assert_eq!(out[0].shape, vec![Dim::sym("N"), 8.into(), 4.into()]);
    }

    #[test]
    fn refuses_mismatched_inner_and_batch_axes() {
        let op = build(&MATMUL, &[]).unwrap();
        let e = err(op.infer(&[f32(&[2, 3]), f32(&[4, 5])]));
        assert_eq!(e.input, Some(1));
        assert!(e.message.contains("`a` has 3 columns, `b` has 4 rows"), "{}", e.message);
        let e = err(op.infer(&[f32(&[2, 3, 4]), f32(&[5, 4, 6])]));
        assert!(e.message.contains("(2 vs 5)"), "{}", e.message);
        let ids = TensorType::new(DType::I64, vec![4.into(), 4.into()]);
        assert!(err(op.infer(&[f32(&[4, 4]), ids])).message.contains("f32 and i64"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_broadcast_batches_and_vectors() {
        let spec = "model M { input a: [2, 1, 3, 4]\n input b: [5, 4, 7]\n input w: [4, 6]\n \
                    input v: [4]\n input s: [1, 2, 5, 3]\n \
                    output ab = matmul(a, b)\n output aw = matmul(a, w)\n \
                    output av = matmul(a, v)\n output vb = matmul(v, b)\n output vv = matmul(v, v)\n \
                    output sa = matmul(s, a) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
