//! Losses on lowered outputs. Built from candle-core primitives whose gradients are checked
//! (no `gather`: the target's log-probability is picked with a one-hot mask).

use candle_core::{DType, Result, Tensor, D};

use crate::lower::kernels::activation::relu;
use crate::lower::kernels::softmax::log_softmax;

/// Rows of `scores` with the classes last, `[M, C]`, and the targets as `[M]` i64.
fn class_rows(scores: &Tensor, targets: &Tensor, class_axis: usize) -> Result<(Tensor, Tensor)> {
    let rank = scores.rank();
    if class_axis >= rank {
        candle_core::bail!("class axis {class_axis} is out of range for scores of rank {rank}");
    }
    let classes = scores.dim(class_axis)?;
    let mut order: Vec<usize> = (0..rank).filter(|a| *a != class_axis).collect();
    order.push(class_axis);
    let rows = scores.permute(order)?.contiguous()?.reshape(((), classes))?;
    let targets = targets.flatten_all()?.to_dtype(DType::I64)?;
    if targets.dim(0)? != rows.dim(0)? {
        candle_core::bail!(
            "{} targets for {} rows of scores: targets must have the scores' shape without the class axis",
            targets.dim(0)?,
            rows.dim(0)?
        );
    }
    Ok((rows, targets))
}

/// `-mean(logp[target])` for `[M, C]` log-probabilities.
fn picked_mean(logp: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let class_ids = Tensor::arange(0i64, logp.dim(1)? as i64, logp.device())?.unsqueeze(0)?;
    let one_hot = targets.unsqueeze(1)?.broadcast_eq(&class_ids)?.to_dtype(logp.dtype())?;
    (logp * &one_hot)?.sum(D::Minus1)?.neg()?.mean_all()
}

/// Cross-entropy with integer targets, mean over every target position, as
/// `torch.nn.functional.cross_entropy`: `logits` has its classes on `class_axis` ((N, C) and
/// (N, C, H, W) use 1, (N, T, C) uses 2), `targets` the other axes. `label_smoothing` mixes in
/// the uniform distribution over classes.
pub fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    class_axis: usize,
    label_smoothing: f64,
) -> Result<Tensor> {
    if targets.dtype().is_float() {
        return soft_cross_entropy(logits, targets, class_axis, label_smoothing);
    }
    let (rows, targets) = class_rows(logits, targets, class_axis)?;
    let logp = log_softmax(&rows, 1)?;
    let nll = picked_mean(&logp, &targets)?;
    if label_smoothing == 0.0 {
        return Ok(nll);
    }
    let uniform = (logp.sum(D::Minus1)?.neg()? / rows.dim(1)? as f64)?.mean_all()?;
    (nll * (1.0 - label_smoothing))? + (uniform * label_smoothing)?
}

/// Cross-entropy against class probabilities (mixup's and CutMix's soft targets), as
/// `torch.nn.functional.cross_entropy` with float targets: `targets` has the scores' shape,
/// `-mean(sum(targets * log_softmax(logits)))` over the class axis.
fn soft_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    class_axis: usize,
    label_smoothing: f64,
) -> Result<Tensor> {
    if targets.dims() != logits.dims() {
        candle_core::bail!(
            "soft targets {:?} for scores {:?}: class probabilities must have the scores' shape",
            targets.dims(),
            logits.dims()
        );
    }
    let classes = logits.dim(class_axis)?;
    let targets = targets.to_dtype(logits.dtype())?;
    let targets = (targets * (1.0 - label_smoothing))?.affine(1.0, label_smoothing / classes as f64)?;
    let last = logits.rank() - 1;
    let logp = log_softmax(&logits.transpose(class_axis, last)?.contiguous()?, last)?;
    let targets = targets.transpose(class_axis, last)?;
    (logp * targets)?.sum(D::Minus1)?.neg()?.mean_all()
}

/// Negative log-likelihood of log-probabilities (`nll_loss`), mean.
pub fn nll(log_probs: &Tensor, targets: &Tensor, class_axis: usize) -> Result<Tensor> {
    let (rows, targets) = class_rows(log_probs, targets, class_axis)?;
    picked_mean(&rows, &targets)
}

pub fn mse(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    (pred - target)?.sqr()?.mean_all()
}

pub fn l1(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    (pred - target)?.abs()?.mean_all()
}

