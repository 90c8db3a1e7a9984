//! Activations with PyTorch's gradients. candle's GELU backwards use six-digit constants,
//! and its ReLU passes the gradient at exactly 0; these are written so the gradient is the
//! one PyTorch computes.

use candle_core::{Result, Tensor};

use super::gate::mul_constant;
use super::zip::map_untracked;

pub use super::gate::relu;

/// `clamp(x, lo, hi)`; gradient 1 strictly inside only (ReLU6, Hardtanh).
pub fn hardtanh(x: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
    let inside = x.gt(lo)?.mul(&x.lt(hi)?)?;
    inside.where_cond(x, &x.clamp(lo, hi)?.detach())
}

/// `x` where positive, `slope * x` elsewhere.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    x.gt(0.0)?.where_cond(x, &x.affine(slope, 0.0)?)
}

/// `0.5 x (1 + erf(x / sqrt 2))`.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    // No gradient will be taken (inference): one pass instead of five over the activation,
    // with the erf candle's `erf` op uses.
    let (f32_fn, f64_fn) = (
        |v: f32| 0.5 * v * (1.0 + candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2)),
        |v: f64| 0.5 * v * (1.0 + candle_core::cpu::erf::erf_f64(v * std::f64::consts::FRAC_1_SQRT_2)),
    );
    if let Some(y) = map_untracked(x, f32_fn, f64_fn) {
        return y;
    }
    let cdf = ((x / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5;
    x.mul(&cdf?)
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    // As in `gelu_erf`: one pass where six would run, with `0.5 (1 + tanh z) = 1 / (1 + e^-2z)`:
    // one exponential instead of libm's tanh (its expm1 was 10% of a GPT-2 pass).
    let (f32_fn, f64_fn) = (
        |v: f32| v / (1.0 + (-2.0 * k as f32 * (v + 0.044715 * v * v * v)).exp()),
        |v: f64| v / (1.0 + (-2.0 * k * (v + 0.044715 * v * v * v)).exp()),
    );
    if let Some(y) = map_untracked(x, f32_fn, f64_fn) {
        return y;
    }
    let inner = (x + (x.sqr()?.mul(x)? * 0.044715)?)?.affine(k, 0.0)?;
    x.mul(&((inner.tanh()? + 1.0)? * 0.5)?)
}

/// `log(1 + exp(beta x)) / beta`, and `x` itself where `beta x > threshold`; written as
/// `(relu(bx) + log(1 + exp(-|bx|))) / beta` so that no exponential overflows.
pub fn softplus(x: &Tensor, beta: f64, threshold: f64) -> Result<Tensor> {
    let bx = x.affine(beta, 0.0)?;
    let smooth = (relu(&bx)? + (bx.abs()?.neg()?.exp()? + 1.0)?.log()?)?.affine(1.0 / beta, 0.0)?;
    bx.gt(threshold)?.where_cond(x, &smooth)
}

/// `x * mask / (1 - p)` with a fresh Bernoulli(1 - p) mask (inverted dropout).
pub fn dropout(x: &Tensor, p: f64) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    if p >= 1.0 {
        return x.zeros_like();
    }
    mul_constant(x, &crate::lower::random::keep_mask(x.dims(), p, x.dtype(), x.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn grad(f: impl Fn(&Tensor) -> Result<Tensor>, at: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let x = Var::new(at, &Device::Cpu).unwrap();
        let y = f(x.as_tensor()).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        (y.to_vec1().unwrap(), g.get(x.as_tensor()).unwrap().to_vec1().unwrap())
    }

    #[test]
    fn kinks_take_pytorch_gradients() {
        assert_eq!(grad(relu, &[-1.0, 0.0, 2.0]), (vec![0.0, 0.0, 2.0], vec![0.0, 0.0, 1.0]));
        let (y, g) = grad(|x| hardtanh(x, -1.0, 1.0), &[-2.0, -1.0, 0.5, 1.0, 3.0]);
        assert_eq!((y, g), (vec![-1.0, -1.0, 0.5, 1.0, 1.0], vec![0.0, 0.0, 1.0, 0.0, 0.0]));
        assert_eq!(grad(|x| leaky_relu(x, 0.2), &[-1.0, 3.0]), (vec![-0.2, 3.0], vec![0.2, 1.0]));
    }

    #[test]
    fn gelus_without_a_gradient_take_the_one_pass_op_with_the_same_values() {
        let at: Vec<f64> = (0..41).map(|i| (i as f64 - 20.0) * 0.37).collect();
        for f in [gelu_erf, gelu_tanh] {
            let (tracked, _) = grad(f, &at);
            let plain = Tensor::new(at.as_slice(), &Device::Cpu).unwrap();
            let one_pass = f(&plain).unwrap().to_vec1::<f64>().unwrap();
            let gap = tracked.iter().zip(&one_pass).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(gap < 1e-12, "{gap}");
        }
    }

    #[test]
    fn softplus_is_stable_and_thresholded() {
        let (y, g) = grad(|x| softplus(x, 1.0, 20.0), &[-800.0, 0.0, 15.0, 25.0]);
        assert_eq!(y[0], 0.0);
        assert!((y[1] - 2f64.ln()).abs() < 1e-15 && (y[2] - 15.000000305902227).abs() < 1e-12);
        assert_eq!(y[3], 25.0);
        assert!((g[2] - 1.0 / (1.0 + (-15f64).exp())).abs() < 1e-15 && g[3] == 1.0 && g[0] == 0.0);
    }

    #[test]
    fn dropout_keeps_about_one_minus_p_and_rescales() {
        let x = Tensor::ones(10_000, candle_core::DType::F64, &Device::Cpu).unwrap();
        let y = dropout(&x, 0.25).unwrap().to_vec1::<f64>().unwrap();
        let kept = y.iter().filter(|v| **v != 0.0).count();
        assert!((7_000..8_000).contains(&kept), "{kept}");
        assert!(y.iter().all(|v| *v == 0.0 || (*v - 4.0 / 3.0).abs() < 1e-12));
        assert_eq!(dropout(&x, 1.0).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap(), 0.0);
    }
}
