//! The graph IR: op instances as nodes, typed tensors as edges, symbolic dims.

pub mod dim;
pub mod graph;
pub mod liveness;
pub mod tensor;