/// Huber-like: quadratic below `beta`, linear above (`smooth_l1_loss`), mean.
pub fn smooth_l1(pred: &Tensor, target: &Tensor, beta: f64) -> Result<Tensor> {
    let d = (pred - target)?.abs()?;
    let quadratic = (d.sqr()? * (0.5 / beta))?;
    let linear = (&d - 0.5 * beta)?;
    d.lt(beta)?.where_cond(&quadratic, &linear)?.mean_all()
}

/// Binary cross-entropy on logits, mean, in the form that never overflows:
/// `max(x, 0) - x y + log(1 + exp(-|x|))`.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    bce_with_logits_terms(logits, targets)?.mean_all()
}

fn bce_with_logits_terms(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus_tail = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (relu(logits)? - (logits * targets)?)? + softplus_tail
}

/// Binary cross-entropy on probabilities, mean; logs clamped at -100 as PyTorch does.
pub fn bce(probs: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let log_p = probs.log()?.maximum(-100.0)?;
    let log_q = (probs.neg()? + 1.0)?.log()?.maximum(-100.0)?;
    let ones = targets.ones_like()?;
    ((targets * log_p)? + ((ones - targets)? * log_q)?)?.neg()?.mean_all()
}

/// A VAE's KL term between N(mu, exp(logvar)) and N(0, 1), summed and divided by the batch
/// (the first axis).
pub fn kl_gaussian(mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
    let batch = mu.dim(0)? as f64;
    let terms = (((logvar + 1.0)? - mu.sqr()?)? - logvar.exp()?)?;
    terms.sum_all()? * (-0.5 / batch)
}

/// Sigmoid focal loss (Lin et al. 2017, torchvision's `sigmoid_focal_loss`), mean:
/// the BCE of each element scaled by `(1 - p_t)^gamma`, and by `alpha` / `1 - alpha` per class.
pub fn focal(logits: &Tensor, targets: &Tensor, alpha: f64, gamma: f64) -> Result<Tensor> {
    let ce = bce_with_logits_terms(logits, targets)?;
    let p = (logits.neg()?.exp()? + 1.0)?.recip()?;
    let ones = targets.ones_like()?;
    let p_t = ((&p * targets)? + ((p.neg()? + 1.0)? * (&ones - targets)?)?)?;
    let mut loss = (ce * (p_t.neg()? + 1.0)?.powf(gamma)?)?;
    if alpha >= 0.0 {
        let alpha_t = ((targets * alpha)? + ((ones - targets)? * (1.0 - alpha))?)?;
        loss = (loss * alpha_t)?;
    }
    loss.mean_all()
}

#[cfg(test)]
mod tests {
    //! Every loss against the `losses` fixture: the value, and the gradient w.r.t. each stored
    //! argument (`grad_input.<loss>.<argument>`).
    use std::collections::HashMap;

    use candle_core::{Device, Var};

    use super::*;

