//! Resuming a run: what a checkpoint records about the settings that determined its numbers,
//! and the check that a resumed run is the run it continues.
//!
//! A setting is recorded when changing it changes the numbers of the steps to come: the data
//! and its split, the loss, the optimizer and its rate, the schedule, the batch (and
//! `drop_last`), accumulation,
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
    put("data", data_as_recorded(&config.data));
    put("loss", loss_as_recorded(&config.loss));
    // Parameter groups change the update; without any the text is as it was.
    let groups = match config.param_groups.as_slice() {
        [] => String::new(),
        groups => format!(" with param_groups {groups:?}"),
    };
    put("optimizer", format!("{:?}{groups}", config.optimizer));
    put("schedule", schedule_as_recorded(&config.schedule));
    put("batch_size", config.batch_size.to_string());
    // Recorded only when set: earlier checkpoints, which always kept the short batch, have no key.
    if config.drop_last {
        put("drop_last", "true".into());
    }
    put("accumulate", config.accumulate.to_string());
    put("clip", clip_as_recorded(config.clip));
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

// Keys added after checkpoints were first written print as those checkpoints recorded an
// unchanged configuration, so that resuming after an upgrade is not refused for a setting the
// run never used. The text is `Debug`'s; a test holds the text an earlier version recorded.

/// `data:`, without `limit` and `augment` where they are not given. How many augmented batches
/// wait ready changes when they are made, not what they hold: it is left out.
fn data_as_recorded(data: &super::data::DataConfig) -> String {
    let mut data = data.clone();
    if let Some(augment) = data.augment.as_mut() {
        augment.prefetch = 0;
    }
    format!("{data:?}").replace(", limit: None", "").replace(", augment: None", "")
}

/// The schedule with `warmup_start` as the number the warm-up starts at: the 0.0 earlier
/// versions recorded when there is no warm-up (it then means nothing); with one, the default
/// changed to 1/3, so a checkpoint that warmed up from 0 is a changed setting, as it should be.
fn schedule_as_recorded(schedule: &super::schedule::ScheduleConfig) -> String {
    let start = match (schedule.warmup, schedule.warmup_start) {
        (_, Some(start)) => start,
        (0, None) => 0.0,
        (_, None) => super::schedule::WARMUP_START,
    };
    let written = format!("warmup_start: {:?}", schedule.warmup_start);
    format!("{schedule:?}").replace(&written, &format!("warmup_start: {start:?}"))
}

/// `loss:`, without cross-entropy's `weight`, `ignore_index` and `reduction` where they are
/// at their defaults.
pub(crate) fn loss_as_recorded(loss: &super::losses::Losses) -> String {
    format!("{loss:?}")
        .replace(", weight: None", "")
        .replace(", ignore_index: None", "")
        .replace(", reduction: Mean", "")
}

/// `clip:`, a 2-norm written as earlier versions recorded it, before `norm_type`.
fn clip_as_recorded(clip: Option<super::config::Clip>) -> String {
    match clip {
        Some(super::config::Clip::Norm { max, norm_type: 2.0 }) => {
            format!("Some(Norm({max:?}))")
        }
        other => format!("{other:?}"),
    }
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

    /// What the version before `limit`, `augment` and the optional `warmup_start` recorded
    /// for `specs/seq2seq_reverse.wick`'s data and schedule (read off a checkpoint it wrote).
    #[test]
    fn an_unchanged_configuration_compares_equal_to_what_earlier_versions_recorded() {
        let spec =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/seq2seq_reverse.wick"))
                .unwrap();
        let c = crate::compile_source("seq2seq_reverse.wick", &spec, &crate::Options::default());
        let config = TrainConfig::from_value(c.train.as_ref().unwrap()).unwrap();
        let s = settings(&config, &Device::Cpu);
        assert_eq!(
            s["data"],
            "DataConfig { source: Safetensors { path: \"../data/reverse_digits.safetensors\", features: \"src\", \
             target: Some(\"dec_out\") }, val: Split(0.1), test: None, shape: None, dtype: None, target: Classes, \
             standardize: false, rescale: None, shuffle: true, named: Some(Names { inputs: [(\"src\", [\"src\"]), \
             (\"tgt\", [\"dec_in\"])], targets: [(\"logits\", [\"dec_out\"])], target_dtype: None }) }"
        );
        assert_eq!(
            s["schedule"],
            "ScheduleConfig { name: Constant, every: Epoch, step_size: None, gamma: None, milestones: None, \
             decay_steps: None, rate: None, staircase: None, t_max: None, min_lr: None, monitor: None, factor: None, \
             patience: None, threshold: None, cooldown: None, warmup: 0, warmup_start: 0.0 }"
        );
        // A warm-up without its start now starts at 1/3: not what a checkpoint that warmed up
        // from 0 did, so that one is refused as changed.
        let mut warm = config.clone();
        warm.schedule.warmup = 5;
        assert!(settings(&warm, &Device::Cpu)["schedule"]
            .contains("warmup: 5, warmup_start: 0.3333333333333333 }"));
        warm.data.limit = Some(3);
        assert!(settings(&warm, &Device::Cpu)["data"].contains("limit: Some(3)"));
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
