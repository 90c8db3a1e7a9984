//! What training minimises and what it reports: the `loss:` section (a loss of
//! [`super::loss`] applied to the model's outputs and the data's targets) and the `metrics:`
//! list (`accuracy`, `top5_accuracy`, ...).

use candle_core::{DType, Result, Tensor, D};
use serde::Deserialize;

use super::loss;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "name", rename_all = "snake_case")]
pub enum LossConfig {
    /// Integer targets; classes on `class_axis` of the first output. `weight`, `ignore_index`
    /// and `reduction` as `torch.nn.functional.cross_entropy`'s (a class weight per class; the
    /// target value that counts for nothing; `mean` or `sum`).
    CrossEntropy {
        #[serde(default)]
        label_smoothing: f64,
        #[serde(default = "one")]
        class_axis: usize,
        #[serde(default)]
        weight: Option<Vec<f64>>,
        #[serde(default)]
        ignore_index: Option<i64>,
        #[serde(default)]
        reduction: Reduction,
    },
    /// The first output holds log-probabilities.
    Nll {
        #[serde(default = "one")]
        class_axis: usize,
    },
    BceWithLogits,
    Bce,
    Mse,
    L1,
    SmoothL1 {
        #[serde(default = "one_f")]
        beta: f64,
    },
    Focal {
        #[serde(default = "quarter")]
        alpha: f64,
        #[serde(default = "two")]
        gamma: f64,
    },
    /// A VAE whose outputs are `reconstruction, mu, logvar`: the reconstruction loss against
    /// the target (the input, for an autoencoder) summed per example, plus `beta` times KL.
    Vae {
        #[serde(default)]
        reconstruction: Reconstruction,
        #[serde(default = "one_f")]
        beta: f64,
    },
}

/// How per-target losses become one number: `mean` (PyTorch's default; weighted by the class
/// weights when given) or `sum`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    #[default]
    Mean,
    Sum,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Reconstruction {
    #[default]
    Mse,
    Bce,
    BceWithLogits,
}

fn one() -> usize {
    1
}
fn one_f() -> f64 {
    1.0
}
fn quarter() -> f64 {
    0.25
}
fn two() -> f64 {
    2.0
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig::cross_entropy(0.0)
    }
}

impl LossConfig {
    /// Cross-entropy over axis 1 with `label_smoothing` and PyTorch's other defaults.
    pub fn cross_entropy(label_smoothing: f64) -> LossConfig {
        LossConfig::CrossEntropy {
            label_smoothing,
            class_axis: 1,
            weight: None,
            ignore_index: None,
            reduction: Reduction::Mean,
        }
    }

    /// The target value that counts for nothing (`ignore_index`), where the loss has one.
    pub fn ignore_index(&self) -> Option<i64> {
        match self {
            LossConfig::CrossEntropy { ignore_index, .. } => *ignore_index,
            _ => None,
        }
    }

    /// What one key alone cannot say: class weights that are numbers of 0 or more.
    pub fn check(&self) -> std::result::Result<(), String> {
        if let LossConfig::CrossEntropy { weight: Some(w), .. } = self {
            if let Some(bad) = w.iter().find(|v| !v.is_finite() || **v < 0.0) {
                return Err(format!("`weight` holds a class weight per class, each 0 or more; found {bad}"));
            }
            if w.is_empty() {
                return Err("`weight` holds a class weight per class; found none".into());
            }
        }
        Ok(())
    }

