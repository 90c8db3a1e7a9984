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
        return soft_cross_entropy_with(
            logits,
            targets,
            class_axis,
            label_smoothing,
            &ClassOptions::default(),
        );
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

/// `cross_entropy`'s options past label smoothing, as `torch.nn.functional.cross_entropy`
/// takes them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClassOptions<'a> {
    /// A weight per class: each target's loss is scaled by its class's, and a mean divides by
    /// the targets' weights summed (PyTorch's weighted mean).
    pub weight: Option<&'a [f64]>,
    /// Targets of this value count for nothing, in the sum and in the mean's count.
    pub ignore_index: Option<i64>,
    /// Sum the per-target losses rather than average them.
    pub sum: bool,
}

/// [`cross_entropy`] with class weights, an ignored target value and a sum reduction. With
/// label smoothing, the smoothing term is weighted and reduced alike, as PyTorch does:
/// `(1 - e) * nll + e / C * sum_c(w_c * -logp_c)`, each over the kept targets.
pub fn cross_entropy_with(
    logits: &Tensor,
    targets: &Tensor,
    class_axis: usize,
    label_smoothing: f64,
    options: &ClassOptions,
) -> Result<Tensor> {
    if *options == ClassOptions::default() {
        return cross_entropy(logits, targets, class_axis, label_smoothing);
    }
    if targets.dtype().is_float() {
        return soft_cross_entropy_with(logits, targets, class_axis, label_smoothing, options);
    }
    let (rows, targets) = class_rows(logits, targets, class_axis)?;
    let (m, classes) = rows.dims2()?;
    let (dtype, device) = (rows.dtype(), rows.device());
    let class_weights = class_weights(options.weight, classes, dtype, device)?;
    let logp = log_softmax(&rows, 1)?;
    let class_ids = Tensor::arange(0i64, classes as i64, device)?.unsqueeze(0)?;
    let one_hot = targets.unsqueeze(1)?.broadcast_eq(&class_ids)?.to_dtype(dtype)?;
    let kept = match options.ignore_index {
        Some(ignored) => targets.ne(ignored)?.to_dtype(dtype)?,
        None => Tensor::ones(m, dtype, device)?,
    };
    // Each target's weight: its class's, 0 where ignored.
    let target_weights = (one_hot.broadcast_mul(&class_weights)?.sum(1)? * &kept)?;
    let nll = (logp.clone() * &one_hot)?.sum(1)?.neg()?;
    let mut total = (nll * &target_weights)?.sum_all()?;
    if label_smoothing != 0.0 {
        let spread = (logp.broadcast_mul(&class_weights)?.sum(1)?.neg()? * &kept)?.sum_all()?;
        total = ((total * (1.0 - label_smoothing))? + (spread * (label_smoothing / classes as f64))?)?;
    }
    if options.sum {
        return Ok(total);
    }
    total / target_weights.sum_all()?
}

/// The class weights as a `[1, C]` row (ones when none are given), checked against `classes`.
fn class_weights(
    weight: Option<&[f64]>,
    classes: usize,
    dtype: DType,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let row = match weight {
        Some(w) if w.len() != classes => {
            candle_core::bail!(
                "`weight` has {} class weights, but the scores have {classes} classes",
                w.len()
            )
        }
        Some(w) => Tensor::new(w, device)?.to_dtype(dtype)?,
        None => Tensor::ones(classes, dtype, device)?,
    };
    row.unsqueeze(0)
}

