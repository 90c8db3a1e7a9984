//! Layers with weights and windows: convolution, `Gemm` and `MatMul` by a constant as `Linear`
//! (with the `Transpose`, `MatMul`, `Add` wick's exporter writes for a batch of matrices),
//! pooling, `Resize` as `Upsample`, and `Gather` from a constant table as `Embedding`.

use super::builder::{int, int_list, Builder, Param};
use super::{attr_int, attr_ints, Group};
use crate::ir::graph::{NodeId, TensorRef};
use crate::onnx::export::Initializer;
use crate::onnx::proto::NodeProto;
use crate::ops::AttrValue;

pub(super) type Mapping = fn(&mut Builder, &NodeProto, &str) -> Result<NodeId, String>;

pub(super) fn mapping(op_type: &str) -> Option<Mapping> {
    Some(match op_type {
        "Conv" => |b, n, p| conv(b, n, p, false),
        "ConvTranspose" => |b, n, p| conv(b, n, p, true),
        "Gemm" => gemm,
        "MaxPool" => |b, n, p| pool(b, n, p, "MaxPool2d"),
        "AveragePool" => |b, n, p| pool(b, n, p, "AvgPool2d"),
        "GlobalAveragePool" => |b, n, p| {
            let x = input(b, n, 0)?;
            b.add("AdaptiveAvgPool2d", vec![("output_size", int(1))], vec![x], p, &[])
        },
        "Gather" => embedding,
        "Resize" => resize,
        _ => return None,
    })
}

/// Input `k` of `node` as a wick tensor (not a constant).
pub(super) fn input(b: &mut Builder, node: &NodeProto, k: usize) -> Result<TensorRef, String> {
    let name = node.input.get(k).filter(|s| !s.is_empty()).ok_or_else(|| format!("input {k} is missing"))?;
    if b.is_const(name) && b.get(name).is_none() {
        return Err(format!("input {k} is a constant"));
    }
    b.tensor(name)
}

/// Input `k` when it is a constant.
pub(super) fn const_input(b: &Builder, node: &NodeProto, k: usize) -> Result<String, String> {
    node.input.get(k).filter(|s| b.is_const(s)).cloned().ok_or_else(|| format!("input {k} is not a constant"))
}

/// ONNX pads `[begins..., ends...]` as PyTorch's symmetric padding.
fn symmetric(pads: &[i64], spatial: usize) -> Result<Vec<i64>, String> {
    if pads.is_empty() {
        return Ok(vec![0; spatial]);
    }
    let (begin, end) = pads.split_at(pads.len() / 2);
    if begin != end || begin.len() != spatial {
        return Err(format!("pads {pads:?} are not the same on both sides"));
    }
    Ok(begin.to_vec())
}

/// `Conv` (weight `[out, in / groups, k...]`) or `ConvTranspose` (`[in, out / groups, k...]`,
/// PyTorch's layout too).
fn conv(b: &mut Builder, n: &NodeProto, path: &str, transposed: bool) -> Result<NodeId, String> {
    let x = input(b, n, 0)?;
    let w = const_input(b, n, 1)?;
    let dims = b.constant(&w).map(|v| v.dims().to_vec()).unwrap_or_default();
    let spatial = dims.len().saturating_sub(2);
    let kind = match (spatial, transposed) {
        (1, false) => "Conv1d",
        (2, false) => "Conv2d",
        (2, true) => "ConvTranspose2d",
        _ => return Err(format!("a {spatial}-d convolution has no wick op")),
    };
    let groups = attr_int(n, "group").unwrap_or(1);
    let out_channels = if transposed { dims[1].saturating_mul(groups) } else { dims[0] };
    if transposed
        && (attr_ints(n, "output_shape").is_some()
            || attr_ints(n, "output_padding").is_some_and(|p| p.len() != spatial))
    {
        return Err("output_shape is not read".into());
    }
    if super::attr_str(n, "auto_pad").is_some_and(|p| p != "NOTSET") {
        return Err("auto_pad is not read".into());
    }
    let one = vec![1; spatial];
    let bias = n.input.get(2).is_some_and(|s| !s.is_empty());
    let mut attrs = vec![
        ("out_channels", int(out_channels)),
        ("kernel_size", int_list(&dims[2..])),
        ("stride", int_list(&attr_ints(n, "strides").unwrap_or_else(|| one.clone()))),
        ("padding", int_list(&symmetric(&attr_ints(n, "pads").unwrap_or_default(), spatial)?)),
        ("dilation", int_list(&attr_ints(n, "dilations").unwrap_or(one))),
        ("groups", int(groups)),
        ("bias", AttrValue::Bool(bias)),
    ];
    if transposed {
        attrs.push(("output_padding", int_list(&attr_ints(n, "output_padding").unwrap_or(vec![0; spatial]))));
    }
    let bias_name = if bias { const_input(b, n, 2)? } else { String::new() };
    let mut params = vec![Param::new("weight", &w)];
    if bias {
        params.push(Param::new("bias", &bias_name));
    }
    b.add(kind, attrs, vec![x], path, &params)
}

