//! Resuming a run: what a checkpoint records about the settings that determined its numbers,
//! and the check that a resumed run is the run it continues.
//!
//! A setting is recorded when changing it changes the numbers of the steps to come: the data
//! and its split, the loss, the optimizer and its rate, the schedule, the batch, accumulation,
//! clipping, the L1 penalty, the frozen set, the seed, the metrics (they are the log's columns),
//! early stopping and the device. `epochs` and `max_steps` are not: extending a run is what a
//! resume is for. Neither are `log_every` and `checkpoint_every`, which change no number.

use std::collections::BTreeMap;

use candle_core::Device;

use super::config::TrainConfig;

/// The settings of a run, as text that compares equal exactly when the setting is the same.
pub fn settings(config: &TrainConfig, device: &Device) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    let mut put = |key: &str, value: String| s.insert(key.to_string(), value);
    let mut data = config.data.clone();
    // How many augmented batches wait ready changes when they are made, not what they hold.
    if let Some(augment) = data.augment.as_mut() {
        augment.prefetch = 0;
    }
    put("data", format!("{data:?}"));
    put("loss", format!("{:?}", config.loss));
    // Parameter groups change the update; without any the text is as it was.
    let groups = match config.param_groups.as_slice() {
        [] => String::new(),
        groups => format!(" with param_groups {groups:?}"),
    };
    put("optimizer", format!("{:?}{groups}", config.optimizer));
    put("schedule", format!("{:?}", config.schedule));
    put("batch_size", config.batch_size.to_string());
    put("accumulate", config.accumulate.to_string());
    put("clip", format!("{:?}", config.clip));
    put("l1", format!("{:?}", config.l1));
    // `frozen_bn: train` changes the frozen set's numbers; the default leaves the text as it was.
    let frozen_bn = match config.frozen_bn {
        super::config::FrozenBatchNorm::Eval => "",
        super::config::FrozenBatchNorm::Train => " (frozen_bn: train)",
    };
    put("frozen", format!("{:?}{frozen_bn}", config.frozen));
    put("seed", config.seed.to_string());
    put("metrics", format!("{:?}", config.metrics));
    put("early_stopping", format!("{:?}", config.early_stopping));
    put("device", format!("{:?}", device.location()));
    s
}

/// One setting that differs between a checkpoint and the run resuming it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub key: String,
    pub recorded: String,
    pub now: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: the checkpoint has {}, this run has {}", self.key, self.recorded, self.now)
    }
}

/// The settings that differ, in key order. A key only one side has counts as a change.
pub fn changes(recorded: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<Change> {
    let absent = || "nothing".to_string();
    let mut keys: Vec<&String> = recorded.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| recorded.get(*k) != now.get(*k))
        .map(|k| Change {
            key: k.clone(),
            recorded: recorded.get(k).cloned().unwrap_or_else(absent),
            now: now.get(k).cloned().unwrap_or_else(absent),
        })
        .collect()
}

/// Whether the optimizer itself (not only its hyper-parameters) changed: its saved state then
/// means nothing to the new one.
pub fn optimizer_kind_changed(changes: &[Change]) -> bool {
    let kind = |s: &str| s.split([' ', '{']).next().unwrap_or("").to_string();
    changes.iter().any(|c| c.key == "optimizer" && kind(&c.recorded) != kind(&c.now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn changes_name_each_key_with_both_values() {
        let before = map(&[("seed", "0"), ("optimizer", "Adam { lr: 0.01 }"), ("l1", "0.0")]);
        let after = map(&[("seed", "1"), ("optimizer", "Sgd { lr: 0.01 }"), ("clip", "None")]);
        let c = changes(&before, &after);
        let keys: Vec<&str> = c.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["clip", "l1", "optimizer", "seed"]);
        assert_eq!(c[3].to_string(), "`seed`: the checkpoint has 0, this run has 1");
        assert_eq!(c[0].recorded, "nothing");
        assert!(optimizer_kind_changed(&c));
        let rate =
            changes(&map(&[("optimizer", "Adam { lr: 0.01 }")]), &map(&[("optimizer", "Adam { lr: 0.1 }")]));
        assert!(!optimizer_kind_changed(&rate));
        assert!(changes(&before, &before).is_empty());
    }
}
