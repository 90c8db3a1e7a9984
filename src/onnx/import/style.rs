//! StyleGAN's layers as wick's exporter writes them (`export/style.rs`), read back as the one
//! op each, so that an exported StyleGAN summarises with the spec's own parameters and MACs:
//! `Gemm` with gains as alpha and beta (`EqualLinear`), a `Conv` by a scaled constant
//! (`EqualConv2d`), the unfused modulated convolution, noise injection, the minibatch
//! statistic, the expanded constant input and the per-channel bias.

use super::builder::{int, Builder, Param};
use super::nn::{const_input, input};
use super::{attr_float, attr_int, attr_ints, Group};
use crate::ir::graph::NodeId;
use crate::onnx::proto::NodeProto;
use crate::ops::AttrValue;

/// The group as the StyleGAN layer it was exported from, if it is one.
pub(super) fn layer(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    match g.op_types().as_slice() {
        ["Mul", "Conv"] => equal_conv(b, g),
        ["Gemm", "Squeeze", "Mul", "Unsqueeze", "Mul", "Conv", ..] => modulated_conv(b, g),
        ["Slice", "RandomNormalLike", "Unsqueeze", "Mul", "Add"] => {
            let x = tensor(b, &g.nodes[0], 0)?;
            let w = const_input(b, &g.nodes[2], 0)?;
            b.add("NoiseInjection", vec![], vec![x], &g.path, &[Param::new("weight", &w)])
        }
        // `Bias`: the `[C]` vector reshaped to broadcast over `[N, C, ...]`, then added.
        ["Reshape", "Add"] => {
            let bias = const_input(b, &g.nodes[0], 0)?;
            let add = &g.nodes[1];
            let reshaped = g.nodes[0].output.first().ok_or("no reshaped bias")?;
            if !bias.ends_with(".bias") || add.input.get(1) != Some(reshaped) {
                return Err("not a per-channel bias".into());
            }
            let x = tensor(b, add, 0)?;
            b.add("Bias", vec![], vec![x], &g.path, &[Param::new("bias", &bias)])
        }
        ["Shape", "Concat", "Expand"] => {
            let x = tensor(b, &g.nodes[0], 0)?;
            let constant = const_input(b, &g.nodes[2], 0)?;
            let dims = b.constant(&constant).map(|c| c.dims().to_vec()).unwrap_or_default();
            let [1, channels, size, _] = dims[..] else { return Err("not a [1, C, s, s] constant".into()) };
            let attrs = vec![("channels", int(channels)), ("size", int(size))];
            b.add("ConstantInput", attrs, vec![x], &g.path, &[Param::new("input", &constant)])
        }
        ["Shape", .., "Tile", "Concat"] => {
            let min = g.nodes.iter().find(|n| n.op_type == "Min").ok_or("no group size")?;
            let size = b.ints(&const_input(b, min, 1)?).ok_or("the group size is not an integer")?;
            let [size] = size[..] else { return Err("not one group size".into()) };
            let x = tensor(b, &g.nodes[0], 0)?;
            b.add("MinibatchStd", vec![("group_size", int(size))], vec![x], &g.path, &[])
        }
        _ => Err("not a StyleGAN layer".into()),
    }
}

/// Input `k` of `node`, already read as a tensor.
fn tensor(b: &Builder, node: &NodeProto, k: usize) -> Result<crate::ir::graph::TensorRef, String> {
    node.input.get(k).and_then(|i| b.get(i)).ok_or_else(|| format!("input {k} is not a tensor"))
}

/// Whether `gain` is `expected` as an f32 attribute or constant holds it.
fn is_gain(gain: f64, expected: f64) -> bool {
    (gain - expected).abs() <= 1e-6 * expected.abs()
}

