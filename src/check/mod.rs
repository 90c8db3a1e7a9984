//! Checks over the elaborated graph: structure (cycles, unused results) and the numbers —
//! parameters, buffers, MACs and memory — evaluated at the dims' values.

mod cost;
mod memory;
mod structure;

pub use cost::{analyze, Analysis, NodeCost};
pub use memory::Memory;
pub use structure::validate;
