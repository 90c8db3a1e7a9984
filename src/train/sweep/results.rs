//! A sweep's results: a row per run, ranked by the monitored figure, as a markdown table
//! (printed, and `results.md`) and JSON (`results.json`), with the best run's configuration
//! as a `train` section to paste.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::settings::{render_section, Surface};
use super::{short_key, Setting, Trial};
use crate::train::fit::lower_is_better;
use crate::train::observe::{figure, seconds, Metrics};
use crate::train::run::RunOptions;

/// What a run that trained gives the table.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// The monitored figure at the run's best epoch; `None` when it never measured it.
    pub value: Option<f64>,
    /// That epoch (0 without one).
    pub epoch: usize,
    /// Every validation figure at that epoch.
    pub val: Metrics,
    pub epochs: usize,
    pub wall_s: f64,
    /// Stopped by Ctrl-C before its last epoch.
    pub interrupted: bool,
}

/// One run of the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub index: usize,
    pub name: String,
    pub settings: Vec<Setting>,
    /// Its run folder.
    pub out: String,
    /// What it reached, or why it did not train (the error's first line).
    pub result: Result<RunResult, String>,
}

impl Row {
    pub(super) fn of(trial: &Trial, run: &RunOptions, result: Result<RunResult, String>) -> Row {
        let out = run.out.as_ref().map_or(String::new(), |p| p.display().to_string());
        let result = result.map_err(|e| e.lines().next().unwrap_or_default().to_string());
        Row { index: trial.index, name: trial.name.clone(), settings: trial.settings.clone(), out, result }
    }

    fn value(&self) -> Option<f64> {
        self.result.as_ref().ok().and_then(|r| r.value)
    }
}

/// Every run, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepReport {
    /// The figure the runs are ranked by (`val_loss`, `val_accuracy`, ...).
    pub monitor: String,
    /// Runs the sweep planned; `rows` holds fewer when it was interrupted.
    pub planned: usize,
    /// Ranked: runs with a value, best first; then those without (in order), then failures.
    pub rows: Vec<Row>,
}

impl SweepReport {
    pub(super) fn ranked(monitor: String, planned: usize, mut rows: Vec<Row>) -> SweepReport {
        let lower = lower_is_better(&monitor);
        rows.sort_by(|a, b| {
            let key = |r: &Row| (r.result.is_err(), r.value().is_none(), r.index);
            match (a.value(), b.value()) {
                (Some(x), Some(y)) if lower => x.total_cmp(&y),
                (Some(x), Some(y)) => y.total_cmp(&x),
                _ => key(a).cmp(&key(b)),
            }
            .then(a.index.cmp(&b.index))
        });
        SweepReport { monitor, planned, rows }
    }

    /// The best run: the first row with a value.
    pub fn best(&self) -> Option<&Row> {
        self.rows.first().filter(|r| r.value().is_some())
    }

