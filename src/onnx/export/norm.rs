//! Normalisations: batch norm with its running statistics, layer norm (opset 17's own; over
//! the channels of `[N, C, ...]` for `LayerNorm2d`), and RMSNorm and PixelNorm as their formulas.

use super::tensor::per_channel;
use super::{float, int, ints, Mapped, NodeCtx};
use crate::ir::dim::Dim;

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        "BatchNorm1d" | "BatchNorm2d" => batch_norm,
        "LayerNorm" => layer_norm,
        "LayerNorm2d" => layer_norm_2d,
        "RMSNorm" => rms_norm,
        "GroupNorm" => |c| {
            let groups = c.node.attrs.int("num_groups").map_err(|e| e.message)?;
            group_norm(c, groups)
        },
        "InstanceNorm2d" => |c| match c.node.attrs.bool("track_running_stats").map_err(|e| e.message)? {
            true => batch_norm(c),
            false => {
                let channels = c.bound(&c.input_type(0)?.shape[1].clone(), "the channel count")?;
                group_norm(c, channels)
            }
        },
        "PixelNorm" => |c| {
            let eps = c.node.attrs.float("eps").map_err(|e| e.message)?;
            let x = c.input(0)?;
            Ok(vec![unit_mean_square(c, &x, &[1], eps)])
        },
        _ => return None,
    })
}

/// How many trailing axes a `normalized_shape` names (the last one when absent).
fn normalized_axes(c: &NodeCtx) -> Result<usize, String> {
    let a = &c.node.attrs;
    Ok(if a.is_none("normalized_shape") {
        1
    } else {
        a.dims("normalized_shape").map_err(|e| e.message)?.len()
    })
}

/// `x / sqrt(mean(x^2 over axes) + eps)`.
fn unit_mean_square(c: &mut NodeCtx, x: &str, axes: &[i64], eps: f64) -> String {
    let sq = c.op("Mul", &[x, x], vec![]);
    let mean = c.reduce_mean(&sq, axes, true);
    let eps = c.scalar(eps);
    let shifted = c.op("Add", &[&mean, &eps], vec![]);
    let root = c.op("Sqrt", &[&shifted], vec![]);
    c.op("Div", &[x, &root], vec![])
}

/// `[N, C, ...]` normalised per sample over each of `groups` groups of channels, then scaled and
/// shifted per channel: the mean and biased variance of the `[N, G, -1]` view.
fn group_norm(c: &mut NodeCtx, groups: i64) -> Mapped {
    let a = &c.node.attrs;
    let eps = a.float("eps").map_err(|e| e.message)?;
    let affine = a.bool("affine").map_err(|e| e.message)?;
    let x_ty = c.input_type(0)?.clone();
    if x_ty.rank() < 3 {
        return Err("exported for [N, C, ...] inputs only".into());
    }
    let x = c.input(0)?;
    let view = c.const_i64(&[0, groups, -1]);
    let grouped = c.op("Reshape", &[&x, &view], vec![]);
    let (centred, root) = c.centred_and_deviation(&grouped, &[2], true, eps);
    let normed = c.op("Div", &[&centred, &root], vec![]);
    let shape = c.op("Shape", &[&x], vec![]);
    let y = c.op("Reshape", &[&normed, &shape], vec![]);
    if !affine {
        return Ok(vec![y]);
    }
    let (w, b) = (c.weight("weight")?, c.weight("bias")?);
    let w = per_channel(c, &w, x_ty.rank());
    let b = per_channel(c, &b, x_ty.rank());
    let scaled = c.op("Mul", &[&y, &w], vec![]);
    Ok(vec![c.op("Add", &[&scaled, &b], vec![])])
}

