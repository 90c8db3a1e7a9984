//! The run folder: where each file of a run lives, and what is written to it while the run goes
//! and when it ends, however it ends.
//!
//! - `checkpoint.safetensors`: weights, optimizer state and run state; `--resume` continues it
//!   exactly. Written every `checkpoint_every` epochs and when the run ends.
//! - `weights.safetensors`: the run's result, keyed like a PyTorch `state_dict`. When the run
//!   ends it holds the best epoch's weights if early stopping restores them, else the last.
//! - `best.safetensors`: the weights of the best epoch so far (early stopping).
//! - `metrics.csv` and `curves.svg`: the log and its picture.
//! - whatever else the program writes after each epoch (a GAN's `samples/epoch_NNN.png`).
//!
//! When the weights stop being finite, nothing is written over what is on disk: the last
//! checkpoint stays the last finite state, and [`Kept::Previous`] says which step it holds.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::checkpoint::{self, CheckpointError, RunState};
use super::program::Program;
use crate::lower::inspect::all_finite;

/// The files of one run.
pub struct RunFolder {
    pub dir: PathBuf,
    /// The step the checkpoint on disk holds, if there is one.
    saved_step: Cell<Option<u64>>,
    /// What the result weights files and the checkpoint carry besides tensors (what the data
    /// section learned: `data::recorded`).
    pub metadata: Option<HashMap<String, String>>,
}

/// What `weights.safetensors` holds once the run is over.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Kept {
    /// The weights after the run's last step (the checkpoint holds the same).
    Last { step: u64 },
    /// Early stopping's best epoch; the checkpoint holds the last step, to resume from.
    Best { epoch: usize, step: u64 },
    /// The weights were no longer finite: the files on disk are from the last save (`None`:
    /// there was none).
    Previous { step: Option<u64> },
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kept::Last { step } => write!(f, "the weights after the last step, step {step}"),
            Kept::Best { epoch, step } => {
                write!(f, "the best epoch's weights (epoch {epoch}, step {step}), restored by early stopping")
            }
            Kept::Previous { step: Some(step) } => write!(
                f,
                "the weights were no longer finite, so the last checkpoint (step {step}) was kept as it was"
            ),
            Kept::Previous { step: None } => {
                write!(f, "the weights were no longer finite and no checkpoint had been written")
            }
        }
    }
}

impl RunFolder {
    pub fn new(dir: PathBuf) -> RunFolder {
        RunFolder { dir, saved_step: Cell::new(None), metadata: None }
    }

    /// The checkpoint in the folder holds `step` (a resumed run read it).
    pub fn saved_at(&self, step: u64) {
        self.saved_step.set(Some(step));
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }
    pub fn weights(&self) -> PathBuf {
        self.result("weights")
    }
    /// A result file of the run: `weights`, or a model's name.
    pub fn result(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.safetensors"))
    }
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }
    pub fn plot(&self) -> PathBuf {
        self.dir.join("curves.svg")
    }

    /// After a whole epoch: the checkpoint and weights every `every` epochs, and the best
    /// weights when this epoch improved on the best.
    pub fn after_epoch(
        &self,
        program: &dyn Program,
        state: &RunState,
        improved: bool,
        every: usize,
    ) -> Result<(), CheckpointError> {
        if state.epochs_done.is_multiple_of(every.max(1)) {
            self.save(program, state)?;
            self.write_results(program)?;
        }
        if improved {
            checkpoint::write_atomic(&self.best(), &program.weights(), self.metadata.clone(), false)?;
        }
        for (path, bytes) in program.epoch_files(state.epochs_done).map_err(|e| self.error(&e.to_string()))? {
            let path = self.dir.join(path);
            super::files::replace_unsynced(&path, |tmp| std::fs::write(tmp, &bytes)).map_err(|e| {
                CheckpointError::Write { path: path.display().to_string(), message: e.to_string() }
            })?;
        }
        Ok(())
    }

    /// When the run ends, by finishing or any stop or error: the checkpoint at `state`, and
    /// the result in `weights.safetensors` — the best epoch's if `restore_best` and the run is
    /// over (not interrupted, not failed), else the last step's.
    pub fn finish(
        &self,
        program: &dyn Program,
        state: &RunState,
        restore_best: bool,
    ) -> Result<Kept, CheckpointError> {
        if !weights_finite(program, &self.checkpoint())? {
            return Ok(Kept::Previous { step: self.saved_step.get() });
        }
        self.save(program, state)?;
        match state.best.filter(|_| restore_best && self.best().is_file()) {
            Some((epoch, _)) => {
                let step = state.history.iter().find(|r| r.epoch == epoch).map_or(0, |r| r.step);
                copy_weights(&self.best(), &self.weights())?;
                Ok(Kept::Best { epoch, step })
            }
            None => {
                self.write_results(program)?;
                Ok(Kept::Last { step: state.step })
            }
        }
    }

    /// The program's result files: `<name>.safetensors` each (`weights.safetensors` for one
    /// model).
    fn write_results(&self, program: &dyn Program) -> Result<(), CheckpointError> {
        for (name, tensors) in program.weight_files() {
            checkpoint::write_atomic(&self.result(&name), &tensors, self.metadata.clone(), false)?;
        }
        Ok(())
    }

    fn error(&self, message: &str) -> CheckpointError {
        CheckpointError::Write { path: self.dir.display().to_string(), message: message.to_string() }
    }

    fn save(&self, program: &dyn Program, state: &RunState) -> Result<(), CheckpointError> {
        let state = RunState { forward_passes: program.passes(), ..state.clone() };
        let (weights, optimizer) = (program.weights(), program.optimizer_state());
        checkpoint::save(&self.checkpoint(), weights, optimizer, &state, self.metadata.as_ref())?;
        self.saved_step.set(Some(state.step));
        Ok(())
    }
}

/// The weights a run of `spec` left for `model` in the default run folder (`wick run`, `eval`
/// and `sample` without `--weights`): `runs/<spec stem>/<model>.safetensors` (a run that
/// trains several models names a file after each), else the run's `weights.safetensors`. The
/// error says which files were looked for.
pub fn default_weights(spec: &str, model: &str) -> Result<PathBuf, String> {
    let stem = Path::new(spec).file_stem().map_or("run".into(), |s| s.to_string_lossy().to_string());
    let folder = Path::new("runs").join(stem);
    let candidates = [folder.join(format!("{model}.safetensors")), folder.join("weights.safetensors")];
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(format!(
        "no weights for model {model}: neither `{}` nor `{}` exists",
        candidates[0].display(),
        candidates[1].display()
    ))
}

fn copy_weights(from: &Path, to: &Path) -> Result<(), CheckpointError> {
    super::files::replace_unsynced(to, |tmp| std::fs::copy(from, tmp).map(|_| ()))
        .map_err(|e| CheckpointError::Write { path: to.display().to_string(), message: e.to_string() })
}

fn weights_finite(program: &dyn Program, path: &Path) -> Result<bool, CheckpointError> {
    for (_, t) in program.weights() {
        if !all_finite(&t).map_err(|e| CheckpointError::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        })? {
            return Ok(false);
        }
    }
    Ok(true)
}
