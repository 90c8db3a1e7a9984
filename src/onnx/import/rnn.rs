//! `LSTM`, `GRU` and `RNN` from what wick's exporter writes for one: ONNX's operator once per
//! layer, the weights' gate blocks reordered (`Split`, `Concat`) and stacked per direction
//! (`Unsqueeze`), each layer's rows of the initial states sliced out, the output sequence
//! reshaped back to `[T, N, dirs * H]`; the weights are taken under their PyTorch keys.

use std::collections::HashSet;

use super::builder::{int, Builder, Param};
use super::{attr, attr_int, Group};
use crate::ir::graph::TensorRef;
use crate::onnx::proto::NodeProto;
use crate::ops::AttrValue;

/// The group as one recurrent layer: its outputs (sequence, final hidden state, final cell
/// state) by their names in the file.
pub(super) fn recurrent(b: &mut Builder, g: &Group) -> Result<Vec<(String, TensorRef)>, String> {
    let cells: Vec<&NodeProto> =
        g.nodes.iter().filter(|n| matches!(n.op_type.as_str(), "LSTM" | "GRU" | "RNN")).collect();
    let first = cells.first().ok_or("no recurrent cell")?;
    let kind = first.op_type.clone();
    if cells.iter().any(|c| c.op_type != kind) {
        return Err("mixed cells".into());
    }
    let bidirectional = attr(first, "direction").is_some_and(|a| a.s == b"bidirectional");
    let hidden = attr_int(first, "hidden_size").ok_or("no hidden_size")?;
    let suffixes: &[&str] = if bidirectional { &["", "_reverse"] } else { &[""] };
    let bias = g.constant_named(b, "bias_ih_l0").is_some();
    let mut sources = Vec::new();
    for l in 0..cells.len() {
        for sfx in suffixes {
            let mut names = vec![format!("weight_ih_l{l}{sfx}"), format!("weight_hh_l{l}{sfx}")];
            if bias {
                names.extend([format!("bias_ih_l{l}{sfx}"), format!("bias_hh_l{l}{sfx}")]);
            }
            for name in names {
                let source = g.constant_named(b, &name).ok_or_else(|| format!("no `{name}`"))?;
                sources.push((name, source));
            }
        }
    }
    let made_by = |name: &str| g.nodes.iter().find(|n| n.output.first().is_some_and(|o| o == name));
    // The sequence, before the batch-first transpose when there is one.
    let mut x = first.input.first().cloned().ok_or("no input")?;
    let batch_first = match made_by(&x) {
        Some(t) if t.op_type == "Transpose" => {
            x = t.input.first().cloned().ok_or("no input")?;
            true
        }
        _ => false,
    };
    // The initial states, each the source of the first layer's slice of it.
    let state = |port: usize| -> Option<String> {
        let sliced = first.input.get(port).filter(|s| !s.is_empty())?;
        made_by(sliced).and_then(|n| n.input.first().cloned())
    };
    let mut inputs = vec![b.get(&x).ok_or("the sequence is not read")?];
    let h0 = state(5);
    let c0 = if kind == "LSTM" { state(6) } else { None };
    if c0.is_some() && h0.is_none() {
        return Err("c0 without h0".into());
    }
    for s in h0.iter().chain(&c0) {
        inputs.push(b.get(s).ok_or("an initial state is not read")?);
    }
    let mut attrs = vec![
        ("hidden_size", int(hidden)),
        ("num_layers", int(cells.len() as i64)),
        ("bias", AttrValue::Bool(bias)),
        ("batch_first", AttrValue::Bool(batch_first)),
        ("bidirectional", AttrValue::Bool(bidirectional)),
    ];
    if kind == "RNN" {
        let relu =
            attr(first, "activations").is_some_and(|a| a.strings.first().is_some_and(|s| s == b"Relu"));
        attrs.push(("nonlinearity", AttrValue::Str(if relu { "relu" } else { "tanh" }.into())));
    }
    // What the group hands on: the last reshape or transpose is the sequence; each state is
    // the one layer's, or the concatenation of every layer's.
    let sequence = g
        .nodes
        .iter()
        .rev()
        .find(|n| matches!(n.op_type.as_str(), "Reshape" | "Transpose"))
        .and_then(|n| n.output.first().cloned())
        .ok_or("no output sequence")?;
    let final_state = |port: usize| -> Option<String> {
        let per_layer: Vec<&String> = cells.iter().filter_map(|c| c.output.get(port)).collect();
        if let [one] = per_layer.as_slice() {
            return Some((*one).clone());
        }
        let concat = g
            .nodes
            .iter()
            .find(|n| n.op_type == "Concat" && n.input.iter().collect::<Vec<_>>() == per_layer)?;
        concat.output.first().cloned()
    };
    let mut named = vec![(sequence, 0u16)];
    named.extend(final_state(1).map(|n| (n, 1)));
    if kind == "LSTM" {
        named.extend(final_state(2).map(|n| (n, 2)));
    }
    let known: HashSet<&String> = named.iter().map(|(n, _)| n).collect();
    if let Some(other) = g.outside.iter().find(|o| !known.contains(o)) {
        return Err(format!("`{other}` is read outside the layer"));
    }
    let params: Vec<Param> = sources.iter().map(|(name, source)| Param::new(name, source)).collect();
    let id = b.add(&kind, attrs, inputs, &g.path, &params)?;
    Ok(named.into_iter().map(|(name, port)| (name, TensorRef { node: id, port })).collect())
}
