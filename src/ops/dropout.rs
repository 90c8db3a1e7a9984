//! `Dropout(p)`: identity in shape; zeroes elements only in training.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;

pub static DROPOUT: OpDef = OpDef {
    name: "Dropout",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("p", AttrType::Float, Default::Float(0.5)),
            attr("inplace", AttrType::Bool, Default::Bool(false)),
        ],
    },
    build: |a: &Attrs| {
        let p = a.float("p")?;
        // Written so that NaN is refused too.
        if !(0.0..=1.0).contains(&p) {
            return Err(
                OpError::new(format!("`p` is a probability and must be in [0, 1], found {p}")).attr("p")
            );
        }
        Ok(Box::new(Dropout { p }))
    },
};

#[derive(Debug)]
pub struct Dropout {
    pub p: f64,
}

impl Op for Dropout {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, out_shape};
    use crate::ops::AttrValue;

    #[test]
    fn keeps_the_shape_and_checks_p() {
        let op = build(&DROPOUT, &[("p", AttrValue::Float(0.2))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[3, 4096])]), vec![3, 4096]);
        assert!(build(&DROPOUT, &[("p", AttrValue::Float(1.0))]).is_ok());
        let e = err(build(&DROPOUT, &[("p", AttrValue::Float(1.5))]));
        assert!(e.message.contains("found 1.5"), "{}", e.message);
        assert!(build(&DROPOUT, &[("p", AttrValue::Float(f64::NAN))]).is_err());
    }
}
