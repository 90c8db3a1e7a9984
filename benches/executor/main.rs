//! The executor's overhead and memory: ResNet-18 (batch 8, 3x64x64) and a 4-layer transformer
//! encoder (d 256, 4 heads, ff 1024, seq 128, batch 8) lowered by wick, each beside the same
//! network written directly in this bench twice over, on the same weights and input:
//!
//! - *direct*: the kernels wick's lowering calls (`wick::lower::kernels`, `wick::ops::linear`),
//!   called in straight-line code, so the difference from wick is the executor alone;
//! - *candle-nn*: candle-nn's stock layers, what a candle user would write.
//!
//! Forward is one eval-mode forward; forward + backward is a train-mode forward, `sum` and
//! `backward`; wick's `infer` (the forward without the autograd graph) is timed too. All are
//! timed in interleaved rounds, wall and CPU time; the figures are medians. The executor's own
//! cost per step is measured apart, on a chain of `Identity` layers. Memory: the peak heap
//! growth of one eval forward (a counting global allocator) beside the executor's static
//! figure, the most bytes its schedule holds at once (`Lowered::peak_live_bytes`).
//!
//! `cargo bench --bench executor` prints Markdown tables for BENCHMARKS.md; under `cargo test
//! --all-targets` it runs one round on small sizes, checking that the three versions agree.

#[path = "../common/mod.rs"]
mod common;

mod alloc;
mod encoder;
mod resnet;

use std::hint::black_box;
use std::time::Duration;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use common::{full_run, medians, medians_with_cpu, ms};
use wick::lower::ParamStore;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// A network as a function of its input and the train flag.
pub type Net<'a> = Box<dyn Fn(&Tensor, bool) -> Result<Tensor> + 'a>;

/// One network three ways, on the same weights and the same input.
pub struct Case {
    pub name: String,
    pub wick: wick::Lowered,
    pub input: Tensor,
    /// wick's kernels in straight-line code.
    pub direct: Net<'static>,
    /// candle-nn's stock layers.
    pub stock: Net<'static>,
}

impl Case {
    /// wick (through its executor), direct and candle-nn, as functions.
    fn nets(&self) -> [Net<'_>; 3] {
        let wick = move |x: &Tensor, train: bool| -> Result<Tensor> {
            let mut ys = self.wick.forward(std::slice::from_ref(x), train)?;
            Ok(ys.remove(0))
        };
        [Box::new(wick), Box::new(&self.direct), Box::new(&self.stock)]
    }
}

/// A parameter of the lowered model, the very variable its layers use.
pub fn param(p: &ParamStore, key: &str) -> Tensor {
    buffer(p, key).as_tensor().clone()
}

/// A variable of the lowered model (a running statistic's, for a layer that updates it).
pub fn buffer(p: &ParamStore, key: &str) -> Var {
    p.get(key).unwrap_or_else(|| panic!("the lowered model has no `{key}`")).clone()
}

/// Copies of the lowered model's tensors as new variables under their `state_dict` keys, for
/// candle-nn's layer constructors.
pub fn stock_vars(p: &ParamStore) -> Result<VarBuilder<'static>> {
    let varmap = VarMap::new();
    {
        let mut vars = varmap.data().lock().expect("a fresh VarMap");
        for (key, t) in p.state_dict() {
            // `t` is detached, not a variable, so the new variable is a copy.
            vars.insert(key, Var::from_tensor(&t)?);
        }
    }
    Ok(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let d = (a - b).and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>());
    d.expect("difference of two outputs")
}

/// Eval outputs of the direct and candle-nn versions against wick's: they must compute the
/// same function of the same weights (candle's conv sums in another order: 1e-3 allows that).
fn check_agreement(case: &Case) -> (f32, f32) {
    let [wick, direct, stock] = case.nets();
    let reference = wick(&case.input, false).expect("wick forward");
    let diffs = (
        max_abs_diff(&reference, &direct(&case.input, false).expect("direct forward")),
        max_abs_diff(&reference, &stock(&case.input, false).expect("candle-nn forward")),
    );
    assert!(diffs.0 < 1e-4 && diffs.1 < 1e-3, "{}: outputs differ from wick's by {diffs:?}", case.name);
    diffs
}

/// Median wall and CPU times, all interleaved: eval forward and forward + backward of the
/// three versions, then wick's forward without the graph (`infer`).
fn time(case: &Case, rounds: usize) -> Vec<(Duration, Option<Duration>)> {
    let nets = case.nets();
    let x = &case.input;
    let forward =
        |f: &dyn Fn(&Tensor, bool) -> Result<Tensor>| drop(black_box(f(x, false).expect("forward")));
    let train = |f: &dyn Fn(&Tensor, bool) -> Result<Tensor>, wick: bool| {
        let loss = f(x, true).and_then(|y| y.sum_all()).expect("train forward");
        let grads = match wick {
            true => case.wick.backward(&loss).map_err(|e| e.to_string()),
            false => loss.backward().map_err(|e| e.to_string()),
        };
        drop(black_box(grads.expect("backward")));
    };
    let [w, d, s] = &nets;
    medians_with_cpu(
        rounds,
        &mut [
            &mut || forward(w),
            &mut || forward(d),
            &mut || forward(s),
            &mut || train(w, true),
            &mut || train(d, false),
            &mut || train(s, false),
            &mut || drop(black_box(case.wick.infer(std::slice::from_ref(x), false).expect("infer"))),
        ],
    )
}

