//! `Linear(out_features, bias=true)`: `y = x W^T + b` over the last axis, PyTorch layout.

use super::signature::{attr, inferred, AttrType, Default, Inputs};
use super::Init;
use super::{Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::fold::producer;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static LINEAR: OpDef = OpDef {
    name: "Linear",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            inferred("in_features", 0, -1),
            attr("out_features", AttrType::Int, Default::Required),
            attr("bias", AttrType::Bool, Default::Bool(true)),
        ],
    },
    build: |a: &Attrs| Ok(Box::new(Linear::from_attrs(a)?)),
};

#[derive(Debug)]
pub struct Linear {
    pub out_features: Dim,
    pub bias: bool,
}

impl Linear {
    /// From `out_features` and `bias` (shared with the layers that count as a Linear).
    pub fn from_attrs(a: &Attrs) -> Result<Linear, OpError> {
        let out_features = a.dim("out_features")?;
        if out_features.as_const().is_some_and(|v| v < 1) {
            return Err(OpError::new(format!("`out_features` must be at least 1, found {out_features}"))
                .attr("out_features"));
        }
        Ok(Linear { out_features, bias: a.bool("bias")? })
    }
}

impl Op for Linear {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        if x.rank() == 0 {
            return Err(OpError::new("expected features on the last axis, found a rank-0 tensor").input(0));
        }
        let mut shape = x.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = self.out_features.clone();
        }
        Ok(vec![x.with_shape(shape)])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let in_features = inputs[0].shape.last().cloned().unwrap_or_default();
        let mut p = vec![ParamDecl::weight(
            "weight",
            vec![self.out_features.clone(), in_features.clone()],
            Init::UniformFan(in_features.clone()),
        )];
        if self.bias {
            p.push(ParamDecl::weight("bias", vec![self.out_features.clone()], Init::UniformFan(in_features)));
        }
        p
    }

    /// One MAC per output element per input feature; bias excluded.
    fn cost(&self, inputs: &[TensorType], outputs: &[TensorType]) -> Cost {
        let in_features = inputs[0].shape.last().cloned().unwrap_or_default();
        Cost::Macs(outputs[0].numel().mul(&in_features))
    }
}

#[cfg(feature = "lower")]
impl Lower for Linear {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let weight = ctx.weight("weight")?;
        let bias = if self.bias { Some(ctx.weight("bias")?) } else { None };
        // Its features are a batch norm's channels (axis 1) when its output is `[N, features]`:
        // such a batch norm can be folded into its weights for inference (`lower::fold`).
        match ctx.output_dims(0)?.len() {
            2 => Ok(producer(weight, bias, |x, w, b, _| linear(x, w, b))),
            _ => Ok(unary(move |x, _| linear(x, &weight, bias.as_ref()))),
        }
    }
}

#[cfg(feature = "lower")]
pub use crate::lower::kernels::linear::linear;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::AttrValue;

    #[test]
    fn maps_the_last_axis_and_counts_params_and_macs() {
        let mut a = Attrs::default();
        a.insert("out_features", AttrValue::Int(Dim::konst(200)));
        a.insert("bias", AttrValue::Bool(true));
        let op = (LINEAR.build)(&a).unwrap();
        let x = TensorType::new(DType::F32, vec![Dim::sym("N"), Dim::konst(784)]);
        let out = op.infer(std::slice::from_ref(&x)).unwrap();
        assert_eq!(out[0].shape, vec![Dim::sym("N"), Dim::konst(200)]);
        let params: i64 = op
            .params(std::slice::from_ref(&x))
            .iter()
            .map(|p| Dim::product(&p.shape).as_const().unwrap())
            .sum();
        assert_eq!(params, 784 * 200 + 200);
        assert_eq!(op.cost(&[x], &out), Cost::Macs(Dim::sym("N").mul(&Dim::konst(156_800))));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_on_2d_and_3d_inputs() {
        let spec = "model M { input x: [3, 5]\n input s: [2, 3, 4]\n output y = x |> fc: Linear(4)\n \
                    output z = s |> nb: Linear(7, bias=false) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
