//! Checks over the elaborated graph: structure (cycles, unused results) and the numbers —
//! parameters, buffers, MACs and memory — evaluated at the dims' values.

mod cost;
mod layout;
mod memory;
mod structure;

pub use cost::{analyze, elements, Analysis, Figure, NodeCost};
pub use memory::Memory;
pub use structure::validate;

use crate::diag::Diagnostic;
use crate::ir::graph::Graph;

/// An error for each figure of `analysis` that does not fit in 64 bits, at the layer that made
/// it overflow: a saturated total printed as a number would read as a real one.
pub fn overflows(graph: &Graph, analysis: &Analysis) -> Vec<Diagnostic> {
    let counted = |f: Figure| analysis.overflows.iter().any(|(o, _)| *o == f);
    // The memory estimate is made of the counts: when one overflowed, that error says it.
    let derived = counted(Figure::Params) || counted(Figure::Buffers);
    analysis
        .overflows
        .iter()
        .filter(|(figure, _)| !(derived && *figure == Figure::Memory))
        .map(|(figure, node)| {
            Diagnostic::error("E0306", format!("the model's {} does not fit in 64 bits", figure.name()))
                .at(graph.origin(*node).span, format!("the {} overflows here", figure.name()))
                .help("check the dims' values (`dim`, `--bind`) and the layer sizes")
        })
        .collect()
}
