//! `wick train`: a spec and its training configuration in; a trained model, checkpoints and a
//! report out. Everything a run writes goes into one folder (`out`, by default
//! `runs/<spec name>`): `checkpoint.safetensors` (resumable), `weights.safetensors` (the last
//! weights, for `wick run`), `best.safetensors` (early stopping's best).

use std::path::{Path, PathBuf};

use super::checkpoint::{self, CheckpointError, RunState};
use super::config::TrainConfig;
use super::data::{DataError, Splits};
use super::fit::{fit, FitError, Stop};
use super::observe::{CurvePlot, EpochRecord, MetricsLog, Observer, Observers};
use super::session::Session;
use crate::lower::LowerError;

/// How this invocation runs, beyond the configuration.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue from `out/checkpoint.safetensors`.
    pub resume: bool,
    /// The run folder, overriding the configuration's `out`.
    pub out: Option<PathBuf>,
}

/// What a finished run reports (`--format json` prints it).
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainReport {
    pub epochs: usize,
    pub steps: u64,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_accuracy: Option<f64>,
    pub best_epoch: usize,
    pub samples_per_s: f64,
    /// `finished`, `early_stopped`, `max_steps` or `interrupted`.
    pub stopped: &'static str,
    pub frozen_params: usize,
    pub out: String,
    pub checkpoint: String,
    /// The metrics log (CSV, a row per step and per epoch).
    pub log: String,
    /// The loss and metric curves (SVG).
    pub plot: String,
    pub history: Vec<EpochRecord>,
    /// Notes for the person (device fallback, partial init).
    #[serde(skip)]
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Lower(#[from] LowerError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error(transparent)]
    Fit(#[from] FitError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{0}")]
    Usage(String),
}

/// Train the spec at `spec` as `config` says; `config_dir` anchors the config's relative paths.
pub fn train(
    spec: &str,
    config: &TrainConfig,
    config_dir: &Path,
    options: &RunOptions,
    progress: Box<dyn Observer>,
) -> Result<TrainReport, TrainError> {
    let Session { nets, splits, mut optimizer, fit: fit_config, plateau, frozen, mut notes, device } =
        Session::prepare(spec, config, config_dir)?;
    let net = nets.full();
    let out = out_dir(spec, config, config_dir, options);
    let resume_from = out.join("checkpoint.safetensors");
    let mut state = if options.resume {
        let ckpt = checkpoint::load(&resume_from, &device)?;
        net.params().load_map(&ckpt.weights, false)?;
        net.params().set_passes(ckpt.state.forward_passes);
        optimizer.load_state(&ckpt.optimizer)?;
        notes.push(format!(
            "resumed from `{}` after epoch {} (step {})",
            resume_from.display(),
            ckpt.state.epochs_done,
            ckpt.state.step
        ));
        ckpt.state
    } else {
        RunState { base_lr: *optimizer.lr_mut(), plateau, ..Default::default() }
    };
    let (log, plot) = (out.join("metrics.csv"), out.join("curves.svg"));
    let mut files: Vec<Box<dyn Observer>> = vec![
        Box::new(MetricsLog::create(&log, config.log_every as u64).map_err(|e| file_error(&log, e))?),
        Box::new(CurvePlot::new(&plot, &net.name).map_err(|e| file_error(&plot, e))?),
    ];
    files.push(progress);
    let mut observers = Observers(files);

    let every = config.checkpoint_every.max(1);
    let last_epoch = config.epochs;
    let stop = fit(
        &nets,
        optimizer.as_mut(),
        &splits,
        &fit_config,
        &mut state,
        &mut observers,
        &mut |state, opt, best| {
            let write =
                |name: &str| checkpoint::write_atomic(&out.join(name), &net.params().state_dict(), None);
            if state.epochs_done % every == 0 || state.epochs_done == last_epoch {
                let state = RunState { forward_passes: net.params().passes(), ..state.clone() };
                checkpoint::save(&resume_from, net.params().state_dict(), opt.state(), &state)
                    .and_then(|()| write("weights.safetensors"))
                    .map_err(|e| e.to_string())?;
            }
            if best {
                write("best.safetensors").map_err(|e| e.to_string())?;
            }
            Ok(())
        },
    )?;
    let mut report = report(state, stop, &splits, frozen.len(), &out, notes)?;
    report.log = log.display().to_string();
    report.plot = plot.display().to_string();
    report.checkpoint = resume_from.display().to_string();
    Ok(report)
}

fn file_error(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Usage(format!("cannot write `{}`: {e}", path.display()))
}

fn report(
    state: RunState,
    stop: Stop,
    splits: &Splits,
    frozen: usize,
    out: &Path,
    notes: Vec<String>,
) -> Result<TrainReport, TrainError> {
    let last = state.history.last().cloned();
    let seconds: f64 =
        state.history.iter().map(|r| splits.train.len() as f64 / r.samples_per_s.max(1e-12)).sum();
    let best_epoch = match state.best {
        Some((epoch, _)) => epoch,
        None => {
            let val_loss = |r: &EpochRecord| r.val.get("loss").unwrap_or(f64::NAN);
            state.history.iter().min_by(|a, b| val_loss(a).total_cmp(&val_loss(b))).map_or(0, |r| r.epoch)
        }
    };
    Ok(TrainReport {
        epochs: state.epochs_done,
        steps: state.step,
        train_loss: last.as_ref().and_then(|r| r.train.get("loss")).unwrap_or(f64::NAN),
        val_loss: last.as_ref().and_then(|r| r.val.get("loss")).unwrap_or(f64::NAN),
        val_accuracy: last.as_ref().and_then(|r| r.val.get("accuracy")),
        best_epoch,
        samples_per_s: (splits.train.len() * state.history.len()) as f64 / seconds.max(1e-12),
        stopped: match stop {
            Stop::Finished => "finished",
            Stop::EarlyStopped { .. } => "early_stopped",
            Stop::MaxSteps => "max_steps",
            Stop::Interrupted => "interrupted",
        },
        frozen_params: frozen,
        out: out.display().to_string(),
        checkpoint: String::new(),
        log: String::new(),
        plot: String::new(),
        history: state.history,
        notes,
    })
}

/// The run folder: the flag, else the configuration's `out` (relative to it), else
/// `runs/<spec file stem>` in the working directory.
pub fn out_dir(spec: &str, config: &TrainConfig, config_dir: &Path, options: &RunOptions) -> PathBuf {
    if let Some(out) = &options.out {
        return out.clone();
    }
    match &config.out {
        Some(out) => config_dir.join(out),
        None => {
            let stem = Path::new(spec).file_stem().map_or("run".into(), |s| s.to_string_lossy().to_string());
            Path::new("runs").join(stem)
        }
    }
}
