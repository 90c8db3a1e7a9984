//! `MaxPool2d` and `AvgPool2d`: parameter-free windows over the last two axes.

use super::geometry::Window;
use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_rank, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::pool::{average_matrix, max_pool, Axis, Divisor, Separable, Windows};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static MAX_POOL2D: OpDef = OpDef {
    name: "MaxPool2d",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("kernel_size", AttrType::IntOrList, Default::Required),
            // Absent means kernel_size, as in PyTorch.
            attr("stride", AttrType::IntOrList, Default::Optional),
            attr("padding", AttrType::IntOrList, Default::Int(0)),
            attr("dilation", AttrType::IntOrList, Default::Int(1)),
            attr("ceil_mode", AttrType::Bool, Default::Bool(false)),
        ],
    },
    build: |a: &Attrs| Ok(Box::new(Pool2d::from_attrs(a, Kind::Max)?)),
};

pub static AVG_POOL2D: OpDef = OpDef {
    name: "AvgPool2d",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("kernel_size", AttrType::IntOrList, Default::Required),
            attr("stride", AttrType::IntOrList, Default::Optional),
            attr("padding", AttrType::IntOrList, Default::Int(0)),
            attr("ceil_mode", AttrType::Bool, Default::Bool(false)),
            attr("count_include_pad", AttrType::Bool, Default::Bool(true)),
            attr("divisor_override", AttrType::Int, Default::Optional),
        ],
    },
    build: |a: &Attrs| {
        let kind = Kind::Avg {
            count_include_pad: a.bool("count_include_pad")?,
            divisor_override: a.opt_int("divisor_override")?,
        };
        if let Kind::Avg { divisor_override: Some(d), .. } = kind {
            if d < 1 {
                return Err(OpError::new(format!("`divisor_override` must be at least 1, found {d}"))
                    .attr("divisor_override"));
            }
        }
        Ok(Box::new(Pool2d::from_attrs(a, kind)?))
    },
};

/// What a window reduces to; only the lowering cares, shapes are the same.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Max,
    Avg { count_include_pad: bool, divisor_override: Option<i64> },
}

#[derive(Debug)]
pub struct Pool2d {
    pub kind: Kind,
    pub window: Window,
}

impl Pool2d {
    fn from_attrs(a: &Attrs, kind: Kind) -> Result<Pool2d, OpError> {
        let window = Window::from_attrs(a, 2)?;
        // PyTorch refuses padding that would let a window see only padding.
        let padding = window.explicit_padding().unwrap_or_default();
        for (p, k) in padding.iter().zip(&window.kernel) {
            if 2 * p > *k {
                return Err(OpError::new(format!(
                    "padding should be at most half of the kernel size, found padding {padding:?} for kernel {:?}",
                    window.kernel
                ))
                .attr("padding"));
            }
        }
        Ok(Pool2d { kind, window })
    }
}

impl Op for Pool2d {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[3, 4], "[C, H, W] or [N, C, H, W]")?;
        let x = &inputs[0];
        let (lead, spatial) = x.shape.split_at(x.rank() - 2);
        let mut shape = lead.to_vec();
        shape.extend(self.window.out_sizes(spatial)?);
        Ok(vec![x.with_shape(shape)])
    }

    /// Comparisons and additions are not multiply-accumulates: not counted by the convention.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Pool2d {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let (input, output) = (ctx.input_dims(0)?, ctx.output_dims(0)?);
        let w = &self.window;
        let padding = w.explicit_padding().unwrap_or_default();
        let axis = |i: usize| Axis {
            input: input[input.len() - 2 + i],
            output: output[output.len() - 2 + i],
            kernel: w.kernel[i] as usize,
            stride: w.stride[i] as usize,
            padding: padding.get(i).copied().unwrap_or(0) as usize,
            dilation: w.dilation[i] as usize,
        };
        let (rows, cols) = (axis(0), axis(1));
        match self.kind {
            Kind::Max => {
                let windows = Windows::new(rows, cols, ctx.device)?;
                Ok(unary(move |x, _| max_pool(x, &windows, rows, cols)))
            }
            Kind::Avg { count_include_pad, divisor_override } => {
                let divisor = match (divisor_override, count_include_pad) {
                    (Some(_), _) => Divisor::Override,
                    (None, true) => Divisor::IncludePad,
                    (None, false) => Divisor::ExcludePad,
                };
                let average = Separable::new(
                    average_matrix(rows, divisor),
                    (rows.output, rows.input),
                    average_matrix(cols, divisor),
                    (cols.output, cols.input),
                    divisor_override.map(|d| 1.0 / d as f64),
                    ctx.dtype,
                    ctx.device,
                )?;
                Ok(unary(move |x, _| average.apply(x)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, int, ints, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    fn max_pool(k: i64, s: i64, p: i64, ceil: bool, size: i64) -> Vec<i64> {
        let a = [
            ("kernel_size", int(k)),
            ("stride", int(s)),
            ("padding", int(p)),
            ("ceil_mode", AttrValue::Bool(ceil)),
        ];
        let op = build(&MAX_POOL2D, &a).unwrap();
        out_shape(&*op, &[f32(&[1, 64, size, size])])
    }

    #[test]
    fn resnet18_maxpool_has_no_params_or_macs() {
        assert_eq!(max_pool(3, 2, 1, false, 112), vec![1, 64, 56, 56]);
        let op =
            build(&MAX_POOL2D, &[("kernel_size", int(3)), ("stride", int(2)), ("padding", int(1))]).unwrap();
        let x = [f32(&[1, 64, 112, 112])];
        assert_eq!(count(&*op, &x, ParamKind::Weight), 0);
        assert_eq!(macs(&*op, &x), 0);
    }

    #[test]
    fn ceil_mode_as_in_googlenet() {
        for (size, expected) in [(112, 56), (113, 56), (57, 28), (14, 7), (7, 3)] {
            assert_eq!(max_pool(3, 2, 0, true, size)[2], expected, "input {size}");
        }
        // Floor mode differs on an even input.
        assert_eq!(max_pool(3, 2, 0, false, 14)[2], 6);
    }

    #[test]
    fn stride_defaults_to_the_kernel_and_rank_3_is_unbatched() {
        let op = build(&AVG_POOL2D, &[("kernel_size", ints(&[2, 4]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[16, 8, 8])]), vec![16, 4, 2]);
        assert!(err(op.infer(&[f32(&[8, 8])])).message.contains("rank-3 or rank-4"));
    }

    #[test]
    fn padding_beyond_half_the_kernel_is_refused() {
        let e = err(build(&MAX_POOL2D, &[("kernel_size", int(3)), ("padding", int(2))]));
        assert_eq!(e.attr, Some("padding"));
        let e = err(build(&AVG_POOL2D, &[("kernel_size", int(2)), ("divisor_override", int(0))]));
        assert_eq!(e.attr, Some("divisor_override"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_overlapping_padded_and_ceil_windows() {
        let spec = "model M { input x: [2, 3, 10, 7]\n \
            output a = x |> MaxPool2d(3, stride=2, padding=1)\n \
            output b = x |> MaxPool2d([3, 2], stride=[2, 1], ceil_mode=true, dilation=[1, 2])\n \
            output c = x |> AvgPool2d(3, stride=2, padding=1)\n \
            output d = x |> AvgPool2d(3, stride=2, padding=1, count_include_pad=false, ceil_mode=true)\n \
            output e = x |> AvgPool2d([2, 3], divisor_override=5) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
