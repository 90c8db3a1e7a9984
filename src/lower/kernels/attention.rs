//! Multi-head attention as PyTorch's `F.multi_head_attention_forward` computes it, on
//! matmul, softmax and elementwise primitives whose backward is right (candle-nn has no
//! attention, and its `softmax_last_dim` has no gradient). Its core on heads ([`Core`]:
//! scores, masks, softmax, the weighted values) is also `ScaledDotProductAttention`'s.
//!
//! Inputs here are batch-first `[N, L, E]`; the op's lowering moves other layouts here and back.
//! Masks are additive: `-inf` where a key is ignored. As in PyTorch, the keys that
//! `add_bias_kv` and `add_zero_attn` append are never masked.

use candle_core::{DType, Device, Result, Tensor, D};

use super::activation::dropout;
use super::cpu::on_cpu_float;
use super::fused_attention::self_attention;
use super::linear::linear;
use super::softmax::softmax;
use crate::lower::random::keep_mask;
use crate::lower::LayerState;

/// The input projections: PyTorch's packed `in_proj_weight [3E, E]` (query, key, value rows
/// in that order) or three separate weights; `in_proj_bias [3E]` in both cases.
pub enum InProj {
    Packed(Tensor),
    Separate([Tensor; 3]),
}

pub struct Attention {
    pub heads: usize,
    pub in_proj: InProj,
    pub in_bias: Option<Tensor>,
    /// `bias_k`, `bias_v` (`[1, 1, E]`), appended to the keys and values.
    pub bias_kv: Option<(Tensor, Tensor)>,
    pub zero_attn: bool,
    pub out_weight: Tensor,
    pub out_bias: Option<Tensor>,
    /// Scores, masks, softmax, dropout and the weighted values, on heads.
    pub core: Core,
}

impl Attention {
    /// Query, key and value projected, `[N, L|S, E]`. Self-attention (`kv` is None) with a
    /// packed weight is one product.
    fn qkv(&self, q: &Tensor, kv: Option<(&Tensor, &Tensor)>) -> Result<[Tensor; 3]> {
        let e = self.out_weight.dim(0)?;
        let bias = |i: usize| self.in_bias.as_ref().map(|b| b.narrow(0, i * e, e)).transpose();
        let rows = |i: usize| match &self.in_proj {
            InProj::Packed(w) => w.narrow(0, i * e, e),
            InProj::Separate(ws) => Ok(ws[i].clone()),
        };
        match (&self.in_proj, kv) {
            (InProj::Packed(w), None) => {
                let all = linear(q, w, self.in_bias.as_ref())?;
                Ok([
                    all.narrow(D::Minus1, 0, e)?,
                    all.narrow(D::Minus1, e, e)?,
                    all.narrow(D::Minus1, 2 * e, e)?,
                ])
            }
            _ => {
                let (k, v) = kv.unwrap_or((q, q));
                Ok([
                    linear(q, &rows(0)?, bias(0)?.as_ref())?,
                    linear(k, &rows(1)?, bias(1)?.as_ref())?,
                    linear(v, &rows(2)?, bias(2)?.as_ref())?,
                ])
            }
        }
    }

    /// The packed projection `[N, L, 3E]` when the fused CPU op takes this pass: self-attention
    /// on the CPU in f32 or f64 with a packed weight, nothing appended to the keys, no mask but
    /// the causal one, no cache, a dropout below 1 (its mask drawn as `dropout` would).
    fn packed_self_attention(
        &self,
        q: &Tensor,
        kv: Option<(&Tensor, &Tensor)>,
        key_padding_mask: Option<&Tensor>,
        cached: bool,
    ) -> Result<Option<Tensor>> {
        let InProj::Packed(w) = &self.in_proj else { return Ok(None) };
        let plain = kv.is_none() && key_padding_mask.is_none() && !cached && self.bias_kv.is_none();
        let same_dtype =
            w.dtype() == q.dtype() && self.in_bias.as_ref().is_none_or(|b| b.dtype() == q.dtype());
        if !plain || self.zero_attn || self.core.dropout >= 1.0 || !same_dtype || !on_cpu_float(q) {
            return Ok(None);
        }
        linear(q, w, self.in_bias.as_ref()).map(Some)
    }

    /// `q` is `[N, L, E]`; `kv` the key and value (`[N, S, kdim]`, `[N, S, vdim]`), None for
    /// self-attention; `key_padding_mask` is `[N, S]`, integer (nonzero = ignore the key) or
    /// float (added to the scores).
    pub fn forward(
        &self,
        q: &Tensor,
        kv: Option<(&Tensor, &Tensor)>,
        key_padding_mask: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        self.forward_cached(q, kv, key_padding_mask, train, None)
    }

