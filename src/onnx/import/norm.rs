//! Normalisations: `BatchNormalization` with its running statistics as buffers, opset 17's
//! `LayerNormalization`, and RMSNorm and PixelNorm from the formula wick's exporter writes.

use super::builder::{int_list, Builder, Param};
use super::nn::{const_input, input, Mapping};
use super::{attr_float, attr_int, attr_ints, Group};
use crate::ir::graph::NodeId;
use crate::onnx::export::Initializer;
use crate::onnx::proto::NodeProto;
use crate::ops::AttrValue;

pub(super) fn mapping(op_type: &str) -> Option<Mapping> {
    Some(match op_type {
        "BatchNormalization" => batch_norm,
        "LayerNormalization" => layer_norm,
        _ => return None,
    })
}

fn batch_norm(b: &mut Builder, n: &NodeProto, path: &str) -> Result<NodeId, String> {
    if n.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err("training-mode BatchNormalization (with statistics outputs)".into());
    }
    let x = input(b, n, 0)?;
    let kind = match b.ty(x).rank() {
        4 => "BatchNorm2d",
        2 | 3 => "BatchNorm1d",
        r => return Err(format!("a batch norm over a rank-{r} input has no wick op")),
    };
    let names: Vec<String> = (1..5).map(|k| const_input(b, n, k)).collect::<Result<_, _>>()?;
    let eps = attr_float(n, "epsilon").unwrap_or(1e-5);
    let attrs = vec![("eps", AttrValue::Float(eps))];
    let params = [
        Param::new("weight", &names[0]),
        Param::new("bias", &names[1]),
        Param::new("running_mean", &names[2]),
        Param::new("running_var", &names[3]),
    ];
    b.add(kind, attrs, vec![x], path, &params)
}

fn layer_norm(b: &mut Builder, n: &NodeProto, path: &str) -> Result<NodeId, String> {
    let x = input(b, n, 0)?;
    let ty = b.ty(x);
    let axis = attr_int(n, "axis").unwrap_or(-1);
    let first = ty.axis(axis).ok_or_else(|| format!("axis {axis} is out of range"))?;
    let normalized: Vec<i64> = ty.shape[first..]
        .iter()
        .map(|d| d.eval(&b.bindings).ok_or_else(|| format!("the normalized size `{d}` has no value")))
        .collect::<Result<_, _>>()?;
    let scale = const_input(b, n, 1)?;
    let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
        Some(_) => Some(const_input(b, n, 2)?),
        None => None,
    };
    // A scale of ones that is no layer's weight stands for no affine transform (ONNX's
    // LayerNormalization requires one; wick's exporter writes it so).
    let ones =
        matches!(b.constant(&scale), Some(Initializer::F32 { data, .. }) if data.iter().all(|v| *v == 1.0));
    let affine = !(ones && bias.is_none() && !scale.ends_with("weight"));
    let attrs = vec![
        ("normalized_shape", int_list(&normalized)),
        ("eps", AttrValue::Float(attr_float(n, "epsilon").unwrap_or(1e-5))),
        ("bias", AttrValue::Bool(bias.is_some())),
        ("elementwise_affine", AttrValue::Bool(affine)),
    ];
    if !affine {
        return b.add("LayerNorm", attrs, vec![x], path, &[]);
    }
    let mut params = vec![Param::new("weight", &scale)];
    params.extend(bias.as_deref().map(|s| Param::new("bias", s)));
    b.add("LayerNorm", attrs, vec![x], path, &params)
}

/// `x / sqrt(mean(x * x) + eps)` over the trailing axes, times a constant weight when one
/// follows: `Mul, ReduceMean, Add, Sqrt, Div[, Mul]`; over the channels, PixelNorm.
pub(super) fn rms_norm(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    let ops = g.op_types();
    let affine = match ops.as_slice() {
        ["Mul", "ReduceMean", "Add", "Sqrt", "Div"] => false,
        ["Mul", "ReduceMean", "Add", "Sqrt", "Div", "Mul"] => true,
        _ => return Err("not an RMSNorm".into()),
    };
    let inputs = g.external_inputs(b);
    let [x_name] = inputs.as_slice() else { return Err("not one input".into()) };
    let x = b.get(x_name).ok_or("input not read")?;
    let rank = b.ty(x).rank() as i64;
    let mean = &g.nodes[1];
    let axes = match attr_ints(mean, "axes") {
        Some(a) => a,
        None => b.ints(&const_input(b, mean, 1)?).ok_or("no axes")?,
    };
    let axes: Vec<i64> = axes.iter().map(|a| if *a < 0 { a + rank } else { *a }).collect();
    let eps_name = g.nodes[2].input.iter().find(|i| b.is_const(i)).ok_or("no eps")?;
    let eps = b.scalar(eps_name).ok_or("eps is not a scalar")?;
    // StyleGAN's PixelNorm is the same formula over the channels (axis 1) at any rank: the
    // layer name wick's exporter gives it (`pixelnorm`) tells the two apart.
    let named_pixel_norm = g.path.rsplit('.').next().is_some_and(|s| s.starts_with("pixelnorm"));
    if axes == [1] && !affine && named_pixel_norm {
        return b.add("PixelNorm", vec![("eps", AttrValue::Float(eps))], vec![x], &g.path, &[]);
    }
    if axes.is_empty()
        || axes.len() as i64 > rank
        || axes.iter().enumerate().any(|(k, a)| *a != rank - axes.len() as i64 + k as i64)
    {
        return Err("not over the trailing axes".into());
    }
    let ty = b.ty(x);
    let normalized: Vec<i64> = ty.shape[(rank as usize - axes.len())..]
        .iter()
        .map(|d| d.eval(&b.bindings).ok_or("a normalized size has no value"))
        .collect::<Result<_, _>>()?;
    let attrs = vec![
        ("normalized_shape", int_list(&normalized)),
        ("eps", AttrValue::Float(eps)),
        ("elementwise_affine", AttrValue::Bool(affine)),
    ];
    let weight = if affine { g.nodes[5].input.iter().find(|i| b.is_const(i)).cloned() } else { None };
    if affine && weight.is_none() {
        return Err("the scale is not a constant".into());
    }
    let params: Vec<Param> = weight.iter().map(|w| Param::new("weight", w)).collect();
    b.add("RMSNorm", attrs, vec![x], &g.path, &params)
}
