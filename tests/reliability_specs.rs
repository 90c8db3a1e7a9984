//! The reliability suite for specs: adversarial specs made deterministically from the catalog
//! (`specs/`, `std/`) and the seeds in `tests/reliability/`, each run through the real binary
//! (`wick compile SPEC --summary` and `wick check SPEC`) under the 10 s (of CPU) / 2 GB bar. No run may
//! panic, hang or exhaust memory; a run that fails must say where (`file:line:column`) and exit
//! 1 (errors in the spec) or 2 (usage, I/O).
//!
//! `WICK_RELIABILITY_LONG=1` runs thousands of cases instead of a few hundred, and
//! `WICK_RELIABILITY_SEED=N` starts the generator elsewhere. A failing case is left on disk
//! and named in the failure, with the mutations that made it.
//!
//! The named tests below are the reproductions of issue 10, one per class.

#[path = "common/bounded.rs"]
mod bounded;
#[path = "reliability/mutate.rs"]
mod mutate;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use bounded::{run_bounded, Limits, Outcome};
use mutate::{Case, Rng};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A wick process running, for [`run_limited`].
static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// [`run_bounded`] under the strict limits, with at most one wick per core running at once
/// across this file's tests (which cargo runs in parallel), so the wall-clock hang guard
/// waits on no queue of this file's own making.
fn run_limited(args: &[&str], dir: &Path) -> Outcome {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    while *running >= cores {
        running = FREED.wait(running).unwrap_or_else(|e| e.into_inner());
    }
    *running += 1;
    drop(running);
    let outcome = run_bounded(args, dir, Limits::STRICT);
    *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
    FREED.notify_one();
    outcome
}

/// A fresh folder for one test's files, under cargo's scratch space for integration tests.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch folder");
    dir
}

/// Whether `text` names a place as `NAME.wick:LINE:COLUMN` (or `.yaml`, `.yml`).
fn has_location(text: &str) -> bool {
    text.match_indices(':').any(|(i, _)| {
        let before = &text[..i];
        let named = [".wick", ".yaml", ".yml"].iter().any(|ext| before.ends_with(ext));
        let mut parts = text[i + 1..].splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let column: String = parts.next().unwrap_or("").chars().take_while(char::is_ascii_digit).collect();
        named && !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) && !column.is_empty()
    })
}

/// Why `outcome` breaks the contract, if it does: a violation of the limits, an exit code
/// other than 0, 1 or 2, or a failure that does not say where.
fn broken(outcome: &Outcome) -> Option<String> {
    if let Some(v) = outcome.violation(&Limits::STRICT) {
        return Some(v);
    }
    match outcome.code {
        Some(0) => None,
        Some(1 | 2) if has_location(&outcome.stderr) => None,
        Some(1 | 2) => Some("failed without a located diagnostic (file:line:column)".into()),
        other => Some(format!("exit code {other:?}")),
    }
}

fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(3000);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    &text[start..]
}

