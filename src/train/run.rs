//! `wick train`: a spec and its training configuration in; a trained model, checkpoints and a
//! report out. Everything a run writes goes into one folder (`out`, by default
//! `runs/<spec name>`): `checkpoint.safetensors` (resumable), `weights.safetensors` (the last
//! weights, for `wick run`), `best.safetensors` (early stopping's best).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::checkpoint::{self, CheckpointError, RunState};
use super::config::TrainConfig;
use super::data::DataError;
use super::fit::Cancel;
use super::fit::{fit, FitError, Stop};
use super::folder::{Kept, RunFolder};
use super::observe::{CurvePlot, EpochRecord, MetricsLog, Observer, Observers, TensorBoard};
use super::program::Program;
use super::resume;
use super::session::{feeds, Session};
use crate::lower::LowerError;

/// How this invocation runs, beyond the configuration.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue from `out/checkpoint.safetensors`.
    pub resume: bool,
    /// Resume even where the settings differ from the checkpoint's (each change is noted).
    pub allow_changes: bool,
    /// The run folder, overriding the configuration's `out`.
    pub out: Option<PathBuf>,
    /// Start even when the training-memory estimate exceeds the memory available.
    pub skip_memory_check: bool,
    /// Stops the run after the iteration in flight when requested (Ctrl-C).
    pub cancel: Cancel,
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
    /// Samples trained by this invocation over its wall time, from its first step to its final
    /// save (validation, checkpoints and logs included).
    pub samples_per_s: f64,
    /// The same samples over the time spent in training steps alone (forward, backward,
    /// update): what the compute costs.
    pub compute_samples_per_s: f64,
    /// This invocation's wall time, from its first step to its final save.
    pub wall_s: f64,
    pub stopped: Stop,
    pub frozen_params: usize,
    pub out: String,
    pub checkpoint: String,
    /// The run's result (`weights.safetensors`; a GAN's generator) and what it holds.
    pub weights: String,
    /// Every result file: one per model (`Generator.safetensors`, `Discriminator.safetensors`).
    pub weight_files: Vec<String>,
    pub kept: Kept,
    /// The metrics log (CSV, a row per step and per epoch).
    pub log: String,
    /// The loss and metric curves (SVG).
    pub plot: String,
    pub history: Vec<EpochRecord>,
    /// The figures on the test split (`test_split` or `test`), measured once on the weights
    /// the run reports (`weights`: early stopping's best, when restored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<super::observe::Metrics>,
    #[serde(skip_serializing_if = "is_zero")]
    pub test_examples: usize,
    /// Notes for the person (device fallback, partial init, changes on resume).
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
    /// Training stopped on an error after it had started; what was kept on disk.
    #[error("{cause}\n{kept}")]
    Stopped { cause: Box<TrainError>, kept: String },
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
    train_compiled(spec, super::session::compile(spec, None)?, config, config_dir, options, progress)
}

/// [`train`] on the spec already compiled (`wick train` reads its configuration from it).
pub fn train_compiled(
    spec: &str,
    compiled: crate::Compiled,
    config: &TrainConfig,
    config_dir: &Path,
    options: &RunOptions,
    progress: Box<dyn Observer>,
) -> Result<TrainReport, TrainError> {
    let check_memory = !options.skip_memory_check;
    match &config.gan {
        // The players are models of the spec other than (or besides) its default one.
        Some(gan) => {
            let session = super::gan::session::prepare(spec, config, gan, config_dir, check_memory)?;
            run_session(session, spec, config, config_dir, options, progress)
        }
        None => {
            let session = Session::from_compiled(compiled, config, config_dir, check_memory)?;
            run_session(session, spec, config, config_dir, options, progress)
        }
    }
}

