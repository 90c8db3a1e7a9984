//! `concat(xs, axis=1)`: joins tensors along one axis, as `torch.cat`.

use std::sync::Arc;

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_axis, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::{Bindings, Dim};
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

pub static CONCAT: OpDef = OpDef {
    name: "concat",
    signature: Signature {
        inputs: Inputs::List("xs"),
        // 1, not torch.cat's 0: in specs the usual join is of channels (DenseNet, U-Net, Inception).
        attrs: &[attr("axis", AttrType::Int, Default::Int(1))],
    },
    build: |a: &Attrs| {
        Ok(Box::new(Concat { axis: a.int("axis")?, dims: a.bound_dims().unwrap_or_default() }))
    },
};

#[derive(Debug)]
pub struct Concat {
    pub axis: i64,
    /// The spec's dims with values: sizes equal under them are equal (U-Net's skip `H / 8`
    /// and its upsampled map `2*(H / 16)`, one size for the multiples of 16 its rule admits).
    pub dims: Arc<Bindings>,
}

impl Op for Concat {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let Some(first) = inputs.first() else {
            return Err(OpError::new("concat needs at least one tensor, found an empty list"));
        };
        let axis = expect_axis(first, self.axis, "axis")?;
        let mut shape = first.shape.clone();
        for (i, x) in inputs.iter().enumerate().skip(1) {
            let mismatch = |what: String| {
                OpError::new(format!(
                    "input {i} {what} (concatenating on axis {axis}): {} vs {}",
                    shape_string(&first.shape),
                    shape_string(&x.shape)
                ))
                .input(i)
            };
            if x.dtype != first.dtype {
                return Err(mismatch(format!("has dtype {}, input 0 has {}", x.dtype, first.dtype)));
            }
            if x.rank() != first.rank() {
                return Err(mismatch(format!("has rank {}, input 0 has rank {}", x.rank(), first.rank())));
            }
            if let Some(j) =
                (0..x.rank()).find(|j| *j != axis && !x.shape[*j].equal_under(&first.shape[*j], &self.dims))
            {
                return Err(mismatch(format!("differs from input 0 on axis {j}")));
            }
            shape[axis] = shape[axis].add(&x.shape[axis]);
        }
        Ok(vec![first.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Concat {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axis = ctx.inputs[0]
            .axis(self.axis)
            .ok_or_else(|| ctx.error(format!("axis {} is out of range", self.axis)))?;
        Ok(Box::new(move |xs: &[candle_core::Tensor], _: &mut ForwardCtx| {
            Ok(vec![candle_core::Tensor::cat(xs, axis)?])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, int, out_shape};

    #[test]
    fn sums_the_axis_symbolically() {
        let op = build(&CONCAT, &[]).unwrap();
        let xs = [f32(&[1, 64, 28, 28]), f32(&[1, 128, 28, 28]), f32(&[1, 32, 28, 28])];
        assert_eq!(out_shape(&*op, &xs), vec![1, 224, 28, 28]);
        let op = build(&CONCAT, &[("axis", int(-1))]).unwrap();
        let t = |len: Dim| TensorType::new(DType::F32, vec![Dim::sym("N"), len]);
        let out = op.infer(&[t(Dim::sym("T")), t(Dim::konst(1))]).unwrap();
        assert_eq!(out[0].shape[1], Dim::sym("T").add(&1.into()));
    }

    #[test]
    fn sizes_equal_at_the_bound_dims_join() {
        // U-Net's skip `H / 8` and its upsampled map `2*(H / 16)`: one size at H = 224, two at 200.
        let t = |h: Dim| TensorType::new(DType::F32, vec![Dim::konst(1), Dim::konst(4), h]);
        let skip = t(Dim::sym("H").floor_div(&8.into()).unwrap());
        let up = t(Dim::sym("H").floor_div(&16.into()).unwrap().mul(&2.into()));
        let at = |v: i64| Concat { axis: 1, dims: Arc::new(Bindings::from([("H".to_string(), v)])) };
        let out = at(224).infer(&[skip.clone(), up.clone()]).unwrap();
        assert_eq!(out[0].shape[1], Dim::konst(8));
        assert_eq!(out[0].shape[2], skip.shape[2]);
        assert!(err(at(200).infer(&[skip.clone(), up.clone()]))
            .message
            .contains("differs from input 0 on axis 2"));
        assert!(err(build(&CONCAT, &[]).unwrap().infer(&[skip, up])).message.contains("on axis 2"));
    }

    #[test]
    fn names_the_offending_input() {
        let op = build(&CONCAT, &[]).unwrap();
        let e = err(op.infer(&[f32(&[1, 64, 28, 28]), f32(&[1, 64, 28, 28]), f32(&[1, 64, 14, 14])]));
        assert_eq!(e.input, Some(2));
        assert!(e.message.contains("input 2 differs from input 0 on axis 2"), "{}", e.message);
        assert!(e.message.contains("[1, 64, 28, 28] vs [1, 64, 14, 14]"));
        assert!(err(op.infer(&[])).message.contains("at least one"));
        assert!(err(op.infer(&[f32(&[2, 3]), f32(&[2, 3, 1])])).message.contains("rank 3"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_on_channels_and_the_last_axis() {
        let spec = "model M { input a: [2, 3, 4]\n input b: [2, 1, 4]\n input c: [2, 3, 2]\n \
                    output y = concat([a, b, a])\n output z = concat([c, a], axis=-1) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
