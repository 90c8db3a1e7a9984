//! `add`, `sub`, `mul`, `div` of two tensors, broadcasting only through size-1 axes.
//!
//! Ranks must match: PyTorch would also prepend axes, but in a spec that is more often a
//! mistake than an intent, so a `reshape` makes it explicit.

use super::signature::Inputs;
use super::{Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, DType, TensorType};
#[cfg(feature = "lower")]
use crate::lower::kernels::zip::{zip_untracked, Zip};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

const AB: Signature = Signature { inputs: Inputs::Fixed(&["a", "b"]), attrs: &[] };

pub static ADD: OpDef = OpDef { name: "add", signature: AB, build: |_| Ok(Box::new(Binary::Add)) };
pub static SUB: OpDef = OpDef { name: "sub", signature: AB, build: |_| Ok(Box::new(Binary::Sub)) };
pub static MUL: OpDef = OpDef { name: "mul", signature: AB, build: |_| Ok(Box::new(Binary::Mul)) };
pub static DIV: OpDef = OpDef { name: "div", signature: AB, build: |_| Ok(Box::new(Binary::Div)) };

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

/// The two inputs of a binary op, which must share a dtype.
pub fn same_dtype_pair(inputs: &[TensorType]) -> Result<[&TensorType; 2], OpError> {
    let [a, b] = inputs else {
        return Err(OpError::new(format!("expected 2 inputs, found {}", inputs.len())));
    };
    if a.dtype != b.dtype {
        return Err(OpError::new(format!("dtypes must match, found {} and {}", a.dtype, b.dtype)).input(1));
    }
    Ok([a, b])
}

/// The size two broadcast axes give: equal sizes, or the other size where one is 1.
pub fn broadcast(x: &Dim, y: &Dim) -> Option<Dim> {
    let one = Dim::one();
    if x == y || *y == one {
        Some(x.clone())
    } else if *x == one {
        Some(y.clone())
    } else {
        None
    }
}

impl Op for Binary {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let [a, b] = same_dtype_pair(inputs)?;
        let both = || format!("{} and {}", shape_string(&a.shape), shape_string(&b.shape));
        if a.rank() != b.rank() {
            return Err(OpError::new(format!(
                "ranks must match, found rank {} and {}: {}",
                a.rank(),
                b.rank(),
                both()
            ))
            .input(1)
            .help("reshape the smaller one to the same rank, with size-1 axes to broadcast over"));
        }
        let mut shape = Vec::with_capacity(a.rank());
        for (axis, (x, y)) in a.shape.iter().zip(&b.shape).enumerate() {
            let Some(d) = broadcast(x, y) else {
                return Err(OpError::new(format!(
                    "axis {axis} does not broadcast ({x} vs {y}): sizes must be equal or 1, shapes {}",
                    both()
                ))
                .input(1));
            };
            shape.push(d);
        }
        // PyTorch's `/` is true division: integer tensors give the default float type.
        let dtype = if *self == Binary::Div && !a.dtype.is_float() { DType::F32 } else { a.dtype };
        Ok(vec![TensorType::new(dtype, shape)])
    }

    /// One arithmetic op per element, none a multiply-accumulate: not counted by the convention.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Binary {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let op = *self;
        // Integer true division gives floats, as declared by `infer`.
        let cast = (op == Binary::Div && !ctx.inputs[0].dtype.is_float()).then_some(ctx.dtype);
        Ok(Box::new(move |xs: &[candle_core::Tensor], _: &mut ForwardCtx| {
            let [a, b] = xs else { candle_core::bail!("expected 2 inputs, found {}", xs.len()) };
            let (a, b) = match cast {
                Some(d) => (a.to_dtype(d)?, b.to_dtype(d)?),
                None => (a.clone(), b.clone()),
            };
            // An inference pass (no operand tracked) on the CPU: one pass on rayon's pool.
            let zip = match op {
                Binary::Add => Zip::Add,
                Binary::Sub => Zip::Sub,
                Binary::Mul => Zip::Mul,
                Binary::Div => Zip::Div,
            };
            if let Some(y) = zip_untracked(&a, &b, zip) {
                return Ok(vec![y?]);
            }
            let y = match op {
                Binary::Add => a.broadcast_add(&b)?,
                Binary::Sub => a.broadcast_sub(&b)?,
                Binary::Mul => a.broadcast_mul(&b)?,
                Binary::Div => a.broadcast_div(&b)?,
            };
            Ok(vec![y])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, macs, out_shape};

    #[test]
    fn broadcasts_through_size_one_axes() {
        let op = build(&MUL, &[]).unwrap();
        let (x, scale) = (f32(&[8, 64, 28, 28]), f32(&[8, 64, 1, 1]));
        assert_eq!(out_shape(&*op, &[x.clone(), scale.clone()]), vec![8, 64, 28, 28]);
        assert_eq!(out_shape(&*op, &[scale, x.clone()]), vec![8, 64, 28, 28]);
        assert_eq!(macs(&*op, &[x.clone(), x]), 0);
        let n = TensorType::new(DType::F32, vec![Dim::sym("N"), 10.into()]);
        let row = f32(&[1, 10]);
        assert_eq!(build(&ADD, &[]).unwrap().infer(&[row, n.clone()]).unwrap()[0], n);
    }

    #[test]
    fn refuses_mismatched_axes_ranks_and_dtypes() {
        let op = build(&ADD, &[]).unwrap();
        let e = err(op.infer(&[f32(&[2, 3]), f32(&[2, 4])]));
        assert_eq!(e.input, Some(1));
        assert!(
            e.message.contains("axis 1 does not broadcast (3 vs 4)")
                && e.message.contains("[2, 3] and [2, 4]")
        );
        assert!(err(op.infer(&[f32(&[2, 3]), f32(&[3])])).message.contains("rank 2 and 1"));
        let ids = TensorType::new(DType::I64, vec![2.into(), 3.into()]);
        assert!(err(op.infer(&[f32(&[2, 3]), ids.clone()])).message.contains("f32 and i64"));
        assert_eq!(build(&DIV, &[]).unwrap().infer(&[ids.clone(), ids]).unwrap()[0].dtype, DType::F32);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_with_broadcasting_both_ways() {
        let spec = "model M { input a: [2, 3, 4]\n input b: [2, 1, 4]\n input c: [1, 3, 1]\n \
                    output s = a + b\n output d = c - a\n output m = b * c\n output q = a / Sigmoid(c) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