/// Run a prepared session to its end, in its run folder.
fn run_session<P: Program>(
    session: Session<P>,
    spec: &str,
    config: &TrainConfig,
    config_dir: &Path,
    options: &RunOptions,
    progress: Box<dyn Observer>,
) -> Result<TrainReport, TrainError> {
    let Session {
        mut program,
        splits,
        input,
        target,
        fit: mut fit_config,
        plateau,
        frozen,
        mut notes,
        device,
        title,
    } = session;
    let (train_feed, val_feed) = feeds(&splits, &input, &target);
    fit_config.cancel = options.cancel.clone();
    let mut folder = RunFolder::new(out_dir(spec, config, config_dir, options)?);
    folder.metadata = (!splits.recorded.is_empty()).then(|| splits.recorded.metadata());
    if folder.dir.is_dir() {
        // What a kill cut short in an earlier run of this folder (nothing else writes in it now).
        super::files::clean_leftovers(&folder.dir).map_err(|e| file_error(&folder.dir, e))?;
    }
    let settings = resume::settings(config, &device);
    let mut state = if options.resume {
        continue_from(&folder, &mut program, &device, &settings, options.allow_changes, &mut notes)?
    } else {
        RunState { base_lr: program.base_learning_rate(), plateau, settings, ..Default::default() }
    };
    let (log, plot) = (folder.log(), folder.plot());
    let metrics_log = match options.resume {
        true => MetricsLog::resume(&log, config.log_every as u64, &state),
        false => MetricsLog::create(&log, config.log_every as u64),
    };
    let metrics_log = metrics_log.map(|l| l.with_test_split(splits.test.is_some()));
    let mut files: Vec<Box<dyn Observer>> = vec![
        Box::new(metrics_log.map_err(|e| file_error(&log, e))?),
        Box::new(CurvePlot::new(&plot, &title).map_err(|e| file_error(&plot, e))?),
    ];
    if config.tensorboard {
        let resumed_at = options.resume.then_some(state.step);
        let board = TensorBoard::create(&folder.dir, config.log_every as u64, resumed_at);
        files.push(Box::new(board.map_err(|e| file_error(&folder.dir, e))?));
    }
    files.push(progress);
    let mut observers = Observers(files);

    let every = config.checkpoint_every;
    let began = (Instant::now(), state.epochs_done);
    let outcome = fit(
        &mut program,
        &train_feed,
        &val_feed,
        &fit_config,
        &mut state,
        &mut observers,
        &mut |state, program, improved| {
            folder.after_epoch(program, state, improved, every).map_err(|e| e.to_string())
        },
    );
    // Whatever ended the run, its state is saved before anything is reported.
    let over = matches!(outcome, Ok(Stop::Finished | Stop::EarlyStopped | Stop::MaxSteps));
    let restore_best = over && config.early_stopping.as_ref().is_some_and(|e| e.restore_best);
    let kept = folder.finish(&program, &state, restore_best);
    let timing = Timing { wall_s: began.0.elapsed().as_secs_f64(), first_epoch: began.1 };
    let (stop, kept) = match (outcome, kept) {
        (Ok(stop), Ok(kept)) => (stop, kept),
        (Ok(_), Err(e)) => return Err(e.into()),
        (Err(cause), Ok(kept)) => {
            let kept = match kept {
                Kept::Last { step } => format!(
                    "note: the state after step {step}, the last one completed, is saved in `{}`: \
                     `--resume` continues from it",
                    folder.dir.display()
                ),
                kept => format!("note: {kept}; the run folder is `{}`", folder.dir.display()),
            };
            return Err(TrainError::Stopped { cause: Box::new(cause.into()), kept });
        }
        (Err(cause), Err(e)) => {
            let kept = format!("note: and the final checkpoint could not be written: {e}");
            return Err(TrainError::Stopped { cause: Box::new(cause.into()), kept });
        }
    };
    let test = match (&splits.test, kept) {
        (Some(_), Kept::Previous { .. }) => {
            notes.push("the test split was not evaluated: the weights were no longer finite".into());
            None
        }
        (Some(data), kept) => {
            let figures = test_figures(&mut program, data, (&input, &target), &folder, kept)?;
            let epoch = state.history.last().map_or(0, |e| e.epoch);
            observers.test(&figures, epoch, state.step).map_err(|e| file_error(&log, e))?;
            Some(figures)
        }
        (None, _) => None,
    };
    let files =
        program.weight_files().into_iter().map(|(name, _)| folder.result(&name).display().to_string());
    let saved = Saved { folder: &folder, kept, weight_files: files.collect() };
    let mut report = report(state, stop, timing, frozen.len(), saved, notes);
    report.test_examples = splits.test.as_ref().map_or(0, |t| t.len());
    report.test = test;
    Ok(report)
}

