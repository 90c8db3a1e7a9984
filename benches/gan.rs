//! GAN training throughput on the CPU: whole iterations of the adversarial program `wick train`
//! runs — a discriminator update on a real and a fake batch, then a generator update on that
//! fake batch (PyTorch's DCGAN example), BCE (on logits, or on the 64x64 discriminator's
//! sigmoid) with real targets 0.9, Adam 2e-4 with betas (0.5, 0.999) for both — in samples (real rows) per second. `cargo bench --bench gan`
//! prints a Markdown table and one JSON line that `BENCH=gan scripts/bench-train.sh` sets
//! beside PyTorch's (`scripts/bench_gan_pytorch.py`, the same networks and loop). Without
//! `--bench` (as `cargo test --all-targets` runs it) it takes two iterations of each at a
//! small batch and prints nothing.

use std::path::Path;
use std::time::{Duration, Instant};

/// The allocator the `wick` binary uses (see src/main.rs), so the figures are what `wick train` gets.
mod common;
use common::{median_of, MIN_STEPS, REPEATS, REPEAT_TIME};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use wick::train::batch::{Batch, Feed};
use wick::train::gan::Adversarial;
use wick::train::program::Program;
use wick::train::session::{Session, TARGET};

const WARMUP_STEPS: usize = 2;

struct Workload {
    key: &'static str,
    name: &'static str,
    /// Rows of one image (after the batch axis), of synthetic data.
    image: &'static str,
    /// The players' lines of the `gan:` section.
    players: &'static str,
    /// The loss: BCE on logits, or on a discriminator's sigmoid (`logits: false`).
    loss: &'static str,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        key: "dcgan_digits",
        name: "digits DCGAN (specs/dcgan_digits.wick), 1x8x8",
        image: "[1, 8, 8]",
        players: "generator: {model: Generator, spec: specs/dcgan_digits.wick}\n  \
                  discriminator: {model: Discriminator, spec: specs/dcgan_digits.wick}",
        loss: "{name: bce, real_label: 0.9}",
    },
    Workload {
        key: "dcgan_64",
        name: "DCGAN 64x64 (specs/dcgan_generator.wick against specs/dcgan_discriminator.wick), 3x64x64",
        image: "[3, 64, 64]",
        players: "generator: {model: DCGANGenerator, spec: specs/dcgan_generator.wick}\n  \
                  discriminator: {model: DCGANDiscriminator, spec: specs/dcgan_discriminator.wick}",
        loss: "{name: bce, real_label: 0.9, logits: false}",
    },
];

/// The workload's adversarial program at `batch`, on synthetic images in [-1, 1].
fn session(w: &Workload, batch: usize) -> Session<Adversarial> {
    let yaml = format!(
        "data: {{synthetic: {{rows: {rows}, features: {image}}}, val_split: 0, rescale: [-1, 1]}}\n\
         batch_size: {batch}\nepochs: 1\nseed: 0\n\
         optimizer: {{name: adam, lr: 0.0002, betas: [0.5, 0.999]}}\n\
         gan:\n  {players}\n  loss: {loss}\n",
        rows = 4 * batch,
        image = w.image,
        players = w.players,
        loss = w.loss,
    );
    let mut sources = wick::front::span::SourceMap::new();
    let id = sources.add("bench.yaml", None, yaml.clone());
    let value = wick::front::yaml::parse_config(&yaml, id).expect("yaml");
    let config = wick::train::config::TrainConfig::from_value(&value).expect("config");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gan = config.gan.as_ref().expect("gan");
    let spec = root.join("specs/dcgan_digits.wick");
    wick::train::gan::session::prepare(spec.to_str().expect("path"), &config, gan, root, false)
        .unwrap_or_else(|e| panic!("{}: {e}", w.key))
}

/// Iterations for at least [`MIN_STEPS`] and [`REPEAT_TIME`]: (iterations, time).
fn repeat(program: &mut Adversarial, batches: &[Batch], done: &mut u64) -> (usize, Duration) {
    let (mut steps, start) = (0, Instant::now());
    while steps < MIN_STEPS || start.elapsed() < REPEAT_TIME {
        let batch = &batches[*done as usize % batches.len()];
        program.step(std::slice::from_ref(batch), *done).expect("step");
        *done += 1;
        steps += 1;
    }
    (steps, start.elapsed())
}

/// Samples per second and milliseconds per iteration, the medians over the repeats.
fn measure(w: &Workload, batch: usize, repeats: usize, warmup: usize) -> (f64, f64) {
    let mut s = session(w, batch);
    let feed = Feed { data: &s.splits.train, input: s.input.clone(), target: TARGET.into() };
    let batches = feed.batches(batch, None).expect("batches");
    let mut done = 0;
    for _ in 0..warmup {
        let b = &batches[done as usize % batches.len()];
        s.program.step(std::slice::from_ref(b), done).expect("step");
        done += 1;
    }
    let runs: Vec<(usize, Duration)> =
        (0..repeats).map(|_| repeat(&mut s.program, &batches, &mut done)).collect();
    let rate = median_of(runs.iter().map(|(n, t)| (n * batch) as f64 / t.as_secs_f64()).collect());
    let ms = median_of(runs.iter().map(|(n, t)| t.as_secs_f64() * 1e3 / *n as f64).collect());
    (rate, ms)
}

fn main() {
    // As the `wick` binary does (src/main.rs).
    wick::lower::kernels::cpu::fix_thread_count();
    if !std::env::args().any(|a| a == "--bench") {
        // A smoke run: each workload builds and takes its iterations at batch 2.
        for w in WORKLOADS {
            let mut s = session(w, 2);
            let feed = Feed { data: &s.splits.train, input: s.input.clone(), target: TARGET.into() };
            let batches = feed.batches(2, None).expect("batches");
            (0..2).for_each(|i| drop(s.program.step(&batches[i..=i], i as u64).expect("step")));
        }
        return;
    }
    let picked: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    println!("| workload | samples/s | ms per iteration |");
    println!("|---|---:|---:|");
    let mut json = Vec::new();
    for w in WORKLOADS.iter().filter(|w| picked.is_empty() || picked.iter().any(|p| p == w.key)) {
        let (rate, ms) = measure(w, 64, REPEATS, WARMUP_STEPS);
        println!("| {} (batch 64) | {rate:.0} | {ms:.1} |", w.name);
        json.push(format!("\"{}\": {{\"samples_per_s\": {rate:.1}, \"iteration_ms\": {ms:.2}}}", w.key));
    }
    println!("{{{}}}", json.join(", "));
}
