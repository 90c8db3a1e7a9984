//! wick: a declarative model-graph compiler.
//!
//! A spec (`.wick` text or YAML) goes through one pipeline, one folder per stage:
//!
//! ```text
//! front (parse) -> AST -> elab (blocks, repeat, if) -> ir::Graph -> check (validate, count) -> report
//! ```
//!
//! - [`front`]: both surfaces parse into one [`front::ast::Module`]; every node has a span.
//! - [`elab`]: instantiates blocks and unrolls `repeat` into a [`ir::graph::Graph`], each op's
//!   output types inferred as it is added ([`ir::graph::NodeDraft`], the graph's one way in;
//!   symbolic dims stay symbolic).
//! - [`ops`]: one file per op: signature, shape rule, parameters, cost.
//! - [`check`]: structural validation and the numbers (params, buffers, MACs, memory).
//! - [`report`]: the summary as a table, JSON, CSV or Markdown.
//! - [`image`]: grids of images and PNG files, for sample grids.
//! - `lower` (the `lower` feature, on by default): the graph as a candle computation
//!   ([`Model`] -> [`Lowered`]), forward and backward, with weights in safetensors keyed like
//!   PyTorch `state_dict`s. With it, `sample`: a generator run on seeded latent draws.
//!
//! ```
//! let spec = "dim N = 1\nmodel Tiny { input x: [N, 4]\n output y = x |> fc: Linear(3) }";
//! let c = wick::compile_source("tiny.wick", spec, &wick::Options::default());
//! let summary = c.summary(None).expect("the spec has no errors");
//! assert_eq!(summary.total_params, 15);
//!
//! // A spec with errors has no summary, only its diagnostics.
//! let bad = wick::compile_source("bad.wick", "model M { input x: [1, 4]\n output y = x |> Lnear(3) }", &Default::default());
//! assert!(matches!(bad.summary(None), Err(wick::SummaryError::Errors { count: 1, .. })));
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::dbg_macro)
)]
// Parse errors carry their whole diagnostic; they are off the hot path, so boxing buys nothing.
#![allow(clippy::result_large_err)]

pub mod check;
pub mod diag;
pub mod elab;
pub mod emit;
pub mod eval;
pub mod front;
pub mod image;
pub mod ir;
#[cfg(feature = "lower")]
pub mod lower;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod ops;
pub mod report;
#[cfg(feature = "lower")]
pub mod sample;
#[cfg(feature = "lower")]
pub mod train;
/// Without the `lower` feature, the one part of training the compiler half uses: its checked
/// reader and atomic writer (`graph -o` replaces a drawing as a run replaces its files).
#[cfg(not(feature = "lower"))]
pub mod train {
    pub mod files;
}

use diag::Diagnostics;
use elab::imports::{load, Files, Loaded};
use front::span::SourceMap;
use ir::graph::Graph;

pub use elab::ElabOptions as Options;
#[cfg(feature = "lower")]
pub use lower::{Lowered, Model};

/// The result of compiling a spec: the graph (possibly partial), its numbers and the
/// diagnostics.
#[derive(Debug)]
pub struct Compiled {
    pub sources: SourceMap,
    pub graph: Option<Graph>,
    pub analysis: Option<check::Analysis>,
    pub diagnostics: Diagnostics,
    /// The root file's `train` section, read by `wick train`.
    pub train: Option<front::ast::ConfigValue>,
}

/// Why a compile has no summary: errors in the spec (rendered), or no model to summarise.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("the spec has {count} error(s):\n{rendered}")]
    Errors { count: usize, rendered: String },
    #[error("the spec has no model")]
    NoModel,
}

impl Compiled {
    /// The summary folded to `depth`; the spec's errors when it has any.
    pub fn summary(&self, depth: Option<usize>) -> Result<report::Summary, SummaryError> {
        if self.diagnostics.has_errors() {
            return Err(SummaryError::Errors {
                count: self.diagnostics.error_count(),
                rendered: self.render_diagnostics(diag::RenderStyle::PLAIN),
            });
        }
        self.partial_summary(depth).ok_or(SummaryError::NoModel)
    }

