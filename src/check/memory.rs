//! Memory estimates: parameters, and activations for inference (peak of live tensors) and
//! for training (every activation kept for the backward pass, plus gradients and Adam state).

use super::cost::{elements, Analysis};
use crate::ir::dim::Bindings;
use crate::ir::graph::{Graph, NodeId, TensorRef};
use crate::ir::liveness::Liveness;

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

impl Memory {
    /// Training memory with an optimizer that keeps `slots` tensors of state per parameter
    /// (Adam 2, SGD with momentum 1, plain SGD 0): parameters, `trainable` gradients and that
    /// state, and the saved activations. `training_bytes` is this with Adam's 2.
    pub fn training_bytes_with(&self, trainable: u64, slots: u64) -> Option<u64> {
        let per_param = trainable.checked_mul(PARAM_BYTES)?.checked_mul(slots.checked_add(1)?)?;
        self.params_bytes.checked_add(per_param)?.checked_add(self.saved_activation_bytes?)
    }
}

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

/// (peak live bytes, total bytes of all outputs) over the forward pass's schedule
/// ([`Liveness`], the executor's own); `Ok(None)` while a dim is unbound, `Err` with the node
/// whose outputs make a figure overflow.
fn activations(graph: &Graph, bindings: &Bindings) -> Result<Option<(u64, u64)>, NodeId> {
    let liveness = Liveness::of(graph);
    let size = |t: TensorRef| -> Result<u64, Option<NodeId>> {
        let ty = &graph.node(t.node).outputs[usize::from(t.port)];
        let n = elements(&ty.shape, bindings).map_err(|_| Some(t.node))?.ok_or(None)?;
        n.checked_mul(ty.dtype.size_bytes()).ok_or(Some(t.node))
    };
    match liveness.peak_and_total(graph, size, Some) {
        Ok(found) => Ok(Some(found)),
        Err(None) => Ok(None),
        Err(Some(id)) => Err(id),
    }
}
