//! `wick train`: a spec and a configuration in, a trained model, checkpoints and a report out.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::config::TrainConfig;
use super::data::{self, DataError, Dataset, Splits};
use super::fit::{fit, EpochStats, FitConfig};
use super::optim::{Optimizer, Param};
use super::schedule::Schedule;
use crate::ir::dim::Dim;
use crate::lower::LowerError;
use crate::{Model, Options};

/// What a finished run reports (`--format json` prints it).
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainReport {
    pub epochs: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub best_epoch: usize,
    pub samples_per_s: f64,
    /// Rows left out so both splits divide into whole batches.
    pub dropped_rows: usize,
    #[serde(skip)]
    pub history: Vec<EpochStats>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Lower(#[from] LowerError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write a checkpoint to `{path}`: {source}")]
    Checkpoint { path: String, source: std::io::Error },
}

/// Train the spec at `spec` as `config` says; `config_dir` anchors the config's relative paths.
pub fn train(
    spec: &str,
    config: &TrainConfig,
    config_dir: &Path,
    device: &Device,
) -> Result<TrainReport, TrainError> {
    let Splits { train, val } = data::load(&config.data, config_dir, config.seed, device)?;
    let b = config.batch_size.max(1);
    let (train, val, dropped) = whole_batches(train, val, b)?;

    let model =
        Model::from_file(spec, &Options { bind: vec![(batch_dim(spec)?, b as i64)], ..Default::default() })?;
    let net = model.build_seeded(device, DType::F32, config.seed)?;
    let params = Param::trainable(&net);
    let mut optimizer = config.optimizer.build(params)?;
    let fit_config = FitConfig {
        epochs: config.epochs,
        batch_size: b,
        seed: config.seed,
        class_axis: 1,
        schedule: Schedule::Constant,
    };
    let checkpoint = config.checkpoint_dir.as_ref().map(|d| config_dir.join(d));
    let started = Instant::now();
    let history =
        fit(&net, optimizer.as_mut(), &train, &val, &fit_config, &mut |_, opt| match &checkpoint {
            Some(dir) => save_checkpoint(dir, &net, opt).map_err(|e| candle_core::Error::Msg(e.to_string())),
            None => Ok(()),
        })?;
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let last =
        history.last().cloned().ok_or_else(|| TrainError::Usage("`epochs` must be at least 1".into()))?;
    let best = history.iter().min_by(|a, b| a.val_loss.total_cmp(&b.val_loss)).map_or(0, |e| e.epoch);
    Ok(TrainReport {
        epochs: history.len(),
        train_loss: last.train_loss,
        val_loss: last.val_loss,
        val_accuracy: last.val_accuracy,
        best_epoch: best,
        samples_per_s: (train.len() * history.len()) as f64 / seconds,
        dropped_rows: dropped,
        history,
    })
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

/// Both splits cut to whole batches (a lowered model has its batch size fixed).
fn whole_batches(train: Dataset, val: Dataset, b: usize) -> Result<(Dataset, Dataset, usize), TrainError> {
    let cut = |d: &Dataset| -> candle_core::Result<Dataset> {
        let keep: Vec<u32> = (0..(d.len() / b * b) as u32).collect();
        d.select(&keep)
    };
    let (t, v) = (cut(&train)?, cut(&val)?);
    if t.is_empty() || v.is_empty() {
        return Err(TrainError::Usage(format!(
            "batch size {b} is larger than a split ({} training, {} validation rows)",
            train.len(),
            val.len()
        )));
    }
    let dropped = train.len() + val.len() - t.len() - v.len();
    Ok((t, v, dropped))
}

/// Weights and optimizer state, each written to a temporary file and renamed over the last
/// one, so an interrupted write never leaves a broken checkpoint.
pub fn save_checkpoint(
    dir: &Path,
    net: &crate::Lowered,
    optimizer: &dyn Optimizer,
) -> Result<(), TrainError> {
    let io = |path: &Path, source| TrainError::Checkpoint { path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let state: std::collections::HashMap<String, Tensor> = optimizer.state().into_iter().collect();
    for (name, tensors) in [
        ("last.safetensors", net.params().state_dict().into_iter().collect()),
        ("optimizer.safetensors", state),
    ] {
        let path: PathBuf = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        candle_core::safetensors::save(&tensors, &tmp)?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    }
    Ok(())
}
