//! `BatchNorm1d` and `BatchNorm2d`: per-channel normalisation over axis 1, PyTorch layout.

use super::signature::{attr, AttrSpec, AttrType, Default, Inputs};
use super::Init;
use super::{expect_rank, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::kernels::norm;
#[cfg(feature = "lower")]
use crate::lower::{Forward, Lower, LowerCtx, LowerError};

const ATTRS: &[AttrSpec] = &[
    // Inferred from the input; giving it only adds a check.
    attr("num_features", AttrType::Int, Default::Optional),
    attr("eps", AttrType::Float, Default::Float(1e-5)),
    attr("momentum", AttrType::Float, Default::Float(0.1)),
    attr("affine", AttrType::Bool, Default::Bool(true)),
    attr("track_running_stats", AttrType::Bool, Default::Bool(true)),
];

pub static BATCH_NORM1D: OpDef = OpDef {
    name: "BatchNorm1d",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: ATTRS },
    build: |a: &Attrs| Ok(Box::new(BatchNorm::from_attrs(a, &[2, 3], "[N, C] or [N, C, L]")?)),
};

pub static BATCH_NORM2D: OpDef = OpDef {
    name: "BatchNorm2d",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: ATTRS },
    build: |a: &Attrs| Ok(Box::new(BatchNorm::from_attrs(a, &[4], "[N, C, H, W]")?)),
};

#[derive(Debug)]
pub struct BatchNorm {
    pub num_features: Option<Dim>,
    pub eps: f64,
    pub momentum: f64,
    pub affine: bool,
    pub track_running_stats: bool,
    ranks: &'static [usize],
    layout: &'static str,
}

impl BatchNorm {
    fn from_attrs(a: &Attrs, ranks: &'static [usize], layout: &'static str) -> Result<BatchNorm, OpError> {
        let num_features = if a.is_none("num_features") { None } else { Some(a.dim("num_features")?) };
        Ok(BatchNorm {
            num_features,
            eps: a.float("eps")?,
            momentum: a.float("momentum")?,
            affine: a.bool("affine")?,
            track_running_stats: a.bool("track_running_stats")?,
            ranks,
            layout,
        })
    }
}

/// The channel axis, after `infer` has checked the rank.
fn channels(inputs: &[TensorType]) -> Dim {
    inputs.first().and_then(|x| x.shape.get(1)).cloned().unwrap_or_default()
}

/// Checks a channel count the call gave (`num_features`, `num_channels`) against the input's
/// `axis`, for the norms that take it from the input.
pub(super) fn check_channels(
    declared: Option<&Dim>,
    x: &TensorType,
    axis: usize,
    name: &'static str,
) -> Result<(), OpError> {
    let c = x.shape.get(axis).cloned().unwrap_or_default();
    match declared.filter(|n| **n != c) {
        None => Ok(()),
        Some(n) => Err(OpError::new(format!(
            "`{name}` is {n} but the input has {c} channels on axis {axis} (shape {})",
            shape_string(&x.shape)
        ))
        .attr(name)
        .input(0)
        .help(format!("leave `{name}` out: it is taken from the input"))),
    }
}

