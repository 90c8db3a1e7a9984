//! Memory estimates: parameters, and activations for inference (peak of live tensors) and
//! for training (every activation kept for the backward pass, plus gradients and Adam state).

use std::collections::HashMap;

use super::cost::{elements, Analysis};
use crate::ir::dim::Bindings;
use crate::ir::graph::{Graph, NodeId};

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

/// The estimate, and the node where it stopped fitting in 64 bits, if it did.
pub fn estimate(graph: &Graph, bindings: &Bindings, a: &Analysis) -> (Memory, Option<NodeId>) {
    let param_bytes = a
        .total_params()
        .checked_add(a.buffers)
        .and_then(|n| n.checked_mul(PARAM_BYTES))
        .zip(a.trainable.checked_mul(PARAM_BYTES * 3));
    // The figure is the model's, so the layer to point at is the one holding the most.
    let largest = a.nodes.iter().max_by_key(|(_, c)| c.params().saturating_add(c.buffers)).map(|(id, _)| *id);
    let mut overflow = if param_bytes.is_none() { largest } else { None };
    let (params_bytes, moments) = param_bytes.unwrap_or((u64::MAX, u64::MAX));
    let (peak, saved) = match activations(graph, bindings) {
        Ok(found) => found.unzip(),
        Err(id) => {
            overflow = overflow.or(Some(id));
            (Some(u64::MAX), Some(u64::MAX))
        }
    };
    let inference_bytes = peak.map(|p| params_bytes.checked_add(p));
    let training_bytes = saved.map(|s| params_bytes.checked_add(moments).and_then(|b| b.checked_add(s)));
    if inference_bytes == Some(None) || training_bytes == Some(None) {
        overflow = overflow.or(largest);
    }
    let memory = Memory {
        params_bytes,
        peak_activation_bytes: peak,
        saved_activation_bytes: saved,
        inference_bytes: inference_bytes.map(|b| b.unwrap_or(u64::MAX)),
        training_bytes: training_bytes.map(|b| b.unwrap_or(u64::MAX)),
    };
    (memory, overflow)
}

/// (peak live bytes, total bytes of all outputs), walking the topological order and freeing
/// each tensor after its last consumer; `Ok(None)` while a dim is unbound, `Err` with the node
/// whose outputs make a figure overflow.
fn activations(graph: &Graph, bindings: &Bindings) -> Result<Option<(u64, u64)>, NodeId> {
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
            let Some(n) = elements(&t.shape, bindings).map_err(|_| id)? else { return Ok(None) };
            bytes = n.checked_mul(t.dtype.size_bytes()).and_then(|b| b.checked_add(bytes)).ok_or(id)?;
        }
        live = live.checked_add(bytes).ok_or(id)?;
        total = total.checked_add(bytes).ok_or(id)?;
        peak = peak.max(live);
        let end = last_use.get(&id).copied().unwrap_or(position[&id]);
        if end != usize::MAX {
            let f = frees.entry(end).or_insert(0);
            *f = f.saturating_add(bytes);
        }
        live -= frees.remove(&i).unwrap_or(0).min(live);
    }
    Ok(Some((peak, total)))
}
