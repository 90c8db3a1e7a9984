//! Learned position tables: the first `len` rows of a constant table (`Slice`), shaped to
//! broadcast over the batch (`Reshape`) and added to the input, as wick's exporter writes
//! `LearnedPositions`; ViT's class token put before the sequence, and the token read out of it.

use super::builder::{int, Builder, Param};
use super::nn::{const_input, input};
use super::{attr_int, Group};
use crate::ir::graph::NodeId;
use crate::onnx::export::Initializer;
use crate::onnx::proto::NodeProto;
use crate::ops::AttrValue;

pub(super) fn learned_positions(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    if g.op_types() != ["Slice", "Reshape", "Add"] {
        return Err("not a position table".into());
    }
    let table = const_input(b, &g.nodes[0], 0)?;
    let max_len = b.constant(&table).and_then(|v| v.dims().first().copied()).ok_or("no table")?;
    let shape = b.ints(&const_input(b, &g.nodes[1], 1)?).ok_or("no shape")?;
    // `[1, L, E]` batch first, `[L, 1, E]` sequence first, `[L, E]` unbatched.
    let batch_first = shape.len() == 3 && shape[0] == 1;
    let inputs = g.external_inputs(b);
    let [x] = inputs.as_slice() else { return Err("not one input".into()) };
    let x = b.get(x).ok_or("input not read")?;
    let attrs = vec![("max_len", int(max_len)), ("batch_first", AttrValue::Bool(batch_first))];
    b.add("LearnedPositions", attrs, vec![x], &g.path, &[Param::new("weight", &table)])
}

/// The token `[1, 1, E]` expanded over the batch (`Slice`, `Shape`, `Expand`) and put before the
/// sequence (`Concat`): `ClassToken`.
pub(super) fn class_token(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    if g.op_types() != ["Slice", "Shape", "Expand", "Concat"] {
        return Err("not a class token".into());
    }
    let token = const_input(b, &g.nodes[2], 0)?;
    let concat = &g.nodes[3];
    let batch_first = attr_int(concat, "axis") == Some(1);
    let x = concat.input.get(1).and_then(|i| b.get(i)).ok_or("no input")?;
    let attrs = vec![("batch_first", AttrValue::Bool(batch_first))];
    b.add("ClassToken", attrs, vec![x], &g.path, &[Param::new("", &token)])
}

/// `Gather(x, i)` by a constant scalar along the sequence axis of a rank-3 input: `SelectToken`.
pub(super) fn select_token(b: &mut Builder, n: &NodeProto, path: &str) -> Result<NodeId, String> {
    let index = n.input.get(1).filter(|i| b.is_const(i)).ok_or("the index is not a constant")?;
    let Some(Initializer::I64 { dims, data }) = b.constant(index) else {
        return Err("the index is not an integer".into());
    };
    let ([], [i]) = (dims.as_slice(), data.as_slice()) else {
        return Err("the index is not one number".into());
    };
    let i = *i;
    let axis = attr_int(n, "axis").unwrap_or(0);
    let x = input(b, n, 0)?;
    if b.ty(x).rank() != 3 || !(0..=1).contains(&axis) {
        return Err("not a token of a [N, L, E] or [L, N, E] sequence".into());
    }
    let attrs = vec![("index", int(i)), ("batch_first", AttrValue::Bool(axis == 1))];
    b.add("SelectToken", attrs, vec![x], path, &[])
}
