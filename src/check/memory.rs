//! Memory estimates: parameters, and activations for inference (peak of live tensors) and
//! for training (every activation kept for the backward pass, plus gradients and Adam state).

use std::collections::HashMap;

use super::cost::Analysis;
use crate::ir::dim::{Bindings, Dim};
use crate::ir::graph::Graph;

/// Bytes, at the dims' values; `None` where a dim is unbound.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memory {
    /// Parameters and buffers, stored as f32.
    pub params_bytes: u64,
    /// The largest total of tensors alive at once during a forward pass, inputs included.
    pub peak_activation_bytes: Option<u64>,
    /// Every node output, as autograd keeps them for the backward pass.
    pub saved_activation_bytes: Option<u64>,
    /// Parameters + peak activations.
    pub inference_bytes: Option<u64>,
    /// Parameters + gradients + Adam's two moments + saved activations.
    pub training_bytes: Option<u64>,
}

/// Bytes per parameter element: wick's parameters are f32.
const PARAM_BYTES: u64 = 4;

pub fn estimate(graph: &Graph, bindings: &Bindings, a: &Analysis) -> Memory {
    let params_bytes = a.total_params().saturating_add(a.buffers).saturating_mul(PARAM_BYTES);
    let (peak, saved) = activations(graph, bindings).unzip();
    let trainable = a.trainable.saturating_mul(PARAM_BYTES);
    Memory {
        params_bytes,
        peak_activation_bytes: peak,
        saved_activation_bytes: saved,
        inference_bytes: peak.map(|p| params_bytes.saturating_add(p)),
        training_bytes: saved
            .map(|s| params_bytes.saturating_add(trainable.saturating_mul(3)).saturating_add(s)),
    }
}

/// (peak live bytes, total bytes of all outputs), walking the topological order and freeing
/// each tensor after its last consumer.
fn activations(graph: &Graph, bindings: &Bindings) -> Option<(u64, u64)> {
    let position: HashMap<_, _> = graph.order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut last_use: HashMap<_, usize> = HashMap::new();
    for (i, &id) in graph.order.iter().enumerate() {
        for t in graph.inputs_of(id) {
            let e = last_use.entry(t.node).or_insert(i);
            *e = (*e).max(i);
        }
    }
    for (_, t) in &graph.outputs {
        last_use.insert(t.node, usize::MAX);
    }
    let mut frees: HashMap<usize, u64> = HashMap::new();
    let (mut live, mut peak, mut total) = (0u64, 0u64, 0u64);
    for (i, &id) in graph.order.iter().enumerate() {
        let node = graph.node(id);
        let mut bytes = 0u64;
        for t in &node.outputs {
            let n = Dim::product(&t.shape).eval(bindings)?.max(0) as u64;
            bytes = bytes.saturating_add(n.saturating_mul(t.dtype.size_bytes()));
        }
        live = live.saturating_add(bytes);
        total = total.saturating_add(bytes);
        peak = peak.max(live);
        let end = last_use.get(&id).copied().unwrap_or(position[&id]);
        if end != usize::MAX {
            let f = frees.entry(end).or_insert(0);
            *f = f.saturating_add(bytes);
        }
        live -= frees.remove(&i).unwrap_or(0).min(live);
    }
    Some((peak, total))
}
