//! `Bias(x)`: a learned bias per channel (axis 1), `bias [C]`, starting at zero: what
//! StyleGAN2's `FusedLeakyReLU` and `ToRGB` add after a modulated convolution, which has none.

use super::signature::Inputs;
use super::Init;
use super::{expect_float, expect_rank, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static BIAS: OpDef = OpDef {
    name: "Bias",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: &[] },
    build: |_| Ok(Box::new(Bias)),
};

#[derive(Debug)]
pub struct Bias;

impl Op for Bias {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[2, 3, 4, 5], "[N, C, ...]")?;
        expect_float(inputs, 0, "Bias")?;
        Ok(vec![inputs[0].clone()])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let channels = inputs[0].shape.get(1).cloned().unwrap_or_default();
        vec![ParamDecl::weight("bias", vec![channels], Init::Zeros)]
    }

    /// Biases are excluded from MACs.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Bias {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let bias = ctx.weight("bias")?;
        let rank = ctx.input_dims(0)?.len();
        Ok(unary(move |x, _| {
            let mut shape = vec![1; rank];
            shape[1] = bias.elem_count();
            x.broadcast_add(&bias.reshape(shape)?)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, macs, out_shape};
    use crate::ops::ParamKind;

    #[test]
    fn one_zero_bias_per_channel() {
        let op = build(&BIAS, &[]).unwrap();
        let x = [f32(&[2, 5, 4, 3])];
        assert_eq!(out_shape(&*op, &x), vec![2, 5, 4, 3]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 5);
        assert_eq!(op.params(&x)[0].init, Init::Zeros);
        assert_eq!(macs(&*op, &x), 0);
        assert!(err(op.infer(&[f32(&[5])])).message.contains("rank-2"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_on_images_and_features() {
        let spec = "model M { input x: [2, 3, 4, 5]\n input f: [3, 4]\n \
                    output y = x |> b: Bias |> Tanh\n output z = f |> c: Bias |> Tanh }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