impl Op for BatchNorm {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, self.ranks, self.layout)?;
        let x = &inputs[0];
        check_channels(self.num_features.as_ref(), x, 1, "num_features")?;
        Ok(vec![x.clone()])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let c = channels(inputs);
        let mut p = Vec::new();
        if self.affine {
            p.push(ParamDecl::weight("weight", vec![c.clone()], Init::Ones));
            p.push(ParamDecl::weight("bias", vec![c.clone()], Init::Zeros));
        }
        // num_batches_tracked is left out on purpose: it is a scalar counter, not model state
        // worth counting.
        if self.track_running_stats {
            p.push(ParamDecl::buffer("running_mean", vec![c.clone()], Init::Zeros));
            p.push(ParamDecl::buffer("running_var", vec![c], Init::Ones));
        }
        p
    }

    /// Folded into the preceding conv at inference: not counted by the convention.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for BatchNorm {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let (weight, bias) = match self.affine {
            true => (Some(ctx.weight("weight")?), Some(ctx.weight("bias")?)),
            false => (None, None),
        };
        let running = match self.track_running_stats {
            true => Some((ctx.buffer("running_mean")?, ctx.buffer("running_var")?)),
            false => None,
        };
        let bn = norm::BatchNorm { weight, bias, running, eps: self.eps, momentum: self.momentum };
        // With running statistics, a per-channel affine map in eval mode (`lower::fold`).
        Ok(Box::new(bn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn counts_affine_params_and_running_stats() {
        let op = build(&BATCH_NORM2D, &[]).unwrap();
        let x = [f32(&[1, 64, 56, 56])];
        assert_eq!(out_shape(&*op, &x), vec![1, 64, 56, 56]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 128);
        assert_eq!(count(&*op, &x, ParamKind::Buffer), 128);
        assert_eq!(macs(&*op, &x), 0);
        let op = build(&BATCH_NORM1D, &[("affine", AttrValue::Bool(false))]).unwrap();
        let x = [f32(&[8, 100])];
        assert_eq!(count(&*op, &x, ParamKind::Weight), 0);
        assert_eq!(count(&*op, &x, ParamKind::Buffer), 200);
    }

    #[test]
    fn checks_rank_and_num_features() {
        let op = build(&BATCH_NORM1D, &[]).unwrap();
        assert!(err(op.infer(&[f32(&[1, 64, 7, 7])])).message.contains("rank-2 or rank-3"));
        let op = build(&BATCH_NORM2D, &[("num_features", int(64))]).unwrap();
        let e = err(op.infer(&[f32(&[1, 32, 7, 7])]));
        assert!(e.message.contains("`num_features` is 64 but the input has 32 channels"), "{}", e.message);
        assert!(op.infer(&[f32(&[1, 64, 7, 7])]).is_ok());
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_batch_statistics_and_running_statistics() {
        let spec = "model M { input x: [3, 4, 5, 2]\n input v: [5, 3, 4]\n input f: [6, 3]\n \
                    output a = x |> bn: BatchNorm2d\n output b = v |> b1: BatchNorm1d(eps=0.01)\n \
                    output c = f |> b2: BatchNorm1d(affine=false, track_running_stats=false) }";
        for train in [true, false] {
            crate::lower::gradcheck::check_spec(spec, train).unwrap().assert_within(1e-6);
        }
    }

    #[cfg(feature = "lower")]
    #[test]
    fn training_moves_running_statistics_with_the_unbiased_variance() {
        use candle_core::{DType, Device, Tensor};
        let spec = "model M { input x: [4, 2]\n output y = x |> bn: BatchNorm1d(momentum=0.25) }";
        let model = crate::Model::from_source("bn.wick", spec, &crate::Options::default()).unwrap();
        let lowered = model.build(&Device::Cpu, DType::F64).unwrap();
        let x = Tensor::new(&[[1.0f64, 0.0], [2.0, 0.0], [3.0, 4.0], [6.0, 8.0]], &Device::Cpu).unwrap();
        let y = lowered.forward(std::slice::from_ref(&x), true).unwrap();
        let stat = |k: &str| lowered.params().get(k).unwrap().to_vec1::<f64>().unwrap();
        // Column 0: mean 3, biased variance 3.5, unbiased 14/3.
        assert_eq!(stat("bn.running_mean"), vec![0.75 * 0.0 + 0.25 * 3.0, 0.25 * 3.0]);
        let rv = stat("bn.running_var");
        assert!((rv[0] - (0.75 + 0.25 * 14.0 / 3.0)).abs() < 1e-12, "{rv:?}");
        let col0 = y[0].to_vec2::<f64>().unwrap();
        assert!((col0[0][0] - (1.0 - 3.0) / (3.5f64 + 1e-5).sqrt()).abs() < 1e-12);
        // Eval mode reads the running statistics and leaves them alone.
        lowered.forward(&[x], false).unwrap();
        assert_eq!(stat("bn.running_var"), rv);
    }
}
