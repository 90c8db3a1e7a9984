//! `wick sweep`: train a spec once per combination of settings (a grid, or seeded random
//! draws), each run in its own folder under the sweep's, and rank the runs by the figure the
//! configuration monitors (early stopping's, else the schedule's: `val_loss` by default).
//!
//! Every run's configuration is the one `wick train` would read, with the run's settings
//! written into it as if typed there, then read and checked by the same reader: a bad key or
//! value is refused, with what was expected, before the first run starts. A run that fails
//! later (its data, a non-finite loss) becomes a row with its error; the others go on.

pub mod results;
pub mod search;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::config::TrainConfig;
use super::data::Validation;
use super::fit::{monitored, Stop};
use super::observe::{Metrics, Observer};
use super::run::{train, RunOptions, TrainReport};
use crate::front::ast::ConfigValue;
pub use results::{Row, RunResult, SweepReport};
pub use search::{Axis, Range, Search, Setting};

/// One run of the sweep: its settings, and the configuration they make.
#[derive(Clone, Debug)]
pub struct Trial {
    /// 1-based, in the order the runs start.
    pub index: usize,
    pub settings: Vec<Setting>,
    /// Its folder's name: the index and the settings (`03_lr=0.003_batch_size=32`).
    pub name: String,
    pub config: TrainConfig,
    /// The configuration as written, with the settings in place (the best one is printed).
    pub value: ConfigValue,
}

/// The runs `search` makes of the configuration `base` (as written), each with `fixed` set
/// first (`--set epochs=5`). Every run's configuration is read and checked here, so a bad key
/// or value stops the sweep before any run starts; the message names the setting.
pub fn trials(base: &ConfigValue, fixed: &[Setting], search: &Search) -> Result<Vec<Trial>, String> {
    let mut start = base.clone();
    for (key, value) in fixed {
        apply(&mut start, key, value).map_err(|e| format!("--set {key}={value}: {e}"))?;
    }
    // Each value alone first, so an error names the one setting at fault.
    for axis in &search.grid {
        for value in &axis.values {
            let mut one = start.clone();
            apply(&mut one, &axis.key, value).map_err(|e| format!("--grid {}={value}: {e}", axis.key))?;
        }
    }
    let all = search.trials()?;
    let width = all.len().to_string().len();
    all.into_iter()
        .enumerate()
        .map(|(i, chosen)| {
            let mut value = start.clone();
            for (key, v) in &chosen {
                settings::set(&mut value, key, v).map_err(|e| format!("{}: {e}", shown(&chosen)))?;
            }
            let config = read(&value).map_err(|e| format!("{}: {e}", shown(&chosen)))?;
            if let Validation::Fold { .. } = config.data.val {
                return Err("a sweep trains one run per setting: remove `kfold`, or sweep each fold's \
                            settings with `wick train --kfold` by hand"
                    .into());
            }
            let name = folder_name(i + 1, width, &chosen);
            Ok(Trial { index: i + 1, settings: chosen, name, config, value })
        })
        .collect()
}

/// Write `key = value` into `config`, then read the whole configuration as `wick train` would.
fn apply(config: &mut ConfigValue, key: &str, value: &str) -> Result<TrainConfig, String> {
    settings::set(config, key, value)?;
    read(config)
}

fn read(config: &ConfigValue) -> Result<TrainConfig, String> {
    TrainConfig::from_value(config).map_err(|e| {
        let mut message = e.to_string();
        if let Some(help) = &e.help {
            message.push_str(&format!(" ({help})"));
        }
        if message.starts_with("unknown key") {
            message.push_str(
                "; a sweep sets the `train` section's keys, dotted for nested ones (`optimizer.lr`)",
            );
        }
        message
    })
}

/// `lr=0.003 batch_size=32`.
pub fn shown(settings: &[Setting]) -> String {
    settings.iter().map(|(k, v)| format!("{}={v}", short_key(k))).collect::<Vec<_>>().join(" ")
}

