//! `mean(x, axis, keepdim)` and `sum(x, axis, keepdim)`: reductions over some axes (all of them
//! when `axis` is left out), as the tensor methods. Not counted in MACs.

use super::signature::{attr, AttrSpec, AttrType, Default, Inputs};
use super::{expect_axis, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{DType, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

const ATTRS: &[AttrSpec] = &[
    attr("axis", AttrType::IntOrList, Default::Optional),
    attr("keepdim", AttrType::Bool, Default::Bool(false)),
];

pub static MEAN: OpDef = OpDef {
    name: "mean",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: ATTRS },
    build: |a: &Attrs| Ok(Box::new(Reduce::from_attrs(a, Reduction::Mean)?)),
};

pub static SUM: OpDef = OpDef {
    name: "sum",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: ATTRS },
    build: |a: &Attrs| Ok(Box::new(Reduce::from_attrs(a, Reduction::Sum)?)),
};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reduction {
    Mean,
    Sum,
}

#[derive(Debug)]
pub struct Reduce {
    pub reduction: Reduction,
    /// `None` reduces every axis.
    pub axes: Option<Vec<i64>>,
    pub keepdim: bool,
}

impl Reduce {
    fn from_attrs(a: &Attrs, reduction: Reduction) -> Result<Reduce, OpError> {
        Ok(Reduce { reduction, axes: axes_attr(a)?, keepdim: a.bool("keepdim")? })
    }
}

/// The `axis` attribute of a reduction: one axis, several, or `None` for every axis.
pub(super) fn axes_attr(a: &Attrs) -> Result<Option<Vec<i64>>, OpError> {
    Ok(if a.is_none("axis") { None } else { Some(a.int_list("axis")?) })
}

/// Which axes of `x` a reduction over `axes` (every axis when `None`) reduces, each once.
pub(super) fn reduced_axes(x: &TensorType, axes: Option<&[i64]>) -> Result<Vec<bool>, OpError> {
    let mut reduced = vec![axes.is_none(); x.rank()];
    for a in axes.into_iter().flatten() {
        let axis = expect_axis(x, *a, "axis")?;
        if std::mem::replace(&mut reduced[axis], true) {
            return Err(OpError::new(format!("`axis` names axis {axis} twice (input {x})")).attr("axis"));
        }
    }
    Ok(reduced)
}

/// The shape left after reducing the `reduced` axes of `x`: kept as 1 with `keepdim`.
pub(super) fn reduced_shape(x: &TensorType, reduced: &[bool], keepdim: bool) -> Vec<Dim> {
    x.shape
        .iter()
        .zip(reduced)
        .filter_map(|(d, r)| match (r, keepdim) {
            (false, _) => Some(d.clone()),
            (true, true) => Some(Dim::one()),
            (true, false) => None,
        })
        .collect()
}

/// The reduced axes' indices in order, for the lowering.
#[cfg(feature = "lower")]
pub(super) fn axis_indices(x: &TensorType, axes: Option<&[i64]>) -> Result<Vec<usize>, OpError> {
    Ok(reduced_axes(x, axes)?.iter().enumerate().filter_map(|(i, r)| r.then_some(i)).collect())
}

impl Op for Reduce {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        let reduced = reduced_axes(x, self.axes.as_deref())?;
        // As PyTorch: a mean needs floats; a sum of ints or bools is an i64.
        let dtype = match (self.reduction, x.dtype.is_float()) {
            (_, true) => x.dtype,
            (Reduction::Sum, false) => DType::I64,
            (Reduction::Mean, false) => {
                return Err(
                    OpError::new(format!("mean needs a float input, found dtype {} ({x})", x.dtype)).input(0)
                )
            }
        };
        Ok(vec![TensorType::new(dtype, reduced_shape(x, &reduced, self.keepdim))])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Reduce {
    /// Integer sums are taken in i64, as PyTorch's.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axes = axis_indices(&ctx.inputs[0], self.axes.as_deref()).map_err(|e| ctx.error(e.message))?;
        let (reduction, out) = (self.reduction, ctx.output_dims(0)?);
        Ok(unary(move |x, _| {
            let x = if x.dtype().is_float() { x.clone() } else { x.to_dtype(candle_core::DType::I64)? };
            let y = match reduction {
                Reduction::Sum => x.sum_keepdim(axes.clone())?,
                Reduction::Mean => x.mean_keepdim(axes.clone())?,
            };
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
    fn reduces_the_given_axes_with_or_without_keepdim() {
        let op = build(&MEAN, &[("axis", ints(&[2, 3])), ("keepdim", AttrValue::Bool(true))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[8, 64, 7, 7])]), vec![8, 64, 1, 1]);
        assert_eq!(macs(&*op, &[f32(&[8, 64, 7, 7])]), 0);
        let op = build(&SUM, &[("axis", int(0))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[10, 32, 512])]), vec![32, 512]);
        let op = build(&SUM, &[]).unwrap();
        assert_eq!(op.infer(&[f32(&[10, 32])]).unwrap()[0].shape, Vec::<Dim>::new());
    }

    #[test]
    fn follows_pytorch_dtypes() {
        let ids = TensorType::new(DType::I32, vec![4.into(), 5.into()]);
        assert_eq!(
            build(&SUM, &[("axis", int(-1))]).unwrap().infer(std::slice::from_ref(&ids)).unwrap()[0].dtype,
            DType::I64
        );
        assert!(err(build(&MEAN, &[]).unwrap().infer(&[ids])).message.contains("mean needs a float input"));
    }

    #[test]
    fn refuses_repeated_or_out_of_range_axes() {
        let op = build(&MEAN, &[("axis", ints(&[1, -1]))]).unwrap();
        assert!(err(op.infer(&[f32(&[2, 3])])).message.contains("axis 1 twice"));
        let op = build(&MEAN, &[("axis", int(2))]).unwrap();
        assert_eq!(err(op.infer(&[f32(&[2, 3])])).attr, Some("axis"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_some_and_all_axes() {
        let spec = "model M { input x: [3, 4, 5]\n output a = mean(x, [0, 2], keepdim=true)\n \
                    output b = sum(x, -1)\n output c = mean(x)\n output d = sum(x, keepdim=true) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
