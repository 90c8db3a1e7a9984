//! `GroupNorm`, `InstanceNorm2d`, `RMSNorm` and StyleGAN's `PixelNorm`: normalisations other
//! than batch and layer norm, PyTorch layouts. Shape-preserving; not counted in MACs.

#[cfg(feature = "lower")]
use candle_core::Tensor;

use super::batchnorm::check_channels;
use super::geometry::per_group;
use super::layernorm::{check_trailing, normalized_dims, normalized_shape_attr};
use super::signature::{attr, AttrType, Default, Inputs};
use super::Init;
use super::{expect_float, expect_rank, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::kernels::norm::{affine, group_standardize, instance_standardize, unit_mean_square};
#[cfg(feature = "lower")]
use crate::lower::kernels::per_channel;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static GROUP_NORM: OpDef = OpDef {
    name: "GroupNorm",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("num_groups", AttrType::Int, Default::Required),
            // Inferred from the input; giving it only adds a check.
            attr("num_channels", AttrType::Int, Default::Optional),
            attr("eps", AttrType::Float, Default::Float(1e-5)),
            attr("affine", AttrType::Bool, Default::Bool(true)),
        ],
    },
    build: |a: &Attrs| {
        Ok(Box::new(GroupNorm {
            num_groups: a.int_at_least("num_groups", 1)?,
            num_channels: optional_dim(a, "num_channels")?,
            eps: a.float("eps")?,
            affine: a.bool("affine")?,
        }))
    },
};

pub static INSTANCE_NORM2D: OpDef = OpDef {
    name: "InstanceNorm2d",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("num_features", AttrType::Int, Default::Optional),
            attr("eps", AttrType::Float, Default::Float(1e-5)),
            attr("momentum", AttrType::Float, Default::Float(0.1)),
            attr("affine", AttrType::Bool, Default::Bool(false)),
            attr("track_running_stats", AttrType::Bool, Default::Bool(false)),
        ],
    },
    build: |a: &Attrs| {
        Ok(Box::new(InstanceNorm {
            num_features: optional_dim(a, "num_features")?,
            eps: a.float("eps")?,
            momentum: a.float("momentum")?,
            affine: a.bool("affine")?,
            track_running_stats: a.bool("track_running_stats")?,
        }))
    },
};

pub static RMS_NORM: OpDef = OpDef {
    name: "RMSNorm",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            // Absent means the last axis of the input.
            attr("normalized_shape", AttrType::IntOrList, Default::Optional),
            // Absent means the machine epsilon of the input's dtype, as in PyTorch.
            attr("eps", AttrType::Float, Default::Optional),
            attr("elementwise_affine", AttrType::Bool, Default::Bool(true)),
        ],
    },
    build: |a: &Attrs| {
        Ok(Box::new(RmsNorm {
            normalized_shape: normalized_shape_attr(a)?,
            eps: if a.is_none("eps") { None } else { Some(a.float("eps")?) },
            elementwise_affine: a.bool("elementwise_affine")?,
        }))
    },
};

pub static PIXEL_NORM: OpDef = OpDef {
    name: "PixelNorm",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("eps", AttrType::Float, Default::Float(1e-8))],
    },
    build: |a: &Attrs| Ok(Box::new(PixelNorm { eps: a.float("eps")? })),
};

fn expect_rank_at_least(inputs: &[TensorType], min: usize, layout: &str) -> Result<(), OpError> {
    let x = &inputs[0];
    if x.rank() < min {
        return Err(OpError::new(format!(
            "expected an input {layout} of rank {min} or more, found shape {}",
            shape_string(&x.shape)
        ))
        .input(0));
    }
    Ok(())
}

fn optional_dim(a: &Attrs, name: &'static str) -> Result<Option<Dim>, OpError> {
    if a.is_none(name) {
        Ok(None)
    } else {
        a.dim(name).map(Some)
    }
}

/// The per-channel `weight` and `bias` of an affine norm, when it is one.
#[cfg(feature = "lower")]
fn lower_affine(ctx: &mut LowerCtx, affine: bool) -> Result<Option<(Tensor, Tensor)>, LowerError> {
    Ok(if affine { Some((ctx.weight("weight")?, ctx.weight("bias")?)) } else { None })
}

