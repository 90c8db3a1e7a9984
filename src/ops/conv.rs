//! `Conv1d` and `Conv2d`: one implementation over the number of spatial axes, PyTorch layout.

#[cfg(feature = "lower")]
use super::geometry::Padding;
use super::geometry::{per_group, Window};
use super::signature::{attr, inferred, AttrSpec, AttrType, Default, Inputs};
use super::Init;
use super::{expect_rank, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::fold::producer;
#[cfg(feature = "lower")]
use crate::lower::kernels::conv::{conv, im2col_applies, ConvGeometry};
#[cfg(feature = "lower")]
use crate::lower::kernels::pad::PadMode;
#[cfg(feature = "lower")]
use crate::lower::{Forward, Lower, LowerCtx, LowerError};

// Conv1d and Conv2d inputs are batched only, so channels are axis 1 of either.
const ATTRS: &[AttrSpec] = &[
    inferred("in_channels", 0, 1),
    attr("out_channels", AttrType::Int, Default::Required),
    attr("kernel_size", AttrType::IntOrList, Default::Required),
    attr("stride", AttrType::IntOrList, Default::Int(1)),
    attr("padding", AttrType::IntListOrChoice(&["same", "valid"]), Default::Int(0)),
    attr("dilation", AttrType::IntOrList, Default::Int(1)),
    attr("groups", AttrType::Int, Default::Int(1)),
    attr("bias", AttrType::Bool, Default::Bool(true)),
    attr(
        "padding_mode",
        AttrType::Choice(&["zeros", "reflect", "replicate", "circular"]),
        Default::Str("zeros"),
    ),
];

pub static CONV1D: OpDef = OpDef {
    name: "Conv1d",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: ATTRS },
    build: |a: &Attrs| Ok(Box::new(Conv::from_attrs(a, 1)?)),
};

pub static CONV2D: OpDef = OpDef {
    name: "Conv2d",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: ATTRS },
    build: |a: &Attrs| Ok(Box::new(Conv::from_attrs(a, 2)?)),
};

/// A convolution over `window.kernel.len()` spatial axes.
#[derive(Debug)]
pub struct Conv {
    pub out_channels: Dim,
    pub window: Window,
    pub groups: i64,
    pub bias: bool,
    /// Only changes what fills the padding, never a shape or a count.
    pub padding_mode: String,
}

impl Conv {
    fn from_attrs(a: &Attrs, spatial: usize) -> Result<Conv, OpError> {
        let out_channels = a.dim("out_channels")?;
        if out_channels.as_const().is_some_and(|v| v < 1) {
            return Err(OpError::new(format!("`out_channels` must be at least 1, found {out_channels}"))
                .attr("out_channels"));
        }
        let groups = a.int_at_least("groups", 1)?;
        // Known before any input arrives, so reported at the call.
        per_group(&out_channels, groups, "out_channels")?;
        Ok(Conv {
            out_channels,
            window: Window::from_attrs(a, spatial)?,
            groups,
            bias: a.bool("bias")?,
            padding_mode: a.str("padding_mode").unwrap_or("zeros").to_string(),
        })
    }

    /// `in_channels / groups`: each output channel sees this many input channels.
    fn in_per_group(&self, inputs: &[TensorType]) -> Dim {
        let in_channels = inputs.first().and_then(|x| x.shape.get(1)).cloned().unwrap_or_default();
        per_group(&in_channels, self.groups, "in_channels").unwrap_or_default()
    }
}

