//! Which tensors are alive when a forward pass runs: one schedule, read both by the summary's
//! memory estimate and by the lowered executor, so the peak the summary prints is the peak the
//! executor's schedule reaches.
//!
//! The pass runs the nodes some output depends on, in topological order, the model's inputs
//! first (they are all given before the first layer runs). Each tensor lives from
//! the node that makes it until the last node that reads it (until the end for a model output;
//! right after its own node for one nothing reads).

use std::collections::{HashMap, HashSet};

use super::graph::{Graph, NodeId, TensorRef};

/// The schedule of a forward pass and when each tensor is freed.
#[derive(Clone, Debug, PartialEq)]
pub struct Liveness {
    /// The nodes run, in order (inputs included).
    pub order: Vec<NodeId>,
    /// For each position of `order`, the tensors nothing reads after that node.
    pub frees: Vec<Vec<TensorRef>>,
}

impl Liveness {
    pub fn of(graph: &Graph) -> Liveness {
        let needed = needed_nodes(graph);
        // The model's inputs are all given before the first layer runs: they lead.
        let (mut order, rest): (Vec<NodeId>, Vec<NodeId>) = graph
            .order
            .iter()
            .copied()
            .filter(|id| needed.contains(id))
            .partition(|id| graph.node(*id).kind == "input");
        order.extend(rest);
        let outputs: HashSet<TensorRef> = graph.outputs.iter().map(|(_, t)| *t).collect();
        let mut last_use: HashMap<TensorRef, usize> = HashMap::new();
        for (i, &id) in order.iter().enumerate() {
            for port in 0..graph.node(id).outputs.len() as u16 {
                last_use.insert(TensorRef { node: id, port }, i);
            }
            for t in graph.inputs_of(id) {
                last_use.insert(t, i);
            }
        }
        let mut frees = vec![Vec::new(); order.len()];
        for (t, i) in last_use {
            if !outputs.contains(&t) {
                frees[i].push(t);
            }
        }
        for f in &mut frees {
            f.sort_by_key(|t| (t.node, t.port));
        }
        Liveness { order, frees }
    }

    /// The largest total `size` of the tensors alive at once, and the total of every tensor
    /// made; `size` may fail (an unbound dim, an overflow), and `None` from it or an overflow
    /// of the sums stops with the node at fault.
    pub fn peak_and_total<E>(
        &self,
        graph: &Graph,
        mut size: impl FnMut(TensorRef) -> Result<u64, E>,
        overflow: impl Fn(NodeId) -> E,
    ) -> Result<(u64, u64), E> {
        let (mut live, mut peak, mut total) = (0u64, 0u64, 0u64);
        let mut sizes: HashMap<TensorRef, u64> = HashMap::new();
        for (i, &id) in self.order.iter().enumerate() {
            for port in 0..graph.node(id).outputs.len() as u16 {
                let t = TensorRef { node: id, port };
                let bytes = size(t)?;
                sizes.insert(t, bytes);
                live = live.checked_add(bytes).ok_or_else(|| overflow(id))?;
                total = total.checked_add(bytes).ok_or_else(|| overflow(id))?;
            }
            peak = peak.max(live);
            for t in &self.frees[i] {
                live -= sizes.get(t).copied().unwrap_or(0).min(live);
            }
        }
        Ok((peak, total))
    }
}

/// Nodes some output depends on; the rest need not run.
pub fn needed_nodes(graph: &Graph) -> HashSet<NodeId> {
    let mut needed = HashSet::new();
    let mut stack: Vec<NodeId> = graph.outputs.iter().map(|(_, t)| t.node).collect();
    while let Some(id) = stack.pop() {
        if needed.insert(id) {
            stack.extend(graph.inputs_of(id).iter().map(|t| t.node));
        }
    }
    needed
}