/// `y * weight[c] + bias[c]` for `[N, C, ...]`.
#[cfg(feature = "lower")]
fn channel_affine(y: Tensor, params: Option<&(Tensor, Tensor)>) -> candle_core::Result<Tensor> {
    match params {
        Some((w, b)) => affine(y.clone(), Some(&per_channel(w, y.rank())?), Some(&per_channel(b, y.rank())?)),
        None => Ok(y),
    }
}

/// `weight` (ones) and `bias` (zeros) over `shape`, when the norm is affine.
fn affine_params(affine: bool, shape: Vec<Dim>) -> Vec<ParamDecl> {
    if !affine {
        return Vec::new();
    }
    vec![
        ParamDecl::weight("weight", shape.clone(), Init::Ones),
        ParamDecl::weight("bias", shape, Init::Zeros),
    ]
}

/// Statistics over each of `num_groups` groups of channels, per sample (Wu & He 2018).
#[derive(Debug)]
pub struct GroupNorm {
    pub num_groups: i64,
    pub num_channels: Option<Dim>,
    pub eps: f64,
    pub affine: bool,
}

impl Op for GroupNorm {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank_at_least(inputs, 2, "[N, C, ...]")?;
        let x = &inputs[0];
        check_channels(self.num_channels.as_ref(), x, 1, "num_channels")?;
        per_group(&x.shape[1], self.num_groups, "the channels (axis 1)")
            .map_err(|e| e.attr("num_groups").input(0))?;
        Ok(vec![x.clone()])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let c = inputs.first().and_then(|x| x.shape.get(1)).cloned().unwrap_or_default();
        affine_params(self.affine, vec![c])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for GroupNorm {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let params = lower_affine(ctx, self.affine)?;
        let (groups, eps) = (self.num_groups as usize, self.eps);
        Ok(unary(move |x, _| channel_affine(group_standardize(x, groups, eps)?, params.as_ref())))
    }
}

/// Statistics over H x W, per sample and channel; running statistics only on request.
#[derive(Debug)]
pub struct InstanceNorm {
    pub num_features: Option<Dim>,
    pub eps: f64,
    pub momentum: f64,
    pub affine: bool,
    pub track_running_stats: bool,
}

/// The channel axis: 1 of `[N, C, H, W]`, 0 of an unbatched `[C, H, W]`.
fn instance_channel_axis(x: &TensorType) -> usize {
    if x.rank() == 3 {
        0
    } else {
        1
    }
}

impl Op for InstanceNorm {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[3, 4], "[N, C, H, W] or unbatched [C, H, W]")?;
        let x = &inputs[0];
        check_channels(self.num_features.as_ref(), x, instance_channel_axis(x), "num_features")?;
        Ok(vec![x.clone()])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let Some(x) = inputs.first() else { return Vec::new() };
        let c = x.shape.get(instance_channel_axis(x)).cloned().unwrap_or_default();
        let mut p = affine_params(self.affine, vec![c.clone()]);
        if self.track_running_stats {
            p.push(ParamDecl::buffer("running_mean", vec![c.clone()], Init::Zeros));
            p.push(ParamDecl::buffer("running_var", vec![c], Init::Ones));
        }
        p
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for InstanceNorm {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let params = lower_affine(ctx, self.affine)?;
        let running = if self.track_running_stats {
            Some((ctx.buffer("running_mean")?, ctx.buffer("running_var")?))
        } else {
            None
        };
        let (momentum, eps, unbatched) = (self.momentum, self.eps, ctx.inputs[0].rank() == 3);
        Ok(unary(move |x, ctx| {
            let x = if unbatched { x.unsqueeze(0)? } else { x.clone() };
            let stats = running.as_ref().map(|(m, v)| (m, v));
            let y =
                channel_affine(instance_standardize(&x, stats, momentum, eps, ctx.train)?, params.as_ref())?;
            if unbatched {
                y.squeeze(0)
            } else {
                Ok(y)
            }
        }))
    }
}

/// `x / sqrt(mean(x^2) + eps) * weight` over the trailing axes: LayerNorm without centring or
/// bias (Zhang & Sennrich 2019).
#[derive(Debug)]
pub struct RmsNorm {
    pub normalized_shape: Option<Vec<Dim>>,
    pub eps: Option<f64>,
    pub elementwise_affine: bool,
}

