//! `split(x, split_size_or_sections, axis=1)` and `chunk(x, chunks, axis=1)`: cut a tensor into
//! pieces along one axis, as `torch.split` and `torch.chunk`; each piece is one output, so
//! `mu, logvar = chunk(h, 2)` unpacks them. `axis` defaults to 1, as `concat`'s does.

use super::signature::{attr, AttrSpec, AttrType, Default, Inputs};
use super::{divide_exactly, expect_axis, AttrValue, Attrs, Cost, Op, OpDef, OpError, Quotient, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

/// Most pieces one call may make (each is an output port, and a spec has no use for more).
const MAX_PIECES: i64 = 4096;

const AXIS: AttrSpec = attr("axis", AttrType::Int, Default::Int(1));

pub static SPLIT: OpDef = OpDef {
    name: "split",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("split_size_or_sections", AttrType::IntOrList, Default::Required), AXIS],
    },
    build: |a: &Attrs| {
        let pieces = match a.get("split_size_or_sections") {
            AttrValue::List(_) => Pieces::Sections(a.dims("split_size_or_sections")?),
            _ => Pieces::Size(a.int_at_least("split_size_or_sections", 1)?),
        };
        if let Pieces::Sections(s) = &pieces {
            let too_many = s.len() as i64 > MAX_PIECES;
            if s.is_empty() || too_many || s.iter().any(|d| d.as_const().is_some_and(|v| v < 0)) {
                return Err(OpError::new(format!(
                    "`split_size_or_sections` must list 1 to {MAX_PIECES} sizes of 0 or more, found {}",
                    shape_string(s)
                ))
                .attr("split_size_or_sections"));
            }
        }
        Ok(Box::new(Split { pieces, axis: a.int("axis")? }))
    },
};

pub static CHUNK: OpDef = OpDef {
    name: "chunk",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("chunks", AttrType::Int, Default::Required), AXIS],
    },
    build: |a: &Attrs| {
        let chunks = a.int_at_least("chunks", 1)?;
        if chunks > MAX_PIECES {
            return Err(
                OpError::new(format!("`chunks` may be at most {MAX_PIECES}, found {chunks}")).attr("chunks")
            );
        }
        Ok(Box::new(Split { pieces: Pieces::Chunks(chunks), axis: a.int("axis")? }))
    },
};

/// How the axis is cut.
#[derive(Clone, Debug, PartialEq)]
pub enum Pieces {
    /// Pieces of this size, the last one smaller if the axis does not divide.
    Size(i64),
    /// These sizes, which must add up to the axis.
    Sections(Vec<Dim>),
    /// `torch.chunk`: pieces of `ceil(len / chunks)`, so possibly fewer than `chunks`.
    Chunks(i64),
}

#[derive(Debug)]
pub struct Split {
    pub pieces: Pieces,
    pub axis: i64,
}

/// Pieces of `size` covering `len`, which must be a constant so the count is known.
fn by_size(len: &Dim, size: i64, what: &'static str) -> Result<Vec<Dim>, OpError> {
    let Some(n) = len.as_const() else {
        return Err(OpError::new(format!(
            "cannot tell how many pieces of {size} the symbolic size `{len}` makes"
        ))
        .attr(what)
        .help("give the sizes as a list, or bind the dims it depends on"));
    };
    if n / size > MAX_PIECES {
        return Err(
            OpError::new(format!("{n} in pieces of {size} is more than {MAX_PIECES} pieces")).attr(what)
        );
    }
    let mut sizes = vec![Dim::konst(size); (n / size) as usize];
    if n % size != 0 {
        sizes.push(Dim::konst(n % size));
    }
    Ok(sizes)
}

impl Split {
    fn sizes(&self, len: &Dim) -> Result<Vec<Dim>, OpError> {
        match &self.pieces {
            Pieces::Size(size) => by_size(len, *size, "split_size_or_sections"),
            Pieces::Sections(sizes) => {
                let total = sizes.iter().fold(Dim::zero(), |acc, d| acc.add(d));
                if total != *len {
                    return Err(OpError::new(format!(
                        "`split_size_or_sections` {} adds up to {total}, but the axis has size {len}",
                        shape_string(sizes)
                    ))
                    .attr("split_size_or_sections"));
                }
                Ok(sizes.clone())
            }
            Pieces::Chunks(chunks) => match divide_exactly(len, *chunks) {
                Quotient::Exact(q) => Ok(vec![q; *chunks as usize]),
                _ => match len.as_const() {
                    Some(n) => by_size(len, n / chunks + i64::from(n % chunks != 0), "chunks"),
                    None => Err(OpError::new(format!(
                        "cannot tell whether the symbolic size `{len}` divides into {chunks} chunks"
                    ))
                    .attr("chunks")
                    .help("bind the dims it depends on")),
                },
            },
        }
    }
}

