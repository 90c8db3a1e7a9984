//! StyleGAN2's `ModulatedConv2d(x, style, out_channels, kernel_size, demodulate=true)`
//! (Karras et al. 2020, section 2.2), as rosinality's stylegan2-pytorch computes it unfused:
//! the style `w [N, w_dim]` goes through `modulation` (an EqualLinear to `in` scales, bias 1);
//! the input is multiplied by those scales, convolved with the shared weight (equalized
//! learning rate, "same" padding), and each sample's output channel is divided by the norm
//! its modulated weight would have had (demodulation). Upsampling is a separate `Upsample`.
//!
//! Keys: `weight [1, out, in, k, k]`, `modulation.weight [in, w_dim]`, `modulation.bias [in]`.

use super::signature::{attr, inferred, AttrType, Default, Inputs};
use super::Init;
use super::{expect_dim, expect_float, expect_rank, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::{conv::conv, conv::ConvGeometry, linear::linear, pad::PadMode};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};
#[cfg(feature = "lower")]
use candle_core::Tensor;

pub static MODULATED_CONV2D: OpDef = OpDef {
    name: "ModulatedConv2d",
    signature: Signature {
        inputs: Inputs::Fixed(&["x", "style"]),
        attrs: &[
            inferred("in_channel", 0, 1),
            attr("out_channels", AttrType::Int, Default::Required),
            attr("kernel_size", AttrType::Int, Default::Required),
            inferred("style_dim", 1, -1),
            attr("demodulate", AttrType::Bool, Default::Bool(true)),
        ],
    },
    build: |a: &Attrs| {
        let kernel = a.int_at_least("kernel_size", 1)?;
        if kernel % 2 == 0 {
            return Err(OpError::new(format!(
                "the kernel is padded by k / 2 on each side to keep the size: it must be odd, found {kernel}"
            ))
            .attr("kernel_size"));
        }
        Ok(Box::new(ModulatedConv2d {
            out_channels: a.dim_at_least("out_channels", 1)?,
            kernel,
            demodulate: a.bool("demodulate")?,
        }))
    },
};

/// Demodulation's `rsqrt(sum w^2 + eps)`: StyleGAN2's epsilon.
#[cfg(feature = "lower")]
const DEMODULATION_EPS: f64 = 1e-8;

#[derive(Debug)]
pub struct ModulatedConv2d {
    pub out_channels: Dim,
    pub kernel: i64,
    pub demodulate: bool,
}

impl ModulatedConv2d {
    /// `(in_channels, w_dim)` of accepted inputs.
    fn widths(inputs: &[TensorType]) -> (Dim, Dim) {
        let at = |i: usize, axis: usize| {
            inputs.get(i).and_then(|t| t.shape.get(axis)).cloned().unwrap_or_default()
        };
        (at(0, 1), at(1, 1))
    }
}

impl Op for ModulatedConv2d {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[4], "[N, C, H, W]")?;
        expect_rank(inputs, 1, &[2], "the style, [N, w_dim]")?;
        expect_float(inputs, 0, "ModulatedConv2d")?;
        expect_float(inputs, 1, "ModulatedConv2d")?;
        let (x, style) = (&inputs[0], &inputs[1]);
        expect_dim(&style.shape[0], &x.shape[0], "the style's batch size (one style per image)", 1)?;
        let shape =
            vec![x.shape[0].clone(), self.out_channels.clone(), x.shape[2].clone(), x.shape[3].clone()];
        Ok(vec![x.with_shape(shape)])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let (in_channels, w_dim) = Self::widths(inputs);
        let k = Dim::konst(self.kernel);
        let shape = vec![Dim::konst(1), self.out_channels.clone(), in_channels.clone(), k.clone(), k];
        vec![
            ParamDecl::weight("weight", shape, Init::Normal { mean: 0.0, std: 1.0 }),
            ParamDecl::weight(
                "modulation.weight",
                vec![in_channels.clone(), w_dim],
                Init::Normal { mean: 0.0, std: 1.0 },
            ),
            // Every scale starts at 1: the layer starts as a plain convolution.
            ParamDecl::weight("modulation.bias", vec![in_channels], Init::Full(1.0)),
        ]
    }

    /// The convolution (`in * k * k` per output element), the modulation (`w_dim` per scale)
    /// and, when demodulating, the per-sample norms (`in` per output channel).
    fn cost(&self, inputs: &[TensorType], outputs: &[TensorType]) -> Cost {
        let Some(out) = outputs.first() else { return Cost::Uncounted };
        let (in_channels, w_dim) = Self::widths(inputs);
        let batch = out.shape[0].clone();
        let conv = out.numel().mul(&in_channels).mul(&Dim::konst(self.kernel * self.kernel));
        let modulation = batch.mul(&in_channels).mul(&w_dim);
        let demodulation = match self.demodulate {
            true => batch.mul(&self.out_channels).mul(&in_channels),
            false => Dim::zero(),
        };
        Cost::Macs(conv.add(&modulation).add(&demodulation))
    }

    fn cost_note(&self) -> Option<&'static str> {
        Some("ModulatedConv2d: the convolution, the style's modulation and the demodulation norms")
    }
}

