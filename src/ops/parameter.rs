//! `Parameter(shape, init=...)`: a bare learnable tensor, as a module's `nn.Parameter`, held at
//! the layer's own path: `layer_scale: Parameter([c, 1, 1], init=1e-6)` is ConvNeXt's
//! `layer_scale`, not `layer_scale.weight`. It takes no input; its output is the tensor itself,
//! which the caller broadcasts (`x * reshape(layer_scale, [1, c, 1, 1])`).

use super::signature::{attr, AttrType, Default, Inputs};
use super::Init;
use super::{AttrValue, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{DType, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

const INITS: &[&str] = &["zeros", "ones", "normal", "trunc_normal"];

pub static PARAMETER: OpDef = OpDef {
    name: "Parameter",
    signature: Signature {
        inputs: Inputs::Fixed(&[]),
        attrs: &[
            attr("shape", AttrType::IntList, Default::Required),
            // A number fills the tensor with it (`torch.full`).
            attr("init", AttrType::FloatOrChoice(INITS), Default::Str("zeros")),
            attr("mean", AttrType::Float, Default::Float(0.0)),
            attr("std", AttrType::Float, Default::Float(1.0)),
            // `trunc_normal`'s bounds, absolute as `nn.init.trunc_normal_`'s `a` and `b`.
            attr("a", AttrType::Float, Default::Float(-2.0)),
            attr("b", AttrType::Float, Default::Float(2.0)),
        ],
    },
    build: |a: &Attrs| {
        let shape = a.dims("shape")?;
        if let Some(d) = shape.iter().find(|d| d.as_const().is_some_and(|v| v < 1)) {
            return Err(OpError::new(format!("`shape` sizes must be at least 1, found {d}")).attr("shape"));
        }
        Ok(Box::new(Parameter { shape, init: init_attr(a)? }))
    },
};

/// The `init` attribute with the `mean`, `std`, `a` and `b` it reads, checked.
fn init_attr(a: &Attrs) -> Result<Init, OpError> {
    let name = match a.get("init") {
        AttrValue::Str(s) => s.as_str(),
        _ => {
            let v = a.float("init")?;
            if !v.is_finite() {
                return Err(OpError::new(format!("`init` must be a finite number, found {v}")).attr("init"));
            }
            return Ok(Init::Full(v));
        }
    };
    let (mean, std) = (a.float("mean")?, a.float("std")?);
    let finite = |name: &'static str, v: f64| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(OpError::new(format!("`{name}` must be a finite number, found {v}")).attr(name))
        }
    };
    if !std.is_finite() || std < 0.0 {
        return Err(OpError::new(format!("`std` must be a finite number >= 0, found {std}")).attr("std"));
    }
    finite("mean", mean)?;
    match name {
        "zeros" => Ok(Init::Zeros),
        "ones" => Ok(Init::Ones),
        "normal" => Ok(Init::Normal { mean, std }),
        "trunc_normal" => {
            let (low, high) = (finite("a", a.float("a")?)?, finite("b", a.float("b")?)?);
            // Redrawing is bounded only if the interval holds a fair share of the mass: around
            // the mean and 0.2 std wide holds at least ~8% of it.
            if !(low < mean && mean < high && high - low >= 0.2 * std) {
                return Err(OpError::new(format!(
                    "`trunc_normal` needs a < mean < b and b - a >= 0.2 * std, found a {low}, b {high}, \
                     mean {mean}, std {std}"
                ))
                .attr("a"));
            }
            Ok(Init::TruncNormal { mean, std, low, high })
        }
        other => Err(OpError::new(format!(
            "`init` must be a number or one of {}, found \"{other}\"",
            INITS.join(", ")
        ))
        .attr("init")),
    }
}

#[derive(Debug)]
pub struct Parameter {
    pub shape: Vec<Dim>,
    pub init: Init,
}

