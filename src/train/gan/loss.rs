//! The adversarial losses: what the discriminator minimises given its scores of a real and a
//! fake batch, what the generator minimises given the scores of its own batch, and the penalty
//! on the discriminator's input gradient some of them add.
//!
//! | `name` | discriminator | generator |
//! |---|---|---|
//! | `bce` | BCE(D(x), real_label) + BCE(D(G(z)), 0) | BCE(D(G(z)), 1), the non-saturating loss |
//! | `lsgan` | ½ mean (D(x) − 1)² + ½ mean D(G(z))² | ½ mean (D(G(z)) − 1)² |
//! | `wgan` | −(mean D(x) − mean D(G(z))), weights clipped to ±`clip` | −mean D(G(z)) |
//! | `wgan_gp` | the same + λ mean (‖∇D(x̂)‖ − 1)², x̂ between x and G(z) | −mean D(G(z)) |
//! | `dragan` | `bce`'s + λ mean (‖∇D(x̂)‖ − 1)², x̂ near x | `bce`'s |
//! | `hinge` | mean relu(1 − D(x)) + mean relu(1 + D(G(z))) | −mean D(G(z)) |
//!
//! `bce`, `lsgan` and `hinge` take an R1 penalty, `r1: γ` (Mescheder et al. 2018, StyleGAN's):
//! the discriminator's loss gains γ/2 mean ‖∇D(x)‖² at the real rows, which keeps it from
//! growing steep where the data is.
//!
//! `bce` reads logits (`logits: false` for a discriminator that ends in a sigmoid); targets are
//! per row, so label noise can flip some. The Wasserstein estimate is mean D(x) − mean D(G(z)).

use candle_core::{Result, Tensor};
use serde::Deserialize;

use crate::lower::kernels::activation::relu;
use crate::train::loss::{bce, bce_with_logits};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "name", rename_all = "snake_case")]
pub enum AdversarialLoss {
    Bce {
        /// The target of real samples: 0.9 is one-sided label smoothing.
        #[serde(default = "one")]
        real_label: f64,
        #[serde(default = "yes")]
        logits: bool,
        /// γ of an R1 penalty.
        r1: Option<f64>,
    },
    Lsgan {
        #[serde(default = "one")]
        real_label: f64,
        r1: Option<f64>,
    },
    Wgan {
        /// The discriminator's weights are clamped to [-clip, clip] after each update.
        #[serde(default = "wgan_clip")]
        clip: f64,
    },
    WganGp {
        #[serde(default = "ten", rename = "lambda")]
        weight: f64,
    },
    Dragan {
        #[serde(default = "ten", rename = "lambda")]
        weight: f64,
        #[serde(default = "one")]
        real_label: f64,
        #[serde(default = "yes")]
        logits: bool,
    },
    Hinge {
        r1: Option<f64>,
    },
}

impl Default for AdversarialLoss {
    fn default() -> Self {
        AdversarialLoss::Bce { real_label: 1.0, logits: true, r1: None }
    }
}

fn one() -> f64 {
    1.0
}
fn ten() -> f64 {
    10.0
}
fn wgan_clip() -> f64 {
    0.01
}
fn yes() -> bool {
    true
}

/// Where a gradient penalty is taken, and so what it asks of the gradient there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PenaltyAt {
    /// x̂ = ε x + (1 − ε) G(z), ε uniform per row (WGAN-GP): norms near 1.
    Between,
    /// x̂ = x + α δ, δ = ½ std(x) u with u uniform per element and α per row (DRAGAN): norms
    /// near 1.
    NearReal,
    /// The real rows themselves (R1): norms near 0.
    Real,
}

/// A penalty on the discriminator's input gradient: its weight and where it is taken.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Penalty {
    pub weight: f64,
    pub at: PenaltyAt,
}

