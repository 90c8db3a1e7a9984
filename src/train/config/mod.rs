//! The training configuration: the `train` section of a spec, or a YAML file given with
//! `--config`; command-line flags override both. Keys are strict, with suggestions, and every
//! default is PyTorch's (or Keras') where it has one.
//!
//! ```yaml
//! data: {csv: ../data/iris.csv, target: species, val_split: 0.2, standardize: true}
//! loss: cross_entropy                  # or {name: cross_entropy, label_smoothing: 0.1},
//!                                      # or a loss per output: {logits: cross_entropy, box: {name: mse, weight: 5}}
//! optimizer: {name: adam, lr: 0.01}    # sgd, adam, adamw, rmsprop, adagrad
//! schedule: {name: cosine, warmup: 2}  # step, multistep, exponential, inverse_time, plateau
//! epochs: 60
//! batch_size: 10
//! drop_last: false                     # true: leave out each epoch's short last batch
//! metrics: [accuracy, top5_accuracy]
//! early_stopping: {monitor: val_loss, patience: 5}
//! accumulate: 1                        # batches per optimizer step
//! clip: {norm: 1.0}                    # norm_type: 2 (or any p > 0, or inf); or {value: 0.5}
//! l1: 0.0
//! frozen: ["features.*"]               # parameter paths (globs) left untouched
//! frozen_bn: eval                      # their batch norms keep their running statistics
//! init: pretrained.safetensors         # start from these weights
//! init_weights: {"**.weight": normal(0, 0.02), "**.bias": zeros}   # schemes by glob, in order
//! seed: 0
//! out: runs/iris                       # checkpoints, metrics.csv, curves.svg, report.json
//! tensorboard: true                    # event files for `tensorboard --logdir runs`
//! ```

pub mod de;
pub mod source;

use serde::Deserialize;

use super::data::{DataConfig, Validation};
use super::gan::GanConfig;
use super::losses::Losses;
use super::optim::config::OptimizerConfig;
use super::schedule::ScheduleConfig;
use crate::front::ast::{ConfigKind, ConfigValue};
use crate::lower::device::DeviceChoice;
use crate::ops::init_scheme::Scheme;
pub use de::ConfigError;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub data: DataConfig,
    #[serde(default)]
    pub loss: Losses,
    #[serde(default, deserialize_with = "de::by_name")]
    pub optimizer: OptimizerConfig,
    #[serde(default, deserialize_with = "de::by_name")]
    pub schedule: ScheduleConfig,
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    /// Stop after this many optimizer steps, even mid-epoch.
    #[serde(default)]
    pub max_steps: Option<u64>,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    /// Leave out each epoch's short last training batch (`DataLoader(drop_last=True)`): the
    /// rows that do not fill a batch, a different few each shuffled epoch.
    #[serde(default)]
    pub drop_last: bool,
    /// Besides the loss; `accuracy` by default when the loss classifies.
    #[serde(default)]
    pub metrics: Option<Vec<String>>,
    #[serde(default)]
    pub early_stopping: Option<EarlyStopping>,
    /// Batches whose gradients are summed (as means) before one optimizer step.
    #[serde(default = "defaults::one")]
    pub accumulate: usize,
    #[serde(default)]
    pub clip: Option<Clip>,
    /// The L1 penalty `l1 * sum |w|` over trainable parameters, added to the loss.
    #[serde(default)]
    pub l1: f64,
    /// Parameter paths (`*` within a path segment, `**` across) that are not trained.
    #[serde(default)]
    pub frozen: Vec<String>,
    /// What the batch norms among the `frozen` layers do in training: `eval` (the default)
    /// normalises with their running statistics and keeps them, as torchvision fine-tuning
    /// does; `train` uses batch statistics and updates the running ones.
    #[serde(default)]
    pub frozen_bn: FrozenBatchNorm,
    /// Groups of parameters (by glob) with their own learning rate or weight decay
    /// ([`super::optim::groups`]).
    #[serde(default)]
    pub param_groups: Vec<super::optim::groups::ParamGroup>,
    /// A safetensors file of initial weights (PyTorch `state_dict` keys).
    #[serde(default)]
    pub init: Option<String>,
    /// Load what fits from `init` and report the rest (a replaced head, say).
    #[serde(default)]
    pub init_partial: bool,
    /// Initialisation schemes by glob over learned parameters' keys (`torch.nn.init`'s),
    /// drawn from the run's seed once the model is built, in order: a later entry redraws the
    /// parameters an earlier one covered too. Each glob must cover a parameter.
    #[serde(default, deserialize_with = "de::schemes_by_glob")]
    pub init_weights: Vec<(String, Scheme)>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub device: DeviceChoice,
    /// The run folder: checkpoints, the metrics log, the curves and the report.
    #[serde(default)]
    pub out: Option<String>,
    /// Adversarial training of two models of the spec (see [`crate::train::gan`]); the
    /// `loss`, `metrics` and `frozen` keys are then each player's business.
    #[serde(default)]
    pub gan: Option<GanConfig>,
    /// Epochs between checkpoints (the last epoch is always saved).
    #[serde(default = "defaults::one")]
    pub checkpoint_every: usize,
    /// Write a row to the metrics log every this many steps (0: epochs only).
    #[serde(default = "defaults::one")]
    pub log_every: usize,
    /// TensorBoard event files beside the metrics log (the same figures and steps).
    #[serde(default = "defaults::yes")]
    pub tensorboard: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    #[serde(default = "defaults::val_loss")]
    pub monitor: String,
    #[serde(default = "defaults::patience")]
    pub patience: usize,
    #[serde(default)]
    pub min_delta: f64,
    /// Put back the weights of the best epoch when training stops.
    #[serde(default = "defaults::yes")]
    pub restore_best: bool,
}