/// Without `eps`, PyTorch's `finfo(float32).eps`, as the lowering in f32.
fn rms_norm(c: &mut NodeCtx) -> Mapped {
    let a = &c.node.attrs;
    let eps =
        if a.is_none("eps") { f64::from(f32::EPSILON) } else { a.float("eps").map_err(|e| e.message)? };
    let affine = a.bool("elementwise_affine").map_err(|e| e.message)?;
    let rank = c.input_type(0)?.rank() as i64;
    let axes: Vec<i64> = (rank - normalized_axes(c)? as i64..rank).collect();
    let x = c.input(0)?;
    let y = unit_mean_square(c, &x, &axes, eps);
    if !affine {
        return Ok(vec![y]);
    }
    let w = c.weight("weight")?;
    Ok(vec![c.op("Mul", &[&y, &w], vec![])])
}

/// Eval mode: the running statistics. Without them PyTorch normalises by the batch's own even
/// in eval mode, which `BatchNormalization` (inference form) does not do.
fn batch_norm(c: &mut NodeCtx) -> Mapped {
    let a = &c.node.attrs;
    if !a.bool("track_running_stats").map_err(|e| e.message)? {
        return Err("track_running_stats=false normalises by batch statistics in eval mode; ONNX's BatchNormalization uses stored ones".into());
    }
    let eps = a.float("eps").map_err(|e| e.message)?;
    let affine = a.bool("affine").map_err(|e| e.message)?;
    let x = c.input(0)?;
    let channels = c.bound(&c.input_type(0)?.shape[1].clone(), "the channel count")?;
    let (scale, bias) = if affine {
        (c.weight("weight")?, c.weight("bias")?)
    } else {
        (
            c.const_f32(&[channels], vec![1.0; channels as usize]),
            c.const_f32(&[channels], vec![0.0; channels as usize]),
        )
    };
    let (mean, var) = (c.weight("running_mean")?, c.weight("running_var")?);
    Ok(vec![c.op("BatchNormalization", &[&x, &scale, &bias, &mean, &var], vec![float("epsilon", eps)])])
}

/// Opset 17's `LayerNormalization` over the trailing `normalized_shape` axes.
fn layer_norm(c: &mut NodeCtx) -> Mapped {
    let axes = normalized_axes(c)?;
    let x_ty = c.input_type(0)?.clone();
    let x = c.input(0)?;
    Ok(vec![layer_normalization(c, &x, &x_ty.shape[x_ty.rank() - axes..])?])
}

/// `LayerNorm2d`: the channels moved last, `LayerNormalization` over them, moved back.
fn layer_norm_2d(c: &mut NodeCtx) -> Mapped {
    let x_ty = c.input_type(0)?.clone();
    let rank = x_ty.rank() as i64;
    let to_last: Vec<i64> = (0..rank).filter(|a| *a != 1).chain([1]).collect();
    let back: Vec<i64> = [0, rank - 1].into_iter().chain(1..rank - 1).collect();
    let x = c.input(0)?;
    let last = c.op("Transpose", &[&x], vec![ints("perm", &to_last)]);
    let y = layer_normalization(c, &last, &x_ty.shape[1..2])?;
    Ok(vec![c.op("Transpose", &[&y], vec![ints("perm", &back)])])
}

/// `x` normalised over its trailing axes of sizes `normalized`, with the layer's
/// `elementwise_affine`, `bias` and `eps`; a scale of ones when it has no weight.
fn layer_normalization(c: &mut NodeCtx, x: &str, normalized: &[Dim]) -> Result<String, String> {
    let a = &c.node.attrs;
    let eps = a.float("eps").map_err(|e| e.message)?;
    let affine = a.bool("elementwise_affine").map_err(|e| e.message)?;
    let with_bias = affine && a.bool("bias").map_err(|e| e.message)?;
    let scale = if affine {
        c.weight("weight")?
    } else {
        let dims: Vec<i64> =
            normalized.iter().map(|d| c.bound(d, "the normalized size")).collect::<Result<_, _>>()?;
        let n = dims.iter().product::<i64>() as usize;
        c.const_f32(&dims, vec![1.0; n])
    };
    let mut inputs = vec![x.to_string(), scale];
    if with_bias {
        inputs.push(c.weight("bias")?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let attrs = vec![int("axis", -(normalized.len() as i64)), float("epsilon", eps)];
    Ok(c.op("LayerNormalization", &refs, attrs))
}