    /// Runs that ended with an error.
    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| r.result.is_err()).count()
    }

    /// The table, a line each: the rank, each swept key, the monitored figure and its epoch,
    /// the other validation figures at that epoch, the time and the run folder.
    pub fn markdown(&self) -> String {
        let keys: Vec<&str> =
            self.rows.first().map_or(Vec::new(), |r| r.settings.iter().map(|(k, _)| k.as_str()).collect());
        let metric = self.monitor.strip_prefix("val_").unwrap_or("");
        let others: Vec<String> = self
            .rows
            .iter()
            .find_map(|r| r.result.as_ref().ok().filter(|r| !r.val.0.is_empty()))
            .map_or(Vec::new(), |r| r.val.0.iter().map(|(n, _)| n.clone()).filter(|n| n != metric).collect());
        let mut head: Vec<String> = vec!["rank".into()];
        head.extend(keys.iter().map(|k| short_key(k).to_string()));
        head.extend([self.monitor.clone(), "epoch".into()]);
        head.extend(others.iter().map(|n| format!("val_{n}")));
        head.extend(["time".into(), "run".into()]);
        let mut lines = vec![row_line(&head)];
        let numeric = 1 + keys.len();
        lines.push(row_line(
            &(0..head.len())
                .map(|i| if i == 0 || (numeric..head.len() - 2).contains(&i) { "---:" } else { "---" }.into())
                .collect::<Vec<String>>(),
        ));
        let mut rank = 0;
        for row in &self.rows {
            let mut cells: Vec<String> = Vec::new();
            cells.push(match row.value() {
                Some(_) => {
                    rank += 1;
                    rank.to_string()
                }
                None => "-".into(),
            });
            cells.extend(row.settings.iter().map(|(_, v)| v.clone()));
            match &row.result {
                Ok(r) => {
                    cells.push(r.value.map_or("-".into(), |v| figure(&self.monitor, v)));
                    cells.push(if r.epoch > 0 { r.epoch.to_string() } else { "-".into() });
                    for n in &others {
                        cells.push(r.val.get(n).map_or("-".into(), |v| figure(n, v)));
                    }
                    let stopped = if r.interrupted { " (interrupted)" } else { "" };
                    cells.push(format!("{}{stopped}", seconds(r.wall_s)));
                }
                Err(e) => {
                    cells.push(format!("failed: {}", e.replace('|', "\\|")));
                    cells.extend((0..others.len() + 2).map(|_| String::new()));
                }
            }
            cells.push(row.name.clone());
            lines.push(row_line(&cells));
        }
        lines.join("\n") + "\n"
    }

    /// The best run's configuration as a `train` section for `surface`, with a comment line
    /// naming the run and its figure.
    pub fn best_section(&self, trials: &[Trial], surface: Surface) -> Option<String> {
        let best = self.best()?;
        let trial = trials.iter().find(|t| t.index == best.index)?;
        let value = best.value().map_or("-".into(), |v| figure(&self.monitor, v));
        let epoch = best.result.as_ref().map_or(0, |r| r.epoch);
        let head = format!("# best: run {} ({} {value} at epoch {epoch})\n", best.name, self.monitor);
        Some(head + &render_section(&trial.value, surface))
    }

    /// The report as JSON (`results.json`, `wick sweep --format json`).
    pub fn json(&self, best_section: Option<&str>) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let settings: serde_json::Map<String, serde_json::Value> =
                    r.settings.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                let mut row = json!({"index": r.index, "name": r.name, "out": r.out, "settings": settings});
                match &r.result {
                    Ok(res) => {
                        row["value"] = json!(res.value);
                        row["epoch"] = json!(res.epoch);
                        row["val"] = json!(res.val);
                        row["epochs"] = json!(res.epochs);
                        row["wall_s"] = json!(res.wall_s);
                        row["interrupted"] = json!(res.interrupted);
                    }
                    Err(e) => row["error"] = json!(e),
                }
                row
            })
            .collect();
        json!({
            "monitor": self.monitor,
            "lower_is_better": lower_is_better(&self.monitor),
            "planned": self.planned,
            "runs": rows,
            "best": self.best().map(|b| b.name.clone()),
            "best_section": best_section,
        })
    }

    /// Write `results.md` and `results.json` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, best_section: Option<&str>) -> std::io::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let (md, json) = (dir.join("results.md"), dir.join("results.json"));
        let mut text = format!("# Sweep: ranked by {}\n\n{}", self.monitor, self.markdown());
        if let Some(section) = best_section {
            text.push_str(&format!("\nThe best run's configuration:\n\n```\n{section}```\n"));
        }
        crate::train::files::replace_unsynced(&md, |tmp| std::fs::write(tmp, &text))?;
        let body = serde_json::to_string_pretty(&self.json(best_section)).unwrap_or_default() + "\n";
        crate::train::files::replace_unsynced(&json, |tmp| std::fs::write(tmp, &body))?;
        Ok((md, json))
    }
}

fn row_line(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}
