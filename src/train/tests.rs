//! The training loop end to end on Iris: accuracy, early stopping, accumulation, clipping,
//! short last batches.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};

use super::config::{Clip, TrainConfig};
use super::fit::{evaluate, Stop};
use super::grads::clip_grads;
use super::losses::Losses;
use super::nets::Nets;
use super::objective::{LossConfig, Metric};
use super::observe::{Observer, Plan, Progress, StepRecord};
use super::optim::config::OptimizerConfig;
use super::optim::Param;
use super::program::Program;
use super::run::{train, RunOptions, TrainReport};
use super::session::{feeds, TARGET};
use super::supervised::{Objective, Supervised};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/iris_mlp.wick");

fn run(yaml: &str, out: &str) -> TrainReport {
    run_spec(SPEC, &format!("batch_size: 10\n{yaml}"), out, false)
}

/// Iris: 120 training rows, 30 validation rows.
pub(super) fn config(yaml: &str) -> TrainConfig {
    parse_config(&format!("data: {{csv: data/iris.csv, target: species, standardize: true}}\n{yaml}"))
}

/// A whole configuration from YAML text.
pub(super) fn parse_config(text: &str) -> TrainConfig {
    let mut sources = crate::front::span::SourceMap::new();
    let id = sources.add("t.yaml", None, text.to_string());
    let value = crate::front::yaml::parse_config(text, id).unwrap();
    TrainConfig::from_value(&value).unwrap()
}

fn run_spec(spec: &str, yaml: &str, out: &str, resume: bool) -> TrainReport {
    run_watched(spec, yaml, out, resume, Box::new(Progress::quiet()))
}

fn run_watched(spec: &str, yaml: &str, out: &str, resume: bool, observer: Box<dyn Observer>) -> TrainReport {
    let dir = std::env::temp_dir().join(format!("wick-fit-{out}-{}", std::process::id()));
    let options = RunOptions { resume, out: Some(dir.clone()), ..Default::default() };
    let report =
        train(spec, &config(yaml), Path::new(env!("CARGO_MANIFEST_DIR")), &options, observer).unwrap();
    if !out.ends_with("-keep") {
        std::fs::remove_dir_all(&dir).ok();
    }
    report
}

#[test]
fn an_mlp_learns_iris_to_95_percent_validation_accuracy() {
    // 30 validation rows make one split's figure coarse (one error is 3.3 points), so the
    // claim is about the median over six splits; none may fall below 85%.
    let mut finals: Vec<f64> = (0..6)
        .map(|seed| {
            let r = run(&format!("optimizer: {{name: adam, lr: 0.01}}\nepochs: 60\nseed: {seed}\n"), "iris");
            assert!(r.train_loss < r.history[0].train.get("loss").unwrap() / 3.0, "{r:#?}");
            r.val_accuracy.unwrap()
        })
        .collect();
    finals.sort_by(f64::total_cmp);
    assert!(finals[0] >= 0.85, "{finals:?}");
    assert!((finals[2] + finals[3]) / 2.0 >= 0.95, "{finals:?}");
}

#[test]
fn early_stopping_ends_patience_epochs_after_the_best() {
    let r = run(
        "optimizer: {name: adam, lr: 0.05}\nepochs: 200\nearly_stopping: {monitor: val_loss, patience: 3}\n",
        "early",
    );
    assert_eq!(r.stopped, Stop::EarlyStopped);
    assert!(r.epochs < 200, "{}", r.epochs);
    assert_eq!(r.best_epoch + 3, r.epochs);
    let best = r.history[r.best_epoch - 1].val.get("loss").unwrap();
    assert!(r.history.iter().all(|e| e.val.get("loss").unwrap() >= best));
}

#[test]
fn accumulation_takes_one_step_per_group_of_batches() {
    // 120 training rows in batches of 10: 12 batches, 6 steps an epoch with accumulate 2.
    let r = run("optimizer: {name: sgd, lr: 0.1}\nepochs: 2\naccumulate: 2\n", "accumulate");
    assert_eq!((r.epochs, r.steps), (2, 12));
    let r = run("optimizer: {name: sgd, lr: 0.1}\nepochs: 3\nmax_steps: 20\n", "max-steps");
    assert_eq!((r.stopped, r.steps, r.epochs), (Stop::MaxSteps, 20, 2));
    // Batches of 16: 7 whole and one of 8, so 3 steps an epoch with accumulate 3.
    let yaml = "optimizer: {name: sgd, lr: 0.1}\nbatch_size: 16\naccumulate: 3\nepochs: 2\n";
    let r = run_spec(SPEC, yaml, "accumulate-short", false);
    assert_eq!((r.epochs, r.steps), (2, 6));
    let r = run_spec(SPEC, &format!("{yaml}max_steps: 4\n"), "max-steps-short", false);
    assert_eq!((r.stopped, r.steps, r.epochs), (Stop::MaxSteps, 4, 2));
}

