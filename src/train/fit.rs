//! The training loop: epochs of batches dealt to a [`Program`] in a seeded order, the
//! scheduled rate before each iteration, validation after each epoch, reduce-on-plateau, early
//! stopping, observers and a checkpoint hook. What an iteration does is the program's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::augment::Augmenter;
use super::batch::{epoch_groups, Feed};
use super::checkpoint::{Cursor, RunState};
use super::config::EarlyStopping;
use super::observe::{EpochRecord, Metrics, Observer, Plan, StepRecord};
use super::program::{Program, Tally};
use super::schedule::{Schedule, Unit};

/// Asks a running loop to stop after the iteration in flight (what a Ctrl-C handler holds).
/// Clones share the request.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Request the stop; returns whether one was already requested.
    pub fn request(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How the loop runs, past what the program does in an iteration.
#[derive(Clone, Debug)]
pub struct FitConfig {
    pub epochs: usize,
    pub max_steps: Option<u64>,
    /// Seeds each epoch's batch order (`seed + epoch`).
    pub seed: u64,
    /// False: batches in the data's order every epoch.
    pub shuffle: bool,
    pub schedule: Schedule,
    pub unit: Unit,
    /// The metric reduce-on-plateau watches (when the run state has a plateau rule).
    pub plateau_monitor: String,
    pub early_stopping: Option<EarlyStopping>,
    pub cancel: Cancel,
    /// Augmentation of the training batches (`data.augment`), made on a background thread.
    pub augment: Option<Arc<Augmenter>>,
    /// Leave out each epoch's short last training batch.
    pub drop_last: bool,
}

/// Why training ended. The run state says where: a stop inside an epoch leaves a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Finished,
    /// The monitored metric stopped improving (`best` in the run state names the epoch).
    EarlyStopped,
    MaxSteps,
    Interrupted,
}

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error(transparent)]
    Lower(#[from] crate::lower::LowerError),
    #[error("the loss is {value} at step {step} (epoch {epoch}){}", layer_note(.layer))]
    NonFinite { value: f64, step: u64, epoch: usize, layer: Option<(String, String)> },
    #[error("the validation loss is {value} after epoch {epoch}{}", layer_note(.layer))]
    NonFiniteValidation { value: f64, epoch: usize, layer: Option<(String, String)> },
    #[error("{0}")]
    Hook(String),
    #[error("cannot write the training log: {0}")]
    Observer(#[from] std::io::Error),
}

fn layer_note(layer: &Option<(String, String)>) -> String {
    match layer {
        Some((path, kind)) => format!("; the first non-finite output is `{path}` ({kind})"),
        None => "; every layer's output was finite, so the loss itself overflowed".into(),
    }
}

impl FitError {
    /// The error, told where in the run it happened (a program does not know).
    fn at(self, step: u64, epoch: usize) -> FitError {
        match self {
            FitError::NonFinite { value, layer, .. } => FitError::NonFinite { value, step, epoch, layer },
            FitError::NonFiniteValidation { value, layer, .. } => {
                FitError::NonFiniteValidation { value, epoch, layer }
            }
            e => e,
        }
    }
}

/// What the loop calls after each whole epoch: checkpointing, with whether the epoch is the best.
pub type EpochHook<'a> = dyn FnMut(&RunState, &dyn Program, bool) -> Result<(), String> + 'a;

/// Train `program` on `train` from `state` (fresh or resumed, between epochs or inside one)
/// until the configured end, validating on `val` after each epoch.
///
/// `state` is kept current after every iteration (a [`Cursor`] while inside an epoch), so
/// whatever ends the loop, an error included, the caller holds a state that matches the
/// weights and can be checkpointed and resumed exactly.
pub fn fit(
    program: &mut dyn Program,
    train: &Feed,
    val: &Feed,
    config: &FitConfig,
    state: &mut RunState,
    observer: &mut dyn Observer,
    after_epoch: &mut EpochHook,
) -> Result<Stop, FitError> {
    let batch = program.batch_size();
    let accumulate = program.batches_per_step().max(1);
    let steps_per_epoch =
        steps_per_epoch(used_rows(train.rows(), batch, config.drop_last), batch, accumulate);
    let figures = program.figures();
    let reached = |state: &RunState| config.max_steps.is_some_and(|m| state.step >= m);
    if let Some(cursor) = state.cursor.as_ref().filter(|_| !reached(state)) {
        // A partial epoch that `max_steps` recorded is replayed from its cursor and recorded anew.
        state.history.retain(|r| r.epoch <= cursor.epoch);
        state.epochs_done = state.history.len();
    }
    observer.start(&Plan {
        epochs: config.epochs,
        steps_per_epoch,
        batch_size: batch,
        train_rows: train.rows(),
        val_rows: val.rows(),
        metric_names: figures.clone(),
    })?;
    if !state.history.is_empty() {
        observer.resumed(&state.history)?;
    }
    if reached(state) {
        observer.finish(&state.history)?;
        return Ok(Stop::MaxSteps);
    }
    let started = Instant::now();
    let mut stop = Stop::Finished;
    for epoch in state.epochs_done..config.epochs {
        let epoch_started = Instant::now();
        let (skip, mut tally) = match &state.cursor {
            Some(c) if c.epoch == epoch => (c.steps, c.sums.clone()),
            _ => (0, Tally::new(figures.len() - 1)),
        };
        let seed = config.shuffle.then(|| config.seed.wrapping_add(epoch as u64));
        let groups = epoch_groups(
            train,
            batch,
            seed,
            epoch,
            accumulate,
            skip,
            config.drop_last,
            config.augment.as_ref(),
        )?;
        let mut lr = state.base_lr;
        let mut steps_taken = skip;
        let mut train_s = 0.0;
        for group in groups {
            let group = group?;
            let group = group.as_slice();
            let clock = match config.unit {
                Unit::Epoch => epoch as u64,
                Unit::Step => state.step,
            };
            lr = config.schedule.lr(state.base_lr, clock);
            program.set_learning_rate(lr);
            let step_started = Instant::now();
            let measured = program.step(group, state.step).map_err(|e| e.at(state.step + 1, epoch + 1))?;
            train_s += step_started.elapsed().as_secs_f64();
            state.step += 1;
            steps_taken += 1;
            tally.merge(&measured);
            state.cursor = Some(Cursor { epoch, steps: steps_taken, sums: tally.clone() });
            observer.step(&StepRecord {
                epoch: epoch + 1,
                step: state.step,
                lr,
                loss: measured.mean_loss(),
                figures: measured.metrics(&figures),
                samples: measured.samples,
                elapsed_s: started.elapsed().as_secs_f64(),
            })?;
            if config.cancel.requested() {
                observer.finish(&state.history)?;
                return Ok(Stop::Interrupted);
            }
            if reached(state) {
                stop = Stop::MaxSteps;
                break;
            }
        }
        // Without validation rows (a GAN's run) an epoch has training figures only.
        let val_figures = match val.rows() {
            0 => Metrics::default(),
            _ => evaluate(program, val, &figures).map_err(|e| e.at(state.step, epoch + 1))?,
        };
        let seconds = epoch_started.elapsed().as_secs_f64().max(1e-9);
        let record = EpochRecord {
            epoch: epoch + 1,
            step: state.step,
            lr,
            train: tally.metrics(&figures),
            val: val_figures,
            samples_per_s: tally.samples as f64 / seconds,
            elapsed_s: started.elapsed().as_secs_f64(),
            samples: tally.samples,
            train_s,
        };
        observer.epoch(&record)?;
        state.epochs_done = epoch + 1;
        if steps_taken < steps_per_epoch {
            // `max_steps` cut the epoch short: recorded for the report, but the cursor stays so a
            // resume finishes it, and plateau and early stopping judge whole epochs only.
            state.history.push(record);
            break;
        }
        state.cursor = None;
        if let Some(plateau) = state.plateau.as_mut() {
            if let Some(value) = monitored(&record, &config.plateau_monitor) {
                state.base_lr = plateau.observe(value, state.base_lr);
            }
        }
        let improved = match &config.early_stopping {
            Some(es) => track_best(state, es, &record)?,
            None => false,
        };
        state.history.push(record);
        after_epoch(state, &*program, improved).map_err(FitError::Hook)?;
        if stop == Stop::MaxSteps {
            break;
        }
        if let Some(es) = &config.early_stopping {
            if state.best.is_some() && state.stale_epochs >= es.patience {
                stop = Stop::EarlyStopped;
                break;
            }
        }
    }
    observer.finish(&state.history)?;
    Ok(stop)
}

/// The monitored figure of an epoch: `val_loss`, `val_accuracy`, `train_loss`, ...
pub fn monitored(record: &EpochRecord, name: &str) -> Option<f64> {
    match name.split_once('_') {
        Some(("val", metric)) => record.val.get(metric),
        Some(("train", metric)) => record.train.get(metric),
        _ => record.val.get(name),
    }
}

/// Whether a smaller value of the figure `name` is better: losses (`val_loss`, `d_loss`),
/// not accuracies.
pub fn lower_is_better(name: &str) -> bool {
    name.ends_with("loss")
}

/// Update the best value; true when this epoch improved on it by more than `min_delta`.
fn track_best(state: &mut RunState, es: &EarlyStopping, record: &EpochRecord) -> Result<bool, FitError> {
    let value = monitored(record, &es.monitor).ok_or_else(|| {
        FitError::Hook(format!("early stopping monitors `{}`, which this run does not compute", es.monitor))
    })?;
    let lower_is_better = lower_is_better(&es.monitor);
    let better = match state.best {
        None => true,
        Some((_, best)) if lower_is_better => value < best - es.min_delta,
        Some((_, best)) => value > best + es.min_delta,
    };
    if better {
        state.best = Some((record.epoch, value));
        state.stale_epochs = 0;
    } else {
        state.stale_epochs += 1;
    }
    Ok(better)
}

/// The program's figures in evaluation mode over every row of `data`, in its order.
pub fn evaluate(program: &dyn Program, data: &Feed, figures: &[String]) -> Result<Metrics, FitError> {
    let batches = data.batches(program.batch_size(), None)?;
    Ok(program.evaluate(&batches)?.metrics(figures))
}

/// The training rows an epoch uses: all of `rows`, or with `drop_last` those that fill whole
/// batches of `batch`.
pub fn used_rows(rows: usize, batch: usize, drop_last: bool) -> usize {
    if drop_last {
        rows - rows % batch.max(1)
    } else {
        rows
    }
}

/// Iterations in an epoch: one per `accumulate` batches, the last batch and the last group
/// possibly short.
pub fn steps_per_epoch(rows: usize, batch: usize, accumulate: usize) -> usize {
    rows.div_ceil(batch.max(1)).div_ceil(accumulate.max(1))
}
