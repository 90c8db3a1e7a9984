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

#[cfg(feature = "lower")]
use candle_core::Tensor;

use super::sequence::{expect_fits, expect_float, SeqAxes, BATCH_FIRST};
use super::signature::{attr, AttrType, Default, Inputs};
use super::Init;
use super::{expect_dim, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

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
                Init::Normal { mean: 0.0, std: 1.0 },
            )],
            PositionKind::Parameter { seq_len } => vec![ParamDecl::weight(
                "",
                axes.broadcast_shape(&inputs[0], seq_len.clone(), features),
                Init::Normal { mean: 0.0, std: 0.02 },
            )],
        }
    }

    /// An elementwise add: not counted by the convention.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Positions {
    /// Adds a `[L, E]` table shaped to broadcast over the layout: the sine/cosine constants,
    /// the first `L` rows of the learned table (the others get a zero gradient, as an
    /// embedding's unused rows do), or the parameter itself. `L` is the input's length at run
    /// time, so one lowered model serves a growing sequence (up to `max_len`); a pass that
    /// carries layer states adds the rows after those of the passes before it.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axes = SeqAxes::of(&ctx.inputs, 0, self.batch_first).map_err(|e| ctx.error(e.message))?;
        let x = &ctx.inputs[0];
        let (len, features) = (ctx.dim(&axes.len(x))?, ctx.dim(&axes.features(x))?);
        let table = match &self.kind {
            PositionKind::Sinusoidal { max_len } => Table::Sines {
                rows: Tensor::from_vec(sinusoids(len, features), (len, features), ctx.device)?
                    .to_dtype(ctx.dtype)?,
                max_len: *max_len as usize,
            },
            PositionKind::Table { max_len } => {
                Table::Rows { weight: ctx.weight("weight")?, max_len: *max_len as usize }
            }
            PositionKind::Parameter { .. } => Table::Whole(ctx.weight("")?),
        };
        Ok(unary(move |x, ctx| {
            let len = x.dim(axes.seq)?;
            // A pass that carries layer states (generation with a key-value cache) continues
            // the positions where the last one stopped.
            let offset = match ctx.state.as_deref_mut() {
                Some(state) if !matches!(table, Table::Whole(_)) => advance_offset(state, len, x.device())?,
                _ => 0,
            };
            let end = offset + len;
            let rows = match &table {
                Table::Whole(t) => return x.broadcast_add(t),
                Table::Sines { rows, max_len } => match end <= rows.dim(0)? {
                    true => rows.narrow(0, offset, len)?,
                    false => {
                        within(end, *max_len)?;
                        let e = rows.dim(1)?;
                        let all = Tensor::from_vec(sinusoids(end, e), (end, e), x.device())?;
                        all.narrow(0, offset, len)?.to_dtype(rows.dtype())?
                    }
                },
                Table::Rows { weight, max_len } => {
                    within(end, *max_len)?;
                    weight.narrow(0, offset, len)?
                }
            };
            let mut shape = vec![1; x.rank()];
            (shape[axes.seq], shape[axes.features]) = (len, rows.dim(1)?);
            x.broadcast_add(&rows.reshape(shape)?)
        }))
    }
}

/// The first position of a pass that carries layer states (generation with a key-value cache):
/// the count of positions the passes before it saw, which this one advances by `len`.
#[cfg(feature = "lower")]
pub fn advance_offset(
    state: &mut crate::lower::LayerState,
    len: usize,
    device: &candle_core::Device,
) -> candle_core::Result<usize> {
    const OFFSET: &str = "offset";
    let offset = state.get(OFFSET).map(|t| t.to_scalar::<u32>()).transpose()?.unwrap_or(0);
    state.insert(OFFSET.into(), Tensor::new(offset + len as u32, device)?);
    Ok(offset as usize)
}

/// Refuses a sequence longer than the table, as compiling it would have.
#[cfg(feature = "lower")]
fn within(len: usize, max_len: usize) -> candle_core::Result<()> {
    if len > max_len {
        candle_core::bail!("a sequence of {len} exceeds the {max_len} positions");
    }
    Ok(())
}

/// What a position layer adds.
#[cfg(feature = "lower")]
enum Table {
    /// A tensor already shaped to broadcast: the parameter, added whole.
    Whole(Tensor),
    /// `[L, E]` sines for the lowered length `L`; a longer sequence gets its own.
    Sines { rows: Tensor, max_len: usize },
    /// A learned `[max_len, E]` table, of which a sequence takes its leading rows.
    Rows { weight: Tensor, max_len: usize },
}

/// The `[len, e]` table of "Attention Is All You Need": `sin(p / 10000^(2i/e))` at feature
/// `2i` and `cos` of the same at `2i + 1`.
pub fn sinusoids(len: usize, e: usize) -> Vec<f64> {
    let mut t = vec![0.0; len * e];
    for p in 0..len {
        for i in (0..e).step_by(2) {
            // PyTorch's tutorial computes exp(2i * -ln(10000) / e); the same number.
            let angle = p as f64 * (i as f64 * -(10000f64.ln()) / e as f64).exp();
            t[p * e + i] = angle.sin();
            if i + 1 < e {
                t[p * e + i + 1] = angle.cos();
            }
        }
    }
    t
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

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_each_form_in_both_layouts() {
        // Learned table: only the first 5 of 9 rows are used (their gradient is checked as 0).
        let spec = "model M { input x: [2, 5, 6]\n input s: [5, 3, 4]\n \
                    output a = x |> pos: LearnedPositions(9)\n \
                    output b = s |> sp: SinusoidalPositions(batch_first=false)\n \
                    output c = s |> pp: PositionParameter(5, batch_first=false)\n \
                    output d = x |> pq: PositionParameter(5) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }

    #[test]
    fn sinusoids_match_the_closed_form() {
        let t = sinusoids(3, 4);
        // Position 2: angles 2 and 2 / 10000^(2/4) = 0.02.
        let expected = [2f64.sin(), 2f64.cos(), 0.02f64.sin(), 0.02f64.cos()];
        for (got, want) in t[8..].iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
        assert_eq!(&t[..4], &[0.0, 1.0, 0.0, 1.0]);
    }
}
