//! Inference of catalog models on the CPU: one forward pass without the autograd graph
//! (`Lowered::infer`, what `wick run` does; PyTorch's `inference_mode`), in samples per second
//! and milliseconds per pass, with the process's resident memory after the passes.
//! `cargo bench --bench infer` prints a Markdown table and one JSON line that
//! `BENCH=infer scripts/bench-train.sh` sets beside PyTorch's (`scripts/bench_infer_pytorch.py`,
//! the same networks from torchvision and `torch.nn`). Without `--bench` (as `cargo test
//! --all-targets` runs it) each model is built at small bound dims and runs one pass. Further
//! arguments name the workloads to run (`resnet50_b8`), all when none.
//! Batch norms are folded into their convolutions as `wick run` folds them
//! (`Lowered::fold_for_inference`); `WICK_NO_FOLD=1` runs them as layers of their own.

use std::time::{Duration, Instant};

mod common;
use common::{median_of, REPEATS};

/// The allocator the `wick` binary uses (see src/main.rs), so the figures are what `wick run` gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{DType, Device, Tensor};

const WARMUP_PASSES: usize = 2;
/// Each timed repeat runs at least this many passes and this long.
const MIN_PASSES: usize = 2;
const REPEAT_TIME: Duration = Duration::from_millis(2000);

struct Workload {
    key: &'static str,
    name: &'static str,
    spec: &'static str,
    batch: usize,
    /// The spec's dims bound for the measurement, beside `N`.
    bind: &'static [(&'static str, i64)],
    /// The same dims for the smoke run: small enough for an unoptimised build.
    smoke: &'static [(&'static str, i64)],
    /// Token ids below this many, or an image when `None`.
    vocab: Option<u32>,
}

const IMAGE_224: &[(&str, i64)] = &[("H", 224), ("W", 224)];
const IMAGE_32: &[(&str, i64)] = &[("H", 32), ("W", 32)];

const WORKLOADS: &[Workload] = &[
    Workload {
        key: "resnet50_b1",
        name: "ResNet-50, 3x224x224, batch 1",
        spec: "specs/resnet50.wick",
        batch: 1,
        bind: IMAGE_224,
        smoke: IMAGE_32,
        vocab: None,
    },
    Workload {
        key: "resnet50_b8",
        name: "ResNet-50, 3x224x224, batch 8",
        spec: "specs/resnet50.wick",
        batch: 8,
        bind: IMAGE_224,
        smoke: IMAGE_32,
        vocab: None,
    },
    Workload {
        key: "vit_b_16_b1",
        name: "ViT-B/16, 3x224x224, batch 1",
        spec: "specs/vit_b_16.wick",
        batch: 1,
        bind: IMAGE_224,
        smoke: IMAGE_32,
        vocab: None,
    },
    Workload {
        key: "gpt2_small_t128",
        name: "GPT-2 small, 128 tokens, batch 1",
        spec: "specs/gpt2_small.wick",
        batch: 1,
        bind: &[("L", 128)],
        smoke: &[("L", 4)],
        vocab: Some(50257),
    },
];

/// A built model and its input.
struct Runner {
    net: wick::Lowered,
    x: Tensor,
}

impl Runner {
    fn new(w: &Workload, full: bool) -> Runner {
        let dims = if full { w.bind } else { w.smoke };
        let bind = std::iter::once(("N".to_string(), w.batch as i64))
            .chain(dims.iter().map(|(d, v)| (d.to_string(), *v)))
            .collect();
        let opts = wick::Options { bind, ..Default::default() };
        let model = wick::Model::from_file(w.spec, &opts).unwrap_or_else(|e| panic!("{}: {e}", w.spec));
        let mut net = model.build_seeded(&Device::Cpu, DType::F32, 0).expect("build");
        // As `wick run` does: each batch norm folded into its convolution.
        if std::env::var_os("WICK_NO_FOLD").is_none() {
            net.fold_for_inference();
        }
        let dim = |name: &str| dims.iter().find(|(d, _)| *d == name).map_or(0, |(_, v)| *v as usize);
        let x = match w.vocab {
            Some(vocab) => {
                let u = Tensor::rand(0f32, vocab as f32, (w.batch, dim("L")), &Device::Cpu).expect("rand");
                u.floor().and_then(|t| t.to_dtype(DType::I64)).expect("ids")
            }
            None => Tensor::randn(0f32, 1.0, (w.batch, 3, dim("H"), dim("W")), &Device::Cpu).expect("randn"),
        };
        Runner { net, x }
    }

    fn pass(&self) {
        let outs = self.net.infer(std::slice::from_ref(&self.x), false).expect("forward");
        // Reading a value back ends the pass, as a caller using the output would.
        outs[0].flatten_all().and_then(|t| t.get(0)).and_then(|t| t.to_scalar::<f32>()).expect("output");
    }

    /// Passes for at least [`MIN_PASSES`] and [`REPEAT_TIME`]: (passes, their time).
    fn repeat(&self) -> (usize, Duration) {
        let (mut passes, t) = (0, Instant::now());
        while passes < MIN_PASSES || t.elapsed() < REPEAT_TIME {
            self.pass();
            passes += 1;
        }
        (passes, t.elapsed())
    }
}

/// The process's resident set now, in MiB (Linux; 0 elsewhere).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}

/// Samples per second and milliseconds per pass, each the median over the repeats, and the
/// resident memory after them.
fn measure(w: &Workload) -> (f64, f64, f64) {
    let runner = Runner::new(w, true);
    (0..WARMUP_PASSES).for_each(|_| runner.pass());
    let runs: Vec<(usize, Duration)> = (0..REPEATS).map(|_| runner.repeat()).collect();
    let ms = median_of(runs.iter().map(|(n, t)| t.as_secs_f64() * 1e3 / *n as f64).collect());
    (w.batch as f64 * 1e3 / ms, ms, rss_mib())
}

fn main() {
    // As the `wick` binary does (src/main.rs).
    wick::lower::kernels::cpu::fix_thread_count();
    if !common::full_run() {
        // A smoke run: every workload builds at small dims and runs one pass.
        WORKLOADS.iter().for_each(|w| Runner::new(w, false).pass());
        return;
    }
    println!("| workload | samples/s | ms per pass | RSS after, MiB |");
    println!("|---|---:|---:|---:|");
    let picked: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let mut json = Vec::new();
    for w in WORKLOADS.iter().filter(|w| picked.is_empty() || picked.iter().any(|p| p == w.key)) {
        let (rate, ms, rss) = measure(w);
        println!("| {} | {rate:.2} | {ms:.1} | {rss:.0} |", w.name);
        json.push(format!(
            "\"{}\": {{\"samples_per_s\": {rate:.3}, \"iteration_ms\": {ms:.3}, \"rss_mib\": {rss:.0}}}",
            w.key
        ));
    }
    println!("{{{}}}", json.join(", "));
}
