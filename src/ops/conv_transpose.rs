//! `ConvTranspose2d`: the gradient of `Conv2d` used as a layer (upsampling), PyTorch layout.

use super::geometry::{check_output_padding, per_group, Window};
use super::signature::{attr, inferred, AttrType, Default, Inputs};
use super::Init;
use super::{expect_rank, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::conv::{conv_transpose2d, im2col_applies};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static CONV_TRANSPOSE2D: OpDef = OpDef {
    name: "ConvTranspose2d",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            inferred("in_channels", 0, 1),
            attr("out_channels", AttrType::Int, Default::Required),
            attr("kernel_size", AttrType::IntOrList, Default::Required),
            attr("stride", AttrType::IntOrList, Default::Int(1)),
            attr("padding", AttrType::IntOrList, Default::Int(0)),
            attr("output_padding", AttrType::IntOrList, Default::Int(0)),
            attr("groups", AttrType::Int, Default::Int(1)),
            attr("bias", AttrType::Bool, Default::Bool(true)),
            attr("dilation", AttrType::IntOrList, Default::Int(1)),
        ],
    },
    build: |a: &Attrs| {
        let out_channels = a.dim("out_channels")?;
        if out_channels.as_const().is_some_and(|v| v < 1) {
            return Err(OpError::new(format!("`out_channels` must be at least 1, found {out_channels}"))
                .attr("out_channels"));
        }
        let groups = a.int_at_least("groups", 1)?;
        let out_per_group = per_group(&out_channels, groups, "out_channels")?;
        let window = Window::from_attrs(a, 2)?;
        let output_padding = a.ints("output_padding", 2)?;
        check_output_padding(&window, &output_padding)?;
        Ok(Box::new(ConvTranspose2d {
            out_channels,
            out_per_group,
            window,
            output_padding,
            groups,
            bias: a.bool("bias")?,
        }))
    },
};

#[derive(Debug)]
pub struct ConvTranspose2d {
    pub out_channels: Dim,
    pub out_per_group: Dim,
    pub window: Window,
    /// Extra rows/columns on one side, to pick among the input sizes a strided conv maps alike.
    pub output_padding: Vec<i64>,
    pub groups: i64,
    pub bias: bool,
}

impl Op for ConvTranspose2d {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[4], "[N, C, H, W]")?;
        let x = &inputs[0];
        let [batch, in_channels, sizes @ ..] = x.shape.as_slice() else {
            return Err(OpError::new(format!("expected a [N, C, H, W] input, found {x}")).input(0));
        };
        per_group(in_channels, self.groups, "in_channels").map_err(|e| e.input(0))?;
        let mut shape = vec![batch.clone(), self.out_channels.clone()];
        shape.extend(self.window.transposed_out_sizes(sizes, &self.output_padding)?);
        Ok(vec![x.with_shape(shape)])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let in_channels = inputs.first().and_then(|x| x.shape.get(1)).cloned().unwrap_or_default();
        // Transposed layout: input channels first.
        let mut weight_shape = vec![in_channels, self.out_per_group.clone()];
        weight_shape.extend(self.window.kernel.iter().map(|k| Dim::konst(*k)));
        // PyTorch's fan_in reads the weight's axis 1 (out/groups) times the kernel area.
        let fan_in = self.out_per_group.mul(&Dim::konst(self.window.kernel_volume()));
        let mut p = vec![ParamDecl::weight("weight", weight_shape, Init::UniformFan(fan_in.clone()))];
        if self.bias {
            p.push(ParamDecl::weight("bias", vec![self.out_channels.clone()], Init::UniformFan(fan_in)));
        }
        p
    }

    /// FlopCounterMode's rule: every input element scatters into `out/groups * prod(kernel)`
    /// outputs, so the count is per input position, not per output one.
    fn cost(&self, inputs: &[TensorType], _outputs: &[TensorType]) -> Cost {
        let Some(x) = inputs.first() else { return Cost::Uncounted };
        Cost::Macs(x.numel().mul(&self.out_per_group).mul(&Dim::konst(self.window.kernel_volume())))
    }
}