/// Cross-entropy against class probabilities (mixup's and CutMix's soft targets), as
/// `torch.nn.functional.cross_entropy` with float targets: `targets` has the scores' shape,
/// `-sum_c(w_c * t_c * logp_c)` per position, averaged over positions (not over weights:
/// PyTorch's rule for probabilities) or summed.
fn soft_cross_entropy_with(
    logits: &Tensor,
    targets: &Tensor,
    class_axis: usize,
    label_smoothing: f64,
    options: &ClassOptions,
) -> Result<Tensor> {
    if options.ignore_index.is_some() {
        candle_core::bail!("`ignore_index` needs class indices as targets, not class probabilities");
    }
    if targets.dims() != logits.dims() {
        candle_core::bail!(
            "soft targets {:?} for scores {:?}: class probabilities must have the scores' shape",
            targets.dims(),
            logits.dims()
        );
    }
    let classes = logits.dim(class_axis)?;
    let last = logits.rank() - 1;
    let targets = targets.to_dtype(logits.dtype())?;
    let targets = (targets * (1.0 - label_smoothing))?.affine(1.0, label_smoothing / classes as f64)?;
    let logp = log_softmax(&logits.transpose(class_axis, last)?.contiguous()?, last)?;
    let weights = class_weights(options.weight, classes, logits.dtype(), logits.device())?;
    let per_position =
        (logp * targets.transpose(class_axis, last)?)?.broadcast_mul(&weights)?.sum(D::Minus1)?.neg()?;
    if options.sum {
        per_position.sum_all()
    } else {
        per_position.mean_all()
    }
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

#[cfg(test)]
mod class_option_tests {
    use candle_core::{Device, Tensor};

    use super::*;

    fn logits() -> Tensor {
        let x = [[1.0f64, -0.5, 2.0], [0.3, 0.1, -1.2], [-2.0, 1.5, 0.5], [0.0, 0.7, 0.2]];
        Tensor::new(&x, &Device::Cpu).unwrap()
    }

    fn value(t: Tensor) -> f64 {
        t.to_scalar::<f64>().unwrap()
    }

    const W: &[f64] = &[0.2, 1.0, 3.0];

    /// Each figure is `torch.nn.functional.cross_entropy` on these logits and targets in f64
    /// (PyTorch 2.x), with the options named beside it.
    #[test]
    fn weights_ignore_index_reduction_and_smoothing_match_pytorch() {
        let y = Tensor::new(&[0i64, 2, 1, 2], &Device::Cpu).unwrap();
        let ce = |ls: f64, weight: Option<&[f64]>, ignore_index: Option<i64>, sum: bool| {
            value(
                cross_entropy_with(&logits(), &y, 1, ls, &ClassOptions { weight, ignore_index, sum })
                    .unwrap(),
            )
        };
        let cases = [
            (ce(0.0, None, None, false), 1.290_979_567_230_081_7), // plain, the fast path
            (ce(0.0, Some(W), None, false), 1.525_173_656_464_046), // weight=w
            (ce(0.0, Some(W), None, true), 10.981_250_326_541_133), // weight=w, reduction="sum"
            (ce(0.0, None, Some(2), false), 0.853_318_313_684_425), // ignore_index=2
            (ce(0.0, Some(W), Some(2), false), 0.507_837_834_905_586_5), // weight, ignore_index=2
            (ce(0.1, Some(W), None, false), 1.473_713_960_861_463), // weight, label_smoothing=0.1
            (ce(0.1, Some(W), None, true), 10.610_740_518_202_531), // ... reduction="sum"
            (ce(0.2, Some(W), Some(2), false), 0.926_707_703_199_423_1), // weight, ignore 2, ls 0.2
            (ce(0.1, None, None, true), 5.227_251_602_253_66),     // label_smoothing=0.1, sum
        ];
        for (i, (got, want)) in cases.iter().enumerate() {
            assert!((got - want).abs() < 1e-12, "case {i}: {got} against PyTorch's {want}");
        }
    }

    #[test]
    fn classes_on_a_later_axis_and_soft_targets_take_the_options_too() {
        // (N, T, C) with classes last; PyTorch's (N, C, T) form gives the same, -100 ignored.
        let seq = logits().reshape((2, 2, 3)).unwrap();
        let y = Tensor::new(&[[0i64, -100], [1, 2]], &Device::Cpu).unwrap();
        let options = ClassOptions { weight: Some(W), ignore_index: Some(-100), sum: false };
        let got = value(cross_entropy_with(&seq, &y, 2, 0.0, &options).unwrap());
        assert!((got - 1.033_253_693_646_103).abs() < 1e-12, "{got}");
        // Class probabilities (mixup): averaged over positions, not over weights.
        let t = [[0.7f64, 0.3, 0.0], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.2, 0.6]];
        let t = Tensor::new(&t, &Device::Cpu).unwrap();
        let mean = ClassOptions { weight: Some(W), ..Default::default() };
        let got = value(cross_entropy_with(&logits(), &t, 1, 0.0, &mean).unwrap());
        assert!((got - 2.010_699_194_426_764_7).abs() < 1e-12, "{got}");
        let sum = ClassOptions { weight: Some(W), sum: true, ..Default::default() };
        let got = value(cross_entropy_with(&logits(), &t, 1, 0.1, &sum).unwrap());
        assert!((got - 7.966_132_324_251_866).abs() < 1e-12, "{got}");
        // What does not fit is an error, not a wrong number.
        let two = ClassOptions { weight: Some(&[1.0, 2.0]), ..Default::default() };
        let e = cross_entropy_with(
            &logits(),
            &Tensor::new(&[0i64, 1, 1, 0], &Device::Cpu).unwrap(),
            1,
            0.0,
            &two,
        );
        assert!(e.unwrap_err().to_string().contains("2 class weights, but the scores have 3 classes"));
        let ignoring = ClassOptions { ignore_index: Some(0), ..Default::default() };
        assert!(cross_entropy_with(&logits(), &t, 1, 0.0, &ignoring).is_err());
    }

    #[test]
    fn weighted_cross_entropy_has_its_gradient() {
        // Finite differences on the weighted, ignoring, smoothed mean.
        let y = Tensor::new(&[0i64, 2, 1, 2], &Device::Cpu).unwrap();
        let options = ClassOptions { weight: Some(W), ignore_index: Some(1), sum: false };
        let f = |x: &Tensor| value(cross_entropy_with(x, &y, 1, 0.1, &options).unwrap());
        let var = candle_core::Var::from_tensor(&logits()).unwrap();
        let loss = cross_entropy_with(var.as_tensor(), &y, 1, 0.1, &options).unwrap();
        let grad = loss
            .backward()
            .unwrap()
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let base: Vec<f64> = logits().flatten_all().unwrap().to_vec1().unwrap();
        for (i, g) in grad.iter().enumerate() {
            let at = |d: f64| {
                let mut v = base.clone();
                v[i] += d;
                f(&Tensor::from_vec(v, (4, 3), &Device::Cpu).unwrap())
            };
            let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
            assert!((g - numeric).abs() < 1e-6, "logit {i}: {g} against {numeric}");
        }
    }
}
