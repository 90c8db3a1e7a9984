//! Several named inputs and targets, and a loss per output, through the `wick` binary: the
//! teacher-forced seq2seq spec trains from two named inputs, the multi-task digits spec from
//! two losses, and a resumed run with several inputs equals an uninterrupted one.
//!
//! This file is also the generator of the data those specs ship with: the first test checks
//! that `data/reverse_digits.safetensors` and `data/digits_boxes.npz` hold what it makes, and
//! `WICK_WRITE_DATA=1 cargo test --test multi_train the_shipped` writes them afresh.

mod common;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::wick;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const REVERSE: &str = "data/reverse_digits.safetensors";
const BOXES: &str = "data/digits_boxes.npz";

/// SplitMix64: the digits' draws, the same on every platform.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// 2,000 sequences of 6 random digits (`src`), each reversed (`dec_out`) and that shifted right
/// behind the start token 10 (`dec_in`, the decoder's teacher-forced input).
fn reverse_digits() -> Vec<(&'static str, Tensor)> {
    let (rows, len, start) = (2000, 6, 10u32);
    let mut draws = Draws(15);
    let src: Vec<u32> = (0..rows * len).map(|_| (draws.next() % 10) as u32).collect();
    let out: Vec<u32> = src.chunks(len).flat_map(|s| s.iter().rev().copied().collect::<Vec<_>>()).collect();
    let dec_in: Vec<u32> =
        out.chunks(len).flat_map(|s| std::iter::once(start).chain(s[..len - 1].iter().copied())).collect();
    let t = |v: Vec<u32>| Tensor::from_vec(v, (rows, len), &Device::Cpu).unwrap();
    vec![("src", t(src)), ("dec_in", t(dec_in)), ("dec_out", t(out))]
}

/// The 8x8 digits (`pixels` u8 `[1797, 1, 8, 8]`, values 0-16; `digit` u8) and the box of each
/// one's ink (`box` f32 `[1797, 4]`: top, left, bottom, right over 8; a pixel of 3 or more is ink).
fn digit_boxes() -> Vec<(&'static str, Tensor)> {
    let text = std::fs::read_to_string(format!("{ROOT}/data/digits8x8.csv")).unwrap();
    let (mut pixels, mut digits, mut boxes) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let cells: Vec<u8> = line.split(',').map(|c| c.trim().parse().unwrap()).collect();
        let (image, digit) = cells.split_at(64);
        let ink: Vec<(usize, usize)> = (0..64).filter(|i| image[*i] >= 3).map(|i| (i / 8, i % 8)).collect();
        let rows = ink.iter().map(|p| p.0);
        let cols = ink.iter().map(|p| p.1);
        let edges =
            [rows.clone().min(), cols.clone().min(), rows.max().map(|r| r + 1), cols.max().map(|c| c + 1)];
        boxes.extend(edges.map(|e| e.unwrap() as f32 / 8.0));
        pixels.extend_from_slice(image);
        digits.push(digit[0]);
    }
    let n = digits.len();
    vec![
        ("pixels", Tensor::from_vec(pixels, (n, 1, 8, 8), &Device::Cpu).unwrap()),
        ("digit", Tensor::from_vec(digits, n, &Device::Cpu).unwrap()),
        ("box", Tensor::from_vec(boxes, (n, 4), &Device::Cpu).unwrap()),
    ]
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    a.dims() == b.dims() && a.dtype() == b.dtype() && flat(a) == flat(b)
}

