//! `MultiheadAttention` from the composition wick's exporter writes: packed (or separate)
//! input projections, heads split by `Reshape` to `[0, 0, heads, head_dim]`, scaled scores,
//! `Softmax`, the output projection; sequence-first when it opens with a `Transpose` of its
//! query, causal when a constant `[L, S]` mask is added to the scores. Also
//! `ScaledDotProductAttention` (heads already split; key-value heads repeated for grouped
//! queries) and `RotaryEmbedding` (constant cosine and sine tables).

use super::builder::{int, Builder, Param};
use super::nn::const_input;
use super::{attr_ints, Group};
use crate::ir::graph::NodeId;
use crate::onnx::export::Initializer;
use crate::onnx::proto::NodeProto;
use crate::ops::AttrValue;

pub(super) fn multihead_attention(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    let ops = g.op_types();
    if !ops.contains(&"Softmax") || ops.iter().filter(|o| **o == "MatMul").count() < 5 {
        return Err("not an attention".into());
    }
    let named = |name: &str| g.constant_named(b, name);
    let out_w = named("out_proj.weight").ok_or("no out_proj.weight")?;
    let (packed, embed) = match named("in_proj_weight") {
        Some(w) => {
            let e = b
                .constant(&w)
                .and_then(|v| v.dims().get(1).copied())
                .ok_or("in_proj_weight is not a matrix")?;
            (Some(w), e)
        }
        None => {
            let q = named("q_proj_weight").ok_or("no input projection")?;
            (
                None,
                b.constant(&q)
                    .and_then(|v| v.dims().first().copied())
                    .ok_or("q_proj_weight is not a matrix")?,
            )
        }
    };
    let reshape = g
        .nodes
        .iter()
        .filter(|n| n.op_type == "Reshape")
        .find_map(|n| const_input(b, n, 1).ok().and_then(|s| b.ints(&s)).filter(|s| s.len() == 4))
        .ok_or("no head split")?;
    let heads = reshape[2];
    let inputs = g.external_inputs(b);
    let query = inputs.first().ok_or("no query")?;
    let first = &g.nodes[0];
    let seq_first = first.op_type == "Transpose"
        && first.input.first() == Some(query)
        && attr_ints(first, "perm").as_deref() == Some(&[1, 0, 2]);
    // A causal mask is a constant matrix added to the scores.
    let causal = g.nodes.iter().any(|n| {
        n.op_type == "Add"
            && n.input.iter().any(|i| b.constant(i).is_some_and(|c| c.dims().len() == 2 && c.dims()[0] > 1))
    });
    let in_bias = named("in_proj_bias");
    let bias = in_bias.is_some();
    let attrs = vec![
        ("embed_dim", int(embed)),
        ("num_heads", int(heads)),
        ("bias", AttrValue::Bool(bias)),
        ("batch_first", AttrValue::Bool(!seq_first)),
        ("causal", AttrValue::Bool(causal)),
    ];
    let separate: Vec<Option<String>> =
        ["q_proj_weight", "k_proj_weight", "v_proj_weight"].iter().map(|n| named(n)).collect();
    let out_b = named("out_proj.bias");
    let mut params = Vec::new();
    match &packed {
        Some(w) => params.push(Param::new("in_proj_weight", w)),
        None => {
            for (name, source) in ["q_proj_weight", "k_proj_weight", "v_proj_weight"].iter().zip(&separate) {
                params.push(Param::new(name, source.as_deref().ok_or("a projection is missing")?));
            }
        }
    }
    if let Some(bias) = &in_bias {
        params.push(Param::new("in_proj_bias", bias));
    }
    params.push(Param::new("out_proj.weight", &out_w));
    if let Some(ob) = &out_b {
        params.push(Param::new("out_proj.bias", ob));
    }
    let tensors = inputs.iter().map(|i| b.get(i).ok_or("input not read")).collect::<Result<Vec<_>, _>>()?;
    if tensors.len() > 3 {
        return Err("more than query, key and value".into());
    }
    b.add("MultiheadAttention", attrs, tensors, &g.path, &params)
}