/// `a` over `b`, as a percentage above 100%.
fn excess(a: Duration, b: Duration) -> String {
    format!("{:+.1}%", (a.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0)
}

fn cpu_ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2} ms", ms(d)))
}

/// Peak heap growth of one eval forward, plus the input (allocated before, and counted in the
/// static figure), in bytes: wick's `infer`, then wick's `forward`, direct and candle-nn.
fn measure_memory(case: &Case) -> [usize; 4] {
    let input = case.input.elem_count() * case.input.dtype().size_in_bytes();
    let x = &case.input;
    let infer = alloc::peak_growth(|| case.wick.infer(std::slice::from_ref(x), false).expect("infer")).0;
    let [w, d, s] = case.nets().map(|f| alloc::peak_growth(|| f(x, false).expect("forward")).0);
    [infer, w, d, s].map(|b| b + input)
}

/// The executor's own cost per step, measured on a chain of Identity layers (which hand their
/// input on and do nothing else) over a one-element tensor.
fn step_cost(rounds: usize) -> Duration {
    const STEPS: u32 = 1000;
    let chain = vec!["Identity"; STEPS as usize].join(" |> ");
    let spec = format!("model Chain {{ input x: [1]\n output y = x |> {chain} }}");
    let model = wick::Model::from_source("chain.wick", &spec, &Default::default()).expect("chain spec");
    let net = model.build(&Device::Cpu, DType::F32).expect("build chain");
    let x = Tensor::zeros(1, DType::F32, &Device::Cpu).expect("x");
    let run = &mut || drop(black_box(net.forward(std::slice::from_ref(&x), false).expect("chain")));
    medians(rounds, &mut [run])[0] / STEPS
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let full = full_run();
    let rounds = if full { 21 } else { 1 };
    let cases = [resnet::case(full), encoder::case(full)];

    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    println!("Threads: {threads}. Wall time; the CPU time (all threads) beside it.\n");
    println!("| network | pass | wick | direct kernels | executor overhead | candle-nn | wick CPU | direct CPU | overhead by CPU time |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let (mut memory, mut direct_forward) = (Vec::new(), Vec::new());
    for case in &cases {
        let diffs = check_agreement(case);
        memory.push((measure_memory(case), diffs));
        let t = time(case, rounds);
        direct_forward.push(t[1].0);
        for (pass, [w, d, s]) in [("forward", [t[0], t[1], t[2]]), ("forward + backward", [t[3], t[4], t[5]])]
        {
            let cpu_excess = w.1.zip(d.1).map_or("-".into(), |(w, d)| excess(w, d));
            println!(
                "| {} | {pass} | {:.2} ms | {:.2} ms | {} | {:.2} ms | {} | {} | {cpu_excess} |",
                case.name,
                ms(w.0),
                ms(d.0),
                excess(w.0, d.0),
                ms(s.0),
                cpu_ms(w.1),
                cpu_ms(d.1),
            );
        }
        let (i, i_cpu) = t[6];
        println!(
            "| {} | forward, no graph (`infer`) | {:.2} ms | - | - | - | {} | - | - |",
            case.name,
            ms(i),
            cpu_ms(i_cpu)
        );
    }

    let per_step = step_cost(if full { 101 } else { 1 });
    println!("\n| network | steps | executor bookkeeping per forward ({} ns a step) | share of the direct forward |", per_step.as_nanos());
    println!("|---|---:|---:|---:|");
    for (case, d) in cases.iter().zip(direct_forward) {
        let steps = case.wick.step_count();
        let cost = per_step * steps as u32;
        let share = cost.as_secs_f64() / d.as_secs_f64() * 100.0;
        println!("| {} | {steps} | {:.1} µs | {share:.3}% |", case.name, cost.as_secs_f64() * 1e6);
    }

    println!(
        "\n| network | params | static peak of live tensors | measured: wick `infer` | wick `forward` | direct | candle-nn | output max abs diff: direct, candle-nn |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for (case, (measured, (dd, ds))) in cases.iter().zip(memory) {
        let entries = case.wick.params().entries();
        let params: usize = entries.iter().map(|e| e.var.elem_count() * e.var.dtype().size_in_bytes()).sum();
        let [i, w, d, s] = measured.map(mib);
        println!(
            "| {} | {:.2} MiB | {:.2} MiB | {i:.2} MiB | {w:.2} MiB | {d:.2} MiB | {s:.2} MiB | {dd:.1e}, {ds:.1e} |",
            case.name,
            mib(params),
            mib(case.wick.peak_live_bytes()),
        );
    }
}