impl Penalty {
    /// The penalty of `gradient`, the discriminator's gradient at the points (rows first).
    pub fn of(&self, gradient: &Tensor) -> Result<Tensor> {
        match self.at {
            PenaltyAt::Between | PenaltyAt::NearReal => gradient_penalty(gradient, self.weight),
            PenaltyAt::Real => r1_penalty(gradient, self.weight),
        }
    }
}

impl AdversarialLoss {
    pub fn check(&self) -> std::result::Result<(), String> {
        let positive = |what: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(format!("`{what}` must be positive, found {v}"))
            }
        };
        match self {
            AdversarialLoss::Bce { real_label, .. }
            | AdversarialLoss::Lsgan { real_label, .. }
            | AdversarialLoss::Dragan { real_label, .. }
                if !(0.5..=1.0).contains(real_label) =>
            {
                Err(format!("`real_label` is a target in [0.5, 1], found {real_label}"))
            }
            AdversarialLoss::Wgan { clip } => positive("clip", *clip),
            AdversarialLoss::WganGp { weight } | AdversarialLoss::Dragan { weight, .. } => {
                positive("lambda", *weight)
            }
            AdversarialLoss::Bce { r1: Some(gamma), .. }
            | AdversarialLoss::Lsgan { r1: Some(gamma), .. }
            | AdversarialLoss::Hinge { r1: Some(gamma) } => positive("r1", *gamma),
            _ => Ok(()),
        }
    }

    /// The penalty of the losses that have one.
    pub fn penalty(&self) -> Option<Penalty> {
        let (weight, at) = match self {
            AdversarialLoss::WganGp { weight } => (*weight, PenaltyAt::Between),
            AdversarialLoss::Dragan { weight, .. } => (*weight, PenaltyAt::NearReal),
            AdversarialLoss::Bce { r1: Some(gamma), .. }
            | AdversarialLoss::Lsgan { r1: Some(gamma), .. }
            | AdversarialLoss::Hinge { r1: Some(gamma) } => (*gamma, PenaltyAt::Real),
            _ => return None,
        };
        Some(Penalty { weight, at })
    }

    /// Whether the scores are a critic's (unbounded), whose mean difference estimates the
    /// Wasserstein distance.
    pub fn is_wasserstein(&self) -> bool {
        matches!(self, AdversarialLoss::Wgan { .. } | AdversarialLoss::WganGp { .. })
    }

    /// Whether the discriminator is trained against targets (which label noise can flip).
    pub fn has_targets(&self) -> bool {
        self.real_label().is_some()
    }

    fn real_label(&self) -> Option<f64> {
        match self {
            AdversarialLoss::Bce { real_label, .. }
            | AdversarialLoss::Lsgan { real_label, .. }
            | AdversarialLoss::Dragan { real_label, .. } => Some(*real_label),
            _ => None,
        }
    }

    /// The weight clamp after each discriminator update (`wgan`).
    pub fn weight_clip(&self) -> Option<f64> {
        match self {
            AdversarialLoss::Wgan { clip } => Some(*clip),
            _ => None,
        }
    }

    /// The per-row targets of a real and a fake batch of `rows`, before any noise.
    pub fn targets(&self, rows: usize) -> Option<(Vec<f64>, Vec<f64>)> {
        self.real_label().map(|real| (vec![real; rows], vec![0.0; rows]))
    }

    /// The discriminator's loss from its scores of real and fake rows and their targets
    /// (`[rows]`, for the losses that have targets).
    pub fn discriminator(
        &self,
        real: &Tensor,
        fake: &Tensor,
        targets: Option<(&Tensor, &Tensor)>,
    ) -> Result<Tensor> {
        match (self, targets) {
            (
                AdversarialLoss::Bce { logits, .. } | AdversarialLoss::Dragan { logits, .. },
                Some((tr, tf)),
            ) => binary(real, tr, *logits)? + binary(fake, tf, *logits)?,
            (AdversarialLoss::Lsgan { .. }, Some((tr, tf))) => {
                (squared(real, tr)? * 0.5)? + (squared(fake, tf)? * 0.5)?
            }
            (AdversarialLoss::Wgan { .. } | AdversarialLoss::WganGp { .. }, _) => {
                wasserstein(real, fake)?.neg()
            }
            (AdversarialLoss::Hinge { .. }, _) => {
                relu(&(real.neg()? + 1.0)?)?.mean_all()? + relu(&(fake + 1.0)?)?.mean_all()?
            }
            _ => candle_core::bail!("the {self:?} loss needs the discriminator's targets"),
        }
    }

    /// The generator's loss from the discriminator's scores of its batch.
    pub fn generator(&self, scores: &Tensor) -> Result<Tensor> {
        let ones = || scores.ones_like();
        match self {
            AdversarialLoss::Bce { logits, .. } | AdversarialLoss::Dragan { logits, .. } => {
                binary(scores, &ones()?, *logits)
            }
            AdversarialLoss::Lsgan { .. } => squared(scores, &ones()?)? * 0.5,
            AdversarialLoss::Wgan { .. } | AdversarialLoss::WganGp { .. } | AdversarialLoss::Hinge { .. } => {
                scores.mean_all()?.neg()
            }
        }
    }

    /// The mean "probability of real" of some scores, as reported: the sigmoid of logits, the
    /// scores themselves otherwise.
    pub fn mean_score(&self, scores: &Tensor) -> Result<f64> {
        let reads_logits = matches!(
            self,
            AdversarialLoss::Bce { logits: true, .. } | AdversarialLoss::Dragan { logits: true, .. }
        );
        let s = if reads_logits { candle_nn::ops::sigmoid(scores)? } else { scores.clone() };
        crate::train::supervised::scalar(&s.mean_all()?)
    }
}

