//! `zeros_like(x, dtype=none)`: a tensor of zeros with `x`'s shape, as `torch.zeros_like`.
//!
//! It spells out a default that models fill in silently: BERT's token types are all zero
//! when none are given, so `ids |> zeros_like |> token_type_embeddings: Embedding(2, d)`
//! keeps one input and still shows the table.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{DType, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static ZEROS_LIKE: OpDef = OpDef {
    name: "zeros_like",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        // Absent: the dtype of `x`.
        attrs: &[attr("dtype", AttrType::DType, Default::Optional)],
    },
    build: |a: &Attrs| Ok(Box::new(ZerosLike { dtype: a.dtype("dtype")? })),
};

#[derive(Debug)]
pub struct ZerosLike {
    pub dtype: Option<DType>,
}

impl Op for ZerosLike {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        Ok(vec![TensorType::new(self.dtype.unwrap_or(x.dtype), x.shape.clone())])
    }

    /// Filling memory: no multiply-accumulates.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for ZerosLike {
    /// Floats in the model's dtype, ids as i64, bools as u8 (candle's mask type). Constant:
    /// no gradient reaches `x`, as in PyTorch.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let dtype = match ctx.outputs[0].dtype {
            DType::I64 | DType::I32 => candle_core::DType::I64,
            DType::Bool => candle_core::DType::U8,
            _ => ctx.dtype,
        };
        Ok(unary(move |x, _| candle_core::Tensor::zeros(x.shape(), dtype, x.device())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, macs, out_shape};
    use crate::ops::AttrValue;

    #[test]
    fn keeps_the_shape_and_takes_a_dtype() {
        let op = build(&ZEROS_LIKE, &[]).unwrap();
        let ids = TensorType::new(DType::I64, vec![Dim::sym("N"), 512.into()]);
        assert_eq!(op.infer(std::slice::from_ref(&ids)).unwrap()[0], ids);
        assert_eq!(macs(&*op, &[f32(&[2, 3])]), 0);
        let op = build(&ZEROS_LIKE, &[("dtype", AttrValue::Str("bool".into()))]).unwrap();
        let out = op.infer(&[f32(&[2, 3])]).unwrap();
        assert_eq!(out[0].dtype, DType::Bool);
        assert_eq!(out_shape(&*op, &[f32(&[2, 3])]), vec![2, 3]);
    }

    #[test]
    fn refuses_an_unknown_dtype() {
        let e = err(build(&ZEROS_LIKE, &[("dtype", AttrValue::Str("int7".into()))]));
        assert_eq!(e.attr, Some("dtype"));
        assert!(e.message.contains("unknown dtype `int7`"), "{}", e.message);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_zeros_take_no_gradient() {
        // y = x + 0: the gradient is the identity's.
        let spec = "model M { input x: [3, 5]\n output y = x + zeros_like(x) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
        let spec = "model M { input ids: [2, 3] of i64\n output y = zeros_like(ids) |> e: Embedding(4, 5) }";
        let ids = candle_core::Tensor::new(&[[3i64, 1, 2], [0, 0, 1]], &candle_core::Device::Cpu).unwrap();
        crate::lower::gradcheck::check_spec_with(spec, true, &[("ids", ids)]).unwrap().assert_within(1e-6);
    }
}
