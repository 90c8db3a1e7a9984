//! Layers with weights and windows: Linear, convolution, pooling, batch and layer norm, embedding.

use super::{float, int, ints, string, Mapped, NodeCtx};
use crate::onnx::proto::AttributeProto;
use crate::ops::geometry::{Padding, Window};

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        "Linear" => linear,
        "Conv1d" => |c| conv(c, 1),
        "Conv2d" => |c| conv(c, 2),
        "ConvTranspose2d" => conv_transpose,
        "Upsample" => upsample,
        "MaxPool2d" => |c| pool(c, "MaxPool"),
        "AvgPool2d" => |c| pool(c, "AveragePool"),
        "AdaptiveAvgPool2d" | "GlobalAvgPool" => adaptive_avg_pool,
        "Embedding" => |c| {
            let (w, ids) = (c.weight("weight")?, c.input(0)?);
            Ok(vec![c.op("Gather", &[&w, &ids], vec![int("axis", 0)])])
        },
        _ => return None,
    })
}

/// `x W^T + b`: one `Gemm` on a matrix, `MatMul` by the transposed weight on a batch of them.
fn linear(c: &mut NodeCtx) -> Mapped {
    let x = c.input(0)?;
    let w = c.weight("weight")?;
    let bias = c.node.attrs.bool("bias").map_err(|e| e.message)?;
    let b = if bias { Some(c.weight("bias")?) } else { None };
    if c.input_type(0)?.rank() == 2 {
        let mut inputs = vec![x.as_str(), w.as_str()];
        inputs.extend(b.as_deref());
        return Ok(vec![c.op("Gemm", &inputs, vec![int("transB", 1)])]);
    }
    let wt = c.op("Transpose", &[&w], vec![ints("perm", &[1, 0])]);
    let y = c.op("MatMul", &[&x, &wt], vec![]);
    Ok(vec![match b {
        Some(b) => c.op("Add", &[&y, &b], vec![]),
        None => y,
    }])
}

/// ONNX pads as `[begin of each axis..., end of each axis...]`; "same" pads as PyTorch does,
/// the odd cell after.
fn onnx_pads(w: &Window) -> Vec<i64> {
    let n = w.kernel.len();
    let (begin, end): (Vec<i64>, Vec<i64>) = match &w.padding {
        Padding::Explicit(p) => (p.clone(), p.clone()),
        Padding::Valid => (vec![0; n], vec![0; n]),
        Padding::Same => (0..n)
            .map(|i| {
                let total = w.dilation[i] * (w.kernel[i] - 1);
                (total / 2, total - total / 2)
            })
            .unzip(),
    };
    [begin, end].concat()
}

fn window(c: &NodeCtx, spatial: usize) -> Result<Window, String> {
    Window::from_attrs(&c.node.attrs, spatial).map_err(|e| e.message)
}

fn conv(c: &mut NodeCtx, spatial: usize) -> Mapped {
    if let Some(mode) = c.node.attrs.str("padding_mode").filter(|m| *m != "zeros") {
        return Err(format!("padding_mode \"{mode}\" has no ONNX Conv attribute; only \"zeros\" exports"));
    }
    convolution(c, "Conv", spatial, None)
}

/// PyTorch's weight layout `[in, out / groups, kH, kW]` is ONNX's too.
fn conv_transpose(c: &mut NodeCtx) -> Mapped {
    let output_padding = c.node.attrs.ints("output_padding", 2).map_err(|e| e.message)?;
    convolution(c, "ConvTranspose", 2, Some(ints("output_padding", &output_padding)))
}

/// `Conv` or `ConvTranspose`: input, weight and bias under their keys, the window's attributes.
fn convolution(c: &mut NodeCtx, op: &str, spatial: usize, extra: Option<AttributeProto>) -> Mapped {
    let w = window(c, spatial)?;
    let a = &c.node.attrs;
    let groups = a.int("groups").map_err(|e| e.message)?;
    let bias = a.bool("bias").map_err(|e| e.message)?;
    let mut inputs = vec![c.input(0)?, c.weight("weight")?];
    if bias {
        inputs.push(c.weight("bias")?);
    }
    let mut attrs = vec![
        ints("kernel_shape", &w.kernel),
        ints("strides", &w.stride),
        ints("pads", &onnx_pads(&w)),
        ints("dilations", &w.dilation),
        int("group", groups),
    ];
    attrs.extend(extra);
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    Ok(vec![c.op(op, &refs, attrs)])
}

