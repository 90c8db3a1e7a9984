//! `LayerNorm2d`: layer norm over the channel axis of `[N, C, ...]`, as torchvision's
//! ConvNeXt (`LayerNorm2d(C, eps=1e-6)`): each position's C values are normalised, scaled
//! by `weight [C]` and shifted by `bias [C]`. `C` is read from the input when left out, as
//! `LayerNorm`'s trailing shape is; given (`LayerNorm2d(96)`, PyTorch's call), it is checked.

use super::signature::{attr, AttrType, Default, Inputs};
use super::Init;
use super::{expect_dim, expect_float, expect_rank, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::norm::layer_norm;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static LAYER_NORM2D: OpDef = OpDef {
    name: "LayerNorm2d",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            // An int, not a list as `LayerNorm`'s: the one axis it normalises is C.
            attr("normalized_shape", AttrType::Int, Default::Optional),
            attr("eps", AttrType::Float, Default::Float(1e-5)),
            attr("elementwise_affine", AttrType::Bool, Default::Bool(true)),
            attr("bias", AttrType::Bool, Default::Bool(true)),
        ],
    },
    build: |a: &Attrs| {
        let eps = a.float("eps")?;
        if !eps.is_finite() || eps <= 0.0 {
            return Err(OpError::new(format!("`eps` must be a finite number > 0, found {eps}")).attr("eps"));
        }
        let channels = if a.is_none("normalized_shape") { None } else { Some(a.dim("normalized_shape")?) };
        let (elementwise_affine, bias) = (a.bool("elementwise_affine")?, a.bool("bias")?);
        Ok(Box::new(LayerNorm2d { channels, eps, elementwise_affine, bias }))
    },
};

#[derive(Debug)]
pub struct LayerNorm2d {
    /// C as the call gave it, to check against the input's.
    pub channels: Option<Dim>,
    pub eps: f64,
    pub elementwise_affine: bool,
    pub bias: bool,
}

impl Op for LayerNorm2d {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[2, 3, 4, 5], "[N, C, ...], normalised over C")?;
        expect_float(inputs, 0, "LayerNorm2d")?;
        if let Some(c) = &self.channels {
            expect_dim(&inputs[0].shape[1], c, "`normalized_shape` (the channels, axis 1)", 0)?;
        }
        Ok(vec![inputs[0].clone()])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let Some(c) = inputs.first().and_then(|x| x.shape.get(1)) else { return Vec::new() };
        let mut p = Vec::new();
        if self.elementwise_affine {
            p.push(ParamDecl::weight("weight", vec![c.clone()], Init::Ones));
            if self.bias {
                p.push(ParamDecl::weight("bias", vec![c.clone()], Init::Zeros));
            }
        }
        p
    }

    /// A reduction and a scale: not counted by the convention, as `LayerNorm`.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for LayerNorm2d {
    /// As torchvision: channels moved last, `LayerNorm` over them, moved back.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let rank = ctx.inputs[0].rank();
        let to_last: Vec<usize> = (0..rank).filter(|a| *a != 1).chain([1]).collect();
        let back: Vec<usize> = (0..rank)
            .map(|a| {
                if a == 0 {
                    0
                } else if a == 1 {
                    rank - 1
                } else {
                    a - 1
                }
            })
            .collect();
        let weight = if self.elementwise_affine { Some(ctx.weight("weight")?) } else { None };
        let bias = if self.elementwise_affine && self.bias { Some(ctx.weight("bias")?) } else { None };
        let eps = self.eps;
        Ok(unary(move |x, _| {
            let y = layer_norm(&x.permute(to_last.as_slice())?, 1, weight.as_ref(), bias.as_ref(), eps)?;
            y.permute(back.as_slice())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn weight_and_bias_over_the_channels() {
        let op = build(&LAYER_NORM2D, &[("eps", AttrValue::Float(1e-6))]).unwrap();
        let x = [f32(&[2, 96, 7, 5])];
        assert_eq!(out_shape(&*op, &x), vec![2, 96, 7, 5]);
        let p = op.params(&x);
        assert_eq!((p[0].name.as_ref(), p[1].name.as_ref()), ("weight", "bias"));
        assert_eq!(p[0].shape, vec![Dim::konst(96)]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 192);
        assert!(err(op.infer(&[f32(&[96])])).message.contains("[N, C, ...]"));
        assert_eq!(err(build(&LAYER_NORM2D, &[("eps", AttrValue::Float(0.0))])).attr, Some("eps"));
    }

    #[test]
    fn pytorchs_channel_count_is_checked_against_the_input() {
        let spec = |call: &str| format!("model M {{ input x: [2, 8, 3, 3]\n output y = x |> norm: {call} }}");
        let ok =
            crate::compile_source("n.wick", &spec("LayerNorm2d(8, eps=1e-6)"), &crate::Options::default());
        assert!(!ok.diagnostics.has_errors(), "{:?}", ok.diagnostics);
        let bad = crate::compile_source("n.wick", &spec("LayerNorm2d(9)"), &crate::Options::default());
        let text = format!("{:?}", bad.diagnostics);
        assert!(text.contains("`normalized_shape` (the channels, axis 1): expected 9, found 8"), "{text}");
    }

    #[cfg(feature = "lower")]
    #[test]
    fn forward_values_as_torchvision() {
        use candle_core::{Device, Tensor};
        // torchvision's LayerNorm2d(3) (`nn.LayerNorm(3)` over `x.permute(0, 2, 3, 1)`, permuted
        // back) on x = (arange(12) ** 2 / 10).reshape(1, 3, 2, 2), at its initial weight and bias.
        let x = Tensor::arange(0.0f64, 12.0, &Device::Cpu).unwrap().sqr().unwrap().affine(0.1, 0.0).unwrap();
        let x = x.reshape((1, 3, 2, 2)).unwrap();
        let spec = "model M { input x: [1, 3, 2, 2]\n output y = x |> n: LayerNorm2d }";
        let y = crate::lower::gradcheck::run_spec(spec, std::slice::from_ref(&x), false).remove(0);
        let y = y.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let want = [
            -0.9805800127389122,
            -1.034224009182503,
            -1.0690446320818896,
            -1.0933268869805788,
            -0.3922320050955649,
            -0.31822277205615473,
            -0.2672611580204723,
            -0.23017408146959548,
            1.372812017834477,
            1.3524467812386578,
            1.3363057901023623,
            1.3235009684501742,
        ];
        assert!(y.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9), "{y:?}");
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_on_odd_maps() {
        // Parameters start at ones and zeros; the check moves them, so their gradients count.
        let spec = "model M { input x: [2, 3, 5, 4]\n input s: [3, 4, 7]\n \
                    output a = x |> ln: LayerNorm2d(eps=1e-6)\n output b = s |> l3: LayerNorm2d(bias=false) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
