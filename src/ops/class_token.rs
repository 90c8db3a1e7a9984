//! `ClassToken` prepends a learned token to a sequence; `SelectToken(index)` reads one token
//! back out (`x[:, 0]`), as ViT's classifier reads the class token.
//!
//! The token is a bare `nn.Parameter` of the enclosing module, so its path is the layer's
//! label: `class_token: ClassToken` gives torchvision ViT's `class_token [1, 1, E]`.

use std::cmp::Ordering;

use super::sequence::{expect_float, SeqAxes, BATCH_FIRST};
use super::signature::{attr, AttrType, Default, Inputs};
use super::Init;
use super::{Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static CLASS_TOKEN: OpDef = OpDef {
    name: "ClassToken",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: &[BATCH_FIRST] },
    build: |a: &Attrs| Ok(Box::new(ClassToken { batch_first: a.bool("batch_first")? })),
};

pub static SELECT_TOKEN: OpDef = OpDef {
    name: "SelectToken",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("index", AttrType::Int, Default::Int(0)), BATCH_FIRST],
    },
    build: |a: &Attrs| {
        Ok(Box::new(SelectToken { index: a.int("index")?, batch_first: a.bool("batch_first")? }))
    },
};

#[derive(Debug)]
pub struct ClassToken {
    pub batch_first: bool,
}

impl Op for ClassToken {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let axes = SeqAxes::of(inputs, 0, self.batch_first)?;
        let x = &inputs[0];
        expect_float(x, 0)?;
        let mut shape = x.shape.clone();
        shape[axes.seq] = axes.len(x).add(&Dim::one());
        Ok(vec![x.with_shape(shape)])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let Ok(axes) = SeqAxes::of(inputs, 0, self.batch_first) else { return Vec::new() };
        let shape = axes.broadcast_shape(&inputs[0], Dim::one(), axes.features(&inputs[0]));
        vec![ParamDecl::weight("", shape, Init::Zeros)]
    }

    /// A copy and a concatenation: no multiply-accumulates.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for ClassToken {
    /// The token, broadcast over the batch (its gradient sums over it), goes first.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axes = SeqAxes::of(&ctx.inputs, 0, self.batch_first).map_err(|e| ctx.error(e.message))?;
        let token = ctx.weight("")?;
        Ok(unary(move |x, _| {
            let mut shape = x.dims().to_vec();
            shape[axes.seq] = 1;
            candle_core::Tensor::cat(&[&token.broadcast_as(shape)?, x], axes.seq)
        }))
    }
}

/// Drops the sequence axis, keeping the token at `index` (negative counts from the end).
#[derive(Debug)]
pub struct SelectToken {
    pub index: i64,
    pub batch_first: bool,
}

impl Op for SelectToken {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let axes = SeqAxes::of(inputs, 0, self.batch_first)?;
        let x = &inputs[0];
        let len = axes.len(x);
        // Index i needs len > i; index -i needs len >= i.
        let needed = if self.index >= 0 { self.index.saturating_add(1) } else { self.index.saturating_neg() };
        if len.compare(&Dim::konst(needed)) == Some(Ordering::Less) {
            return Err(OpError::new(format!(
                "token {} is out of range for a sequence of length {len} in {x}",
                self.index
            ))
            .attr("index"));
        }
        let mut shape = x.shape.clone();
        shape.remove(axes.seq);
        Ok(vec![x.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for SelectToken {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axes = SeqAxes::of(&ctx.inputs, 0, self.batch_first).map_err(|e| ctx.error(e.message))?;
        let len = ctx.dim(&axes.len(&ctx.inputs[0]))? as i64;
        let index = if self.index < 0 { self.index + len } else { self.index } as usize;
        Ok(unary(move |x, _| x.narrow(axes.seq, index, 1)?.squeeze(axes.seq)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn vit_prepends_one_token_and_reads_it_back() {
        let op = build(&CLASS_TOKEN, &[]).unwrap();
        let x = [f32(&[1, 196, 768])];
        assert_eq!(out_shape(&*op, &x), vec![1, 197, 768]);
        let p = op.params(&x);
        assert_eq!((p[0].name.as_ref(), p[0].shape.clone()), ("", vec![1.into(), 1.into(), 768.into()]));
        assert_eq!(count(&*op, &x, ParamKind::Weight), 768);
        assert_eq!(macs(&*op, &x), 0);
        let select = build(&SELECT_TOKEN, &[]).unwrap();
        assert_eq!(out_shape(&*select, &[f32(&[1, 197, 768])]), vec![1, 768]);
    }

    #[test]
    fn sequence_first_layout() {
        let first = [("batch_first", AttrValue::Bool(false))];
        let op = build(&CLASS_TOKEN, &first).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[10, 4, 32])]), vec![11, 4, 32]);
        let select = build(&SELECT_TOKEN, &[("index", int(-1)), first[0].clone()]).unwrap();
        assert_eq!(out_shape(&*select, &[f32(&[10, 4, 32])]), vec![4, 32]);
    }

    #[test]
    fn the_token_takes_the_path_of_its_label() {
        let spec = "dim N = 1\nmodel M {\n input x: [N, 4, 8]\n \
                    y = x |> class_token: ClassToken |> SelectToken\n output y\n}\n";
        let c = crate::compile_source("m.wick", spec, &crate::Options::default());
        assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics);
        let params = c.graph.expect("graph").parameters();
        assert_eq!(params.len(), 1);
        assert_eq!(
            (params[0].0.as_str(), params[0].1.clone()),
            ("class_token", vec![1.into(), 1.into(), 8.into()])
        );
    }

    #[test]
    fn refuses_out_of_range_tokens_and_bad_ranks() {
        let select = build(&SELECT_TOKEN, &[("index", int(5))]).unwrap();
        let e = err(select.infer(&[f32(&[2, 5, 8])]));
        assert_eq!(e.attr, Some("index"));
        assert!(e.message.contains("token 5 is out of range") && e.message.contains("length 5"));
        assert!(build(&SELECT_TOKEN, &[("index", int(-5))]).unwrap().infer(&[f32(&[2, 5, 8])]).is_ok());
        let e = err(build(&CLASS_TOKEN, &[]).unwrap().infer(&[f32(&[1, 768, 14, 14])]));
        assert!(e.message.contains("rank 4"), "{}", e.message);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_token_in_and_out_in_both_layouts() {
        let spec = "model M { input x: [2, 3, 5]\n input s: [4, 3, 5]\n \
                    output a = x |> cls: ClassToken |> SelectToken(1)\n \
                    output b = s |> sc: ClassToken(batch_first=false) |> SelectToken(-2, batch_first=false)\n \
                    output c = x |> cc: ClassToken }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