impl Op for Parameter {
    /// The model's float type, as every parameter.
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        if !inputs.is_empty() {
            return Err(OpError::new(format!("Parameter takes no input, found {}", inputs.len())));
        }
        Ok(vec![TensorType::new(DType::F32, self.shape.clone())])
    }

    /// Named with the empty name, so its key is the layer's path.
    fn params(&self, _: &[TensorType]) -> Vec<ParamDecl> {
        vec![ParamDecl::weight("", self.shape.clone(), self.init.clone())]
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Parameter {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let value = ctx.weight("")?;
        Ok(Box::new(move |_: &[candle_core::Tensor], _: &mut ForwardCtx| Ok(vec![value.clone()])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, ints, out_shape};
    use crate::ops::ParamKind;

    fn compile(body: &str) -> crate::Compiled {
        let spec = format!("dim N = 2\nmodel M {{\n{body}\n}}\n");
        crate::compile_source("m.wick", &spec, &crate::Options::default())
    }

    #[test]
    fn a_tensor_of_the_given_shape_and_init() {
        let op = build(&PARAMETER, &[("shape", ints(&[5, 1, 1])), ("init", AttrValue::Float(1e-6))]).unwrap();
        assert_eq!(out_shape(&*op, &[]), vec![5, 1, 1]);
        assert_eq!(count(&*op, &[], ParamKind::Weight), 5);
        let p = op.params(&[]);
        assert_eq!((p[0].name.as_ref(), p[0].init.clone()), ("", Init::Full(1e-6)));
        let trunc = [
            ("shape", ints(&[3])),
            ("init", AttrValue::Str("trunc_normal".into())),
            ("std", AttrValue::Float(0.02)),
        ];
        let op = build(&PARAMETER, &trunc).unwrap();
        let init = Init::TruncNormal { mean: 0.0, std: 0.02, low: -2.0, high: 2.0 };
        assert_eq!(op.params(&[])[0].init, init);
    }

    #[test]
    fn refuses_empty_sizes_and_intervals_it_cannot_draw_from() {
        assert_eq!(err(build(&PARAMETER, &[("shape", ints(&[3, 0]))])).attr, Some("shape"));
        let sliver = [
            ("shape", ints(&[3])),
            ("init", AttrValue::Str("trunc_normal".into())),
            ("a", AttrValue::Float(5.0)),
            ("b", AttrValue::Float(6.0)),
        ];
        assert!(err(build(&PARAMETER, &sliver)).message.contains("a < mean < b"));
        let e = err(build(&PARAMETER, &[("shape", ints(&[3])), ("init", AttrValue::Float(f64::NAN))]));
        assert_eq!(e.attr, Some("init"));
        let e = err(build(&PARAMETER, &[("shape", ints(&[3])), ("std", AttrValue::Float(-1.0))]));
        assert_eq!(e.attr, Some("std"));
    }

    #[test]
    fn the_key_is_the_layers_own_path() {
        let c = compile(
            " input x: [N, 4, 3, 3]\n s = layer_scale: Parameter([4, 1, 1], init=1e-6)\n \
             output y = x * reshape(s, [1, 4, 1, 1])",
        );
        assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics);
        let params = c.graph.expect("graph").parameters();
        assert_eq!(params.len(), 1);
        assert_eq!(
            (params[0].0.as_str(), params[0].1.clone()),
            ("layer_scale", vec![4.into(), 1.into(), 1.into()])
        );
    }

    #[test]
    fn a_path_cannot_be_both_a_tensor_and_a_prefix() {
        // `b` holds a tensor, and the block at `b` would put `b.w` under it.
        let spec = "dim N = 2\nblock B(x: [N, c]) { w = w: Parameter([c])\n return x * reshape(w, [1, c]) }\n\
                    model M {\n input x: [N, 3]\n p = b: Parameter([1, 3])\n output y = x |> b: B\n output z = p\n}\n";
        let c = crate::compile_source("m.wick", spec, &crate::Options::default());
        let text = format!("{:?}", c.diagnostics);
        assert!(c.diagnostics.has_errors() && text.contains("`b`"), "{text}");
        // An unknown init is refused at the argument, naming the choices.
        let c = compile(" output p = Parameter([2], init=\"uniform\")");
        let text = format!("{:?}", c.diagnostics);
        assert!(text.contains("trunc_normal"), "{text}");
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_and_the_draws() {
        use candle_core::{DType, Device};
        let spec = "model M { input x: [2, 3, 5]\n s = ls: Parameter([3, 1], init=0.5)\n \
                    output y = x * reshape(s, [1, 3, 1])\n output p = pos: Parameter([1, 3, 5], init=\"normal\", std=0.02) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
        let spec =
            "model M { output t = t: Parameter([4000], init=\"trunc_normal\", std=1.0, a=-0.5, b=1.5) }";
        let model = crate::Model::from_source("p.wick", spec, &crate::Options::default()).unwrap();
        let lowered = model.build(&Device::Cpu, DType::F64).unwrap();
        let t = lowered.forward(&[], false).unwrap().remove(0).to_vec1::<f64>().unwrap();
        assert!(t.iter().all(|v| (-0.5..=1.5).contains(v)));
        // Both ends are reached, and the mean is that of N(0, 1) cut to [-0.5, 1.5]: 0.3563.
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        assert!((mean - 0.3563).abs() < 0.03, "{mean}");
        assert!(t.iter().any(|v| *v < -0.45) && t.iter().any(|v| *v > 1.45));
    }
}
