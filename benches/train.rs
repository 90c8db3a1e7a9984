//! Training throughput on the CPU: full steps (forward in train mode, cross-entropy, backward,
//! optimizer update) of five small workloads on synthetic data, in samples per second, with
//! each step's time split into forward + loss, backward and optimizer. `cargo bench --bench
//! train` prints a Markdown table and one JSON line that `scripts/bench-train.sh` sets beside
//! PyTorch's (`scripts/bench_train_pytorch.py`, the same workloads). Without `--bench` (as
//! `cargo test --all-targets` runs it) it takes two steps of each and prints nothing. Further
//! arguments name the workloads to run (`tiny_encoder`), all when none.

use std::time::{Duration, Instant};

/// The allocator the `wick` binary uses (see src/main.rs), so the figures are what `wick train` gets.
mod common;
use common::{median_of, MIN_STEPS, REPEATS, REPEAT_TIME};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{DType, Device, Tensor};
use wick::train::objective::LossConfig;
use wick::train::optim::config::OptimizerConfig;
use wick::train::optim::{Optimizer, Param};

const WARMUP_STEPS: usize = 3;

/// What a workload's model takes in.
enum Input {
    /// f32 noise of this shape after the batch axis.
    Floats(&'static [usize]),
    /// Token ids below `vocab`, `len` per example.
    Tokens { len: usize, vocab: u32 },
}

struct Workload {
    /// The workload's name in the JSON line and on the command line (`small_cnn`).
    key: &'static str,
    name: &'static str,
    spec: &'static str,
    /// The model of the spec to build, when not its default (last) one.
    model: Option<&'static str>,
    batch: usize,
    input: Input,
    classes: u32,
    optimizer: fn() -> OptimizerConfig,
}

const ADAM_BETAS: (f64, f64) = (0.9, 0.999);

const WORKLOADS: &[Workload] = &[
    Workload {
        key: "seed_mlp",
        name: "seed MLP (784-200-100-50-25-50-10), batch 100, SGD 0.01",
        spec: "specs/seed_mlp.wick",
        model: None,
        batch: 100,
        input: Input::Floats(&[784]),
        classes: 10,
        optimizer: || OptimizerConfig::Sgd {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            decoupled: false,
        },
    },
    Workload {
        key: "small_cnn",
        name: "small CNN (conv 32, conv 64, fc 128), 1x28x28, batch 64, Adam 1e-3",
        spec: "benches/specs/small_cnn.wick",
        model: None,
        batch: 64,
        input: Input::Floats(&[1, 28, 28]),
        classes: 10,
        optimizer: OptimizerConfig::default,
    },
    Workload {
        key: "tiny_encoder",
        name: "transformer encoder (2 post-norm layers, d 128, seq 64), batch 32, AdamW 1e-3",
        spec: "benches/specs/tiny_encoder.wick",
        model: None,
        batch: 32,
        input: Input::Tokens { len: 64, vocab: 1000 },
        classes: 2,
        optimizer: || OptimizerConfig::Adamw {
            lr: 1e-3,
            betas: ADAM_BETAS,
            eps: 1e-8,
            amsgrad: false,
            weight_decay: 0.01,
        },
    },
    Workload {
        key: "digits_resnet",
        name: "digits ResNet (conv 32 + BN, residual block, strided conv 64 + BN, pool, dropout), 1x8x8, batch 64, SGD Nesterov",
        spec: "benches/specs/digits_resnet.wick",
        model: None,
        batch: 64,
        input: Input::Floats(&[1, 8, 8]),
        classes: 10,
        optimizer: NESTEROV,
    },
    Workload {
        key: "digits_resnet_plain",
        name: "digits ResNet without batch norms, 1x8x8, batch 64, SGD Nesterov",
        spec: "benches/specs/digits_resnet.wick",
        model: Some("DigitsResNetPlain"),
        batch: 64,
        input: Input::Floats(&[1, 8, 8]),
        classes: 10,
        optimizer: NESTEROV,
    },
];

/// SGD lr 0.01 with Nesterov momentum 0.9, as a student's first training loop has it.
const NESTEROV: fn() -> OptimizerConfig = || OptimizerConfig::Sgd {
    lr: 0.01,
    momentum: 0.9,
    dampening: 0.0,
    nesterov: true,
    weight_decay: 0.0,
    decoupled: false,
};

/// Uniform integers below `n` as i64, for labels and token ids.
fn ids(shape: &[usize], n: u32) -> Tensor {
    let u = Tensor::rand(0f32, n as f32, shape, &Device::Cpu).expect("rand");
    u.floor().and_then(|t| t.clamp(0f32, (n - 1) as f32)).and_then(|t| t.to_dtype(DType::I64)).expect("ids")
}

/// Time spent in each phase of the steps taken so far.
#[derive(Clone, Copy, Default)]
struct Split {
    forward: Duration,
    backward: Duration,
    update: Duration,
}

impl Split {
    fn total(&self) -> Duration {
        self.forward + self.backward + self.update
    }
}

/// A model, its optimizer and one batch of synthetic data, ready to take steps.
struct Trainer {
    net: wick::Lowered,
    optimizer: Box<dyn Optimizer>,
    x: Tensor,
    y: Tensor,
    loss: LossConfig,
}

impl Trainer {
    fn new(w: &Workload) -> Trainer {
        let opts = wick::Options {
            model: w.model.map(str::to_string),
            bind: vec![("N".into(), w.batch as i64)],
            ..Default::default()
        };
        let model = wick::Model::from_file(w.spec, &opts).unwrap_or_else(|e| panic!("{}: {e}", w.spec));
        let net = model.build_seeded(&Device::Cpu, DType::F32, 0).expect("build");
        let optimizer = (w.optimizer)().build(Param::trainable(&net)).expect("optimizer");
        let x = match w.input {
            Input::Floats(rest) => {
                let shape: Vec<usize> = std::iter::once(w.batch).chain(rest.iter().copied()).collect();
                Tensor::randn(0f32, 1.0, shape, &Device::Cpu).expect("randn")
            }
            Input::Tokens { len, vocab } => ids(&[w.batch, len], vocab),
        };
        Trainer { net, optimizer, x, y: ids(&[w.batch], w.classes), loss: LossConfig::default() }
    }

