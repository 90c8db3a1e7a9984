//! StyleGAN's layers and random noise: the equalized-learning-rate layers (their stored weights
//! under their keys, the runtime gains as ONNX arithmetic), the modulated convolution in its
//! unfused form, noise injection, the minibatch statistic, the learned constant input, and
//! `randn_like` as `RandomNormalLike` (a runtime draws from its own stream, not candle's).
//!
//! Every shape these read at run time (the batch, the image size) comes from `Shape`, so a
//! batch left symbolic stays a dynamic dim of the file.

use super::{float, int, ints, Mapped, NodeCtx};

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        "EqualLinear" => equal_linear,
        "EqualConv2d" => equal_conv,
        "ModulatedConv2d" => modulated_conv,
        "NoiseInjection" => noise_injection,
        "MinibatchStd" => minibatch_std,
        "ConstantInput" => constant_input,
        "randn_like" => |c| {
            // tract 0.22 tells `RandomNormalLike` from `RandomNormal` by the node's name, not
            // its op type (`node.name.ends_with("Like")`, ops/random.rs), and a layer's first
            // node is named by the bare path: a pass-through first keeps the draw second,
            // named `path/RandomNormalLike`.
            let x = c.input(0)?;
            let like = c.op("Identity", &[&x], vec![]);
            Ok(vec![c.op("RandomNormalLike", &[&like], vec![])])
        },
        _ => return None,
    })
}

/// The size of axis `axis` of input 0 as a number, for a gain.
fn input_width(c: &NodeCtx, axis: usize, what: &str) -> Result<i64, String> {
    let ty = c.input_type(0)?;
    let d = ty.shape.get(axis).ok_or_else(|| format!("the input has no axis {axis}"))?;
    c.bound(d, what)
}

/// `x (w lr_mul / sqrt(in))^T + b lr_mul`: on a matrix, one `Gemm` whose alpha and beta are
/// the gains; on a batch of them, the scaled weight's transpose by `MatMul`.
fn equal_linear(c: &mut NodeCtx) -> Mapped {
    let a = &c.node.attrs;
    let lr_mul = a.float("lr_mul").map_err(|e| e.message)?;
    let bias = a.bool("bias").map_err(|e| e.message)?;
    let rank = c.input_type(0)?.rank();
    let in_features = input_width(c, rank.saturating_sub(1), "the input width")?;
    let gain = lr_mul / (in_features as f64).sqrt();
    let (x, w) = (c.input(0)?, c.weight("weight")?);
    let b = if bias { Some(c.weight("bias")?) } else { None };
    if rank == 2 {
        let mut inputs = vec![x.as_str(), w.as_str()];
        inputs.extend(b.as_deref());
        let attrs = vec![float("alpha", gain), float("beta", lr_mul), int("transB", 1)];
        return Ok(vec![c.op("Gemm", &inputs, attrs)]);
    }
    let gain = c.scalar(gain);
    let scaled = c.op("Mul", &[&w, &gain], vec![]);
    let wt = c.op("Transpose", &[&scaled], vec![ints("perm", &[1, 0])]);
    let y = c.op("MatMul", &[&x, &wt], vec![]);
    Ok(vec![match b {
        Some(b) => {
            let lr_mul = c.scalar(lr_mul);
            let b = c.op("Mul", &[&b, &lr_mul], vec![]);
            c.op("Add", &[&y, &b], vec![])
        }
        None => y,
    }])
}

