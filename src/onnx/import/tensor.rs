//! Shape and arithmetic operators, one wick op each: elementwise arithmetic (a constant
//! operand a `Parameter` layer holding it, or `scale` when it is one number), `MatMul`,
//! `Reshape` and `Transpose` with constant arguments, `Flatten`, `Concat`, reductions, `Clip`;
//! `Identity` and `Dropout` (eval mode) pass their input on; `RandomNormalLike` of N(0, 1) is
//! `randn_like`. Anything else is no wick op.

use super::builder::{int, int_list, Builder};
use super::nn::{const_input, input};
use super::{attr_int, attr_ints, Group};
use crate::ir::graph::{NodeId, TensorRef};
use crate::onnx::proto::NodeProto;
use crate::ops::AttrValue;

/// The node's outputs as wick tensors, or why it has no wick op.
pub(super) fn map(b: &mut Builder, n: &NodeProto, path: &str) -> Result<Vec<TensorRef>, String> {
    let one = |r: Result<NodeId, String>| r.map(|id| vec![TensorRef { node: id, port: 0 }]);
    match n.op_type.as_str() {
        "Identity" | "Dropout" => Ok(vec![input(b, n, 0)?]),
        // Standard normal draws of the input's type: `randn_like`.
        "RandomNormalLike" => {
            let standard = super::attr_float(n, "mean").unwrap_or(0.0) == 0.0
                && super::attr_float(n, "scale").unwrap_or(1.0) == 1.0
                && attr_int(n, "dtype").is_none();
            if !standard {
                return Err("only draws of N(0, 1) in the input's type are a randn_like".into());
            }
            let x = input(b, n, 0)?;
            one(b.add("randn_like", vec![], vec![x], path, &[]))
        }
        "Add" => one(position_parameter(b, n, path).or_else(|_| binary(b, n, path, "add"))),
        "Sub" => one(binary(b, n, path, "sub")),
        "Mul" => one(scaled(b, n, path, false)),
        "Div" => one(scaled(b, n, path, true)),
        "MatMul" => one(binary(b, n, path, "matmul")),
        "Pow" => {
            let x = input(b, n, 0)?;
            let e = b.scalar(&const_input(b, n, 1)?).ok_or("the exponent is not one number")?;
            one(b.add("pow", vec![("exponent", AttrValue::Float(e))], vec![x], path, &[]))
        }
        "Reshape" => one(reshape(b, n, path)),
        "Transpose" => {
            let x = input(b, n, 0)?;
            let rank = b.ty(x).rank() as i64;
            let perm = attr_ints(n, "perm").unwrap_or_else(|| (0..rank).rev().collect());
            // Two axes swapped is a `transpose`, any other order a `permute`; a layer named
            // `permute` (as wick's exporter names one) stays one.
            let moved: Vec<i64> = (0..rank).filter(|k| perm.get(*k as usize) != Some(k)).collect();
            let named_permute = path.rsplit('.').next().is_some_and(|s| s.starts_with("permute"));
            if let ([a, c], false) = (moved.as_slice(), named_permute) {
                if perm.get(*a as usize) == Some(c) {
                    return one(b.add(
                        "transpose",
                        vec![("dim0", int(*a)), ("dim1", int(*c))],
                        vec![x],
                        path,
                        &[],
                    ));
                }
            }
            one(b.add("permute", vec![("dims", int_list(&perm))], vec![x], path, &[]))
        }
        "Flatten" if attr_int(n, "axis").unwrap_or(1) == 1 => {
            let x = input(b, n, 0)?;
            one(b.add("Flatten", vec![], vec![x], path, &[]))
        }
        "Split" => {
            let x = input(b, n, 0)?;
            let sizes = match attr_ints(n, "split") {
                Some(s) => s,
                None => b.ints(&const_input(b, n, 1)?).ok_or("the sizes are not integers")?,
            };
            if sizes.len() != n.output.len() {
                return Err(format!("{} sizes for {} outputs", sizes.len(), n.output.len()));
            }
            let attrs = vec![
                ("split_size_or_sections", int_list(&sizes)),
                ("axis", int(attr_int(n, "axis").unwrap_or(0))),
            ];
            let id = b.add("split", attrs, vec![x], path, &[])?;
            Ok((0..sizes.len()).map(|k| TensorRef { node: id, port: k as u16 }).collect())
        }
        "Slice" => {
            let x = input(b, n, 0)?;
            let arg = |k: usize| -> Result<Option<i64>, String> {
                match n.input.get(k).filter(|s| !s.is_empty()) {
                    None => Ok(None),
                    Some(s) => match b.ints(s).as_deref() {
                        Some([v]) => Ok(Some(*v)),
                        _ => Err("only a slice of one axis by constants is read".into()),
                    },
                }
            };
            let (start, end) = (arg(1)?.ok_or("no start")?, arg(2)?.ok_or("no end")?);
            let (axis, step) = (arg(3)?.unwrap_or(0), arg(4)?.unwrap_or(1));
            // ONNX's "to the end" is any end past the axis; wick's is no end.
            let end = if end >= i64::from(i32::MAX) { AttrValue::None } else { int(end) };
            let attrs = vec![("axis", int(axis)), ("start", int(start)), ("end", end), ("step", int(step))];
            one(b.add("slice", attrs, vec![x], path, &[]))
        }
        "Concat" => {
            let xs = (0..n.input.len()).map(|k| b.tensor(&n.input[k])).collect::<Result<Vec<_>, _>>()?;
            let axis = attr_int(n, "axis").ok_or("Concat without axis")?;
            one(b.add("concat", vec![("axis", int(axis))], xs, path, &[]))
        }
        "ReduceMean" | "ReduceSum" => {
            let x = input(b, n, 0)?;
            let axes = match attr_ints(n, "axes") {
                Some(a) => Some(a),
                None => const_input(b, n, 1).ok().and_then(|s| b.ints(&s)),
            };
            let keep = attr_int(n, "keepdims").unwrap_or(1) != 0;
            let mut attrs = vec![("keepdim", AttrValue::Bool(keep))];
            attrs.extend(axes.map(|a| ("axis", int_list(&a))));
            let kind = if n.op_type == "ReduceMean" { "mean" } else { "sum" };
            one(b.add(kind, attrs, vec![x], path, &[]))
        }
        "Clip" => {
            let x = input(b, n, 0)?;
            let bound = |k: usize| match n.input.get(k).filter(|s| !s.is_empty()) {
                Some(s) => b.scalar(s).map(AttrValue::Float).ok_or("a bound is not a constant number"),
                None => Ok(AttrValue::None),
            };
            let (lo, hi) = (bound(1)?, bound(2)?);
            one(b.add("clamp", vec![("min", lo), ("max", hi)], vec![x], path, &[]))
        }
        other => Err(format!("wick has no op for `{other}`")),
    }
}

