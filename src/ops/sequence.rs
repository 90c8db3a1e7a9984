//! Token-sequence layouts shared by attention, positional encodings and token ops: which axis
//! holds the sequence, which the batch, which the features.

use std::cmp::Ordering;

#[cfg(feature = "lower")]
use candle_core::Tensor;

use super::signature::{attr, AttrSpec, AttrType, Default};
use super::{expect_rank, OpError};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;

/// `batch_first = true`: `[N, L, E]`, the layout embeddings produce from `[N, L]` ids. Ops that
/// follow a PyTorch module declare its own default instead (`MultiheadAttention`: false).
pub const BATCH_FIRST: AttrSpec = attr("batch_first", AttrType::Bool, Default::Bool(true));

/// Where the axes of a sequence tensor are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeqAxes {
    pub seq: usize,
    /// None for an unbatched `[L, E]` tensor.
    pub batch: Option<usize>,
    pub features: usize,
}

impl SeqAxes {
    /// `[N, L, E]` or `[L, N, E]` as `batch_first` says, or unbatched `[L, E]`.
    pub fn of(inputs: &[TensorType], index: usize, batch_first: bool) -> Result<SeqAxes, OpError> {
        let layout =
            if batch_first { "[N, L, E] or unbatched [L, E]" } else { "[L, N, E] or unbatched [L, E]" };
        expect_rank(inputs, index, &[3, 2], layout)?;
        Ok(match (inputs[index].rank(), batch_first) {
            (2, _) => SeqAxes { seq: 0, batch: None, features: 1 },
            (_, true) => SeqAxes { seq: 1, batch: Some(0), features: 2 },
            (_, false) => SeqAxes { seq: 0, batch: Some(1), features: 2 },
        })
    }

    pub fn len(&self, x: &TensorType) -> Dim {
        x.shape[self.seq].clone()
    }

    pub fn features(&self, x: &TensorType) -> Dim {
        x.shape[self.features].clone()
    }

    /// The batch size, 1 when unbatched.
    pub fn batch(&self, x: &TensorType) -> Dim {
        self.batch.map_or(Dim::one(), |b| x.shape[b].clone())
    }

    /// A parameter shape broadcasting over this layout: 1 on every axis but the sequence
    /// (`seq`) and the features (`features`).
    pub fn broadcast_shape(&self, x: &TensorType, seq: Dim, features: Dim) -> Vec<Dim> {
        let mut shape = vec![Dim::one(); x.rank()];
        shape[self.seq] = seq;
        shape[self.features] = features;
        shape
    }

    /// A tensor of this layout as `[N, L, E]`, the layout lowerings compute in (an unbatched
    /// one gets a batch of 1).
    #[cfg(feature = "lower")]
    pub fn to_batch_first(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.batch {
            None => x.unsqueeze(0),
            Some(0) => Ok(x.clone()),
            Some(_) => x.transpose(0, 1),
        }
    }

    /// The inverse of [`to_batch_first`](Self::to_batch_first).
    #[cfg(feature = "lower")]
    pub fn from_batch_first(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.batch {
            None => x.squeeze(0),
            Some(0) => Ok(x.clone()),
            Some(_) => x.transpose(0, 1),
        }
    }
}

/// Refuses a sequence length known to exceed a table of `max_len` positions; a length that
/// stays symbolic is accepted, as the table is looked up at run time.
pub fn expect_fits(len: &Dim, max_len: i64, index: usize) -> Result<(), OpError> {
    if len.compare(&Dim::konst(max_len)) == Some(Ordering::Greater) {
        return Err(OpError::new(format!(
            "sequence length {len} exceeds the {max_len} positions of the table (`max_len`)"
        ))
        .input(index));
    }
    Ok(())
}

/// Refuses ids or masks where embeddings are due.
pub fn expect_float(x: &TensorType, index: usize) -> Result<(), OpError> {
    if x.dtype.is_float() {
        return Ok(());
    }
    Err(OpError::new(format!("expected a float tensor of embeddings, found {x}"))
        .input(index)
        .help("token ids become embeddings through an `Embedding` first"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::f32;

    #[test]
    fn finds_the_axes_of_each_layout() {
        let x = f32(&[8, 20, 512]);
        let first = SeqAxes::of(std::slice::from_ref(&x), 0, true).unwrap();
        assert_eq!((first.len(&x), first.batch(&x)), (20.into(), 8.into()));
        let seq_first = SeqAxes::of(std::slice::from_ref(&x), 0, false).unwrap();
        assert_eq!((seq_first.len(&x), seq_first.batch(&x)), (8.into(), 20.into()));
        let unbatched = f32(&[20, 512]);
        let axes = SeqAxes::of(std::slice::from_ref(&unbatched), 0, false).unwrap();
        assert_eq!((axes.len(&unbatched), axes.batch(&unbatched)), (20.into(), 1.into()));
        let b = first.broadcast_shape(&x, 7.into(), 512.into());
        assert_eq!(b, vec![1.into(), 7.into(), 512.into()]);
        let e = SeqAxes::of(&[f32(&[1, 2, 3, 4])], 0, true).unwrap_err();
        assert!(e.message.contains("[N, L, E]") && e.message.contains("rank 4"), "{}", e.message);
    }

    #[test]
    fn length_and_dtype_checks() {
        assert!(expect_fits(&Dim::konst(512), 512, 0).is_ok());
        assert!(expect_fits(&Dim::sym("T"), 512, 0).is_ok());
        let e = expect_fits(&Dim::konst(513), 512, 0).unwrap_err();
        assert!(e.message.contains("513 exceeds the 512"), "{}", e.message);
        let ids = TensorType::new(DType::I64, vec![1.into(), 4.into()]);
        assert!(expect_float(&ids, 0).unwrap_err().message.contains("of i64"));
    }
}