#[cfg(feature = "lower")]
impl Lower for ModulatedConv2d {
    /// A composition on differentiable tensor ops (the convolution is the one Conv2d runs), so
    /// its first and second order gradients are theirs.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let [_, in_channels, ..] = ctx.input_dims(0)?[..] else {
            return Err(ctx.error("expected [N, C, H, W]"));
        };
        let w_dim = ctx.input_dims(1)?.get(1).copied().unwrap_or(1);
        let k = self.kernel as usize;
        let gain = 1.0 / ((in_channels * k * k) as f64).sqrt();
        let modulation_gain = 1.0 / (w_dim as f64).sqrt();
        let weight = ctx.weight("weight")?;
        let (mod_weight, mod_bias) = (ctx.weight("modulation.weight")?, ctx.weight("modulation.bias")?);
        let demodulate = self.demodulate;
        let geometry = ConvGeometry {
            kernel: vec![k, k],
            stride: vec![1, 1],
            padding: vec![(k / 2, k / 2); 2],
            dilation: vec![1, 1],
            groups: 1,
            mode: PadMode::Zeros,
            output: ctx.output_dims(0)?[2..].to_vec(),
        };
        Ok(Box::new(move |xs: &[Tensor], ctx: &mut ForwardCtx| {
            let [x, style] = xs else {
                candle_core::bail!("ModulatedConv2d takes 2 inputs, found {}", xs.len())
            };
            let n = x.dim(0)?;
            let scales = linear(style, &mod_weight.affine(modulation_gain, 0.0)?, Some(&mod_bias))?;
            let weight = weight.squeeze(0)?.affine(gain, 0.0)?;
            let modulated = x.broadcast_mul(&scales.reshape((n, in_channels, 1, 1))?)?;
            let y = conv(&modulated, &weight, None, &geometry, ctx.train)?;
            if !demodulate {
                return Ok(vec![y]);
            }
            // sum over (in, k, k) of (w[o, i] s[n, i])^2 = sum_i s[n, i]^2 sum_kk w[o, i]^2.
            let energy = weight.sqr()?.sum((2, 3))?;
            let norms = scales.sqr()?.matmul(&energy.t()?)?;
            let inverse = (norms + DEMODULATION_EPS)?.sqrt()?.recip()?;
            let out = inverse.dim(1)?;
            Ok(vec![y.broadcast_mul(&inverse.reshape((n, out, 1, 1))?)?])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn keys_shapes_inits_and_macs() {
        let op = build(&MODULATED_CONV2D, &[("out_channels", int(8)), ("kernel_size", int(3))]).unwrap();
        let x = [f32(&[2, 5, 4, 6]), f32(&[2, 7])];
        assert_eq!(out_shape(&*op, &x), vec![2, 8, 4, 6]);
        let params = op.params(&x);
        let keys: Vec<&str> = params.iter().map(|p| p.name.as_ref()).collect();
        assert_eq!(keys, ["weight", "modulation.weight", "modulation.bias"]);
        assert_eq!(params[2].init, Init::Full(1.0));
        assert_eq!(count(&*op, &x, ParamKind::Weight), 8 * 5 * 9 + 5 * 7 + 5);
        assert_eq!(macs(&*op, &x), 2 * 8 * 4 * 6 * 5 * 9 + 2 * 5 * 7 + 2 * 8 * 5);
        let plain = build(
            &MODULATED_CONV2D,
            &[("out_channels", int(1)), ("kernel_size", int(1)), ("demodulate", AttrValue::Bool(false))],
        )
        .unwrap();
        assert_eq!(macs(&*plain, &x), 2 * 4 * 6 * 5 + 2 * 5 * 7);
    }

    #[test]
    fn refuses_an_even_kernel_a_style_per_other_batch_and_ids() {
        let e = err(build(&MODULATED_CONV2D, &[("out_channels", int(8)), ("kernel_size", int(4))]));
        assert_eq!(e.attr, Some("kernel_size"));
        assert!(e.message.contains("must be odd, found 4"), "{}", e.message);
        let op = build(&MODULATED_CONV2D, &[("out_channels", int(8)), ("kernel_size", int(3))]).unwrap();
        let e = err(op.infer(&[f32(&[2, 5, 4, 6]), f32(&[3, 7])]));
        assert_eq!(e.input, Some(1));
        assert!(e.message.contains("one style per image): expected 2, found 3"), "{}", e.message);
        assert_eq!(err(op.infer(&[f32(&[2, 5, 4, 6]), f32(&[2, 7, 1])])).input, Some(1));
        let ids = TensorType::new(DType::I64, vec![2.into(), 7.into()]);
        assert!(err(op.infer(&[f32(&[2, 5, 4, 6]), ids])).message.contains("dtype i64"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_with_and_without_demodulation() {
        let spec = "model M { input x: [2, 3, 5, 4]\n input w: [2, 6]\n \
                    output y = x |> m: ModulatedConv2d(w, 4, 3)\n \
                    output z = x |> rgb: ModulatedConv2d(w, 2, 1, demodulate=false) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
    /// The StyleGAN ops against rosinality's stylegan2-pytorch modules (its fused grouped
    /// convolution for ModulatedConv2d, its Discriminator's minibatch statistic), run by a
    /// throwaway script on the same `sin` fills in f64: a probe-weighted sum of each output
    /// and one element, as PyTorch 2.15 printed them.
    #[cfg(feature = "lower")]
    #[test]
    fn forward_matches_rosinality_stylegan2_pytorch() {
        use crate::lower::gradcheck::wave;
        use candle_core::{DType, Device, Tensor};
        let spec = "model M { input a: [2, 3, 7, 5]\n input x: [2, 3, 5, 4]\n input w: [2, 6]\n \
                    input b: [6, 2, 3, 5]\n output e = a |> c: EqualConv2d(4, 3, stride=2, padding=1)\n \
                    output m = x |> m: ModulatedConv2d(w, 4, 3)\n \
                    output r = x |> rgb: ModulatedConv2d(w, 2, 1, demodulate=false)\n \
                    output s = b |> MinibatchStd(3) }";
        let model = crate::Model::from_source("x.wick", spec, &crate::Options::default()).unwrap();
        let lowered = model.build(&Device::Cpu, DType::F64).unwrap();
        let fills: [(&str, &[usize], f64, f64); 8] = [
            ("c.weight", &[4, 3, 3, 3], 0.37, 0.1),
            ("c.bias", &[4], 0.5, 0.2),
            ("m.weight", &[1, 4, 3, 3, 3], 0.29, 0.6),
            ("m.modulation.weight", &[3, 6], 0.41, 0.7),
            ("rgb.weight", &[1, 2, 3, 1, 1], 0.29, 0.6),
            ("rgb.modulation.weight", &[3, 6], 0.41, 0.7),
            ("m.modulation.bias", &[3], 0.9, 0.8),
            ("rgb.modulation.bias", &[3], 0.9, 0.8),
        ];
        for (key, shape, step, phase) in fills {
            let mut value = wave(shape, step, phase).as_tensor().clone();
            if key.ends_with("modulation.bias") {
                value = value.affine(0.1, 1.0).unwrap();
            }
            lowered.params().get(key).unwrap().set(&value).unwrap();
        }
        let inputs = [
            wave(&[2, 3, 7, 5], 0.11, 0.3),
            wave(&[2, 3, 5, 4], 0.13, 0.2),
            wave(&[2, 6], 0.7, 0.5),
            wave(&[6, 2, 3, 5], 0.17, 0.9),
        ];
        let outputs = lowered.forward(&inputs.map(|v| v.as_tensor().clone()), false).unwrap();
        let probe_sum = |t: &Tensor| {
            let probe = wave(t.dims(), 0.23, 0.4);
            (t * probe.as_tensor()).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
        };
        let at = |t: &Tensor, i: [usize; 4]| {
            (0..4)
                .fold(t.clone(), |t, axis| t.narrow(axis, i[axis], 1).unwrap())
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()[0]
        };
        let expected = [
            (19.418477792752764, [1, 2, 1, 0], 0.588561650769881),
            (85.86345750485032, [1, 3, 4, 2], -0.8428106452931721),
            (-1.7321216706243865, [0, 1, 2, 3], 0.9010449905159028),
            (-1.19504339229311, [1, 2, 0, 0], 0.7151757456159932),
        ];
        for (out, (sum, index, value)) in outputs.iter().zip(expected) {
            assert!((probe_sum(out) - sum).abs() < 1e-10, "{} vs {sum}", probe_sum(out));
            assert!((at(out, index) - value).abs() < 1e-12, "{} vs {value}", at(out, index));
        }
    }
}
