//! Structural validation: the graph is a DAG, every result is used, every input is fed, and
//! sequence layers agree on their layout.

use petgraph::algo::toposort;

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::graph::Graph;

/// Warnings for results never used and inputs never read; an error if the graph has a cycle.
pub fn validate(graph: &Graph) -> Diagnostics {
    let mut diags = Diagnostics::default();
    // Elaboration reports cycles between bindings; this guards the invariant itself.
    // (`toposort` is iterative; petgraph's `is_cyclic_directed` recurses once per node and
    // overflows the stack on deep graphs.)
    if toposort(&graph.g, None).is_err() {
        diags.push(Diagnostic::error("E0401", "the graph has a cycle"));
    }
    for &id in &graph.order {
        let node = graph.node(id);
        if node.failed() || graph.consumers(id) > 0 || graph.outputs.iter().any(|(_, t)| t.node == id) {
            continue;
        }
        let span = graph.origin(id).span;
        let d = if node.kind == "input" {
            Diagnostic::warning("W0402", format!("input `{}` is never used", node.path))
                .at(span, "declared here")
        } else {
            Diagnostic::warning(
                "W0401",
                format!("the result of `{}` ({}) is never used", node.path, node.kind),
            )
            .at(span, "computed here, then dropped")
            .help("use it, return it from the block, or make it an `output`")
        };
        diags.push(d);
    }
    diags.extend(super::layout::layout_disagreements(graph));
    diags
}
