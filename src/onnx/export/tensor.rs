//! Shape and arithmetic ops: reshapes, transposes, elementwise arithmetic, concatenation and
//! splitting, reductions (variance and standard deviation among them), running sums, `where`;
//! bare parameters and per-channel biases; and the ops eval mode removes (dropout, stochastic
//! depth, identity).

use super::{int, ints, tensor_attr, Initializer, Mapped, NodeCtx};
use crate::ir::tensor::{DType, TensorType};
use crate::ops::variance::Variance;

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        // Eval mode: the input passes through unchanged, so no node is written.
        "Identity" | "Dropout" | "StochasticDepth" => |c| Ok(vec![c.input(0)?]),
        "add" => |c| binary(c, "Add"),
        "sub" => |c| binary(c, "Sub"),
        "mul" => |c| binary(c, "Mul"),
        "div" => |c| binary(c, "Div"),
        "matmul" => |c| binary(c, "MatMul"),
        "sqrt" => |c| {
            let x = c.input(0)?;
            Ok(vec![c.op("Sqrt", &[&x], vec![])])
        },
        "pow" => |c| scalar_op(c, "Pow", "exponent"),
        "scale" => |c| scalar_op(c, "Mul", "factor"),
        "clamp" => clamp,
        "Flatten" => flatten,
        "reshape" => reshape,
        "permute" => |c| {
            let rank = c.input_type(0)?.rank() as i64;
            let dims = c.node.attrs.int_list("dims").map_err(|e| e.message)?;
            let perm: Vec<i64> = dims.iter().map(|d| if *d < 0 { d + rank } else { *d }).collect();
            let x = c.input(0)?;
            Ok(vec![c.op("Transpose", &[&x], vec![ints("perm", &perm)])])
        },
        "transpose" => |c| {
            let ty = c.input_type(0)?.clone();
            let axis = |name| -> Result<usize, String> {
                let v = c.node.attrs.int(name).map_err(|e| e.message)?;
                ty.axis(v).ok_or_else(|| format!("`{name}` {v} is out of range"))
            };
            let (a, b) = (axis("dim0")?, axis("dim1")?);
            let mut perm: Vec<i64> = (0..ty.rank() as i64).collect();
            perm.swap(a, b);
            let x = c.input(0)?;
            Ok(vec![c.op("Transpose", &[&x], vec![ints("perm", &perm)])])
        },
        "zeros_like" => zeros_like,
        "concat" => |c| {
            let axis = c.node.attrs.int("axis").map_err(|e| e.message)?;
            let xs = c.inputs.clone();
            let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
            Ok(vec![c.op("Concat", &refs, vec![int("axis", axis)])])
        },
        "split" | "chunk" => split,
        "slice" => slice,
        "mean" => |c| reduce(c, "ReduceMean"),
        "sum" => |c| reduce(c, "ReduceSum"),
        "var" => |c| variance(c, false),
        "std" => |c| variance(c, true),
        "cumsum" => |c| {
            let v = c.node.attrs.int("axis").map_err(|e| e.message)?;
            let axis = c.input_type(0)?.axis(v).ok_or_else(|| format!("`axis` {v} is out of range"))?;
            let (x, axis) = (c.input(0)?, c.const_scalar_i64(axis as i64));
            Ok(vec![c.op("CumSum", &[&x, &axis], vec![])])
        },
        "where" => |c| {
            let (mask, a, b) = (c.input(0)?, c.input(1)?, c.input(2)?);
            Ok(vec![c.op("Where", &[&mask, &a, &b], vec![])])
        },
        // The tensor is the initializer itself: no node.
        "Parameter" => |c| Ok(vec![c.weight("")?]),
        "Bias" => bias,
        _ => return None,
    })
}

fn binary(c: &mut NodeCtx, op: &str) -> Mapped {
    if op == "Div" && !c.input_type(0)?.dtype.is_float() {
        return Err(
            "integer division to floats (PyTorch's `/` on ints) needs a Cast; not exported yet".into()
        );
    }
    let (a, b) = (c.input(0)?, c.input(1)?);
    Ok(vec![c.op(op, &[&a, &b], vec![])])
}

