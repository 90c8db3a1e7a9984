//! Activations: one ONNX operator each where ONNX has it, else the formula PyTorch documents.

use super::{float, int, Mapped, NodeCtx};

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        "ReLU" => |c| unary(c, "Relu"),
        "Sigmoid" => |c| unary(c, "Sigmoid"),
        "Tanh" => |c| unary(c, "Tanh"),
        "Exp" => |c| unary(c, "Exp"),
        "Hardswish" => |c| unary(c, "HardSwish"),
        "Hardsigmoid" => |c| {
            let x = c.input(0)?;
            Ok(vec![c.op("HardSigmoid", &[&x], vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)])])
        },
        "LeakyReLU" => |c| {
            let (x, slope) = (c.input(0)?, c.node.attrs.float("negative_slope").map_err(|e| e.message)?);
            Ok(vec![c.op("LeakyRelu", &[&x], vec![float("alpha", slope)])])
        },
        "ELU" => |c| {
            let (x, alpha) = (c.input(0)?, c.node.attrs.float("alpha").map_err(|e| e.message)?);
            Ok(vec![c.op("Elu", &[&x], vec![float("alpha", alpha)])])
        },
        "ReLU6" => |c| clip(c, 0.0, 6.0),
        "Hardtanh" => |c| {
            let a = &c.node.attrs;
            let (lo, hi) =
                (a.float("min_val").map_err(|e| e.message)?, a.float("max_val").map_err(|e| e.message)?);
            clip(c, lo, hi)
        },
        "SiLU" => |c| {
            let x = c.input(0)?;
            let s = c.op("Sigmoid", &[&x], vec![]);
            Ok(vec![c.op("Mul", &[&x, &s], vec![])])
        },
        "GELU" => gelu,
        "Softplus" => softplus,
        "Softmax" => |c| along_axis(c, "Softmax"),
        "LogSoftmax" => |c| along_axis(c, "LogSoftmax"),
        _ => return None,
    })
}

fn unary(c: &mut NodeCtx, op: &str) -> Mapped {
    let x = c.input(0)?;
    Ok(vec![c.op(op, &[&x], vec![])])
}

/// `Clip` takes its bounds as inputs since opset 11.
fn clip(c: &mut NodeCtx, lo: f64, hi: f64) -> Mapped {
    let x = c.input(0)?;
    let (lo, hi) = (c.scalar(lo), c.scalar(hi));
    Ok(vec![c.op("Clip", &[&x, &lo, &hi], vec![])])
}

/// Opset 13 on: `Softmax` normalises along the one axis given, as PyTorch's `dim` does.
fn along_axis(c: &mut NodeCtx, op: &str) -> Mapped {
    let x = c.input(0)?;
    let dim = c.node.attrs.int("dim").map_err(|e| e.message)?;
    Ok(vec![c.op(op, &[&x], vec![int("axis", dim)])])
}

/// `0.5 x (1 + erf(x / sqrt 2))`, or the tanh form `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`
/// (ONNX's own `Gelu` arrives with opset 20).
fn gelu(c: &mut NodeCtx) -> Mapped {
    let x = c.input(0)?;
    let tanh_form = c.node.attrs.str("approximate") == Some("tanh");
    let inner = if tanh_form {
        let (three, k, s) =
            (c.scalar(3.0), c.scalar(0.044715), c.scalar((2.0 / std::f64::consts::PI).sqrt()));
        let cube = c.op("Pow", &[&x, &three], vec![]);
        let scaled = c.op("Mul", &[&cube, &k], vec![]);
        let sum = c.op("Add", &[&x, &scaled], vec![]);
        let arg = c.op("Mul", &[&sum, &s], vec![]);
        c.op("Tanh", &[&arg], vec![])
    } else {
        let r = c.scalar(std::f64::consts::FRAC_1_SQRT_2);
        let arg = c.op("Mul", &[&x, &r], vec![]);
        c.op("Erf", &[&arg], vec![])
    };
    let (one, half) = (c.scalar(1.0), c.scalar(0.5));
    let plus = c.op("Add", &[&inner, &one], vec![]);
    let half_x = c.op("Mul", &[&x, &half], vec![]);
    Ok(vec![c.op("Mul", &[&half_x, &plus], vec![])])
}

/// `log(1 + exp(beta x)) / beta`; past `threshold` PyTorch returns `x`, which differs from this
/// by less than `exp(-threshold)`.
fn softplus(c: &mut NodeCtx) -> Mapped {
    let x = c.input(0)?;
    let beta = c.node.attrs.float("beta").map_err(|e| e.message)?;
    if beta == 1.0 {
        return Ok(vec![c.op("Softplus", &[&x], vec![])]);
    }
    let b = c.scalar(beta);
    let scaled = c.op("Mul", &[&x, &b], vec![]);
    let sp = c.op("Softplus", &[&scaled], vec![]);
    Ok(vec![c.op("Div", &[&sp, &b], vec![])])
}
