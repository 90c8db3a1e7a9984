//! Ops that move elements without arithmetic: `roll` and circular padding as slices swapped
//! (`Slice`, `Concat`), `flip` as a `Slice` of step -1, `pad` (`Pad`), `expand` (`Expand`).

use super::tensor::slice_axes;
use super::{int, string, Mapped, NodeCtx};

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        "roll" => roll,
        "flip" => flip,
        "pad" => pad,
        "expand" => expand,
        _ => return None,
    })
}

/// Each (axis, shift) in turn; without `axis`, the tensor rolled as one flat row and given
/// its shape back. The rolled sizes must be bound: the shift is taken modulo them.
fn roll(c: &mut NodeCtx) -> Mapped {
    let x_ty = c.input_type(0)?.clone();
    let a = &c.node.attrs;
    let shifts = a.int_list("shifts").map_err(|e| e.message)?;
    let x = c.input(0)?;
    if a.is_none("axis") {
        let n = x_ty.shape.iter().try_fold(1i64, |n, d| Ok::<_, String>(n * c.bound(d, "a rolled axis")?))?;
        let flat = c.const_i64(&[-1]);
        let flat = c.op("Reshape", &[&x, &flat], vec![]);
        let rolled = roll_axis(c, &flat, 0, shifts[0], n);
        let shape = c.op("Shape", &[&x], vec![]);
        return Ok(vec![c.op("Reshape", &[&rolled, &shape], vec![])]);
    }
    let axes = a.int_list("axis").map_err(|e| e.message)?;
    let mut y = x;
    for (v, shift) in axes.iter().zip(shifts) {
        let axis = x_ty.axis(*v).ok_or_else(|| format!("`axis` {v} is out of range"))?;
        let size = c.bound(&x_ty.shape[axis], "a rolled axis")?;
        y = roll_axis(c, &y, axis, shift, size);
    }
    Ok(vec![y])
}

/// `torch.roll(x, shift, axis)` on an axis of `size`: its last `shift mod size` elements
/// moved to the front; `x` itself when that is none.
pub(super) fn roll_axis(c: &mut NodeCtx, x: &str, axis: usize, shift: i64, size: i64) -> String {
    let s = shift.rem_euclid(size.max(1));
    if s == 0 {
        return x.to_string();
    }
    let axis = axis as i64;
    let tail = slice_axes(c, x, &[axis], &[size - s], &[size], &[1]);
    let head = slice_axes(c, x, &[axis], &[0], &[size - s], &[1]);
    c.op("Concat", &[&tail, &head], vec![int("axis", axis)])
}

/// From the last element down to the first (ends below any index), on every axis at once: the
/// sizes may stay symbolic.
fn flip(c: &mut NodeCtx) -> Mapped {
    let x_ty = c.input_type(0)?.clone();
    let given = c.node.attrs.int_list("axis").map_err(|e| e.message)?;
    let axes: Vec<i64> = given
        .iter()
        .map(|v| x_ty.axis(*v).map(|a| a as i64).ok_or_else(|| format!("`axis` {v} is out of range")))
        .collect::<Result<_, _>>()?;
    let k = axes.len();
    let x = c.input(0)?;
    Ok(vec![slice_axes(c, &x, &axes, &vec![-1; k], &vec![i64::MIN; k], &vec![-1; k])])
}

/// PyTorch's (before, after) pairs from the last axis back, as ONNX's begins then ends of every
/// axis. `constant`, `reflect` and `replicate` (`edge`) are `Pad`'s modes; `circular` (opset
/// 19's `wrap`) is the axis's tail, the axis, and its head concatenated, by negative indices so
/// that the sizes may stay symbolic.
fn pad(c: &mut NodeCtx) -> Mapped {
    let a = &c.node.attrs;
    let sizes = a.int_list("pad").map_err(|e| e.message)?;
    let mode = a.str("mode").unwrap_or("constant").to_string();
    let value = if a.is_none("value") { 0.0 } else { a.float("value").map_err(|e| e.message)? };
    let rank = c.input_type(0)?.rank();
    // (axis, before, after), last axis first.
    let pairs: Vec<(usize, i64, i64)> =
        sizes.chunks(2).enumerate().map(|(i, p)| (rank - 1 - i, p[0], p[1])).collect();
    let x = c.input(0)?;
    if mode == "circular" {
        let mut y = x;
        for (axis, before, after) in pairs {
            let axis = axis as i64;
            let mut pieces = Vec::new();
            if before > 0 {
                pieces.push(slice_axes(c, &y, &[axis], &[-before], &[i64::MAX], &[1]));
            }
            pieces.push(y.clone());
            if after > 0 {
                pieces.push(slice_axes(c, &y, &[axis], &[0], &[after], &[1]));
            }
            if pieces.len() > 1 {
                let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
                y = c.op("Concat", &refs, vec![int("axis", axis)]);
            }
        }
        return Ok(vec![y]);
    }
    let onnx_mode = match mode.as_str() {
        "constant" => "constant",
        "reflect" => "reflect",
        "replicate" => "edge",
        other => return Err(format!("mode \"{other}\" has no ONNX Pad mode")),
    };
    let mut pads = vec![0i64; 2 * rank];
    for (axis, before, after) in pairs {
        (pads[axis], pads[rank + axis]) = (before, after);
    }
    let pads = c.const_i64(&pads);
    let mut inputs = vec![x, pads];
    if onnx_mode == "constant" && value != 0.0 {
        inputs.push(c.scalar(value));
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    Ok(vec![c.op("Pad", &refs, vec![string("mode", onnx_mode)])])
}

/// `Expand` broadcasts both ways, so PyTorch's -1 (keep the axis) is 1 there; the other sizes
/// must be bound, as the exporter cannot tell which input a symbolic one comes from.
fn expand(c: &mut NodeCtx) -> Mapped {
    let sizes = c.node.attrs.dims("size").map_err(|e| e.message)?;
    let shape: Vec<i64> = sizes
        .iter()
        .map(|d| match d.as_const() {
            Some(-1) => Ok(1),
            _ => c.bound(d, "an expanded size"),
        })
        .collect::<Result<_, _>>()?;
    let (x, shape) = (c.input(0)?, c.const_i64(&shape));
    Ok(vec![c.op("Expand", &[&x, &shape], vec![])])
}
