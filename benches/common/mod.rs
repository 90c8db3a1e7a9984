//! Timing shared by the benches: interleaved rounds and medians, and the switch between a
//! full run (`cargo bench`) and a quick smoke run (`cargo test --all-targets`).

// Each bench uses part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Whether this is a measuring run. `cargo bench` passes `--bench` to a bench without the
/// libtest harness; `cargo test --all-targets` runs the same binary (unoptimised) with no
/// arguments, and then a bench only checks that it works, on small sizes, in a second or two.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

pub fn elapsed(f: &mut dyn FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// The median time of each of `fs` over `rounds` rounds after one warm-up round. Each round
/// times every function once, in turn, so that load from other processes on the machine
/// falls on all of them alike; each round starts one function later than the last, so that
/// none always runs after the same neighbour (whose freed memory it would reuse).
pub fn medians(rounds: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    fs.iter_mut().for_each(|f| f()); // warm-up: first-touch allocations and thread-pool start
    let n = fs.len();
    let mut times = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for i in (0..n).map(|k| (round + k) % n) {
            times[i].push(elapsed(fs[i]));
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[rounds / 2]
        })
        .collect()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
