//! Losses on lowered outputs. Built from candle-core primitives whose gradients are checked
//! (no `gather`: the target's log-probability is picked with a one-hot mask).

use candle_core::{DType, Result, Tensor, D};

use crate::lower::kernels::softmax::log_softmax;

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
    let rank = logits.rank();
    if class_axis >= rank {
        candle_core::bail!("class axis {class_axis} is out of range for logits of rank {rank}");
    }
    let classes = logits.dim(class_axis)?;
    // Classes last, then one row per target position.
    let mut order: Vec<usize> = (0..rank).filter(|a| *a != class_axis).collect();
    order.push(class_axis);
    let rows = logits.permute(order)?.contiguous()?.reshape(((), classes))?;
    let targets = targets.flatten_all()?.to_dtype(DType::I64)?;
    if targets.dim(0)? != rows.dim(0)? {
        candle_core::bail!(
            "{} targets for {} logit rows: targets must have the logits' shape without the class axis",
            targets.dim(0)?,
            rows.dim(0)?
        );
    }
    let logp = log_softmax(&rows, 1)?;
    let class_ids = Tensor::arange(0i64, classes as i64, logits.device())?.unsqueeze(0)?;
    let one_hot = targets.unsqueeze(1)?.broadcast_eq(&class_ids)?.to_dtype(logp.dtype())?;
    let picked = (&logp * &one_hot)?.sum(D::Minus1)?;
    let nll = picked.neg()?.mean_all()?;
    if label_smoothing == 0.0 {
        return Ok(nll);
    }
    let uniform = (logp.sum(D::Minus1)?.neg()? / classes as f64)?.mean_all()?;
    (nll * (1.0 - label_smoothing))? + (uniform * label_smoothing)?
}
