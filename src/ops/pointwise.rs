//! `sqrt(x)`, `pow(x, exponent)` (`x ** 2.0`) and `clamp(x, min, max)`: elementwise maths on
//! float tensors, as the torch functions. Not multiply-accumulates: not counted in MACs.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_float, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::activation::hardtanh;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

const X: Inputs = Inputs::Fixed(&["x"]);

pub static SQRT: OpDef = OpDef {
    name: "sqrt",
    signature: Signature { inputs: X, attrs: &[] },
    build: |_| Ok(Box::new(Pointwise::Sqrt)),
};

pub static POW: OpDef = OpDef {
    name: "pow",
    signature: Signature { inputs: X, attrs: &[attr("exponent", AttrType::Float, Default::Required)] },
    build: |a: &Attrs| {
        let exponent = a.float("exponent")?;
        if !exponent.is_finite() {
            return Err(OpError::new(format!("`exponent` must be a finite number, found {exponent}"))
                .attr("exponent"));
        }
        Ok(Box::new(Pointwise::Pow { exponent }))
    },
};

pub static CLAMP: OpDef = OpDef {
    name: "clamp",
    signature: Signature {
        inputs: X,
        attrs: &[
            attr("min", AttrType::Float, Default::Optional),
            attr("max", AttrType::Float, Default::Optional),
        ],
    },
    build: |a: &Attrs| {
        let bound = |name: &'static str, absent: f64| {
            if a.is_none(name) {
                return Ok(absent);
            }
            let v = a.float(name)?;
            if v.is_nan() {
                return Err(OpError::new(format!("`{name}` must be a number, found NaN")).attr(name));
            }
            Ok(v)
        };
        if a.is_none("min") && a.is_none("max") {
            return Err(OpError::new("clamp needs `min`, `max` or both, found neither").attr("min"));
        }
        let (min, max) = (bound("min", f64::NEG_INFINITY)?, bound("max", f64::INFINITY)?);
        // PyTorch gives `max` everywhere then; a spec that says so has its bounds swapped.
        if min > max {
            return Err(OpError::new(format!("`min` must be at most `max`, found min {min} and max {max}"))
                .attr("max"));
        }
        Ok(Box::new(Pointwise::Clamp { min, max }))
    },
};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pointwise {
    Sqrt,
    Pow { exponent: f64 },
    Clamp { min: f64, max: f64 },
}

impl Op for Pointwise {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let name = match self {
            Pointwise::Sqrt => "sqrt",
            Pointwise::Pow { .. } => "pow",
            Pointwise::Clamp { .. } => "clamp",
        };
        expect_float(inputs, 0, name)?;
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Pointwise {
    fn lower(&self, _: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        Ok(match *self {
            Pointwise::Sqrt => unary(|x, _| x.sqrt()),
            // Squares exactly, as PyTorch's `x ** 2`; other exponents through `powf`.
            Pointwise::Pow { exponent: 2.0 } => unary(|x, _| x.sqr()),
            Pointwise::Pow { exponent: 1.0 } => unary(|x, _| Ok(x.clone())),
            Pointwise::Pow { exponent } => unary(move |x, _| x.powf(exponent)),
            // Hardtanh's kernel: the gradient passes where the value is inside the bounds.
            Pointwise::Clamp { min, max } => unary(move |x, _| hardtanh(x, min, max)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, macs, out_shape};
    use crate::ops::AttrValue;

    #[test]
    fn keeps_the_type_and_checks_its_numbers() {
        for op in [
            build(&SQRT, &[]).unwrap(),
            build(&POW, &[("exponent", AttrValue::Float(3.0))]).unwrap(),
            build(&CLAMP, &[("min", AttrValue::Float(0.0))]).unwrap(),
        ] {
            assert_eq!(out_shape(&*op, &[f32(&[2, 3, 5])]), vec![2, 3, 5]);
            assert_eq!(macs(&*op, &[f32(&[2, 3, 5])]), 0);
        }
        let ids = TensorType::new(DType::I64, vec![2.into()]);
        assert!(err(build(&SQRT, &[]).unwrap().infer(&[ids])).message.contains("sqrt expects a float"));
        assert!(err(build(&CLAMP, &[])).message.contains("found neither"));
        let swapped = [("min", AttrValue::Float(1.0)), ("max", AttrValue::Float(-1.0))];
        assert_eq!(err(build(&CLAMP, &swapped)).attr, Some("max"));
        assert_eq!(err(build(&POW, &[("exponent", AttrValue::Float(f64::NAN))])).attr, Some("exponent"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn forward_values_as_pytorch() {
        use candle_core::{Device, Tensor};
        // torch.sqrt, torch.pow and torch.clamp of [0.25, 1.5, 4.0, -2.0] (sqrt and the
        // fractional power of -2 are NaN there too).
        let x = Tensor::new(&[0.25f64, 1.5, 4.0, -2.0], &Device::Cpu).unwrap();
        let run = |call: &str| {
            let spec = format!("model M {{ input x: [4]\n output y = x |> {call} }}");
            crate::lower::gradcheck::run_spec(&spec, std::slice::from_ref(&x), false)[0]
                .to_vec1::<f64>()
                .unwrap()
        };
        let close = |a: &[f64], b: &[f64]| {
            a.iter().zip(b).all(|(a, b)| (a.is_nan() && b.is_nan()) || (a - b).abs() < 1e-12)
        };
        assert!(close(&run("sqrt"), &[0.5, 1.224744871391589, 2.0, f64::NAN]));
        assert!(close(&run("pow(3.0)"), &[0.015625, 3.375, 64.0, -8.0]));
        assert!(close(&run("pow(2)"), &[0.0625, 2.25, 16.0, 4.0]));
        assert!(close(&run("pow(0.5)"), &[0.5, 1.224744871391589, 2.0, f64::NAN]));
        let clamped = run("clamp(min=0.5)");
        assert!(close(&clamped, &[0.5, 1.5, 4.0, 0.5]));
        assert!(close(&run("clamp(-1, 2.0)"), &[0.25, 1.5, 2.0, -1.0]));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_on_odd_shapes() {
        // Exp keeps sqrt's and the fractional power's argument positive.
        let spec = "model M { input x: [3, 5, 2]\n output a = x |> Exp |> sqrt\n \
                    output b = pow(x, 3.0)\n output c = x |> Exp |> pow(-1.5)\n output d = pow(x, 2)\n \
                    output e = clamp(x, -0.5, 0.7)\n output f = clamp(x, max=0.3)\n output g = clamp(x, min=-0.2) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
