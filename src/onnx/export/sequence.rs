//! Sequence layers: position tables added to a sequence, ViT's class token and its read-out.

use super::{int, Mapped, NodeCtx};
use crate::ops::positions::sinusoids;
use crate::ops::sequence::SeqAxes;

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        "LearnedPositions" | "SinusoidalPositions" => positions,
        "PositionParameter" => |c| {
            let (x, p) = (c.input(0)?, c.weight("")?);
            Ok(vec![c.op("Add", &[&x, &p], vec![])])
        },
        "ClassToken" => class_token,
        "SelectToken" => |c| {
            let axes = seq_axes(c)?;
            let index = c.node.attrs.int("index").map_err(|e| e.message)?;
            let (x, i) = (c.input(0)?, c.const_scalar_i64(index));
            Ok(vec![c.op("Gather", &[&x, &i], vec![int("axis", axes.seq as i64)])])
        },
        _ => return None,
    })
}

fn seq_axes(c: &NodeCtx) -> Result<SeqAxes, String> {
    let batch_first = c.node.attrs.bool("batch_first").map_err(|e| e.message)?;
    SeqAxes::of(&c.input_types, 0, batch_first).map_err(|e| e.message)
}

/// The first `len` rows of the table (the learned weight, or the sines as a constant), shaped
/// to broadcast over the batch axis, added to the input.
fn positions(c: &mut NodeCtx) -> Mapped {
    let axes = seq_axes(c)?;
    let x_ty = c.input_type(0)?.clone();
    let len = c.bound(&axes.len(&x_ty), "the sequence length")?;
    let e = c.bound(&axes.features(&x_ty), "the embedding size")?;
    let rows = if c.node.kind == "SinusoidalPositions" {
        let table = sinusoids(len as usize, e as usize).into_iter().map(|v| v as f32).collect();
        c.const_f32(&[len, e], table)
    } else {
        let w = c.weight("weight")?;
        let (start, end, axis) = (c.const_i64(&[0]), c.const_i64(&[len]), c.const_i64(&[0]));
        c.op("Slice", &[&w, &start, &end, &axis], vec![])
    };
    let mut shape = vec![1; x_ty.rank()];
    (shape[axes.seq], shape[axes.features]) = (len, e);
    let shape = c.const_i64(&shape);
    let rows = c.op("Reshape", &[&rows, &shape], vec![]);
    let x = c.input(0)?;
    Ok(vec![c.op("Add", &[&x, &rows], vec![])])
}

/// The token `[1, 1, E]` repeated over the batch and put before the sequence.
fn class_token(c: &mut NodeCtx) -> Mapped {
    let axes = seq_axes(c)?;
    let token = c.weight("")?;
    let x = c.input(0)?;
    let Some(_) = axes.batch else {
        return Ok(vec![c.op("Concat", &[&token, &x], vec![int("axis", axes.seq as i64)])]);
    };
    // The shape of one position of the input, [N, 1, E], read from the input itself so that a
    // dynamic batch works too.
    let (start, end, axis) = (c.const_i64(&[0]), c.const_i64(&[1]), c.const_i64(&[axes.seq as i64]));
    let first = c.op("Slice", &[&x, &start, &end, &axis], vec![]);
    let shape = c.op("Shape", &[&first], vec![]);
    let tokens = c.op("Expand", &[&token, &shape], vec![]);
    Ok(vec![c.op("Concat", &[&tokens, &x], vec![int("axis", axes.seq as i64)])])
}
