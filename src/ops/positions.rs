//! Position encodings added to a sequence of embeddings, in the three forms models use.
//!
//! - `SinusoidalPositions(max_len)`: the fixed sine/cosine table of "Attention Is All You
//!   Need"; no parameters.
//! - `LearnedPositions(max_len)`: a learned table `weight [max_len, E]` whose rows 0..L are
//!   added, i.e. an `nn.Embedding` looked up at the position ids: BERT's
//!   `embeddings.position_embeddings.weight`, GPT-2's `wpe.weight`.
//! - `PositionParameter(seq_len)`: one learned tensor `[1, seq_len, E]` added whole, held by
//!   the enclosing module as a bare `nn.Parameter` whose path is the layer's label:
//!   torchvision ViT's `encoder.pos_embedding`.

use super::sequence::{expect_fits, expect_float, SeqAxes, BATCH_FIRST};
use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_dim, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;

pub static SINUSOIDAL_POSITIONS: OpDef = OpDef {
    name: "SinusoidalPositions",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("max_len", AttrType::Int, Default::Int(5000)), BATCH_FIRST],
    },
    build: |a: &Attrs| {
        Ok(Box::new(Positions {
            kind: PositionKind::Sinusoidal { max_len: a.int_at_least("max_len", 1)? },
            batch_first: a.bool("batch_first")?,
        }))
    },
};

pub static LEARNED_POSITIONS: OpDef = OpDef {
    name: "LearnedPositions",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("max_len", AttrType::Int, Default::Required), BATCH_FIRST],
    },
    build: |a: &Attrs| {
        Ok(Box::new(Positions {
            kind: PositionKind::Table { max_len: a.int_at_least("max_len", 1)? },
            batch_first: a.bool("batch_first")?,
        }))
    },
};

pub static POSITION_PARAMETER: OpDef = OpDef {
    name: "PositionParameter",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("seq_len", AttrType::Int, Default::Required), BATCH_FIRST],
    },
    build: |a: &Attrs| {
        Ok(Box::new(Positions {
            kind: PositionKind::Parameter { seq_len: a.dim_at_least("seq_len", 1)? },
            batch_first: a.bool("batch_first")?,
        }))
    },
};

#[derive(Clone, Debug, PartialEq)]
pub enum PositionKind {
    Sinusoidal { max_len: i64 },
    Table { max_len: i64 },
    Parameter { seq_len: Dim },
}

/// Adds an encoding of each position to the embedding there; the output has the input's type.
#[derive(Debug)]
pub struct Positions {
    pub kind: PositionKind,
    pub batch_first: bool,
}

impl Op for Positions {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let axes = SeqAxes::of(inputs, 0, self.batch_first)?;
        let x = &inputs[0];
        expect_float(x, 0)?;
        let len = axes.len(x);
        match &self.kind {
            PositionKind::Sinusoidal { max_len } => {
                expect_fits(&len, *max_len, 0)?;
                // Sines fill the even features and cosines the odd ones, in pairs.
                if let Some(e) = axes.features(x).as_const().filter(|e| e % 2 != 0) {
                    return Err(OpError::new(format!(
                        "sine/cosine pairs need an even embedding size, found {e}"
                    ))
                    .input(0));
                }
            }
            PositionKind::Table { max_len } => expect_fits(&len, *max_len, 0)?,
            PositionKind::Parameter { seq_len } => {
                expect_dim(&len, seq_len, "sequence length (the parameter is added whole)", 0)?
            }
        }
        Ok(vec![x.clone()])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let Ok(axes) = SeqAxes::of(inputs, 0, self.batch_first) else { return Vec::new() };
        let features = axes.features(&inputs[0]);
        match &self.kind {
            PositionKind::Sinusoidal { .. } => Vec::new(),
            PositionKind::Table { max_len } => vec![ParamDecl::weight(
                "weight",
                vec![Dim::konst(*max_len), features],
                "normal(0, 1), as nn.Embedding",
            )],
            PositionKind::Parameter { seq_len } => vec![ParamDecl::weight(
                "",
                axes.broadcast_shape(&inputs[0], seq_len.clone(), features),
                "normal(0, 0.02), as torchvision ViT's pos_embedding",
            )],
        }
    }

    /// An elementwise add: not counted by the convention.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    #[test]
    fn sinusoidal_adds_no_parameters() {
        let op = build(&SINUSOIDAL_POSITIONS, &[]).unwrap();
        let x = [f32(&[2, 100, 512])];
        assert_eq!(out_shape(&*op, &x), vec![2, 100, 512]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 0);
        assert_eq!(macs(&*op, &x), 0);
        let op = build(&SINUSOIDAL_POSITIONS, &[("max_len", int(64))]).unwrap();
        let e = err(op.infer(&x));
        assert!(e.message.contains("100 exceeds the 64 positions"), "{}", e.message);
        let e = err(build(&SINUSOIDAL_POSITIONS, &[]).unwrap().infer(&[f32(&[2, 10, 7])]));
        assert!(e.message.contains("even embedding size, found 7"), "{}", e.message);
    }

    #[test]
    fn learned_table_is_an_embedding_over_positions() {
        let op = build(&LEARNED_POSITIONS, &[("max_len", int(1024))]).unwrap();
        let x = [f32(&[1, 1024, 768])];
        assert_eq!(out_shape(&*op, &x), vec![1, 1024, 768]);
        let p = op.params(&x);
        assert_eq!((p[0].name.as_ref(), p[0].shape.clone()), ("weight", vec![1024.into(), 768.into()]));
        assert_eq!(count(&*op, &x, ParamKind::Weight), 786_432);
        let seq_first =
            build(&LEARNED_POSITIONS, &[("max_len", int(16)), ("batch_first", AttrValue::Bool(false))]);
        let e = err(seq_first.unwrap().infer(&[f32(&[20, 2, 8])]));
        assert!(e.message.contains("20 exceeds the 16"), "{}", e.message);
    }

    #[test]
    fn parameter_matches_the_sequence_exactly() {
        let op = build(&POSITION_PARAMETER, &[("seq_len", int(197))]).unwrap();
        let x = [f32(&[1, 197, 768])];
        assert_eq!(out_shape(&*op, &x), vec![1, 197, 768]);
        let p = op.params(&x);
        assert_eq!(p[0].name, "", "a bare parameter takes the layer's path");
        assert_eq!(p[0].shape, vec![1.into(), 197.into(), 768.into()]);
        let e = err(op.infer(&[f32(&[1, 196, 768])]));
        assert!(e.message.contains("expected 197, found 196"), "{}", e.message);
        let ids = TensorType::new(DType::I64, vec![1.into(), 197.into(), 768.into()]);
        assert!(err(op.infer(&[ids])).message.contains("float tensor"));
    }
}
