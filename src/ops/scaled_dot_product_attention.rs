//! `ScaledDotProductAttention(query, key, value)`: PyTorch's `F.scaled_dot_product_attention`,
//! `softmax(q k^T * scale + mask) v`, on heads that a model has already projected and split:
//! query `[N, Hq, L, E]`, key `[N, Hkv, S, E]`, value `[N, Hkv, S, Ev]` (or each without `N`),
//! output `[N, Hq, L, Ev]`. No parameters.
//!
//! - Grouped-query attention: `Hkv` may be a divisor of `Hq`; key-value head `j` serves query
//!   heads `j * Hq/Hkv ..` (PyTorch's `enable_gqa=True`, Hugging Face's `repeat_kv`), as
//!   Llama's 32 query heads share 4.
//! - `causal=true` hides key `j > i` from query `i` (PyTorch's `is_causal`, aligned top-left
//!   when `L != S`). `attn_mask`, a fourth input broadcast to the scores `[N, Hq, L, S]`, is
//!   PyTorch's: bool (true = take part) or float (added to the scores: an attention bias);
//!   with `causal` both apply.
//! - `scale` defaults to `1 / sqrt(E)`; `dropout` (PyTorch's `dropout_p`) acts on the weights in
//!   training.
//!
//! In a pass that carries layer states (`wick sample`'s key-value cache) a causal layer keeps
//! its keys and values and attends to those of earlier passes too. The core is
//! `MultiheadAttention`'s (`kernels::attention::Core`).

#[cfg(feature = "lower")]
use candle_core::Tensor;

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_dim, expect_float, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, DType, TensorType};
#[cfg(feature = "lower")]
use crate::lower::kernels::attention::{causal_bias, extend_cache, mask_bias, Core};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

pub static SCALED_DOT_PRODUCT_ATTENTION: OpDef = OpDef {
    name: "ScaledDotProductAttention",
    signature: Signature {
        inputs: Inputs::Trailing { names: &["query", "key", "value", "attn_mask"], required: 3 },
        attrs: &[
            attr("dropout", AttrType::Float, Default::Float(0.0)),
            attr("causal", AttrType::Bool, Default::Bool(false)),
            attr("scale", AttrType::Float, Default::Optional),
        ],
    },
    build: |a: &Attrs| {
        let dropout = a.float("dropout")?;
        if !(0.0..=1.0).contains(&dropout) {
            return Err(OpError::new(format!(
                "`dropout` is a probability and must be in [0, 1], found {dropout}"
            ))
            .attr("dropout"));
        }
        let scale = if a.is_none("scale") { None } else { Some(a.float("scale")?) };
        Ok(Box::new(ScaledDotProductAttention { dropout, causal: a.bool("causal")?, scale }))
    },
};

#[derive(Debug)]
pub struct ScaledDotProductAttention {
    pub dropout: f64,
    pub causal: bool,
    /// `None`: `1 / sqrt(E)`.
    pub scale: Option<f64>,
}

/// The axes from the end: heads, length, features.
const HEADS: usize = 3;
const LEN: usize = 2;
const FEATURES: usize = 1;

fn at(t: &TensorType, from_end: usize) -> Dim {
    t.shape[t.rank() - from_end].clone()
}

impl ScaledDotProductAttention {
    /// The shape of the scores, `[N, Hq, L, S]`, that a mask must broadcast to.
    fn check_mask(mask: &TensorType, q: &TensorType, k: &TensorType) -> Result<(), OpError> {
        let mut scores = q.shape[..q.rank() - 1].to_vec();
        scores.push(at(k, LEN));
        let fits = mask.rank() <= scores.len()
            && mask
                .shape
                .iter()
                .rev()
                .zip(scores.iter().rev())
                .all(|(m, s)| m == s || m.as_const() == Some(1));
        if !fits || !(mask.dtype == DType::Bool || mask.dtype.is_float()) {
            return Err(OpError::new(format!(
                "attn_mask: expected a bool or float mask that broadcasts to the scores {} (batch, query heads, \
                 query length, key length), found {mask}",
                shape_string(&scores)
            ))
            .input(3));
        }
        Ok(())
    }
}