    fn fixture() -> HashMap<String, Tensor> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/losses.safetensors");
        candle_core::safetensors::load(path, &Device::Cpu).expect("fixture")
    }

    fn max_error(got: &Tensor, want: &Tensor) -> (f64, f64) {
        let v = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let (g, w) = (v(got), v(want));
        assert_eq!(g.len(), w.len());
        let scale = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        (g.iter().zip(&w).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())), scale)
    }

    /// Evaluates `loss` on the named float arguments (as Vars) and checks value and gradients.
    fn check(
        name: &str,
        args: &[&str],
        loss: impl Fn(&[Tensor], &HashMap<String, Tensor>) -> Result<Tensor>,
    ) {
        let t = fixture();
        let vars: Vec<Var> =
            args.iter().map(|a| Var::from_tensor(&t[&format!("input.{a}")]).unwrap()).collect();
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let value = loss(&tensors, &t).unwrap();
        let (err, scale) = max_error(&value, &t[&format!("output.{name}")]);
        assert!(err <= 1e-5 * (1.0 + scale), "{name}: value off by {err}");
        let grads = value.backward().unwrap();
        for (a, v) in args.iter().zip(&vars) {
            let key = format!("grad_input.{name}.{a}");
            let want = t.get(&key).unwrap_or_else(|| panic!("the fixture has no {key}"));
            let got = grads.get(v.as_tensor()).unwrap_or_else(|| panic!("{key}: no gradient"));
            let (err, scale) = max_error(got, want);
            assert!(err <= 1e-4 * (1.0 + scale), "{key}: off by {err}");
        }
    }

    #[test]
    fn classification_losses_match_pytorch() {
        check("cross_entropy", &["logits"], |x, t| cross_entropy(&x[0], &t["input.targets"], 1, 0.0));
        check("cross_entropy_ls", &["logits"], |x, t| cross_entropy(&x[0], &t["input.targets"], 1, 0.1));
        check("nll_log_softmax", &["logits"], |x, t| nll(&log_softmax(&x[0], 1)?, &t["input.targets"], 1));
        // The gradient w.r.t. nll's own argument, the log-probabilities.
        let t = fixture();
        let log_probs = Var::from_tensor(&log_softmax(&t["input.logits"], 1).unwrap()).unwrap();
        let grads = nll(log_probs.as_tensor(), &t["input.targets"], 1).unwrap().backward().unwrap();
        let (err, scale) =
            max_error(grads.get(log_probs.as_tensor()).unwrap(), &t["grad_input.nll_log_softmax.log_probs"]);
        assert!(err <= 1e-4 * (1.0 + scale), "nll w.r.t. log_probs: off by {err}");
    }

    #[test]
    fn regression_losses_match_pytorch() {
        check("mse", &["pred"], |x, t| mse(&x[0], &t["input.target"]));
        check("l1", &["pred"], |x, t| l1(&x[0], &t["input.target"]));
        check("smooth_l1", &["pred"], |x, t| smooth_l1(&x[0], &t["input.target"], 1.0));
    }

    #[test]
    fn bce_with_logits_is_stable_at_plus_and_minus_80() {
        check("bce_with_logits", &["bin_logits"], |x, t| bce_with_logits(&x[0], &t["input.bin_targets"]));
    }

    #[test]
    fn vae_kl_term_matches_pytorch() {
        check("kl_gaussian", &["mu", "logvar"], |x, _| kl_gaussian(&x[0], &x[1]));
    }

    #[test]
    fn class_axis_moves_for_nchw_and_ntc_layouts() {
        let dev = Device::Cpu;
        // The same 6 rows of 3 scores as (2, 3) positions x 3 classes in two layouts.
        let rows = Tensor::arange(0f32, 18.0, &dev).unwrap().affine(0.37, -2.0).unwrap().sin().unwrap();
        let rows = rows.reshape((6, 3)).unwrap();
        let targets = Tensor::new(&[0i64, 2, 1, 1, 0, 2], &dev).unwrap();
        let flat = cross_entropy(&rows, &targets, 1, 0.05).unwrap().to_scalar::<f32>().unwrap();
        let ntc = rows.reshape((2, 3, 3)).unwrap();
        let by_ntc = cross_entropy(&ntc, &targets.reshape((2, 3)).unwrap(), 2, 0.05).unwrap();
        let nchw = ntc.permute((0, 2, 1)).unwrap().reshape((2, 3, 3, 1)).unwrap();
        let by_nchw = cross_entropy(&nchw, &targets.reshape((2, 3, 1)).unwrap(), 1, 0.05).unwrap();
        assert!((by_ntc.to_scalar::<f32>().unwrap() - flat).abs() < 1e-6);
        assert!((by_nchw.to_scalar::<f32>().unwrap() - flat).abs() < 1e-6);
        assert!(cross_entropy(&rows, &targets.narrow(0, 0, 5).unwrap(), 1, 0.0).is_err());
    }

    #[test]
    fn bce_on_probabilities_and_focal_loss_agree_with_their_definitions() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[2.0f64, -1.0, 0.5, -3.0], &dev).unwrap();
        let y = Tensor::new(&[1.0f64, 0.0, 0.0, 1.0], &dev).unwrap();
        let p = (logits.neg().unwrap().exp().unwrap() + 1.0).unwrap().recip().unwrap();
        let a = bce(&p, &y).unwrap().to_scalar::<f64>().unwrap();
        let b = bce_with_logits(&logits, &y).unwrap().to_scalar::<f64>().unwrap();
        assert!((a - b).abs() < 1e-12);
        // gamma 0 and no alpha weighting is plain BCE; gamma 2 shrinks the loss.
        let f0 = focal(&logits, &y, -1.0, 0.0).unwrap().to_scalar::<f64>().unwrap();
        let f2 = focal(&logits, &y, 0.25, 2.0).unwrap().to_scalar::<f64>().unwrap();
        assert!((f0 - b).abs() < 1e-12 && f2 < b);
    }
}
