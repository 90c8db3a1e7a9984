//! Softmax and log-softmax along any axis, with a gradient (candle-nn's `softmax_last_dim`
//! has none in 0.11).
//!
//! Along the last axis on the CPU each is one op with its own backward, a pass per row each
//! way: `dx = y * (g - Σ g·y)` for the softmax `y`, `dx = g - exp(y) * Σ g` for the log-softmax
//! `y`. Elsewhere they are composed of primitives, the shift by the maximum detached: it
//! cancels in the value, so its gradient is zero anyway, and detaching avoids the
//! tie-splitting of `max`'s backward.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};

use super::cpu::{for_float, on_cpu_float, slice, with_slice, Elem};

fn shifted(x: &Tensor, axis: usize) -> Result<Tensor> {
    x.broadcast_sub(&x.max_keepdim(axis)?.detach())
}

pub fn softmax(x: &Tensor, axis: usize) -> Result<Tensor> {
    if axis + 1 == x.rank() && on_cpu_float(x) {
        return x.contiguous()?.apply_op1(RowSoftmax { log: false });
    }
    let e = shifted(x, axis)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(axis)?)
}

pub fn log_softmax(x: &Tensor, axis: usize) -> Result<Tensor> {
    if axis + 1 == x.rank() && on_cpu_float(x) {
        return x.contiguous()?.apply_op1(RowSoftmax { log: true });
    }
    let z = shifted(x, axis)?;
    z.broadcast_sub(&z.exp()?.sum_keepdim(axis)?.log()?)
}

/// Softmax (or log-softmax) of each row of the last axis.
struct RowSoftmax {
    log: bool,
}

impl RowSoftmax {
    fn forward<T: Elem>(&self, x: &[T], width: usize) -> Vec<T> {
        let mut y = vec![T::from_f64(0.0); x.len()];
        for (xr, yr) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)) {
            let max = xr.iter().fold(xr[0], |m, v| if *v > m { *v } else { m });
            let mut sum = T::from_f64(0.0);
            for (y, x) in yr.iter_mut().zip(xr) {
                *y = (*x - max).exp();
                sum += *y;
            }
            if self.log {
                let log_sum = T::from_f64(sum.to_f64().ln());
                yr.iter_mut().zip(xr).for_each(|(y, x)| *y = *x - max - log_sum);
            } else {
                let inv = T::from_f64(1.0) / sum;
                yr.iter_mut().for_each(|y| *y *= inv);
            }
        }
        y
    }

    fn backward<T: Elem>(&self, y: &[T], g: &[T], width: usize) -> Vec<T> {
        let mut dx = vec![T::from_f64(0.0); y.len()];
        for ((yr, gr), dr) in y.chunks_exact(width).zip(g.chunks_exact(width)).zip(dx.chunks_exact_mut(width))
        {
            if self.log {
                let sum = gr.iter().fold(T::from_f64(0.0), |s, g| s + *g);
                dr.iter_mut().zip(yr).zip(gr).for_each(|((d, y), g)| *d = *g - y.exp() * sum);
            } else {
                let dot = yr.iter().zip(gr).fold(T::from_f64(0.0), |s, (y, g)| s + *y * *g);
                dr.iter_mut().zip(yr).zip(gr).for_each(|((d, y), g)| *d = *y * (*g - dot));
            }
        }
        dx
    }
}

impl CustomOp1 for RowSoftmax {
    fn name(&self) -> &'static str {
        if self.log {
            "row_log_softmax"
        } else {
            "row_softmax"
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let width = l.dims().last().copied().unwrap_or(0);
        if width == 0 {
            candle_core::bail!("softmax over an empty axis: {:?}", l.shape());
        }
        let y = for_float!(s.dtype(), T => T::to_cpu_storage_owned(self.forward(slice::<T>(s, l)?, width)));
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (grad, width) = (grad.contiguous()?, y.dims().last().copied().unwrap_or(1));
        let dx = for_float!(y.dtype(), T => {
            let dx = with_slice(y, |y: &[T]| with_slice(&grad, |g: &[T]| self.backward(y, g, width)))??;
            Tensor::from_vec(dx, y.shape(), y.device())?
        });
        Ok(Some(dx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn values_and_gradient_match_the_closed_form() {
        let x = Var::new(&[[1.0f64, 2.0, 4.0], [0.5, -1.0, 300.0]], &Device::Cpu).unwrap();
        let y = softmax(x.as_tensor(), 1).unwrap();
        let rows = y.to_vec2::<f64>().unwrap();
        assert!((rows[0].iter().sum::<f64>() - 1.0).abs() < 1e-12 && rows[1][2] > 0.999_999);
        // d/dx_j of y_0 = y_0 (delta_0j - y_j).
        let g = y.narrow(1, 0, 1).unwrap().sum_all().unwrap().backward().unwrap();
        let g = g.get(x.as_tensor()).unwrap().to_vec2::<f64>().unwrap();
        let y0 = &rows[0];
        assert!((g[0][0] - y0[0] * (1.0 - y0[0])).abs() < 1e-12);
        assert!((g[0][2] + y0[0] * y0[2]).abs() < 1e-12);
        let ls = log_softmax(x.as_tensor(), 1).unwrap().to_vec2::<f64>().unwrap();
        assert!((ls[0][1] - rows[0][1].ln()).abs() < 1e-12 && ls[1][0].is_finite());
    }

    #[test]
    fn gradcheck_fused_last_axis_and_composed_middle_axis() {
        let n = 3 * 5 * 7;
        let t =
            Tensor::arange(0.0f64, n as f64, &Device::Cpu).unwrap().affine(0.9, 0.3).unwrap().sin().unwrap();
        let x = Var::from_tensor(&(t * 3.0).unwrap().reshape((3, 5, 7)).unwrap()).unwrap();
        let vars = [("x".to_string(), x.clone())];
        for axis in [2, 1] {
            let report = crate::lower::gradcheck::check_fn(&vars, || {
                Ok(vec![softmax(x.as_tensor(), axis)?, log_softmax(x.as_tensor(), axis)?])
            })
            .unwrap();
            report.assert_within(1e-6);
        }
        // The fused op against the composition, through a transpose that puts axis 1 last.
        let last = softmax(&x.as_tensor().transpose(1, 2).unwrap(), 2).unwrap().transpose(1, 2).unwrap();
        let diff = (last - softmax(x.as_tensor(), 1).unwrap()).unwrap().abs().unwrap().flatten_all().unwrap();
        assert!(diff.max(0).unwrap().to_scalar::<f64>().unwrap() < 1e-14);
    }
}
