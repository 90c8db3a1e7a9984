//! `x W^T + b` over the last axis of `x`, any leading axes: one 2-D product for all of them.
//! Linear layers, attention's projections and the recurrent cells' gates all use it.

use candle_core::{Result, Tensor};

use super::bias::add_bias;

/// `x` is `[..., in]`, `weight` `[out, in]`, `bias` `[out]`; the result is `[..., out]`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (out, in_features) = weight.dims2()?;
    let y = x.reshape((x.elem_count() / in_features, in_features))?.matmul(&weight.t()?)?;
    let y = match bias {
        Some(b) => add_bias(&y, b)?,
        None => y,
    };
    let mut shape = x.dims().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = out;
    }
    y.reshape(shape)
}