impl Op for ScaledDotProductAttention {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let [q, k, v, ..] = inputs else {
            return Err(OpError::new(format!(
                "expected query, key and value, found {} inputs",
                inputs.len()
            )));
        };
        for (i, t) in [q, k, v].into_iter().enumerate() {
            expect_float(inputs, i, "ScaledDotProductAttention")?;
            if !(3..=4).contains(&t.rank()) || t.rank() != q.rank() {
                return Err(OpError::new(format!(
                    "expected query, key and value of one layout, [N, heads, length, features] or [heads, length, \
                     features]; found shapes {}, {} and {}",
                    shape_string(&q.shape),
                    shape_string(&k.shape),
                    shape_string(&v.shape)
                ))
                .input(i));
            }
        }
        if q.rank() == 4 {
            expect_dim(&k.shape[0], &q.shape[0], "key batch (the query's)", 1)?;
            expect_dim(&v.shape[0], &q.shape[0], "value batch (the query's)", 2)?;
        }
        expect_dim(&at(k, FEATURES), &at(q, FEATURES), "key features (the query's)", 1)?;
        expect_dim(&at(v, HEADS), &at(k, HEADS), "value heads (the key's)", 2)?;
        expect_dim(&at(v, LEN), &at(k, LEN), "value length (the key's)", 2)?;
        let (hq, hkv) = (at(q, HEADS), at(k, HEADS));
        let shared =
            hq == hkv || matches!((hq.as_const(), hkv.as_const()), (Some(a), Some(b)) if b > 0 && a % b == 0);
        if !shared {
            return Err(OpError::new(format!(
                "key-value heads must divide the query heads (each serves a group of them), found {hkv} key-value \
                 heads for {hq} query heads"
            ))
            .input(1));
        }
        if let Some(mask) = inputs.get(3) {
            Self::check_mask(mask, q, k)?;
        }
        let mut out = q.clone();
        let last = out.rank() - 1;
        out.shape[last] = at(v, FEATURES);
        Ok(vec![out])
    }

    /// `Q K^T` and `A V` over every query head and every key position (a causal mask is
    /// applied to the scores, not skipped): `N * Hq * L * S * (E + Ev)`, as `MultiheadAttention`
    /// counts its core.
    fn cost(&self, inputs: &[TensorType], _: &[TensorType]) -> Cost {
        let [q, k, v, ..] = inputs else { return Cost::Uncounted };
        let batch = if q.rank() == 4 { q.shape[0].clone() } else { Dim::one() };
        let per_pair = at(q, FEATURES).add(&at(v, FEATURES));
        Cost::Macs(batch.mul(&at(q, HEADS)).mul(&at(q, LEN)).mul(&at(k, LEN)).mul(&per_pair))
    }
}

