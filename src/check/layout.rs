//! Sequence layouts. A sequence layer reads `[N, L, E]` (`batch_first=true`) or `[L, N, E]`;
//! fed by a layer of the other layout, it still type-checks (both are rank 3) while attention
//! runs over the batch axis. The defaults cannot all agree without changing a catalog spec:
//! `MultiheadAttention`, the recurrent layers and the transformer blocks keep PyTorch's
//! sequence-first default, the position and token layers are batch-first as embeddings make
//! them. So a disagreement along the way is a warning.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::graph::{Graph, Node, NodeId, TensorRef};
use crate::ir::tensor::TensorType;
use crate::ops::AttrValue;

/// The layout of a sequence tensor and the layer that gave it.
#[derive(Clone, Copy)]
struct Layout {
    batch_first: bool,
    by: NodeId,
}

fn axes(batch_first: bool) -> &'static str {
    if batch_first {
        "[N, L, E] (batch_first=true)"
    } else {
        "[L, N, E] (batch_first=false)"
    }
}

/// Ops that move axes: what they output is in no layout that follows from their input's.
const REARRANGING: &[&str] = &["permute", "transpose", "reshape"];

/// A warning for each sequence layer fed a tensor laid out the other way.
pub fn layout_disagreements(graph: &Graph) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let mut layouts: HashMap<TensorRef, Layout> = HashMap::new();
    for &id in &graph.order {
        let node = graph.node(id);
        if node.failed() {
            continue;
        }
        let inputs = graph.inputs_of(id);
        let sequence = |t: &TensorRef| graph.tensor_type(*t).is_some_and(|ty| ty.rank() == 3);
        let made = match node.attrs.get("batch_first") {
            AttrValue::Bool(batch_first) => {
                for feeding in inputs.iter().filter(|t| sequence(t)).filter_map(|t| layouts.get(t)) {
                    if feeding.batch_first != *batch_first {
                        diags.push(disagreement(graph, id, node, *feeding));
                    }
                }
                Some(Layout { batch_first: *batch_first, by: id })
            }
            _ if REARRANGING.contains(&node.kind) => None,
            // A residual `x + attended` joins the layout from before a sequence layer with the
            // one it made: the later layer's holds from there on (nodes are numbered in order).
            _ => inputs
                .iter()
                .filter_map(|t| Some((layouts.get(t).copied()?, graph.tensor_type(*t)?)))
                .filter(|(_, input)| node.outputs.first().is_some_and(|o| same_leading_axes(input, o)))
                .map(|(layout, _)| layout)
                .max_by_key(|layout| layout.by),
        };
        let Some(layout) = made else { continue };
        for (port, ty) in node.outputs.iter().enumerate() {
            if ty.rank() == 3 {
                layouts.insert(TensorRef { node: id, port: port as u16 }, layout);
            }
        }
    }
    diags
}

/// Whether a layer keeps the batch and sequence axes where they were (`Linear`, `Dropout`,
/// `LayerNorm`, `+`).
fn same_leading_axes(input: &TensorType, output: &TensorType) -> bool {
    input.rank() == 3 && output.rank() == 3 && input.shape[..2] == output.shape[..2]
}

fn disagreement(graph: &Graph, id: NodeId, node: &Node, feeding: Layout) -> Diagnostic {
    let producer = graph.node(feeding.by);
    Diagnostic::warning(
        "W0403",
        format!(
            "`{}` ({}) reads its input as {}, but `{}` ({}) laid it out as {}",
            node.path,
            node.kind,
            axes(!feeding.batch_first),
            producer.path,
            producer.kind,
            axes(feeding.batch_first)
        ),
    )
    .at(graph.origin(id).span, "reads the sequence along the other axis")
    .also(graph.origin(feeding.by).span, "laid out here")
    .help(
        "give both the same `batch_first`: MultiheadAttention, LSTM, GRU, RNN and the transformer \
         blocks default to false as in PyTorch, the position and token layers to true",
    )
}
