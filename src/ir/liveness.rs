//! Which tensors are alive when a forward pass runs: one schedule, read both by the summary's
//! memory estimate and by the lowered executor, so the peak the summary prints is the peak the
//! executor's schedule reaches.
//!
//! The pass runs the nodes some output depends on, in topological order, the model's inputs
//! first (they are all given before the first layer runs). Each tensor lives from
//! the node that makes it until the last node that reads it (until the end for a model output;
//! right after its own node for one nothing reads).

use std::collections::HashMap;

use petgraph::visit::NodeIndexable;

use super::graph::{Graph, NodeId, TensorRef};

/// The schedule of a forward pass and when each tensor is freed.
#[derive(Clone, Debug, PartialEq)]
pub struct Liveness {
    /// The nodes run, in order (inputs included).
    pub order: Vec<NodeId>,
    /// For each position of `order`, the tensors nothing reads after that node.
    pub frees: Vec<Vec<TensorRef>>,
}

/// A dense number for each output of the nodes of a schedule, so that per-tensor facts live
/// in vectors instead of hash maps: a node's outputs are numbered from its `first` on.
struct Numbering {
    first: Vec<usize>,
    count: usize,
}

impl Numbering {
    fn of(graph: &Graph, order: &[NodeId]) -> Numbering {
        let mut first = vec![usize::MAX; graph.g.node_bound()];
        let mut count = 0;
        for &id in order {
            first[id.0.index()] = count;
            count += graph.node(id).outputs.len();
        }
        Numbering { first, count }
    }

    /// The number of `t`, when its node is in the schedule and made it.
    fn get(&self, graph: &Graph, t: TensorRef) -> Option<usize> {
        let first = *self.first.get(t.node.0.index())?;
        (first != usize::MAX && usize::from(t.port) < graph.node(t.node).outputs.len())
            .then_some(first + usize::from(t.port))
    }
}

impl Liveness {
    pub fn of(graph: &Graph) -> Liveness {
        let needed = needed_nodes(graph);
        // The model's inputs are all given before the first layer runs: they lead.
        let (mut order, rest): (Vec<NodeId>, Vec<NodeId>) = graph
            .order
            .iter()
            .copied()
            .filter(|id| needed[id.0.index()])
            .partition(|id| graph.node(*id).kind == "input");
        order.extend(rest);
        let numbers = Numbering::of(graph, &order);
        let mut last_use = vec![0; numbers.count];
        // A tensor its node did not make (a failed node's) is read all the same: kept aside.
        let mut stray: HashMap<TensorRef, usize> = HashMap::new();
        let mut refs = Vec::new();
        for (i, &id) in order.iter().enumerate() {
            let first = numbers.first[id.0.index()];
            last_use[first..first + graph.node(id).outputs.len()].fill(i);
            graph.inputs_into(id, &mut refs);
            for &t in &refs {
                match numbers.get(graph, t) {
                    Some(n) => last_use[n] = i,
                    None => {
                        stray.insert(t, i);
                    }
                }
            }
        }
        let mut kept = vec![false; numbers.count];
        for (_, t) in &graph.outputs {
            match numbers.get(graph, *t) {
                Some(n) => kept[n] = true,
                None => {
                    stray.remove(t);
                }
            }
        }
        let mut frees = vec![Vec::new(); order.len()];
        for &id in &order {
            let first = numbers.first[id.0.index()];
            for port in 0..graph.node(id).outputs.len() {
                if !kept[first + port] {
                    frees[last_use[first + port]].push(TensorRef { node: id, port: port as u16 });
                }
            }
        }
        for (t, i) in stray {
            frees[i].push(t);
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
        let numbers = Numbering::of(graph, &self.order);
        let mut sizes = vec![0u64; numbers.count];
        for (i, &id) in self.order.iter().enumerate() {
            let first = numbers.first[id.0.index()];
            for port in 0..graph.node(id).outputs.len() {
                let bytes = size(TensorRef { node: id, port: port as u16 })?;
                sizes[first + port] = bytes;
                live = live.checked_add(bytes).ok_or_else(|| overflow(id))?;
                total = total.checked_add(bytes).ok_or_else(|| overflow(id))?;
            }
            peak = peak.max(live);
            for t in &self.frees[i] {
                live -= numbers.get(graph, *t).map_or(0, |n| sizes[n]).min(live);
            }
        }
        Ok((peak, total))
    }
}

/// Whether some output depends on each node, by node index (the rest need not run).
fn needed_nodes(graph: &Graph) -> Vec<bool> {
    let mut needed = vec![false; graph.g.node_bound()];
    let mut stack: Vec<NodeId> = graph.outputs.iter().map(|(_, t)| t.node).collect();
    let mut refs = Vec::new();
    while let Some(id) = stack.pop() {
        if !std::mem::replace(&mut needed[id.0.index()], true) {
            graph.inputs_into(id, &mut refs);
            stack.extend(refs.iter().map(|t| t.node));
        }
    }
    needed
}
