//! `var(x, axis, unbiased, keepdim, correction)` and `std(...)`: the variance and standard
//! deviation over some axes (all when `axis` is left out), as `torch.var`/`torch.std`: divided
//! by `n - correction`, `correction` 1 by default (Bessel's), `unbiased=false` meaning 0.
//! Not counted in MACs.

use super::reduce::{axes_attr, reduced_axes, reduced_shape};
use super::signature::{attr, AttrSpec, AttrType, Default, Inputs};
use super::{expect_float, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

/// PyTorch's positional order (`torch.var(x, dim, unbiased, keepdim)`), then `correction`,
/// which PyTorch takes by keyword only.
const ATTRS: &[AttrSpec] = &[
    attr("axis", AttrType::IntOrList, Default::Optional),
    attr("unbiased", AttrType::Bool, Default::Optional),
    attr("keepdim", AttrType::Bool, Default::Bool(false)),
    attr("correction", AttrType::Float, Default::Optional),
];

pub static VAR: OpDef = OpDef {
    name: "var",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: ATTRS },
    build: |a: &Attrs| Ok(Box::new(Variance::from_attrs(a, false)?)),
};

pub static STD: OpDef = OpDef {
    name: "std",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: ATTRS },
    build: |a: &Attrs| Ok(Box::new(Variance::from_attrs(a, true)?)),
};

#[derive(Debug)]
pub struct Variance {
    /// The square root of the variance: `std`.
    pub sqrt: bool,
    /// `None` reduces every axis.
    pub axes: Option<Vec<i64>>,
    pub correction: f64,
    pub keepdim: bool,
}

impl Variance {
    pub fn from_attrs(a: &Attrs, sqrt: bool) -> Result<Variance, OpError> {
        let correction = match (a.is_none("unbiased"), a.is_none("correction")) {
            (false, false) => {
                return Err(OpError::new(
                    "give `correction` or `unbiased`, not both: `unbiased=false` is `correction=0`",
                )
                .attr("correction"))
            }
            (false, true) => f64::from(u8::from(a.bool("unbiased")?)),
            (true, false) => a.float("correction")?,
            (true, true) => 1.0,
        };
        if !correction.is_finite() || correction < 0.0 {
            return Err(OpError::new(format!(
                "`correction` must be a finite number >= 0, found {correction}"
            ))
            .attr("correction"));
        }
        Ok(Variance { sqrt, axes: axes_attr(a)?, correction, keepdim: a.bool("keepdim")? })
    }

    fn name(&self) -> &'static str {
        if self.sqrt {
            "std"
        } else {
            "var"
        }
    }

    /// Refuses `n - correction <= 0` for a count known now: PyTorch gives NaN or inf there.
    fn check_count(&self, n: &Dim, x: &TensorType) -> Result<(), OpError> {
        match n.as_const() {
            Some(n) if n as f64 - self.correction <= 0.0 => Err(OpError::new(format!(
                "{} over {n} element(s) with correction {} divides by {}: reduce over more elements (input {x})",
                self.name(),
                self.correction,
                n as f64 - self.correction
            ))
            .attr("axis")),
            _ => Ok(()),
        }
    }
}

impl Op for Variance {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_float(inputs, 0, self.name())?;
        let x = &inputs[0];
        let reduced = reduced_axes(x, self.axes.as_deref())?;
        let counted: Vec<Dim> =
            x.shape.iter().zip(&reduced).filter(|(_, r)| **r).map(|(d, _)| d.clone()).collect();
        self.check_count(&Dim::product(&counted), x)?;
        Ok(vec![x.with_shape(reduced_shape(x, &reduced, self.keepdim))])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Variance {
    /// Two passes, as PyTorch: the mean, then the squared deviations from it.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let x = &ctx.inputs[0];
        let axes = super::reduce::axis_indices(x, self.axes.as_deref()).map_err(|e| ctx.error(e.message))?;
        let dims = ctx.input_dims(0)?;
        let n: usize = axes.iter().map(|a| dims[*a]).product();
        let counted = Dim::konst(i64::try_from(n).map_err(|_| ctx.error("too many elements to count"))?);
        self.check_count(&counted, x).map_err(|e| ctx.error(e.message))?;
        let (divisor, sqrt, out) = (n as f64 - self.correction, self.sqrt, ctx.output_dims(0)?);
        Ok(unary(move |x, _| {
            let deviations = x.broadcast_sub(&x.mean_keepdim(axes.clone())?)?;
            let var = deviations.sqr()?.sum_keepdim(axes.clone())?.affine(1.0 / divisor, 0.0)?;
            let y = if sqrt { var.sqrt()? } else { var };
            y.reshape(out.as_slice())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, int, ints, macs, out_shape};
    use crate::ops::AttrValue;

    #[test]
    fn reduces_like_mean_and_checks_the_count() {
        let op = build(&VAR, &[("axis", ints(&[2, 3])), ("keepdim", AttrValue::Bool(true))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[8, 64, 7, 5])]), vec![8, 64, 1, 1]);
        assert_eq!(macs(&*op, &[f32(&[8, 64, 7, 5])]), 0);
        let op = build(&STD, &[("axis", int(1))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[3, 4])]), vec![3]);
        let e = err(op.infer(&[f32(&[3, 1])]));
        assert!(e.message.contains("std over 1 element(s) with correction 1 divides by 0"), "{}", e.message);
        let biased = build(&STD, &[("axis", int(1)), ("unbiased", AttrValue::Bool(false))]).unwrap();
        assert!(biased.infer(&[f32(&[3, 1])]).is_ok());
        let both = [("unbiased", AttrValue::Bool(true)), ("correction", AttrValue::Float(0.0))];
        assert!(err(build(&VAR, &both)).message.contains("not both"));
        assert_eq!(err(build(&VAR, &[("correction", AttrValue::Float(-1.0))])).attr, Some("correction"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn forward_values_as_pytorch() {
        use candle_core::{Device, Tensor};
        let x = Tensor::new(&[[1.0f64, 2.0, 4.0], [-3.0, 0.5, 7.0]], &Device::Cpu).unwrap();
        let spec = "model M { input x: [2, 3]\n output a = var(x, 1)\n output b = std(x, 0, false)\n \
                    output c = var(x, correction=2)\n output d = std(x, keepdim=true) }";
        let ys = crate::lower::gradcheck::run_spec(spec, std::slice::from_ref(&x), false);
        let flat = |i: usize| ys[i].flatten_all().unwrap().to_vec1::<f64>().unwrap();
        // torch.var(x, 1), torch.std(x, 0, False), torch.var(x, correction=2), torch.std(x, keepdim=True).
        let want: [&[f64]; 4] =
            [&[2.333333333333333, 25.75], &[2.0, 0.75, 1.5], &[14.302083333333332], &[3.382553276249565]];
        for (i, w) in want.iter().enumerate() {
            assert!(flat(i).iter().zip(*w).all(|(g, w)| (g - w).abs() < 1e-12), "{i}: {:?}", flat(i));
        }
        assert_eq!(ys[3].dims(), &[1, 1]);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_some_and_all_axes() {
        let spec = "model M { input x: [3, 4, 5]\n output a = var(x, [0, 2], keepdim=true)\n \
                    output b = std(x, -1)\n output c = var(x, correction=0)\n output d = std(x, dim=1, unbiased=false) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
