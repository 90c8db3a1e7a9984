//! `roll(x, shifts, axis)`: `torch.roll`, elements shifted along axes with those pushed off
//! the end coming back at the start (Swin's shifted windows). Without `axis` the tensor is
//! rolled as one flat row and keeps its shape. Not counted in MACs.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_axis, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static ROLL: OpDef = OpDef {
    name: "roll",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("shifts", AttrType::IntOrList, Default::Required),
            attr("axis", AttrType::IntOrList, Default::Optional),
        ],
    },
    build: |a: &Attrs| {
        let shifts = a.int_list("shifts")?;
        let axes = if a.is_none("axis") { None } else { Some(a.int_list("axis")?) };
        let given = axes.as_ref().map_or(1, Vec::len);
        if shifts.len() != given {
            return Err(OpError::new(format!(
                "`shifts` needs one shift per axis: {given} axis(es), found {} shift(s)",
                shifts.len()
            ))
            .attr("shifts"));
        }
        Ok(Box::new(Roll { shifts, axes }))
    },
};

#[derive(Debug)]
pub struct Roll {
    pub shifts: Vec<i64>,
    /// `None` rolls the flattened tensor.
    pub axes: Option<Vec<i64>>,
}

impl Roll {
    /// (axis, shift) pairs on `x`; an axis may come twice, and then rolls twice, as PyTorch's.
    fn pairs(&self, x: &TensorType) -> Result<Vec<(usize, i64)>, OpError> {
        match &self.axes {
            None => Ok(vec![(0, self.shifts[0])]),
            Some(axes) => {
                axes.iter().zip(&self.shifts).map(|(a, s)| Ok((expect_axis(x, *a, "axis")?, *s))).collect()
            }
        }
    }
}

impl Op for Roll {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        if self.axes.is_some() {
            self.pairs(x)?;
        }
        Ok(vec![x.clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Roll {
    /// Each roll is two slices swapped (`narrow` and `cat`, whose backward is exact).
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let x = &ctx.inputs[0];
        let pairs = self.pairs(x).map_err(|e| ctx.error(e.message))?;
        let (flat, dims) = (self.axes.is_none(), ctx.input_dims(0)?);
        Ok(unary(move |x, _| {
            let mut y = if flat { x.flatten_all()? } else { x.clone() };
            for (axis, shift) in &pairs {
                y = roll(&y, *shift, *axis)?;
            }
            if flat {
                y.reshape(dims.as_slice())
            } else {
                Ok(y)
            }
        }))
    }
}

/// `torch.roll(x, shift, axis)` on one axis (`shift` may be negative or exceed the size).
#[cfg(feature = "lower")]
pub fn roll(x: &candle_core::Tensor, shift: i64, axis: usize) -> candle_core::Result<candle_core::Tensor> {
    let size = x.dim(axis)?;
    let shift = shift.rem_euclid(size.max(1) as i64) as usize;
    if shift == 0 {
        return Ok(x.clone());
    }
    let (head, tail) = (x.narrow(axis, 0, size - shift)?, x.narrow(axis, size - shift, shift)?);
    candle_core::Tensor::cat(&[&tail, &head], axis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, int, ints, out_shape};

    #[test]
    fn keeps_the_shape_and_pairs_shifts_with_axes() {
        let op = build(&ROLL, &[("shifts", ints(&[-3, 3])), ("axis", ints(&[1, 2]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 56, 56, 96])]), vec![2, 56, 56, 96]);
        let e = err(build(&ROLL, &[("shifts", ints(&[1, 2])), ("axis", int(0))]));
        assert!(e.message.contains("1 axis(es), found 2 shift(s)"), "{}", e.message);
        let op = build(&ROLL, &[("shifts", int(1)), ("axis", int(3))]).unwrap();
        assert_eq!(err(op.infer(&[f32(&[2, 3])])).attr, Some("axis"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn forward_values_as_pytorch() {
        use candle_core::{Device, Tensor};
        let x = Tensor::arange(0.0f64, 12.0, &Device::Cpu).unwrap().reshape((3, 4)).unwrap();
        let spec = "model M { input x: [3, 4]\n output a = roll(x, [1, -5], [0, 1])\n \
                    output b = roll(x, 5)\n output c = roll(x, 2, dims=0) }";
        let ys = crate::lower::gradcheck::run_spec(spec, std::slice::from_ref(&x), false);
        let flat = |i: usize| ys[i].flatten_all().unwrap().to_vec1::<f64>().unwrap();
        // torch.roll(x, (1, -5), (0, 1)), torch.roll(x, 5), torch.roll(x, 2, 0).
        assert_eq!(flat(0), [9., 10., 11., 8., 1., 2., 3., 0., 5., 6., 7., 4.]);
        assert_eq!(flat(1), [7., 8., 9., 10., 11., 0., 1., 2., 3., 4., 5., 6.]);
        assert_eq!(flat(2), [4., 5., 6., 7., 8., 9., 10., 11., 0., 1., 2., 3.]);
        assert_eq!(ys[1].dims(), &[3, 4]);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_on_odd_shapes() {
        let spec = "model M { input x: [3, 5, 2]\n output a = roll(x, [2, -1], [1, 0])\n \
                    output b = roll(x, 7)\n output c = roll(x, [1, 1], [1, 1]) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
