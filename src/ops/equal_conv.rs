//! StyleGAN2's `EqualConv2d(out_channels, kernel_size, stride=1, padding=0, bias=true)`: a
//! Conv2d with the equalized learning rate (Karras et al. 2018), as rosinality's
//! stylegan2-pytorch has it. Same parameters, shapes and MACs as a Conv2d without groups or
//! dilation; only the initialisation and a runtime scale differ.

use super::conv::Conv;
use super::geometry::Window;
use super::signature::{attr, inferred, AttrType, Default, Inputs};
use super::Init;
use super::{Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::conv::conv;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static EQUAL_CONV2D: OpDef = OpDef {
    name: "EqualConv2d",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            inferred("in_channel", 0, 1),
            attr("out_channels", AttrType::Int, Default::Required),
            attr("kernel_size", AttrType::Int, Default::Required),
            attr("stride", AttrType::Int, Default::Int(1)),
            attr("padding", AttrType::Int, Default::Int(0)),
            attr("bias", AttrType::Bool, Default::Bool(true)),
        ],
    },
    build: |a: &Attrs| {
        Ok(Box::new(EqualConv2d(Conv {
            out_channels: a.dim_at_least("out_channels", 1)?,
            window: Window::from_attrs(a, 2)?,
            groups: 1,
            bias: a.bool("bias")?,
            padding_mode: "zeros".into(),
        })))
    },
};

/// The weight is stored as `N(0, 1)` and multiplied by `1 / sqrt(in * k * k)` at every forward
/// pass; the bias starts at zero and is used as stored.
#[derive(Debug)]
pub struct EqualConv2d(pub Conv);

impl Op for EqualConv2d {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        self.0.infer(inputs)
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        self.0
            .params(inputs)
            .into_iter()
            .map(|mut p| {
                p.init = if p.name == "weight" { Init::Normal { mean: 0.0, std: 1.0 } } else { Init::Zeros };
                p
            })
            .collect()
    }

    /// As a Conv2d: one MAC per output element per `in * k * k`; the scale is not counted.
    fn cost(&self, inputs: &[TensorType], outputs: &[TensorType]) -> Cost {
        self.0.cost(inputs, outputs)
    }
}

#[cfg(feature = "lower")]
impl Lower for EqualConv2d {
    /// The gain multiplies the stored weight at every pass, so its gradient reaches the stored
    /// tensor scaled by the gain, as in StyleGAN2.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let in_channels = ctx.input_dims(0)?.get(1).copied().unwrap_or(1);
        let gain = 1.0 / ((in_channels as i64 * self.0.window.kernel_volume()) as f64).sqrt();
        let weight = ctx.weight("weight")?;
        let bias = if self.0.bias { Some(ctx.weight("bias")?) } else { None };
        let geometry = super::conv::geometry(ctx, &self.0.window, 1, "zeros")?;
        Ok(unary(move |x, ctx| conv(x, &weight.affine(gain, 0.0)?, bias.as_ref(), &geometry, ctx.train)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn counts_as_a_conv2d_with_its_own_init() {
        let op =
            build(&EQUAL_CONV2D, &[("out_channels", int(32)), ("kernel_size", int(3)), ("padding", int(1))])
                .unwrap();
        let x = [f32(&[2, 16, 8, 6])];
        assert_eq!(out_shape(&*op, &x), vec![2, 32, 8, 6]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 32 * 16 * 9 + 32);
        assert_eq!(macs(&*op, &x), 2 * 32 * 8 * 6 * 16 * 9);
        let params = op.params(&x);
        assert_eq!(params[0].init, Init::Normal { mean: 0.0, std: 1.0 });
        assert_eq!(params[1].init, Init::Zeros);
        let op =
            build(&EQUAL_CONV2D, &[("out_channels", int(4)), ("kernel_size", int(3)), ("stride", int(2))])
                .unwrap();
        assert_eq!(out_shape(&*op, &x), vec![2, 4, 3, 2]);
        let op = build(
            &EQUAL_CONV2D,
            &[("out_channels", int(4)), ("kernel_size", int(1)), ("bias", AttrValue::Bool(false))],
        )
        .unwrap();
        assert_eq!(count(&*op, &x, ParamKind::Weight), 4 * 16);
    }

    #[test]
    fn refuses_a_bad_width_kernel_or_input() {
        assert_eq!(
            err(build(&EQUAL_CONV2D, &[("out_channels", int(0)), ("kernel_size", int(3))])).attr,
            Some("out_channels")
        );
        assert_eq!(
            err(build(&EQUAL_CONV2D, &[("out_channels", int(2)), ("kernel_size", int(0))])).attr,
            Some("kernel_size")
        );
        let op = build(&EQUAL_CONV2D, &[("out_channels", int(2)), ("kernel_size", int(5))]).unwrap();
        assert!(err(op.infer(&[f32(&[1, 3, 8])])).message.contains("rank-4"));
        assert!(
            err(op.infer(&[f32(&[1, 3, 4, 8])])).message.contains("kernel"),
            "a 5x5 kernel on a 4-row input"
        );
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_with_the_runtime_gain() {
        let spec = "model M { input x: [2, 3, 7, 5]\n \
                    output y = x |> c: EqualConv2d(4, 3, stride=2, padding=1)\n \
                    output z = x |> d: EqualConv2d(2, 1, bias=false) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
