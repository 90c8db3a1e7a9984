//! Elementwise activations and (log-)softmax: one enum, shape-preserving, float-only.

use super::signature::{attr, AttrSpec, AttrType, Default, Inputs};
use super::{expect_axis, expect_float, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::{activation as k, softmax};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gelu {
    None,
    Tanh,
}

/// The attributes are kept for the lowering; none of them changes a shape or a count.
#[derive(Clone, Debug, PartialEq)]
pub enum Activation {
    ReLU,
    ReLU6,
    LeakyReLU {
        negative_slope: f64,
    },
    ELU {
        alpha: f64,
    },
    GELU {
        approximate: Gelu,
    },
    SiLU,
    Sigmoid,
    Tanh,
    /// `e^x`: a VAE's `std = exp(0.5 * logvar)`.
    Exp,
    Hardtanh {
        min_val: f64,
        max_val: f64,
    },
    /// `x * relu6(x + 3) / 6`: MobileNetV3's.
    Hardswish,
    /// `relu6(x + 3) / 6`: MobileNetV3's squeeze-excite gate.
    Hardsigmoid,
    Softplus {
        beta: f64,
        threshold: f64,
    },
    Softmax {
        dim: i64,
    },
    LogSoftmax {
        dim: i64,
    },
}

const X: Inputs = Inputs::Fixed(&["x"]);
/// Accepted where PyTorch has it; in-place-ness is the lowering's business.
const INPLACE: AttrSpec = attr("inplace", AttrType::Bool, Default::Bool(false));
/// PyTorch warns when `dim` is left out and then guesses from the rank; here it means the last axis.
const DIM: AttrSpec = attr("dim", AttrType::Int, Default::Int(-1));

const fn sig(attrs: &'static [AttrSpec]) -> Signature {
    Signature { inputs: X, attrs }
}

pub static RELU: OpDef =
    OpDef { name: "ReLU", signature: sig(&[INPLACE]), build: |_| Ok(Box::new(Activation::ReLU)) };

pub static RELU6: OpDef =
    OpDef { name: "ReLU6", signature: sig(&[INPLACE]), build: |_| Ok(Box::new(Activation::ReLU6)) };

pub static LEAKY_RELU: OpDef = OpDef {
    name: "LeakyReLU",
    signature: sig(&[attr("negative_slope", AttrType::Float, Default::Float(0.01)), INPLACE]),
    build: |a: &Attrs| Ok(Box::new(Activation::LeakyReLU { negative_slope: a.float("negative_slope")? })),
};

pub static ELU: OpDef = OpDef {
    name: "ELU",
    signature: sig(&[attr("alpha", AttrType::Float, Default::Float(1.0)), INPLACE]),
    build: |a: &Attrs| Ok(Box::new(Activation::ELU { alpha: a.float("alpha")? })),
};

pub static GELU: OpDef = OpDef {
    name: "GELU",
    signature: sig(&[attr("approximate", AttrType::Choice(&["none", "tanh"]), Default::Str("none"))]),
    build: |a: &Attrs| {
        let approximate = match a.str("approximate") {
            Some("none") | None => Gelu::None,
            Some("tanh") => Gelu::Tanh,
            Some(other) => {
                return Err(OpError::new(format!(
                    "`approximate` must be \"none\" or \"tanh\", found \"{other}\""
                ))
                .attr("approximate"))
            }
        };
        Ok(Box::new(Activation::GELU { approximate }))
    },
};

pub static SILU: OpDef =
    OpDef { name: "SiLU", signature: sig(&[INPLACE]), build: |_| Ok(Box::new(Activation::SiLU)) };

pub static SIGMOID: OpDef =
    OpDef { name: "Sigmoid", signature: sig(&[]), build: |_| Ok(Box::new(Activation::Sigmoid)) };

pub static TANH: OpDef =
    OpDef { name: "Tanh", signature: sig(&[]), build: |_| Ok(Box::new(Activation::Tanh)) };

pub static EXP: OpDef = OpDef { name: "Exp", signature: sig(&[]), build: |_| Ok(Box::new(Activation::Exp)) };

pub static HARDTANH: OpDef = OpDef {
    name: "Hardtanh",
    signature: sig(&[
        attr("min_val", AttrType::Float, Default::Float(-1.0)),
        attr("max_val", AttrType::Float, Default::Float(1.0)),
        INPLACE,
    ]),
    build: |a: &Attrs| {
        let (min_val, max_val) = (a.float("min_val")?, a.float("max_val")?);
        // Written so that NaN is refused too.
        if min_val.partial_cmp(&max_val) != Some(std::cmp::Ordering::Less) {
            return Err(OpError::new(format!(
                "`min_val` must be below `max_val`, found min_val {min_val} and max_val {max_val}"
            ))
            .attr("max_val"));
        }
        Ok(Box::new(Activation::Hardtanh { min_val, max_val }))
    },
};

pub static HARDSWISH: OpDef =
    OpDef { name: "Hardswish", signature: sig(&[INPLACE]), build: |_| Ok(Box::new(Activation::Hardswish)) };

pub static HARDSIGMOID: OpDef = OpDef {
    name: "Hardsigmoid",
    signature: sig(&[INPLACE]),
    build: |_| Ok(Box::new(Activation::Hardsigmoid)),
};

pub static SOFTPLUS: OpDef = OpDef {
    name: "Softplus",
    signature: sig(&[
        attr("beta", AttrType::Float, Default::Float(1.0)),
        attr("threshold", AttrType::Float, Default::Float(20.0)),
    ]),
    build: |a: &Attrs| {
        Ok(Box::new(Activation::Softplus { beta: a.float("beta")?, threshold: a.float("threshold")? }))
    },
};

pub static SOFTMAX: OpDef = OpDef {
    name: "Softmax",
    signature: sig(&[DIM]),
    build: |a: &Attrs| Ok(Box::new(Activation::Softmax { dim: a.int("dim")? })),
};

pub static LOG_SOFTMAX: OpDef = OpDef {
    name: "LogSoftmax",
    signature: sig(&[DIM]),
    build: |a: &Attrs| Ok(Box::new(Activation::LogSoftmax { dim: a.int("dim")? })),
};

impl Activation {
    fn name(&self) -> &'static str {
        match self {
            Activation::ReLU => "ReLU",
            Activation::ReLU6 => "ReLU6",
            Activation::LeakyReLU { .. } => "LeakyReLU",
            Activation::ELU { .. } => "ELU",
            Activation::GELU { .. } => "GELU",
            Activation::SiLU => "SiLU",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::Exp => "Exp",
            Activation::Hardtanh { .. } => "Hardtanh",
            Activation::Hardswish => "Hardswish",
            Activation::Hardsigmoid => "Hardsigmoid",
            Activation::Softplus { .. } => "Softplus",
            Activation::Softmax { .. } => "Softmax",
            Activation::LogSoftmax { .. } => "LogSoftmax",
        }
    }
}

