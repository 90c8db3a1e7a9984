//! `MultiheadAttention` from the composition wick's exporter writes: packed (or separate)
//! input projections, heads split by `Reshape` to `[0, 0, heads, head_dim]`, scaled scores,
//! `Softmax`, the output projection; sequence-first when it opens with a `Transpose` of its
//! query, causal when a constant `[L, S]` mask is added to the scores.

use super::builder::{int, Builder, Param};
use super::nn::const_input;
use super::{attr_ints, Group};
use crate::ir::graph::NodeId;
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