/// The figures on the test split, once, on the weights the run reports: the program's, or
/// early stopping's best read back from the result file.
fn test_figures<P: Program>(
    program: &mut P,
    data: &super::data::Dataset,
    (input, target): (&str, &str),
    folder: &RunFolder,
    kept: Kept,
) -> Result<super::observe::Metrics, TrainError> {
    if let Kept::Best { .. } = kept {
        let best = super::data::read_safetensors(&folder.weights())?;
        program.restore(&best, None)?;
    }
    let feed = super::batch::Feed { data, input: input.to_string(), target: target.to_string() };
    Ok(super::fit::evaluate(program, &feed, &program.figures())?)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The state a resumed run starts from: the checkpoint's weights, optimizer state and run
/// state, after checking that the run resuming it is the same run.
fn continue_from(
    folder: &RunFolder,
    program: &mut dyn Program,
    device: &candle_core::Device,
    settings: &std::collections::BTreeMap<String, String>,
    allow_changes: bool,
    notes: &mut Vec<String>,
) -> Result<RunState, TrainError> {
    let path = folder.checkpoint();
    let ckpt = checkpoint::load(&path, device)?;
    let mut state = ckpt.state;
    folder.saved_at(state.step);
    let changes = resume::changes(&state.settings, settings);
    if state.settings.is_empty() {
        notes.push("the checkpoint predates recorded settings: its settings were not compared".into());
    } else if !changes.is_empty() && !allow_changes {
        let list: Vec<String> = changes.iter().map(|c| format!("  {c}")).collect();
        return Err(TrainError::Usage(format!(
            "`{}` was trained with other settings, so resuming would not continue the same run:\n{}\n\
             undo the change, or pass --allow-changes to resume anyway",
            path.display(),
            list.join("\n")
        )));
    }
    let kind_changed = resume::optimizer_kind_changed(&changes);
    // Each optimizer saves its step count: `step`, or `<model>.step` for one of several.
    let has_optimizer_state = ckpt.optimizer.keys().any(|k| k == "step" || k.ends_with(".step"));
    if !has_optimizer_state && state.step > 0 && !allow_changes {
        return Err(TrainError::Usage(format!(
            "`{}` holds no optimizer state, so resuming would not continue the same run: \
             pass --allow-changes to resume with a fresh optimizer",
            path.display()
        )));
    }
    if kind_changed {
        notes.push("the optimizer changed: it starts with fresh state".into());
    }
    program.restore(&ckpt.weights, (!kind_changed).then_some(&ckpt.optimizer))?;
    program.set_passes(&state.forward_passes);
    if changes.iter().any(|c| c.key == "optimizer") && allow_changes {
        // A rate the person changed on purpose replaces the one the schedule had reached.
        state.base_lr = program.base_learning_rate();
    }
    notes.extend(changes.iter().map(|c| format!("resumed with a changed setting: {c}")));
    notes.push(format!(
        "resumed from `{}` at epoch {} (step {})",
        path.display(),
        state.epochs_done,
        state.step
    ));
    state.settings = settings.clone();
    Ok(state)
}

fn file_error(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Usage(format!("cannot write `{}`: {e}", path.display()))
}

/// What a finished run left on disk.
struct Saved<'a> {
    folder: &'a RunFolder,
    kept: Kept,
    /// Its result files, one per model.
    weight_files: Vec<String>,
}

/// How long this invocation trained, and from which epoch (a resumed run starts past the
/// checkpoint's).
struct Timing {
    wall_s: f64,
    first_epoch: usize,
}

