//! `LayerNorm`: normalisation over the trailing `normalized_shape` axes, PyTorch layout.

use super::signature::{attr, AttrType, Default, Inputs};
use super::Init;
use super::{Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::kernels::norm::layer_norm;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static LAYER_NORM: OpDef = OpDef {
    name: "LayerNorm",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            // Absent means the last axis of the input, the common transformer case.
            attr("normalized_shape", AttrType::IntOrList, Default::Optional),
            attr("eps", AttrType::Float, Default::Float(1e-5)),
            attr("elementwise_affine", AttrType::Bool, Default::Bool(true)),
            attr("bias", AttrType::Bool, Default::Bool(true)),
        ],
    },
    build: |a: &Attrs| {
        Ok(Box::new(LayerNorm {
            normalized_shape: normalized_shape_attr(a)?,
            eps: a.float("eps")?,
            elementwise_affine: a.bool("elementwise_affine")?,
            bias: a.bool("bias")?,
        }))
    },
};

#[derive(Debug)]
pub struct LayerNorm {
    pub normalized_shape: Option<Vec<Dim>>,
    pub eps: f64,
    pub elementwise_affine: bool,
    pub bias: bool,
}

/// The `normalized_shape` attribute: absent, or at least one dim.
pub(super) fn normalized_shape_attr(a: &Attrs) -> Result<Option<Vec<Dim>>, OpError> {
    if a.is_none("normalized_shape") {
        return Ok(None);
    }
    let dims = a.dims("normalized_shape")?;
    if dims.is_empty() {
        return Err(
            OpError::new("`normalized_shape` needs at least one dim, found []").attr("normalized_shape")
        );
    }
    Ok(Some(dims))
}

/// The dims a trailing-axes norm (LayerNorm, RMSNorm) normalises: as given, or the input's
/// last axis.
pub(super) fn normalized_dims(given: Option<&Vec<Dim>>, x: &TensorType) -> Vec<Dim> {
    match given {
        Some(s) => s.clone(),
        None => x.shape.last().cloned().into_iter().collect(),
    }
}

/// Checks that `norm` are the trailing dims of `x`.
pub(super) fn check_trailing(norm: &[Dim], x: &TensorType) -> Result<(), OpError> {
    let matches = x.rank() >= norm.len() && x.shape[x.rank() - norm.len()..] == norm[..];
    if norm.is_empty() || !matches {
        return Err(OpError::new(format!(
            "normalized_shape {} must equal the trailing dims of the input, found shape {}",
            shape_string(norm),
            shape_string(&x.shape)
        ))
        .input(0));
    }
    Ok(())
}

impl Op for LayerNorm {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        check_trailing(&normalized_dims(self.normalized_shape.as_ref(), x), x)?;
        Ok(vec![x.clone()])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let shape =
            inputs.first().map(|x| normalized_dims(self.normalized_shape.as_ref(), x)).unwrap_or_default();
        let mut p = Vec::new();
        if self.elementwise_affine {
            p.push(ParamDecl::weight("weight", shape.clone(), Init::Ones));
            if self.bias {
                p.push(ParamDecl::weight("bias", shape, Init::Zeros));
            }
        }
        p
    }

    /// A reduction and a scale: not counted by the convention.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for LayerNorm {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axes = normalized_dims(self.normalized_shape.as_ref(), &ctx.inputs[0]).len();
        let weight = if self.elementwise_affine { Some(ctx.weight("weight")?) } else { None };
        let bias = if self.elementwise_affine && self.bias { Some(ctx.weight("bias")?) } else { None };
        let eps = self.eps;
        Ok(unary(move |x, _| layer_norm(x, axes, weight.as_ref(), bias.as_ref(), eps)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, count, err, f32, ints};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn defaults_to_the_last_axis() {
        let op = build(&LAYER_NORM, &[]).unwrap();
        let x = TensorType::new(DType::F32, vec![Dim::sym("N"), Dim::sym("T"), 768.into()]);
        assert_eq!(op.infer(std::slice::from_ref(&x)).unwrap()[0], x);
        assert_eq!(count(&*op, &[x], ParamKind::Weight), 1536);
    }

    #[test]
    fn several_trailing_axes_and_no_bias() {
        let op = build(&LAYER_NORM, &[("normalized_shape", ints(&[7, 7])), ("bias", AttrValue::Bool(false))]);
        let op = op.unwrap();
        let x = [f32(&[4, 96, 7, 7])];
        assert!(op.infer(&x).is_ok());
        assert_eq!(count(&*op, &x, ParamKind::Weight), 49);
    }

    #[test]
    fn refuses_a_shape_that_is_not_trailing() {
        let op = build(&LAYER_NORM, &[("normalized_shape", ints(&[96, 7]))]).unwrap();
        let e = err(op.infer(&[f32(&[4, 96, 7, 7])]));
        assert!(e.message.contains("[96, 7]") && e.message.contains("[4, 96, 7, 7]"), "{}", e.message);
        let op = build(&LAYER_NORM, &[("normalized_shape", ints(&[1, 2, 3]))]).unwrap();
        assert!(op.infer(&[f32(&[2, 3])]).is_err());
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_one_and_several_axes() {
        // Parameters start at ones and zeros; the check moves them, so their gradients count.
        let spec = "model M { input x: [2, 3, 5]\n output a = x |> ln: LayerNorm\n \
                    output b = x |> l2: LayerNorm([3, 5], eps=0.1, bias=false) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