/// `x op k` for the float attribute `attr`.
fn scalar_op(c: &mut NodeCtx, op: &str, attr: &'static str) -> Mapped {
    let k = c.node.attrs.float(attr).map_err(|e| e.message)?;
    let (x, k) = (c.input(0)?, c.scalar(k));
    Ok(vec![c.op(op, &[&x, &k], vec![])])
}

/// `Clip` with either bound left out as an empty input name.
fn clamp(c: &mut NodeCtx) -> Mapped {
    let a = &c.node.attrs;
    let lo = if a.is_none("min") { None } else { Some(a.float("min").map_err(|e| e.message)?) };
    let hi = if a.is_none("max") { None } else { Some(a.float("max").map_err(|e| e.message)?) };
    let x = c.input(0)?;
    let lo = lo.map(|v| c.scalar(v)).unwrap_or_default();
    let hi = hi.map(|v| c.scalar(v)).unwrap_or_default();
    Ok(vec![c.op("Clip", &[&x, &lo, &hi], vec![])])
}

/// `Flatten` from axis 1 to the end is ONNX's own; any other range is a `Reshape`.
fn flatten(c: &mut NodeCtx) -> Mapped {
    let (x_ty, y_ty) = (c.input_type(0)?.clone(), c.output_type(0)?.clone());
    let x = c.input(0)?;
    if y_ty.rank() == 2 && x_ty.shape.first() == y_ty.shape.first() && x_ty.rank() >= 2 {
        return Ok(vec![c.op("Flatten", &[&x], vec![int("axis", 1)])]);
    }
    reshape(c)
}

fn reshape(c: &mut NodeCtx) -> Mapped {
    let (x_ty, y_ty) = (c.input_type(0)?.clone(), c.output_type(0)?.clone());
    let target = c.reshape_target(&x_ty.shape, &y_ty.shape)?;
    let (x, shape) = (c.input(0)?, c.const_i64(&target));
    Ok(vec![c.op("Reshape", &[&x, &shape], vec![])])
}

/// The pieces' sizes are the output types' along the axis.
fn split(c: &mut NodeCtx) -> Mapped {
    let x_ty = c.input_type(0)?.clone();
    let v = c.node.attrs.int("axis").map_err(|e| e.message)?;
    let axis = x_ty.axis(v).ok_or_else(|| format!("`axis` {v} is out of range"))?;
    let outputs = c.node.outputs.clone();
    let sizes: Vec<i64> =
        outputs.iter().map(|t| c.bound(&t.shape[axis], "a piece's size")).collect::<Result<_, _>>()?;
    let (x, sizes_name) = (c.input(0)?, c.const_i64(&sizes));
    Ok(c.op_n("Split", &[&x, &sizes_name], vec![int("axis", axis as i64)], sizes.len()))
}

fn slice(c: &mut NodeCtx) -> Mapped {
    let x_ty = c.input_type(0)?.clone();
    let a = &c.node.attrs;
    let v = a.int("axis").map_err(|e| e.message)?;
    let axis = x_ty.axis(v).ok_or_else(|| format!("`axis` {v} is out of range"))?;
    let start = c.bound(&a.dim("start").map_err(|e| e.message)?, "`start`")?;
    let end =
        if a.is_none("end") { i64::MAX } else { c.bound(&a.dim("end").map_err(|e| e.message)?, "`end`")? };
    let step = a.int("step").map_err(|e| e.message)?;
    let x = c.input(0)?;
    Ok(vec![slice_axes(c, &x, &[axis as i64], &[start], &[end], &[step])])
}

/// `Slice` of `x` along `axes` (ONNX's counting: negative starts and ends from the end).
pub(super) fn slice_axes(
    c: &mut NodeCtx,
    x: &str,
    axes: &[i64],
    starts: &[i64],
    ends: &[i64],
    steps: &[i64],
) -> String {
    let (s, e, ax, st) = (c.const_i64(starts), c.const_i64(ends), c.const_i64(axes), c.const_i64(steps));
    c.op("Slice", &[x, &s, &e, &ax, &st], vec![])
}