/// `softmax(q k^T * scale [+ causal mask]) v`, keys and values first repeated per query head
/// (`Unsqueeze`, `Expand`, `Reshape`) when there are fewer of them.
pub(super) fn scaled_dot_product_attention(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    let core: Vec<&str> =
        g.op_types().into_iter().filter(|o| !matches!(*o, "Unsqueeze" | "Expand" | "Reshape")).collect();
    let causal = match core.as_slice() {
        ["Transpose", "MatMul", "Mul", "Softmax", "MatMul"] => false,
        ["Transpose", "MatMul", "Mul", "Add", "Softmax", "MatMul"] => true,
        _ => return Err("not a scaled dot-product attention".into()),
    };
    let matmuls: Vec<&NodeProto> = g.nodes.iter().filter(|n| n.op_type == "MatMul").collect();
    let transpose = g.nodes.iter().find(|n| n.op_type == "Transpose").ok_or("no transpose")?;
    // Each operand traced back through the repeat to the tensor the group was given.
    let origin = |name: &str| -> Option<String> {
        let mut name = name.to_string();
        while let Some(n) = g.nodes.iter().find(|n| n.output.first() == Some(&name)) {
            if !matches!(n.op_type.as_str(), "Unsqueeze" | "Expand" | "Reshape" | "Transpose") {
                return None;
            }
            name = n.input.first()?.clone();
        }
        Some(name)
    };
    let q = matmuls[0].input.first().cloned().ok_or("no query")?;
    let k = transpose.input.first().and_then(|t| origin(t)).ok_or("no key")?;
    let v = matmuls[1].input.get(1).and_then(|t| origin(t)).ok_or("no value")?;
    let mul = g.nodes.iter().find(|n| n.op_type == "Mul").ok_or("no scale")?;
    let scale = mul.input.iter().find_map(|i| b.scalar(i)).ok_or("the scale is not a number")?;
    if causal {
        let add = g.nodes.iter().find(|n| n.op_type == "Add").ok_or("no mask")?;
        if !add
            .input
            .iter()
            .any(|i| matches!(b.constant(i), Some(Initializer::F32 { dims, .. }) if dims.len() == 2))
        {
            return Err("the added mask is not a constant causal one".into());
        }
    }
    let tensors =
        [q, k, v].iter().map(|t| b.get(t).ok_or("an operand is not read")).collect::<Result<Vec<_>, _>>()?;
    let head = b.ty(tensors[0]).shape.last().and_then(|d| d.eval(&b.bindings)).ok_or("no head size")?;
    // The default scale is 1 / sqrt(head size); another one is given.
    let default = 1.0 / (head as f64).sqrt();
    let scale_attr =
        if (scale - default).abs() <= 1e-6 * default { AttrValue::None } else { AttrValue::Float(scale) };
    let attrs = vec![("causal", AttrValue::Bool(causal)), ("scale", scale_attr)];
    b.add("ScaledDotProductAttention", attrs, tensors, &g.path, &[])
}

/// `x * cos + rotate_half(x) * sin` with constant `[T, D]` tables: `RotaryEmbedding`, its
/// `theta` read back from the angle of position 1 (`theta^(-2/D)` in the second column).
pub(super) fn rotary_embedding(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    if g.op_types() != ["Split", "Neg", "Concat", "Mul", "Mul", "Add"] {
        return Err("not a rotary embedding".into());
    }
    let x = g.nodes[0].input.first().and_then(|i| b.get(i)).ok_or("no input")?;
    let table = |n: &NodeProto| {
        n.input.iter().find_map(|i| match b.constant(i) {
            Some(Initializer::F32 { dims, data }) if dims.len() == 2 => Some((dims.clone(), data.clone())),
            _ => None,
        })
    };
    let (cos_dims, cos) = table(&g.nodes[3]).ok_or("no cosine table")?;
    let (sin_dims, sin) = table(&g.nodes[4]).ok_or("no sine table")?;
    if sin_dims != cos_dims {
        return Err("the sine and cosine tables differ in shape".into());
    }
    let d = cos_dims[1];
    let theta = if cos_dims[0] >= 2 && d >= 4 {
        let k = d as usize + 1;
        let angle = f64::from(sin[k]).atan2(f64::from(cos[k]));
        let theta = angle.powf(-(d as f64) / 2.0);
        // The tables are f32: keep six significant digits.
        let digits = 10f64.powi(5 - theta.log10().floor() as i32);
        (theta * digits).round() / digits
    } else {
        10000.0
    };
    if !theta.is_finite() || theta <= 0.0 {
        return Err("the tables give no theta".into());
    }
    b.add("RotaryEmbedding", vec![("theta", AttrValue::Float(theta))], vec![x], &g.path, &[])
}