/// The key as people type it: the optimizer's rate is `lr`.
pub fn short_key(key: &str) -> &str {
    if key == "optimizer.lr" {
        "lr"
    } else {
        key
    }
}

/// `03_lr=0.003_batch_size=32`: sortable, and readable in TensorBoard's run list. Characters
/// a file name should not hold become `-`.
fn folder_name(index: usize, width: usize, settings: &[Setting]) -> String {
    let mut name = format!("{index:0width$}");
    for (k, v) in settings {
        name.push('_');
        name.push_str(short_key(k));
        name.push('=');
        name.push_str(v);
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "._=+-".contains(c);
    let name: String = name.chars().map(|c| if safe(c) { c } else { '-' }).collect();
    name.chars().take(120).collect()
}

/// How the runs are run.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The sweep's folder; run i goes into `<out>/<its name>`.
    pub out: PathBuf,
    /// Runs trained at once (each on its own thread).
    pub jobs: usize,
    /// Passed to every run (its `out` replaced); its `cancel` stops the sweep.
    pub run: RunOptions,
}

/// Train every trial, `options.jobs` at a time; `observer(trial)` watches a run, `done(row)`
/// hears of each as it ends. Ctrl-C (`options.run.cancel`) stops the runs in flight and
/// starts no more. Returns the rows ranked by the monitored figure.
pub fn run_sweep(
    spec: &str,
    trials: &[Trial],
    config_dir: &Path,
    options: &SweepOptions,
    observer: &(dyn Fn(&Trial) -> Box<dyn Observer> + Sync),
    done: &(dyn Fn(&Row) + Sync),
) -> SweepReport {
    let monitor = trials.first().map_or("val_loss".to_string(), |t| monitor_of(&t.config));
    let next = AtomicUsize::new(0);
    let rows = Mutex::new(Vec::with_capacity(trials.len()));
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(trial) = trials.get(i) else { break };
        if options.run.cancel.requested() {
            break;
        }
        let run = RunOptions { out: Some(options.out.join(&trial.name)), ..options.run.clone() };
        let result = train(spec, &trial.config, config_dir, &run, observer(trial));
        let row = Row::of(trial, &run, result.map(|r| summary(&r, &monitor)).map_err(|e| e.to_string()));
        done(&row);
        if let Ok(mut rows) = rows.lock() {
            rows.push(row);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, trials.len().max(1)) {
            scope.spawn(worker);
        }
    });
    let rows = rows.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    SweepReport::ranked(monitor, trials.len(), rows)
}

/// The figure a configuration watches: early stopping's, else the schedule's (`val_loss`).
pub fn monitor_of(config: &TrainConfig) -> String {
    match &config.early_stopping {
        Some(es) => es.monitor.clone(),
        None => config.schedule.monitor().to_string(),
    }
}

/// A finished run as its row reads: the monitored figure at its best epoch.
fn summary(report: &TrainReport, monitor: &str) -> RunResult {
    let lower = super::fit::lower_is_better(monitor);
    let value = |r: &&super::observe::EpochRecord| monitored(r, monitor).filter(|v| !v.is_nan());
    let best = report.history.iter().filter(|r| value(r).is_some()).min_by(|a, b| {
        let (a, b) = (value(a).unwrap_or_default(), value(b).unwrap_or_default());
        if lower {
            a.total_cmp(&b)
        } else {
            b.total_cmp(&a)
        }
    });
    RunResult {
        value: best.and_then(|r| value(&r)),
        epoch: best.map_or(0, |r| r.epoch),
        val: best.map(|r| r.val.clone()).unwrap_or_else(|| Metrics(Vec::new())),
        epochs: report.epochs,
        wall_s: report.wall_s,
        interrupted: report.stopped == Stop::Interrupted,
    }
}

#[cfg(test)]
mod tests;