impl Op for Conv {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let spatial = self.window.kernel.len();
        let layout = if spatial == 1 { "[N, C, L]" } else { "[N, C, H, W]" };
        expect_rank(inputs, 0, &[spatial + 2], layout)?;
        let x = &inputs[0];
        let [batch, in_channels, sizes @ ..] = x.shape.as_slice() else {
            return Err(OpError::new(format!("expected a {layout} input, found {x}")).input(0));
        };
        per_group(in_channels, self.groups, "in_channels").map_err(|e| e.input(0))?;
        let mut shape = vec![batch.clone(), self.out_channels.clone()];
        shape.extend(self.window.out_sizes(sizes)?);
        Ok(vec![x.with_shape(shape)])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let mut weight_shape = vec![self.out_channels.clone(), self.in_per_group(inputs)];
        weight_shape.extend(self.window.kernel.iter().map(|k| Dim::konst(*k)));
        // kaiming_uniform(a=sqrt(5)) over fan_in = in/groups * prod(kernel); the bias takes
        // the same bound.
        let fan_in = self.in_per_group(inputs).mul(&Dim::konst(self.window.kernel_volume()));
        let mut p = vec![ParamDecl::weight("weight", weight_shape, Init::UniformFan(fan_in.clone()))];
        if self.bias {
            p.push(ParamDecl::weight("bias", vec![self.out_channels.clone()], Init::UniformFan(fan_in)));
        }
        p
    }

    /// Each output element is a dot product over `in/groups * prod(kernel)` inputs; bias excluded.
    fn cost(&self, inputs: &[TensorType], outputs: &[TensorType]) -> Cost {
        let Some(out) = outputs.first() else { return Cost::Uncounted };
        let per_output = self.in_per_group(inputs).mul(&Dim::konst(self.window.kernel_volume()));
        Cost::Macs(out.numel().mul(&per_output))
    }
}

#[cfg(feature = "lower")]
impl Lower for Conv {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let weight = ctx.weight("weight")?;
        let bias = if self.bias { Some(ctx.weight("bias")?) } else { None };
        let geometry = geometry(ctx, &self.window, self.groups, &self.padding_mode)?;
        if geometry.uniform().is_none() && !im2col_applies(ctx.device, ctx.dtype) {
            return Err(ctx.error("different strides or dilations per axis are lowered on the CPU only"));
        }
        // A batch norm after it can be folded into its weights for inference (`lower::fold`).
        Ok(producer(weight, bias, move |x, w, b, train| conv(x, w, b, &geometry, train)))
    }
}

