//! `cumsum(x, axis)`: `torch.cumsum` of a float tensor, the running sum along one axis. Not
//! counted in MACs (candle computes it as a product with a triangle of ones, but the op is
//! `n` additions).

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_axis, expect_float, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static CUMSUM: OpDef = OpDef {
    name: "cumsum",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("axis", AttrType::Int, Default::Required)],
    },
    build: |a: &Attrs| Ok(Box::new(Cumsum { axis: a.int("axis")? })),
};

#[derive(Debug)]
pub struct Cumsum {
    pub axis: i64,
}

impl Op for Cumsum {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_float(inputs, 0, "cumsum")?;
        expect_axis(&inputs[0], self.axis, "axis")?;
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Cumsum {
    /// candle's `cumsum`, a matmul with an upper triangle of ones, whose backward is exact.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axis = expect_axis(&ctx.inputs[0], self.axis, "axis").map_err(|e| ctx.error(e.message))?;
        Ok(unary(move |x, _| x.cumsum(axis)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, int, out_shape};

    #[test]
    fn keeps_the_shape_and_needs_floats() {
        let op = build(&CUMSUM, &[("axis", int(-2))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 3, 5])]), vec![2, 3, 5]);
        assert_eq!(err(op.infer(&[f32(&[5])])).attr, Some("axis"));
        let ids = TensorType::new(crate::ir::tensor::DType::I64, vec![4.into()]);
        assert!(err(build(&CUMSUM, &[("axis", int(0))]).unwrap().infer(&[ids])).message.contains("float"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn forward_values_as_pytorch_and_gradcheck() {
        use candle_core::{Device, Tensor};
        let x = Tensor::new(&[[1.0f64, -2.0, 0.5], [3.0, 4.0, -1.0]], &Device::Cpu).unwrap();
        let spec = "model M { input x: [2, 3]\n output a = cumsum(x, 1)\n output b = cumsum(x, dim=0) }";
        let ys = crate::lower::gradcheck::run_spec(spec, std::slice::from_ref(&x), false);
        // torch.cumsum(x, 1) and torch.cumsum(x, dim=0).
        assert_eq!(ys[0].to_vec2::<f64>().unwrap(), [[1.0, -1.0, -0.5], [3.0, 7.0, 6.0]]);
        assert_eq!(ys[1].to_vec2::<f64>().unwrap(), [[1.0, -2.0, 0.5], [4.0, 2.0, -0.5]]);
        let spec = "model M { input x: [3, 5, 2]\n output a = cumsum(x, 1)\n output b = cumsum(x, 0)\n \
                    output c = cumsum(x, -1) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