/// `Gemm(x, W, b)` with `alpha = beta = 1`: `Linear`, its weight transposed when `transB` is 0;
/// with other gains, StyleGAN's `EqualLinear`.
fn gemm(b: &mut Builder, n: &NodeProto, path: &str) -> Result<NodeId, String> {
    let scaled = |name| super::attr_float(n, name).is_some_and(|a| a != 1.0);
    if scaled("alpha") || scaled("beta") {
        return super::style::equal_linear(b, n, path);
    }
    if attr_int(n, "transA").is_some_and(|t| t != 0) {
        return Err("only Gemm with alpha = beta = 1 and no transA is a Linear".into());
    }
    let x = input(b, n, 0)?;
    let w = const_input(b, n, 1)?;
    let transpose = attr_int(n, "transB").unwrap_or(0) == 0;
    let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
        Some(_) => Some(const_input(b, n, 2)?),
        None => None,
    };
    add_linear(b, x, &w, transpose, bias.as_deref(), path)
}

/// `Linear` on `x` with weight `w` (`[out, in]`, or `[in, out]` when `transpose`).
fn add_linear(
    b: &mut Builder,
    x: TensorRef,
    w: &str,
    transpose: bool,
    bias: Option<&str>,
    path: &str,
) -> Result<NodeId, String> {
    let dims = b.constant(w).map(|v| v.dims().to_vec()).unwrap_or_default();
    if dims.len() != 2 {
        return Err(format!("`{w}` is not a matrix"));
    }
    let out = if transpose { dims[1] } else { dims[0] };
    if let Some(bias) = bias {
        if b.constant(bias).map(|v| v.dims().iter().product::<i64>()) != Some(out) {
            return Err(format!("`{bias}` is not a bias of {out} values"));
        }
    }
    let attrs = vec![("out_features", int(out)), ("bias", AttrValue::Bool(bias.is_some()))];
    let mut params = vec![Param { name: "weight", source: w, transpose }];
    params.extend(bias.map(|s| Param::new("bias", s)));
    b.add("Linear", attrs, vec![x], path, &params)
}

/// `[Transpose(W)], MatMul, [Add(b)]` with `W` a constant: wick's exporter's `Linear` on a batch
/// of matrices (`Transpose` of `[out, in]`), and torch.onnx's (`MatMul` by `[in, out]`).
pub(super) fn linear(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    let ops = g.op_types();
    let (w, transpose, matmul) = match ops.as_slice() {
        ["Transpose", "MatMul"] | ["Transpose", "MatMul", "Add"] => {
            let t = &g.nodes[0];
            if attr_ints(t, "perm").is_some_and(|p| p != [1, 0]) {
                return Err("not a matrix transpose".into());
            }
            (const_input(b, t, 0)?, false, &g.nodes[1])
        }
        ["MatMul", "Add"] => (const_input(b, &g.nodes[0], 1)?, true, &g.nodes[0]),
        _ => return Err("not a linear layer".into()),
    };
    let x_name = matmul.input.first().ok_or("MatMul without input")?;
    let x = b.get(x_name).ok_or("the MatMul's left operand is not a tensor")?;
    let bias = match ops.last() {
        Some(&"Add") => {
            let add = &g.nodes[g.nodes.len() - 1];
            Some(add.input.iter().find(|i| b.is_const(i)).cloned().ok_or("the Add has no constant bias")?)
        }
        _ => None,
    };
    add_linear(b, x, &w, transpose, bias.as_deref(), &g.path)
}

