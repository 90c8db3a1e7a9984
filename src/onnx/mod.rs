//! ONNX export: a checked graph and its weights as an ONNX model (`wick export`).
//!
//! [`proto`] holds the ONNX messages, written by hand for prost; [`export`] walks the graph in
//! topological order and maps each op to standard ONNX operators, one family per file.

pub mod export;
pub mod proto;
pub mod weights;

pub use export::{export, ExportError, Initializer, Weights, DEFAULT_OPSET};
