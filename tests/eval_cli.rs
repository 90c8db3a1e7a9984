//! `wick eval` from the command line on the digits CNN: the confusion matrix and per-class F1,
//! JSON, a PNG; and the preprocessing that travels with the weights: `wick run` on raw rows of
//! the standardized model gives the accuracy `wick eval` reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{Device, Tensor};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// `wick` run in `dir`, so the default run folder is `dir/runs/<spec name>`.
fn wick_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run wick")
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn json(o: Output) -> serde_json::Value {
    serde_json::from_slice(&ok(o).stdout).expect("JSON")
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-eval-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The last `n` rows of the digits CSV as a CSV file, and their raw features `[n, 1, 8, 8]`
/// and labels.
fn raw_rows(dir: &Path, n: usize) -> (PathBuf, Tensor, Vec<i64>) {
    let text = std::fs::read_to_string(format!("{REPO}/data/digits8x8.csv")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let digit = header.iter().position(|c| *c == "digit").unwrap();
    let rows = &lines[lines.len() - n..];
    let path = dir.join("rows.csv");
    std::fs::write(&path, format!("{}\n{}\n", lines[0], rows.join("\n"))).unwrap();
    let (mut xs, mut labels) = (Vec::new(), Vec::new());
    for row in rows {
        for (c, cell) in row.split(',').enumerate() {
            match c == digit {
                true => labels.push(cell.parse::<i64>().unwrap()),
                false => xs.push(cell.parse::<f32>().unwrap()),
            }
        }
    }
    (path, Tensor::from_vec(xs, (n, 1, 8, 8), &Device::Cpu).unwrap(), labels)
}

fn accuracy(logits: &Path, labels: &[i64]) -> f64 {
    let logits = Tensor::read_npy(logits).unwrap();
    let predicted: Vec<u32> = logits.argmax(1).unwrap().to_vec1().unwrap();
    let right = predicted.iter().zip(labels).filter(|(p, t)| **p as i64 == **t).count();
    right as f64 / labels.len() as f64
}

#[test]
fn eval_reports_the_digits_cnn_and_run_on_raw_rows_agrees_with_it() {
    let dir = temp("digits");
    let spec = format!("{REPO}/specs/digits_cnn.wick");
    ok(wick_in(&dir, &["train", &spec, "--epochs", "6", "--format", "json"]));
    // The checkpoint records the standardisation too.
    let meta =
        wick::train::data::read_safetensors_metadata(&dir.join("runs/digits_cnn/checkpoint.safetensors"))
            .unwrap();
    assert!(meta.contains_key("wick.standardize"), "{:?}", meta.keys());

    // The spec's own validation split, weights from the default run folder.
    let o = ok(wick_in(&dir, &["eval", &spec, "--confusion", "confusion.png"]));
    let (text, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(err.contains("weights from runs/digits_cnn/weights.safetensors"), "{err}");
    assert!(err.contains("standardised"), "{err}");
    for expected in ["359 examples (the validation split)", "macro F1", "confusion matrix", "support"] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    assert!(std::fs::read(dir.join("confusion.png")).unwrap().starts_with(b"\x89PNG"));
    let report = json(wick_in(&dir, &["eval", &spec, "--format", "json"]));
    assert_eq!(report["schema"], "wick.eval/1");
    let out = &report["outputs"][0];
    assert_eq!(out["task"], "classification");
    assert_eq!(out["classes"].as_array().unwrap().len(), 10);
    let counts: u64 =
        out["confusion"]["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum();
    assert_eq!(counts, 359);
    assert!(out["accuracy"].as_f64().unwrap() > 0.9, "{report}");
    assert!(out["macro"]["f1"].as_f64().unwrap() > 0.9, "{report}");

    // Raw rows: `eval --data` and `run` read them alike, both standardised from the record.
    let (csv, x, labels) = raw_rows(&dir, 300);
    let evaluated =
        json(wick_in(&dir, &["eval", &spec, "--data", csv.to_str().unwrap(), "--format", "json"]));
    let eval_accuracy = evaluated["outputs"][0]["accuracy"].as_f64().unwrap();
    x.write_npy(dir.join("rows.npy")).unwrap();
    ok(wick_in(&dir, &["run", &spec, "--input", "x=rows.npy", "--output", "logits.npy"]));
    assert_eq!(accuracy(&dir.join("logits.npy"), &labels), eval_accuracy);
    assert!(eval_accuracy > 0.9, "{eval_accuracy}");
    // Without it, the raw inputs are what the model was never trained on.
    ok(wick_in(&dir, &["run", &spec, "--input", "x=rows.npy", "--output", "raw.npy", "--raw"]));
    let raw = accuracy(&dir.join("raw.npy"), &labels);
    assert!(raw < eval_accuracy - 0.05, "raw {raw}, standardised {eval_accuracy}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_without_weights_says_where_it_looked() {
    let dir = temp("none");
    let o = wick_in(&dir, &["eval", &format!("{REPO}/specs/iris_mlp.wick")]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("runs/iris_mlp/weights.safetensors") && err.contains("--weights"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn string_labels_become_sorted_classes_whose_names_reach_the_report() {
    let dir = temp("names");
    let names = ["setosa", "versicolor", "virginica"];
    let text = std::fs::read_to_string(format!("{REPO}/data/iris.csv")).unwrap();
    let named: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| match (i, l.rsplit_once(',')) {
            (0, _) | (_, None) => l.to_string(),
            (_, Some((x, y))) => format!("{x},{}", names[y.trim().parse::<usize>().unwrap()]),
        })
        .collect();
    std::fs::write(dir.join("iris_named.csv"), named.join("\n")).unwrap();
    std::fs::write(
        dir.join("t.yaml"),
        "data: {csv: iris_named.csv, target: species, standardize: true}\n\
         optimizer: {name: adam, lr: 0.01}\nepochs: 20\nbatch_size: 10\n",
    )
    .unwrap();
    let spec = format!("{REPO}/specs/iris_mlp.wick");
    ok(wick_in(&dir, &["train", &spec, "--config", "t.yaml", "--format", "json"]));
    let report = json(wick_in(&dir, &["eval", &spec, "--config", "t.yaml", "--format", "json"]));
    let classes: Vec<&str> = report["outputs"][0]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(classes, names);
    assert!(report["outputs"][0]["accuracy"].as_f64().unwrap() > 0.8, "{report}");
    let text = String::from_utf8(ok(wick_in(&dir, &["eval", &spec, "--config", "t.yaml"])).stdout).unwrap();
    assert!(text.contains("  versicolor  "), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_test_split_is_evaluated_once_after_training_as_wick_eval_evaluates_it() {
    let dir = temp("test-split");
    std::fs::write(
        dir.join("t.yaml"),
        format!(
            "data: {{csv: {REPO}/data/iris.csv, target: species, val_split: 0.2, test_split: 0.2, \
             standardize: true}}\noptimizer: {{name: adam, lr: 0.01}}\nepochs: 30\nbatch_size: 10\n\
             early_stopping: {{patience: 3}}\n"
        ),
    )
    .unwrap();
    let spec = format!("{REPO}/specs/iris_mlp.wick");
    let trained = json(wick_in(&dir, &["train", &spec, "--config", "t.yaml", "--format", "json"]));
    assert_eq!(trained["test_examples"], 30);
    let evaluated = json(wick_in(&dir, &["eval", &spec, "--config", "t.yaml", "--format", "json"]));
    assert_eq!(evaluated["data"], "the test split");
    assert_eq!(evaluated["examples"], 30);
    // The same weights (early stopping's best, restored), the same rows, the same figures.
    let test = &trained["test"];
    let figure =
        |name: &str| test.as_array().unwrap().iter().find(|f| f[0] == name).unwrap()[1].as_f64().unwrap();
    assert!((figure("loss") - evaluated["loss"].as_f64().unwrap()).abs() < 1e-6, "{trained}\n{evaluated}");
    assert_eq!(figure("accuracy"), evaluated["outputs"][0]["accuracy"].as_f64().unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_output_with_a_loss_is_evaluated_and_two_inputs_are_fed_by_name() {
    let dir = temp("per-output");
    std::fs::write(
        dir.join("t.yaml"),
        format!(
            "data: {{npz: {REPO}/data/digits_boxes.npz, inputs: {{image: pixels}}, \
             targets: {{logits: digit, box: box}}, val_split: 0.2, test_split: 0.2, standardize: true}}\n\
             loss: {{logits: cross_entropy, box: {{name: smooth_l1, beta: 0.05, weight: 5.0}}}}\n\
             optimizer: {{name: adam, lr: 0.003}}\nepochs: 2\nbatch_size: 32\n"
        ),
    )
    .unwrap();
    let spec = format!("{REPO}/specs/digits_multitask.wick");
    let trained = json(wick_in(&dir, &["train", &spec, "--config", "t.yaml", "--format", "json"]));
    let evaluated = json(wick_in(&dir, &["eval", &spec, "--config", "t.yaml", "--format", "json"]));
    assert_eq!(evaluated["data"], "the test split");
    let outputs = evaluated["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2, "{evaluated}");
    let (logits, boxes) = (&outputs[0], &outputs[1]);
    assert_eq!(
        (logits["output"].as_str(), logits["task"].as_str()),
        (Some("logits"), Some("classification"))
    );
    assert_eq!((boxes["output"].as_str(), boxes["task"].as_str()), (Some("box"), Some("regression")));
    let own = |o: &serde_json::Value| o["loss"].as_f64().unwrap();
    let total = evaluated["loss"].as_f64().unwrap();
    assert!((total - (own(logits) + 5.0 * own(boxes))).abs() < 1e-9 * total.max(1.0), "{evaluated}");
    assert!(boxes["regression"]["mse"].as_f64().unwrap() > 0.0, "{evaluated}");
    // The run's own test figures, on the same weights and rows, are the same numbers.
    let test = trained["test"].as_array().unwrap();
    let figure = |name: &str| test.iter().find(|f| f[0] == name).unwrap()[1].as_f64().unwrap();
    assert!((figure("loss") - total).abs() < 1e-6, "{trained}\n{evaluated}");
    assert!((figure("box_loss") - own(boxes)).abs() < 1e-6, "{trained}\n{evaluated}");
    assert_eq!(figure("logits_accuracy"), logits["accuracy"].as_f64().unwrap());
    // And the metrics log ends with them, in one `test` row under `test_*` columns.
    let log = std::fs::read_to_string(dir.join("runs/digits_multitask/metrics.csv")).unwrap();
    let header: Vec<&str> = log.lines().next().unwrap().split(',').collect();
    let last: Vec<&str> = log.lines().last().unwrap().split(',').collect();
    let cell = |name: &str| last[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!((cell("kind"), cell("epoch")), ("test", "2"), "{log}");
    assert_eq!(cell("test_box_loss").parse::<f64>().unwrap(), figure("box_loss"));
    assert_eq!(log.lines().filter(|l| l.starts_with("test,")).count(), 1, "{log}");
    let text = String::from_utf8(ok(wick_in(&dir, &["eval", &spec, "--config", "t.yaml"])).stdout).unwrap();
    assert!(
        text.contains("output logits (classification)") && text.contains("output box (regression)"),
        "{text}"
    );

    // Two inputs, fed by the names the data section gives them.
    let spec = format!("{REPO}/specs/seq2seq_reverse.wick");
    std::fs::write(
        dir.join("s.yaml"),
        format!(
            "data: {{safetensors: {REPO}/data/reverse_digits.safetensors, inputs: {{src: src, tgt: dec_in}}, \
             targets: {{logits: dec_out}}, val_split: 0.1}}\nloss: {{name: cross_entropy, class_axis: 2}}\n\
             optimizer: {{name: adam, lr: 0.003}}\nepochs: 1\nbatch_size: 32\n"
        ),
    )
    .unwrap();
    let trained = json(wick_in(&dir, &["train", &spec, "--config", "s.yaml", "--format", "json"]));
    let evaluated = json(wick_in(&dir, &["eval", &spec, "--config", "s.yaml", "--format", "json"]));
    assert_eq!(evaluated["data"], "the validation split");
    let val = trained["final"]["val"].as_array().or_else(|| trained["history"][0]["val"].as_array()).unwrap();
    let val_loss = val.iter().find(|f| f[0] == "loss").unwrap()[1].as_f64().unwrap();
    assert!((val_loss - evaluated["loss"].as_f64().unwrap()).abs() < 1e-6, "{trained}\n{evaluated}");
    assert_eq!(evaluated["outputs"][0]["output"], "logits");
    std::fs::remove_dir_all(&dir).ok();
}
