//! Setting up a run: the data read, the model built for the batch size (and for the splits'
//! short last batches) and checked against the data, initial weights, frozen parameters, the
//! optimizer and the loop's configuration. `wick train` and `wick lr-find` start the same way.

use std::path::Path;

use candle_core::{DType, Device};

use super::augment::Augmenter;
use super::batch::Feed;
use super::config::{FrozenBatchNorm, TrainConfig};
use super::data::{self, DataConfig, Dataset, Splits};
use super::fit::{steps_per_epoch, Cancel, FitConfig};
use super::freeze::freeze;
use super::nets::Nets;
use super::objective::LossConfig;
use super::optim::Param;
use super::run::TrainError;
use super::schedule::Plateau;
use super::supervised::{Objective, Supervised};
use crate::ir::dim::Dim;
use crate::ir::graph::Graph;
use crate::lower::device;
use crate::{Compiled, Model, Options};

/// The name supervised batches carry their targets under.
pub const TARGET: &str = "target";

/// Everything a loop needs, ready to go.
pub struct Session<P = Supervised> {
    /// The program: for supervised training, the model (at the batch size, and at each
    /// split's short last batch), its loss and its optimizer.
    pub program: P,
    pub splits: Splits,
    /// The model input the data's features (`x`) feed.
    pub input: String,
    /// The name the data's targets (`y`) are fed under: [`TARGET`], or the named form's first.
    pub target: String,
    pub fit: FitConfig,
    pub plateau: Option<Plateau>,
    /// Keys of the parameters `frozen` took out of training.
    pub frozen: Vec<String>,
    /// Things the person should know (device fallback, partial init).
    pub notes: Vec<String>,
    pub device: Device,
    /// What the curves are titled with: the model's name, or the models'.
    pub title: String,
}

impl Session<Supervised> {
    /// Everything a loop needs. `check_memory`: refuse a run whose estimated training memory
    /// exceeds what the machine has available (before any parameter is allocated).
    pub fn prepare(
        spec: &str,
        config: &TrainConfig,
        config_dir: &Path,
        check_memory: bool,
    ) -> Result<Session, TrainError> {
        Session::from_compiled(compile(spec, None)?, config, config_dir, check_memory)
    }

    /// [`prepare`](Self::prepare) from the spec compiled once, as read: the batch size is bound
    /// on its graph, not by elaborating it again.
    pub fn from_compiled(
        compiled: Compiled,
        config: &TrainConfig,
        config_dir: &Path,
        check_memory: bool,
    ) -> Result<Session, TrainError> {
        let usage = TrainError::Usage;
        let (device, splits, mut notes) = ground(config, config_dir)?;
        let Built { model, mut nets, unmatched_inits, .. } = build_model(
            compiled,
            config,
            &splits,
            &device,
            config.seed,
            check_memory.then(|| config.optimizer.state_slots()),
        )?;
        let net = nets.full();
        if let Some(e) = super::init_weights::unmatched_error(&unmatched_inits, &[net]) {
            return Err(usage(e));
        }
        let (input, target) = fit_data(net, &config.data, &splits.train)?;
        let output = net.output_names().first().map(|o| o.to_string()).unwrap_or_default();
        let objectives = config.objectives(&output, &target).map_err(usage)?;
        check_objectives(&model, net, &objectives, &splits, &config.data, &target)?;
        if let Some(init) = &config.init {
            let report = net.load_weights(config_dir.join(init), config.init_partial)?;
            let mut note = format!("loaded {} tensors from `{init}`", report.loaded);
            if !report.skipped.is_empty() {
                note += &format!("; {}", report.skipped.to_string().trim_end());
            }
            notes.push(note);
        }
        let (params, frozen) = trainable(net, &config.frozen)?;
        notes.extend(hold_frozen(&mut nets, config, &config.frozen, &frozen));
        let optimizer = super::optim::groups::build(&config.optimizer, params, &config.param_groups)?;
        let (mut fit, plateau) = looping(config, splits.train.len(), config.accumulate)?;
        fit.augment = augmenter(config, &model, &objectives, &splits)?;
        let program = Supervised {
            nets,
            optimizer,
            objectives,
            clip: config.clip,
            l1: config.l1,
            accumulate: config.accumulate,
        };
        let title = program.nets.full().name.clone();
        Ok(Session { program, splits, input, target, fit, plateau, frozen, notes, device, title })
    }
}