impl Op for RmsNorm {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        check_trailing(&normalized_dims(self.normalized_shape.as_ref(), x), x)?;
        Ok(vec![x.clone()])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        match inputs.first() {
            Some(x) if self.elementwise_affine => {
                vec![ParamDecl::weight(
                    "weight",
                    normalized_dims(self.normalized_shape.as_ref(), x),
                    Init::Ones,
                )]
            }
            _ => Vec::new(),
        }
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for RmsNorm {
    /// Without `eps`, the machine epsilon of the model's dtype (PyTorch's `finfo(dtype).eps`).
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let x = &ctx.inputs[0];
        let axes = normalized_dims(self.normalized_shape.as_ref(), x).len();
        let rank = x.rank();
        let eps = self.eps.unwrap_or(match ctx.dtype {
            candle_core::DType::F64 => f64::EPSILON,
            candle_core::DType::F16 => 9.765625e-4,
            candle_core::DType::BF16 => 7.8125e-3,
            _ => f64::from(f32::EPSILON),
        });
        let weight = if self.elementwise_affine { Some(ctx.weight("weight")?) } else { None };
        let dims: Vec<usize> = (rank - axes..rank).collect();
        Ok(unary(move |x, _| affine(unit_mean_square(x, &dims, eps)?, weight.as_ref(), None)))
    }
}

/// StyleGAN's `x / sqrt(mean(x^2, axis 1) + eps)`: each sample's feature vector (or each
/// pixel's channel vector) scaled to unit mean square. No parameters.
#[derive(Debug)]
pub struct PixelNorm {
    pub eps: f64,
}

