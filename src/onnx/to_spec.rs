//! `wick import`: an ONNX model as a `.wick` spec, with weights that load into it.
//!
//! The file is read into the IR ([`super::import`]) and the graph written back as a spec
//! ([`crate::emit`]). Before anything is handed back, the written text is compiled again and
//! its parameters compared with the model's: a spec that would not take the weights, or would
//! count differently, is an error here rather than a file a user finds broken later.

use std::collections::HashMap;

use super::export::Weights;
use super::import::{self, ImportError};
use crate::diag::RenderStyle;
use crate::emit::{self, WriteError, WriteOptions};
use crate::Options;

/// A model written as a spec.
#[derive(Debug)]
pub struct Converted {
    /// The spec's text.
    pub text: String,
    /// The weights under the spec's parameter keys.
    pub weights: Weights,
    /// The model's name in the spec.
    pub model: String,
    /// The written spec's total parameters (equal to the model's: checked).
    pub params: u64,
    /// Inputs and outputs renamed because their ONNX names are not identifiers.
    pub io_renames: Vec<(String, String)>,
}

/// Why a model could not be written as a spec.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The model was read with errors (an operator whose output type is unknown): rendered.
    #[error("{0}")]
    Model(String),
    #[error("cannot write the model as a spec: {0}")]
    Write(#[from] WriteError),
    /// The written spec does not reproduce the model: a bug in the writer, reported rather
    /// than written.
    #[error("the written spec does not reproduce the model ({0}); please report this with the file")]
    Mismatch(String),
}

/// The model in `bytes` (the file `file_name`) as a spec named `spec_name` and its weights.
pub fn to_spec(
    bytes: &[u8],
    file_name: &str,
    spec_name: &str,
    opts: &Options,
) -> Result<Converted, ConvertError> {
    let imported = import::read(bytes, file_name, opts)?;
    if imported.diagnostics.has_errors() {
        let rendered = crate::diag::render_all(
            &imported.diagnostics,
            &crate::front::span::SourceMap::new(),
            RenderStyle::PLAIN,
        );
        return Err(ConvertError::Model(rendered.trim_end().to_string()));
    }
    let header = vec![format!("Imported from {file_name} by wick {}.", env!("CARGO_PKG_VERSION"))];
    let written = emit::write_spec(&imported.graph, &WriteOptions { header })?;
    let moved: HashMap<&str, &str> =
        written.renames.iter().map(|(old, new)| (old.as_str(), new.as_str())).collect();
    let expected: Vec<(String, Vec<crate::ir::dim::Dim>)> = imported
        .graph
        .parameters()
        .into_iter()
        .map(|(path, shape, _)| (moved.get(path.as_str()).map_or(path.clone(), |p| p.to_string()), shape))
        .collect();
    let weights: Weights = imported
        .weights
        .into_iter()
        .map(|(key, value)| (moved.get(key.as_str()).map_or(key.clone(), |k| k.to_string()), value))
        .collect();

    let again = crate::compile_source(spec_name, &written.text, &Options::default());
    let mismatch = |what: String| ConvertError::Mismatch(what);
    let (Some(graph), Ok(summary)) = (again.graph.as_ref(), again.summary(None)) else {
        let rendered = again.render_diagnostics(RenderStyle::PLAIN);
        return Err(mismatch(format!("it does not compile: {}", rendered.trim_end())));
    };
    let found: Vec<(String, Vec<crate::ir::dim::Dim>)> =
        graph.parameters().into_iter().map(|(path, shape, _)| (path, shape)).collect();
    if found != expected {
        let first = expected
            .iter()
            .zip(&found)
            .find(|(e, f)| e != f)
            .map(|(e, f)| format!("`{}` {:?} became `{}` {:?}", e.0, e.1, f.0, f.1))
            .unwrap_or_else(|| format!("{} parameters became {}", expected.len(), found.len()));
        return Err(mismatch(first));
    }
    for (key, _) in &expected {
        if !weights.contains_key(key) {
            return Err(mismatch(format!("no weights for `{key}`")));
        }
    }
    Ok(Converted {
        text: written.text,
        weights,
        model: graph.name.clone(),
        params: summary.total_params,
        io_renames: written.io_renames,
    })
}