/// A `Conv` by the stored weight times `1 / sqrt(in k k)`; the bias as stored.
fn equal_conv(c: &mut NodeCtx) -> Mapped {
    let a = &c.node.attrs;
    let k = a.int("kernel_size").map_err(|e| e.message)?;
    let stride = a.int("stride").map_err(|e| e.message)?;
    let pad = a.int("padding").map_err(|e| e.message)?;
    let bias = a.bool("bias").map_err(|e| e.message)?;
    let in_channels = input_width(c, 1, "the channel count")?;
    let gain = 1.0 / ((in_channels * k * k) as f64).sqrt();
    let (x, w) = (c.input(0)?, c.weight("weight")?);
    let gain = c.scalar(gain);
    let scaled = c.op("Mul", &[&w, &gain], vec![]);
    let mut inputs = vec![x, scaled];
    if bias {
        inputs.push(c.weight("bias")?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let attrs =
        vec![ints("kernel_shape", &[k, k]), ints("strides", &[stride, stride]), ints("pads", &[pad; 4])];
    Ok(vec![c.op("Conv", &refs, attrs)])
}

/// The unfused form, which holds for any batch (a grouped convolution of `N` groups would fix
/// it): the styles `s = modulation(w)` scale the input per channel, one `Conv` by the shared
/// weight, then each sample's output channel times
/// `d[n, o] = rsqrt(sum_i s[n, i]^2 sum_kk w[o, i]^2 + eps)`, the sums one `MatMul`.
fn modulated_conv(c: &mut NodeCtx) -> Mapped {
    let a = &c.node.attrs;
    let k = a.int("kernel_size").map_err(|e| e.message)?;
    let demodulate = a.bool("demodulate").map_err(|e| e.message)?;
    let in_channels = input_width(c, 1, "the channel count")?;
    let style_ty = c.input_type(1)?.clone();
    let w_dim = c.bound(&style_ty.shape[1], "the style width")?;
    let (x, style) = (c.input(0)?, c.input(1)?);
    let (mod_w, mod_b) = (c.weight("modulation.weight")?, c.weight("modulation.bias")?);
    let attrs = vec![float("alpha", 1.0 / (w_dim as f64).sqrt()), int("transB", 1)];
    let s = c.op("Gemm", &[&style, &mod_w, &mod_b], attrs);
    let (axis0, spatial) = (c.const_i64(&[0]), c.const_i64(&[2, 3]));
    let weight = c.weight("weight")?;
    let weight = c.op("Squeeze", &[&weight, &axis0], vec![]);
    let gain = c.scalar(1.0 / ((in_channels * k * k) as f64).sqrt());
    let weight = c.op("Mul", &[&weight, &gain], vec![]);
    let per_channel = c.op("Unsqueeze", &[&s, &spatial], vec![]);
    let modulated = c.op("Mul", &[&x, &per_channel], vec![]);
    let attrs = vec![ints("kernel_shape", &[k, k]), ints("pads", &[k / 2; 4])];
    let y = c.op("Conv", &[&modulated, &weight], attrs);
    if !demodulate {
        return Ok(vec![y]);
    }
    let sq = c.op("Mul", &[&weight, &weight], vec![]);
    let energy = c.op("ReduceSum", &[&sq, &spatial], vec![int("keepdims", 0)]);
    let s_sq = c.op("Mul", &[&s, &s], vec![]);
    let norms = c.op("Gemm", &[&s_sq, &energy], vec![int("transB", 1)]);
    let eps = c.scalar(DEMODULATION_EPS);
    let shifted = c.op("Add", &[&norms, &eps], vec![]);
    let root = c.op("Sqrt", &[&shifted], vec![]);
    let inverse = c.op("Reciprocal", &[&root], vec![]);
    let inverse = c.op("Unsqueeze", &[&inverse, &spatial], vec![]);
    Ok(vec![c.op("Mul", &[&y, &inverse], vec![])])
}

/// StyleGAN2's demodulation epsilon, as the lowering's.
const DEMODULATION_EPS: f64 = 1e-8;

/// `x + weight[c] noise[n, 0, h, w]`: one `[N, 1, H, W]` image of noise per sample (drawn like
/// the input's first channel), scaled per channel.
fn noise_injection(c: &mut NodeCtx) -> Mapped {
    let x = c.input(0)?;
    let (zero, one) = (c.const_i64(&[0]), c.const_i64(&[1]));
    let first = c.op("Slice", &[&x, &zero, &one, &one], vec![]);
    let noise = c.op("RandomNormalLike", &[&first], vec![]);
    let w = c.weight("weight")?;
    let spatial = c.const_i64(&[1, 2]);
    let w = c.op("Unsqueeze", &[&w, &spatial], vec![]);
    let scaled = c.op("Mul", &[&noise, &w], vec![]);
    Ok(vec![c.op("Add", &[&x, &scaled], vec![])])
}

/// StyleGAN's epsilon under the minibatch statistic's square root, as the lowering's.
const MINIBATCH_EPS: f64 = 1e-8;

/// `x` viewed as `[G, N / G, C, H, W]` with `G = min(group_size, N)` (computed at run time from
/// the batch), the biased std over the group axis averaged over `(C, H, W)`: one number per
/// slot, tiled back to `[N, 1, H, W]` and appended as a channel.
fn minibatch_std(c: &mut NodeCtx) -> Mapped {
    let group_size = c.node.attrs.int("group_size").map_err(|e| e.message)?;
    let x = c.input(0)?;
    let batch = c.op("Shape", &[&x], vec![int("start", 0), int("end", 1)]);
    let size = c.const_i64(&[group_size]);
    let group = c.op("Min", &[&batch, &size], vec![]);
    let chw = c.op("Shape", &[&x], vec![int("start", 1)]);
    let hw = c.op("Shape", &[&x], vec![int("start", 2)]);
    let rest = c.const_i64(&[-1]);
    let view = c.op("Concat", &[&group, &rest, &chw], vec![int("axis", 0)]);
    let grouped = c.op("Reshape", &[&x, &view], vec![]);
    let (_, std) = c.centred_and_deviation(&grouped, &[0], false, MINIBATCH_EPS);
    // [N / G, 1, 1, 1] repeated G times along the batch and over the image: sample
    // n = g (N / G) + slot gets its slot's value.
    let per_slot = c.reduce_mean(&std, &[1, 2, 3], true);
    let one = c.const_i64(&[1]);
    let repeats = c.op("Concat", &[&group, &one, &hw], vec![int("axis", 0)]);
    let channel = c.op("Tile", &[&per_slot, &repeats], vec![]);
    Ok(vec![c.op("Concat", &[&x, &channel], vec![int("axis", 1)])])
}

/// The constant `[1, C, s, s]` expanded to the batch of `x`.
fn constant_input(c: &mut NodeCtx) -> Mapped {
    let x = c.input(0)?;
    let batch = c.op("Shape", &[&x], vec![int("start", 0), int("end", 1)]);
    let ones = c.const_i64(&[1, 1, 1]);
    let shape = c.op("Concat", &[&batch, &ones], vec![int("axis", 0)]);
    let constant = c.weight("input")?;
    Ok(vec![c.op("Expand", &[&constant, &shape], vec![])])
}
