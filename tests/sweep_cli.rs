//! `wick sweep` from the command line: a grid over two rates and two batch sizes on the Iris
//! spec prints its four-row table; random sweeps repeat with their seed, whether their runs
//! go one at a time or several at once; bad settings stop the sweep before it trains; a run
//! that fails is a row.

mod common;
use common::wick;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-sweep-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

fn sweep(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", "specs/iris_mlp.wick", "--set", "epochs=4", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    wick(&args)
}

fn results(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

fn event_files(folder: &std::path::Path) -> usize {
    std::fs::read_dir(folder)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("events.out.tfevents."))
        .count()
}

#[test]
fn a_grid_over_two_rates_and_two_batch_sizes_prints_its_four_row_table() {
    let dir = temp("grid");
    let out = sweep(&dir, &["--grid", "lr=1e-3,3e-2", "--grid", "batch_size=16,32"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(table.len(), 6, "a header, its rule and four rows:\n{stdout}");
    assert_eq!(table[0], "| rank | lr | batch_size | val_loss | epoch | val_accuracy | time | run |");
    let ranks: Vec<&str> = table[2..].iter().map(|l| l.split('|').nth(1).unwrap().trim()).collect();
    assert_eq!(ranks, ["1", "2", "3", "4"]);
    // Ranked by validation loss, least first, and the best run's section carries its settings.
    let report = results(&dir);
    let runs = report["runs"].as_array().unwrap();
    let losses: Vec<f64> = runs.iter().map(|r| r["value"].as_f64().unwrap()).collect();
    assert!(losses.windows(2).all(|w| w[0] <= w[1]), "{losses:?}");
    let best = &runs[0]["settings"];
    let section = report["best_section"].as_str().unwrap();
    let (lr, batch) = (best["optimizer.lr"].as_str().unwrap(), best["batch_size"].as_str().unwrap());
    assert!(
        section.contains(&format!("lr: {lr} }}")) && section.contains(&format!("batch_size: {batch}\n")),
        "{section}"
    );
    assert!(stdout.contains(section.trim_end()), "the section is printed:\n{stdout}");
    // The larger rate learns more in 4 epochs: both of its runs rank above the smaller's.
    assert!(runs[..2].iter().all(|r| r["settings"]["optimizer.lr"] == "3e-2"), "{report}");
    // Each run trained in its own folder, and results.md holds the table.
    for run in runs {
        let folder = std::path::Path::new(run["out"].as_str().unwrap());
        assert!(folder.starts_with(&dir) && folder.join("metrics.csv").is_file(), "{run}");
        assert_eq!(event_files(folder), 1, "{run}: a TensorBoard event file beside metrics.csv");
        assert_eq!(run["epochs"], 4);
    }
    let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
    assert!(table.iter().all(|l| md.contains(l)), "{md}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_random_sweep_repeats_with_its_seed_one_run_at_a_time_or_two() {
    let (a, b, c) = (temp("random-a"), temp("random-b"), temp("random-c"));
    let draw = ["--random", "3", "--range", "lr=1e-3:1e-1:log", "--grid", "batch_size=16,32"];
    let settings_and_values = |dir: &std::path::Path, extra: &[&str]| {
        let mut args = draw.to_vec();
        args.extend_from_slice(extra);
        let out = sweep(dir, &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut runs: Vec<(u64, String, f64)> = results(dir)["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["index"].as_u64().unwrap(), r["settings"].to_string(), r["value"].as_f64().unwrap()))
            .collect();
        runs.sort_by_key(|r| r.0);
        runs
    };
    let first = settings_and_values(&a, &["--seed", "3"]);
    assert_eq!(first.len(), 3);
    assert_eq!(first, settings_and_values(&b, &["--seed", "3", "--jobs", "2"]), "same draws, same results");
    let other = settings_and_values(&c, &["--seed", "4"]);
    assert_ne!(
        first.iter().map(|r| &r.1).collect::<Vec<_>>(),
        other.iter().map(|r| &r.1).collect::<Vec<_>>()
    );
    for dir in [a, b, c] {
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn bad_settings_are_refused_before_any_run_with_what_was_expected() {
    let dir = temp("bad");
    for (args, expected) in [
        (
            vec!["--grid", "lr=1e-3,fast"],
            "--grid optimizer.lr=fast: invalid type: string \"fast\", expected f64",
        ),
        (vec!["--grid", "epoch=3,5"], "unknown key `epoch` (did you mean `epochs`?"),
        (vec!["--grid", "batch_size=0,8"], "`batch_size` must be at least 1, found 0"),
        (vec!["--range", "lr=1e-4:1e-1:log"], "add --random N"),
        (vec!["--random", "2", "--range", "lr=0:1e-1:log"], "a log range needs a low bound above 0"),
    ] {
        let out = sweep(&dir, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!dir.exists(), "{args:?} trained something");
    }
}

#[test]
fn a_run_that_fails_is_a_row_and_the_others_go_on() {
    let dir = temp("failing");
    let args =
        ["--grid", "data.csv=missing.csv,../data/iris.csv", "--set", "tensorboard=false", "--format", "json"];
    let out = sweep(&dir, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0]["value"].as_f64().is_some(), "{report}");
    assert!(runs[1]["error"].as_str().unwrap().contains("missing.csv"), "{report}");
    assert_eq!(report["best"], runs[0]["name"]);
    assert_eq!(event_files(std::path::Path::new(runs[0]["out"].as_str().unwrap())), 0, "tensorboard: false");
    std::fs::remove_dir_all(&dir).ok();
}

/// The best section, pasted as a `--config` file, trains the best run again: the same
/// validation loss to the last digit.
#[test]
fn the_best_section_pasted_as_a_configuration_repeats_the_best_run() {
    let dir = temp("paste");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("base.yaml");
    let data = std::fs::canonicalize("data/iris.csv").unwrap();
    std::fs::write(
        &config,
        format!(
            "data: {{ csv: \"{}\", target: species, val_split: 0.2 }}\noptimizer: adam\nepochs: 3\n",
            data.display()
        ),
    )
    .unwrap();
    let (config, out) = (config.to_str().unwrap(), dir.join("sweep"));
    let args =
        ["--config", config, "--grid", "lr=1e-2,3e-2", "--grid", "batch_size=8,16", "--format", "json"];
    let swept = sweep(&out, &args);
    assert!(swept.status.success(), "{}", String::from_utf8_lossy(&swept.stderr));
    let report: serde_json::Value = serde_json::from_slice(&swept.stdout).unwrap();
    let section = report["best_section"].as_str().unwrap();
    assert!(
        section.starts_with("# best: run ") && section.contains("\noptimizer: { name: adam, lr: "),
        "{section}"
    );
    let pasted = dir.join("best.yaml");
    std::fs::write(&pasted, section).unwrap();
    let again = dir.join("again");
    let trained = wick(&[
        "train",
        "specs/iris_mlp.wick",
        "--config",
        pasted.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let trained: serde_json::Value = serde_json::from_slice(&trained.stdout).unwrap();
    let best = &report["runs"][0];
    assert_eq!(best["epoch"], 4, "the last of the 4 epochs --set gives: {report}");
    assert_eq!(trained["val_loss"].as_f64(), best["value"].as_f64(), "{section}");
    std::fs::remove_dir_all(&dir).ok();
}