    /// One full training step, its phases timed into `split`.
    fn step(&mut self, split: &mut Split) {
        let t = Instant::now();
        let outs = self.net.forward(std::slice::from_ref(&self.x), true).expect("forward");
        let loss = self.loss.compute(&outs, &self.y).expect("loss");
        // Reading the loss back, as a training loop logging it would, ends the forward pass.
        loss.to_scalar::<f32>().expect("loss value");
        let t_forward = t.elapsed();
        let grads = self.net.backward(&loss).expect("backward");
        let t_backward = t.elapsed();
        self.optimizer.step(&grads).expect("step");
        let t_update = t.elapsed();
        split.forward += t_forward;
        split.backward += t_backward - t_forward;
        split.update += t_update - t_backward;
    }

    /// Steps for at least [`MIN_STEPS`] and [`REPEAT_TIME`]: (steps, their split).
    fn repeat(&mut self) -> (usize, Split) {
        let (mut steps, mut split) = (0, Split::default());
        while steps < MIN_STEPS || split.total() < REPEAT_TIME {
            self.step(&mut split);
            steps += 1;
        }
        (steps, split)
    }
}

/// Samples per second and the per-step forward, backward and update milliseconds, each the
/// median over the repeats.
fn measure(w: &Workload) -> (f64, [f64; 3]) {
    let mut trainer = Trainer::new(w);
    let mut ignored = Split::default();
    (0..WARMUP_STEPS).for_each(|_| trainer.step(&mut ignored));
    let runs: Vec<(usize, Split)> = (0..REPEATS).map(|_| trainer.repeat()).collect();
    let per_step = |f: fn(&Split) -> Duration| {
        median_of(runs.iter().map(|(n, s)| f(s).as_secs_f64() * 1e3 / *n as f64).collect())
    };
    let rate = median_of(runs.iter().map(|(n, s)| (n * w.batch) as f64 / s.total().as_secs_f64()).collect());
    (rate, [per_step(|s| s.forward), per_step(|s| s.backward), per_step(|s| s.update)])
}

fn main() {
    // As the `wick` binary does (src/main.rs).
    wick::lower::kernels::cpu::fix_thread_count();
    // Other arguments pick workloads by key (`cargo bench --bench train -- tiny_encoder`), to
    // profile one alone; in a smoke run too, whose two steps are what `valgrind --tool=callgrind`
    // counts instructions of in reasonable time.
    let picked: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let workloads = WORKLOADS.iter().filter(|w| picked.is_empty() || picked.iter().any(|p| p == w.key));
    if !std::env::args().any(|a| a == "--bench") {
        // A smoke run: every (picked) workload builds and takes two steps.
        for w in workloads {
            let mut trainer = Trainer::new(w);
            let mut split = Split::default();
            (0..2).for_each(|_| trainer.step(&mut split));
        }
        return;
    }
    println!("| workload | samples/s | forward + loss ms | backward ms | optimizer ms |");
    println!("|---|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for w in workloads {
        let (rate, [f, b, u]) = measure(w);
        println!("| {} | {rate:.0} | {f:.2} | {b:.2} | {u:.2} |", w.name);
        json.push(format!(
            "\"{}\": {{\"samples_per_s\": {rate:.1}, \"forward_ms\": {f:.3}, \"backward_ms\": {b:.3}, \"optimizer_ms\": {u:.3}}}",
            w.key
        ));
    }
    println!("{{{}}}", json.join(", "));
}
