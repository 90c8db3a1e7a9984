//! The `schedule:` section: a named schedule with its own keys, counted in epochs (as
//! `scheduler.step()` once per epoch in PyTorch) or in optimizer steps, with an optional linear
//! warm-up in front. Keys that the named schedule does not take are errors.

use serde::Deserialize;

use super::{Mode, Plateau, Schedule};

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default)]
    pub name: Name,
    #[serde(default)]
    pub every: Unit,
    pub step_size: Option<u64>,
    pub gamma: Option<f64>,
    pub milestones: Option<Vec<u64>>,
    pub decay_steps: Option<u64>,
    pub rate: Option<f64>,
    pub staircase: Option<bool>,
    pub t_max: Option<u64>,
    pub min_lr: Option<f64>,
    pub monitor: Option<String>,
    pub factor: Option<f64>,
    pub patience: Option<u32>,
    pub threshold: Option<f64>,
    pub cooldown: Option<u32>,
    /// Warm-up length, in `every` units.
    #[serde(default)]
    pub warmup: u64,
    /// The warm-up's first rate, as a fraction of the base rate: 1/3 by default, as PyTorch's
    /// `LinearLR(start_factor=1/3)`, so the first steps of a warm-up already train.
    pub warmup_start: Option<f64>,
}

/// [`ScheduleConfig::warmup_start`] when the section does not give it.
pub const WARMUP_START: f64 = 1.0 / 3.0;

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Name {
    #[default]
    Constant,
    Step,
    Multistep,
    Exponential,
    InverseTime,
    Cosine,
    Plateau,
}

/// What a schedule's clock counts.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    #[default]
    Epoch,
    Step,
}

impl ScheduleConfig {
    /// The closed-form schedule, and the plateau rule when the name is `plateau`. `length` is
    /// the run's length in `every` units (cosine's default `t_max`).
    pub fn build(&self, length: u64) -> Result<(Schedule, Option<Plateau>), String> {
        self.only(self.accepted())?;
        let need = |v: Option<f64>, key: &str| {
            v.ok_or_else(|| format!("the `{}` schedule needs `{key}`", self.label()))
        };
        let schedule = match self.name {
            Name::Constant | Name::Plateau => Schedule::Constant,
            Name::Step => Schedule::Step {
                step_size: self.step_size.ok_or("the `step` schedule needs `step_size`")?,
                gamma: self.gamma.unwrap_or(0.1),
            },
            Name::Multistep => Schedule::MultiStep {
                milestones: self.milestones.clone().ok_or("the `multistep` schedule needs `milestones`")?,
                gamma: self.gamma.unwrap_or(0.1),
            },
            Name::Exponential => Schedule::Exponential { gamma: need(self.gamma, "gamma")? },
            Name::InverseTime => Schedule::InverseTime {
                decay_steps: self.decay_steps.unwrap_or(1),
                rate: need(self.rate, "rate")?,
                staircase: self.staircase.unwrap_or(false),
            },
            Name::Cosine => Schedule::Cosine {
                t_max: self.t_max.unwrap_or(length.saturating_sub(self.warmup).max(1)),
                min_lr: self.min_lr.unwrap_or(0.0),
            },
        };
        let plateau = (self.name == Name::Plateau).then(|| {
            let mut p = Plateau::new(self.mode(), self.factor.unwrap_or(0.1), self.patience.unwrap_or(10));
            p.threshold = self.threshold.unwrap_or(p.threshold);
            p.cooldown = self.cooldown.unwrap_or(0);
            p.min_lr = self.min_lr.unwrap_or(0.0);
            p
        });
        let schedule = if self.warmup > 0 {
            Schedule::Warmup {
                steps: self.warmup,
                start_factor: self.warmup_start.unwrap_or(WARMUP_START),
                then: Box::new(schedule),
            }
        } else {
            schedule
        };
        Ok((schedule, plateau))
    }

