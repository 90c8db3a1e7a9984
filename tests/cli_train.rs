//! `wick train` from the command line: a shipped spec trains from its own `train` section,
//! reports JSON and checkpoints atomically; a resumed run continues exactly; configuration
//! mistakes are refused with their position.

mod common;
use common::wick;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-train-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

#[test]
fn the_iris_spec_trains_from_its_own_train_section() {
    let dir = temp("iris");
    let out = dir.to_str().unwrap();
    let report = json(&wick(&["train", "specs/iris_mlp.wick", "--out", out, "--format", "json"]));
    for key in ["epochs", "train_loss", "val_loss", "val_accuracy", "samples_per_s", "best_epoch"] {
        assert!(report.get(key).is_some(), "{key} missing: {report}");
    }
    assert_eq!(report["epochs"], 60);
    assert!(report["val_accuracy"].as_f64().unwrap() >= 0.95, "{report}");
    for f in ["checkpoint.safetensors", "weights.safetensors"] {
        assert!(dir.join(f).is_file(), "{f}");
        assert!(!dir.join(format!(".{f}.tmp")).exists(), "temporary {f} left behind");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_small_cnn_learns_the_8x8_digits_to_95_percent() {
    let dir = temp("digits");
    let report =
        json(&wick(&["train", "specs/digits_cnn.wick", "--out", dir.to_str().unwrap(), "--format", "json"]));
    assert!(report["val_accuracy"].as_f64().unwrap() >= 0.95, "{report}");
    let curves = std::fs::read_to_string(dir.join("curves.svg")).unwrap();
    assert!(
        curves.starts_with("<svg") && curves.contains("accuracy"),
        "{}",
        &curves[..200.min(curves.len())]
    );
    let log = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(log.lines().filter(|l| l.starts_with("epoch,")).count(), 12, "{log}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_frozen_backbone_under_a_new_head_keeps_its_trained_weights() {
    let (base, tuned) = (temp("base"), temp("tuned"));
    json(&wick(&[
        "train",
        "specs/digits_cnn.wick",
        "--epochs",
        "2",
        "--out",
        base.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let weights = base.join("weights.safetensors");
    let out = wick(&[
        "train",
        "examples/transfer/digits_finetune.wick",
        "--init",
        weights.to_str().unwrap(),
        "--epochs",
        "2",
        "--out",
        tuned.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loaded 4 tensors"), "{err}");
    let read = |p: &std::path::Path| candle_core::safetensors::load(p, &candle_core::Device::Cpu).unwrap();
    let (before, after) = (read(&weights), read(&tuned.join("weights.safetensors")));
    for key in ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"] {
        let diff = (&before[key] - &after[key]).unwrap().abs().unwrap().sum_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{key} moved");
    }
    assert!(after.contains_key("head2.weight") && !after.contains_key("fc2.weight"));
    for d in [base, tuned] {
        std::fs::remove_dir_all(&d).ok();
    }
}

#[test]
fn one_epoch_and_a_resumed_one_equal_two_straight() {
    let (straight, split) = (temp("straight"), temp("split"));
    let run = |dir: &std::path::Path, epochs: &str, resume: bool| {
        let mut args = vec![
            "train",
            "specs/iris_mlp.wick",
            "--epochs",
            epochs,
            "--out",
            dir.to_str().unwrap(),
            "--format",
            "json",
        ];
        if resume {
            args.push("--resume");
        }
        json(&wick(&args))
    };
    let two = run(&straight, "2", false);
    let one = run(&split, "1", false);
    assert_eq!(one["epochs"], 1);
    let resumed = run(&split, "2", true);
    assert_eq!(resumed["epochs"], 2);
    assert_eq!(resumed["steps"], two["steps"]);
    // Identical, not close: same batches, same optimizer state, same arithmetic. Only the
    // clock differs.
    let figures = |r: &serde_json::Value| {
        let mut h = r["history"].clone();
        for e in h.as_array_mut().unwrap() {
            e.as_object_mut()
                .unwrap()
                .retain(|k, _| !matches!(k.as_str(), "elapsed_s" | "samples_per_s" | "train_s"));
        }
        h
    };
    assert_eq!(figures(&resumed), figures(&two));
    assert!(figures(&two)[1]["train"][0][1].as_f64().unwrap() > 0.0);
    let weights = |d: &std::path::Path| std::fs::read(d.join("weights.safetensors")).unwrap();
    assert_eq!(weights(&straight), weights(&split));
    for d in [straight, split] {
        std::fs::remove_dir_all(&d).ok();
    }
}

#[test]
fn a_yaml_config_replaces_the_section_and_flags_override_it() {
    let dir = temp("yaml");
    let config = dir.join("train.yaml");
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv");
    std::fs::write(
        &config,
        format!("data: {{csv: {csv}, target: species, standardize: true}}\nepochs: 30\nbatch_size: 10\n"),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let report = json(&wick(&[
        "train",
        "specs/iris_mlp.wick",
        "--config",
        c,
        "--epochs",
        "3",
        "--out",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(report["epochs"], 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_range_test_writes_its_curve_and_suggests_a_rate() {
    let dir = temp("lr-find");
    let report =
        json(&wick(&["lr-find", "specs/iris_mlp.wick", "--out", dir.to_str().unwrap(), "--format", "json"]));
    let lr = report["suggested"].as_f64().expect("a suggested rate");
    assert!((1e-5..1.0).contains(&lr), "{report}");
    let csv = std::fs::read_to_string(dir.join("lr_find.csv")).unwrap();
    assert!(csv.starts_with("lr,loss,smoothed\n") && csv.lines().count() > 50, "{csv}");
    assert!(std::fs::read_to_string(dir.join("lr_find.svg")).unwrap().contains("learning rate"));
    std::fs::remove_dir_all(&dir).ok();
}

/// The suggestion trains the digits CNN as well as the spec's own rate (3e-3, Adam): within a
/// point of its validation accuracy (359 examples: a point is under four of them). The rule it
/// replaced suggested 2.6e-2, which trained to 80.5%.
#[test]
fn training_at_the_suggested_rate_does_as_well_as_the_specs_own() {
    let dir = temp("lr-find-digits");
    let found = json(&wick(&[
        "lr-find",
        "specs/digits_cnn.wick",
        "--out",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let lr = found["suggested"].as_f64().expect("a suggested rate");
    let accuracy = |extra: &[&str]| {
        let out = dir.join(format!("run{}", extra.len()));
        let mut args =
            vec!["train", "specs/digits_cnn.wick", "--out", out.to_str().unwrap(), "--format", "json"];
        args.extend_from_slice(extra);
        json(&wick(&args))["val_accuracy"].as_f64().unwrap()
    };
    let (suggested, own) = (accuracy(&["--lr", &lr.to_string()]), accuracy(&[]));
    eprintln!("suggested {lr:.2e}: {suggested}; the spec's rate: {own}");
    assert!(suggested >= own - 0.01, "at {lr:.2e}: {suggested} against {own}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Two interleaved spirals (200 points each, three half-turns, a little deterministic
/// jitter) and a small MLP: the rule the range test used before suggested 0.292 here, which
/// trains to chance (47.5%); the valley's suggestion must do at least as well as Adam's
/// default 1e-3 and be far from chance.
#[test]
fn training_at_the_suggested_rate_learns_a_spiral() {
    let dir = temp("lr-find-spiral");
    let mut csv = String::from("x,y,label\n");
    for class in 0..2 {
        for i in 0..200 {
            let t = i as f64 / 200.0;
            let angle = 3.0 * std::f64::consts::PI * t + class as f64 * std::f64::consts::PI;
            let r = t + 0.03 * (i as f64 * 12.9898 + class as f64 * 78.233).sin();
            csv.push_str(&format!("{:.5},{:.5},{class}\n", r * angle.cos(), r * angle.sin()));
        }
    }
    std::fs::write(dir.join("spiral.csv"), csv).unwrap();
    let spec = dir.join("spiral.wick");
    std::fs::write(
        &spec,
        "dim N = 16\nmodel Spiral {\n    input x: [N, 2]\n    logits = x |> fc1: Linear(32) |> ReLU |> fc2: Linear(32) |> ReLU |> fc3: Linear(2)\n    output logits\n}\ntrain {\n    data: { csv: \"spiral.csv\", target: label, val_split: 0.2 }\n    optimizer: { name: adam, lr: 0.001 }\n    epochs: 40\n    batch_size: 16\n}\n",
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let found = json(&wick(&["lr-find", spec, "--out", dir.to_str().unwrap(), "--format", "json"]));
    let lr = found["suggested"].as_f64().expect("a suggested rate");
    let accuracy = |extra: &[&str]| {
        let out = dir.join(format!("run{}", extra.len()));
        let mut args = vec!["train", spec, "--out", out.to_str().unwrap(), "--format", "json"];
        args.extend_from_slice(extra);
        json(&wick(&args))["val_accuracy"].as_f64().unwrap()
    };
    let (suggested, default) = (accuracy(&["--lr", &lr.to_string()]), accuracy(&[]));
    eprintln!("suggested {lr:.2e}: {suggested}; Adam's default 1e-3: {default}");
    assert!(suggested >= default && suggested >= 0.75, "at {lr:.2e}: {suggested} against {default}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn configuration_mistakes_point_at_their_line() {
    let dir = temp("bad");
    let config = dir.join("bad.yaml");
    std::fs::write(&config, "data: {csv: x.csv, target: y}\nepochz: 3\n").unwrap();
    let out = wick(&["train", "specs/iris_mlp.wick", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:2:1") && err.contains("unknown key `epochz`"), "{err}");
    assert!(err.contains("did you mean `epochs`?"), "{err}");

    let spec = dir.join("m.wick");
    std::fs::write(&spec, "dim N = 2\nmodel M { input x: [N, 4]\n output y = x |> Linear(3) }\ntrain {\n  data: { csv: \"d.csv\", target: y }\n  optimizer: { name: adamw, betas: 0.9 }\n}\n").unwrap();
    let out = wick(&["train", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("m.wick:6:"), "{err}");

    let out = wick(&["train", "specs/lenet5.wick"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no `train` section"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn misspelt_monitors_and_zero_sizes_are_refused_before_training_at_their_key() {
    let dir = temp("checks");
    let cases = [
        ("early_stopping: {monitor: val_los}\n", "bad.yaml:2:27", "did you mean `val_loss`?"),
        ("metrics: [acuracy]\n", "bad.yaml:2:10", "unknown metric `acuracy`"),
        ("batch_size: 0\n", "bad.yaml:2:13", "`batch_size` must be at least 1"),
        ("schedule: {name: plateau, monitor: val_accuracy}\nloss: mse\n", "bad.yaml:2:", "not a figure"),
    ];
    for (yaml, at, says) in cases {
        let config = dir.join("bad.yaml");
        std::fs::write(&config, format!("data: {{csv: ../../data/iris.csv, target: species}}\n{yaml}"))
            .unwrap();
        let out = wick(&["train", "specs/iris_mlp.wick", "--config", config.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{yaml}: {err}");
        assert!(err.contains("E0501") && err.contains(at) && err.contains(says), "{yaml}: {err}");
    }
    let out = wick(&["train", "specs/iris_mlp.wick", "--batch-size", "0", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`batch_size` must be at least 1"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ctrl_c_stops_after_the_step_and_keeps_a_resumable_checkpoint() {
    let dir = temp("interrupt");
    let checkpoint = dir.join("checkpoint.safetensors");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(["train", "specs/digits_cnn.wick", "--epochs", "100000", "--format", "json", "--out"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !checkpoint.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(checkpoint.exists(), "no checkpoint within the deadline");
    let sent = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stopped"], "interrupted");
    // The checkpoint is whole: training resumes from it.
    let done = report["epochs"].as_u64().unwrap();
    let next = (done + 1).to_string();
    let resumed = json(&wick(&[
        "train",
        "specs/digits_cnn.wick",
        "--resume",
        "--epochs",
        &next,
        "--out",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(resumed["epochs"].as_u64(), Some(done + 1));
    std::fs::remove_dir_all(&dir).ok();
}

/// Whether `dir` holds a staging folder of a checkpoint being written.
fn checkpoint_in_flight(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        name.starts_with(".checkpoint.safetensors.tmp")
    })
}

#[test]
fn a_kill_between_a_checkpoints_write_and_its_rename_keeps_the_last_one_and_resumes_exactly() {
    let (straight, killed) = (temp("kill-straight"), temp("kill"));
    let args = |dir: &std::path::Path, resume: bool| {
        let mut a: Vec<String> =
            ["train", "specs/iris_mlp.wick", "--epochs", "3", "--format", "json", "--out"]
                .map(String::from)
                .to_vec();
        a.push(dir.to_str().unwrap().to_string());
        if resume {
            a.push("--resume".into());
        }
        a
    };
    let run = |a: Vec<String>| json(&wick(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    let expected = run(args(&straight, false));
    // Every file replacement waits between its write and its rename: the second checkpoint's
    // write is caught there and the process killed, as a power cut or an OOM kill would.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(args(&killed, false))
        .env("WICK_TEST_PAUSE_BEFORE_RENAME_MS", "400")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = killed.join("checkpoint.safetensors");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(checkpoint.exists() && checkpoint_in_flight(&killed)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(checkpoint_in_flight(&killed), "the second checkpoint write was never seen");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(checkpoint_in_flight(&killed), "the kill left the write's staging folder");

    let resumed = run(args(&killed, true));
    assert!(!checkpoint_in_flight(&killed), "the next start cleans what the kill left");
    let figures = |r: &serde_json::Value| {
        let mut h = r["history"].clone();
        for e in h.as_array_mut().unwrap() {
            e.as_object_mut()
                .unwrap()
                .retain(|k, _| !matches!(k.as_str(), "elapsed_s" | "samples_per_s" | "train_s"));
        }
        h
    };
    assert_eq!(figures(&resumed), figures(&expected));
    let weights = |d: &std::path::Path| std::fs::read(d.join("weights.safetensors")).unwrap();
    assert_eq!(weights(&killed), weights(&straight));
    for d in [straight, killed] {
        std::fs::remove_dir_all(&d).ok();
    }
}

#[test]
fn kfold_trains_a_model_per_fold_and_reports_mean_and_deviation() {
    let dir = temp("kfold");
    let args =
        ["train", "specs/iris_mlp.wick", "--kfold", "3", "--epochs", "3", "--out", dir.to_str().unwrap()];
    let report = json(&wick(&[&args[..], &["--format", "json"]].concat()));
    assert_eq!((report["k"].as_u64(), report["folds"].as_array().map(Vec::len)), (Some(3), Some(3)));
    for fold in 1..=3 {
        assert!(dir.join(format!("fold{fold}/weights.safetensors")).is_file(), "fold {fold}");
    }
    let figures = report["figures"].as_array().unwrap();
    let names: Vec<&str> = figures.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["loss", "accuracy"]);
    for f in figures {
        let values: Vec<f64> = f["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let mean = values.iter().sum::<f64>() / 3.0;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!(
            (f["mean"].as_f64().unwrap() - mean).abs() < 1e-12
                && (f["std"].as_f64().unwrap() - std).abs() < 1e-12
        );
    }
    let text = wick(&args);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("3 of 3 folds trained") && out.contains("accuracy") && out.contains(" ± "), "{out}");
    let refused = wick(&["train", "specs/iris_mlp.wick", "--kfold", "1"]);
    assert_eq!(refused.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}