/// Run `wick compile --summary` and `wick check` on `spec` in `dir`; the first broken run.
fn check_case(spec: &str, dir: &Path) -> Option<String> {
    for args in [&["compile", spec, "--summary"][..], &["check", spec][..]] {
        let outcome = run_limited(args, dir);
        if std::env::var_os("WICK_RELIABILITY_TRACE").is_some() {
            let first = outcome.stderr.lines().find(|l| l.starts_with("  x ")).unwrap_or("");
            eprintln!("TRACE {} {:?} {:?} {}", dir.display(), args[0], outcome.code, first);
        }
        if let Some(why) = broken(&outcome) {
            return Some(format!(
                "`wick {}` {why} after {:?}, peak {} MiB; stderr ends:\n{}",
                args.join(" "),
                outcome.elapsed,
                outcome.peak_rss_bytes >> 20,
                tail(&outcome.stderr)
            ));
        }
    }
    None
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

#[test]
fn mutated_catalog_specs_fail_cleanly() {
    let long = std::env::var_os("WICK_RELIABILITY_LONG").is_some_and(|v| v != "0");
    let cases = if long { 3000 } else { 240 };
    let seed = env_number("WICK_RELIABILITY_SEED").unwrap_or(10);
    let sources = mutate::sources(Path::new(ROOT));
    assert!(sources.len() > 30, "the catalog went missing: {} sources", sources.len());
    let base = scratch("mutated");
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cases {
                    break;
                }
                let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64));
                let case = Case::generate(&mut rng, &sources);
                let dir = base.join(format!("case-{i:05}"));
                let spec = case.write(&dir);
                match check_case(&spec, &dir) {
                    Some(why) => failures.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                        "case {i} ({}) in {}: {why}",
                        case.describe(),
                        dir.display()
                    )),
                    None => {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(
        failures.is_empty(),
        "{} of {cases} cases broke the contract (seed {seed}):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("{cases} cases in {:?}", started.elapsed());
}

/// Every hand-written seed in `tests/reliability/` (the constructions the generator reaches
/// rarely: alias bombs, doubling recursion, repeat bombs) fails cleanly as it is.
#[test]
fn seeds_fail_cleanly() {
    let dir = Path::new(ROOT).join("tests/reliability");
    let mut checked = 0;
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("tests/reliability").flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if !(name.ends_with(".wick") || name.ends_with(".yaml")) {
            continue;
        }
        if let Some(why) = check_case(&name, &dir) {
            panic!("tests/reliability/{name}: {why}");
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} seeds found");
}

// ---- the reproductions of issue 10 ----

/// Run `args` in `dir` and require a clean failure with `code` whose stderr mentions `needle`.
fn fails_with(args: &[&str], dir: &Path, code: i32, needle: &str) -> Outcome {
    let outcome = run_limited(args, dir);
    assert_eq!(outcome.violation(&Limits::STRICT), None, "{args:?}: {}", tail(&outcome.stderr));
    assert_eq!(outcome.code, Some(code), "{args:?}:\n{}", tail(&outcome.stderr));
    assert!(outcome.stderr.contains(needle), "{args:?}: no {needle:?} in:\n{}", tail(&outcome.stderr));
    outcome
}

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), text).expect("write a test file");
}