    /// What was built, summarised even when the spec has errors (the CLI shows the table up
    /// to the failing layer): `complete` is false then.
    pub fn partial_summary(&self, depth: Option<usize>) -> Option<report::Summary> {
        let mut s = report::summarize(self.graph.as_ref()?, self.analysis.as_ref()?, depth);
        s.complete &= !self.diagnostics.has_errors();
        Some(s)
    }

    /// Render the diagnostics.
    pub fn render_diagnostics(&self, style: diag::RenderStyle) -> String {
        diag::render_all(&self.diagnostics, &self.sources, style)
    }
}

/// Compile a spec file and the files it imports. `Err` only when the file itself cannot be read.
/// An `.onnx` file is read as a model (`onnx::import`), its problems diagnostics.
pub fn compile_file(path: &str, opts: &Options) -> std::io::Result<Compiled> {
    #[cfg(feature = "onnx")]
    if path.to_ascii_lowercase().ends_with(".onnx") {
        return onnx::import::compile_file(path, opts);
    }
    Ok(finish(load(path, &Files::Disk)?, opts))
}

/// Compile spec text held in memory; `use` finds nothing (no file is read).
pub fn compile_source(name: &str, text: &str, opts: &Options) -> Compiled {
    let mut files = std::collections::BTreeMap::new();
    files.insert(name.to_string(), text.to_string());
    compile_files(name, files, opts)
}

/// Compile from in-memory files (the root and what it imports), as tests and fuzzers do.
pub fn compile_files(
    root: &str,
    files: std::collections::BTreeMap<String, String>,
    opts: &Options,
) -> Compiled {
    match load(root, &Files::Memory(files)) {
        Ok(loaded) => finish(loaded, opts),
        Err(e) => {
            let mut diagnostics = Diagnostics::default();
            diagnostics.push(diag::Diagnostic::error("E0111", format!("cannot read `{root}`: {e}")));
            Compiled { sources: SourceMap::new(), graph: None, analysis: None, diagnostics, train: None }
        }
    }
}

fn finish(loaded: Loaded, opts: &Options) -> Compiled {
    let Loaded { sources, modules, mut diags } = loaded;
    let train = train_section(&modules, &mut diags);
    if diags.has_errors() {
        return Compiled { sources, graph: None, analysis: None, diagnostics: diags, train };
    }
    let (graph, elab_diags) = elab::elaborate(&modules, opts);
    // The syntax tree is done with: freed before the graph is counted and summarised (the
    // analysis and a summary's rows would otherwise come on top of it).
    drop(modules);
    diags.extend(elab_diags);
    analyzed(sources, graph, diags, train)
}

/// A built graph validated and counted, its diagnostics added to `diags`.
pub(crate) fn analyzed(
    sources: SourceMap,
    graph: Option<Graph>,
    mut diags: Diagnostics,
    train: Option<front::ast::ConfigValue>,
) -> Compiled {
    let analysis = graph.as_ref().map(|g| {
        // "Never used" is noise when an error stopped the consumer from being built.
        let structural = check::validate(g);
        let had_errors = diags.has_errors();
        for d in structural.items {
            if d.is_error() || !had_errors {
                diags.push(d);
            }
        }
        let analysis = check::analyze(g, &g.bindings());
        for d in check::overflows(g, &analysis) {
            diags.push(d);
        }
        analysis
    });
    Compiled { sources, graph, analysis, diagnostics: diags, train }
}

/// The root file's one `train` section; a second is an error.
fn train_section(modules: &[front::ast::Module], diags: &mut Diagnostics) -> Option<front::ast::ConfigValue> {
    let mut sections = modules.first()?.items.iter().filter_map(|i| match i {
        front::ast::Item::Train(v) => Some(v),
        _ => None,
    });
    let first = sections.next()?;
    if let Some(second) = sections.next() {
        diags.push(
            diag::Diagnostic::error("E0113", "a spec has one `train` section")
                .at(second.span, "second `train` section")
                .also(first.span, "first here"),
        );
    }
    Some(first.clone())
}