/// `ConstantOfShape(Shape(x))` of zeros: `zeros_like`, as wick's exporter writes it.
pub(super) fn zeros_like(b: &mut Builder, g: &Group) -> Result<NodeId, String> {
    if g.op_types() != ["Shape", "ConstantOfShape"] {
        return Err("not a zeros_like".into());
    }
    let value = super::attr(&g.nodes[1], "value").and_then(|a| a.t.as_ref());
    let dtype = match value.map(|t| t.data_type) {
        None | Some(1) => "f32",
        Some(7) => "i64",
        Some(other) => return Err(format!("zeros of element type {other}")),
    };
    let x = g.nodes[0].input.first().and_then(|i| b.get(i)).ok_or("no input")?;
    b.add("zeros_like", vec![("dtype", AttrValue::Str(dtype.into()))], vec![x], &g.path, &[])
}

/// `x + P` with `P` a constant `[1, L, E]` (batch first) or `[L, 1, E]`: `PositionParameter`,
/// as wick's exporter writes it.
fn position_parameter(b: &mut Builder, n: &NodeProto, path: &str) -> Result<NodeId, String> {
    let (x, p) = match (n.input.first(), n.input.get(1)) {
        (Some(x), Some(p)) if !b.is_const(x) && b.is_const(p) => (x.clone(), p.clone()),
        _ => return Err("not a tensor plus a constant".into()),
    };
    let dims = b.constant(&p).map(|c| c.dims().to_vec()).unwrap_or_default();
    let (seq_len, batch_first) = match dims.as_slice() {
        [1, l, _] => (*l, true),
        [l, 1, _] => (*l, false),
        _ => return Err("not a position table".into()),
    };
    let x = b.tensor(&x)?;
    let attrs = vec![("seq_len", int(seq_len)), ("batch_first", AttrValue::Bool(batch_first))];
    b.add("PositionParameter", attrs, vec![x], path, &[super::builder::Param::new("", &p)])
}

fn binary(b: &mut Builder, n: &NodeProto, path: &str, kind: &str) -> Result<NodeId, String> {
    let (x, y) = (n.input.first().ok_or("no inputs")?, n.input.get(1).ok_or("one input")?);
    let (x, y) = (b.tensor(x)?, b.tensor(y)?);
    b.add(kind, vec![], vec![x, y], path, &[])
}

/// `x * k` or `x / k` by one number is `scale`; anything else elementwise.
fn scaled(b: &mut Builder, n: &NodeProto, path: &str, divide: bool) -> Result<NodeId, String> {
    let factor = n.input.get(1).and_then(|s| b.scalar(s)).filter(|k| !divide || *k != 0.0);
    match factor {
        Some(k) if b.get(&n.input[1]).is_none() => {
            let x = input(b, n, 0)?;
            let k = if divide { 1.0 / k } else { k };
            b.add("scale", vec![("factor", AttrValue::Float(k))], vec![x], path, &[])
        }
        _ => binary(b, n, path, if divide { "div" } else { "mul" }),
    }
}

/// A constant target shape: `0` copies the input's axis, `-1` is inferred.
fn reshape(b: &mut Builder, n: &NodeProto, path: &str) -> Result<NodeId, String> {
    let x = input(b, n, 0)?;
    let shape = b.ints(&const_input(b, n, 1)?).ok_or("the shape is not integers")?;
    let ty = b.ty(x);
    let target = shape
        .iter()
        .enumerate()
        .map(|(k, v)| match v {
            0 => ty.shape.get(k).cloned().map(AttrValue::Int).ok_or("a 0 past the input's rank"),
            v => Ok(int(*v)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    b.add("reshape", vec![("shape", AttrValue::List(target))], vec![x], path, &[])
}