/// What the loop tells its observer: the plan, and the samples each epoch's steps took.
#[derive(Clone, Default)]
struct Seen(Rc<RefCell<(Option<Plan>, Vec<usize>)>>);

impl Observer for Seen {
    fn start(&mut self, plan: &Plan) -> std::io::Result<()> {
        self.0.borrow_mut().0 = Some(plan.clone());
        Ok(())
    }

    fn step(&mut self, r: &StepRecord) -> std::io::Result<()> {
        let samples = &mut self.0.borrow_mut().1;
        samples.resize(samples.len().max(r.epoch), 0);
        samples[r.epoch - 1] += r.samples;
        Ok(())
    }
}

#[test]
fn every_row_is_trained_and_validated_when_batches_do_not_divide_the_splits() {
    // Batches of 32: 3 whole and one of 24 for training; validation's 30 rows are one short
    // batch. Batches of 200: each split is one short batch.
    for (batch, steps_per_epoch) in [(32, 4), (200, 1)] {
        let yaml = format!("optimizer: {{name: sgd, lr: 0.05}}\nbatch_size: {batch}\nepochs: 2\n");
        let seen = Seen::default();
        let out = format!("short-{batch}-keep");
        let r = run_watched(SPEC, &yaml, &out, false, Box::new(seen.clone()));
        let (plan, samples) = seen.0.borrow().clone();
        let plan = plan.unwrap();
        assert_eq!((plan.train_rows, plan.val_rows, plan.steps_per_epoch), (120, 30, steps_per_epoch));
        assert_eq!(samples, [120, 120], "batch {batch}");
        assert_eq!(r.steps, 2 * steps_per_epoch as u64);
        let accuracy = r.val_accuracy.unwrap();
        assert!(((accuracy * 30.0) - (accuracy * 30.0).round()).abs() < 1e-9, "{accuracy}");

        // The final figures are those of the trained weights over the 30 rows in one batch.
        let dir = std::env::temp_dir().join(format!("wick-fit-{out}-{}", std::process::id()));
        let c = config(&yaml);
        let model = crate::Model::from_file(
            SPEC,
            &crate::Options { bind: vec![("N".into(), 30)], ..Default::default() },
        )
        .unwrap();
        let net = model.build(&Device::Cpu, candle_core::DType::F32).unwrap();
        net.load_weights(dir.join("weights.safetensors"), false).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        let whole = Nets::build(&model, net, "N", &[]).unwrap();
        let splits =
            super::data::load(&c.data, Path::new(env!("CARGO_MANIFEST_DIR")), c.seed, &Device::Cpu).unwrap();
        let Losses::One(loss) = &c.loss else { panic!("one loss: {:?}", c.loss) };
        let metrics = vec![Metric::parse("accuracy", loss).unwrap()];
        let program = supervised(whole, loss.clone(), metrics);
        let once = evaluate(&program, &feeds(&splits, "x", TARGET).1, &program.figures()).unwrap();
        assert_eq!(once.get("accuracy"), Some(accuracy));
        assert!((once.get("loss").unwrap() - r.val_loss).abs() < 1e-6, "{once:?} {}", r.val_loss);
    }
}

/// `nets` as a supervised program reading its first output against the target, with SGD.
pub(super) fn supervised(nets: Nets, loss: LossConfig, metrics: Vec<Metric>) -> Supervised {
    let optimizer = OptimizerConfig::default().build(Param::trainable(nets.full())).unwrap();
    let output = nets.full().output_names()[0].to_string();
    let objective = Objective { loss, output, target: TARGET.into(), metrics, weight: 1.0, labelled: false };
    Supervised { nets, optimizer, objectives: vec![objective], clip: None, l1: 0.0, accumulate: 1 }
}