/// The bound geometry of a conv layer; "same" pads as PyTorch does (the odd cell after).
#[cfg(feature = "lower")]
pub(crate) fn geometry(
    ctx: &LowerCtx,
    w: &Window,
    groups: i64,
    mode: &str,
) -> Result<ConvGeometry, LowerError> {
    let to_usize = |v: &[i64]| v.iter().map(|x| *x as usize).collect::<Vec<_>>();
    let (kernel, dilation) = (to_usize(&w.kernel), to_usize(&w.dilation));
    let padding = match &w.padding {
        Padding::Explicit(p) => p.iter().map(|p| (*p as usize, *p as usize)).collect(),
        Padding::Valid => vec![(0, 0); kernel.len()],
        Padding::Same => kernel
            .iter()
            .zip(&dilation)
            .map(|(k, d)| {
                let total = d * (k - 1);
                (total / 2, total - total / 2)
            })
            .collect(),
    };
    let mode = PadMode::parse(mode).ok_or_else(|| ctx.error(format!("unknown padding_mode `{mode}`")))?;
    let output = ctx.output_dims(0)?[2..].to_vec();
    Ok(ConvGeometry {
        kernel,
        stride: to_usize(&w.stride),
        padding,
        dilation,
        groups: groups as usize,
        mode,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::dim::Bindings;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, count, err, f32, int, ints, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn resnet18_stem() {
        let a = [("out_channels", int(64)), ("kernel_size", int(7)), ("stride", int(2)), ("padding", int(3))];
        let op = build(&CONV2D, &[&a[..], &[("bias", AttrValue::Bool(false))]].concat()).unwrap();
        let x = [f32(&[1, 3, 224, 224])];
        assert_eq!(out_shape(&*op, &x), vec![1, 64, 112, 112]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 9_408);
        assert_eq!(macs(&*op, &x), 118_013_952);
    }

    #[test]
    fn grouped_conv1d_with_same_padding_and_bias() {
        let a = [
            ("out_channels", int(8)),
            ("kernel_size", ints(&[5])),
            ("padding", AttrValue::Str("same".into())),
            ("dilation", int(2)),
            ("groups", int(4)),
        ];
        let op = build(&CONV1D, &a).unwrap();
        let x = [f32(&[2, 16, 50])];
        assert_eq!(out_shape(&*op, &x), vec![2, 8, 50]);
        // weight [8, 4, 5] + bias [8]
        assert_eq!(count(&*op, &x, ParamKind::Weight), 168);
        assert_eq!(macs(&*op, &x), 2 * 8 * 50 * 4 * 5);
    }

    #[test]
    fn symbolic_spatial_size() {
        let a = [("out_channels", int(64)), ("kernel_size", int(7)), ("stride", int(2)), ("padding", int(3))];
        let op = build(&CONV2D, &a).unwrap();
        let x = TensorType::new(DType::F32, vec![Dim::sym("N"), 3.into(), Dim::sym("H"), Dim::sym("W")]);
        let out = op.infer(&[x]).unwrap();
        let b: Bindings = [("N".into(), 1), ("H".into(), 224), ("W".into(), 225)].into();
        let bound: Vec<_> = out[0].shape.iter().map(|d| d.eval(&b).unwrap()).collect();
        assert_eq!(bound, vec![1, 64, 112, 113]);
    }

    #[test]
    fn rejects_wrong_rank_and_indivisible_groups() {
        let op =
            build(&CONV2D, &[("out_channels", int(8)), ("kernel_size", int(3)), ("groups", int(2))]).unwrap();
        assert!(err(op.infer(&[f32(&[1, 3, 32])])).message.contains("rank-4"));
        let e = err(op.infer(&[f32(&[1, 3, 32, 32])]));
        assert!(
            e.message.contains("in_channels") && e.message.contains("3 is not divisible by 2"),
            "{}",
            e.message
        );
        let e = err(build(&CONV2D, &[("out_channels", int(6)), ("kernel_size", int(3)), ("groups", int(4))]));
        assert!(e.message.contains("out_channels") && e.message.contains("6 is not divisible by 4"));
    }

    #[cfg(feature = "lower")]
    fn gradcheck(body: &str) {
        let spec = format!("model M {{ input x: [2, 4, 7, 6]\n output y = x |> {body} }}");
        crate::lower::gradcheck::check_spec(&spec, true).unwrap().assert_within(1e-6);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_strided_with_uneven_remainders() {
        // 7 + 2 - 3 = 6 and 6 + 2 - 3 = 5 leave remainders 0 and 1 under stride 2.
        gradcheck("c: Conv2d(3, 3, stride=2, padding=1)");
        // Equal remainders: candle pads itself.
        gradcheck("c: Conv2d(3, [3, 2], stride=2, padding=1)");
        gradcheck("c: Conv2d(5, [3, 2], stride=3, padding=[1, 0], bias=false)");
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_groups_dilation_and_same_padding() {
        gradcheck("c: Conv2d(6, 3, groups=2, dilation=2, padding=2)");
        gradcheck("c: Conv2d(2, 4, padding=\"same\", padding_mode=\"reflect\")");
        gradcheck("c: Conv2d(3, 3, padding=1, padding_mode=\"circular\", bias=false)");
        gradcheck("c: Conv2d(3, 2, padding=1, padding_mode=\"replicate\")");
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_per_axis_stride_and_dilation_and_depthwise() {
        // On the CPU, where im2col takes any geometry per axis.
        gradcheck("c: Conv2d(5, [3, 2], stride=[2, 3], dilation=[1, 2], padding=[1, 0])");
        gradcheck("c: Conv2d(8, 3, stride=2, padding=1, groups=4)");
        gradcheck(
            "c: Conv2d(4, [3, 2], stride=[1, 2], dilation=[2, 1], padding=[2, 1], groups=4, bias=false)",
        );
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_conv1d() {
        let spec =
            "model M { input x: [2, 4, 9]\n output y = x |> c: Conv1d(6, 3, stride=2, padding=1, groups=2) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