/// mean D(x) − mean D(G(z)).
pub fn wasserstein(real: &Tensor, fake: &Tensor) -> Result<Tensor> {
    real.mean_all()? - fake.mean_all()?
}

/// Scores `[rows, ...]` against per-row targets `[rows]`: each target broadcast over its row.
fn per_row(scores: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let rows = scores.dim(0)?;
    let shape: Vec<usize> = std::iter::once(rows).chain(std::iter::repeat_n(1, scores.rank() - 1)).collect();
    targets.to_dtype(scores.dtype())?.reshape(shape)?.broadcast_as(scores.shape())
}

fn binary(scores: &Tensor, targets: &Tensor, logits: bool) -> Result<Tensor> {
    let t = per_row(scores, targets)?;
    if logits {
        bce_with_logits(scores, &t)
    } else {
        bce(scores, &t)
    }
}

fn squared(scores: &Tensor, targets: &Tensor) -> Result<Tensor> {
    (scores - per_row(scores, targets)?)?.sqr()?.mean_all()
}

/// λ mean over rows of (‖g_row‖₂ − 1)², `g` the discriminator's gradient at its input.
pub fn gradient_penalty(gradient: &Tensor, weight: f64) -> Result<Tensor> {
    let rows = gradient.dim(0)?;
    let norms = gradient.reshape((rows, ()))?.sqr()?.sum(1)?.sqrt()?;
    (norms - 1.0)?.sqr()?.mean_all()? * weight
}

