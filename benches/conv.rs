//! Conv2d on the CPU as lowered today (candle's conv2d and its backward): forward, and
//! forward plus backward, on a 64x32x14x14 input with 64 3x3 filters, padding 1.
//! `cargo bench --bench conv` prints a Markdown table for BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor, Var};

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm-up: first-touch allocations and thread-pool start
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let spec = "model Conv { input x: [64, 32, 14, 14]\n output y = x |> conv: Conv2d(64, 3, padding=1) }";
    let model = wick::Model::from_source("conv.wick", spec, &Default::default()).expect("spec");
    let lowered = model.build(&Device::Cpu, DType::F32).expect("build");
    let x =
        Var::from_tensor(&Tensor::randn(0f32, 1.0, (64, 32, 14, 14), &Device::Cpu).expect("x")).expect("var");
    let runs = 11;

    let forward = median(runs, || {
        black_box(lowered.forward(&[x.as_tensor().clone()], false).expect("forward"));
    });
    let both = median(runs, || {
        let y = lowered.forward(&[x.as_tensor().clone()], true).expect("forward").remove(0);
        black_box(y.sum_all().expect("sum").backward().expect("backward"));
    });
    // The same convolution straight through candle, to show what the executor adds.
    let w = lowered.params().get("conv.weight").expect("weight").as_tensor().clone();
    let raw = median(runs, || {
        black_box(x.as_tensor().conv2d(&w, 1, 1, 1, 1).expect("conv2d"));
    });

    println!("| measurement | median of {runs} |");
    println!("|---|---:|");
    println!("| candle conv2d forward (direct) | {:.2} ms |", ms(raw));
    println!("| lowered Conv2d forward | {:.2} ms |", ms(forward));
    println!("| lowered Conv2d forward + backward | {:.2} ms |", ms(both));
    println!("| forward + backward / forward | {:.1}x |", both.as_secs_f64() / forward.as_secs_f64());
}
