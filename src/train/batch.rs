//! Named batches: what one iteration of a training program reads. A batch holds tensors by
//! name — a model's inputs under their input names, targets under the names losses read them
//! by — so a program with several inputs, targets or models reads what it needs by name, and
//! the loop that deals out the batches does not know which is which.

use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use candle_core::Tensor;

use super::augment::Augmenter;
use super::data::{shuffled, Dataset};

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
        named_batch(&part, &self.input, &self.target)
    }
}

/// The rows of `part` as a batch: features under `input`, targets under `target`.
fn named_batch(part: &Dataset, input: &str, target: &str) -> Batch {
    let tensors = part.named(input, target).map(|(n, _, t)| (n.to_string(), t.clone())).collect();
    Batch { rows: part.len(), tensors }
}

/// An epoch's training batches, grouped `accumulate` to an iteration, the first `skip`
/// groups left out (a resumed epoch), the short last batch too with `drop_last`. With `augment`, a background thread selects and
/// augments them while the caller trains, keeping up to `prefetch` batches ready; without, they
/// are selected up front.
#[allow(clippy::too_many_arguments)]
pub fn epoch_groups(
    feed: &Feed,
    size: usize,
    seed: Option<u64>,
    epoch: usize,
    accumulate: usize,
    skip: usize,
    drop_last: bool,
    augment: Option<&Arc<Augmenter>>,
) -> candle_core::Result<Box<dyn Iterator<Item = candle_core::Result<Vec<Batch>>>>> {
    let accumulate = accumulate.max(1);
    let Some(augment) = augment else {
        let mut batches = feed.batches(size, seed)?;
        // Only the last batch can be short.
        if drop_last && batches.last().is_some_and(|b| b.rows < size) {
            batches.pop();
        }
        let groups: Vec<Vec<Batch>> = batches.chunks(accumulate).skip(skip).map(<[Batch]>::to_vec).collect();
        return Ok(Box::new(groups.into_iter().map(Ok)));
    };
    let rows = feed.data.len();
    let mut order = match seed {
        Some(seed) => shuffled(rows, seed),
        None => (0..rows as u32).collect(),
    };
    order.truncate(super::fit::used_rows(rows, size, drop_last));
    let (data, input, target) = (feed.data.clone(), feed.input.clone(), feed.target.clone());
    let augment = Arc::clone(augment);
    let remaining = order.len().div_ceil(size.max(1)).saturating_sub(skip * accumulate);
    let (send, receive) = std::sync::mpsc::sync_channel(augment.spec.prefetch);
    let worker = std::thread::spawn(move || {
        for (index, chunk) in order.chunks(size.max(1)).enumerate().skip(skip * accumulate) {
            let batch = augmented(&data, chunk, &augment, epoch, index)
                .map(|part| named_batch(&part, &input, &target));
            let failed = batch.is_err();
            // The receiver is gone when the loop stopped early (an interrupt, an error).
            if send.send(batch).is_err() || failed {
                return;
            }
        }
    });
    Ok(Box::new(Prefetched { receive, worker: Some(worker), accumulate, remaining }))
}

/// The rows `chunk` of `data`, their features augmented (and, when mixing, their targets soft).
fn augmented(
    data: &Dataset,
    chunk: &[u32],
    augment: &Augmenter,
    epoch: usize,
    index: usize,
) -> candle_core::Result<Dataset> {
    let mut part = data.select(chunk)?;
    let (x, y) = augment.apply(&part.x, &part.y, chunk, epoch, index)?;
    part.x = x;
    part.y = y;
    Ok(part)
}

/// Batches from the background thread, grouped; the thread is joined when dropped.
struct Prefetched {
    receive: Receiver<candle_core::Result<Batch>>,
    worker: Option<JoinHandle<()>>,
    accumulate: usize,
    /// Batches still to come: a thread that ends before sending them failed.
    remaining: usize,
}

impl Iterator for Prefetched {
    type Item = candle_core::Result<Vec<Batch>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut group = Vec::with_capacity(self.accumulate);
        while group.len() < self.accumulate {
            if self.remaining == 0 {
                break;
            }
            match self.receive.recv() {
                Ok(Ok(batch)) => group.push(batch),
                Ok(Err(e)) => return Some(Err(e)),
                Err(_) => {
                    return Some(Err(candle_core::Error::msg(format!(
                        "the data thread stopped with {} batches of the epoch still to make",
                        self.remaining
                    ))))
                }
            }
            self.remaining -= 1;
        }
        (!group.is_empty()).then_some(Ok(group))
    }
}

impl Drop for Prefetched {
    fn drop(&mut self) {
        // Dropping the receiver first makes the worker's next send fail, so it ends.
        let (_, closed) = std::sync::mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.receive, closed));
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