#[test]
fn clipping_scales_by_the_global_norm_or_clamps_each_element() {
    let d = Device::Cpu;
    let a = Var::new(&[0f32, 0.0], &d).unwrap();
    let b = Var::new(&[0f32], &d).unwrap();
    let params = vec![Param { key: "a".into(), var: a.clone() }, Param { key: "b".into(), var: b.clone() }];
    let opt = OptimizerConfig::default().build(params).unwrap();
    // The gradients of a . ga + b . gb are ga and gb.
    let grads = |ga: [f32; 2], gb: [f32; 1]| {
        let dot =
            |v: &Var, g: &[f32]| (v.as_tensor() * Tensor::new(g, &d).unwrap()).unwrap().sum_all().unwrap();
        (dot(&a, &ga) + dot(&b, &gb)).unwrap().backward().unwrap()
    };
    let read = |g: &GradStore, v: &Var| g.get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    // Global norm 13 (3, 4, 12) clipped to 6.5: everything halves.
    let mut g = grads([3.0, 4.0], [12.0]);
    clip_grads(&mut g, opt.as_ref(), Clip::Norm { max: 6.5, norm_type: 2.0 }).unwrap();
    let half = |x: f32| x / 2.0;
    assert!(read(&g, &a).iter().zip([3.0, 4.0].map(half)).all(|(x, y)| (x - y).abs() < 1e-5));
    assert!((read(&g, &b)[0] - 6.0).abs() < 1e-5);
    // Under the limit nothing changes.
    let mut g = grads([3.0, 4.0], [12.0]);
    clip_grads(&mut g, opt.as_ref(), Clip::Norm { max: 100.0, norm_type: 2.0 }).unwrap();
    assert_eq!(read(&g, &b), [12.0]);
    // Other norms, each as torch.nn.utils.clip_grad_norm_([a, b], 5.0, norm_type=p) leaves
    // gradients a = [3, -4], b = [12] (PyTorch 2.x): totals 19, 12.207056 and 12.
    let torch = [
        (1.0, [0.789_473_5, -1.052_631_4], 3.157_894_1),
        (3.0, [1.228_797_4, -1.638_396_5], 4.915_189_7),
        (f64::INFINITY, [1.249_999_9, -1.666_666_5], 4.999_999_5),
    ];
    for (p, want_a, want_b) in torch {
        let mut g = grads([3.0, -4.0], [12.0]);
        clip_grads(&mut g, opt.as_ref(), Clip::Norm { max: 5.0, norm_type: p }).unwrap();
        let close = |x: f32, y: f32| (x - y).abs() < 1e-5;
        assert!(read(&g, &a).iter().zip(want_a).all(|(x, y)| close(*x, y)), "p={p}: {:?}", read(&g, &a));
        assert!(close(read(&g, &b)[0], want_b), "p={p}: {:?}", read(&g, &b));
    }
    let mut g = grads([3.0, -4.0], [0.5]);
    clip_grads(&mut g, opt.as_ref(), Clip::Value(1.0)).unwrap();
    assert_eq!((read(&g, &a), read(&g, &b)), (vec![1.0, -1.0], vec![0.5]));
}

#[test]
fn a_resumed_run_draws_the_same_dropout_masks() {
    let spec = std::env::temp_dir().join(format!("wick-dropout-{}.wick", std::process::id()));
    let text = "dim N = 10\nmodel M {\n input x: [N, 4]\n output y = x |> Linear(32) |> ReLU |> Dropout(0.5) |> Linear(3) }\n";
    std::fs::write(&spec, text).unwrap();
    let spec = spec.to_str().unwrap();
    let figures =
        |r: &TrainReport| r.history.iter().map(|e| (e.train.clone(), e.val.clone())).collect::<Vec<_>>();
    // Batches of 16 end each epoch on a short one (8 rows), run by the model lowered for it.
    for batch in [10, 16] {
        let run = |yaml: &str, out: &str, resume: bool| {
            run_spec(spec, &format!("batch_size: {batch}\n{yaml}"), &format!("dropout-{batch}-{out}"), resume)
        };
        let straight = run("epochs: 2\n", "straight", false);
        run("epochs: 1\n", "split-keep", false);
        let resumed = run("epochs: 2\n", "split-keep", true);
        assert_eq!(figures(&resumed), figures(&straight), "batch {batch}: {:?}", resumed.notes);
        // And the masks do vary: another seed trains differently.
        let other = run("epochs: 2\nseed: 1\n", "other", false);
        assert_ne!(figures(&other), figures(&straight));
        std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("wick-fit-dropout-{batch}-split-keep-{}", std::process::id())),
        )
        .ok();
    }
}

#[test]
fn a_one_row_last_batch_under_batch_norm_is_refused_before_training() {
    let spec = std::env::temp_dir().join(format!("wick-bn-{}.wick", std::process::id()));
    let text = "dim N = 10\nmodel M {\n input x: [N, 4]\n output y = x |> fc: Linear(8) |> bn: BatchNorm1d |> Linear(3) }\n";
    std::fs::write(&spec, text).unwrap();
    let dir = std::env::temp_dir().join(format!("wick-fit-bn-{}", std::process::id()));
    let options = RunOptions { out: Some(dir.clone()), ..Default::default() };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let quiet = || Box::new(Progress::quiet());
    // 120 training rows in batches of 7 leave one.
    let refused = train(spec.to_str().unwrap(), &config("batch_size: 7\nepochs: 1"), root, &options, quiet());
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("1 row") && message.contains("`bn`") && message.contains("other than 7"),
        "{message}"
    );
    // Batches of 8 divide the 120 rows; the 30 validation rows leave 6, evaluated without batch statistics.
    let report = train(spec.to_str().unwrap(), &config("batch_size: 8\nepochs: 1"), root, &options, quiet());
    assert_eq!(report.unwrap().epochs, 1);
    std::fs::remove_dir_all(dir).ok();
}