    /// The loss of `outputs` (the model's, in order) against `target`: a scalar tensor.
    pub fn compute(&self, outputs: &[Tensor], target: &Tensor) -> Result<Tensor> {
        let Some(first) = outputs.first() else { candle_core::bail!("the model has no output") };
        let float_target = || target.to_dtype(first.dtype());
        match self {
            LossConfig::CrossEntropy { label_smoothing, class_axis, weight, ignore_index, reduction } => {
                let options = loss::ClassOptions {
                    weight: weight.as_deref(),
                    ignore_index: *ignore_index,
                    sum: *reduction == Reduction::Sum,
                };
                loss::cross_entropy_with(first, target, *class_axis, *label_smoothing, &options)
            }
            LossConfig::Nll { class_axis } => loss::nll(first, target, *class_axis),
            LossConfig::BceWithLogits => loss::bce_with_logits(first, &float_target()?),
            LossConfig::Bce => loss::bce(first, &float_target()?),
            LossConfig::Mse => loss::mse(first, &float_target()?),
            LossConfig::L1 => loss::l1(first, &float_target()?),
            LossConfig::SmoothL1 { beta } => loss::smooth_l1(first, &float_target()?, *beta),
            LossConfig::Focal { alpha, gamma } => loss::focal(first, &float_target()?, *alpha, *gamma),
            LossConfig::Vae { reconstruction, beta } => {
                let [recon, mu, logvar] = outputs else {
                    candle_core::bail!(
                        "the `vae` loss needs the outputs `reconstruction, mu, logvar`; the model has {}",
                        outputs.len()
                    )
                };
                let t = target.to_dtype(recon.dtype())?.reshape(recon.shape())?;
                let per_element = match reconstruction {
                    Reconstruction::Mse => loss::mse(recon, &t)?,
                    Reconstruction::Bce => loss::bce(recon, &t)?,
                    Reconstruction::BceWithLogits => loss::bce_with_logits(recon, &t)?,
                };
                // Summed per example, as the KL term is.
                let per_example = (per_element * (recon.elem_count() / recon.dim(0)?) as f64)?;
                per_example + (loss::kl_gaussian(mu, logvar)? * *beta)?
            }
        }
    }

    /// Whether targets are class indices (so accuracy means something).
    pub fn classifies(&self) -> bool {
        matches!(self, LossConfig::CrossEntropy { .. } | LossConfig::Nll { .. })
    }

    /// Where the classes are in the first output.
    pub fn class_axis(&self) -> usize {
        match self {
            LossConfig::CrossEntropy { class_axis, .. } | LossConfig::Nll { class_axis } => *class_axis,
            _ => 1,
        }
    }
}

/// A figure computed from outputs and targets besides the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// The fraction of target positions whose class is among the `k` highest scores.
    TopK(usize),
    /// For binary targets: the fraction where the logit's sign (or the probability's side of
    /// 0.5) agrees with the target.
    Binary { probabilities: bool },
}

impl Metric {
    /// `accuracy`, `top5_accuracy`: what a loss allows.
    pub fn parse(name: &str, loss: &LossConfig) -> std::result::Result<Metric, String> {
        let k = match name {
            "accuracy" | "top1_accuracy" => 1,
            _ => name
                .strip_prefix("top")
                .and_then(|r| r.strip_suffix("_accuracy"))
                .and_then(|k| k.parse::<usize>().ok())
                .filter(|k| *k >= 1)
                .ok_or_else(|| {
                    format!("unknown metric `{name}`; accepted: accuracy, top<k>_accuracy (top5_accuracy)")
                })?,
        };
        match loss {
            _ if loss.classifies() => Ok(Metric::TopK(k)),
            LossConfig::BceWithLogits | LossConfig::Focal { .. } if k == 1 => {
                Ok(Metric::Binary { probabilities: false })
            }
            LossConfig::Bce if k == 1 => Ok(Metric::Binary { probabilities: true }),
            _ => Err(format!("`{name}` needs class targets; the `loss` here does not classify")),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Metric::TopK(1) | Metric::Binary { .. } => "accuracy".into(),
            Metric::TopK(k) => format!("top{k}_accuracy"),
        }
    }

