//! The training loop: epochs of shuffled mini-batches; per optimizer step the scheduled rate,
//! gradients summed over `accumulate` batches, an optional L1 penalty and clipping; after each
//! epoch validation, reduce-on-plateau, early stopping and a checkpoint hook.
//!
//! Every row is used: a split's last batch may be short, and runs on the model lowered for
//! its size ([`Nets`]); its loss is the mean over its own rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, D};

use super::checkpoint::{Cursor, RunState};
use super::config::{Clip, EarlyStopping};
use super::data::{Dataset, Splits};
use super::grads::{add_grads, clip_grads, l1_penalty};
use super::nets::Nets;
use super::objective::{LossConfig, Metric};
use super::observe::{EpochRecord, Metrics, Observer, Plan, StepRecord};
use super::optim::Optimizer;
use super::schedule::{Schedule, Unit};

/// Set by [`request_stop`]: the loop stops after the step in flight.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Ask every running loop in the process to stop after its current step, keeping its last
/// checkpoint (what a Ctrl-C handler calls). Returns whether a stop was already requested.
pub fn request_stop() -> bool {
    INTERRUPTED.swap(true, Ordering::SeqCst)
}

/// How to train, past what the optimizer and the data say.
#[derive(Clone, Debug)]
pub struct FitConfig {
    pub epochs: usize,
    pub max_steps: Option<u64>,
    /// Seeds each epoch's batch order (`seed + epoch`).
    pub seed: u64,
    /// False: batches in the data's order every epoch.
    pub shuffle: bool,
    pub loss: LossConfig,
    pub metrics: Vec<Metric>,
    pub schedule: Schedule,
    pub unit: Unit,
    /// The metric reduce-on-plateau watches (when the run state has a plateau rule).
    pub plateau_monitor: String,
    pub accumulate: usize,
    pub clip: Option<Clip>,
    pub l1: f64,
    pub early_stopping: Option<EarlyStopping>,
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

/// What the loop calls after each whole epoch: checkpointing, with whether the epoch is the best.
pub type EpochHook<'a> = dyn FnMut(&RunState, &dyn Optimizer, bool) -> Result<(), String> + 'a;

/// Train from `state` (fresh or resumed, between epochs or inside one) until the configured end.
///
/// `state` is kept current after every optimizer step (a [`Cursor`] while inside an epoch), so
/// whatever ends the loop, an error included, the caller holds a state that matches the
/// weights and can be checkpointed and resumed exactly.
pub fn fit(
    nets: &Nets,
    optimizer: &mut dyn Optimizer,
    data: &Splits,
    config: &FitConfig,
    state: &mut RunState,
    observer: &mut dyn Observer,
    after_epoch: &mut EpochHook,
) -> Result<Stop, FitError> {
    let batch = nets.batch_size();
    let accumulate = config.accumulate.max(1);
    let steps_per_epoch = steps_per_epoch(data.train.len(), batch, accumulate);
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
        train_rows: data.train.len(),
        val_rows: data.val.len(),
        metric_names: std::iter::once("loss".to_string())
            .chain(config.metrics.iter().map(Metric::name))
            .collect(),
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
        let (skip, mut train_sums) = match &state.cursor {
            Some(c) if c.epoch == epoch => (c.steps, c.sums.clone()),
            _ => (0, Sums::new(&config.metrics)),
        };
        let batches = if config.shuffle {
            data.train.batches(batch, config.seed.wrapping_add(epoch as u64))?
        } else {
            data.train.batches_in_order(batch)?
        };
        let mut lr = state.base_lr;
        let mut steps_taken = skip;
        for group in batches.chunks(accumulate).skip(skip) {
            let clock = match config.unit {
                Unit::Epoch => epoch as u64,
                Unit::Step => state.step,
            };
            lr = config.schedule.lr(state.base_lr, clock);
            optimizer.set_learning_rate(lr);
            let mut grads: Option<GradStore> = None;
            let mut step_loss = 0.0;
            let mut step_sums = train_sums.clone();
            let rows: usize = group.iter().map(Dataset::len).sum();
            for part in group {
                // The group's loss is the mean over its rows, however its batches divide them.
                let share = part.len() as f64 / rows as f64;
                let net = nets.for_rows(part.len())?;
                let outs = net.forward(std::slice::from_ref(&part.x), true)?;
                let loss = config.loss.compute(&outs, &part.y)?;
                let value = scalar(&loss)?;
                if !value.is_finite() {
                    let layer = net.first_non_finite(std::slice::from_ref(&part.x), true)?;
                    return Err(FitError::NonFinite { value, step: state.step + 1, epoch: epoch + 1, layer });
                }
                step_sums.add(
                    &config.metrics,
                    &outs,
                    &part.y,
                    value,
                    part.len(),
                    config.loss.class_axis(),
                )?;
                step_loss += value * share;
                let objective = (loss + l1_penalty(optimizer, config.l1)?)?;
                let g = net.backward(&(objective * share)?)?;
                grads = Some(match grads {
                    None => g,
                    Some(acc) => add_grads(acc, g, optimizer)?,
                });
            }
            let Some(mut grads) = grads else { continue };
            if let Some(clip) = config.clip {
                clip_grads(&mut grads, optimizer, clip)?;
            }
            optimizer.step(&grads)?;
            state.step += 1;
            steps_taken += 1;
            train_sums = step_sums;
            state.cursor = Some(Cursor { epoch, steps: steps_taken, sums: train_sums.clone() });
            observer.step(&StepRecord {
                epoch: epoch + 1,
                step: state.step,
                lr,
                loss: step_loss,
                samples: rows,
                elapsed_s: started.elapsed().as_secs_f64(),
            })?;
            if INTERRUPTED.load(Ordering::Relaxed) {
                observer.finish(&state.history)?;
                return Ok(Stop::Interrupted);
            }
            if reached(state) {
                stop = Stop::MaxSteps;
                break;
            }
        }
        let val =
            evaluate(nets, &data.val, &config.loss, &config.metrics).map_err(|e| e.in_epoch(epoch + 1))?;
        let seconds = epoch_started.elapsed().as_secs_f64().max(1e-9);
        let record = EpochRecord {
            epoch: epoch + 1,
            step: state.step,
            lr,
            train: train_sums.metrics(&config.metrics),
            val,
            samples_per_s: train_sums.samples as f64 / seconds,
            elapsed_s: started.elapsed().as_secs_f64(),
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
        after_epoch(state, &*optimizer, improved).map_err(FitError::Hook)?;
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

/// Update the best value; true when this epoch improved on it by more than `min_delta`.
fn track_best(state: &mut RunState, es: &EarlyStopping, record: &EpochRecord) -> Result<bool, FitError> {
    let value = monitored(record, &es.monitor).ok_or_else(|| {
        FitError::Hook(format!("early stopping monitors `{}`, which this run does not compute", es.monitor))
    })?;
    let lower_is_better = es.monitor.ends_with("loss");
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

/// Loss and metrics in eval mode over every row of `data`, batch by batch, each batch weighted
/// by its rows.
pub fn evaluate(
    nets: &Nets,
    data: &Dataset,
    loss: &LossConfig,
    metrics: &[Metric],
) -> Result<Metrics, FitError> {
    let mut sums = Sums::new(metrics);
    if data.is_empty() {
        return Ok(sums.metrics(metrics));
    }
    for part in data.batches_in_order(nets.batch_size())? {
        let net = nets.for_rows(part.len())?;
        let outs = net.infer(std::slice::from_ref(&part.x), false)?;
        let value = scalar(&loss.compute(&outs, &part.y)?)?;
        if !value.is_finite() {
            let layer = net.first_non_finite(std::slice::from_ref(&part.x), false)?;
            return Err(FitError::NonFiniteValidation { value, epoch: 0, layer });
        }
        sums.add(metrics, &outs, &part.y, value, part.len(), loss.class_axis())?;
    }
    Ok(sums.metrics(metrics))
}

impl FitError {
    /// The error, told which epoch's validation it came from.
    fn in_epoch(self, epoch: usize) -> FitError {
        match self {
            FitError::NonFiniteValidation { value, layer, .. } => {
                FitError::NonFiniteValidation { value, epoch, layer }
            }
            e => e,
        }
    }
}

/// Running sums of the loss (per sample) and of each metric's correct and total counts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sums {
    loss: f64,
    samples: usize,
    counts: Vec<(f64, f64)>,
}

impl Sums {
    fn new(metrics: &[Metric]) -> Sums {
        Sums { loss: 0.0, samples: 0, counts: vec![(0.0, 0.0); metrics.len()] }
    }

    fn add(
        &mut self,
        metrics: &[Metric],
        outs: &[Tensor],
        target: &Tensor,
        loss: f64,
        rows: usize,
        class_axis: usize,
    ) -> candle_core::Result<()> {
        self.loss += loss * rows as f64;
        self.samples += rows;
        if let Some(first) = outs.first() {
            for (m, (correct, total)) in metrics.iter().zip(&mut self.counts) {
                let (c, t) = m.count(first, target, class_axis)?;
                *correct += c;
                *total += t;
            }
        }
        Ok(())
    }

    fn metrics(&self, metrics: &[Metric]) -> Metrics {
        let mean = |sum: f64, n: f64| if n > 0.0 { sum / n } else { f64::NAN };
        let mut out = vec![("loss".to_string(), mean(self.loss, self.samples as f64))];
        out.extend(metrics.iter().zip(&self.counts).map(|(m, (c, t))| (m.name(), mean(*c, *t))));
        Metrics(out)
    }
}

/// Optimizer steps in an epoch: a step per `accumulate` batches, the last batch and the last
/// group possibly short.
pub fn steps_per_epoch(rows: usize, batch: usize, accumulate: usize) -> usize {
    rows.div_ceil(batch.max(1)).div_ceil(accumulate.max(1))
}

/// A one-element tensor (a loss) as an `f64`.
pub(crate) fn scalar(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(DType::F64)?.flatten_all()?.max(D::Minus1)?.to_scalar::<f64>()
}