/// `ReduceSum` takes its axes as an input from opset 13 (`ReduceMean`: see `reduce_mean`).
fn reduce(c: &mut NodeCtx, op: &str) -> Mapped {
    let x_ty = c.input_type(0)?.clone();
    let a = &c.node.attrs;
    let keep = a.bool("keepdim").map_err(|e| e.message)?;
    let given = if a.is_none("axis") { None } else { Some(a.int_list("axis").map_err(|e| e.message)?) };
    let axes = reduced_axes(&x_ty, given.as_deref())?;
    let x = c.input(0)?;
    if op == "ReduceMean" {
        return Ok(vec![c.reduce_mean(&x, &axes, keep)]);
    }
    let axes = c.const_i64(&axes);
    Ok(vec![c.op(op, &[&x, &axes], vec![int("keepdims", i64::from(keep))])])
}

/// `ConstantOfShape` over the input's shape, zeros of the output's dtype.
fn zeros_like(c: &mut NodeCtx) -> Mapped {
    let zero = match c.output_type(0)?.dtype {
        DType::F32 => Initializer::F32 { dims: vec![1], data: vec![0.0] },
        DType::I64 => Initializer::I64 { dims: vec![1], data: vec![0] },
        other => return Err(format!("zeros of dtype {other} are not exported (f32 or i64)")),
    };
    let x = c.input(0)?;
    let shape = c.op("Shape", &[&x], vec![]);
    Ok(vec![c.op("ConstantOfShape", &[&shape], vec![tensor_attr("value", zero.proto(String::new()))])])
}

/// The axes of `x` an `axis` attribute names, non-negative; every axis when it is absent.
fn reduced_axes(x: &TensorType, given: Option<&[i64]>) -> Result<Vec<i64>, String> {
    match given {
        None => Ok((0..x.rank() as i64).collect()),
        Some(given) => given
            .iter()
            .map(|v| x.axis(*v).map(|u| u as i64).ok_or_else(|| format!("`axis` {v} is out of range")))
            .collect(),
    }
}

/// The mean of the squared deviations from the mean, times `n / (n - correction)` (Bessel's
/// by default), as `torch.var`; its square root for `std`. Without a correction the count is
/// not needed, so the reduced axes may stay symbolic; with one, they must be bound.
fn variance(c: &mut NodeCtx, sqrt: bool) -> Mapped {
    let v = Variance::from_attrs(&c.node.attrs, sqrt).map_err(|e| e.message)?;
    let x_ty = c.input_type(0)?.clone();
    let axes = reduced_axes(&x_ty, v.axes.as_deref())?;
    let x = c.input(0)?;
    let mean = c.reduce_mean(&x, &axes, true);
    let deviations = c.op("Sub", &[&x, &mean], vec![]);
    let squares = c.op("Mul", &[&deviations, &deviations], vec![]);
    let mut var = c.reduce_mean(&squares, &axes, v.keepdim);
    if v.correction != 0.0 {
        let n = axes.iter().try_fold(1i64, |n, a| {
            Ok::<_, String>(n * c.bound(&x_ty.shape[*a as usize], "a reduced axis")?)
        })?;
        let factor = c.scalar(n as f64 / (n as f64 - v.correction));
        var = c.op("Mul", &[&var, &factor], vec![]);
    }
    Ok(vec![if sqrt { c.op("Sqrt", &[&var], vec![]) } else { var }])
}

/// `x + bias` per channel.
fn bias(c: &mut NodeCtx) -> Mapped {
    let rank = c.input_type(0)?.rank();
    let (x, b) = (c.input(0)?, c.weight("bias")?);
    let b = per_channel(c, &b, rank);
    Ok(vec![c.op("Add", &[&x, &b], vec![])])
}

/// A `[C]` tensor as `[C, 1, ...]`, to broadcast against a rank-`rank` `[N, C, ...]`.
pub(super) fn per_channel(c: &mut NodeCtx, t: &str, rank: usize) -> String {
    if rank <= 2 {
        return t.to_string();
    }
    let mut shape = vec![1i64; rank - 1];
    shape[0] = -1;
    let shape = c.const_i64(&shape);
    c.op("Reshape", &[t, &shape], vec![])
}
