//! Conv2d on the CPU as lowered today (candle's conv2d and its backward): forward, and
//! forward plus backward, on a 64x32x14x14 input with 64 3x3 filters, padding 1, with and
//! without bias. `cargo bench --bench conv` prints a Markdown table for BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor, Var};

const RUNS: usize = 11;

fn median(mut f: impl FnMut()) -> Duration {
    f(); // warm-up: first-touch allocations and thread-pool start
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let x =
        Var::from_tensor(&Tensor::randn(0f32, 1.0, (64, 32, 14, 14), &Device::Cpu).expect("x")).expect("var");
    println!("| layer | forward | forward + backward | ratio | candle conv2d (+ bias) forward, direct |");
    println!("|---|---:|---:|---:|---:|");
    for bias in [false, true] {
        let spec = format!("model Conv {{ input x: [64, 32, 14, 14]\n output y = x |> conv: Conv2d(64, 3, padding=1, bias={bias}) }}");
        let model = wick::Model::from_source("conv.wick", &spec, &Default::default()).expect("spec");
        let lowered = model.build(&Device::Cpu, DType::F32).expect("build");
        let forward = median(|| {
            black_box(lowered.forward(&[x.as_tensor().clone()], false).expect("forward"));
        });
        let both = median(|| {
            let y = lowered.forward(&[x.as_tensor().clone()], true).expect("forward").remove(0);
            black_box(y.sum_all().expect("sum").backward().expect("backward"));
        });
        // The same computation straight through candle, to show what the lowering adds.
        let w = lowered.params().get("conv.weight").expect("weight").as_tensor().clone();
        let b =
            lowered.params().get("conv.bias").map(|b| b.as_tensor().reshape((1, 64, 1, 1)).expect("bias"));
        let direct = median(|| {
            let y = x.as_tensor().conv2d(&w, 1, 1, 1, 1).expect("conv2d");
            black_box(match &b {
                Some(b) => y.broadcast_add(b).expect("bias"),
                None => y,
            });
        });
        println!(
            "| Conv2d(64, 3, padding=1, bias={bias}) | {:.2} ms | {:.2} ms | {:.1}x | {:.2} ms |",
            ms(forward),
            ms(both),
            both.as_secs_f64() / forward.as_secs_f64(),
            ms(direct)
        );
    }
}
