//! StyleGAN's `EqualLinear(out_features, bias, lr_mul, bias_init)`: a Linear with the
//! equalized learning rate (Karras et al. 2018). Same parameters, shapes and MACs as `Linear`;
//! only the initialisation and a runtime scale differ.

#[cfg(feature = "lower")]
use super::linear::linear;
use super::linear::Linear;
use super::signature::{attr, inferred, AttrType, Default, Inputs};
use super::Init;
use super::{Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static EQUAL_LINEAR: OpDef = OpDef {
    name: "EqualLinear",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            inferred("in_dim", 0, -1),
            attr("out_features", AttrType::Int, Default::Required),
            attr("bias", AttrType::Bool, Default::Bool(true)),
            // 0.01 in StyleGAN's mapping network: its layers learn 100 times slower.
            attr("lr_mul", AttrType::Float, Default::Float(1.0)),
            attr("bias_init", AttrType::Float, Default::Float(0.0)),
        ],
    },
    build: |a: &Attrs| {
        let lr_mul = a.float("lr_mul")?;
        if lr_mul.is_nan() || lr_mul <= 0.0 {
            return Err(OpError::new(format!("`lr_mul` must be positive, found {lr_mul}")).attr("lr_mul"));
        }
        Ok(Box::new(EqualLinear { linear: Linear::from_attrs(a)?, lr_mul, bias_init: a.float("bias_init")? }))
    },
};

/// The weight is stored as `N(0, 1) / lr_mul` and multiplied by `lr_mul / sqrt(in)` at every
/// forward pass, so every layer's effective learning rate is the same whatever its fan-in.
#[derive(Debug)]
pub struct EqualLinear {
    pub linear: Linear,
    pub lr_mul: f64,
    pub bias_init: f64,
}

impl Op for EqualLinear {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        self.linear.infer(inputs)
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        self.linear
            .params(inputs)
            .into_iter()
            .map(|mut p| {
                // Scaled by lr_mul / sqrt(in) (the weight) and lr_mul (the bias) at every pass.
                p.init = if p.name == "weight" {
                    Init::Normal { mean: 0.0, std: 1.0 / self.lr_mul }
                } else {
                    Init::Full(self.bias_init)
                };
                p
            })
            .collect()
    }

    /// As a Linear: one MAC per output element per input feature; the scales are not counted.
    fn cost(&self, inputs: &[TensorType], outputs: &[TensorType]) -> Cost {
        self.linear.cost(inputs, outputs)
    }
}

#[cfg(feature = "lower")]
impl Lower for EqualLinear {
    /// The gains multiply the stored tensors at every pass, so gradients reach the stored
    /// values (scaled by the gains), as in StyleGAN.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let in_features = ctx.input_dims(0)?.last().copied().unwrap_or(1);
        let lr_mul = self.lr_mul;
        let weight = ctx.weight("weight")?;
        let bias = if self.linear.bias { Some(ctx.weight("bias")?) } else { None };
        let gain = lr_mul / (in_features as f64).sqrt();
        Ok(unary(move |x, _| {
            let b = bias.as_ref().map(|b| b.affine(lr_mul, 0.0)).transpose()?;
            linear(x, &weight.affine(gain, 0.0)?, b.as_ref())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn counts_as_a_linear_with_its_own_init() {
        let op =
            build(&EQUAL_LINEAR, &[("out_features", int(512)), ("lr_mul", AttrValue::Float(0.01))]).unwrap();
        let x = [f32(&[1, 512])];
        assert_eq!(out_shape(&*op, &x), vec![1, 512]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 262_656);
        assert_eq!(macs(&*op, &x), 262_144);
        let params = op.params(&x);
        assert_eq!(params.iter().map(|p| p.name.as_ref()).collect::<Vec<_>>(), ["weight", "bias"]);
        assert_eq!(params[0].init, Init::Normal { mean: 0.0, std: 1.0 / 0.01 }, "N(0, 1) / lr_mul");
        let op = build(&EQUAL_LINEAR, &[("out_features", int(8)), ("bias", AttrValue::Bool(false))]).unwrap();
        assert_eq!(count(&*op, &x, ParamKind::Weight), 8 * 512);
    }

    #[test]
    fn refuses_a_bad_lr_mul_width_or_input() {
        let e = err(build(&EQUAL_LINEAR, &[("out_features", int(8)), ("lr_mul", AttrValue::Float(0.0))]));
        assert_eq!((e.attr, e.message.as_str()), (Some("lr_mul"), "`lr_mul` must be positive, found 0"));
        assert_eq!(err(build(&EQUAL_LINEAR, &[("out_features", int(0))])).attr, Some("out_features"));
        let op = build(&EQUAL_LINEAR, &[("out_features", int(8))]).unwrap();
        assert!(err(op.infer(&[f32(&[])])).message.contains("rank-0"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_with_the_runtime_gains() {
        let spec =
            "model M { input x: [3, 5]\n output y = x |> fc: EqualLinear(4, lr_mul=0.1, bias_init=0.5)\n \
                    output z = x |> nb: EqualLinear(2, bias=false) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
