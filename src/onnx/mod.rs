//! ONNX export and import: a checked graph and its weights as an ONNX model (`wick export`),
//! and an ONNX model as a graph wick can summarise, check and draw.
//!
//! [`proto`] holds the ONNX messages, written by hand for prost; [`export`] walks the graph in
//! topological order and maps each op to standard ONNX operators, one family per file;
//! [`import`] reads a file back into the IR (`wick compile model.onnx --summary`), and
//! [`to_spec`] writes what it read as a spec (`wick import`).
//!
//! A model's weights go inside its file, or, past protobuf's 2 GiB or on request, beside it as
//! ONNX external data ([`Placement`]); [`weights::write_exported`] writes both files, the weights
//! streamed to theirs, and import reads them back from the model's folder:
//!
//! ```
//! use wick::onnx::{self, weights, Initializer, Placement, Weights};
//!
//! let spec = "model M { input x: [1, 300]\n output y = x |> fc: Linear(300) }";
//! let graph = wick::compile_source("m.wick", spec, &wick::Options::default()).graph.unwrap();
//! let mut values = Weights::new();
//! values.insert("fc.weight".into(), Initializer::F32 { dims: vec![300, 300], data: vec![0.5; 90_000] });
//! values.insert("fc.bias".into(), Initializer::F32 { dims: vec![300], data: vec![0.0; 300] });
//!
//! let dir = std::env::temp_dir().join(format!("wick-onnx-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("m.onnx");
//! let location = weights::external_location(&path); // "m.onnx.data"
//! let exported = onnx::export_placed(&graph, &values, onnx::DEFAULT_OPSET, Placement::External(&location))?;
//! weights::write_exported(&exported, &values, &path)?;
//! assert_eq!(std::fs::metadata(dir.join("m.onnx.data"))?.len(), 361_200);
//!
//! let bytes = std::fs::read(&path)?;
//! let read = onnx::import::read(&bytes, path.to_str().unwrap(), &wick::Options::default())?;
//! assert_eq!(read.weights, values);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod export;
pub mod import;
pub mod proto;
pub mod to_spec;
pub mod weights;

pub use export::{
    export, export_placed, ExportError, Exported, ExternalData, Initializer, Placement, Weights,
    DEFAULT_OPSET,
};
