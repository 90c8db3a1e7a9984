//! Softmax and log-softmax along any axis, with a gradient (candle-nn's `softmax_last_dim`
//! has none in 0.11). The shift by the maximum is detached: it cancels in the value, so its
//! gradient is zero anyway, and detaching avoids the tie-splitting of `max`'s backward.

use candle_core::{Result, Tensor};

fn shifted(x: &Tensor, axis: usize) -> Result<Tensor> {
    x.broadcast_sub(&x.max_keepdim(axis)?.detach())
}

pub fn softmax(x: &Tensor, axis: usize) -> Result<Tensor> {
    let e = shifted(x, axis)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(axis)?)
}

pub fn log_softmax(x: &Tensor, axis: usize) -> Result<Tensor> {
    let z = shifted(x, axis)?;
    z.broadcast_sub(&z.exp()?.sum_keepdim(axis)?.log()?)
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
}