    /// [`forward`](Self::forward), where a self-attention pass given a `cache` (a key-value
    /// cache: the projected keys `k` and values `v` of earlier passes, `[N, S_past, E]`) attends
    /// to those too and adds its own: generation then costs one position a token. Query `i` of
    /// this pass is position `S_past + i`, so the causal mask lets it see keys up to there.
    pub fn forward_cached(
        &self,
        q: &Tensor,
        kv: Option<(&Tensor, &Tensor)>,
        key_padding_mask: Option<&Tensor>,
        train: bool,
        cache: Option<&mut LayerState>,
    ) -> Result<Tensor> {
        let (n, l, e) = q.dims3()?;
        let (h, d) = (self.heads, e / self.heads);
        if let Some(qkv) = self.packed_self_attention(q, kv, key_padding_mask, cache.is_some())? {
            let keep = match train && self.core.dropout > 0.0 {
                true => Some(keep_mask(&[n, h, l, l], self.core.dropout, q.dtype(), q.device())?),
                false => None,
            };
            let causal = self.core.causal.is_some();
            let out = self_attention(&qkv, h, self.core.scale, causal, keep.as_ref())?;
            return linear(&out, &self.out_weight, self.out_bias.as_ref());
        }
        let [q, mut k, mut v] = self.qkv(q, kv)?;
        let mut past = 0;
        if let Some(cache) = cache {
            if kv.is_some() || key_padding_mask.is_some() {
                candle_core::bail!("a key-value cache serves self-attention without a key padding mask");
            }
            (k, v, past) = extend_cache(cache, k, v, 1)?;
        }
        if let Some((bk, bv)) = &self.bias_kv {
            k = Tensor::cat(&[&k, &bk.broadcast_as((n, 1, e))?], 1)?;
            v = Tensor::cat(&[&v, &bv.broadcast_as((n, 1, e))?], 1)?;
        }
        if self.zero_attn {
            let zeros = Tensor::zeros((n, 1, e), k.dtype(), k.device())?;
            k = Tensor::cat(&[&k, &zeros], 1)?;
            v = Tensor::cat(&[&v, &zeros], 1)?;
        }
        let heads = |t: &Tensor| -> Result<Tensor> {
            let s = t.dim(1)?;
            t.reshape((n, s, h, d))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (heads(&q)?, heads(&k)?, heads(&v)?);
        let padding = match key_padding_mask {
            Some(mask) => {
                let bias = padding_bias(mask, self.core.extra_keys, q.dtype())?;
                Some(bias.reshape((n, 1, 1, bias.dim(1)?))?)
            }
            None => None,
        };
        let out = self.core.attend(&q, &k, &v, past, padding.as_ref(), train)?;
        linear(&out.transpose(1, 2)?.reshape((n, l, e))?, &self.out_weight, self.out_bias.as_ref())
    }
}

/// Scaled dot-product attention on heads, as `F.scaled_dot_product_attention` computes it:
/// `softmax(q k^T * scale + masks) v`, with dropout on the weights in training. Key-value
/// heads may be fewer than query heads (grouped-query attention): each serves a group of
/// consecutive query heads, as PyTorch's `enable_gqa` and Hugging Face's `repeat_kv` pair them.
pub struct Core {
    /// Multiplies the scores (`1 / sqrt(head_dim)` by default).
    pub scale: f64,
    /// Dropout on the attention weights, in training only.
    pub dropout: f64,
    /// The causal mask `[L, S']` as additive bias, built for the lengths the model was lowered
    /// with; a pass at other lengths (a growing sequence) builds its own.
    pub causal: Option<Tensor>,
    /// Keys after the real ones that the causal mask never hides (`add_bias_kv`, `add_zero_attn`).
    pub extra_keys: usize,
}

impl Core {
    /// `q [N, Hq, L, E]`, `k [N, Hkv, S', E]`, `v [N, Hkv, S', Ev]` -> `[N, Hq, L, Ev]`. The
    /// queries follow `past` cached positions (which `k` and `v` include); `bias` is an additive
    /// mask broadcast to the scores `[N, Hq, L, S']`.
    pub fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        past: usize,
        bias: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let (n, hq, l, e) = q.dims4()?;
        let (hkv, s, ev) = (k.dim(1)?, k.dim(2)?, v.dim(3)?);
        if hkv == 0 || hq % hkv != 0 {
            candle_core::bail!("{hq} query heads cannot share {hkv} key-value heads evenly");
        }
        // A group's queries stacked along the length meet their one key-value head in one
        // product, so keys and values are never copied per query head.
        let groups = hq / hkv;
        let q = q.affine(self.scale, 0.0)?.contiguous()?.reshape((n, hkv, groups * l, e))?;
        let scores = q.matmul(&k.t()?.contiguous()?)?.reshape((n, hq, l, s))?;
        let scores = match &self.causal {
            Some(built) => scores.broadcast_add(&self.causal_at(built, l, s, past)?)?,
            None => scores,
        };
        let scores = match bias {
            Some(bias) => scores.broadcast_add(bias)?,
            None => scores,
        };
        let mut weights = softmax(&scores, 3)?;
        if train && self.dropout > 0.0 {
            weights = dropout(&weights, self.dropout)?;
        }
        let weights = weights.reshape((n, hkv, groups * l, s))?;
        weights.matmul(&v.contiguous()?)?.reshape((n, hq, l, ev))
    }