    /// The number of correct target positions in this batch, and how many there were; class
    /// targets equal to `ignore` (the loss's `ignore_index`) count for neither.
    pub fn count(
        &self,
        output: &Tensor,
        target: &Tensor,
        class_axis: usize,
        ignore: Option<i64>,
    ) -> Result<(f64, f64)> {
        let correct = match *self {
            Metric::TopK(k) => {
                // Soft targets (mixup, CutMix) count as their most likely class.
                let target = match target.dtype().is_float() && target.rank() == output.rank() {
                    true => &target.argmax(class_axis)?.to_dtype(DType::I64)?,
                    false => target,
                };
                let classes = output.dim(class_axis)?;
                let ids = Tensor::arange(0i64, classes as i64, output.device())?;
                let mut shape = vec![1; output.rank()];
                shape[class_axis] = classes;
                let one_hot = target.unsqueeze(class_axis)?.broadcast_eq(&ids.reshape(shape)?)?;
                let scores = output.to_dtype(DType::F32)?;
                let own = (scores.clone() * one_hot.to_dtype(DType::F32)?)?.sum_keepdim(class_axis)?;
                // Ties count in the target's favour, as a top-k by score would break them.
                let above = scores.broadcast_gt(&own)?.to_dtype(DType::F32)?.sum(class_axis)?;
                above.lt(k as f64)?
            }
            Metric::Binary { probabilities } => {
                let cut = if probabilities { 0.5 } else { 0.0 };
                let predicted = output.gt(cut)?.to_dtype(DType::F32)?;
                let t = target.to_dtype(DType::F32)?.reshape(predicted.shape())?;
                predicted.eq(&t)?
            }
        };
        let correct = correct.to_dtype(DType::F64)?;
        let sum = |t: &Tensor| t.flatten_all()?.sum(D::Minus1)?.to_scalar::<f64>();
        match ignore.filter(|_| matches!(self, Metric::TopK(_)) && !target.dtype().is_float()) {
            Some(ignored) => {
                let kept = target.ne(ignored)?.to_dtype(DType::F64)?.reshape(correct.shape())?;
                Ok((sum(&(correct * &kept)?)?, sum(&kept)?))
            }
            None => Ok((sum(&correct)?, correct.elem_count() as f64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn top_k_counts_targets_among_the_k_best_scores_on_any_class_axis() {
        let d = Device::Cpu;
        let scores = Tensor::new(&[[0.1f32, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]], &d).unwrap();
        let target = Tensor::new(&[2i64, 0, 0], &d).unwrap();
        assert_eq!(Metric::TopK(1).count(&scores, &target, 1, None).unwrap(), (1.0, 3.0));
        assert_eq!(Metric::TopK(2).count(&scores, &target, 1, None).unwrap(), (2.0, 3.0));
        assert_eq!(Metric::TopK(3).count(&scores, &target, 1, None).unwrap(), (3.0, 3.0));
        // An ignored target value counts for neither: the right `0` and the wrong `2` remain.
        let ignoring = Tensor::new(&[2i64, 0, -100], &d).unwrap();
        assert_eq!(Metric::TopK(1).count(&scores, &ignoring, 1, Some(-100)).unwrap(), (1.0, 2.0));
        // (N, T, C) with classes last.
        let seq = scores.unsqueeze(0).unwrap();
        assert_eq!(Metric::TopK(1).count(&seq, &target.unsqueeze(0).unwrap(), 2, None).unwrap(), (1.0, 3.0));
    }

    #[test]
    fn metric_names_parse_against_the_loss() {
        let ce = LossConfig::default();
        assert_eq!(Metric::parse("accuracy", &ce), Ok(Metric::TopK(1)));
        assert_eq!(Metric::parse("top5_accuracy", &ce).map(|m| m.name()), Ok("top5_accuracy".into()));
        assert!(Metric::parse("top0_accuracy", &ce).is_err());
        assert!(Metric::parse("precision", &ce).unwrap_err().contains("unknown metric `precision`"));
        assert!(Metric::parse("accuracy", &LossConfig::Mse).unwrap_err().contains("needs class targets"));
        assert_eq!(Metric::parse("accuracy", &LossConfig::Bce), Ok(Metric::Binary { probabilities: true }));
    }

    #[test]
    fn the_vae_loss_sums_reconstruction_per_example_and_adds_kl() {
        let d = Device::Cpu;
        let recon = Tensor::new(&[[1.0f32, 2.0], [0.0, 0.0]], &d).unwrap();
        let target = Tensor::new(&[[0.0f32, 0.0], [0.0, 0.0]], &d).unwrap();
        let zeros = Tensor::zeros((2, 3), DType::F32, &d).unwrap();
        let vae = LossConfig::Vae { reconstruction: Reconstruction::Mse, beta: 1.0 };
        // Squared errors 1 + 4 over 2 examples; KL of N(0, 1) against itself is 0.
        let l = vae.compute(&[recon, zeros.clone(), zeros], &target).unwrap();
        assert_eq!(l.to_scalar::<f32>().unwrap(), 2.5);
        assert!(vae.compute(std::slice::from_ref(&target), &target).is_err());
    }
}
