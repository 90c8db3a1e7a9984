//! Activations: one ONNX operator each, and the compositions wick's exporter writes for GELU
//! (erf and tanh forms) and SiLU.

use super::builder::{int, Builder};
use super::nn::{input, Mapping};
use super::{attr_float, attr_int, attr_str, Group};
use crate::ir::graph::NodeId;
use crate::onnx::proto::NodeProto;
use crate::ops::AttrValue;

pub(super) fn mapping(op_type: &str) -> Option<Mapping> {
    Some(match op_type {
        "Relu" => |b, n, p| unary(b, n, p, "ReLU", vec![]),
        "Sigmoid" => |b, n, p| unary(b, n, p, "Sigmoid", vec![]),
        "Tanh" => |b, n, p| unary(b, n, p, "Tanh", vec![]),
        "Exp" => |b, n, p| unary(b, n, p, "Exp", vec![]),
        "HardSwish" => |b, n, p| unary(b, n, p, "Hardswish", vec![]),
        // PyTorch's Hardsigmoid is ONNX's with alpha 1/6 and beta 1/2.
        "HardSigmoid" => |b, n, p| {
            let alpha = attr_float(n, "alpha").unwrap_or(0.2);
            let beta = attr_float(n, "beta").unwrap_or(0.5);
            if (alpha - 1.0 / 6.0).abs() > 1e-6 || (beta - 0.5).abs() > 1e-6 {
                return Err(format!("HardSigmoid with alpha {alpha} and beta {beta} is not PyTorch's"));
            }
            unary(b, n, p, "Hardsigmoid", vec![])
        },
        "Sqrt" => |b, n, p| unary(b, n, p, "sqrt", vec![]),
        "Softplus" => |b, n, p| unary(b, n, p, "Softplus", vec![]),
        "LeakyRelu" => |b, n, p| {
            let slope = attr_float(n, "alpha").unwrap_or(0.01);
            unary(b, n, p, "LeakyReLU", vec![("negative_slope", AttrValue::Float(slope))])
        },
        "Elu" => |b, n, p| {
            let alpha = attr_float(n, "alpha").unwrap_or(1.0);
            unary(b, n, p, "ELU", vec![("alpha", AttrValue::Float(alpha))])
        },
        "Gelu" => |b, n, p| {
            let approximate = attr_str(n, "approximate").unwrap_or_else(|| "none".into());
            unary(b, n, p, "GELU", vec![("approximate", AttrValue::Str(approximate))])
        },
        "Softmax" => |b, n, p| {
            let axis = attr_int(n, "axis").unwrap_or(-1);
            unary(b, n, p, "Softmax", vec![("dim", int(axis))])
        },
        "LogSoftmax" => |b, n, p| {
            let axis = attr_int(n, "axis").unwrap_or(-1);
            unary(b, n, p, "LogSoftmax", vec![("dim", int(axis))])
        },
        _ => return None,
    })
}

fn unary(
    b: &mut Builder,
    n: &NodeProto,
    path: &str,
    kind: &str,
    attrs: Vec<(&'static str, AttrValue)>,
) -> Result<NodeId, String> {
    let x = input(b, n, 0)?;
    b.add(kind, attrs, vec![x], path, &[])
}

/// `0.5 x (1 + erf(x / sqrt 2))` or its tanh form: arithmetic on one input with `Erf`, or
/// with `Pow` and `Tanh`, and nothing else.
pub(super) fn gelu(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    let ops = g.op_types();
    if !ops.iter().all(|o| matches!(*o, "Mul" | "Add" | "Div" | "Pow" | "Tanh" | "Erf")) {
        return Err("not a GELU".into());
    }
    let approximate = match (ops.contains(&"Erf"), ops.contains(&"Tanh") && ops.contains(&"Pow")) {
        (true, false) if ops.len() == 5 => "none",
        (false, true) if ops.len() == 8 => "tanh",
        _ => return Err("not a GELU".into()),
    };
    let inputs = g.external_inputs(b);
    let [x] = inputs.as_slice() else { return Err("not one input".into()) };
    let x = b.get(x).ok_or("input not read")?;
    b.add("GELU", vec![("approximate", AttrValue::Str(approximate.into()))], vec![x], &g.path, &[])
}

/// `x * sigmoid(x)`.
pub(super) fn silu(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    if g.op_types() != ["Sigmoid", "Mul"] {
        return Err("not a SiLU".into());
    }
    let inputs = g.external_inputs(b);
    let [x] = inputs.as_slice() else { return Err("not one input".into()) };
    let x = b.get(x).ok_or("input not read")?;
    b.add("SiLU", vec![], vec![x], &g.path, &[])
}
