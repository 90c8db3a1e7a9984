//! `scale(x, factor)`: every element times a constant (`0.5 * logvar`), keeping shape and
//! dtype. An elementwise op: not counted in MACs.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_float, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static SCALE: OpDef = OpDef {
    name: "scale",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("factor", AttrType::Float, Default::Required)],
    },
    build: |a: &Attrs| {
        let factor = a.float("factor")?;
        if !factor.is_finite() {
            return Err(
                OpError::new(format!("`factor` must be a finite number, found {factor}")).attr("factor")
            );
        }
        Ok(Box::new(Scale { factor }))
    },
};

#[derive(Debug)]
pub struct Scale {
    pub factor: f64,
}

impl Op for Scale {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_float(inputs, 0, "scale")?;
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Scale {
    fn lower(&self, _: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let factor = self.factor;
        Ok(unary(move |x, _| x.affine(factor, 0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, macs, out_shape};
    use crate::ops::AttrValue;

    #[test]
    fn keeps_the_type_and_costs_nothing() {
        let op = build(&SCALE, &[("factor", AttrValue::Float(0.5))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[1, 16])]), vec![1, 16]);
        assert_eq!(macs(&*op, &[f32(&[1, 16])]), 0);
    }

    #[test]
    fn refuses_integers_and_non_finite_factors() {
        let op = build(&SCALE, &[("factor", AttrValue::Float(2.0))]).unwrap();
        let ids = TensorType::new(DType::I64, vec![1.into(), 16.into()]);
        assert!(err(op.infer(&[ids])).message.contains("found dtype i64"));
        assert_eq!(err(build(&SCALE, &[("factor", AttrValue::Float(f64::INFINITY))])).attr, Some("factor"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck() {
        let spec = "model M { input x: [3, 5]\n output y = x |> scale(-0.7) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