fn pool(b: &mut Builder, n: &NodeProto, path: &str, kind: &str) -> Result<NodeId, String> {
    let x = input(b, n, 0)?;
    let kernel = attr_ints(n, "kernel_shape").ok_or("no kernel_shape")?;
    if kernel.len() != 2 {
        return Err("only 2-d pools are read".into());
    }
    let mut attrs = vec![
        ("kernel_size", int_list(&kernel)),
        ("stride", int_list(&attr_ints(n, "strides").unwrap_or(vec![1, 1]))),
        ("padding", int_list(&symmetric(&attr_ints(n, "pads").unwrap_or_default(), 2)?)),
        ("ceil_mode", AttrValue::Bool(attr_int(n, "ceil_mode").unwrap_or(0) != 0)),
    ];
    if kind == "MaxPool2d" {
        attrs.push(("dilation", int_list(&attr_ints(n, "dilations").unwrap_or(vec![1, 1]))));
    } else {
        attrs
            .push(("count_include_pad", AttrValue::Bool(attr_int(n, "count_include_pad").unwrap_or(0) != 0)));
    }
    b.add(kind, attrs, vec![x], path, &[])
}

/// `Resize` to constant sizes as wick's exporter writes `Upsample`: nearest with the source
/// index floored, or linear and cubic with PyTorch's half-pixel or corner-aligned coordinates.
fn resize(b: &mut Builder, n: &NodeProto, path: &str) -> Result<NodeId, String> {
    let x = input(b, n, 0)?;
    let sizes = n.input.get(3).and_then(|s| b.ints(s)).ok_or("only a Resize to constant sizes is read")?;
    let spatial = sizes.get(2..).filter(|s| !s.is_empty()).ok_or("no spatial axes")?;
    let attr = |name: &str, default: &str| super::attr_str(n, name).unwrap_or_else(|| default.into());
    let (mode, coordinates) = (attr("mode", "nearest"), attr("coordinate_transformation_mode", "half_pixel"));
    let corners = match (mode.as_str(), coordinates.as_str()) {
        ("nearest", "asymmetric") if attr("nearest_mode", "round_prefer_floor") == "floor" => None,
        ("linear" | "cubic", "half_pixel" | "pytorch_half_pixel") => Some(false),
        ("linear" | "cubic", "align_corners") => Some(true),
        _ => return Err(format!("Resize {mode} with {coordinates} coordinates is not PyTorch's")),
    };
    let mode = match (mode.as_str(), spatial.len()) {
        ("nearest", _) => "nearest",
        ("linear", 1) => "linear",
        ("linear", 2) => "bilinear",
        ("linear", 3) => "trilinear",
        ("cubic", 2) => "bicubic",
        _ => return Err(format!("{mode} over {} axes has no Upsample mode", spatial.len())),
    };
    let mut attrs = vec![("size", int_list(spatial)), ("mode", AttrValue::Str(mode.into()))];
    attrs.extend(corners.map(|c| ("align_corners", AttrValue::Bool(c))));
    b.add("Upsample", attrs, vec![x], path, &[])
}

/// `Gather(table, ids)` along axis 0 of a constant float matrix: `Embedding`; a constant index
/// into a sequence: `SelectToken`.
fn embedding(b: &mut Builder, n: &NodeProto, path: &str) -> Result<NodeId, String> {
    if n.input.first().is_some_and(|t| !b.is_const(t)) {
        return super::sequence::select_token(b, n, path);
    }
    if attr_int(n, "axis").unwrap_or(0) != 0 {
        return Err("Gather along another axis than 0".into());
    }
    let table = const_input(b, n, 0)?;
    let Some(Initializer::F32 { dims, .. }) = b.constant(&table) else {
        return Err("the table is not a float constant".into());
    };
    let dims = dims.clone();
    if dims.len() != 2 {
        return Err("the table is not a matrix".into());
    }
    let ids = input(b, n, 1)?;
    let attrs = vec![("num_embeddings", int(dims[0])), ("embedding_dim", int(dims[1]))];
    b.add("Embedding", attrs, vec![ids], path, &[Param::new("weight", &table)])
}
