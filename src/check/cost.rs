//! Parameters, buffers and MACs per node and in total, at the dims' values.

use super::memory::{estimate, Memory};
use crate::ir::dim::{Bindings, Dim};
use crate::ir::graph::{Graph, NodeId, TensorRef};
use crate::ir::tensor::TensorType;
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
        self.trainable.saturating_add(self.frozen)
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
    /// Figures that do not fit in 64 bits (they stop at the largest value), each with the
    /// first node that made it overflow.
    pub overflows: Vec<(Figure, NodeId)>,
}

/// A figure the analysis counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    Params,
    Buffers,
    Macs,
    Memory,
}

impl Figure {
    pub fn name(self) -> &'static str {
        match self {
            Figure::Params => "parameter count",
            Figure::Buffers => "buffer count",
            Figure::Macs => "MAC count",
            Figure::Memory => "memory estimate",
        }
    }
}

impl Analysis {
    pub fn total_params(&self) -> u64 {
        self.trainable.saturating_add(self.frozen)
    }

    /// Note that `figure` overflowed at `node`, once per figure.
    pub(super) fn overflowed(&mut self, figure: Figure, node: NodeId) {
        if !self.overflows.iter().any(|(f, _)| *f == figure) {
            self.overflows.push((figure, node));
        }
    }

    /// `a + b`, or the largest value with the overflow noted.
    fn add(&mut self, figure: Figure, node: NodeId, a: u64, b: u64) -> u64 {
        a.checked_add(b).unwrap_or_else(|| {
            self.overflowed(figure, node);
            u64::MAX
        })
    }
}

/// A count that does not fit in 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

/// The elements of a shape at the dims' values: `Ok(None)` while a dim is unbound.
pub fn elements(shape: &[Dim], bindings: &Bindings) -> Result<Option<u64>, Overflow> {
    // Each dim's value first: a product of constants allocates nothing.
    let n = shape.iter().fold(Dim::one(), |n, d| n.mul(&d.substitute(bindings)));
    if n.is_saturated() {
        return Err(Overflow);
    }
    Ok(n.as_const().map(|v| v.max(0) as u64))
}

/// Count everything in `graph` with the values in `bindings`.
pub fn analyze(graph: &Graph, bindings: &Bindings) -> Analysis {
    let mut a = Analysis { nodes: Vec::with_capacity(graph.order.len()), ..Analysis::default() };
    let (mut refs, mut copies) = (Vec::new(), Vec::new());
    for &id in &graph.order {
        let node = graph.node(id);
        let mut c = NodeCost::default();
        for p in &node.params {
            let figure = if p.kind == ParamKind::Buffer { Figure::Buffers } else { Figure::Params };
            let n = elements(&p.shape, bindings).unwrap_or_else(|Overflow| {
                a.overflowed(figure, id);
                Some(u64::MAX)
            });
            let n = n.unwrap_or(0);
            if node.tied_to(&p.name).is_some() {
                c.shared = c.shared.saturating_add(n);
                continue;
            }
            match (p.kind, node.frozen) {
                (ParamKind::Buffer, _) => c.buffers = a.add(figure, id, c.buffers, n),
                (ParamKind::Index, _) => {}
                (ParamKind::Weight, true) => c.frozen = a.add(figure, id, c.frozen, n),
                (ParamKind::Weight, false) => c.trainable = a.add(figure, id, c.trainable, n),
            }
        }
        if c.trainable.checked_add(c.frozen).is_none() {
            a.overflowed(Figure::Params, id);
        }
        if !node.failed() {
            graph.inputs_into(id, &mut refs);
            match node.op.cost(input_types(graph, &refs, &mut copies), &node.outputs) {
                Cost::Macs(m) => {
                    if let Some(note) = node.op.cost_note().filter(|n| !a.cost_notes.contains(n)) {
                        a.cost_notes.push(note);
                    }
                    let m = m.substitute(bindings);
                    a.macs = a.macs.add(&m);
                    if m.is_saturated() || a.macs.is_saturated() {
                        a.overflowed(Figure::Macs, id);
                    }
                    c.macs = Some(m);
                }
                Cost::Uncounted => {
                    if !a.uncounted.contains(&node.kind) {
                        a.uncounted.push(node.kind);
                    }
                }
            }
        }
        a.trainable = a.add(Figure::Params, id, a.trainable, c.trainable);
        a.frozen = a.add(Figure::Params, id, a.frozen, c.frozen);
        if a.trainable.checked_add(a.frozen).is_none() {
            a.overflowed(Figure::Params, id);
        }
        a.buffers = a.add(Figure::Buffers, id, a.buffers, c.buffers);
        a.shared = a.shared.saturating_add(c.shared);
        a.nodes.push((id, c));
    }
    let (memory, overflow) = estimate(graph, bindings, &a);
    a.memory = memory;
    if let Some(id) = overflow {
        a.overflowed(Figure::Memory, id);
    }
    a
}

/// The types of the tensors `refs` (those inferred) as one slice for [`crate::ops::Op::cost`]:
/// a single input's is borrowed from its node; several are copied into `copies`, whose shape
/// vectors are reused from node to node.
fn input_types<'g>(
    graph: &'g Graph,
    refs: &[TensorRef],
    copies: &'g mut Vec<TensorType>,
) -> &'g [TensorType] {
    if let [only] = refs {
        return graph.tensor_type(*only).map_or(&[], std::slice::from_ref);
    }
    let mut n = 0;
    for ty in refs.iter().filter_map(|t| graph.tensor_type(*t)) {
        match copies.get_mut(n) {
            Some(copy) => {
                copy.dtype = ty.dtype;
                copy.shape.clone_from(&ty.shape);
            }
            None => copies.push(ty.clone()),
        }
        n += 1;
    }
    &copies[..n]
}
