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

/// CPU time used so far by this process, all threads (Linux). Unlike wall time it leaves out
/// the time other processes hold the cores: on a shared machine the steadier measure of the
/// work done, when the work runs on one thread (`RAYON_NUM_THREADS=1`, which candle's
/// kernels follow too; with more, idle workers spin and count).
#[cfg(target_os = "linux")]
pub fn cpu_time() -> Option<Duration> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, t: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let ok = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0;
    ok.then(|| Duration::new(t.sec as u64, t.nsec as u32))
}

#[cfg(not(target_os = "linux"))]
pub fn cpu_time() -> Option<Duration> {
    None
}

/// Wall time and (where known) CPU time of one call.
pub fn elapsed(f: &mut dyn FnMut()) -> (Duration, Option<Duration>) {
    let (t, c) = (Instant::now(), cpu_time());
    f();
    (t.elapsed(), cpu_time().zip(c).map(|(end, start)| end - start))
}

/// The median wall time and median CPU time of each of `fs` over `rounds` rounds after one
/// warm-up round. Each round times every function once, in turn, so that load from other
/// processes on the machine falls on all of them alike; each round starts one function later
/// than the last, so that none always runs after the same neighbour (whose freed memory it
/// would reuse).
pub fn medians_with_cpu(rounds: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<(Duration, Option<Duration>)> {
    fs.iter_mut().for_each(|f| f()); // warm-up: first-touch allocations and thread-pool start
    let n = fs.len();
    let mut times = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for i in (0..n).map(|k| (round + k) % n) {
            times[i].push(elapsed(fs[i]));
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    times
        .into_iter()
        .map(|t| {
            let cpu = t.iter().map(|s| s.1).collect::<Option<Vec<_>>>().map(median);
            (median(t.into_iter().map(|s| s.0).collect()), cpu)
        })
        .collect()
}

/// The median wall time of each of `fs`, as [`medians_with_cpu`] measures it.
pub fn medians(rounds: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    medians_with_cpu(rounds, fs).into_iter().map(|(wall, _)| wall).collect()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Training benches: timed repeats per workload, the median reported; each repeat runs at
/// least [`MIN_STEPS`] steps and at least [`REPEAT_TIME`].
pub const REPEATS: usize = 5;
pub const MIN_STEPS: usize = 3;
pub const REPEAT_TIME: Duration = Duration::from_millis(1500);

/// The median of some figures (the upper one of an even count).
pub fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
