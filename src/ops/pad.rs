//! `pad(x, pad, mode, value)`: `torch.nn.functional.pad`. `pad` holds (before, after) pairs
//! from the last axis backwards, as PyTorch's: `[1, 2]` pads the last axis, `[1, 2, 3, 4]` the
//! last two. Modes `constant` (with `value`), `reflect`, `replicate` and `circular`, on any
//! trailing axes (PyTorch limits the last three to batched inputs of some ranks). Sizes are
//! at least 0: a crop is a `slice`. Not counted in MACs.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::kernels::pad::{pad, PadMode};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

const MODES: &[&str] = &["constant", "reflect", "replicate", "circular"];

pub static PAD: OpDef = OpDef {
    name: "pad",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("pad", AttrType::IntList, Default::Required),
            attr("mode", AttrType::Choice(MODES), Default::Str("constant")),
            attr("value", AttrType::Float, Default::Optional),
        ],
    },
    build: |a: &Attrs| {
        let sizes = a.int_list("pad")?;
        if sizes.is_empty() || sizes.len() % 2 != 0 {
            return Err(OpError::new(format!(
                "`pad` holds (before, after) pairs, last axis first: found {} value(s)",
                sizes.len()
            ))
            .attr("pad"));
        }
        if let Some(v) = sizes.iter().find(|v| **v < 0) {
            return Err(OpError::new(format!("`pad` sizes must be at least 0, found {v}"))
                .attr("pad")
                .help("crop with `slice`"));
        }
        let mode = a.str("mode").unwrap_or("constant").to_string();
        let value = if a.is_none("value") { 0.0 } else { a.float("value")? };
        if mode != "constant" && !a.is_none("value") {
            return Err(OpError::new(format!("`value` fills constant padding only, found mode \"{mode}\""))
                .attr("value"));
        }
        let pairs = sizes.chunks(2).map(|p| (p[0], p[1])).collect();
        Ok(Box::new(Pad { pairs, mode, value }))
    },
};

#[derive(Debug)]
pub struct Pad {
    /// (before, after) for the last axis, the one before it, and so on.
    pub pairs: Vec<(i64, i64)>,
    pub mode: String,
    pub value: f64,
}

impl Pad {
    /// (axis, before, after) for each padded axis of a rank-`rank` input.
    fn axes(&self, x: &TensorType) -> Result<Vec<(usize, i64, i64)>, OpError> {
        if self.pairs.len() > x.rank() {
            return Err(OpError::new(format!(
                "`pad` pads {} axes, but the input {} has {}",
                self.pairs.len(),
                shape_string(&x.shape),
                x.rank()
            ))
            .attr("pad"));
        }
        Ok(self.pairs.iter().enumerate().map(|(i, (l, r))| (x.rank() - 1 - i, *l, *r)).collect())
    }

    /// Reflection needs each pad below the axis size; wrapping around, at most the size.
    fn check_size(&self, size: &Dim, before: i64, after: i64, axis: usize) -> Result<(), OpError> {
        let (Some(n), widest) = (size.as_const(), before.max(after)) else { return Ok(()) };
        let fits = match self.mode.as_str() {
            "reflect" => widest < n,
            "circular" => widest <= n,
            "replicate" => n > 0 || widest == 0,
            _ => true,
        };
        if fits {
            return Ok(());
        }
        Err(OpError::new(format!(
            "{} padding of {widest} does not fit axis {axis} of size {n}: reflect needs a pad below the size, \
             circular at most the size",
            self.mode
        ))
        .attr("pad"))
    }
}

