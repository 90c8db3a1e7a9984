//! The model at every batch size a run feeds it. A lowered model has its batch dim bound, so
//! the model is lowered at the configured size and again for each split's short last batch
//! (`rows % batch`), all on one set of parameters: the loop trains and validates on every row,
//! as PyTorch's `DataLoader` does by default (`drop_last=False`).

use crate::lower::LowerError;
use crate::{Lowered, Model};

/// One model lowered at several batch sizes. Every lowering shares the parameters, buffers and
/// forward-pass count of [`full`](Nets::full), so checkpointing or loading that one is
/// checkpointing or loading them all.
pub struct Nets {
    full: Lowered,
    batch: usize,
    /// Lowerings for short batches, with their row counts.
    short: Vec<(usize, Lowered)>,
}

impl Nets {
    /// `full` (built from `model`), and `model` lowered again with its dim `batch_dim` bound
    /// to each remainder that batches of `full`'s size leave of a split of `rows`.
    pub fn build(model: &Model, full: Lowered, batch_dim: &str, rows: &[usize]) -> Result<Nets, LowerError> {
        let batch = match full.inputs().first().and_then(|i| i.dims.first()) {
            Some(b) if *b > 0 => *b,
            _ => return Err(LowerError::Usage(format!("model {} has no batched input", full.name))),
        };
        let mut short: Vec<(usize, Lowered)> = Vec::new();
        for rest in rows.iter().map(|n| n % batch).filter(|r| *r > 0) {
            if short.iter().all(|(r, _)| *r != rest) {
                short.push((rest, model.build_sharing(&full, &[(batch_dim.to_string(), rest as i64)])?));
            }
        }
        Ok(Nets { full, batch, short })
    }

    /// [`Lowered::hold_in_eval`] on every lowering; the paths held.
    pub fn hold_in_eval(&mut self, hold: impl Fn(&str, &str) -> bool) -> Vec<String> {
        for (_, net) in &mut self.short {
            net.hold_in_eval(&hold);
        }
        self.full.hold_in_eval(&hold)
    }

    /// The model at the configured batch size; its parameters are every lowering's.
    pub fn full(&self) -> &Lowered {
        &self.full
    }

    /// The configured batch size: every batch but a split's last has this many rows.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// The lowering that takes a batch of `rows`.
    pub fn for_rows(&self, rows: usize) -> candle_core::Result<&Lowered> {
        if rows == self.batch {
            return Ok(&self.full);
        }
        match self.short.iter().find(|(r, _)| *r == rows) {
            Some((_, net)) => Ok(net),
            None => candle_core::bail!(
                "model {} was not built for a batch of {rows} rows (batch size {})",
                self.full.name,
                self.batch
            ),
        }
    }
}
