//! Broken files, made here, given to every reader wick has — `wick run`'s inputs and weights,
//! `wick train`'s data (npy, npz, idx, csv, safetensors) and its `init` — and awkward targets
//! to its writers. Each run of the real binary is bounded (10 s, 2 GB) with RUST_BACKTRACE=1:
//! no panic, no hang, no runaway allocation, exit 1 or 2, one message that names the file and
//! no backtrace.

#[path = "common/bounded.rs"]
mod bounded;
#[path = "common/broken.rs"]
mod broken;

use std::path::{Path, PathBuf};

use bounded::{run_bounded_command, wick_command, Limits, Outcome};
use broken::{csv, idx, npy, npz, safetensors, Scratch};

const SPEC: &[u8] = b"dim N = 2\nmodel M {\n    input x: [N, 4]\n    output y = x |> fc: Linear(3)\n}\n";

/// A small model, its weights and an input, and the good companions of the training data.
struct Setup {
    scratch: Scratch,
    weights: PathBuf,
    x: PathBuf,
}

fn setup(name: &str) -> Setup {
    let scratch = Scratch::new(name);
    scratch.write("m.wick", SPEC);
    let weights = scratch.path("good.safetensors");
    let o = run(&scratch, &["compile", "m.wick", "-o", "good.safetensors"], false);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let x = scratch.write("x.npy", &npy::file("<f4", "(2, 4)", 32));
    scratch.write("y.npy", &npy::file("<i8", "(8,)", 64));
    scratch.write("labels-idx1-ubyte", &idx::file(&[8], 8));
    Setup { scratch, weights, x }
}

/// `wick args` in the scratch folder, bounded; as a user other than root if `locked_out` (root
/// reads a file whatever its permissions say).
fn run(scratch: &Scratch, args: &[&str], locked_out: bool) -> Outcome {
    let mut command = wick_command(args, &scratch.0);
    if locked_out && broken::is_root() {
        use std::os::unix::process::CommandExt;
        command.uid(broken::NOBODY).gid(broken::NOBODY);
    }
    run_bounded_command(command, Limits::STRICT)
}

/// What is wrong with how a run that should refuse `file` ended, if anything.
fn misbehaviour(o: &Outcome, file: &Path) -> Option<String> {
    let problem = match o.violation(&Limits::STRICT) {
        Some(v) => v,
        None if !matches!(o.code, Some(1 | 2)) => format!("exit {:?}", o.code),
        None if !o.stderr.contains(&file.display().to_string()) => {
            "the message does not name the file".into()
        }
        None if has_backtrace(o) => "a backtrace with RUST_BACKTRACE=1 and no -v".into(),
        None => return None,
    };
    Some(format!("{}: {problem}\n{}", file.display(), o.stderr.trim_end()))
}

