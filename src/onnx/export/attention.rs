//! `MultiheadAttention` as a composition: projections (`MatMul`), heads split by `Reshape` and
//! `Transpose`, scaled scores, `Softmax`, and the output projection, as PyTorch computes it in
//! eval mode (no attention dropout).

use super::{int, ints, Mapped, NodeCtx};
use crate::ir::tensor::DType;
use crate::ops::rotary::angles;

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        "MultiheadAttention" => multihead_attention,
        "ScaledDotProductAttention" => scaled_dot_product_attention,
        "RotaryEmbedding" => rotary_embedding,
        _ => return None,
    })
}

fn flag(c: &NodeCtx, name: &'static str) -> Result<bool, String> {
    c.node.attrs.bool(name).map_err(|e| e.message)
}

fn multihead_attention(c: &mut NodeCtx) -> Mapped {
    if c.inputs.len() > 3 {
        return Err("a key_padding_mask input is not exported yet".into());
    }
    if flag(c, "add_bias_kv")? || flag(c, "add_zero_attn")? {
        return Err("add_bias_kv and add_zero_attn are not exported yet".into());
    }
    if c.input_type(0)?.rank() != 3 {
        return Err("unbatched (rank-2) attention is not exported yet".into());
    }
    let (batch_first, causal, bias) = (flag(c, "batch_first")?, flag(c, "causal")?, flag(c, "bias")?);
    let e = c.bound(&c.node.attrs.dim("embed_dim").map_err(|e| e.message)?, "embed_dim")?;
    let heads = c.node.attrs.int("num_heads").map_err(|e| e.message)?;
    let hd = e / heads;

    // Everything below is batch first: [N, L, E].
    let to_batch_first = |c: &mut NodeCtx, x: &str| match batch_first {
        true => x.to_string(),
        false => c.op("Transpose", &[x], vec![ints("perm", &[1, 0, 2])]),
    };
    let q_in = c.input(0)?;
    let k_in = c.inputs.get(1).cloned().unwrap_or_else(|| q_in.clone());
    let v_in = c.inputs.get(2).cloned().unwrap_or_else(|| k_in.clone());
    let q = to_batch_first(c, &q_in);
    let k = if k_in == q_in { q.clone() } else { to_batch_first(c, &k_in) };
    let v = if v_in == k_in { k.clone() } else { to_batch_first(c, &v_in) };

    let packed = c.node.params.iter().any(|p| p.name == "in_proj_weight");
    let weights = if packed {
        let w = c.weight("in_proj_weight")?;
        let sizes = c.const_i64(&[e, e, e]);
        c.op_n("Split", &[&w, &sizes], vec![int("axis", 0)], 3)
    } else {
        vec![c.weight("q_proj_weight")?, c.weight("k_proj_weight")?, c.weight("v_proj_weight")?]
    };
    let biases = if bias {
        let b = c.weight("in_proj_bias")?;
        let sizes = c.const_i64(&[e, e, e]);
        c.op_n("Split", &[&b, &sizes], vec![int("axis", 0)], 3).into_iter().map(Some).collect()
    } else {
        vec![None, None, None]
    };
    let project = |c: &mut NodeCtx, x: &str, w: &str, b: Option<&str>| {
        let wt = c.op("Transpose", &[w], vec![ints("perm", &[1, 0])]);
        let y = c.op("MatMul", &[x, &wt], vec![]);
        match b {
            Some(b) => c.op("Add", &[&y, b], vec![]),
            None => y,
        }
    };
    // Heads: [N, L, E] -> [N, L, H, hd] -> [N, H, L, hd] (keys to [N, H, hd, S]).
    let split_heads = |c: &mut NodeCtx, x: &str, perm: &[i64]| {
        let shape = c.const_i64(&[0, 0, heads, hd]);
        let r = c.op("Reshape", &[x, &shape], vec![]);
        c.op("Transpose", &[&r], vec![ints("perm", perm)])
    };
    let qp = project(c, &q, &weights[0], biases[0].as_deref());
    let kp = project(c, &k, &weights[1], biases[1].as_deref());
    let vp = project(c, &v, &weights[2], biases[2].as_deref());
    let qh = split_heads(c, &qp, &[0, 2, 1, 3]);
    let kh = split_heads(c, &kp, &[0, 2, 3, 1]);
    let vh = split_heads(c, &vp, &[0, 2, 1, 3]);

    let seq_axis = if batch_first { 1 } else { 0 };
    let causal_lengths = if causal {
        let (q_ty, k_ty) = (c.input_type(0)?.clone(), c.input_type(c.inputs.len().min(2) - 1)?.clone());
        Some((
            c.bound(&q_ty.shape[seq_axis], "the query length")?,
            c.bound(&k_ty.shape[seq_axis], "the key length")?,
        ))
    } else {
        None
    };
    let ctx = attend(c, &qh, &kh, &vh, 1.0 / (hd as f64).sqrt(), causal_lengths, None)?;
    let ctx = c.op("Transpose", &[&ctx], vec![ints("perm", &[0, 2, 1, 3])]);
    let shape = c.const_i64(&[0, 0, e]);
    let ctx = c.op("Reshape", &[&ctx, &shape], vec![]);
    let wo = c.weight("out_proj.weight")?;
    let bo = if bias { Some(c.weight("out_proj.bias")?) } else { None };
    let out = project(c, &ctx, &wo, bo.as_deref());
    Ok(vec![match batch_first {
        true => out,
        false => c.op("Transpose", &[&out], vec![ints("perm", &[1, 0, 2])]),
    }])
}