    /// The causal bias for `l` queries that follow `past` cached positions and `keys` keys (the
    /// cached and appended ones included): `built` when the lengths are the lowered ones and
    /// nothing is cached, a fresh one otherwise.
    fn causal_at(&self, built: &Tensor, l: usize, keys: usize, past: usize) -> Result<Tensor> {
        if past == 0 && built.dims() == [l, keys] {
            return Ok(built.clone());
        }
        let extra = self.extra_keys;
        causal_bias_after(past, l, keys.saturating_sub(extra), extra, built.dtype(), built.device())
    }
}

/// Appends this pass's keys and values to those a layer's state holds from earlier passes
/// (along `axis`, their length), keeps the whole for the next pass, and returns it with the
/// number of earlier positions.
pub fn extend_cache(
    cache: &mut LayerState,
    k: Tensor,
    v: Tensor,
    axis: usize,
) -> Result<(Tensor, Tensor, usize)> {
    let (k, v, past) = match (cache.get("k"), cache.get("v")) {
        (Some(k_past), Some(v_past)) => {
            (Tensor::cat(&[k_past, &k], axis)?, Tensor::cat(&[v_past, &v], axis)?, k_past.dim(axis)?)
        }
        _ => (k, v, 0),
    };
    cache.insert("k".into(), k.detach());
    cache.insert("v".into(), v.detach());
    Ok((k, v, past))
}

/// The additive `[L, S + extra]` causal bias: `-inf` where key `j > i` among the `s` real keys.
pub fn causal_bias(l: usize, s: usize, extra: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    causal_bias_after(0, l, s, extra, dtype, device)
}

/// [`causal_bias`] for queries that follow `past` positions: `-inf` where key `j > past + i`.
pub fn causal_bias_after(
    past: usize,
    l: usize,
    s: usize,
    extra: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let cols = s + extra;
    let mut values = vec![0.0f64; l * cols];
    for i in 0..l {
        for j in past + i + 1..s {
            values[i * cols + j] = f64::NEG_INFINITY;
        }
    }
    Tensor::from_vec(values, (l, cols), device)?.to_dtype(dtype)
}

/// A key padding mask `[N, S]` as additive bias `[N, S + extra]`.
fn padding_bias(mask: &Tensor, extra: usize, dtype: DType) -> Result<Tensor> {
    mask_bias(mask, true, dtype)?.pad_with_zeros(1, 0, extra)
}

/// A mask as additive bias: a float mask as it is; an integer (bool) one as `-inf` where it
/// hides a key (nonzero when `nonzero_hides`, as `key_padding_mask`; zero otherwise, as
/// `attn_mask`) and 0 elsewhere.
pub fn mask_bias(mask: &Tensor, nonzero_hides: bool, dtype: DType) -> Result<Tensor> {
    if mask.dtype().is_float() {
        return mask.to_dtype(dtype);
    }
    let ninf = Tensor::full(f64::NEG_INFINITY, mask.dims(), mask.device())?.to_dtype(dtype)?;
    let zeros = ninf.zeros_like()?;
    match nonzero_hides {
        true => mask.ne(0u8)?.where_cond(&ninf, &zeros),
        false => mask.ne(0u8)?.where_cond(&zeros, &ninf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_bias_masks_later_real_keys_only() {
        let b = causal_bias(2, 3, 1, DType::F64, &Device::Cpu).unwrap().to_vec2::<f64>().unwrap();
        let ninf = f64::NEG_INFINITY;
        assert_eq!(b, vec![vec![0.0, ninf, ninf, 0.0], vec![0.0, 0.0, ninf, 0.0]]);
    }

    #[test]
    fn causal_bias_after_cached_positions_shifts_the_diagonal() {
        let b = causal_bias_after(2, 2, 4, 0, DType::F64, &Device::Cpu).unwrap().to_vec2::<f64>().unwrap();
        let ninf = f64::NEG_INFINITY;
        assert_eq!(b, vec![vec![0.0, 0.0, 0.0, ninf], vec![0.0; 4]]);
    }

    #[test]
    fn padding_bias_from_integer_and_float_masks() {
        let mask = Tensor::new(&[[0u8, 1, 0]], &Device::Cpu).unwrap();
        let b = padding_bias(&mask, 1, DType::F32).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(b, vec![vec![0.0, f32::NEG_INFINITY, 0.0, 0.0]]);
        let float = Tensor::new(&[[0.5f64, -2.0]], &Device::Cpu).unwrap();
        let b = padding_bias(&float, 0, DType::F64).unwrap().to_vec2::<f64>().unwrap();
        assert_eq!(b, vec![vec![0.5, -2.0]]);
    }
}
