//! Parameters, buffers and MACs per node and in total, at the dims' values.

use super::memory::{estimate, Memory};
use crate::ir::dim::{Bindings, Dim};
use crate::ir::graph::{Graph, NodeId};
use crate::ops::{Cost, ParamKind};

/// The numbers of one node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeCost {
    pub trainable: u64,
    pub frozen: u64,
    pub buffers: u64,
    /// Elements of tied parameters: another layer's tensors, counted there.
    pub shared: u64,
    /// `None` when the op has no cost rule.
    pub macs: Option<Dim>,
}

impl NodeCost {
    pub fn params(&self) -> u64 {
        self.trainable + self.frozen
    }
}

/// The numbers of the whole graph.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// In topological order.
    pub nodes: Vec<(NodeId, NodeCost)>,
    pub trainable: u64,
    pub frozen: u64,
    pub buffers: u64,
    /// Elements used by more than one layer through `tie=` (counted once, at the owner).
    pub shared: u64,
    /// Total MACs of the counted ops, symbolic where dims are unbound.
    pub macs: Dim,
    /// Ops without a cost rule, by kind.
    pub uncounted: Vec<&'static str>,
    /// Departures from the MAC convention by the counted ops, each once.
    pub cost_notes: Vec<&'static str>,
    pub memory: Memory,
}

impl Analysis {
    pub fn total_params(&self) -> u64 {
        self.trainable + self.frozen
    }
}

/// Count everything in `graph` with the values in `bindings`.
pub fn analyze(graph: &Graph, bindings: &Bindings) -> Analysis {
    let mut a = Analysis::default();
    for &id in &graph.order {
        let node = graph.node(id);
        let mut c = NodeCost::default();
        for p in &node.params {
            let n = Dim::product(&p.shape).eval(bindings).unwrap_or(0).max(0) as u64;
            if node.tied_to(&p.name).is_some() {
                c.shared = c.shared.saturating_add(n);
                continue;
            }
            match (p.kind, node.frozen) {
                (ParamKind::Buffer, _) => c.buffers = c.buffers.saturating_add(n),
                (ParamKind::Weight, true) => c.frozen = c.frozen.saturating_add(n),
                (ParamKind::Weight, false) => c.trainable = c.trainable.saturating_add(n),
            }
        }
        if !node.failed() {
            let inputs: Vec<_> =
                graph.inputs_of(id).iter().filter_map(|t| graph.tensor_type(*t).cloned()).collect();
            match node.op.cost(&inputs, &node.outputs) {
                Cost::Macs(m) => {
                    if let Some(note) = node.op.cost_note().filter(|n| !a.cost_notes.contains(n)) {
                        a.cost_notes.push(note);
                    }
                    let m = m.substitute(bindings);
                    a.macs = a.macs.add(&m);
                    c.macs = Some(m);
                }
                Cost::Uncounted => {
                    if !a.uncounted.contains(&node.kind) {
                        a.uncounted.push(node.kind);
                    }
                }
            }
        }
        a.trainable = a.trainable.saturating_add(c.trainable);
        a.frozen = a.frozen.saturating_add(c.frozen);
        a.buffers = a.buffers.saturating_add(c.buffers);
        a.shared = a.shared.saturating_add(c.shared);
        a.nodes.push((id, c));
    }
    a.memory = estimate(graph, bindings, &a);
    a
}
