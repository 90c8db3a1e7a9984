//! `randn_like(x)`: standard normal noise of `x`'s shape and dtype, as `torch.randn_like` (a
//! VAE's reparameterisation, `z = mu + eps * std`). Reads only `x`'s type; no parameters, no
//! MACs.

use super::signature::Inputs;
use super::{expect_float, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;

pub static RANDN_LIKE: OpDef = OpDef {
    name: "randn_like",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: &[] },
    build: |_| Ok(Box::new(RandnLike)),
};

/// Sampled afresh at every forward pass, in training and evaluation alike (as in PyTorch).
#[derive(Debug)]
pub struct RandnLike;

impl Op for RandnLike {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_float(inputs, 0, "randn_like")?;
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, macs};

    #[test]
    fn copies_the_type_with_no_params_or_macs() {
        let op = build(&RANDN_LIKE, &[]).unwrap();
        let x = TensorType::new(DType::F16, vec![Dim::sym("N"), 16.into()]);
        assert_eq!(op.infer(std::slice::from_ref(&x)).unwrap()[0], x);
        assert!(op.params(std::slice::from_ref(&x)).is_empty());
        assert_eq!(macs(&*op, &[TensorType::new(DType::F32, vec![1.into(), 16.into()])]), 0);
        let ids = TensorType::new(DType::I64, vec![1.into()]);
        assert!(err(op.infer(&[ids])).message.contains("found dtype i64"));
    }
}
