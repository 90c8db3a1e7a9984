//! `slice(x, axis, start=0, end=none, step=1)`: `x[..., start:end:step, ...]` along one axis.
//! Negative `start`/`end` count from the end, as in Python; unlike Python, an out-of-range
//! bound is an error rather than clamped, since in a spec it is a mistake.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_axis, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static SLICE: OpDef = OpDef {
    name: "slice",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("axis", AttrType::Int, Default::Required),
            attr("start", AttrType::Int, Default::Int(0)),
            // Absent means the end of the axis.
            attr("end", AttrType::Int, Default::Optional),
            attr("step", AttrType::Int, Default::Int(1)),
        ],
    },
    build: |a: &Attrs| {
        Ok(Box::new(Slice {
            axis: a.int("axis")?,
            start: a.dim("start")?,
            end: if a.is_none("end") { None } else { Some(a.dim("end")?) },
            step: a.int_at_least("step", 1)?,
        }))
    },
};

#[derive(Debug)]
pub struct Slice {
    pub axis: i64,
    pub start: Dim,
    pub end: Option<Dim>,
    pub step: i64,
}

/// A bound as a position in `0..=len`: a negative constant counts from the end.
fn position(bound: &Dim, len: &Dim) -> Dim {
    match bound.as_const() {
        Some(v) if v < 0 => len.add(bound),
        _ => bound.clone(),
    }
}

impl Op for Slice {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        let axis = expect_axis(x, self.axis, "axis")?;
        let len = &x.shape[axis];
        let start = position(&self.start, len);
        let end = self.end.as_ref().map_or_else(|| len.clone(), |e| position(e, len));
        // Each pair is checked where its difference is a known constant; symbolic bounds pass.
        let exceeds = |a: &Dim, b: &Dim| a.compare(b).is_some_and(|o| o == std::cmp::Ordering::Greater);
        let zero = Dim::zero();
        if exceeds(&zero, &start) || exceeds(&start, &end) || exceeds(&end, len) {
            return Err(OpError::new(format!(
                "slice [{start}:{end}] is out of range for axis {axis} of size {len} (shape {x}): \
                 expected 0 <= start <= end <= {len}"
            ))
            .attr(if exceeds(&zero, &start) || exceeds(&start, &end) { "start" } else { "end" })
            .input(0));
        }
        let size = end
            .sub(&start)
            .ceil_div(&Dim::konst(self.step))
            .map_err(|_| OpError::new("`step` must be positive").attr("step"))?;
        let mut shape = x.shape.clone();
        shape[axis] = size;
        Ok(vec![x.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Slice {
    /// A `narrow` over `start..end`, then every `step`-th row of it by `index_select`.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let x = &ctx.inputs[0];
        let axis = expect_axis(x, self.axis, "axis").map_err(|e| ctx.error(e.message))?;
        let start = ctx.dim(&position(&self.start, &x.shape[axis]))?;
        let size = ctx.output_dims(0)?[axis];
        let step = self.step as usize;
        let span = if size == 0 { 0 } else { (size - 1) * step + 1 };
        let every = if step > 1 && size > 0 {
            let index: Vec<u32> = (0..size).map(|i| (i * step) as u32).collect();
            Some(candle_core::Tensor::from_vec(index, size, ctx.device)?)
        } else {
            None
        };
        Ok(unary(move |x, _| {
            let y = x.narrow(axis, start, span)?;
            match &every {
                Some(index) => y.contiguous()?.index_select(index, axis),
                None => Ok(y),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, int, macs, out_shape};

    #[test]
    fn slices_with_python_bounds() {
        let op = build(&SLICE, &[("axis", int(0)), ("start", int(2))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[4, 32, 256])]), vec![2, 32, 256]);
        assert_eq!(macs(&*op, &[f32(&[4, 32, 256])]), 0);
        let op = build(&SLICE, &[("axis", int(-1)), ("start", int(1)), ("end", int(-1)), ("step", int(2))])
            .unwrap();
        // [1:9:2] of 10 is 1, 3, 5, 7.
        assert_eq!(out_shape(&*op, &[f32(&[3, 10])]), vec![3, 4]);
    }

    #[test]
    fn keeps_symbolic_lengths() {
        let t = Dim::sym("T");
        let x = TensorType::new(DType::F32, vec![Dim::sym("N"), t.clone(), 768.into()]);
        let op = build(&SLICE, &[("axis", int(1)), ("start", int(1))]).unwrap();
        assert_eq!(op.infer(std::slice::from_ref(&x)).unwrap()[0].shape[1], t.sub(&Dim::one()));
        let op = build(&SLICE, &[("axis", int(1)), ("end", int(1))]).unwrap();
        assert_eq!(op.infer(&[x]).unwrap()[0].shape[1], Dim::one());
    }

    #[test]
    fn refuses_out_of_range_bounds_and_bad_axes() {
        let op = build(&SLICE, &[("axis", int(1)), ("start", int(2)), ("end", int(12))]).unwrap();
        let e = err(op.infer(&[f32(&[1, 10])]));
        assert_eq!(e.attr, Some("end"));
        assert!(e.message.contains("slice [2:12] is out of range for axis 1 of size 10"), "{}", e.message);
        let op = build(&SLICE, &[("axis", int(0)), ("start", int(5)), ("end", int(3))]).unwrap();
        assert_eq!(err(op.infer(&[f32(&[10])])).attr, Some("start"));
        let op = build(&SLICE, &[("axis", int(0)), ("start", int(-11))]).unwrap();
        assert_eq!(err(op.infer(&[f32(&[10])])).attr, Some("start"));
        let op = build(&SLICE, &[("axis", int(3))]).unwrap();
        assert_eq!(err(op.infer(&[f32(&[10])])).attr, Some("axis"));
        assert_eq!(err(build(&SLICE, &[("axis", int(0)), ("step", int(0))])).attr, Some("step"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_bounds_and_steps() {
        let spec = "model M { input x: [3, 10, 2]\n output a = slice(x, 1, start=2, end=-1, step=3)\n \
                    output b = slice(x, -1, start=1)\n output c = slice(x, 0, end=2) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