#[test]
fn the_shipped_data_is_what_this_file_makes() {
    let (reverse, boxes) = (reverse_digits(), digit_boxes());
    if std::env::var_os("WICK_WRITE_DATA").is_some() {
        let map: HashMap<String, Tensor> = reverse.iter().map(|(k, t)| (k.to_string(), t.clone())).collect();
        candle_core::safetensors::save(&map, format!("{ROOT}/{REVERSE}")).unwrap();
        Tensor::write_npz(&boxes, format!("{ROOT}/{BOXES}")).unwrap();
    }
    let shipped = candle_core::safetensors::load(format!("{ROOT}/{REVERSE}"), &Device::Cpu).unwrap();
    for (name, t) in &reverse {
        assert!(same(&shipped[*name], t), "{REVERSE}: `{name}` differs from what this file makes");
    }
    let shipped = Tensor::read_npz(format!("{ROOT}/{BOXES}")).unwrap();
    assert_eq!(shipped.len(), boxes.len());
    for (name, t) in &shipped {
        let made = boxes.iter().find(|(n, _)| n == name).map(|(_, t)| t).unwrap();
        assert!(same(t, made), "{BOXES}: `{name}` differs from what this file makes");
    }
    // A digit's ink is never empty, and its box lies in the image.
    let b = boxes[2].1.to_vec2::<f32>().unwrap();
    assert!(b.iter().all(|r| r[0] < r[2] && r[1] < r[3] && r.iter().all(|v| (0.0..=1.0).contains(v))));
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-multi-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn train(spec: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["train", spec, "--out", out.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let run = wick(&args);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_slice(&run.stdout).expect("a JSON report")
}

/// The figure `name` of `split` (`train` or `val`) at each epoch of a report's history.
fn figure(report: &serde_json::Value, split: &str, name: &str) -> Vec<f64> {
    let history = report["history"].as_array().unwrap();
    let at = |epoch: &serde_json::Value| {
        let pairs = epoch[split].as_array().unwrap();
        let pair =
            pairs.iter().find(|p| p[0] == name).unwrap_or_else(|| panic!("no {split} `{name}`: {epoch}"));
        pair[1].as_f64().unwrap()
    };
    history.iter().map(at).collect()
}

#[test]
fn the_seq2seq_spec_trains_teacher_forced_from_two_named_inputs() {
    let dir = temp("seq2seq");
    let report = train("specs/seq2seq_reverse.wick", &dir, &["--epochs", "4"]);
    let (loss, accuracy) = (figure(&report, "val", "loss"), figure(&report, "val", "accuracy"));
    eprintln!("seq2seq: val loss {loss:?}, val accuracy {accuracy:?}");
    // Chance is ln 11 = 2.40 and 10% a position.
    assert!(loss[3] < 0.8 * loss[0] && loss[3] < 1.8, "{loss:?}");
    assert!(accuracy[3] > accuracy[0] && accuracy[3] > 0.4, "{accuracy:?}");
    // The trained model decodes a source: greedy and beam search, with and without the cache.
    let weights = dir.join("weights.safetensors");
    let decode = |extra: &[&str]| {
        let mut args = vec!["sample", "specs/seq2seq_reverse.wick", "--weights", weights.to_str().unwrap()];
        args.extend_from_slice(&["--source", "3 1 4 1 5 9", "--start", "10", "--length", "6"]);
        args.extend_from_slice(extra);
        let run = wick(&args);
        let stderr = String::from_utf8_lossy(&run.stderr).to_string();
        assert!(run.status.success(), "{stderr}");
        let tokens: Vec<u32> =
            String::from_utf8_lossy(&run.stdout).split_whitespace().map(|t| t.parse().unwrap()).collect();
        assert_eq!(tokens.len(), 6, "{tokens:?}");
        assert!(tokens.iter().all(|t| *t < 10), "a digit at each position: {tokens:?}");
        (tokens, stderr)
    };
    let (greedy, _) = decode(&[]);
    let (beam, said) = decode(&["--beam", "4"]);
    assert!(said.contains("beam 4") && said.matches("  also ").count() == 3, "{said}");
    assert_eq!(decode(&["--beam", "4", "--no-cache"]).0, beam);
    assert_eq!(decode(&["--no-cache"]).0, greedy);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_multitask_spec_trains_with_a_loss_per_output() {
    let dir = temp("multitask");
    let report = train("specs/digits_multitask.wick", &dir, &["--epochs", "4"]);
    let accuracy = figure(&report, "val", "logits_accuracy");
    let (class, boxes) = (figure(&report, "val", "logits_loss"), figure(&report, "val", "box_loss"));
    let total = figure(&report, "val", "loss");
    eprintln!("multitask: val accuracy {accuracy:?}, class loss {class:?}, box loss {boxes:?}");
    assert!(accuracy[3] > 0.85, "{accuracy:?}");
    assert!(class[3] < class[0] && boxes[3] < boxes[0], "{class:?} {boxes:?}");
    // The loss is the weighted sum of the two.
    for e in 0..4 {
        assert!((total[e] - (class[e] + 5.0 * boxes[e])).abs() < 1e-4 * total[e].max(1.0), "{total:?}");
    }
    let log = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let header = log.lines().next().unwrap();
    assert!(header.contains("val_logits_accuracy") && header.contains("val_box_loss"), "{header}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_resumed_run_with_two_inputs_equals_an_uninterrupted_one() {
    let (straight, split) = (temp("straight"), temp("split"));
    let two = train("specs/seq2seq_reverse.wick", &straight, &["--epochs", "2"]);
    train("specs/seq2seq_reverse.wick", &split, &["--epochs", "1"]);
    let resumed = train("specs/seq2seq_reverse.wick", &split, &["--epochs", "2", "--resume"]);
    assert_eq!(resumed["steps"], two["steps"]);
    let weights = |d: &Path| std::fs::read(d.join("weights.safetensors")).unwrap();
    assert_eq!(weights(&straight), weights(&split));
    for d in [straight, split] {
        std::fs::remove_dir_all(&d).ok();
    }
}

#[test]
fn an_output_without_a_loss_needs_no_gradient_and_a_loss_must_name_an_output() {
    let dir = temp("unlossed");
    let spec = |loss: &str| {
        let text = format!(
            "dim N = 16\nmodel TwoHeads {{\n  input x: [N, 4]\n  h = x |> trunk: Linear(8) |> ReLU\n  \
             a = h |> head_a: Linear(3)\n  b = h |> head_b: Linear(2)\n  output a, b\n}}\n\
             train {{\n  data: {{ synthetic: {{ rows: 64, features: 4, classes: 3 }} }}\n  loss: {loss}\n  \
             epochs: 2\n  batch_size: 16\n}}\n"
        );
        let path = dir.join("two_heads.wick");
        std::fs::write(&path, text).unwrap();
        path
    };
    // `head_b` feeds only `b`, which no loss reads: before, the first step stopped on
    // "no gradient: head_b.weight, head_b.bias".
    for loss in ["cross_entropy", "{ a: { name: cross_entropy, target: target } }"] {
        let path = spec(loss);
        let report = train(path.to_str().unwrap(), &dir.join("out"), &[]);
        assert_eq!(report["epochs"], 2, "{loss}: {report}");
    }
    let path = spec("{ c: cross_entropy }");
    let run = wick(&["train", path.to_str().unwrap(), "--out", dir.join("out").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        err.contains(
            "`loss` names the output `c`, which `TwoHeads` does not have (its outputs are `a`, `b`)"
        ),
        "{err}"
    );
    let path = spec("{ a: cross_entropy }");
    let run = wick(&["train", path.to_str().unwrap(), "--out", dir.join("out").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(
            "the loss on `a` reads the target `a`, which the data does not give (it gives `target`)"
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_with_two_inputs_fed_one_array_is_told_to_name_them() {
    let dir = temp("one-array");
    let config = dir.join("one.yaml");
    let data = format!("{ROOT}/{REVERSE}");
    std::fs::write(&config, format!("data: {{safetensors: {data}, features: src, target: dec_out}}\n"))
        .unwrap();
    let run = wick(&["train", "specs/seq2seq_reverse.wick", "--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(
            "`ReverseSeq2Seq` takes 2 inputs (src, tgt); the data gives one array: name an array for each \
             with `data.inputs`"
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