/// The data against the model's inputs (each named array against its input, or the features
/// against the one input); the names `x` and `y` are fed under.
pub(crate) fn fit_data(
    net: &crate::Lowered,
    config: &DataConfig,
    train: &Dataset,
) -> Result<(String, String), TrainError> {
    if let Some(names) = &config.named {
        data::check_named(train, names, &net.name, net.inputs())?;
        let (x, y) = names.first();
        return Ok((x.to_string(), y.to_string()));
    }
    let inputs = net.inputs();
    if inputs.len() > 1 {
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(TrainError::Data(data::DataError::Mismatch(format!(
            "`{}` takes {} inputs ({}); the data gives one array: name an array for each with \
             `data.inputs` (and the targets with `data.targets`)",
            net.name,
            inputs.len(),
            names.join(", ")
        ))));
    }
    if let Some(input) = inputs.first() {
        data::check_fits(train, input).map_err(|e| data::with_image_hint(&config.source, e))?;
    }
    Ok((inputs.first().map(|i| i.name.clone()).unwrap_or_default(), TARGET.to_string()))
}

/// Each objective against the model and the data: its output is the model's, its target is
/// one the data gives (and of the kind its loss takes), and class indices name classes the
/// output has.
fn check_objectives(
    model: &Model,
    net: &crate::Lowered,
    objectives: &[Objective],
    splits: &Splits,
    config: &DataConfig,
    first_target: &str,
) -> Result<(), TrainError> {
    let mismatch = |m: String| TrainError::Data(data::DataError::Mismatch(m));
    let outputs = net.output_names();
    let (x, _) = config.named.as_ref().map_or(("", ""), |n| n.first());
    let targets: Vec<(&str, &candle_core::Tensor)> = splits
        .train
        .named(x, first_target)
        .filter(|(_, role, _)| *role == data::Role::Target)
        .map(|(n, _, t)| (n, t))
        .collect();
    let listed = |names: Vec<&str>| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    for objective in objectives {
        if !outputs.contains(&objective.output.as_str()) {
            return Err(mismatch(format!(
                "`loss` names the output `{}`, which `{}` does not have (its outputs are {})",
                objective.output,
                net.name,
                listed(outputs.clone())
            )));
        }
        let Some((_, target)) = targets.iter().find(|(n, _)| *n == objective.target) else {
            return Err(mismatch(format!(
                "the loss on `{}` reads the target `{}`, which the data does not give (it gives {}): \
                 name it in `data.targets`, or set the loss's `target`",
                objective.output,
                objective.target,
                listed(targets.iter().map(|(n, _)| *n).collect())
            )));
        };
        if objective.loss.classifies() && target.dtype().is_float() {
            return Err(mismatch(format!(
                "the loss on `{}` takes class indices, but the target `{}` holds values (f32): \
                 set `data.target_dtype: i64`, or store it as integers",
                objective.output, objective.target
            )));
        }
        if objective.loss.classifies() {
            if let Some(classes) = class_count(model, &objective.output, objective.loss.class_axis()) {
                // Targets at `ignore_index` name no class.
                let named = match objective.loss.ignore_index() {
                    Some(ignored) => target.ne(ignored)?.where_cond(target, &target.zeros_like()?)?,
                    None => (*target).clone(),
                };
                data::check_class_indices(&named, &objective.output, classes)?;
                if let LossConfig::CrossEntropy { weight: Some(w), .. } = &objective.loss {
                    if w.len() != classes {
                        return Err(mismatch(format!(
                            "the loss on `{}` has {} class weights, but the output has {classes} classes",
                            objective.output,
                            w.len()
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// What every run starts from: the configuration checked again (flags may have changed what
/// its reader checked), the device, and the data, refused if not finite.
pub fn ground(config: &TrainConfig, config_dir: &Path) -> Result<(Device, Splits, Vec<String>), TrainError> {
    let usage = TrainError::Usage;
    config.check().map_err(|(path, e)| usage(format!("{}: {e}", path.join("."))))?;
    let (device, note) = device::select(config.device).map_err(usage)?;
    let splits = data::load_with(&config.data, config_dir, config.seed, &device, config.gan.is_none())?;
    check_finite(&splits)?;
    Ok((device, splits, note.into_iter().collect()))
}

/// `data.augment` ready for the run, checked against the features (images `[C, H, W]`) and,
/// for mixup and CutMix, against the loss (one cross-entropy, whose output's classes the soft
/// targets spread over).
fn augmenter(
    config: &TrainConfig,
    model: &Model,
    objectives: &[Objective],
    splits: &Splits,
) -> Result<Option<std::sync::Arc<Augmenter>>, TrainError> {
    let Some(spec) = &config.data.augment else { return Ok(None) };
    let usage = |e: String| TrainError::Usage(format!("data.augment: {e}"));
    spec.check_shape(splits.train.example_shape()).map_err(usage)?;
    if !splits.train.x.dtype().is_float() {
        return Err(usage("it changes float images; these features are integer ids".into()));
    }
    let mut classes = 0;
    if spec.mixes() {
        let [objective] = objectives else {
            return Err(usage("mixup and CutMix take one loss; this run has several".into()));
        };
        if !matches!(objective.loss, LossConfig::CrossEntropy { class_axis: 1, .. }) {
            return Err(usage("mixup and CutMix need `loss: cross_entropy` on [N, C] scores".into()));
        }
        classes = class_count(model, &objective.output, 1)
            .ok_or_else(|| usage(format!("the output `{}` has no bound class count", objective.output)))?;
    }
    let spec = spec.clone();
    Ok(Some(std::sync::Arc::new(Augmenter { spec, seed: config.seed, classes })))
}

/// The loop's configuration and the plateau rule, for iterations of `batches_per_step` batches
/// over `rows` training rows.
pub fn looping(
    config: &TrainConfig,
    rows: usize,
    batches_per_step: usize,
) -> Result<(FitConfig, Option<Plateau>), TrainError> {
    let used = super::fit::used_rows(rows, config.batch_size, config.drop_last);
    if used == 0 {
        return Err(TrainError::Usage(format!(
            "`drop_last: true` leaves no training batch: {rows} row(s) for a batch size of {}",
            config.batch_size
        )));
    }
    let steps_per_epoch = steps_per_epoch(used, config.batch_size, batches_per_step) as u64;
    let length = match config.schedule.every {
        super::schedule::Unit::Epoch => config.epochs as u64,
        super::schedule::Unit::Step => config.max_steps.unwrap_or(config.epochs as u64 * steps_per_epoch),
    };
    let (schedule, plateau) =
        config.schedule.build(length).map_err(|e| TrainError::Usage(format!("schedule: {e}")))?;
    let fit = FitConfig {
        epochs: config.epochs,
        max_steps: config.max_steps,
        seed: config.seed,
        shuffle: config.data.shuffle,
        schedule,
        unit: config.schedule.every,
        plateau_monitor: config.schedule.monitor().to_string(),
        early_stopping: config.early_stopping.clone(),
        cancel: Cancel::default(),
        augment: None,
        drop_last: config.drop_last,
    };
    Ok((fit, plateau))
}

/// The parameters of `net` left to train once `frozen` (globs) took theirs, and the keys it took.
pub fn trainable(net: &crate::Lowered, frozen: &[String]) -> Result<(Vec<Param>, Vec<String>), TrainError> {
    let (params, frozen) = freeze(Param::trainable(net), frozen).map_err(TrainError::Usage)?;
    if params.is_empty() {
        return Err(TrainError::Usage(format!(
            "nothing to train in {}: every parameter is frozen",
            net.name
        )));
    }
    Ok((params, frozen))
}

/// Puts the batch norms of frozen layers in eval mode ([`Nets::hold_in_eval`]): those a
/// `frozen` pattern covers, or whose parameters `frozen_keys` all hold. Returns their paths.
/// Under `frozen_bn: eval` (the default), holds the frozen batch norms of `nets` in eval mode
/// ([`hold_frozen_batch_norms`]); the note that says how many, if any.
pub fn hold_frozen(
    nets: &mut Nets,
    config: &TrainConfig,
    patterns: &[String],
    frozen_keys: &[String],
) -> Option<String> {
    if config.frozen_bn != FrozenBatchNorm::Eval {
        return None;
    }
    let held = hold_frozen_batch_norms(nets, patterns, frozen_keys);
    (!held.is_empty()).then(|| {
        format!(
            "{} frozen batch norm(s) of {} run in eval mode and keep their running statistics \
             (`frozen_bn: train` updates them)",
            held.len(),
            nets.full().name
        )
    })
}

pub fn hold_frozen_batch_norms(nets: &mut Nets, patterns: &[String], frozen_keys: &[String]) -> Vec<String> {
    let keys: std::collections::HashSet<&str> = frozen_keys.iter().map(String::as_str).collect();
    let trainable: Vec<String> =
        nets.full().params().trainable().into_iter().map(|(k, _)| k.to_string()).collect();
    nets.hold_in_eval(|path, kind| {
        if !kind.starts_with("BatchNorm") {
            return false;
        }
        let prefix = format!("{path}.");
        let own: Vec<&str> =
            trainable.iter().map(String::as_str).filter(|k| k.starts_with(&prefix)).collect();
        patterns.iter().any(|p| super::freeze::covers(p, path))
            || (!own.is_empty() && own.iter().all(|k| keys.contains(k)))
    })
}

/// One model of a spec, ready to train: compiled at the batch size, checked against the
/// machine's memory and the short last batches, and lowered for every batch size the splits
/// need.
pub struct Built {
    pub model: Model,
    pub nets: Nets,
    /// The symbol of its batch dim.
    pub batch_dim: String,
    /// The `init_weights` globs that covered none of its parameters.
    pub unmatched_inits: Vec<String>,
}

/// Builds a compiled model for `config`'s batch size (bound on its graph) and the rows of
/// `splits`, its parameters initialised from `seed`. `memory_slots`: refuse a run whose
/// training memory, with this many optimizer slots per parameter, exceeds what is available.
pub fn build_model(
    compiled: Compiled,
    config: &TrainConfig,
    splits: &Splits,
    device: &Device,
    seed: u64,
    memory_slots: Option<u64>,
) -> Result<Built, TrainError> {
    let b = config.batch_size;
    let model = Model::from_compiled(compiled)?;
    let batch_dim = batch_dim(model.graph())?;
    let model = model.rebound(&[(batch_dim.clone(), b as i64)])?;
    if let Some(slots) = memory_slots {
        let g = model.graph();
        check_training_memory(&crate::check::analyze(g, &g.bindings()), b, slots, available_memory())?;
    }
    if !config.drop_last {
        check_short_batch(&model, &batch_dim, splits.train.len() % b, b)?;
    }
    let full = model.build_seeded(device, DType::F32, seed)?;
    let unmatched_inits =
        super::init_weights::apply(&full, &config.init_weights).map_err(TrainError::Usage)?;
    let rows = [splits.train.len(), splits.val.len(), splits.test.as_ref().map_or(0, |t| t.len())];
    let nets = Nets::build(&model, full, &batch_dim, &rows)?;
    Ok(Built { model, nets, batch_dim, unmatched_inits })
}

/// The splits as named batch sources: features under `input`, targets under `target`, the
/// named form's further arrays under their own names.
pub fn feeds<'a>(splits: &'a Splits, input: &str, target: &str) -> (Feed<'a>, Feed<'a>) {
    let feed = |data| Feed { data, input: input.to_string(), target: target.to_string() };
    (feed(&splits.train), feed(&splits.val))
}

/// A NaN or an infinity in the data poisons every step it is in: refuse it up front, naming
/// the split and row, rather than stop an epoch in at a loss that cannot say why.
pub(crate) fn check_finite(splits: &Splits) -> Result<(), TrainError> {
    for (split, data) in [("training", &splits.train), ("validation", &splits.val)] {
        let named = data.more.iter().map(|(name, c)| (format!("array `{name}`"), &c.tensor));
        let arrays =
            [("features".to_string(), &data.x), ("targets".to_string(), &data.y)].into_iter().chain(named);
        for (what, t) in arrays {
            if !t.dtype().is_float() || t.elem_count() == 0 {
                continue;
            }
            // 0 * x is 0 for finite x and NaN otherwise; a row's sum says if any was not.
            let probe = (t.to_dtype(DType::F64)? * 0.0)?.reshape((t.dim(0)?, ()))?.sum(1)?;
            if let Some(row) = probe.to_vec1::<f64>()?.iter().position(|v| *v != 0.0) {
                return Err(TrainError::Data(data::DataError::Config(format!(
                    "row {row} of the {split} split (counted from 0, in split order) has a NaN or an \
                     infinity in its {what}"
                ))));
            }
        }
    }
    Ok(())
}

/// The memory the machine can give this process: `MemAvailable`, lowered to the cgroup's
/// limit when one is set; `None` where neither can be read.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let available = kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok()?.saturating_mul(1024);
    let read = |p: &str| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<u64>().ok());
    let cgroup = match (read("/sys/fs/cgroup/memory.max"), read("/sys/fs/cgroup/memory.current")) {
        (Some(max), Some(used)) => Some(max.saturating_sub(used)),
        _ => None,
    };
    Some(cgroup.map_or(available, |c| c.min(available)))
}

/// Refuse a run whose estimated training memory (the summary's, with the configured optimizer's
/// `slots` of state per parameter) exceeds `available`.
fn check_training_memory(
    analysis: &crate::check::Analysis,
    batch: usize,
    slots: u64,
    available: Option<u64>,
) -> Result<(), TrainError> {
    let needed = analysis.memory.training_bytes_with(analysis.trainable, slots);
    match (needed, available) {
        (Some(needed), Some(available)) if needed > available => Err(TrainError::Usage(format!(
            "training needs about {} (the summary's estimate at batch size {batch}: weights, gradients, \
             the optimizer's state and saved activations) and {} is available: lower `batch_size`, or pass \
             --skip-memory-check to try anyway",
            crate::report::mib(needed),
            crate::report::mib(available)
        ))),
        _ => Ok(()),
    }
}

/// The output `output`'s size on the class axis, when bound.
fn class_count(model: &Model, output: &str, class_axis: usize) -> Option<usize> {
    let g = model.graph();
    let (_, t) = g.outputs.iter().find(|(n, _)| n == output)?;
    let dim = g.tensor_type(*t)?.shape.get(class_axis)?.eval(&g.bindings())?;
    usize::try_from(dim).ok()
}

/// A batch norm cannot normalise one value per channel in training. PyTorch fails at the
/// short last batch, an epoch in; here the run is refused before it starts.
fn check_short_batch(model: &Model, batch_dim: &str, rest: usize, b: usize) -> Result<(), TrainError> {
    if rest == 0 {
        return Ok(());
    }
    let g = model.graph();
    let mut bindings = g.bindings();
    bindings.insert(batch_dim.to_string(), rest as i64);
    for id in &g.order {
        let node = g.node(*id);
        let Some(out) = node.outputs.first().filter(|_| node.kind.starts_with("BatchNorm")) else { continue };
        let ty = out.bind(&bindings);
        let (Some(total), Some(channels)) =
            (ty.numel().as_const(), ty.shape.get(1).and_then(|c| c.eval(&bindings)))
        else {
            continue;
        };
        if channels > 0 && total / channels < 2 {
            return Err(TrainError::Usage(format!(
                "the last training batch has {rest} row(s), and `{}` (batch norm) needs more than one \
                 value per channel in training: choose a batch size other than {b}, or `drop_last: true`",
                node.path
            )));
        }
    }
    Ok(())
}

/// `spec` compiled with the values its dims are declared with: `model` of it, or its default.
pub fn compile(spec: &str, model: Option<&str>) -> Result<Compiled, TrainError> {
    let options = Options { model: model.map(String::from), ..Options::default() };
    crate::compile_file(spec, &options).map_err(|e| TrainError::Usage(format!("cannot read `{spec}`: {e}")))
}

/// The symbol of the first input's leading axis: the batch the model is built for.
pub fn batch_dim(g: &Graph) -> Result<String, TrainError> {
    let first =
        g.inputs.first().and_then(|(_, id)| g.node(*id).outputs.first()).and_then(|t| t.shape.first());
    match first.map(Dim::symbols) {
        Some(syms) if syms.len() == 1 => Ok(syms[0].clone()),
        _ => Err(TrainError::Usage(format!(
            "the first input of `{}` needs a batch dim (`dim N`) on its first axis",
            g.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_whose_training_memory_exceeds_what_is_available_is_refused_with_both_figures() {
        let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/iris_mlp.wick");
        let options = Options { bind: vec![("N".into(), 10)], ..Default::default() };
        let compiled = crate::compile_file(spec, &options).unwrap();
        let analysis = compiled.analysis.as_ref().unwrap();
        let needed = analysis.memory.training_bytes.unwrap();
        // Adam's two moments are the summary's figure; plain SGD keeps none.
        assert_eq!(analysis.memory.training_bytes_with(analysis.trainable, 2), Some(needed));
        let sgd = analysis.memory.training_bytes_with(analysis.trainable, 0).unwrap();
        assert_eq!(needed - sgd, 2 * 4 * analysis.trainable);
        let e = check_training_memory(analysis, 10, 2, Some(needed - 1)).err().unwrap().to_string();
        assert!(e.contains("at batch size 10") && e.contains("--skip-memory-check"), "{e}");
        assert!(
            e.contains(&crate::report::mib(needed)) && e.contains(&crate::report::mib(needed - 1)),
            "{e}"
        );
        assert!(check_training_memory(analysis, 10, 2, Some(needed)).is_ok());
        assert!(check_training_memory(analysis, 10, 0, Some(sgd)).is_ok(), "SGD fits where Adam does not");
        assert!(check_training_memory(analysis, 10, 2, None).is_ok(), "unknown memory: no refusal");
        assert!(available_memory().is_some_and(|m| m > 0), "this machine's memory can be read");
    }

    #[test]
    fn wick_train_elaborates_its_spec_once() {
        let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/iris_mlp.wick");
        let before = crate::elab::elaborations();
        // What `wick train SPEC` does: compile, read the spec's `train` section, train.
        let compiled = compile(spec, None).unwrap();
        let style = crate::diag::RenderStyle::PLAIN;
        let (mut config, dir) =
            super::super::config::source::read_config(spec, &compiled, None, style).unwrap();
        config.epochs = 1;
        let out = std::env::temp_dir().join(format!("wick-once-{}", std::process::id()));
        let options = super::super::run::RunOptions { out: Some(out.clone()), ..Default::default() };
        let quiet = Box::new(super::super::observe::Progress::quiet());
        let report = super::super::run::train_compiled(spec, compiled, &config, &dir, &options, quiet);
        std::fs::remove_dir_all(out).ok();
        assert_eq!(report.unwrap().epochs, 1);
        assert_eq!(crate::elab::elaborations() - before, 1);
    }
}
