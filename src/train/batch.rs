//! Named batches: what one iteration of a training program reads. A batch holds tensors by
//! name — a model's inputs under their input names, targets under the names losses read them
//! by — so a program with several inputs, targets or models reads what it needs by name, and
//! the loop that deals out the batches does not know which is which.

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::data::Dataset;

/// One mini-batch: tensors by name, row-aligned on their first axis.
#[derive(Clone, Debug)]
pub struct Batch {
    pub rows: usize,
    pub tensors: BTreeMap<String, Tensor>,
}

impl Batch {
    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> candle_core::Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| {
            let held: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
            candle_core::Error::msg(format!(
                "the batch has no tensor `{name}` (it holds {})",
                held.join(", ")
            ))
        })
    }
}

/// A split as a source of named batches: its features under `input`, its targets under
/// `target`, and the named form's further arrays under their own names.
pub struct Feed<'a> {
    pub data: &'a Dataset,
    pub input: String,
    pub target: String,
}

impl Feed<'_> {
    pub fn rows(&self) -> usize {
        self.data.len()
    }

    /// Batches of `size` rows (the last may be short), in an order shuffled by `seed`, or in the
    /// data's order when `seed` is `None`.
    pub fn batches(&self, size: usize, seed: Option<u64>) -> candle_core::Result<Vec<Batch>> {
        let parts = match seed {
            Some(seed) => self.data.batches(size, seed)?,
            None => self.data.batches_in_order(size)?,
        };
        Ok(parts.into_iter().map(|part| self.named(part)).collect())
    }

    fn named(&self, part: Dataset) -> Batch {
        let rows = part.len();
        let tensors =
            part.named(&self.input, &self.target).map(|(n, _, t)| (n.to_string(), t.clone())).collect();
        Batch { rows, tensors }
    }
}
