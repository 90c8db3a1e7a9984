//! `wick::emit::write_spec` on the catalog: every spec, compiled, stripped of what only an
//! elaborated graph has (its groups and origins, as an imported graph has none), written and
//! compiled again, has the same parameters at the same paths, the same figures and the same
//! summary rows.

use wick::emit::{write_spec, WriteOptions, Written};
use wick::ir::graph::Graph;
use wick::report::{RowKind, Summary};
use wick::{compile_file, compile_source, Compiled, Options};

fn compiled(path: &str) -> Compiled {
    let c = compile_file(path, &Options::default()).expect("readable spec");
    assert!(!c.diagnostics.has_errors(), "{path}: {}", c.render_diagnostics(wick::diag::RenderStyle::PLAIN));
    c
}

/// The graph of `c` as an importer would hand it over: no groups, no origins.
fn bare(c: &mut Compiled) -> Graph {
    let mut g = c.graph.take().expect("a graph");
    g.groups.clear();
    g.origins.clear();
    g
}

/// What a written spec must keep: parameters, totals, memory, ports and the layer rows.
fn figures(s: &Summary) -> String {
    let layers: Vec<String> = s
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Layer)
        .map(|r| {
            format!(
                "{} {} {:?} {} {} {} {:?} {} {:?}",
                r.path, r.op, r.output_shape, r.params, r.trainable, r.buffers, r.macs, r.frozen, r.tied_to
            )
        })
        .collect();
    format!(
        "params {} trainable {} frozen {} buffers {} shared {}\nmacs {:?}\nuncounted {:?}\nmemory {:?}\ninputs {:?}\noutputs {:?}\ndims {:?}\n{}",
        s.total_params,
        s.trainable_params,
        s.frozen_params,
        s.buffers,
        s.shared_params,
        s.macs,
        s.uncounted,
        s.memory,
        s.inputs,
        s.outputs,
        s.dims,
        layers.join("\n")
    )
}

/// Writes the spec at `path` and compiles the text; both compiles' summaries.
fn round_trip(path: &str) -> (Written, Compiled, Compiled) {
    let mut original = compiled(path);
    let graph = bare(&mut original);
    let written = write_spec(&graph, &WriteOptions::default()).unwrap_or_else(|e| panic!("{path}: {e}"));
    let again = compile_source("written.wick", &written.text, &Options::default());
    assert!(
        !again.diagnostics.has_errors(),
        "{path}:\n{}\n{}",
        written.text,
        again.render_diagnostics(wick::diag::RenderStyle::PLAIN)
    );
    original.graph = Some(graph);
    (written, original, again)
}

fn check(path: &str) -> Written {
    let (written, original, again) = round_trip(path);
    let (a, b) = (original.graph.as_ref().expect("graph"), again.graph.as_ref().expect("graph"));
    let keys = |g: &Graph| {
        let mut k: Vec<String> =
            g.parameters().iter().map(|(p, shape, kind)| format!("{p} {shape:?} {kind:?}")).collect();
        k.sort();
        k
    };
    assert_eq!(keys(a), keys(b), "{path}: parameter keys\n{}", written.text);
    assert!(written.renames.is_empty(), "{path}: {:?}", written.renames);
    let (sa, sb) = (original.summary(None).expect("summary"), again.summary(None).expect("summary"));
    let (fa, fb) = (figures(&sa), figures(&sb));
    if fa != fb {
        let diff: Vec<String> = fa
            .lines()
            .zip(fb.lines())
            .filter(|(x, y)| x != y)
            .take(5)
            .map(|(x, y)| format!("- {x}\n+ {y}"))
            .collect();
        panic!("{path}: summaries differ\n{}\n{}", diff.join("\n"), written.text);
    }
    written
}

/// Every `.wick` spec of the catalog.
fn catalog() -> Vec<String> {
    let mut specs: Vec<String> = std::fs::read_dir("specs")
        .expect("specs folder")
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".wick"))
        .collect();
    specs.sort();
    specs
}

#[test]
fn every_catalog_spec_round_trips_through_the_writer() {
    let mut failures = Vec::new();
    for path in catalog() {
        if let Err(e) = std::panic::catch_unwind(|| check(&path)) {
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
            failures.push(format!("{path}: {}", msg.chars().take(3000).collect::<String>()));
        }
    }
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn dump_for_reading() {
    for path in catalog() {
        let w = check(&path);
        let out = format!("/tmp/specout_{}", path.replace('/', "_"));
        std::fs::write(out, w.text).unwrap();
    }
}
