//! How runs end and resume: every ending leaves the checkpoint and the weights the report
//! names, a run stopped anywhere resumes exactly, and a resume that would not continue the
//! same run is refused. Iris: 120 training rows in batches of 10, 12 steps an epoch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::checkpoint::{self, RunState};
use super::fit::Stop;
use super::folder::Kept;
use super::observe::Progress;
use super::run::{train, RunOptions, TrainError, TrainReport};
use super::tests::{config, parse_config};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/iris_mlp.wick");
const BASE: &str = "batch_size: 10\n";
const ADAM: &str = "optimizer: {name: adam, lr: 0.01}\n";

/// A fresh run folder, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!("wick-life-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        Folder(dir)
    }

    fn train(&self, yaml: &str, resume: bool, allow_changes: bool) -> Result<TrainReport, TrainError> {
        self.train_spec(SPEC, yaml, resume, allow_changes)
    }

    fn train_spec(
        &self,
        spec: &str,
        yaml: &str,
        resume: bool,
        allow_changes: bool,
    ) -> Result<TrainReport, TrainError> {
        let options = RunOptions { resume, allow_changes, out: Some(self.0.clone()), ..Default::default() };
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        // The defaults here, unless the test sets its own.
        let unless = |key: &str, line: &'static str| if yaml.contains(key) { "" } else { line };
        let c = config(&format!("{}{}{yaml}", unless("batch_size:", BASE), unless("optimizer:", ADAM)));
        train(spec, &c, root, &options, Box::new(Progress::quiet()))
    }

    fn tensors(&self, file: &str) -> HashMap<String, Tensor> {
        candle_core::safetensors::load(self.0.join(file), &Device::Cpu).unwrap()
    }

    fn checkpoint(&self) -> checkpoint::Checkpoint {
        checkpoint::load(&self.0.join("checkpoint.safetensors"), &Device::Cpu).unwrap()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn same(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> bool {
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    a.len() == b.len() && a.iter().all(|(k, t)| b.get(k).is_some_and(|u| flat(t) == flat(u)))
}

/// Each epoch's figures, timings left out.
fn figures(r: &TrainReport) -> Vec<String> {
    r.history.iter().map(|e| format!("{} {} {:?} {:?} {}", e.epoch, e.step, e.train, e.val, e.lr)).collect()
}

#[test]
fn max_steps_between_checkpoints_leaves_the_final_checkpoint_and_weights() {
    let f = Folder::new("max-steps");
    let r = f.train("epochs: 10\nmax_steps: 7\ncheckpoint_every: 5\n", false, false).unwrap();
    assert_eq!((r.stopped, r.steps, r.kept), (Stop::MaxSteps, 7, Kept::Last { step: 7 }));
    let ckpt = f.checkpoint();
    assert_eq!(ckpt.state.step, 7);
    assert_eq!(ckpt.state.cursor.as_ref().map(|c| (c.epoch, c.steps)), Some((0, 7)));
    assert!(same(&f.tensors("weights.safetensors"), &ckpt.weights));
}

#[test]
fn early_stopping_leaves_the_best_weights_as_the_result_and_the_last_state_to_resume() {
    let f = Folder::new("early");
    let yaml = "epochs: 200\ncheckpoint_every: 100\nearly_stopping: {monitor: val_loss, patience: 3}\n";
    let r = f.train(yaml, false, false).unwrap();
    assert_eq!(r.stopped, Stop::EarlyStopped);
    let best_step = r.history[r.best_epoch - 1].step;
    assert_eq!(r.kept, Kept::Best { epoch: r.best_epoch, step: best_step });
    assert!(same(&f.tensors("weights.safetensors"), &f.tensors("best.safetensors")));
    // The checkpoint is the last step's, not the best's: it resumes the run where it stood.
    let ckpt = f.checkpoint();
    assert_eq!(ckpt.state.step, r.steps);
    assert!(!same(&ckpt.weights, &f.tensors("best.safetensors")));

    let last = Folder::new("early-last");
    let r =
        last.train(&yaml.replace("patience: 3", "patience: 3, restore_best: false"), false, false).unwrap();
    assert_eq!(r.kept, Kept::Last { step: r.steps });
    assert!(same(&last.tensors("weights.safetensors"), &last.checkpoint().weights));
}

#[test]
fn a_run_stopped_inside_an_epoch_resumes_to_the_same_weights_history_and_log() {
    let straight = Folder::new("straight");
    let s = straight.train("epochs: 3\n", false, false).unwrap();
    let split = Folder::new("split");
    let partial = split.train("epochs: 3\nmax_steps: 17\n", false, false).unwrap();
    assert_eq!((partial.epochs, partial.steps), (2, 17), "the partial epoch is reported");
    let resumed = split.train("epochs: 3\n", true, false).unwrap();
    assert_eq!((resumed.stopped, resumed.steps), (Stop::Finished, 36));
    assert_eq!(figures(&resumed), figures(&s));
    assert!(same(&split.tensors("weights.safetensors"), &straight.tensors("weights.safetensors")));
    // The log: every row the straight run wrote, and no row twice; timings aside.
    let rows = |f: &Folder| -> Vec<String> {
        let text = std::fs::read_to_string(f.0.join("metrics.csv")).unwrap();
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let timing: Vec<usize> = ["elapsed_s", "samples_per_s"]
            .iter()
            .filter_map(|c| header.iter().position(|h| h == c))
            .collect();
        text.lines()
            .map(|l| {
                let cells = l.split(',').enumerate().filter(|(i, _)| !timing.contains(i));
                cells.map(|(_, c)| c).collect::<Vec<_>>().join(",")
            })
            .collect()
    };
    assert_eq!(rows(&split), rows(&straight));
    assert_eq!(rows(&straight).len(), 1 + 36 + 3);
}

#[test]
fn resuming_with_other_settings_is_refused_naming_each_change() {
    let f = Folder::new("changes");
    f.train("epochs: 1\n", false, false).unwrap();
    let refused = |yaml: &str, key: &str| {
        let e = f.train(yaml, true, false).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(&format!("`{key}`: the checkpoint has")) && e.contains("--allow-changes"), "{e}");
    };
    refused("epochs: 2\noptimizer: {name: sgd, lr: 0.01}\n", "optimizer");
    refused("epochs: 2\noptimizer: {name: adam, lr: 0.1}\n", "optimizer");
    refused("epochs: 2\nseed: 3\n", "seed");
    refused("epochs: 2\nbatch_size: 20\n", "batch_size");
    // A new rate, allowed: the next epoch runs at it, and the change is noted.
    let r = f.train("epochs: 2\noptimizer: {name: adam, lr: 0.1}\n", true, true).unwrap();
    assert_eq!(r.history[1].lr, 0.1);
    assert!(r.notes.iter().any(|n| n.contains("changed setting: `optimizer`")), "{:?}", r.notes);
}

#[test]
fn a_checkpoint_without_optimizer_state_is_refused_unless_allowed() {
    let f = Folder::new("no-optimizer");
    f.train("epochs: 1\n", false, false).unwrap();
    let ckpt = f.checkpoint();
    let weights = ckpt.weights.into_iter().collect();
    checkpoint::save(&f.0.join("checkpoint.safetensors"), weights, Default::default(), &ckpt.state, None)
        .unwrap();
    let e = f.train("epochs: 2\n", true, false).err().unwrap().to_string();
    assert!(e.contains("holds no optimizer state"), "{e}");
    assert_eq!(f.train("epochs: 2\n", true, true).unwrap().steps, 24);
}

#[test]
fn a_layer_labelled_optimizer_keeps_its_weights_apart_from_the_optimizer_state() {
    let spec = std::env::temp_dir().join(format!("wick-label-{}.wick", std::process::id()));
    let text = "dim N = 10\nmodel M {\n input x: [N, 4]\n output y = x |> optimizer: Linear(8) |> ReLU |> Linear(3) }\n";
    std::fs::write(&spec, text).unwrap();
    let f = Folder::new("label");
    f.train_spec(spec.to_str().unwrap(), "epochs: 1\n", false, false).unwrap();
    let r = f.train_spec(spec.to_str().unwrap(), "epochs: 2\n", true, false).unwrap();
    assert_eq!(r.steps, 24);
    assert!(f.checkpoint().weights.contains_key("optimizer.weight"));
    std::fs::remove_file(spec).ok();
}

#[test]
fn a_diverging_run_keeps_its_last_finite_checkpoint_and_says_which() {
    let f = Folder::new("diverge");
    let e = f.train("epochs: 5\noptimizer: {name: sgd, lr: 1.0e30}\n", false, false).err().unwrap();
    let message = e.to_string();
    assert!(message.contains("the loss is"), "{message}");
    let TrainError::Stopped { kept, .. } = e else { panic!("{message}") };
    let path = f.0.join("checkpoint.safetensors");
    if kept.contains("no checkpoint had been written") {
        assert!(!path.exists());
        return;
    }
    // Either this step's finite weights or the last checkpoint's: the file says which step.
    let ckpt = f.checkpoint();
    assert!(kept.contains(&format!("step {}", ckpt.state.step)), "{kept}");
    let finite = ckpt.weights.values().all(|t| crate::lower::inspect::all_finite(t).unwrap());
    assert!(finite, "{kept}");
}

#[test]
fn non_finite_data_is_refused_before_training_naming_split_and_row() {
    let dir = Folder::new("nan-data");
    std::fs::create_dir_all(&dir.0).unwrap();
    let iris = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv")).unwrap();
    let mut lines: Vec<String> = iris.lines().map(str::to_string).collect();
    let last = lines.len() - 1;
    let rest = lines[last].split_once(',').unwrap().1.to_string();
    lines[last] = format!("NaN,{rest}");
    let csv = dir.0.join("iris.csv");
    std::fs::write(&csv, lines.join("\n")).unwrap();
    // Unshuffled, the last 30 rows validate: the file's last row is the split's row 29.
    let yaml = format!(
        "data: {{csv: {}, target: species, val_split: 0.2, shuffle: false}}\nepochs: 1\n",
        csv.display()
    );
    let options = RunOptions { out: Some(dir.0.join("run")), ..Default::default() };
    let c = parse_config(&format!("{yaml}{BASE}{ADAM}"));
    let e = train(SPEC, &c, Path::new("/"), &options, Box::new(Progress::quiet())).err().unwrap().to_string();
    assert!(e.contains("row 29 of the validation split") && e.contains("NaN"), "{e}");
    assert!(!dir.0.join("run").exists(), "nothing was trained or written");
}

#[test]
fn the_run_state_round_trips_a_cursor() {
    let state = RunState {
        step: 5,
        cursor: Some(checkpoint::Cursor {
            epoch: 1,
            steps: 3,
            sums: serde_json::from_str(r#"{"loss":1.5,"samples":30,"counts":[[20.0,30.0]]}"#).unwrap(),
        }),
        ..Default::default()
    };
    let back: RunState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert_eq!(back, state);
}

#[test]
fn a_non_finite_validation_loss_is_an_error_naming_the_layer() {
    use super::data::Dataset;
    use super::nets::Nets;
    use super::objective::LossConfig;
    // exp overflows f32 past 88: `e` breaks on these finite inputs.
    let spec =
        "dim N = 2\nmodel M { input x: [N, 3]\n output y = x |> fc1: Linear(4) |> e: Exp |> fc2: Linear(2) }";
    let model = crate::Model::from_source("m.wick", spec, &crate::Options::default()).unwrap();
    let net = model.build_seeded(&Device::Cpu, candle_core::DType::F32, 0).unwrap();
    let nets = Nets::build(&model, net, "N", &[2]).unwrap();
    let x = Tensor::new(&[[1e6f32, -1e6, 1e6], [-1e6, 1e6, -1e6]], &Device::Cpu).unwrap();
    let data = Dataset::new(x, Tensor::new(&[0i64, 1], &Device::Cpu).unwrap());
    let program = super::tests::supervised(nets, LossConfig::default(), vec![]);
    let feed = super::batch::Feed { data: &data, input: "x".into(), target: super::session::TARGET.into() };
    let e = super::fit::evaluate(&program, &feed, &["loss".into()]).err().unwrap().to_string();
    assert!(e.starts_with("the validation loss is") && e.contains("`e` (Exp)"), "{e}");
}

#[test]
fn a_link_planted_as_the_metrics_log_is_not_written_through() {
    let f = Folder::new("planted");
    std::fs::create_dir_all(&f.0).unwrap();
    let victim = f.0.join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, f.0.join("metrics.csv")).unwrap();
    let e = f.train("epochs: 1\n", false, false).err().unwrap().to_string();
    assert!(e.contains("metrics.csv"), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
}

/// Augmentation draws from the seed, the epoch and the row alone, and its batches come from a
/// background thread: a run stopped inside an epoch resumes to the straight run's weights, bit
/// for bit, with every augmentation and both mixings on.
#[test]
fn an_augmented_run_stopped_inside_an_epoch_resumes_bit_for_bit() {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/digits_images.wick");
    let data = "data: {images: data/digits_png, channels: 1, mean: 0.5, std: 0.5, val_split: 0.2";
    let augment = "augment: {crop: {size: 8, padding: 1}, hflip: 0.5, vflip: 0.1, rotate: 10, \
                   translate: [0.1, 0.1], scale: [0.9, 1.1], brightness: 0.2, contrast: 0.2, noise: 0.05, \
                   erase: {p: 0.5}, mixup: 0.4, cutmix: 1.0, prefetch: 2}";
    let yaml =
        format!("{data}, {augment}}}\nbatch_size: 32\nepochs: 3\noptimizer: {{name: adam, lr: 0.003}}\n");
    let run = |f: &Folder, yaml: &str, resume: bool| {
        let options = RunOptions { resume, out: Some(f.0.clone()), ..Default::default() };
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        train(spec, &parse_config(yaml), root, &options, Box::new(Progress::quiet())).unwrap()
    };
    let straight = Folder::new("aug-straight");
    let s = run(&straight, &yaml, false);
    assert_eq!(s.steps, 39, "400 training images in batches of 32");
    let split = Folder::new("aug-split");
    let partial = run(&split, &format!("{yaml}max_steps: 17\n"), false);
    assert_eq!(partial.steps, 17);
    let resumed = run(&split, &yaml, true);
    assert_eq!((resumed.stopped, resumed.steps), (Stop::Finished, 39));
    assert_eq!(figures(&resumed), figures(&s));
    let bits = |f: &Folder| {
        let mut all: Vec<(String, Vec<u32>)> = f
            .tensors("weights.safetensors")
            .into_iter()
            .map(|(k, t)| {
                (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect())
            })
            .collect();
        all.sort();
        all
    };
    assert_eq!(bits(&split), bits(&straight));
    // Without augmentation the same run ends elsewhere: the augmentation was applied.
    let plain = Folder::new("aug-plain");
    run(&plain, &yaml.replace(&format!(", {augment}"), ""), false);
    assert_ne!(bits(&plain), bits(&straight));
}

#[test]
fn drop_last_leaves_out_the_short_batch_and_resumes_exactly() {
    // 120 rows in batches of 16: 7 full batches and one of 8, which `drop_last` leaves out.
    let kept = Folder::new("keep-last");
    assert_eq!(kept.train("batch_size: 16\nepochs: 2\n", false, false).unwrap().steps, 16);
    let straight = Folder::new("drop-last");
    let s = straight.train("batch_size: 16\ndrop_last: true\nepochs: 2\n", false, false).unwrap();
    assert_eq!(s.steps, 14);
    assert!(!same(&straight.tensors("weights.safetensors"), &kept.tensors("weights.safetensors")));
    let split = Folder::new("drop-last-split");
    split.train("batch_size: 16\ndrop_last: true\nepochs: 2\nmax_steps: 9\n", false, false).unwrap();
    // Resuming without the key is another run: refused, naming it.
    let e = split.train("batch_size: 16\nepochs: 2\n", true, false).unwrap_err().to_string();
    assert!(e.contains("`drop_last`: the checkpoint has true, this run has nothing"), "{e}");
    let resumed = split.train("batch_size: 16\ndrop_last: true\nepochs: 2\n", true, false).unwrap();
    assert_eq!(resumed.steps, 14);
    assert_eq!(figures(&resumed), figures(&s));
    assert!(same(&split.tensors("weights.safetensors"), &straight.tensors("weights.safetensors")));
    // Too few rows for one batch.
    let e = Folder::new("drop-all").train("batch_size: 200\ndrop_last: true\n", false, false).unwrap_err();
    assert!(e.to_string().contains("`drop_last: true` leaves no training batch: 120 row(s)"), "{e}");
}

#[test]
fn class_weights_init_weights_and_norm_types_reach_a_run() {
    let run = |name: &str, yaml: &str| Folder::new(name).train(&format!("epochs: 2\n{yaml}"), false, false);
    let weighted = "loss: {name: cross_entropy, weight: [1, 2, 4], ignore_index: 1, reduction: sum}\n";
    let r = run("ce-options", weighted).unwrap();
    assert!(r.train_loss.is_finite() && r.steps == 24, "{r:?}");
    let e = run("ce-two", "loss: {name: cross_entropy, weight: [1, 2]}\n").unwrap_err().to_string();
    assert!(e.contains("2 class weights, but the output has 3 classes"), "{e}");
    // The same seed and schemes give the same run; a glob that covers nothing is refused.
    let inits = "init_weights: {\"**.weight\": orthogonal(gain=1.4), \"**.bias\": \"constant(0.01)\"}\n";
    let a = Folder::new("init-a");
    let b = Folder::new("init-b");
    a.train(&format!("epochs: 1\n{inits}"), false, false).unwrap();
    b.train(&format!("epochs: 1\n{inits}"), false, false).unwrap();
    assert!(same(&a.tensors("weights.safetensors"), &b.tensors("weights.safetensors")));
    let e = run("init-typo", "init_weights: {\"head.*\": zeros}\n").unwrap_err().to_string();
    assert!(e.contains("`init_weights: head.*` covers no learned parameter; the top-level paths are"), "{e}");
    assert!(run("clip-inf", "clip: {norm: 0.5, norm_type: inf}\n").unwrap().train_loss.is_finite());
}