/// See [`TrainConfig::frozen_bn`].
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FrozenBatchNorm {
    #[default]
    Eval,
    Train,
}

/// Gradient clipping before each optimizer step: `{norm: 1.0}` scales every gradient by one
/// factor so that their total `norm_type`-norm (2 unless given; any p above 0, or `inf`) is at
/// most 1.0, as `torch.nn.utils.clip_grad_norm_`; `{value: 0.5}` clamps each element.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(try_from = "ClipKeys")]
pub enum Clip {
    /// The most the total norm may be, and which norm (`f64::INFINITY`: the largest |g|).
    Norm { max: f64, norm_type: f64 },
    /// Clamp every gradient element into `[-v, v]`.
    Value(f64),
}

/// `clip:` as written: exactly one of `norm` and `value`, `norm_type` only with `norm`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClipKeys {
    norm: Option<f64>,
    value: Option<f64>,
    norm_type: Option<f64>,
}

impl TryFrom<ClipKeys> for Clip {
    type Error = String;

    fn try_from(k: ClipKeys) -> Result<Clip, String> {
        match (k.norm, k.value, k.norm_type) {
            (Some(_), Some(_), _) | (None, None, _) => {
                Err("`clip` takes one of `norm` (with `norm_type`) and `value`".into())
            }
            (None, Some(_), Some(_)) => Err("`norm_type` goes with `norm`, not `value`".into()),
            (None, Some(v), None) => Ok(Clip::Value(v)),
            (Some(_), None, Some(p)) if p.is_nan() || p <= 0.0 => {
                Err(format!("`norm_type` is a number above 0 or `inf`, found {p}"))
            }
            (Some(max), None, p) => Ok(Clip::Norm { max, norm_type: p.unwrap_or(2.0) }),
        }
    }
}

mod defaults {
    pub fn epochs() -> usize {
        10
    }
    pub fn batch_size() -> usize {
        32
    }
    pub fn one() -> usize {
        1
    }
    pub fn val_loss() -> String {
        "val_loss".into()
    }
    pub fn patience() -> usize {
        5
    }
    pub fn yes() -> bool {
        true
    }
}

impl TrainConfig {
    /// Read a configuration from spanned values (a spec's `train` section or a YAML file),
    /// and check what one key alone cannot ([`TrainConfig::check`]) at the key at fault.
    pub fn from_value(value: &ConfigValue) -> Result<TrainConfig, ConfigError> {
        let config: TrainConfig = de::from_value(value)?;
        config.check().map_err(|(path, message)| {
            let e = ConfigError::new(message);
            match find(value, &path) {
                Some(v) => e.at(v.span),
                None => e,
            }
        })?;
        Ok(config)
    }

    /// The losses and metrics as objectives, for a model whose first output is `first_output`
    /// and data whose first target is `first_target`.
    pub fn objectives(
        &self,
        first_output: &str,
        first_target: &str,
    ) -> Result<Vec<crate::train::supervised::Objective>, String> {
        self.loss.objectives(self.metrics.as_deref(), first_output, first_target)
    }

