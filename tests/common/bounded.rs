//! Running the real binary on hostile input under a time and a memory limit, and telling how it
//! ended: the reliability suites' one harness.
//!
//! The time bar is CPU time (`RLIMIT_CPU`), which measures the run's own work whatever else the
//! machine is doing; a run that waits without working (a blocked read) is caught by a wall
//! clock set far above it, so a busy machine never fails a run that did its work in time.
//!
//! The address space is capped (`RLIMIT_AS`) well above the budget, so a runaway allocation
//! fails fast instead of taking the machine; the budget itself is checked on the child's peak
//! resident memory, which `wait4` reports.

// Each suite includes this file and reads only the parts of an outcome it checks.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a bounded run may use.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// CPU time (user and system, every thread) allowed.
    pub cpu: Duration,
    /// Wall-clock time allowed: a hang guard for a run that waits instead of working.
    pub wall: Duration,
    /// Peak resident memory allowed.
    pub rss_bytes: u64,
    /// The address-space cap: a safety net, larger than `rss_bytes` (threads reserve stacks).
    pub address_space_bytes: u64,
}

impl Limits {
    /// The bar: 10 s and 2 GB.
    pub const STRICT: Limits = Limits {
        cpu: Duration::from_secs(10),
        wall: Duration::from_secs(120),
        rss_bytes: 2 << 30,
        address_space_bytes: 8 << 30,
    };
}

/// How a bounded run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code, or `None` when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Killed by the wall-clock hang guard.
    pub timed_out: bool,
    /// Stopped by the kernel at the CPU-time limit.
    pub out_of_cpu: bool,
    pub peak_rss_bytes: u64,
    pub elapsed: Duration,
    /// CPU time (user and system): unlike `elapsed`, it does not grow when the machine is busy.
    pub cpu: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Rust's panic exit code, or an abort, or a kill by the harness.
    pub fn crashed(&self) -> bool {
        self.code == Some(101) || self.signal.is_some() || self.stderr.contains("panicked at")
    }

    /// Why this run breaks the contract (no panic, no hang, bounded memory), if it does.
    pub fn violation(&self, limits: &Limits) -> Option<String> {
        if self.timed_out {
            return Some(format!("ran past {:?} of wall-clock time", limits.wall));
        }
        if self.out_of_cpu {
            return Some(format!("ran past {:?} of CPU time", limits.cpu));
        }
        if self.crashed() {
            return Some(format!("crashed (code {:?}, signal {:?})", self.code, self.signal));
        }
        if self.peak_rss_bytes > limits.rss_bytes {
            return Some(format!("peak RSS {} MiB", self.peak_rss_bytes >> 20));
        }
        None
    }
}

/// Run `wick args` in `dir` under `limits`, with `RUST_BACKTRACE=1` as many machines set it.
// The child is reaped by `wait4` (which also reports its peak memory), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
pub fn run_bounded(args: &[&str], dir: &Path, limits: Limits) -> Outcome {
    run_bounded_command(wick_command(args, dir), limits)
}

/// The command [`run_bounded`] runs, for a test that changes it (another user, more
/// environment) before [`run_bounded_command`] runs it.
pub fn wick_command(args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wick"));
    command.args(args).current_dir(dir).env("NO_COLOR", "1").env("RUST_BACKTRACE", "1");
    command
}

/// Run `command` under `limits`, its standard input empty and its outputs captured.
pub fn run_bounded_command(mut command: Command, limits: Limits) -> Outcome {
    let cap = limits.address_space_bytes;
    // The kernel sends SIGXCPU at the soft limit and SIGKILL a second later.
    let cpu_seconds = limits.cpu.as_secs().max(1);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: cap, rlim_max: cap };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let cpu = libc::rlimit { rlim_cur: cpu_seconds, rlim_max: cpu_seconds + 1 };
            if libc::setrlimit(libc::RLIMIT_CPU, &cpu) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    // Reaped by wait4 below, which also reports its peak memory.
    #[allow(clippy::zombie_processes)]
    let mut child = command.spawn().expect("spawn wick");
    let (mut out, mut err) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let out_reader = std::thread::spawn(move || read_capped(&mut out));
    let err_reader = std::thread::spawn(move || read_capped(&mut err));
    let pid = child.id() as libc::pid_t;
    let mut timed_out = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own child; status and usage point at live locals.
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if done == pid {
            break (std::process::ExitStatus::from_raw(status), usage);
        }
        // Anything but "still running" or an interrupted wait would loop here forever.
        let error = std::io::Error::last_os_error();
        assert!(done == 0 || error.kind() == std::io::ErrorKind::Interrupted, "wait4: {error}");
        if !timed_out && started.elapsed() > limits.wall {
            timed_out = true;
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    let signal = if timed_out { None } else { status.signal() };
    let out_of_cpu = signal == Some(libc::SIGXCPU)
        || (signal == Some(libc::SIGKILL) && cpu >= Duration::from_secs(cpu_seconds));
    Outcome {
        code: status.code(),
        signal: if out_of_cpu { None } else { signal },
        timed_out,
        out_of_cpu,
        // Linux reports ru_maxrss in KiB.
        peak_rss_bytes: (usage.ru_maxrss.max(0) as u64) << 10,
        elapsed,
        cpu,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

fn seconds(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// At most 1 MiB of a stream, the rest read and dropped.
fn read_capped(r: &mut impl Read) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        if kept.len() < 1 << 20 {
            kept.extend_from_slice(&buf[..n]);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}