/// `softmax(q k * scale + mask) v` for keys already transposed to `[.., E, S]`; the causal mask
/// (key `j > i` hidden) a constant `[L, S]`, an `attn_mask` a bool (true takes part) or float
/// (added) tensor.
fn attend(
    c: &mut NodeCtx,
    q: &str,
    k_t: &str,
    v: &str,
    scale: f64,
    causal: Option<(i64, i64)>,
    mask: Option<(&str, DType)>,
) -> Result<String, String> {
    let scores = c.op("MatMul", &[q, k_t], vec![]);
    let scale = c.scalar(scale);
    let mut scores = c.op("Mul", &[&scores, &scale], vec![]);
    if let Some((l, s)) = causal {
        let bias: Vec<f32> =
            (0..l).flat_map(|i| (0..s).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
        let bias = c.const_f32(&[l, s], bias);
        scores = c.op("Add", &[&scores, &bias], vec![]);
    }
    if let Some((mask, dtype)) = mask {
        let bias = if dtype == DType::Bool {
            let (zero, hidden) = (c.scalar(0.0), c.scalar(f64::NEG_INFINITY));
            c.op("Where", &[mask, &zero, &hidden], vec![])
        } else if dtype.is_float() {
            mask.to_string()
        } else {
            return Err(format!("an attn_mask of dtype {dtype} is not exported (bool or float)"));
        };
        scores = c.op("Add", &[&scores, &bias], vec![]);
    }
    let weights = c.op("Softmax", &[&scores], vec![int("axis", -1)]);
    Ok(c.op("MatMul", &[&weights, v], vec![]))
}

/// Heads already split: `[N, Hq, L, E]` queries, `[N, Hkv, S, E]` keys and values, each key-value
/// head repeated for the `Hq / Hkv` query heads it serves (grouped-query attention).
fn scaled_dot_product_attention(c: &mut NodeCtx) -> Mapped {
    let (q_ty, k_ty) = (c.input_type(0)?.clone(), c.input_type(1)?.clone());
    let rank = q_ty.rank();
    let head_axis = rank - 3;
    let e = c.bound(&q_ty.shape[rank - 1], "the head size")?;
    let a = &c.node.attrs;
    let scale =
        if a.is_none("scale") { 1.0 / (e as f64).sqrt() } else { a.float("scale").map_err(|e| e.message)? };
    let causal = a.bool("causal").map_err(|e| e.message)?;
    let hq = c.bound(&q_ty.shape[head_axis], "the query heads")?;
    let hkv = c.bound(&k_ty.shape[head_axis], "the key-value heads")?;
    let (q, mut k, mut v) = (c.input(0)?, c.input(1)?, c.input(2)?);
    if hkv != hq {
        let repeat = |c: &mut NodeCtx, x: &str, last: i64| {
            let axis = c.const_i64(&[head_axis as i64 + 1]);
            let x = c.op("Unsqueeze", &[x, &axis], vec![]);
            let mut times = vec![1i64; rank + 1];
            times[head_axis + 1] = hq / hkv;
            let times = c.const_i64(&times);
            let x = c.op("Expand", &[&x, &times], vec![]);
            let mut shape = vec![0i64; rank];
            (shape[head_axis], shape[rank - 2], shape[rank - 1]) = (hq, -1, last);
            let shape = c.const_i64(&shape);
            c.op("Reshape", &[&x, &shape], vec![])
        };
        let v_last = c.bound(&c.input_type(2)?.shape[rank - 1].clone(), "the value size")?;
        k = repeat(c, &k, e);
        v = repeat(c, &v, v_last);
    }
    let mut perm: Vec<i64> = (0..rank as i64).collect();
    perm.swap(rank - 1, rank - 2);
    let k_t = c.op("Transpose", &[&k], vec![ints("perm", &perm)]);
    let lengths = if causal {
        Some((
            c.bound(&q_ty.shape[rank - 2], "the query length")?,
            c.bound(&k_ty.shape[rank - 2], "the key length")?,
        ))
    } else {
        None
    };
    let mask = match (c.inputs.get(3).cloned(), c.input_types.get(3).map(|t| t.dtype)) {
        (Some(m), Some(d)) => Some((m, d)),
        _ => None,
    };
    let mask = mask.as_ref().map(|(m, d)| (m.as_str(), *d));
    Ok(vec![attend(c, &q, &k_t, &v, scale, lengths, mask)?])
}

/// `x * cos + rotate_half(x) * sin` with the tables as constants `[T, D]` (positions from 0),
/// `rotate_half` as a split of the last axis and a concatenation of `-x2` and `x1`.
fn rotary_embedding(c: &mut NodeCtx) -> Mapped {
    let x_ty = c.input_type(0)?.clone();
    let rank = x_ty.rank();
    let t = c.bound(&x_ty.shape[rank - 2], "the sequence length")?;
    let d = c.bound(&x_ty.shape[rank - 1], "the head size")?;
    let theta = c.node.attrs.float("theta").map_err(|e| e.message)?;
    let angles = angles(theta, 0, t as usize, d as usize);
    let cos = c.const_f32(&[t, d], angles.iter().map(|a| a.cos() as f32).collect());
    let sin = c.const_f32(&[t, d], angles.iter().map(|a| a.sin() as f32).collect());
    let x = c.input(0)?;
    let sizes = c.const_i64(&[d / 2, d / 2]);
    let halves = c.op_n("Split", &[&x, &sizes], vec![int("axis", -1)], 2);
    let minus = c.op("Neg", &[&halves[1]], vec![]);
    let rotated = c.op("Concat", &[&minus, &halves[0]], vec![int("axis", -1)]);
    let a = c.op("Mul", &[&x, &cos], vec![]);
    let b = c.op("Mul", &[&rotated, &sin], vec![]);
    Ok(vec![c.op("Add", &[&a, &b], vec![])])
}
