//! Batch and layer normalisation on elementwise primitives (candle-nn's layer norm has no
//! gradient in 0.11), with PyTorch's running-statistics update.

use candle_core::{Result, Tensor, Var};

use super::batch_norm::batch_norm_train;
use super::cpu::on_cpu_float;
use super::layer_norm::layer_norm_affine;
use super::per_channel;

/// Normalises `x` over `dims` with the biased variance; returns (normalised, mean, variance),
/// the statistics kept with their reduced axes.
pub fn standardize(x: &Tensor, dims: &[usize], eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
    let mean = x.mean_keepdim(dims)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(dims)?;
    let y = centred.broadcast_div(&(var.clone() + eps)?.sqrt()?)?;
    Ok((y, mean, var))
}

/// The affine part shared by the norms: `y * weight + bias`, each optional, already shaped
/// to broadcast.
pub fn affine(y: Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>) -> Result<Tensor> {
    let y = match weight {
        Some(w) => y.broadcast_mul(w)?,
        None => y,
    };
    match bias {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// A batch norm's state: per-channel affine parameters and running statistics.
pub struct BatchNorm {
    pub weight: Option<Tensor>,
    pub bias: Option<Tensor>,
    /// `(running_mean, running_var)` when tracked.
    pub running: Option<(Var, Var)>,
    pub eps: f64,
    pub momentum: f64,
}

impl BatchNorm {
    /// `x` is `[N, C, ...]`. Training (or no running statistics) normalises with the batch's
    /// statistics and, when tracked, moves the running ones toward them by `momentum`, using
    /// the unbiased variance as PyTorch does.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let rank = x.rank();
        let shape = |t: &Tensor| per_channel(t, rank);
        let (w, b) =
            (self.weight.as_ref().map(shape).transpose()?, self.bias.as_ref().map(shape).transpose()?);
        let y = match (&self.running, train) {
            (Some((mean, var)), false) => {
                let (mean, var) = (shape(mean.as_tensor())?.detach(), shape(var.as_tensor())?.detach());
                x.broadcast_sub(&mean)?.broadcast_div(&(var + self.eps)?.sqrt()?)?
            }
            _ => {
                let dims: Vec<usize> = (0..rank).filter(|d| *d != 1).collect();
                let n = x.elem_count() / x.dim(1)?;
                if n < 2 {
                    candle_core::bail!(
                        "batch norm in training needs more than 1 value per channel, found shape {:?}",
                        x.dims()
                    );
                }
                if let (Some(weight), Some(bias), true) = (&self.weight, &self.bias, on_cpu_float(x)) {
                    let (y, mean, var) = batch_norm_train(x, weight, bias, self.eps)?;
                    let device = x.device();
                    let (mean, var) = (Tensor::new(mean, device)?, Tensor::new(var, device)?);
                    self.track(&mean, &var, n, train)?;
                    return Ok(y);
                }
                let (y, mean, var) = standardize(x, &dims, self.eps)?;
                self.track(&mean.detach().flatten_all()?, &var.detach().flatten_all()?, n, train)?;
                y
            }
        };
        affine(y, w.as_ref(), b.as_ref())
    }

    /// In training, moves the running statistics toward the batch's `mean` and biased `var`
    /// (`[C]`, over `n` values each) by `momentum`, with the unbiased variance as PyTorch does.
    fn track(&self, mean: &Tensor, var: &Tensor, n: usize, train: bool) -> Result<()> {
        let (Some((running_mean, running_var)), true) = (&self.running, train) else { return Ok(()) };
        let m = self.momentum;
        let dtype = running_mean.dtype();
        let unbiased = var.affine(n as f64 / (n - 1) as f64, 0.0)?.to_dtype(dtype)?;
        let mean = mean.to_dtype(dtype)?;
        running_mean.set(&((running_mean.as_tensor().detach() * (1.0 - m))? + (mean * m)?)?)?;
        running_var.set(&((running_var.as_tensor().detach() * (1.0 - m))? + (unbiased * m)?)?)
    }
}

/// Layer norm over the last `axes` axes of `x`; `weight` and `bias` have those axes' shape.
pub fn layer_norm(
    x: &Tensor,
    axes: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let rank = x.rank();
    if let (Some(w), Some(b), true) = (weight, bias, on_cpu_float(x)) {
        let (w, b) = (w.flatten_all()?, b.flatten_all()?);
        if axes == 1 {
            // No reshapes around the op: candle's backward adds each one's gradient into a
            // fresh zeroed buffer.
            return layer_norm_affine(x, &w, &b, eps);
        }
        let features: usize = x.dims()[rank - axes..].iter().product();
        let rows = x.reshape((x.elem_count() / features.max(1), features))?;
        return layer_norm_affine(&rows, &w, &b, eps)?.reshape(x.shape());
    }
    let dims: Vec<usize> = (rank - axes..rank).collect();
    let (y, _, _) = standardize(x, &dims, eps)?;
    affine(y, weight, bias)
}

/// Group norm's statistics: `x` `[N, C, ...]` normalised per sample over each of `groups`
/// groups of consecutive channels (with their spatial axes); no affine part.
pub fn group_standardize(x: &Tensor, groups: usize, eps: f64) -> Result<Tensor> {
    let n = x.dim(0)?;
    let grouped = x.reshape((n, groups, x.elem_count() / (n * groups)))?;
    let (y, _, _) = standardize(&grouped, &[2], eps)?;
    y.reshape(x.dims())
}

/// Instance norm's statistics: `x` `[N, C, ...]` normalised per sample and channel over the
/// spatial axes; no affine part. With `running` statistics, evaluation normalises with them,
/// and training moves them by `momentum` toward the batch average of the instance means and
/// unbiased variances (what PyTorch's batch norm over `[1, N * C, ...]` leaves).
pub fn instance_standardize(
    x: &Tensor,
    running: Option<(&Var, &Var)>,
    momentum: f64,
    eps: f64,
    train: bool,
) -> Result<Tensor> {
    let rank = x.rank();
    if let (Some((mean, var)), false) = (running, train) {
        let (mean, var) =
            (per_channel(mean.as_tensor(), rank)?.detach(), per_channel(var.as_tensor(), rank)?.detach());
        return x.broadcast_sub(&mean)?.broadcast_div(&(var + eps)?.sqrt()?);
    }
    let spatial: Vec<usize> = (2..rank).collect();
    let (y, mean, var) = standardize(x, &spatial, eps)?;
    if let Some((running_mean, running_var)) = running {
        let count = x.dims()[2..].iter().product::<usize>();
        if count < 2 {
            candle_core::bail!(
                "instance norm in training needs more than 1 value per channel, found shape {:?}",
                x.dims()
            );
        }
        let (n, c) = (x.dim(0)?, x.dim(1)?);
        let mean = mean.detach().reshape((n, c))?.mean(0)?;
        let var = (var.detach().reshape((n, c))? * (count as f64 / (count - 1) as f64))?.mean(0)?;
        let m = momentum;
        running_mean.set(&((running_mean.as_tensor().detach() * (1.0 - m))? + (mean * m)?)?)?;
        running_var.set(&((running_var.as_tensor().detach() * (1.0 - m))? + (var * m)?)?)?;
    }
    Ok(y)
}

/// `x / sqrt(mean(x^2 over dims) + eps)`: RMS norm's and StyleGAN's pixel norm's scaling.
pub fn unit_mean_square(x: &Tensor, dims: &[usize], eps: f64) -> Result<Tensor> {
    x.broadcast_div(&(x.sqr()?.mean_keepdim(dims)? + eps)?.sqrt()?)
}