    /// What the keys say together: sizes of at least one, metrics the loss allows, monitors
    /// that name a figure the run computes. An error names the key's path.
    pub fn check(&self) -> Result<(), (Vec<&'static str>, String)> {
        let counts = [
            ("batch_size", self.batch_size),
            ("accumulate", self.accumulate),
            ("checkpoint_every", self.checkpoint_every),
        ];
        for (key, n) in counts {
            if n == 0 {
                return Err((vec![key], format!("`{key}` must be at least 1, found 0")));
            }
        }
        let figures = match &self.gan {
            Some(gan) => {
                gan.check()?;
                if self.early_stopping.is_some() {
                    let why = "a GAN has no validation loss to stop on: remove `early_stopping`";
                    return Err((vec!["early_stopping"], why.into()));
                }
                if self.accumulate != 1 {
                    let why = "a GAN updates once per batch: give the discriminator more `steps` instead";
                    return Err((vec!["accumulate"], why.into()));
                }
                crate::train::gan::Adversarial::figure_names(&gan.loss, gan.fid.is_some())
            }
            None => {
                let objectives = self.objectives("", "").map_err(|e| match &self.loss {
                    Losses::One(_) => (vec!["metrics"], e),
                    Losses::PerOutput(_) => (vec!["loss"], e),
                })?;
                crate::train::supervised::figures(&objectives)
            }
        };
        let mut monitors: Vec<String> = figures.clone();
        monitors.extend(figures.iter().flat_map(|f| [format!("val_{f}"), format!("train_{f}")]));
        let mut watched = Vec::new();
        // The default monitor (`val_loss`) matters to supervised runs only; a GAN has no loss
        // to validate, so its schedules watch what they are told to.
        if self.gan.is_none() || self.schedule.monitor.is_some() {
            watched.push((vec!["schedule", "monitor"], self.schedule.monitor().to_string()));
        }
        if let Some(es) = &self.early_stopping {
            watched.push((vec!["early_stopping", "monitor"], es.monitor.clone()));
        }
        // `val_split: 0` trains without validation: nothing `val_*` to stop or cut the rate on.
        let unvalidated = matches!(self.data.val, Validation::Split(f) if f == 0.0) && self.gan.is_none();
        let plateau = self.schedule.name == super::schedule::Name::Plateau;
        for (path, name) in watched {
            let used = path[0] == "early_stopping" || plateau;
            if unvalidated && used && name.starts_with("val_") {
                return Err((
                    path,
                    format!(
                        "`{name}` needs validation data, and `val_split: 0` leaves none: watch a \
                         training figure (`train_{}`) or hold out a validation split",
                        &name["val_".len()..]
                    ),
                ));
            }
            if !monitors.contains(&name) {
                let close = crate::diag::did_you_mean(&name, monitors.iter().map(String::as_str))
                    .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
                return Err((
                    path,
                    format!(
                        "`{name}` is not a figure this run computes{close} (it computes {})",
                        monitors.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What the command line overrides in a configuration (`wick train --epochs 5 --lr 0.1`).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub max_steps: Option<u64>,
    pub lr: Option<f64>,
    pub batch_size: Option<usize>,
    pub seed: Option<u64>,
    pub device: Option<DeviceChoice>,
    /// Initial weights, as typed: relative to the working directory, not to the configuration.
    pub init: Option<String>,
    /// k-fold cross-validation in place of the data's validation (`--kfold k`).
    pub kfold: Option<usize>,
}

impl TrainConfig {
    /// Apply the flags that were given, then check the result as the reader checks a file.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), String> {
        self.epochs = o.epochs.unwrap_or(self.epochs);
        self.max_steps = o.max_steps.or(self.max_steps);
        self.batch_size = o.batch_size.unwrap_or(self.batch_size);
        self.seed = o.seed.unwrap_or(self.seed);
        self.device = o.device.unwrap_or(self.device);
        if let Some(lr) = o.lr {
            *self.optimizer.lr_mut() = lr;
        }
        if let Some(init) = &o.init {
            let absolute = std::env::current_dir().map(|d| d.join(init)).unwrap_or_else(|_| init.into());
            self.init = Some(absolute.display().to_string());
        }
        match o.kfold {
            Some(k) if k < 2 => return Err(format!("--kfold needs at least 2 folds, found {k}")),
            Some(k) => self.data.val = Validation::Fold { k, index: 0 },
            None => {}
        }
        self.check().map_err(|(path, e)| format!("{}: {e}", path.join(".")))
    }
}

/// The value at `path` (mapping keys) inside `value`.
fn find<'a>(value: &'a ConfigValue, path: &[&str]) -> Option<&'a ConfigValue> {
    let Some((first, rest)) = path.split_first() else { return Some(value) };
    match &value.kind {
        ConfigKind::Map(entries) => {
            entries.iter().find(|(k, _)| k.name == *first).and_then(|(_, v)| find(v, rest))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