/// `Resize` to the output's size: nearest as PyTorch's (the source index floored), the
/// interpolating modes with PyTorch's half-pixel or corner-aligned coordinates.
fn upsample(c: &mut NodeCtx) -> Mapped {
    let a = &c.node.attrs;
    let mode = a.str("mode").unwrap_or("nearest").to_string();
    let corners = !a.is_none("align_corners") && a.bool("align_corners").map_err(|e| e.message)?;
    let y_ty = c.output_type(0)?.clone();
    let sizes: Vec<i64> =
        y_ty.shape.iter().map(|d| c.bound(d, "the output size")).collect::<Result<_, _>>()?;
    // `pytorch_half_pixel` differs from `half_pixel` only on an axis of output size 1, and
    // some runtimes (tract) know only the second.
    let coordinates = match (corners, sizes[2..].iter().all(|s| *s > 1)) {
        (true, _) => "align_corners",
        (false, true) => "half_pixel",
        (false, false) => "pytorch_half_pixel",
    };
    let mut attrs = match mode.as_str() {
        "nearest" => vec![
            string("mode", "nearest"),
            string("coordinate_transformation_mode", "asymmetric"),
            string("nearest_mode", "floor"),
        ],
        "linear" | "bilinear" | "trilinear" => {
            vec![string("mode", "linear"), string("coordinate_transformation_mode", coordinates)]
        }
        "bicubic" => vec![
            string("mode", "cubic"),
            string("coordinate_transformation_mode", coordinates),
            float("cubic_coeff_a", -0.75),
        ],
        other => return Err(format!("mode \"{other}\" has no ONNX Resize mode")),
    };
    attrs.sort_by(|x, y| x.name.cmp(&y.name));
    let y_ty = c.output_type(0)?.clone();
    let sizes: Vec<i64> =
        y_ty.shape.iter().map(|d| c.bound(d, "the output size")).collect::<Result<_, _>>()?;
    let (x, sizes) = (c.input(0)?, c.const_i64(&sizes));
    Ok(vec![c.op("Resize", &[&x, "", "", &sizes], attrs)])
}

fn pool(c: &mut NodeCtx, op: &str) -> Mapped {
    let w = window(c, 2)?;
    let a = &c.node.attrs;
    let mut attrs = vec![
        ints("kernel_shape", &w.kernel),
        ints("strides", &w.stride),
        ints("pads", &onnx_pads(&w)),
        int("ceil_mode", i64::from(w.ceil_mode)),
    ];
    if op == "MaxPool" {
        attrs.push(ints("dilations", &w.dilation));
    } else {
        if !a.is_none("divisor_override") {
            return Err("`divisor_override` has no ONNX AveragePool attribute".into());
        }
        attrs.push(int("count_include_pad", i64::from(a.bool("count_include_pad").map_err(|e| e.message)?)));
    }
    if c.input_type(0)?.rank() != 4 {
        return Err("ONNX pools take [N, C, H, W]; this input has no batch axis".into());
    }
    let x = c.input(0)?;
    Ok(vec![c.op(op, &[&x], attrs)])
}

/// Output 1x1 is `GlobalAveragePool`; sizes that divide the input are a plain `AveragePool`
/// (the adaptive windows are then all equal); others have no ONNX operator.
fn adaptive_avg_pool(c: &mut NodeCtx) -> Mapped {
    let (x_ty, y_ty) = (c.input_type(0)?.clone(), c.output_type(0)?.clone());
    if x_ty.rank() != 4 {
        return Err("ONNX pools take [N, C, H, W]; this input has no batch axis".into());
    }
    let x = c.input(0)?;
    let out: Vec<i64> =
        y_ty.shape[2..].iter().map(|d| c.bound(d, "the output size")).collect::<Result<_, _>>()?;
    if out == [1, 1] {
        return Ok(vec![c.op("GlobalAveragePool", &[&x], vec![])]);
    }
    let input: Vec<i64> =
        x_ty.shape[2..].iter().map(|d| c.bound(d, "the input size")).collect::<Result<_, _>>()?;
    if input.iter().zip(&out).any(|(i, o)| i % o != 0) {
        return Err(format!(
            "output size {out:?} does not divide input size {input:?}: ONNX has no adaptive pool"
        ));
    }
    let kernel: Vec<i64> = input.iter().zip(&out).map(|(i, o)| i / o).collect();
    Ok(vec![c.op("AveragePool", &[&x], vec![ints("kernel_shape", &kernel), ints("strides", &kernel)])])
}
