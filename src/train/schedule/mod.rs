//! Learning-rate schedules: closed forms of the step (or epoch) count, as `torch.optim.lr_scheduler`
//! defines them, a linear warm-up that composes with any of them, and reduce-on-plateau, which
//! follows a monitored metric instead of the clock.

mod config;

use std::f64::consts::PI;

pub use config::{Name, ScheduleConfig, Unit, WARMUP_START};

/// A rate as a function of the step count `t` (0 at the first step) and the base rate.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// `base * gamma^(t / step_size)` (StepLR).
    Step {
        step_size: u64,
        gamma: f64,
    },
    /// `base * gamma^(milestones passed)` (MultiStepLR).
    MultiStep {
        milestones: Vec<u64>,
        gamma: f64,
    },
    /// `base * gamma^t` (ExponentialLR).
    Exponential {
        gamma: f64,
    },
    /// `base / (1 + rate * t / decay_steps)`, floored to whole periods when `staircase`
    /// (Keras' InverseTimeDecay).
    InverseTime {
        decay_steps: u64,
        rate: f64,
        staircase: bool,
    },
    /// `min + (base - min) (1 + cos(pi t / t_max)) / 2` (CosineAnnealingLR, no restarts).
    Cosine {
        t_max: u64,
        min_lr: f64,
    },
    /// From `start_factor * base` up to the base over `steps`, then `then` counted from there.
    Warmup {
        steps: u64,
        start_factor: f64,
        then: Box<Schedule>,
    },
}

impl Schedule {
    pub fn lr(&self, base: f64, t: u64) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => base * gamma.powf((t / (*step_size).max(1)) as f64),
            Schedule::MultiStep { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|m| **m <= t).count() as i32)
            }
            Schedule::Exponential { gamma } => base * gamma.powf(t as f64),
            Schedule::InverseTime { decay_steps, rate, staircase } => {
                let periods = t as f64 / (*decay_steps).max(1) as f64;
                let periods = if *staircase { periods.floor() } else { periods };
                base / (1.0 + rate * periods)
            }
            Schedule::Cosine { t_max, min_lr } => {
                let t = t.min(*t_max) as f64;
                min_lr + (base - min_lr) * (1.0 + (PI * t / (*t_max).max(1) as f64).cos()) / 2.0
            }
            Schedule::Warmup { steps, start_factor, then } => {
                if t < *steps {
                    base * (start_factor + (1.0 - start_factor) * t as f64 / *steps as f64)
                } else {
                    then.lr(base, t - steps)
                }
            }
        }
    }
}

/// Whether a smaller or a larger metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Min,
    Max,
}

/// ReduceLROnPlateau: the rate is multiplied by `factor` once the metric has not improved
/// (by more than a relative `threshold`) for `patience` checks, then waits `cooldown` checks.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plateau {
    pub mode: Mode,
    pub factor: f64,
    pub patience: u32,
    pub threshold: f64,
    pub cooldown: u32,
    pub min_lr: f64,
    best: Option<f64>,
    bad: u32,
    cooling: u32,
}

impl Plateau {
    pub fn new(mode: Mode, factor: f64, patience: u32) -> Plateau {
        Plateau {
            mode,
            factor,
            patience,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            best: None,
            bad: 0,
            cooling: 0,
        }
    }

    /// Record one check of the metric; returns the rate to use from now on.
    pub fn observe(&mut self, metric: f64, lr: f64) -> f64 {
        let better = match (self.best, self.mode) {
            (None, _) => true,
            (Some(b), Mode::Min) => metric < b * (1.0 - self.threshold),
            (Some(b), Mode::Max) => metric > b * (1.0 + self.threshold),
        };
        if better {
            self.best = Some(metric);
            self.bad = 0;
        } else {
            self.bad += 1;
        }
        if self.cooling > 0 {
            self.cooling -= 1;
            self.bad = 0;
        }
        if self.bad > self.patience {
            self.cooling = self.cooldown;
            self.bad = 0;
            return (lr * self.factor).max(self.min_lr);
        }
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn closed_forms_match_pytorchs_definitions() {
        let step = Schedule::Step { step_size: 3, gamma: 0.1 };
        let got: Vec<f64> = (0..7).map(|t| step.lr(1.0, t)).collect();
        let want = [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01];
        assert!(got.iter().zip(want).all(|(g, w)| close(*g, w)), "{got:?}");
        let multi = Schedule::MultiStep { milestones: vec![2, 5], gamma: 0.5 };
        assert_eq!((0..6).map(|t| multi.lr(0.8, t)).collect::<Vec<_>>(), [0.8, 0.8, 0.4, 0.4, 0.4, 0.2]);
        assert!(close(Schedule::Exponential { gamma: 0.9 }.lr(0.1, 3), 0.1 * 0.729));
        let inv = Schedule::InverseTime { decay_steps: 10, rate: 0.5, staircase: false };
        assert!(close(inv.lr(1.0, 5), 1.0 / 1.25));
        let stairs = Schedule::InverseTime { decay_steps: 10, rate: 0.5, staircase: true };
        assert!(close(stairs.lr(1.0, 15), 1.0 / 1.5));
        let cos = Schedule::Cosine { t_max: 10, min_lr: 0.001 };
        assert!(close(cos.lr(0.1, 0), 0.1) && close(cos.lr(0.1, 10), 0.001) && close(cos.lr(0.1, 20), 0.001));
        assert!(close(cos.lr(0.1, 5), 0.001 + 0.099 / 2.0));
    }

    #[test]
    fn warmup_ramps_then_hands_over_counting_from_zero() {
        let s = Schedule::Warmup {
            steps: 4,
            start_factor: 0.0,
            then: Box::new(Schedule::Step { step_size: 2, gamma: 0.5 }),
        };
        let got: Vec<f64> = (0..8).map(|t| s.lr(1.0, t)).collect();
        assert_eq!(got, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 0.5, 0.5]);
    }

    #[test]
    fn plateau_cuts_after_patience_bad_checks_and_respects_the_floor() {
        let mut p = Plateau::new(Mode::Min, 0.5, 2);
        p.min_lr = 0.3;
        let mut lr = 1.0;
        let mut seen = Vec::new();
        for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95] {
            lr = p.observe(loss, lr);
            seen.push(lr);
        }
        // Three checks without improvement (patience 2) halve the rate; the floor stops it at 0.3.
        assert_eq!(seen, [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3]);
        let mut up = Plateau::new(Mode::Max, 0.1, 0);
        assert_eq!(up.observe(0.5, 1.0), 1.0);
        assert!(close(up.observe(0.4, 1.0), 0.1));
    }
}