impl Op for Activation {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_float(inputs, 0, self.name())?;
        let x = &inputs[0];
        if let Activation::Softmax { dim } | Activation::LogSoftmax { dim } = self {
            expect_axis(x, *dim, "dim")?;
        }
        Ok(vec![x.clone()])
    }

    /// Transcendentals and comparisons, not multiply-accumulates: not counted by the convention.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Activation {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axis = |dim: i64| {
            ctx.inputs[0].axis(dim).ok_or_else(|| ctx.error(format!("`dim` {dim} is out of range")))
        };
        Ok(match self.clone() {
            Activation::ReLU => unary(|x, _| k::relu(x)),
            Activation::ReLU6 => unary(|x, _| k::hardtanh(x, 0.0, 6.0)),
            Activation::LeakyReLU { negative_slope } => unary(move |x, _| k::leaky_relu(x, negative_slope)),
            Activation::ELU { alpha } => unary(move |x, _| x.elu(alpha)),
            Activation::GELU { approximate: Gelu::None } => unary(|x, _| k::gelu_erf(x)),
            Activation::GELU { approximate: Gelu::Tanh } => unary(|x, _| k::gelu_tanh(x)),
            Activation::SiLU => unary(|x, _| x.silu()),
            Activation::Sigmoid => unary(|x, _| candle_nn::ops::sigmoid(x)),
            Activation::Tanh => unary(|x, _| x.tanh()),
            Activation::Exp => unary(|x, _| x.exp()),
            Activation::Hardtanh { min_val, max_val } => unary(move |x, _| k::hardtanh(x, min_val, max_val)),
            // Through Hardtanh's kernel, so the gradient is PyTorch's: `(2x + 3) / 6` and
            // `1 / 6` strictly inside (-3, 3), flat outside.
            Activation::Hardswish => unary(|x, _| x.mul(&k::hardtanh(&x.affine(1.0 / 6.0, 0.5)?, 0.0, 1.0)?)),
            Activation::Hardsigmoid => unary(|x, _| k::hardtanh(&x.affine(1.0 / 6.0, 0.5)?, 0.0, 1.0)),
            Activation::Softplus { beta, threshold } => unary(move |x, _| k::softplus(x, beta, threshold)),
            Activation::Softmax { dim } => {
                let axis = axis(dim)?;
                unary(move |x, _| softmax::softmax(x, axis))
            }
            Activation::LogSoftmax { dim } => {
                let axis = axis(dim)?;
                unary(move |x, _| softmax::log_softmax(x, axis))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, int, macs, out_shape};
    use crate::ops::AttrValue;

    #[test]
    fn keeps_shape_and_dtype_and_costs_nothing() {
        for def in [
            &RELU,
            &RELU6,
            &LEAKY_RELU,
            &ELU,
            &GELU,
            &SILU,
            &SIGMOID,
            &TANH,
            &EXP,
            &HARDTANH,
            &HARDSWISH,
            &HARDSIGMOID,
            &SOFTPLUS,
        ] {
            let op = build(def, &[]).unwrap();
            assert_eq!(out_shape(&*op, &[f32(&[2, 3, 5])]), vec![2, 3, 5], "{}", def.name);
            assert_eq!(macs(&*op, &[f32(&[2, 3, 5])]), 0);
        }
        let half = TensorType::new(DType::BF16, vec![Dim::sym("N"), 10.into()]);
        let op = build(&GELU, &[("approximate", AttrValue::Str("tanh".into()))]).unwrap();
        assert_eq!(op.infer(std::slice::from_ref(&half)).unwrap()[0], half);
    }

    #[test]
    fn rejects_integer_inputs_naming_the_dtype() {
        let op = build(&RELU, &[]).unwrap();
        let ids = TensorType::new(DType::I64, vec![1.into(), 128.into()]);
        let e = err(op.infer(&[ids]));
        assert!(
            e.message.contains("ReLU expects a float tensor") && e.message.contains("found dtype i64"),
            "{}",
            e.message
        );
    }

    #[test]
    fn softmax_checks_its_axis() {
        let op = build(&SOFTMAX, &[]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[4, 1000])]), vec![4, 1000]);
        let op = build(&LOG_SOFTMAX, &[("dim", int(2))]).unwrap();
        let e = err(op.infer(&[f32(&[4, 1000])]));
        assert!(e.message.contains("`dim` 2 is out of range for a rank-2 input"), "{}", e.message);
    }

    #[test]
    fn hardtanh_needs_min_below_max() {
        let a = [("min_val", AttrValue::Float(2.0)), ("max_val", AttrValue::Float(1.0))];
        assert!(err(build(&HARDTANH, &a)).message.contains("min_val 2 and max_val 1"));
        assert!(build(&ELU, &[("alpha", AttrValue::Float(0.5))]).is_ok());
    }

    #[cfg(feature = "lower")]
    #[test]
    fn hardswish_and_hardsigmoid_as_pytorch() {
        use candle_core::{Device, Tensor};
        let x = Tensor::new(&[-4.0f64, -3.0, -1.5, 0.0, 0.7, 3.0, 5.0], &Device::Cpu).unwrap();
        let run = |call: &str| {
            let spec = format!("model M {{ input x: [7]\n output y = x |> {call} }}");
            crate::lower::gradcheck::run_spec(&spec, std::slice::from_ref(&x), false)[0]
                .to_vec1::<f64>()
                .unwrap()
        };
        // torch.nn.functional.hardswish / hardsigmoid of the same values.
        let swish = [0.0, 0.0, -0.375, 0.0, 0.43166666666666664, 3.0, 5.0];
        let sigmoid = [0.0, 0.0, 0.25, 0.5, 0.6166666666666667, 1.0, 1.0];
        for (got, want) in [(run("Hardswish"), swish), (run("Hardsigmoid"), sigmoid)] {
            assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12), "{got:?}");
        }
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_every_activation() {
        let calls = [
            "ReLU",
            "ReLU6",
            "LeakyReLU(0.2)",
            "ELU(alpha=0.7)",
            "GELU",
            "GELU(approximate=\"tanh\")",
            "SiLU",
            "Sigmoid",
            "Tanh",
            "Exp",
            "Hardtanh(-0.5, 0.8)",
            "scale(4.0) |> Hardswish",
            "scale(4.0) |> Hardsigmoid",
            "Softplus(beta=2.0, threshold=1.5)",
            "Softmax(0)",
            "LogSoftmax",
        ];
        let outputs: Vec<String> =
            calls.iter().enumerate().map(|(i, c)| format!("output y{i} = x |> {c}")).collect();
        // Standard-normal inputs cross Hardtanh's bounds and Softplus's threshold here.
        let spec = format!("model M {{ input x: [3, 7]\n {} }}", outputs.join("\n"));
        crate::lower::gradcheck::check_spec(&spec, true).unwrap().assert_within(1e-6);
    }
}