#[test]
fn a_warning_past_column_65535_is_rendered_as_a_window() {
    let dir = scratch("long_line");
    let pad = " ".repeat(70_000);
    write(
        &dir,
        "wide.wick",
        format!("dim N = 1 model M {{ input x: [N, 4]{pad} unused = x |> ReLU output x }}\n"),
    );
    let outcome = run_limited(&["check", "wide.wick"], &dir);
    assert_eq!(outcome.violation(&Limits::STRICT), None, "{}", tail(&outcome.stderr));
    assert_eq!(outcome.code, Some(0), "{}", tail(&outcome.stderr));
    assert!(
        outcome.stderr.contains("W0401") && outcome.stderr.contains("wide.wick:1:70051"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stderr.len() < 2000, "the long line was printed whole: {} bytes", outcome.stderr.len());
}

#[test]
fn a_long_yaml_scalar_error_is_rendered_as_a_window() {
    let dir = scratch("long_yaml");
    let pipe = "|> ReLU ".repeat(10_000);
    write(&dir, "wide.yaml", format!("dims: {{N: 1}}\nmodels:\n  M:\n    body:\n      - input: {{x: \"[N, 4]\"}}\n      - y: x {pipe}|> Lienar(3)\n      - output: y\n"));
    let outcome = fails_with(&["compile", "wide.yaml", "--summary"], &dir, 1, "E0202");
    assert!(outcome.stderr.contains("wide.yaml:6:80017"), "{}", outcome.stderr);
}

#[cfg(feature = "lower")]
#[test]
fn compile_output_refuses_a_model_too_large_for_memory() {
    let dir = scratch("huge_params");
    write(
        &dir,
        "huge.wick",
        "dim N = 1\nmodel M {\n input x: [N, 4]\n y = x |> Linear(100000000000)\n output y\n}\n",
    );
    let outcome = fails_with(
        &["compile", "huge.wick", "-o", "out.safetensors"],
        &dir,
        2,
        "500,000,000,000 parameter values",
    );
    assert!(outcome.stderr.contains("GiB"), "{}", outcome.stderr);
    assert!(!dir.join("out.safetensors").exists());
}

/// `wick run` and `wick train` build through the same path as `compile -o`.
#[cfg(feature = "lower")]
#[test]
fn building_a_model_too_large_for_memory_is_refused_before_allocating() {
    let spec = "dim N = 1\nmodel M {\n input x: [N, 4]\n y = x |> Linear(100000000000)\n output y\n}\n";
    let model = wick::Model::from_source("huge.wick", spec, &wick::Options::default()).expect("compiles");
    let device = candle_core::Device::Cpu;
    let Err(err) = model.build(&device, candle_core::DType::F32) else {
        panic!("a model too large was built")
    };
    let err = err.to_string();
    assert!(err.contains("500,000,000,000 parameter values") && err.contains("GiB"), "{err}");
}

#[test]
fn nested_repeats_without_layers_stop_at_the_work_budget() {
    let dir = scratch("nested_repeat");
    write(&dir, "loops.wick", "dim N = 1\nmodel M {\n input x: [N, 4]\n y = x |> repeat 1000000 { repeat 1000000 { [] } }\n output y\n}\n");
    let outcome = fails_with(&["check", "loops.wick"], &dir, 1, "E0402");
    assert!(outcome.stderr.contains("loops.wick:4:11"), "{}", outcome.stderr);
    assert!(outcome.cpu < Duration::from_secs(5), "took {:?} of CPU", outcome.cpu);
}

#[test]
fn a_doubling_recursive_block_stops_at_the_work_budget() {
    let dir = scratch("doubling");
    let spec = "dim N = 1\nblock R(x: [N, 4], n: int) -> [N, 4] {\n  y = if n == 0 { x } else { x |> R(n - 1) |> R(n - 1) }\n  return y\n}\nmodel M {\n input x: [N, 4]\n y = x |> R(25)\n output y\n}\n";
    write(&dir, "doubling.wick", spec);
    let outcome = fails_with(&["check", "doubling.wick"], &dir, 1, "E0402");
    assert!(outcome.stderr.contains("call of `R`"), "{}", outcome.stderr);
}

#[test]
fn a_model_at_the_layer_cap_fits_in_memory() {
    let dir = scratch("at_cap");
    let cap = wick::elab::MAX_NODES;
    // Each iteration is a layer, plus one group for the repeat: the cap exactly.
    write(
        &dir,
        "cap.wick",
        format!(
            "dim N = 1\nmodel M {{\n input x: [N, 4]\n y = x |> repeat {} {{ ReLU }}\n output y\n}}\n",
            cap - 2
        ),
    );
    let outcome = run_limited(&["check", "cap.wick"], &dir);
    assert_eq!(outcome.violation(&Limits::STRICT), None, "{}", tail(&outcome.stderr));
    assert_eq!(outcome.code, Some(0), "{}", tail(&outcome.stderr));
    assert!(outcome.stdout.contains("ok: model M"), "{}", outcome.stdout);
    assert!(outcome.peak_rss_bytes < 1 << 30, "peak {} MiB", outcome.peak_rss_bytes >> 20);
}

#[test]
fn a_spec_over_64_mib_is_refused_with_its_size() {
    let dir = scratch("big_file");
    let file = std::fs::File::create(dir.join("big.wick")).expect("create");
    file.set_len((64 << 20) + 1).expect("a sparse file");
    fails_with(&["check", "big.wick"], &dir, 2, "67108865 bytes");
}

#[test]
fn a_device_or_a_fifo_given_as_a_spec_is_refused_at_once() {
    let dir = scratch("fifo");
    let fifo = dir.join("pipe.wick");
    let path = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    fails_with(&["check", "pipe.wick"], &dir, 2, "not a regular file");
    fails_with(&["check", "/dev/zero"], &dir, 2, "not a regular file");
    write(&dir, "uses_zero.wick", "use \"/dev/zero\"\n");
    fails_with(&["check", "uses_zero.wick"], &dir, 1, "not a regular file");
}

#[test]
fn figures_past_i64_are_errors_naming_the_figure() {
    let dir = Path::new(ROOT);
    let outcome = fails_with(
        &["compile", "specs/resnet18.wick", "--summary", "--bind", "N=9223372036854775807"],
        dir,
        1,
        "E0306",
    );
    assert!(outcome.stderr.contains("MAC count does not fit in 64 bits"), "{}", outcome.stderr);
    assert!(has_location(&outcome.stderr), "{}", outcome.stderr);
}

#[test]
fn an_imported_file_that_is_not_a_spec_is_never_shown() {
    let dir = scratch("not_a_spec");
    write(&dir, "secret", "TOPSECRET-1 root:x:0:0\nTOPSECRET-2\n");
    write(&dir, "secret_dim", "dim TOPSECRET = 3 +\nroot:x:0:0:TOPSECRET\n");
    write(&dir, "binary.dat", b"TOPSECRET\xff\xfe\n");
    for (target, why) in
        [("secret", "does not parse"), ("secret_dim", "does not parse"), ("binary.dat", "not UTF-8")]
    {
        write(
            &dir,
            "spec.wick",
            format!("use \"{target}\"\ndim N = 1\nmodel M {{ input x: [N, 4]\n output x }}\n"),
        );
        let outcome = fails_with(&["check", "spec.wick"], &dir, 1, "is not a spec");
        assert!(outcome.stderr.contains(why), "{}", outcome.stderr);
        assert!(!outcome.stderr.contains("TOPSECRET"), "{target} was shown:\n{}", outcome.stderr);
        assert!(outcome.stderr.contains("spec.wick:1:1"), "{}", outcome.stderr);
    }
    let outcome = fails_with(&["check", "secret"], &dir, 1, "is not a spec");
    assert!(!outcome.stderr.contains("TOPSECRET"), "{}", outcome.stderr);
}

#[test]
fn invalid_utf8_in_a_spec_is_located() {
    let dir = scratch("utf8");
    write(&dir, "bad.wick", b"dim N = 1\n# caf\xe9\nmodel M { input x: [N, 4]\n output x }\n");
    fails_with(&["check", "bad.wick"], &dir, 1, "bad.wick:2:6");
}

/// CPU seconds for `wick check` on `text` (a file named `name`), which must compile cleanly.
fn check_seconds(dir: &Path, name: &str, text: &str) -> f64 {
    write(dir, name, text);
    let outcome = run_limited(&["check", name], dir);
    assert_eq!(outcome.violation(&Limits::STRICT), None, "{name}: {}", tail(&outcome.stderr));
    assert_eq!(outcome.code, Some(0), "{name}: {}", tail(&outcome.stderr));
    outcome.cpu.as_secs_f64()
}

/// 20,000 `dim` lines, 20,000 unused bindings and 50,000 YAML dims took quadratic time: 74 s,
/// 39 s and over 120 s of CPU in a debug build. Now 0.5 s, 1.5 s and 5 s.
#[test]
fn many_dims_and_bindings_take_linear_time() {
    let dir = scratch("linear");
    let model = "model M { input x: [N, 4]\n output x }\n";
    let dims: String = (0..20_000).map(|i| format!("dim D{i} = {}\n", i + 1)).collect();
    let t = check_seconds(&dir, "dims.wick", &format!("dim N = 1\n{dims}{model}"));
    assert!(t < 4.0, "20,000 dims: {t:.1} s");
    let bindings: String = (0..20_000).map(|i| format!(" u{i} = x |> ReLU\n")).collect();
    let t = check_seconds(
        &dir,
        "bindings.wick",
        &format!("dim N = 1\nmodel M {{ input x: [N, 4]\n{bindings} output x }}\n"),
    );
    assert!(t < 4.0, "20,000 unused bindings: {t:.1} s");
    let yaml_dims: String = (0..50_000).map(|i| format!("  D{i}: {}\n", i + 1)).collect();
    let yaml = format!("dims:\n  N: 1\n{yaml_dims}models:\n  M:\n    body:\n      - input: {{x: \"[N, 4]\"}}\n      - output: x\n");
    let t = check_seconds(&dir, "dims.yaml", &yaml);
    assert!(t < 8.0, "50,000 YAML dims: {t:.1} s");
}
