//! `AdaptiveAvgPool2d(output_size)` and `GlobalAvgPool`: averages to a fixed spatial size.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_rank, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::pool::{adaptive_matrix, Separable};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static ADAPTIVE_AVG_POOL2D: OpDef = OpDef {
    name: "AdaptiveAvgPool2d",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("output_size", AttrType::IntOrList, Default::Required)],
    },
    build: |a: &Attrs| {
        let size = a.ints("output_size", 2)?;
        if size.iter().any(|s| *s < 1) {
            return Err(OpError::new(format!(
                "`output_size` must be at least 1 on every axis, found {size:?}"
            ))
            .attr("output_size"));
        }
        Ok(Box::new(AdaptiveAvgPool2d { output_size: size }))
    },
};

/// `AdaptiveAvgPool2d(1)` under the name other frameworks use.
pub static GLOBAL_AVG_POOL: OpDef = OpDef {
    name: "GlobalAvgPool",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: &[] },
    build: |_: &Attrs| Ok(Box::new(AdaptiveAvgPool2d { output_size: vec![1, 1] })),
};

#[derive(Debug)]
pub struct AdaptiveAvgPool2d {
    pub output_size: Vec<i64>,
}

impl Op for AdaptiveAvgPool2d {
    /// Any input size works: the windows adapt, so only the last two axes change.
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[3, 4], "[C, H, W] or [N, C, H, W]")?;
        let x = &inputs[0];
        let mut shape = x.shape[..x.rank() - 2].to_vec();
        shape.extend(self.output_size.iter().map(|s| Dim::konst(*s)));
        Ok(vec![x.with_shape(shape)])
    }

    /// Additions only: not counted by the convention.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for AdaptiveAvgPool2d {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let input = ctx.input_dims(0)?;
        let (h, w) = (input[input.len() - 2], input[input.len() - 1]);
        let (oh, ow) = (self.output_size[0] as usize, self.output_size[1] as usize);
        let average = Separable::new(
            adaptive_matrix(h, oh),
            (oh, h),
            adaptive_matrix(w, ow),
            (ow, w),
            None,
            ctx.dtype,
            ctx.device,
        )?;
        Ok(unary(move |x, _| average.apply(x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, int, ints, macs, out_shape};

    #[test]
    fn pools_to_the_requested_size() {
        let op = build(&ADAPTIVE_AVG_POOL2D, &[("output_size", ints(&[6, 7]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 256, 13, 13])]), vec![2, 256, 6, 7]);
        let op = build(&ADAPTIVE_AVG_POOL2D, &[("output_size", int(1))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[512, 7, 7])]), vec![512, 1, 1]);
        assert_eq!(macs(&*op, &[f32(&[1, 512, 7, 7])]), 0);
        assert_eq!(err(build(&ADAPTIVE_AVG_POOL2D, &[("output_size", int(0))])).attr, Some("output_size"));
    }

    #[test]
    fn global_pool_keeps_batch_and_channels_symbolic() {
        let op = build(&GLOBAL_AVG_POOL, &[]).unwrap();
        let x = TensorType::new(DType::F32, vec![Dim::sym("N"), 2048.into(), Dim::sym("H"), Dim::sym("W")]);
        let out = op.infer(&[x]).unwrap();
        assert_eq!(out[0].shape, vec![Dim::sym("N"), 2048.into(), 1.into(), 1.into()]);
        assert!(err(op.infer(&[f32(&[1, 2048])])).message.contains("found rank 2"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_overlapping_bins_and_global() {
        let spec = "model M { input x: [2, 3, 10, 7]\n output a = x |> AdaptiveAvgPool2d([4, 3])\n \
                    output b = x |> GlobalAvgPool }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