fn report(
    state: RunState,
    stop: Stop,
    timing: Timing,
    frozen: usize,
    saved: Saved,
    notes: Vec<String>,
) -> TrainReport {
    let Saved { folder, kept, weight_files } = saved;
    let last = state.history.last().cloned();
    let ran = state.history.iter().filter(|r| r.epoch > timing.first_epoch);
    let (samples, train_s) = ran.fold((0, 0.0), |(n, s), r| (n + r.samples, s + r.train_s));
    let validated = state.history.iter().any(|r| !r.val.0.is_empty());
    let best_epoch = match state.best {
        Some((epoch, _)) => epoch,
        None if !validated => 0,
        None => {
            let val_loss = |r: &EpochRecord| r.val.get("loss").unwrap_or(f64::NAN);
            state.history.iter().min_by(|a, b| val_loss(a).total_cmp(&val_loss(b))).map_or(0, |r| r.epoch)
        }
    };
    TrainReport {
        epochs: state.epochs_done,
        steps: state.step,
        train_loss: last.as_ref().and_then(|r| r.train.get("loss")).unwrap_or(f64::NAN),
        val_loss: last.as_ref().and_then(|r| r.val.get("loss")).unwrap_or(f64::NAN),
        val_accuracy: last.as_ref().and_then(|r| r.val.get("accuracy")),
        best_epoch,
        samples_per_s: samples as f64 / timing.wall_s.max(1e-9),
        compute_samples_per_s: samples as f64 / train_s.max(1e-9),
        wall_s: timing.wall_s,
        stopped: stop,
        frozen_params: frozen,
        out: folder.dir.display().to_string(),
        checkpoint: folder.checkpoint().display().to_string(),
        weights: weight_files.first().cloned().unwrap_or_default(),
        weight_files,
        kept,
        log: folder.log().display().to_string(),
        plot: folder.plot().display().to_string(),
        history: state.history,
        test: None,
        test_examples: 0,
        notes,
    }
}

/// The run folder: the flag, else the configuration's `out` (relative to it), else
/// `runs/<spec file stem>` in the working directory.
///
/// An `out` written in a spec or configuration file is not trusted to write anywhere: it must
/// be relative and stay inside the file's folder or the working directory (judged on the path
/// as written, `..` resolved). Anything else takes `--out`, typed by the person running it.
pub fn out_dir(
    spec: &str,
    config: &TrainConfig,
    config_dir: &Path,
    options: &RunOptions,
) -> Result<PathBuf, TrainError> {
    if let Some(out) = &options.out {
        return Ok(out.clone());
    }
    match &config.out {
        Some(out) => confined(config_dir, out),
        None => {
            let stem = Path::new(spec).file_stem().map_or("run".into(), |s| s.to_string_lossy().to_string());
            Ok(Path::new("runs").join(stem))
        }
    }
}

fn confined(config_dir: &Path, out: &str) -> Result<PathBuf, TrainError> {
    let refuse = |why: &str| {
        TrainError::Usage(format!(
            "`out: {out}` {why}; a run folder written in a file must stay inside that file's folder \
             or the working directory: pass `--out {out}` to write there"
        ))
    };
    if Path::new(out).is_absolute() {
        return Err(refuse("is an absolute path"));
    }
    let cwd = std::env::current_dir().map_err(|e| TrainError::Usage(format!("no working directory: {e}")))?;
    let base = super::files::normalize(&cwd.join(config_dir));
    let target = super::files::normalize(&base.join(out));
    if target.starts_with(&base) || target.starts_with(&cwd) {
        Ok(config_dir.join(out))
    } else {
        Err(refuse("leaves them"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_written_in_a_file_stays_in_its_folder_or_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(confined(Path::new("specs"), "runs/a").unwrap(), Path::new("specs/runs/a"));
        assert!(confined(Path::new("specs"), "../runs/a").is_ok(), "still inside the working directory");
        for bad in ["/tmp/evil", "../../x", "../../../../../../etc"] {
            let err = confined(Path::new("specs"), bad).unwrap_err().to_string();
            assert!(err.contains(&format!("--out {bad}")), "{err}");
        }
        // A spec outside the working directory keeps its runs beside it.
        let elsewhere = cwd.parent().unwrap().join("elsewhere");
        assert!(confined(&elsewhere, "runs/a").is_ok());
        assert!(confined(&elsewhere, "../../a").is_err());
    }
}
