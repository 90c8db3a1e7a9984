//! `Dropout(p)`: identity in shape; zeroes elements only in training.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::activation::dropout;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

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

#[cfg(feature = "lower")]
impl Lower for Dropout {
    fn lower(&self, _: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let p = self.p;
        Ok(unary(move |x, ctx| if ctx.train { dropout(x, p) } else { Ok(x.clone()) }))
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

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_in_eval_and_the_masked_gradient_in_training() {
        use candle_core::{DType, Device, Tensor, Var};
        let spec = "model M { input x: [3, 5]\n output y = x |> Dropout(0.4) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
        // In training the mask is random, so finite differences cannot see it; the gradient
        // must be the mask over (1 - p): y / x wherever x is not 0.
        let model = crate::Model::from_source("d.wick", spec, &crate::Options::default()).unwrap();
        let lowered = model.build(&Device::Cpu, DType::F64).unwrap();
        let x = Var::from_tensor(&(Tensor::rand(0.5f64, 2.0, (3, 5), &Device::Cpu).unwrap())).unwrap();
        let y = lowered.forward(&[x.as_tensor().clone()], true).unwrap().remove(0);
        let g = lowered.backward(&y.sum_all().unwrap()).unwrap();
        let g = g.get(x.as_tensor()).unwrap().to_vec2::<f64>().unwrap();
        let ratio = (y / x.as_tensor()).unwrap().to_vec2::<f64>().unwrap();
        for (g, r) in g.iter().flatten().zip(ratio.iter().flatten()) {
            assert!((g - r).abs() < 1e-12 && (*g == 0.0 || (g - 1.0 / 0.6).abs() < 1e-12), "{g} vs {r}");
        }
        assert!(g.iter().flatten().any(|v| *v == 0.0) && g.iter().flatten().any(|v| *v != 0.0));
    }
}
