//! StyleGAN's `ConstantInput(x, channels, size=4)`: the synthesis network starts from a learned
//! constant `input [1, C, size, size]` (`N(0, 1)`, as rosinality's stylegan2-pytorch), repeated
//! for every sample. `x` (the latent or the style) only says how many samples there are.

use super::signature::{attr, AttrType, Default, Inputs};
use super::Init;
use super::{expect_rank, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static CONSTANT_INPUT: OpDef = OpDef {
    name: "ConstantInput",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("channels", AttrType::Int, Default::Required),
            attr("size", AttrType::Int, Default::Int(4)),
        ],
    },
    build: |a: &Attrs| {
        Ok(Box::new(ConstantInput {
            channels: a.dim_at_least("channels", 1)?,
            size: a.int_at_least("size", 1)?,
        }))
    },
};

#[derive(Debug)]
pub struct ConstantInput {
    pub channels: Dim,
    pub size: i64,
}

impl ConstantInput {
    fn shape(&self, batch: Dim) -> Vec<Dim> {
        vec![batch, self.channels.clone(), Dim::konst(self.size), Dim::konst(self.size)]
    }
}

impl Op for ConstantInput {
    /// Any batched tensor: only its first axis is read. The output takes the dtype of the
    /// parameter, which is the model's float type, whatever `x` holds.
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[1, 2, 3, 4, 5], "batched, [N, ...]")?;
        let x = &inputs[0];
        let dtype = if x.dtype.is_float() { x.dtype } else { crate::ir::tensor::DType::F32 };
        Ok(vec![TensorType::new(dtype, self.shape(x.shape[0].clone()))])
    }

    fn params(&self, _: &[TensorType]) -> Vec<ParamDecl> {
        vec![ParamDecl::weight("input", self.shape(Dim::one()), Init::Normal { mean: 0.0, std: 1.0 })]
    }

    /// A copy: not counted.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for ConstantInput {
    /// Broadcast over the batch, so the gradient of every sample's copy sums into the constant.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let constant = ctx.weight("input")?;
        Ok(unary(move |x, _| {
            let (_, c, h, w) = constant.dims4()?;
            constant.broadcast_as((x.dim(0)?, c, h, w))?.contiguous()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::ParamKind;

    #[test]
    fn one_constant_per_sample() {
        let op = build(&CONSTANT_INPUT, &[("channels", int(16))]).unwrap();
        let z = [f32(&[5, 32])];
        assert_eq!(out_shape(&*op, &z), vec![5, 16, 4, 4]);
        assert_eq!(count(&*op, &z, ParamKind::Weight), 16 * 16);
        assert_eq!(op.params(&z)[0].name, "input");
        assert_eq!(macs(&*op, &z), 0);
        let op = build(&CONSTANT_INPUT, &[("channels", int(3)), ("size", int(2))]).unwrap();
        let labels = TensorType::new(DType::I64, vec![Dim::sym("N")]);
        let out = op.infer(&[labels]).unwrap().remove(0);
        assert_eq!((out.dtype, out.shape), (DType::F32, vec![Dim::sym("N"), 3.into(), 2.into(), 2.into()]));
        assert!(err(op.infer(&[f32(&[])])).message.contains("rank-1"));
        assert_eq!(err(build(&CONSTANT_INPUT, &[("channels", int(3)), ("size", int(0))])).attr, Some("size"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_the_constant() {
        let spec = "model M { input z: [3, 2]\n output y = z |> c: ConstantInput(2, size=3) |> Tanh }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