#[cfg(feature = "lower")]
impl Lower for ConvTranspose2d {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let weight = ctx.weight("weight")?;
        let bias = if self.bias { Some(ctx.weight("bias")?) } else { None };
        let geometry = super::conv::geometry(ctx, &self.window, self.groups, "zeros")?;
        let output_padding: Vec<usize> = self.output_padding.iter().map(|p| *p as usize).collect();
        let square = |v: &[usize]| v.windows(2).all(|w| w[0] == w[1]);
        let pads: Vec<usize> = geometry.padding.iter().map(|p| p.0).collect();
        let uniform = geometry.uniform().is_some() && square(&pads) && square(&output_padding);
        if !uniform && !im2col_applies(ctx.device, ctx.dtype) {
            return Err(ctx.error(
                "per-axis stride, dilation, padding or output_padding that differ are lowered on the CPU only",
            ));
        }
        Ok(unary(move |x, ctx| {
            conv_transpose2d(x, &weight, bias.as_ref(), &geometry, &output_padding, ctx.train)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn dcgan_generator_first_two_layers() {
        let op = build(
            &CONV_TRANSPOSE2D,
            &[("out_channels", int(512)), ("kernel_size", int(4)), ("bias", AttrValue::Bool(false))],
        )
        .unwrap();
        let z = [f32(&[1, 100, 1, 1])];
        assert_eq!(out_shape(&*op, &z), vec![1, 512, 4, 4]);
        assert_eq!(count(&*op, &z, ParamKind::Weight), 819_200);
        assert_eq!(macs(&*op, &z), 819_200);

        let a =
            [("out_channels", int(256)), ("kernel_size", int(4)), ("stride", int(2)), ("padding", int(1))];
        let op = build(&CONV_TRANSPOSE2D, &a).unwrap();
        let x = [f32(&[1, 512, 4, 4])];
        assert_eq!(out_shape(&*op, &x), vec![1, 256, 8, 8]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 512 * 256 * 16 + 256);
        assert_eq!(macs(&*op, &x), 33_554_432);
    }

    #[test]
    fn output_padding_picks_the_even_size() {
        let a = [
            ("out_channels", int(16)),
            ("kernel_size", int(3)),
            ("stride", int(2)),
            ("padding", int(1)),
            ("output_padding", int(1)),
        ];
        let op = build(&CONV_TRANSPOSE2D, &a).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[1, 32, 16, 16])]), vec![1, 16, 32, 32]);
    }

    #[test]
    fn output_padding_must_be_below_stride_or_dilation() {
        let a = [("out_channels", int(16)), ("kernel_size", int(3)), ("output_padding", int(1))];
        let e = err(build(&CONV_TRANSPOSE2D, &a));
        assert_eq!(e.attr, Some("output_padding"));
        assert!(e.message.contains("output_padding 1, stride 1, dilation 1"), "{}", e.message);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_strides_output_padding_and_groups() {
        let spec = "model M { input x: [2, 4, 3, 5]\n \
                    output y = x |> d: ConvTranspose2d(3, 4, stride=2, padding=1, bias=false)\n \
                    output z = x |> e: ConvTranspose2d(6, 3, stride=2, padding=1, output_padding=1, groups=2)\n \
                    output w = x |> f: ConvTranspose2d(2, 3, dilation=2) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_per_axis_geometry_and_depthwise() {
        let spec = "model M { input x: [2, 4, 3, 5]\n \
                    output y = x |> d: ConvTranspose2d(3, [3, 2], stride=[2, 3], padding=[1, 0], output_padding=[1, 2])\n \
                    output z = x |> e: ConvTranspose2d(4, 3, stride=2, dilation=[1, 2], groups=4, bias=false) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