/// `Gemm(x, W, b)` with `alpha = lr_mul / sqrt(in)` and `beta = lr_mul`: `EqualLinear`.
pub(super) fn equal_linear(b: &mut Builder, n: &NodeProto, path: &str) -> Result<NodeId, String> {
    if attr_int(n, "transA").is_some_and(|t| t != 0) || attr_int(n, "transB") != Some(1) {
        return Err("only Gemm by a transposed [out, in] weight is an EqualLinear".into());
    }
    let x = input(b, n, 0)?;
    let w = const_input(b, n, 1)?;
    let dims = b.constant(&w).map(|v| v.dims().to_vec()).unwrap_or_default();
    let [out, in_features] = dims[..] else { return Err(format!("`{w}` is not a matrix")) };
    let bias = n.input.get(2).filter(|s| !s.is_empty()).map(|_| const_input(b, n, 2)).transpose()?;
    let alpha = attr_float(n, "alpha").unwrap_or(1.0);
    // Without a bias, beta says nothing: the gain alone gives lr_mul, as the f32 it was.
    let lr_mul = match bias {
        Some(_) => attr_float(n, "beta").unwrap_or(1.0),
        None => super::as_written((alpha * (in_features as f64).sqrt()) as f32),
    };
    if !is_gain(alpha, lr_mul / (in_features as f64).sqrt()) {
        return Err(format!("alpha {alpha} is not lr_mul {lr_mul} / sqrt({in_features})"));
    }
    let attrs = vec![
        ("out_features", int(out)),
        ("bias", AttrValue::Bool(bias.is_some())),
        ("lr_mul", AttrValue::Float(lr_mul)),
    ];
    let mut params = vec![Param::new("weight", &w)];
    params.extend(bias.as_deref().map(|s| Param::new("bias", s)));
    b.add("EqualLinear", attrs, vec![x], path, &params)
}

/// `Conv(x, W * gain, b)` with `gain = 1 / sqrt(in k k)`, square and symmetric: `EqualConv2d`.
fn equal_conv(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    let (mul, conv) = (&g.nodes[0], &g.nodes[1]);
    let w = const_input(b, mul, 0)?;
    let gain = mul.input.get(1).and_then(|s| b.scalar(s)).ok_or("the scale is not one number")?;
    if conv.input.get(1) != mul.output.first() {
        return Err("the Conv's weight is not the scaled constant".into());
    }
    let dims = b.constant(&w).map(|v| v.dims().to_vec()).unwrap_or_default();
    let [out, in_channels, k, k2] = dims[..] else { return Err(format!("`{w}` is not a 2-d kernel")) };
    let same = |v: Option<Vec<i64>>, n: usize| v.filter(|v| v.len() == n && v.iter().all(|e| *e == v[0]));
    let stride = same(attr_ints(conv, "strides"), 2).ok_or("strides differ by axis")?[0];
    let pad = same(attr_ints(conv, "pads"), 4).ok_or("pads differ by side")?[0];
    if k != k2
        || attr_int(conv, "group").unwrap_or(1) != 1
        || !is_gain(gain, 1.0 / ((in_channels * k * k) as f64).sqrt())
    {
        return Err("not an equalized convolution".into());
    }
    let x = tensor(b, conv, 0)?;
    let bias = conv.input.get(2).filter(|s| !s.is_empty()).map(|_| const_input(b, conv, 2)).transpose()?;
    let attrs = vec![
        ("out_channels", int(out)),
        ("kernel_size", int(k)),
        ("stride", int(stride)),
        ("padding", int(pad)),
        ("bias", AttrValue::Bool(bias.is_some())),
    ];
    let mut params = vec![Param::new("weight", &w)];
    params.extend(bias.as_deref().map(|s| Param::new("bias", s)));
    b.add("EqualConv2d", attrs, vec![x], &g.path, &params)
}

/// The styles (`Gemm`), the squeezed and scaled weight, the modulated input and its `Conv`,
/// then (demodulating) the nine nodes of the per-sample norms.
fn modulated_conv(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    const DEMODULATION: [&str; 9] =
        ["Mul", "ReduceSum", "Mul", "Gemm", "Add", "Sqrt", "Reciprocal", "Unsqueeze", "Mul"];
    let ops = g.op_types();
    let demodulate = match &ops[6..] {
        [] => false,
        tail if tail == DEMODULATION => true,
        _ => return Err("not a modulated convolution".into()),
    };
    let (gemm, squeeze, modulate) = (&g.nodes[0], &g.nodes[1], &g.nodes[4]);
    let (mod_w, mod_b) = (const_input(b, gemm, 1)?, const_input(b, gemm, 2)?);
    let w = const_input(b, squeeze, 0)?;
    let dims = b.constant(&w).map(|v| v.dims().to_vec()).unwrap_or_default();
    let [1, out, _, k, _] = dims[..] else { return Err(format!("`{w}` is not a [1, out, in, k, k] weight")) };
    let (x, style) = (tensor(b, modulate, 0)?, tensor(b, gemm, 0)?);
    let attrs = vec![
        ("out_channels", int(out)),
        ("kernel_size", int(k)),
        ("demodulate", AttrValue::Bool(demodulate)),
    ];
    let params = [
        Param::new("weight", &w),
        Param::new("modulation.weight", &mod_w),
        Param::new("modulation.bias", &mod_b),
    ];
    b.add("ModulatedConv2d", attrs, vec![x, style], &g.path, &params)
}