/// A frame of a std backtrace (`  12: candle_core::...`), as candle's errors can carry.
fn has_backtrace(o: &Outcome) -> bool {
    o.stderr.lines().any(|l| {
        let (n, _) = l.trim_start().split_once(": ").unwrap_or(("", ""));
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

fn assert_none(problems: Vec<String>) {
    assert!(problems.is_empty(), "{} failures:\n\n{}", problems.len(), problems.join("\n\n"));
}

impl Setup {
    /// Each of `files` refused by the command `args_for` makes for it.
    fn refuse_each(
        &self,
        files: Vec<(PathBuf, bool)>,
        args_for: impl Fn(&Path) -> Vec<String>,
    ) -> Vec<String> {
        files
            .into_iter()
            .filter_map(|(file, locked_out)| {
                let args = args_for(&file);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                misbehaviour(&run(&self.scratch, &args, locked_out), &file)
            })
            .collect()
    }

    fn run_args(&self, weights: &Path, input: &Path) -> Vec<String> {
        let (w, x) = (weights.display(), input.display());
        [
            "run",
            "m.wick",
            "--weights",
            &w.to_string(),
            "--input",
            &format!("x={x}"),
            "--output",
            "out.safetensors",
        ]
        .map(String::from)
        .to_vec()
    }

    /// `wick train` with a configuration file of `yaml` and one epoch.
    fn train_args(&self, yaml: &str) -> Vec<String> {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config = self
            .scratch
            .write(&format!("config-{n}.yaml"), format!("{yaml}\nepochs: 1\nbatch_size: 2\n").as_bytes());
        let out = self.scratch.path(&format!("run-{n}"));
        ["train", "m.wick", "--config", &config.display().to_string(), "--out", &out.display().to_string()]
            .map(String::from)
            .to_vec()
    }
}

#[test]
fn broken_inputs_to_run_are_refused_naming_the_file() {
    let s = setup("run-inputs");
    let good =
        run(&s.scratch, &s.run_args(&s.weights, &s.x).iter().map(String::as_str).collect::<Vec<_>>(), false);
    assert_eq!(good.code, Some(0), "{}", good.stderr);
    let mut files = s.scratch.all("in.npy", &npy::file("<f4", "(2, 4)", 32), npy::broken());
    files.extend(s.scratch.all(
        "in.safetensors",
        &safetensors::file(&[("x", "F32", &[2, 4])]),
        safetensors::broken(),
    ));
    // Readable, but not what the model takes.
    files.push((s.scratch.write("ints.safetensors", &safetensors::file(&[("x", "I64", &[2, 4])])), false));
    files.push((s.scratch.write("wide.npy", &npy::file("<f4", "(2, 5)", 40)), false));
    assert_none(s.refuse_each(files, |f| s.run_args(&s.weights, f)));
}

#[test]
fn broken_weights_are_refused_naming_the_file() {
    let s = setup("run-weights");
    let mut broken = safetensors::broken();
    broken.push(("passwd", b"root:x:0:0:root:/root:/bin/bash\n".to_vec()));
    broken.push(("other-model", safetensors::file(&[("encoder.weight", "F32", &[2, 2])])));
    let files = s.scratch.all("w.safetensors", &std::fs::read(&s.weights).unwrap(), broken);
    let mut problems = s.refuse_each(files.clone(), |f| s.run_args(f, &s.x));
    // The same files as a training run's starting weights.
    let data = broken::data_config("npy", &s.scratch.path("x8.npy"), &s.scratch.0);
    s.scratch.write("x8.npy", &npy::file("<f4", "(8, 4)", 128));
    problems.extend(s.refuse_each(files, |f| s.train_args(&format!("{data}\ninit: '{}'", f.display()))));
    assert_none(problems);
}

#[test]
fn broken_training_data_is_refused_naming_the_file() {
    let s = setup("train-data");
    let good = broken::data_config(
        "npy",
        &s.scratch.write("x8.npy", &npy::file("<f4", "(8, 4)", 128)),
        &s.scratch.0,
    );
    let control = s.train_args(&good);
    let o = run(&s.scratch, &control.iter().map(String::as_str).collect::<Vec<_>>(), false);
    assert_eq!(o.code, Some(0), "{}", o.stderr);

    let readers = [
        ("npy", "x.npy", npy::file("<f4", "(8, 4)", 128), npy::broken()),
        ("npz", "d.npz", npz::valid(), npz::broken()),
        ("idx", "images-idx3-ubyte", idx::file(&[8, 2, 2], 32), idx::broken()),
        ("csv", "d.csv", csv::valid(), csv::broken()),
        (
            "safetensors",
            "d.safetensors",
            safetensors::file(&[("x", "F32", &[8, 4]), ("y", "I64", &[8])]),
            safetensors::broken(),
        ),
    ];
    let mut problems = Vec::new();
    for (reader, name, valid, broken) in readers {
        let files = s.scratch.all(name, &valid, broken);
        problems
            .extend(s.refuse_each(files, |f| s.train_args(&broken::data_config(reader, f, &s.scratch.0))));
    }
    assert_none(problems);
}

#[test]
fn writers_replace_only_regular_files_and_name_the_target() {
    let s = setup("targets");
    let victim = s.scratch.write("victim.txt", b"keep me");
    let link = s.scratch.path("link.safetensors");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let fifo = s.scratch.path("fifo.safetensors");
    broken::mkfifo(&fifo);
    let folder = s.scratch.path("folder.safetensors");
    std::fs::create_dir(&folder).unwrap();
    let locked = s.scratch.path("locked");
    std::fs::create_dir(&locked).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let targets = [
        (link.clone(), false),
        (fifo.clone(), false),
        (folder, false),
        (victim.join("under-a-file.safetensors"), false),
        (locked.join("w.safetensors"), true),
        (s.scratch.path("no-such-folder").join("w.safetensors"), false),
    ];
    let mut problems = Vec::new();
    for (target, locked_out) in targets {
        let t = target.display().to_string();
        let mut run_args = s.run_args(&s.weights, &s.x);
        *run_args.last_mut().unwrap() = t.clone();
        for args in [vec!["compile".to_string(), "m.wick".into(), "-o".into(), t.clone()], run_args] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            problems.extend(misbehaviour(&run(&s.scratch, &args, locked_out), &target));
        }
    }
    assert_none(problems);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(!s.scratch.path("no-such-folder").exists(), "a folder a user did not ask for");
}

/// The real binary on a spec of the repository, with the given standard output and error.
fn wick_to(args: &[&str], stdout: std::process::Stdio, stderr: std::process::Stdio) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_BACKTRACE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawn wick")
}

fn dev_full() -> std::process::Stdio {
    std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full").into()
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::process::Stdio;
    for args in
        [&["compile", "specs/resnet18.wick", "--summary"][..], &["ops"], &["graph", "specs/resnet18.wick"]]
    {
        // The reading end is closed before wick starts, as `| head -0` would close it: a pipe
        // closed after spawning races with a fast command that fills the pipe's buffer first.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = wick_to(args, writer.into(), Stdio::piped()).wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn a_full_disk_under_stdout_or_stderr_is_one_line_and_exit_2() {
    use std::process::Stdio;
    let json = ["compile", "specs/resnet18.wick", "--summary", "--format", "json"];
    for args in [&["ops"][..], &json, &["check", "specs/resnet18.wick"], &["catalog", "specs"], &["--help"]] {
        let o = wick_to(args, dev_full(), Stdio::piped()).wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr, "error: cannot write to standard output: No space left on device (os error 28)\n");
    }
    // Where the error itself cannot be said: no panic, exit 2.
    for args in [&["check", "no-such.wick"][..], &["ops"]] {
        let o = wick_to(args, dev_full(), dev_full()).wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn runtime_errors_are_one_line_and_the_backtrace_waits_for_verbose() {
    let s = setup("verbose");
    let ints = s.scratch.write("ints.safetensors", &safetensors::file(&[("x", "I64", &[2, 4])]));
    let args = s.run_args(&s.weights, &ints);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&s.scratch, &args, false);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    let line =
        format!("error: input `x` must be a float tensor, found I64 (inputs: `x` from {})\n", ints.display());
    assert_eq!(o.stderr, line);
    args.push("-v");
    let o = run(&s.scratch, &args, false);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.starts_with("error: input `x` must be a float tensor") && has_backtrace(&o),
        "{}",
        o.stderr
    );
}