impl Op for PixelNorm {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_float(inputs, 0, "PixelNorm")?;
        expect_rank_at_least(inputs, 2, "[N, C, ...], normalised over C")?;
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for PixelNorm {
    fn lower(&self, _: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let eps = self.eps;
        Ok(unary(move |x, _| unit_mean_square(x, &[1], eps)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, count, err, f32, int, ints, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn group_norm_counts_per_channel_affine_params() {
        let op = build(&GROUP_NORM, &[("num_groups", int(32))]).unwrap();
        let x = [f32(&[2, 256, 14, 14])];
        assert_eq!(out_shape(&*op, &x), vec![2, 256, 14, 14]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 512);
        assert_eq!(macs(&*op, &x), 0);
        let op = build(&GROUP_NORM, &[("num_groups", int(4)), ("affine", AttrValue::Bool(false))]).unwrap();
        assert_eq!(count(&*op, &[f32(&[2, 8, 5])], ParamKind::Weight), 0);
    }

    #[test]
    fn group_norm_checks_divisibility_rank_and_declared_channels() {
        let op = build(&GROUP_NORM, &[("num_groups", int(32))]).unwrap();
        let e = err(op.infer(&[f32(&[2, 48, 7, 7])]));
        assert_eq!(e.attr, Some("num_groups"));
        assert!(e.message.contains("48 is not divisible by 32"), "{}", e.message);
        assert!(err(op.infer(&[f32(&[64])])).message.contains("rank 2 or more"));
        let op = build(&GROUP_NORM, &[("num_groups", int(2)), ("num_channels", int(16))]).unwrap();
        let e = err(op.infer(&[f32(&[2, 8, 7, 7])]));
        assert!(e.message.contains("`num_channels` is 16 but the input has 8 channels"), "{}", e.message);
        assert_eq!(err(build(&GROUP_NORM, &[("num_groups", int(0))])).attr, Some("num_groups"));
    }

    #[test]
    fn instance_norm_defaults_to_no_state_and_takes_unbatched_input() {
        let op = build(&INSTANCE_NORM2D, &[]).unwrap();
        let x = [f32(&[1, 64, 32, 32])];
        assert_eq!(out_shape(&*op, &x), vec![1, 64, 32, 32]);
        assert_eq!(count(&*op, &x, ParamKind::Weight) + count(&*op, &x, ParamKind::Buffer), 0);
        let yes = AttrValue::Bool(true);
        let op = build(&INSTANCE_NORM2D, &[("affine", yes.clone()), ("track_running_stats", yes)]).unwrap();
        let x = [f32(&[64, 32, 32])];
        assert_eq!(count(&*op, &x, ParamKind::Weight), 128);
        assert_eq!(count(&*op, &x, ParamKind::Buffer), 128);
        assert!(err(op.infer(&[f32(&[1, 64])])).message.contains("rank-3 or rank-4"));
        let op = build(&INSTANCE_NORM2D, &[("num_features", int(3))]).unwrap();
        assert!(err(op.infer(&[f32(&[1, 64, 8, 8])])).message.contains("`num_features` is 3"));
    }

    #[test]
    fn rms_norm_has_a_weight_only() {
        let op = build(&RMS_NORM, &[]).unwrap();
        let x = TensorType::new(DType::BF16, vec![Dim::sym("N"), Dim::sym("T"), 4096.into()]);
        assert_eq!(op.infer(std::slice::from_ref(&x)).unwrap()[0], x);
        assert_eq!(count(&*op, &[x], ParamKind::Weight), 4096);
        let op = build(&RMS_NORM, &[("normalized_shape", ints(&[7, 7]))]).unwrap();
        assert_eq!(count(&*op, &[f32(&[2, 3, 7, 7])], ParamKind::Weight), 49);
        let e = err(op.infer(&[f32(&[2, 7, 7, 3])]));
        assert!(e.message.contains("[7, 7] must equal the trailing dims"), "{}", e.message);
        let op = build(
            &RMS_NORM,
            &[("elementwise_affine", AttrValue::Bool(false)), ("eps", AttrValue::Float(1e-6))],
        );
        assert_eq!(count(&*op.unwrap(), &[f32(&[2, 8])], ParamKind::Weight), 0);
        assert!(build(&RMS_NORM, &[("normalized_shape", ints(&[]))]).is_err());
    }

    #[test]
    fn pixel_norm_has_no_params_and_needs_a_float_feature_axis() {
        let op = build(&PIXEL_NORM, &[]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[1, 512])]), vec![1, 512]);
        assert!(op.params(&[f32(&[1, 512])]).is_empty());
        assert_eq!(macs(&*op, &[f32(&[1, 512])]), 0);
        assert!(err(op.infer(&[f32(&[512])])).message.contains("found shape [512]"));
        let ids = TensorType::new(DType::I64, vec![1.into(), 512.into()]);
        assert!(err(op.infer(&[ids])).message.contains("PixelNorm expects a float tensor, found dtype i64"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_group_instance_rms_and_pixel_norms() {
        let spec = "model M { input x: [2, 6, 3, 5]\n input u: [4, 3, 5]\n input s: [3, 2, 5]\n \
                    output g = x |> gn: GroupNorm(3)\n \
                    output g1 = x |> GroupNorm(2, affine=false, eps=0.1)\n \
                    output i = x |> inorm: InstanceNorm2d(affine=true)\n \
                    output iu = u |> InstanceNorm2d\n \
                    output r = s |> rms: RMSNorm\n \
                    output r2 = s |> rms2: RMSNorm([2, 5], eps=0.01)\n \
                    output p = s |> PixelNorm }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }

    #[cfg(feature = "lower")]
    /// With running statistics, training normalises per instance and moves the statistics
    /// toward the batch average of the instance ones; evaluation uses them.
    #[test]
    fn instance_norm_running_statistics_follow_pytorch() {
        use candle_core::{DType, Device};
        let spec = "model M { input x: [2, 1, 1, 3]\n \
                    output y = x |> inorm: InstanceNorm2d(track_running_stats=true, momentum=0.5) }";
        let model = crate::Model::from_source("i.wick", spec, &crate::Options::default()).unwrap();
        let net = model.build(&Device::Cpu, DType::F64).unwrap();
        let x = Tensor::new(&[1.0f64, 2.0, 3.0, 0.0, 0.0, 6.0], &Device::Cpu)
            .unwrap()
            .reshape((2, 1, 1, 3))
            .unwrap();
        net.forward(std::slice::from_ref(&x), true).unwrap();
        let stat = |k: &str| net.params().get(k).unwrap().to_vec1::<f64>().unwrap()[0];
        // Means 2 and 2; unbiased variances 1 and 12.
        assert!((stat("inorm.running_mean") - 1.0).abs() < 1e-12);
        assert!((stat("inorm.running_var") - (0.5 + 0.5 * 6.5)).abs() < 1e-12);
        let y = net.forward(&[x], false).unwrap().remove(0);
        let y = y.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert!(
            (y[0] - (1.0 - 1.0) / (3.75f64 + 1e-5).sqrt()).abs() < 1e-12
                && (y[5] - 5.0 / (3.75f64 + 1e-5).sqrt()).abs() < 1e-12
        );
    }
}
