//! `wick train` from the command line: the Iris example trains, reports JSON and checkpoints
//! atomically; a misspelled configuration key is refused with its position.

mod common;
use common::wick;

#[test]
fn the_iris_example_trains_and_checkpoints() {
    let dir = std::env::temp_dir().join(format!("wick-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("train.yaml");
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv");
    std::fs::write(
        &config,
        format!("data: {{csv: {csv}, target: species, standardize: true}}\noptimizer: {{name: adam, lr: 0.01}}\nepochs: 30\nbatch_size: 10\nseed: 2\ncheckpoint_dir: ckpt\n"),
    )
    .unwrap();
    let out = wick(&[
        "train",
        "examples/iris/iris_mlp.wick",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    for key in ["epochs", "train_loss", "val_loss", "val_accuracy", "samples_per_s", "best_epoch"] {
        assert!(report.get(key).is_some(), "{key} missing: {report}");
    }
    assert_eq!(report["epochs"], 30);
    assert!(report["val_accuracy"].as_f64().unwrap() >= 0.9, "{report}");
    for f in ["last.safetensors", "optimizer.safetensors"] {
        assert!(dir.join("ckpt").join(f).is_file(), "{f}");
        assert!(!dir.join("ckpt").join(format!(".{f}.tmp")).exists(), "temporary {f} left behind");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_configuration_keys_are_errors_with_a_position() {
    let dir = std::env::temp_dir().join(format!("wick-train-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bad.yaml");
    std::fs::write(&config, "data: {csv: x.csv, target: y}\nepochz: 3\n").unwrap();
    let out = wick(&["train", "examples/iris/iris_mlp.wick", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:2:1") && err.contains("unknown field `epochz`"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
