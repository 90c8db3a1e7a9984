//! `Identity`: passes its input through (a placeholder layer, as `torch.nn.Identity`).

use super::signature::Inputs;
use super::{Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static IDENTITY: OpDef = OpDef {
    name: "Identity",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: &[] },
    build: |_: &Attrs| Ok(Box::new(Identity)),
};

#[derive(Debug)]
pub struct Identity;

impl Op for Identity {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Identity {
    fn lower(&self, _: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        Ok(unary(|x, _| Ok(x.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, macs};

    #[test]
    fn passes_type_through() {
        let op = build(&IDENTITY, &[]).unwrap();
        let x = TensorType::new(DType::I64, vec![Dim::sym("N"), 128.into()]);
        assert_eq!(op.infer(std::slice::from_ref(&x)).unwrap(), vec![x]);
        assert_eq!(macs(&*op, &[TensorType::new(DType::F32, vec![4.into()])]), 0);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck() {
        let spec =
            "model M { input x: [2, 3]\n output y = x |> Identity\n output z = x |> Identity |> Tanh }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
