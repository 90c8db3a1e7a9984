//! `permute(dims)` and `transpose(dim0, dim1)`: reorder axes, as the tensor methods do.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_axis, AttrValue, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static PERMUTE: OpDef = OpDef {
    name: "permute",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("dims", AttrType::IntList, Default::Required)],
    },
    build: |a: &Attrs| {
        let order = match a.get("dims") {
            AttrValue::List(items) => a.ints("dims", items.len())?,
            _ => a.ints("dims", 1)?,
        };
        Ok(Box::new(Permute { dims: order }))
    },
};

pub static TRANSPOSE: OpDef = OpDef {
    name: "transpose",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("dim0", AttrType::Int, Default::Required),
            attr("dim1", AttrType::Int, Default::Required),
        ],
    },
    build: |a: &Attrs| Ok(Box::new(Transpose { dim0: a.int("dim0")?, dim1: a.int("dim1")? })),
};

/// Output axis `i` is input axis `dims[i]`.
#[derive(Debug)]
pub struct Permute {
    pub dims: Vec<i64>,
}

impl Op for Permute {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        let not_a_permutation = || {
            OpError::new(format!(
                "`dims` {:?} must be a permutation of the {} axes of shape {}",
                self.dims,
                x.rank(),
                shape_string(&x.shape)
            ))
            .attr("dims")
        };
        if self.dims.len() != x.rank() {
            return Err(not_a_permutation());
        }
        let mut seen = vec![false; x.rank()];
        let mut shape = Vec::with_capacity(x.rank());
        for d in &self.dims {
            let axis = x.axis(*d).ok_or_else(not_a_permutation)?;
            if std::mem::replace(&mut seen[axis], true) {
                return Err(not_a_permutation());
            }
            shape.push(x.shape[axis].clone());
        }
        Ok(vec![x.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Permute {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let dims = self
            .dims
            .iter()
            .map(|d| ctx.inputs[0].axis(*d).ok_or_else(|| ctx.error(format!("axis {d} is out of range"))))
            .collect::<Result<Vec<_>, _>>()?;
        // Contiguous, so the next op sees a plain layout (candle's matmul wants one).
        Ok(unary(move |x, _| x.permute(dims.as_slice())?.contiguous()))
    }
}

/// Swaps two axes.
#[derive(Debug)]
pub struct Transpose {
    pub dim0: i64,
    pub dim1: i64,
}

impl Op for Transpose {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        let (a, b) = (expect_axis(x, self.dim0, "dim0")?, expect_axis(x, self.dim1, "dim1")?);
        let mut shape = x.shape.clone();
        shape.swap(a, b);
        Ok(vec![x.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Transpose {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axis =
            |d: i64| ctx.inputs[0].axis(d).ok_or_else(|| ctx.error(format!("axis {d} is out of range")));
        let (a, b) = (axis(self.dim0)?, axis(self.dim1)?);
        Ok(unary(move |x, _| x.transpose(a, b)?.contiguous()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, int, ints, out_shape};

    #[test]
    fn permutes_with_negative_axes() {
        let op = build(&PERMUTE, &[("dims", ints(&[0, 2, -1, 1]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[8, 3, 32, 16])]), vec![8, 32, 16, 3]);
        assert!(err(op.infer(&[f32(&[8, 3, 32])])).message.contains("permutation of the 3 axes"));
        let op = build(&PERMUTE, &[("dims", ints(&[0, 1, -2]))]).unwrap();
        assert_eq!(err(op.infer(&[f32(&[8, 3, 32])])).attr, Some("dims"));
    }

    #[test]
    fn transposes_two_axes() {
        let op = build(&TRANSPOSE, &[("dim0", int(1)), ("dim1", int(-1))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 197, 768])]), vec![2, 768, 197]);
        assert_eq!(err(op.infer(&[f32(&[2])])).attr, Some("dim0"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck() {
        let spec = "model M { input x: [2, 3, 4]\n output y = permute(x, [2, 0, 1]) |> Linear(5)\n \
                    output z = transpose(x, 0, -1) |> Linear(3) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