#[cfg(feature = "lower")]
impl Lower for ScaledDotProductAttention {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let (q, k) = (&ctx.inputs[0], &ctx.inputs[1]);
        let (l, s, e) = (ctx.dim(&at(q, LEN))?, ctx.dim(&at(k, LEN))?, ctx.dim(&at(q, FEATURES))?);
        let causal = match self.causal {
            true => Some(causal_bias(l, s, 0, ctx.dtype, ctx.device)?),
            false => None,
        };
        let scale = self.scale.unwrap_or(1.0 / (e as f64).sqrt());
        let core = Core { scale, dropout: self.dropout, causal, extra_keys: 0 };
        let batched = q.rank() == 4;
        Ok(Box::new(move |xs: &[Tensor], ctx: &mut ForwardCtx| {
            let four = |t: &Tensor| if batched { Ok(t.clone()) } else { t.unsqueeze(0) };
            let (q, mut k, mut v) = (four(&xs[0])?, four(&xs[1])?, four(&xs[2])?);
            let mut past = 0;
            if let Some(cache) = ctx.state.as_deref_mut() {
                if xs.len() > 3 {
                    candle_core::bail!("a key-value cache serves attention without an attn_mask");
                }
                (k, v, past) = extend_cache(cache, k, v, 2)?;
            }
            let bias = xs.get(3).map(|m| mask_bias(m, false, q.dtype())).transpose()?;
            let y = core.attend(&q, &k, &v, past, bias.as_ref(), ctx.train)?;
            Ok(vec![if batched { y } else { y.squeeze(0)? }])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, macs, out_shape};
    use crate::ops::AttrValue;

    fn sdpa(extra: &[(&str, AttrValue)]) -> Box<dyn Op> {
        build(&SCALED_DOT_PRODUCT_ATTENTION, extra).unwrap()
    }

    #[test]
    fn grouped_query_heads_and_their_cost() {
        let op = sdpa(&[("causal", AttrValue::Bool(true))]);
        // TinyLlama's layer: 32 query heads share 4 key-value heads of 64 features.
        let qkv = [f32(&[1, 32, 128, 64]), f32(&[1, 4, 128, 64]), f32(&[1, 4, 128, 64])];
        assert_eq!(out_shape(&*op, &qkv), vec![1, 32, 128, 64]);
        // 2 * 128 * 128 * 2048, MultiheadAttention's core at E = 32 * 64.
        assert_eq!(macs(&*op, &qkv), 2 * 128 * 128 * 2048);
        // Cross lengths, value features of their own, no batch axis.
        let qkv = [f32(&[6, 5, 8]), f32(&[3, 7, 8]), f32(&[3, 7, 10])];
        assert_eq!(out_shape(&*op, &qkv), vec![6, 5, 10]);
        assert_eq!(macs(&*op, &qkv), 6 * 5 * 7 * (8 + 10));
    }

    #[test]
    fn masks_broadcast_to_the_scores() {
        let op = sdpa(&[]);
        let qkv = [f32(&[2, 4, 5, 8]), f32(&[2, 2, 7, 8]), f32(&[2, 2, 7, 8])];
        for mask in [f32(&[5, 7]), f32(&[2, 1, 5, 7]), f32(&[1, 7])] {
            assert!(op.infer(&[qkv.to_vec(), vec![mask]].concat()).is_ok());
        }
        let bools = TensorType::new(DType::Bool, vec![4.into(), 5.into(), 7.into()]);
        assert!(op.infer(&[qkv.to_vec(), vec![bools]].concat()).is_ok());
        let e = err(op.infer(&[qkv.to_vec(), vec![f32(&[5, 5])]].concat()));
        assert_eq!(e.input, Some(3));
        assert!(e.message.contains("scores [2, 4, 5, 7]") && e.message.contains("[5, 5]"), "{}", e.message);
    }

    #[test]
    fn refuses_mismatched_heads_features_and_layouts() {
        let op = sdpa(&[]);
        let e = err(op.infer(&[f32(&[1, 6, 5, 8]), f32(&[1, 4, 5, 8]), f32(&[1, 4, 5, 8])]));
        assert!(e.message.contains("4 key-value heads for 6 query heads"), "{}", e.message);
        let e = err(op.infer(&[f32(&[1, 4, 5, 8]), f32(&[1, 4, 5, 6]), f32(&[1, 4, 5, 8])]));
        assert!(e.message.contains("key features (the query's): expected 8, found 6"), "{}", e.message);
        let e = err(op.infer(&[f32(&[1, 4, 5, 8]), f32(&[1, 4, 5, 8]), f32(&[1, 4, 6, 8])]));
        assert!(e.message.contains("value length"), "{}", e.message);
        let e = err(op.infer(&[f32(&[1, 4, 5, 8]), f32(&[4, 5, 8]), f32(&[4, 5, 8])]));
        assert!(e.message.contains("one layout"), "{}", e.message);
        let e = err(op.infer(&[f32(&[2, 4, 5, 8]), f32(&[1, 4, 5, 8]), f32(&[1, 4, 5, 8])]));
        assert!(e.message.contains("key batch"), "{}", e.message);
        let e = err(build(&SCALED_DOT_PRODUCT_ATTENTION, &[("dropout", AttrValue::Float(2.0))]));
        assert_eq!(e.attr, Some("dropout"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn equals_multihead_attention_core_per_group() {
        use candle_core::{Device, Tensor};
        // Query heads 0 and 1 share key-value head 0, heads 2 and 3 head 1: the same as four
        // heads with each key-value head repeated (Hugging Face's repeat_kv).
        let dev = Device::Cpu;
        let q = Tensor::randn(0f64, 1.0, (2, 4, 3, 6), &dev).unwrap();
        let k = Tensor::randn(0f64, 1.0, (2, 2, 5, 6), &dev).unwrap();
        let v = Tensor::randn(0f64, 1.0, (2, 2, 5, 4), &dev).unwrap();
        let spec = "model M { input q: [2, 4, 3, 6]\n input k: [2, 2, 5, 6]\n input v: [2, 2, 5, 4]\n \
                    output y = ScaledDotProductAttention(q, k, v, causal=true) }";
        let y = crate::lower::gradcheck::run_spec(spec, &[q.clone(), k.clone(), v.clone()], false).remove(0);
        let repeat = |t: &Tensor| {
            let (n, h, s, d) = t.dims4().unwrap();
            t.unsqueeze(2).unwrap().broadcast_as((n, h, 2, s, d)).unwrap().reshape((n, 2 * h, s, d)).unwrap()
        };
        let scores = (q.matmul(&repeat(&k).t().unwrap()).unwrap() / 6f64.sqrt()).unwrap();
        let mask = causal_bias(3, 5, 0, candle_core::DType::F64, &dev).unwrap();
        let e = scores.broadcast_add(&mask).unwrap().exp().unwrap();
        let weights = e.broadcast_div(&e.sum_keepdim(3).unwrap()).unwrap();
        let expected = weights.matmul(&repeat(&v)).unwrap();
        let diff = (y - expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(diff < 1e-12, "{diff}");
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_groups_masks_and_scale() {
        use crate::lower::gradcheck::{check_spec, check_spec_with};
        // 6 query heads over 2 key-value heads, 3 queries over 5 keys, an additive float mask
        // (an attention bias, whose gradient is checked too) and causal together.
        let spec = "model M { input q: [2, 6, 3, 4]\n input k: [2, 2, 5, 4]\n input v: [2, 2, 5, 3]\n \
                    input b: [6, 3, 5]\n output y = ScaledDotProductAttention(q, k, v, attn_mask=b, causal=true, scale=0.7) }";
        check_spec(spec, true).unwrap().assert_within(1e-6);
        // Unbatched, a bool mask (true = take part) of one row per query.
        let spec = "model M { input q: [3, 5, 4]\n input k: [3, 7, 4]\n input v: [3, 7, 4]\n \
                    input m: [5, 7] of bool\n output y = ScaledDotProductAttention(q, k, v, attn_mask=m) }";
        let rows: Vec<u8> = (0..35).map(|i| u8::from(i % 3 != 1)).collect();
        let m = candle_core::Tensor::from_vec(rows, (5, 7), &candle_core::Device::Cpu).unwrap();
        check_spec_with(spec, true, &[("m", m)]).unwrap().assert_within(1e-6);
    }
}