    /// The metric reduce-on-plateau watches.
    pub fn monitor(&self) -> &str {
        self.monitor.as_deref().unwrap_or("val_loss")
    }

    fn mode(&self) -> Mode {
        if crate::train::fit::lower_is_better(self.monitor()) {
            Mode::Min
        } else {
            Mode::Max
        }
    }

    fn label(&self) -> &'static str {
        match self.name {
            Name::Constant => "constant",
            Name::Step => "step",
            Name::Multistep => "multistep",
            Name::Exponential => "exponential",
            Name::InverseTime => "inverse_time",
            Name::Cosine => "cosine",
            Name::Plateau => "plateau",
        }
    }

    fn accepted(&self) -> &'static [&'static str] {
        match self.name {
            Name::Constant => &[],
            Name::Step => &["step_size", "gamma"],
            Name::Multistep => &["milestones", "gamma"],
            Name::Exponential => &["gamma"],
            Name::InverseTime => &["decay_steps", "rate", "staircase"],
            Name::Cosine => &["t_max", "min_lr"],
            Name::Plateau => &["monitor", "factor", "patience", "threshold", "cooldown", "min_lr"],
        }
    }

    fn only(&self, accepted: &[&str]) -> Result<(), String> {
        let given = [
            ("step_size", self.step_size.is_some()),
            ("gamma", self.gamma.is_some()),
            ("milestones", self.milestones.is_some()),
            ("decay_steps", self.decay_steps.is_some()),
            ("rate", self.rate.is_some()),
            ("staircase", self.staircase.is_some()),
            ("t_max", self.t_max.is_some()),
            ("min_lr", self.min_lr.is_some()),
            ("monitor", self.monitor.is_some()),
            ("factor", self.factor.is_some()),
            ("patience", self.patience.is_some()),
            ("threshold", self.threshold.is_some()),
            ("cooldown", self.cooldown.is_some()),
        ];
        match given.iter().find(|(key, set)| *set && !accepted.contains(key)) {
            None => Ok(()),
            Some((key, _)) => Err(format!(
                "the `{}` schedule does not take `{key}`; it takes {}",
                self.label(),
                if accepted.is_empty() { "no keys of its own".to_string() } else { accepted.join(", ") }
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: Name) -> ScheduleConfig {
        ScheduleConfig { name, ..Default::default() }
    }

    #[test]
    fn each_name_builds_its_schedule_and_refuses_foreign_keys() {
        let step = ScheduleConfig { step_size: Some(3), ..named(Name::Step) };
        assert_eq!(step.build(10).unwrap().0, Schedule::Step { step_size: 3, gamma: 0.1 });
        assert!(named(Name::Step).build(10).unwrap_err().contains("needs `step_size`"));
        let cos = ScheduleConfig { warmup: 2, ..named(Name::Cosine) };
        let (s, _) = cos.build(10).unwrap();
        let want = Schedule::Cosine { t_max: 8, min_lr: 0.0 };
        // A warm-up starts at a third of the rate (PyTorch's LinearLR default) unless told.
        assert_eq!(s, Schedule::Warmup { steps: 2, start_factor: 1.0 / 3.0, then: Box::new(want.clone()) });
        let from_zero = ScheduleConfig { warmup_start: Some(0.0), ..cos };
        assert_eq!(
            from_zero.build(10).unwrap().0,
            Schedule::Warmup { steps: 2, start_factor: 0.0, then: Box::new(want) }
        );
        let bad = ScheduleConfig { step_size: Some(3), ..named(Name::Cosine) };
        assert_eq!(
            bad.build(10).unwrap_err(),
            "the `cosine` schedule does not take `step_size`; it takes t_max, min_lr"
        );
        let plateau = ScheduleConfig { monitor: Some("val_accuracy".into()), ..named(Name::Plateau) };
        let (s, p) = plateau.build(10).unwrap();
        assert_eq!((s, p.map(|p| p.mode)), (Schedule::Constant, Some(Mode::Max)));
    }
}
