//! Setting up a run: the data read, the model built for the batch size (and for the splits'
//! short last batches) and checked against the data, initial weights, frozen parameters, the
//! optimizer and the loop's configuration. `wick train` and `wick lr-find` start the same way.

use std::path::Path;

use candle_core::{DType, Device};

use super::config::TrainConfig;
use super::data::{self, Splits};
use super::fit::{steps_per_epoch, FitConfig};
use super::freeze::freeze;
use super::nets::Nets;
use super::objective::Metric;
use super::optim::{Optimizer, Param};
use super::run::TrainError;
use super::schedule::Plateau;
use crate::ir::dim::Dim;
use crate::lower::device;
use crate::{Model, Options};

/// Everything a loop needs, ready to go.
pub struct Session {
    /// The model at the batch size, and at each split's short last batch.
    pub nets: Nets,
    pub splits: Splits,
    pub optimizer: Box<dyn Optimizer>,
    pub fit: FitConfig,
    pub plateau: Option<Plateau>,
    /// Keys of the parameters `frozen` took out of training.
    pub frozen: Vec<String>,
    /// Things the person should know (device fallback, partial init).
    pub notes: Vec<String>,
    pub device: Device,
}

impl Session {
    pub fn prepare(spec: &str, config: &TrainConfig, config_dir: &Path) -> Result<Session, TrainError> {
        let usage = TrainError::Usage;
        let mut notes = Vec::new();
        let (device, note) = device::select(config.device).map_err(usage)?;
        notes.extend(note);
        let b = config.batch_size.max(1);
        let splits = data::load(&config.data, config_dir, config.seed, &device)?;

        let batch_dim = batch_dim(spec)?;
        let model = Model::from_file(
            spec,
            &Options { bind: vec![(batch_dim.clone(), b as i64)], ..Default::default() },
        )?;
        check_short_batch(&model, &batch_dim, splits.train.len() % b, b)?;
        let full = model.build_seeded(&device, DType::F32, config.seed)?;
        let nets = Nets::build(&model, full, &batch_dim, &[splits.train.len(), splits.val.len()])?;
        let net = nets.full();
        if let Some(input) = net.inputs().first() {
            data::check_fits(&splits.train, input)?;
        }
        if config.loss.classifies() {
            if let Some((name, classes)) = class_count(&model, config.loss.class_axis()) {
                data::check_classes(&splits.train, &name, classes)?;
            }
        }
        if let Some(init) = &config.init {
            let report = net.load_weights(config_dir.join(init), config.init_partial)?;
            let mut note = format!("loaded {} tensors from `{init}`", report.loaded);
            if !report.skipped.is_empty() {
                note += &format!("; {}", report.skipped.to_string().trim_end());
            }
            notes.push(note);
        }
        let (params, frozen) = freeze(Param::trainable(net), &config.frozen).map_err(usage)?;
        if params.is_empty() {
            return Err(usage("nothing to train: every parameter is frozen".into()));
        }
        let optimizer = config.optimizer.build(params)?;
        let metric_names = config.metrics.clone().unwrap_or_else(|| {
            if config.loss.classifies() {
                vec!["accuracy".into()]
            } else {
                vec![]
            }
        });
        let metrics = metric_names
            .iter()
            .map(|m| Metric::parse(m, &config.loss))
            .collect::<Result<Vec<_>, _>>()
            .map_err(usage)?;
        let steps_per_epoch = steps_per_epoch(splits.train.len(), b, config.accumulate) as u64;
        let length = match config.schedule.every {
            super::schedule::Unit::Epoch => config.epochs as u64,
            super::schedule::Unit::Step => config.max_steps.unwrap_or(config.epochs as u64 * steps_per_epoch),
        };
        let (schedule, plateau) =
            config.schedule.build(length).map_err(|e| usage(format!("schedule: {e}")))?;
        let fit_config = FitConfig {
            epochs: config.epochs,
            max_steps: config.max_steps,
            seed: config.seed,
            shuffle: config.data.shuffle,
            loss: config.loss.clone(),
            metrics,
            schedule,
            unit: config.schedule.every,
            plateau_monitor: config.schedule.monitor().to_string(),
            accumulate: config.accumulate.max(1),
            clip: config.clip,
            l1: config.l1,
            early_stopping: config.early_stopping.clone(),
        };
        Ok(Session { nets, splits, optimizer, fit: fit_config, plateau, frozen, notes, device })
    }
}

/// The first output's name and its size on the class axis, when bound.
fn class_count(model: &Model, class_axis: usize) -> Option<(String, usize)> {
    let g = model.graph();
    let (name, t) = g.outputs.first()?;
    let dim = g.tensor_type(*t)?.shape.get(class_axis)?.eval(&g.bindings())?;
    Some((name.clone(), usize::try_from(dim).ok()?))
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
                 value per channel in training: choose a batch size other than {b}",
                node.path
            )));
        }
    }
    Ok(())
}

/// The symbol of the first input's leading axis: the batch the model is built for.
fn batch_dim(spec: &str) -> Result<String, TrainError> {
    let c = crate::compile_file(spec, &Options::default())
        .map_err(|e| TrainError::Usage(format!("cannot read `{spec}`: {e}")))?;
    let g = c.graph.as_ref().ok_or_else(|| TrainError::Usage(format!("`{spec}` has no model")))?;
    let first =
        g.inputs.first().and_then(|(_, id)| g.node(*id).outputs.first()).and_then(|t| t.shape.first());
    match first.map(Dim::symbols) {
        Some(syms) if syms.len() == 1 => Ok(syms[0].clone()),
        _ => Err(TrainError::Usage(format!(
            "the first input of `{spec}` needs a batch dim (`dim N`) on its first axis"
        ))),
    }
}
