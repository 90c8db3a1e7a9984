//! Elementwise ops whose gradient is the output's gradient passed through a gate: ReLU (where
//! `x > 0`) and multiplying by a constant such as a dropout mask. On candle's primitives
//! each is a comparison, a cast and a product whose backward also differentiates the
//! constant side; here each is one pass forward and one back on the CPU.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};

use super::cpu::{for_float, on_cpu_float, slice, with_slice, Elem};

/// `max(x, 0)`; gradient 1 where `x > 0` only (as PyTorch's, 0 at exactly 0).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if on_cpu_float(x) {
        return x.contiguous()?.apply_op1(Relu);
    }
    x.gt(0.0)?.to_dtype(x.dtype())?.mul(x)
}

/// `x * factor` where `factor` (same shape and dtype) takes no gradient.
pub fn mul_constant(x: &Tensor, factor: &Tensor) -> Result<Tensor> {
    if on_cpu_float(x) && x.dtype() == factor.dtype() && x.dims() == factor.dims() {
        return x.contiguous()?.apply_op1(MulConstant(factor.contiguous()?));
    }
    x.mul(&factor.detach())
}

/// `out[i] = f(a[i], b[i])` over two equally long slices.
fn zip_map<T: Elem>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> Vec<T> {
    a.iter().zip(b).map(|(a, b)| f(*a, *b)).collect()
}

fn relu_gate<T: Elem>(x: T, g: T) -> T {
    if x > T::from_f64(0.0) {
        g
    } else {
        T::from_f64(0.0)
    }
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        // NaN passes through (PyTorch's ReLU keeps it), so a diverging run still shows it.
        let y = for_float!(s.dtype(), T => {
            let relu = |x: &T| if x.is_nan() { *x } else { relu_gate(*x, *x) };
            T::to_cpu_storage_owned(slice::<T>(s, l)?.iter().map(relu).collect())
        });
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let dx = for_float!(x.dtype(), T => {
            let dx = with_slice(x, |x: &[T]| with_slice(&grad, |g: &[T]| zip_map(x, g, relu_gate)))??;
            Tensor::from_vec(dx, x.shape(), x.device())?
        });
        Ok(Some(dx))
    }
}

struct MulConstant(Tensor);

impl CustomOp1 for MulConstant {
    fn name(&self) -> &'static str {
        "mul_constant"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = for_float!(s.dtype(), T => {
            let y = with_slice(&self.0, |f: &[T]| Ok::<_, candle_core::Error>(zip_map(slice::<T>(s, l)?, f, |x, f| x * f)))??;
            T::to_cpu_storage_owned(y)
        });
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.mul(&self.0)?))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::lower::gradcheck::check_fn;

    #[test]
    fn gradcheck_away_from_the_kink_and_exact_at_it() {
        let x = Tensor::arange(0.0f64, 35.0, &Device::Cpu).unwrap().affine(0.7, 0.2).unwrap().sin().unwrap();
        let x = Var::from_tensor(&x.reshape((5, 7)).unwrap()).unwrap();
        let factor = x.as_tensor().affine(3.0, 1.0).unwrap().detach();
        let vars = [("x".to_string(), x.clone())];
        let report =
            check_fn(&vars, || Ok(vec![relu(x.as_tensor())?, mul_constant(x.as_tensor(), &factor)?]));
        report.unwrap().assert_within(1e-7);
        let at_zero = Var::new(&[-1.0f64, 0.0, 2.0], &Device::Cpu).unwrap();
        let y = relu(at_zero.as_tensor()).unwrap();
        let g = y
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(at_zero.as_tensor())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        assert_eq!((y.to_vec1::<f64>().unwrap(), g), (vec![0.0, 0.0, 2.0], vec![0.0, 0.0, 1.0]));
        let nan =
            relu(&Tensor::new(&[f64::NAN, -1.0], &Device::Cpu).unwrap()).unwrap().to_vec1::<f64>().unwrap();
        assert!(nan[0].is_nan() && nan[1] == 0.0);
    }
}
