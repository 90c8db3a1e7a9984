//! `flip(x, axis)`: `torch.flip`, the order of elements reversed along the given axes. Not
//! counted in MACs.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_axis, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static FLIP: OpDef = OpDef {
    name: "flip",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("axis", AttrType::IntOrList, Default::Required)],
    },
    build: |a: &Attrs| Ok(Box::new(Flip { axes: a.int_list("axis")? })),
};

#[derive(Debug)]
pub struct Flip {
    pub axes: Vec<i64>,
}

impl Flip {
    /// The axes of `x` to reverse, each once, as PyTorch refuses a repeated one.
    fn axes_of(&self, x: &TensorType) -> Result<Vec<usize>, OpError> {
        let mut seen = Vec::with_capacity(self.axes.len());
        for a in &self.axes {
            let axis = expect_axis(x, *a, "axis")?;
            if seen.contains(&axis) {
                return Err(OpError::new(format!("`axis` names axis {axis} twice (input {x})")).attr("axis"));
            }
            seen.push(axis);
        }
        Ok(seen)
    }
}

impl Op for Flip {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        self.axes_of(&inputs[0])?;
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Flip {
    /// candle's `flip`: an `index_select` per axis, whose backward scatters the gradient back.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axes = self.axes_of(&ctx.inputs[0]).map_err(|e| ctx.error(e.message))?;
        Ok(unary(move |x, _| x.flip(&axes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, int, ints, out_shape};

    #[test]
    fn keeps_the_shape_and_checks_the_axes() {
        let op = build(&FLIP, &[("axis", ints(&[0, -1]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 3, 5])]), vec![2, 3, 5]);
        assert!(err(op.infer(&[f32(&[5])])).message.contains("axis 0 twice"));
        assert_eq!(err(build(&FLIP, &[("axis", int(2))]).unwrap().infer(&[f32(&[5])])).attr, Some("axis"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn forward_values_as_pytorch_and_gradcheck() {
        use candle_core::{Device, Tensor};
        let x = Tensor::arange(0.0f64, 6.0, &Device::Cpu).unwrap().reshape((2, 3)).unwrap();
        let spec = "model M { input x: [2, 3]\n output a = flip(x, [0, 1])\n output b = flip(x, dims=[-1]) }";
        let ys = crate::lower::gradcheck::run_spec(spec, std::slice::from_ref(&x), false);
        // torch.flip(x, [0, 1]) and torch.flip(x, [-1]).
        assert_eq!(ys[0].to_vec2::<f64>().unwrap(), [[5., 4., 3.], [2., 1., 0.]]);
        assert_eq!(ys[1].to_vec2::<f64>().unwrap(), [[2., 1., 0.], [5., 4., 3.]]);
        let spec = "model M { input x: [3, 5, 2]\n output a = flip(x, [2, 0])\n output b = flip(x, 1) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
