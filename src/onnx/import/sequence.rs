//! Learned position tables: the first `len` rows of a constant table (`Slice`), shaped to
//! broadcast over the batch (`Reshape`) and added to the input, as wick's exporter writes
//! `LearnedPositions`.

use super::builder::{int, Builder, Param};
use super::nn::const_input;
use super::Group;
use crate::ir::graph::NodeId;
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
