//! Time from spec text to a rendered summary: ResNet-18 and generated specs of 10,000 and
//! 100,000 layers. `cargo bench --bench compile` prints a Markdown table for BENCHMARKS.md;
//! under `cargo test --all-targets` it runs once each on 100 and 1,000 layers.
//!
//! Each figure is the median of several runs of the whole pipeline (load, parse, elaborate,
//! check, count, summarize, render the table), with nothing cached between runs: wall time,
//! the process's CPU time (steadier on a shared machine), and the peak of heap memory the run
//! held above what was held before it, counted by this bench's allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wick::report::{render_table, TableStyle};

/// The allocator the `wick` binary uses (src/main.rs: mimalloc with the backend built in, the
/// system's without), counting the bytes held now and the most held since the last reset.
/// glibc's malloc costs the 100,000-layer run about a quarter of its time in consolidating
/// and unlinking freed chunks, which the binary never pays.
struct Counting;

#[cfg(feature = "lower")]
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(not(feature = "lower"))]
static INNER: std::alloc::System = std::alloc::System;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed through to `INNER` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { INNER.alloc(layout) };
        if !p.is_null() {
            let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { INNER.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { INNER.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let held = HELD.fetch_add(new_size, Ordering::Relaxed) + new_size;
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most heap `f` held at once above what was held when it started, in bytes.
fn peak_heap(f: impl FnOnce()) -> usize {
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed).saturating_sub(before)
}

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
    // 100,000 layers and the input are one node past the default cap (`elab::MAX_NODES`).
    let opts = wick::Options { max_nodes: Some(200_000), ..wick::Options::default() };
    let c = wick::compile_files(root, files.clone(), &opts);
    assert!(!c.diagnostics.has_errors(), "{}", c.render_diagnostics(wick::diag::RenderStyle::PLAIN));
    let summary = c.summary(None).map(|s| render_table(&s, TableStyle::PLAIN)).unwrap_or_default();
    summary.len()
}

/// Median wall and CPU time of `runs` runs, and the peak heap of one.
struct Measured {
    wall: Duration,
    cpu: Duration,
    heap: usize,
}

fn measure(root: &str, files: &BTreeMap<String, String>, runs: usize) -> Measured {
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..runs {
        let (t, c) = (Instant::now(), common::cpu_time());
        black_box(compile_and_render(root, files));
        wall.push(t.elapsed());
        cpu.push(common::cpu_time().zip(c).map_or(Duration::ZERO, |(end, start)| end - start));
    }
    wall.sort();
    cpu.sort();
    let heap = peak_heap(|| {
        black_box(compile_and_render(root, files));
    });
    Measured { wall: wall[runs / 2], cpu: cpu[runs / 2], heap }
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

    println!("| spec | layers | median time | CPU time | per layer | peak heap | heap per layer |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let r = measure("specs/resnet18.wick", &resnet, resnet_runs);
    println!(
        "| resnet18 | 69 | {:.2} ms | {:.2} ms | - | {:.1} MB | - |",
        r.wall.as_secs_f64() * 1e3,
        r.cpu.as_secs_f64() * 1e3,
        r.heap as f64 / 1e6
    );
    let mut per_size = Vec::new();
    for (layers, runs) in sizes {
        let mut files = BTreeMap::new();
        files.insert("generated.wick".to_string(), generated_spec(layers));
        let m = measure("generated.wick", &files, runs);
        println!(
            "| generated | {layers} | {:.1} ms | {:.1} ms | {:.2} µs | {:.1} MB | {:.2} KB |",
            m.wall.as_secs_f64() * 1e3,
            m.cpu.as_secs_f64() * 1e3,
            m.wall.as_secs_f64() * 1e6 / layers as f64,
            m.heap as f64 / 1e6,
            m.heap as f64 / 1e3 / layers as f64
        );
        assert!(m.heap > 0, "the allocator counted nothing");
        per_size.push(m.wall);
    }
    let ratio = per_size[1].as_secs_f64() / per_size[0].as_secs_f64();
    let [(small, _), (large, _)] = sizes;
    println!(
        "\n{large} / {small} layers: {ratio:.2}x the time (linear would be {}x; the target is at most 12x)",
        large / small
    );
}
