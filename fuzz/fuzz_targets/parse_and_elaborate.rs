//! Bytes -> text (lossy) -> parse, elaborate, check; then render the diagnostics and, when a
//! model came out, its summary. Any panic, overflow trap or runaway allocation is a bug.
//!
//! NUL bytes split the input into files: the first is the root, the others are `a.wick`,
//! `b.wick`, `c.yaml` and so on, so imports (and their cycles) are fuzzed too. A root that
//! starts like a YAML document (`---`, `dims:`, `models:`, ...) is read as YAML.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use wick::diag::RenderStyle;
use wick::report::{self, TableStyle};

/// A node cap (and so a work budget) far below the default: the budgets' limits are tested by
/// the reliability suite, and an instrumented build takes seconds per 100,000 steps, so inputs
/// that run to the default budget would only be reported as timeouts.
const MAX_NODES: usize = 5_000;
const IMPORTS: [&str; 4] = ["a.wick", "b.wick", "c.yaml", "d.wick"];
const YAML_STARTS: [&str; 6] = ["---", "dims:", "models:", "blocks:", "use:", "train:"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let root_text = parts.next().unwrap_or("");
    let yaml = YAML_STARTS.iter().any(|s| root_text.starts_with(s));
    let root = if yaml { "fuzz.yaml" } else { "fuzz.wick" };
    let mut files = BTreeMap::new();
    files.insert(root.to_string(), root_text.to_string());
    for (name, part) in IMPORTS.iter().zip(parts) {
        files.insert(name.to_string(), part.to_string());
    }
    let opts = wick::Options { max_nodes: Some(MAX_NODES), ..wick::Options::default() };
    let c = wick::compile_files(root, files, &opts);
    let _ = c.render_diagnostics(RenderStyle::PLAIN);
    let _ = c.render_diagnostics(RenderStyle { fancy: true, width: 80 });
    if let Some(summary) = c.partial_summary(None) {
        let _ = report::render_table(&summary, TableStyle { unicode: true, color: false });
        let _ = report::render_json(&summary);
    }
});