impl Op for Pad {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        let mut shape = x.shape.clone();
        for (axis, before, after) in self.axes(x)? {
            self.check_size(&x.shape[axis], before, after, axis)?;
            shape[axis] = x.shape[axis].add(&Dim::konst(before + after));
        }
        Ok(vec![x.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Pad {
    /// One axis at a time through the convolutions' padding kernel; a constant other than 0
    /// pads `x - value` with zeros and adds it back.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let x = &ctx.inputs[0];
        let axes = self.axes(x).map_err(|e| ctx.error(e.message))?;
        for (axis, before, after) in &axes {
            self.check_size(&x.shape[*axis], *before, *after, *axis).map_err(|e| ctx.error(e.message))?;
        }
        let mode = match self.mode.as_str() {
            "constant" => PadMode::Zeros,
            other => PadMode::parse(other).ok_or_else(|| ctx.error(format!("unknown mode \"{other}\"")))?,
        };
        let value = self.value;
        Ok(unary(move |x, _| {
            let mut y = if value == 0.0 { x.clone() } else { x.affine(1.0, -value)? };
            for (axis, before, after) in &axes {
                y = pad(&y, *axis, *before as usize, *after as usize, mode)?;
            }
            if value == 0.0 {
                Ok(y)
            } else {
                y.affine(1.0, value)
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, ints, out_shape};
    use crate::ops::AttrValue;

    fn reflect() -> (&'static str, AttrValue) {
        ("mode", AttrValue::Str("reflect".into()))
    }

    #[test]
    fn pads_trailing_axes_last_first() {
        let op = build(&PAD, &[("pad", ints(&[1, 2, 3, 0]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 3, 5, 7])]), vec![2, 3, 8, 10]);
        let n = TensorType::new(crate::ir::tensor::DType::F32, vec![Dim::sym("N"), Dim::sym("L")]);
        let padded = op.infer(std::slice::from_ref(&n)).unwrap().remove(0);
        assert_eq!(padded.shape, vec![Dim::sym("N").add(&3.into()), Dim::sym("L").add(&3.into())]);
        let e = err(op.infer(&[f32(&[5])]));
        assert!(e.message.contains("pads 2 axes") && e.message.contains("has 1"), "{}", e.message);
    }

    #[test]
    fn refuses_odd_lists_negative_sizes_and_pads_that_do_not_fit() {
        assert!(err(build(&PAD, &[("pad", ints(&[1, 2, 3]))])).message.contains("pairs"));
        assert!(err(build(&PAD, &[("pad", ints(&[1, -1]))])).help.is_some_and(|h| h.contains("slice")));
        let op = build(&PAD, &[("pad", ints(&[3, 0])), reflect()]).unwrap();
        assert!(err(op.infer(&[f32(&[2, 3])])).message.contains("reflect padding of 3"));
        assert!(op.infer(&[f32(&[2, 4])]).is_ok());
        let e = err(build(&PAD, &[("pad", ints(&[1, 1])), reflect(), ("value", AttrValue::Float(1.0))]));
        assert_eq!(e.attr, Some("value"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn forward_values_as_pytorch() {
        use candle_core::{Device, Tensor};
        let x = Tensor::arange(0.0f64, 12.0, &Device::Cpu).unwrap().reshape((1, 3, 4)).unwrap();
        let spec = "model M { input x: [1, 3, 4]\n output a = pad(x, [2, 1], \"reflect\")\n \
                    output b = pad(x, [1, 2, 1, 0], mode=\"replicate\")\n output c = pad(x, [1, 0, 0, 1], value=-1.5)\n \
                    output d = pad(x, [2, 1], \"circular\") }";
        let ys = crate::lower::gradcheck::run_spec(spec, std::slice::from_ref(&x), false);
        let rows = |i: usize| ys[i].squeeze(0).unwrap().to_vec2::<f64>().unwrap();
        // F.pad(x, ...) with the same pads and modes.
        assert_eq!(
            rows(0),
            [[2., 1., 0., 1., 2., 3., 2.], [6., 5., 4., 5., 6., 7., 6.], [10., 9., 8., 9., 10., 11., 10.]]
        );
        let replicate = [
            [0., 0., 1., 2., 3., 3., 3.],
            [0., 0., 1., 2., 3., 3., 3.],
            [4., 4., 5., 6., 7., 7., 7.],
            [8., 8., 9., 10., 11., 11., 11.],
        ];
        assert_eq!(rows(1), replicate);
        let constant = [
            [-1.5, 0., 1., 2., 3.],
            [-1.5, 4., 5., 6., 7.],
            [-1.5, 8., 9., 10., 11.],
            [-1.5, -1.5, -1.5, -1.5, -1.5],
        ];
        assert_eq!(rows(2), constant);
        assert_eq!(
            rows(3),
            [[2., 3., 0., 1., 2., 3., 0.], [6., 7., 4., 5., 6., 7., 4.], [10., 11., 8., 9., 10., 11., 8.]]
        );
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_every_mode() {
        let spec = "model M { input x: [2, 3, 5]\n output a = pad(x, [2, 1, 0, 2], \"reflect\")\n \
                    output b = pad(x, [3, 1, 1, 2], \"replicate\")\n output c = pad(x, [1, 2, 2, 0], value=0.7)\n \
                    output d = pad(x, [1, 3], \"circular\")\n output e = pad(x, [0, 1]) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