/// γ/2 mean over rows of ‖g_row‖₂², `g` the discriminator's gradient at the real rows.
pub fn r1_penalty(gradient: &Tensor, gamma: f64) -> Result<Tensor> {
    let rows = gradient.dim(0)?;
    gradient.reshape((rows, ()))?.sqr()?.sum(1)?.mean_all()? * (gamma / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap().reshape((v.len(), 1)).unwrap()
    }

    fn value(x: Result<Tensor>) -> f64 {
        x.unwrap().to_scalar::<f64>().unwrap()
    }

    /// Each loss on real scores (2, -1) and fake scores (0.5, -3), against the table in the
    /// module docs worked by hand.
    #[test]
    fn each_loss_is_its_formula() {
        let (real, fake) = (t(&[2.0, -1.0]), t(&[0.5, -3.0]));
        let ones = Tensor::new(&[1.0f64, 1.0], &Device::Cpu).unwrap();
        let zeros = ones.zeros_like().unwrap();
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        let softplus = |x: f64| (1.0 + x.exp()).ln();

        let lsgan = AdversarialLoss::Lsgan { real_label: 1.0, r1: None };
        let d = value(lsgan.discriminator(&real, &fake, Some((&ones, &zeros))));
        close(d, 0.5 * ((1.0 + 4.0) / 2.0) + 0.5 * ((0.25 + 9.0) / 2.0));
        close(value(lsgan.generator(&fake)), 0.5 * ((0.25 + 16.0) / 2.0));

        let wgan = AdversarialLoss::WganGp { weight: 10.0 };
        close(value(wgan.discriminator(&real, &fake, None)), -((2.0 - 1.0) / 2.0 - (0.5 - 3.0) / 2.0));
        close(value(wgan.generator(&fake)), 1.25);

        let hinge = AdversarialLoss::Hinge { r1: None };
        // real: relu(1 - 2) = 0, relu(1 + 1) = 2; fake: relu(1 + 0.5) = 1.5, relu(1 - 3) = 0.
        close(value(hinge.discriminator(&real, &fake, None)), 1.0 + 0.75);

        // BCE on logits with smoothed real targets: -[y log s(x) + (1 - y) log(1 - s(x))].
        let bce = AdversarialLoss::Bce { real_label: 0.9, logits: true, r1: None };
        let smooth = Tensor::new(&[0.9f64, 0.9], &Device::Cpu).unwrap();
        let term = |x: f64, y: f64| y * softplus(-x) + (1.0 - y) * softplus(x);
        let want = (term(2.0, 0.9) + term(-1.0, 0.9)) / 2.0 + (term(0.5, 0.0) + term(-3.0, 0.0)) / 2.0;
        close(value(bce.discriminator(&real, &fake, Some((&smooth, &zeros)))), want);
        close(value(bce.generator(&fake)), (softplus(-0.5) + softplus(3.0)) / 2.0);
        close(
            bce.mean_score(&real).unwrap(),
            (1.0 / (1.0 + (-2.0f64).exp()) + 1.0 / (1.0 + 1.0f64.exp())) / 2.0,
        );
    }

    #[test]
    fn the_penalty_is_the_mean_squared_distance_of_each_rows_gradient_norm_from_one() {
        // Row norms 5 and 0: (5 - 1)^2 and (0 - 1)^2, mean 8.5, times 10.
        let g = Tensor::new(&[[3.0f64, 4.0], [0.0, 0.0]], &Device::Cpu).unwrap();
        assert!((value(gradient_penalty(&g, 10.0)) - 85.0).abs() < 1e-12);
        // R1 wants norms of 0: squared norms 25 and 0, mean 12.5, times γ/2 = 5.
        assert!((value(r1_penalty(&g, 10.0)) - 62.5).abs() < 1e-12);
        let r1 = AdversarialLoss::Hinge { r1: Some(10.0) }.penalty();
        assert_eq!(r1, Some(Penalty { weight: 10.0, at: PenaltyAt::Real }));
        assert!((value(r1.unwrap().of(&g)) - 62.5).abs() < 1e-12);
        assert_eq!(AdversarialLoss::Hinge { r1: None }.penalty(), None);
    }

    #[test]
    fn settings_that_cannot_train_are_refused() {
        assert!(AdversarialLoss::Bce { real_label: 0.3, logits: true, r1: None }.check().is_err());
        assert!(AdversarialLoss::Bce { real_label: 1.0, logits: true, r1: Some(0.0) }.check().is_err());
        assert!(AdversarialLoss::Wgan { clip: 0.0 }.check().is_err());
        assert!(AdversarialLoss::WganGp { weight: -1.0 }.check().is_err());
        assert!(AdversarialLoss::Hinge { r1: None }.check().is_ok());
    }
}
