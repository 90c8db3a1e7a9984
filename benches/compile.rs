//! Time from spec text to a rendered summary: ResNet-18 and generated specs of 10,000 and
//! 100,000 layers. `cargo bench --bench compile` prints a Markdown table for BENCHMARKS.md;
//! under `cargo test --all-targets` it runs once each on 100 and 1,000 layers.
//!
//! Each figure is the median of several runs of the whole pipeline (load, parse, elaborate,
//! check, count, summarize, render the table), with nothing cached between runs.

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use wick::report::{render_table, TableStyle};

/// A chain of `layers` layers written out line by line, alternating Linear and ReLU.
fn generated_spec(layers: usize) -> String {
    let mut s = String::from("dim N = 1\n\nmodel Generated {\n    input x: [N, 64]\n    h = x\n");
    for i in 0..layers {
        if i % 2 == 0 {
            s.push_str(&format!("    h = h |> fc{i}: Linear(64)\n"));
        } else {
            s.push_str("    h = h |> ReLU\n");
        }
    }
    s.push_str("    output h\n}\n");
    s
}

fn compile_and_render(root: &str, files: &BTreeMap<String, String>) -> usize {
    let c = wick::compile_files(root, files.clone(), &wick::Options::default());
    assert!(!c.diagnostics.has_errors(), "{}", c.render_diagnostics(wick::diag::RenderStyle::PLAIN));
    let summary = c.summary(None).map(|s| render_table(&s, TableStyle::PLAIN)).unwrap_or_default();
    summary.len()
}

fn median(root: &str, files: &BTreeMap<String, String>, runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(compile_and_render(root, files));
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    // (layers, runs) of the generated specs, and runs of ResNet-18.
    let (sizes, resnet_runs) = match common::full_run() {
        true => ([(10_000usize, 7), (100_000, 3)], 21),
        false => ([(100, 1), (1_000, 1)], 1),
    };
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let mut resnet = BTreeMap::new();
    resnet.insert("specs/resnet18.wick".to_string(), read("specs/resnet18.wick"));

    println!("| spec | layers | median time | per layer |");
    println!("|---|---:|---:|---:|");
    let r = median("specs/resnet18.wick", &resnet, resnet_runs);
    println!("| resnet18 | 69 | {:.2} ms | - |", r.as_secs_f64() * 1e3);
    let mut per_size = Vec::new();
    for (layers, runs) in sizes {
        let mut files = BTreeMap::new();
        files.insert("generated.wick".to_string(), generated_spec(layers));
        let t = median("generated.wick", &files, runs);
        per_size.push(t);
        println!(
            "| generated | {layers} | {:.1} ms | {:.2} µs |",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() * 1e6 / layers as f64
        );
    }
    let ratio = per_size[1].as_secs_f64() / per_size[0].as_secs_f64();
    let [(small, _), (large, _)] = sizes;
    println!(
        "\n{large} / {small} layers: {ratio:.2}x the time (linear would be {}x; the target is at most 12x)",
        large / small
    );
}
