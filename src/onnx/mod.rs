//! ONNX export and import: a checked graph and its weights as an ONNX model (`wick export`),
//! and an ONNX model as a graph wick can summarise, check and draw.
//!
//! [`proto`] holds the ONNX messages, written by hand for prost; [`export`] walks the graph in
//! topological order and maps each op to standard ONNX operators, one family per file;
//! [`import`] reads a file back into the IR (`wick compile model.onnx --summary`), and
//! [`to_spec`] writes what it read as a spec (`wick import`).

pub mod export;
pub mod import;
pub mod proto;
pub mod to_spec;
pub mod weights;

pub use export::{
    export, export_placed, ExportError, Exported, ExternalData, Initializer, Placement, Weights,
    DEFAULT_OPSET,
};
