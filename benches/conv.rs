//! Lowered convolutions on the CPU (im2col + matrix products, `src/lower/kernels/conv_mm.rs`)
//! beside candle 0.11's own conv2d, in the same run: forward, and forward plus backward
//! (`sum`, `backward`), on a 64x32x14x14 f32 input. `cargo bench --bench conv` prints a
//! Markdown table for BENCHMARKS.md; under `cargo test --all-targets`, one round of each.

mod common;

use std::hint::black_box;
use std::time::Duration;

use candle_core::{DType, Device, Tensor, Var};
use common::{full_run, medians, ms};

/// One layer: its wick spec and candle's `conv2d` arguments (padding, stride, groups).
struct Case {
    layer: &'static str,
    padding: usize,
    stride: usize,
    groups: usize,
}

const CASES: &[Case] = &[
    Case { layer: "Conv2d(64, 3, padding=1, bias=false)", padding: 1, stride: 1, groups: 1 },
    Case { layer: "Conv2d(64, 3, padding=1, bias=true)", padding: 1, stride: 1, groups: 1 },
    Case { layer: "Conv2d(64, 3, stride=2, padding=1, bias=false)", padding: 1, stride: 2, groups: 1 },
    Case { layer: "Conv2d(32, 3, padding=1, groups=32, bias=false)", padding: 1, stride: 1, groups: 32 },
];

fn main() {
    // Rounds per layer (the median of 21, or one round in a smoke run).
    let rounds = if full_run() { 21 } else { 1 };
    let x =
        Var::from_tensor(&Tensor::randn(0f32, 1.0, (64, 32, 14, 14), &Device::Cpu).expect("x")).expect("var");
    println!("| layer | wick forward | wick forward + backward | wick ratio | candle forward | candle forward + backward | candle ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for case in CASES {
        let spec =
            format!("model Conv {{ input x: [64, 32, 14, 14]\n output y = x |> conv: {} }}", case.layer);
        let model = wick::Model::from_source("conv.wick", &spec, &Default::default()).expect("spec");
        let lowered = model.build(&Device::Cpu, DType::F32).expect("build");
        let wick = |train: bool| lowered.forward(&[x.as_tensor().clone()], train).expect("forward").remove(0);
        // The same layer on candle's conv2d (and its backward), with the same variables.
        let w = lowered.params().get("conv.weight").expect("weight").as_tensor().clone();
        let b =
            lowered.params().get("conv.bias").map(|b| b.as_tensor().reshape((1, (), 1, 1)).expect("bias"));
        let candle = |_train: bool| {
            let y = x.as_tensor().conv2d(&w, case.padding, case.stride, 1, case.groups).expect("conv2d");
            match &b {
                Some(b) => y.broadcast_add(b).expect("bias"),
                None => y,
            }
        };
        let both = |y: Tensor| black_box(y.sum_all().expect("sum").backward().expect("backward"));
        let wick =
            medians(rounds, &mut [&mut || drop(black_box(wick(false))), &mut || drop(both(wick(true)))]);
        let candle =
            medians(rounds, &mut [&mut || drop(black_box(candle(false))), &mut || drop(both(candle(true)))]);
        let (wick, candle) = ((wick[0], wick[1]), (candle[0], candle[1]));
        let ratio = |(f, b): (Duration, Duration)| b.as_secs_f64() / f.as_secs_f64();
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.1}x | {:.2} ms | {:.2} ms | {:.1}x |",
            case.layer,
            ms(wick.0),
            ms(wick.1),
            ratio(wick),
            ms(candle.0),
            ms(candle.1),
            ratio(candle)
        );
    }
}