impl Op for Split {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        let axis = expect_axis(x, self.axis, "axis")?;
        if x.shape[axis].as_const().is_some_and(|n| n < 0) {
            return Err(OpError::new(format!("axis {axis} of {x} has a negative size")).input(0));
        }
        let sizes = self.sizes(&x.shape[axis]).map_err(|e| e.input(0))?;
        if sizes.is_empty() {
            return Err(OpError::new(format!("axis {axis} of {x} is empty: nothing to split")).input(0));
        }
        Ok(sizes
            .into_iter()
            .map(|size| {
                let mut shape = x.shape.clone();
                shape[axis] = size;
                x.with_shape(shape)
            })
            .collect())
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Split {
    /// Each piece a `narrow` of the input, at the sizes inference gave.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let axis = expect_axis(&ctx.inputs[0], self.axis, "axis").map_err(|e| ctx.error(e.message))?;
        let mut pieces = Vec::new();
        let mut start = 0;
        for i in 0..ctx.outputs.len() {
            let len = ctx.output_dims(i)?[axis];
            pieces.push((start, len));
            start += len;
        }
        Ok(Box::new(move |xs: &[candle_core::Tensor], _: &mut ForwardCtx| {
            let [x] = xs else { candle_core::bail!("expected 1 input, found {}", xs.len()) };
            pieces.iter().map(|(start, len)| x.narrow(axis, *start, *len)).collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, dims, err, f32, int, ints, macs};

    fn shapes(op: &dyn Op, x: TensorType) -> Vec<Vec<i64>> {
        op.infer(&[x]).unwrap().iter().map(dims).collect()
    }

    #[test]
    fn split_by_size_leaves_a_short_last_piece() {
        let op = build(&SPLIT, &[("split_size_or_sections", int(4))]).unwrap();
        assert_eq!(shapes(&*op, f32(&[2, 10, 3])), [vec![2, 4, 3], vec![2, 4, 3], vec![2, 2, 3]]);
        assert_eq!(macs(&*op, &[f32(&[2, 10, 3])]), 0);
        let x = TensorType::new(DType::F32, vec![2.into(), Dim::sym("T")]);
        assert!(err(op.infer(&[x])).help.unwrap().contains("as a list"));
    }

    #[test]
    fn split_by_sections_checks_the_total_symbolically() {
        let op = build(&SPLIT, &[("split_size_or_sections", ints(&[3, 5])), ("axis", int(-1))]).unwrap();
        assert_eq!(shapes(&*op, f32(&[4, 8])), [vec![4, 3], vec![4, 5]]);
        let e = err(op.infer(&[f32(&[4, 9])]));
        assert!(e.message.contains("[3, 5] adds up to 8, but the axis has size 9"), "{}", e.message);
        let t = Dim::sym("T");
        let sections = AttrValue::List(vec![AttrValue::Int(t.clone()), AttrValue::Int(1.into())]);
        let op = build(&SPLIT, &[("split_size_or_sections", sections), ("axis", int(0))]).unwrap();
        let out = op.infer(&[TensorType::new(DType::F32, vec![t.add(&1.into()), 6.into()])]).unwrap();
        assert_eq!(out[0].shape, vec![t, Dim::konst(6)]);
        assert!(build(&SPLIT, &[("split_size_or_sections", ints(&[2, -1]))]).is_err());
    }

    #[test]
    fn chunk_follows_torch_chunk() {
        let op = build(&CHUNK, &[("chunks", int(2))]).unwrap();
        assert_eq!(shapes(&*op, f32(&[1, 32])), [vec![1, 16], vec![1, 16]]);
        let n = TensorType::new(DType::F32, vec![Dim::sym("N"), Dim::sym("C").mul(&2.into())]);
        assert_eq!(op.infer(&[n]).unwrap()[1].shape[1], Dim::sym("C"));
        // ceil(6 / 5) = 2, so three chunks of 2, not five.
        let op = build(&CHUNK, &[("chunks", int(5))]).unwrap();
        assert_eq!(shapes(&*op, f32(&[1, 6])), [vec![1, 2], vec![1, 2], vec![1, 2]]);
        assert_eq!(shapes(&*op, f32(&[1, 7])).concat(), [1, 2, 1, 2, 1, 2, 1, 1]);
    }

    #[test]
    fn refuses_bad_axes_counts_and_symbolic_remainders() {
        let op = build(&CHUNK, &[("chunks", int(3)), ("axis", int(2))]).unwrap();
        assert_eq!(err(op.infer(&[f32(&[4, 6])])).attr, Some("axis"));
        let x = TensorType::new(DType::F32, vec![Dim::sym("N"), Dim::sym("T"), 8.into()]);
        let op = build(&CHUNK, &[("chunks", int(3))]).unwrap();
        assert!(err(op.infer(&[x])).message.contains("symbolic size `T`"));
        assert_eq!(err(build(&CHUNK, &[("chunks", int(0))])).attr, Some("chunks"));
        assert_eq!(err(build(&CHUNK, &[("chunks", int(1 << 20))])).attr, Some("chunks"));
        let op = build(&SPLIT, &[("split_size_or_sections", int(1)), ("axis", int(0))]).unwrap();
        assert!(err(op.infer(&[f32(&[1 << 20])])).message.contains("more than 4096 pieces"));
        let op = build(&SPLIT, &[("split_size_or_sections", int(2))]).unwrap();
        assert!(err(op.infer(&[f32(&[4, 0])])).message.contains("nothing to split"));
        let op = build(&CHUNK, &[("chunks", int(4))]).unwrap();
        assert!(err(op.infer(&[f32(&[2, -6])])).message.contains("negative size"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_split_and_chunk_pieces() {
        let spec =
            "model M { input x: [3, 7, 5]\n a, b, c = split(x, 3)\n d, e = split(x, [2, 3], axis=-1)\n \
                    f, g, h = chunk(x, 3, axis=0)\n output a, b, c, d, e, f, g, h }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
