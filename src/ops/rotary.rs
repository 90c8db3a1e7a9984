//! `RotaryEmbedding(theta=10000.0)`: rotary position embedding (Su et al. 2021) in Hugging Face
//! Llama's rotate-half form, `x * cos + rotate_half(x) * sin`, where `rotate_half(x)` is
//! `cat(-x2, x1)` of the two halves of the last axis and feature `i` and `i + D/2` turn
//! together by the angle `p * theta^(-2i/D)` at position `p`.
//!
//! The input is `[..., T, D]`: positions along the second-to-last axis, each head's features
//! along the last, so Llama's `[N, heads, T, head_dim]` queries and keys (the layout
//! `ScaledDotProductAttention` takes) are rotated where they are, and a single head `[N, T, D]`
//! too. Positions are `0..T`; in a pass that carries layer states (`wick sample`'s key-value
//! cache) they continue from the last pass's end, as Hugging Face's `cache_position` does, so
//! the cached keys keep the rotation of their own positions. No parameters; the tables are
//! constants (Hugging Face's `inv_freq` buffer is not in its `state_dict` either).

#[cfg(feature = "lower")]
use candle_core::{Tensor, D};

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_float, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static ROTARY_EMBEDDING: OpDef = OpDef {
    name: "RotaryEmbedding",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("theta", AttrType::Float, Default::Float(10000.0))],
    },
    build: |a: &Attrs| {
        let theta = a.float("theta")?;
        if !(theta.is_finite() && theta > 1.0) {
            return Err(OpError::new(format!(
                "`theta` is the base of the wavelengths and must exceed 1, found {theta}"
            ))
            .attr("theta"));
        }
        Ok(Box::new(RotaryEmbedding { theta }))
    },
};

#[derive(Debug)]
pub struct RotaryEmbedding {
    pub theta: f64,
}

impl Op for RotaryEmbedding {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_float(inputs, 0, "RotaryEmbedding")?;
        let x = &inputs[0];
        if x.rank() < 2 {
            return Err(OpError::new(format!(
                "expected [..., positions, head features], at least rank 2; found rank {} with shape {}",
                x.rank(),
                shape_string(&x.shape)
            ))
            .input(0));
        }
        // The two halves of each head's features turn together.
        if let Some(d) = x.shape[x.rank() - 1].as_const().filter(|d| d % 2 != 0) {
            return Err(OpError::new(format!(
                "rotary embedding turns the halves of the last axis (head features) together, so it must be \
                 even, found {d}"
            ))
            .input(0));
        }
        Ok(vec![x.clone()])
    }

    /// Elementwise products: not counted by the convention (nor by PyTorch's counter).
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for RotaryEmbedding {
    /// The cos and sin tables are built for the lowered length; a pass at another length or
    /// after cached positions builds its own.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let x = &ctx.inputs[0];
        let rank = x.rank();
        let (len, dim) = (ctx.dim(&x.shape[rank - 2])?, ctx.dim(&x.shape[rank - 1])?);
        let theta = self.theta;
        let built = tables(theta, 0, len, dim, ctx.dtype, ctx.device)?;
        Ok(unary(move |x, ctx| {
            let (len, dim) = (x.dim(D::Minus2)?, x.dim(D::Minus1)?);
            let offset = match ctx.state.as_deref_mut() {
                Some(state) => super::positions::advance_offset(state, len, x.device())?,
                None => 0,
            };
            let fresh;
            let (cos, sin) = match offset == 0 && built.0.dims() == [len, dim] {
                true => (&built.0, &built.1),
                false => {
                    fresh = tables(theta, offset, len, dim, x.dtype(), x.device())?;
                    (&fresh.0, &fresh.1)
                }
            };
            let half = dim / 2;
            let rotated = Tensor::cat(
                &[&x.narrow(D::Minus1, half, half)?.neg()?, &x.narrow(D::Minus1, 0, half)?],
                D::Minus1,
            )?;
            x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
        }))
    }
}

/// The `[len, dim]` cos and sin tables for positions `offset..offset + len`.
#[cfg(feature = "lower")]
fn tables(
    theta: f64,
    offset: usize,
    len: usize,
    dim: usize,
    dtype: candle_core::DType,
    device: &candle_core::Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let angles = angles(theta, offset, len, dim);
    let table = |f: fn(f64) -> f64| {
        Tensor::from_vec(angles.iter().map(|a| f(*a)).collect::<Vec<f64>>(), (len, dim), device)?
            .to_dtype(dtype)
    };
    Ok((table(f64::cos)?, table(f64::sin)?))
}

/// The angle of each position (rows) and feature (columns; the second half repeats the first),
/// rounded as Hugging Face computes it in f32 (`inv_freq = 1 / theta^(2i/D)`, then position
/// times `inv_freq`), so that positions in the thousands turn by the angles its tables hold.
pub fn angles(theta: f64, offset: usize, len: usize, dim: usize) -> Vec<f64> {
    let half = dim / 2;
    let inv_freq: Vec<f32> =
        (0..half).map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / dim as f32)).collect();
    let mut out = Vec::with_capacity(len * dim);
    for p in offset..offset + len {
        let row: Vec<f64> = inv_freq.iter().map(|f| f64::from(p as f32 * f)).collect();
        out.extend_from_slice(&row);
        out.extend_from_slice(&row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, macs, out_shape};
    use crate::ops::AttrValue;

    #[test]
    fn keeps_the_shape_and_needs_even_head_features() {
        let op = build(&ROTARY_EMBEDDING, &[]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 32, 128, 64])]), vec![2, 32, 128, 64]);
        assert_eq!(out_shape(&*op, &[f32(&[5, 6])]), vec![5, 6]);
        assert_eq!(macs(&*op, &[f32(&[2, 4, 7, 8])]), 0);
        let e = err(op.infer(&[f32(&[2, 4, 7, 9])]));
        assert!(e.message.contains("must be even, found 9"), "{}", e.message);
        assert!(err(op.infer(&[f32(&[6])])).message.contains("rank 1"));
        let e = err(build(&ROTARY_EMBEDDING, &[("theta", AttrValue::Float(0.5))]));
        assert_eq!(e.attr, Some("theta"));
    }

    #[test]
    fn angles_follow_hugging_face() {
        // D = 4: inv_freq = [1, 1/100]; position 3 turns by 3 and 0.03, each twice.
        let a = angles(10000.0, 2, 2, 4);
        let expected = [2.0, 0.02, 2.0, 0.02, 3.0, 0.03, 3.0, 0.03];
        for (got, want) in a.iter().zip(expected) {
            assert!((got - want).abs() < 1e-8, "{a:?}");
        }
    }

    #[cfg(feature = "lower")]
    #[test]
    fn forward_values_rotate_each_pair_and_gradcheck() {
        use candle_core::{Device, Tensor};
        // x [1, 2, 4] (positions 0 and 1): position 0 is unchanged; at position 1 features
        // (0, 2) turn by 1 rad and (1, 3) by 0.01 rad: (a, b) -> (a cos - b sin, b cos + a sin).
        let x = Tensor::new(&[[[1.0f64, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]], &Device::Cpu).unwrap();
        let spec = "model M { input x: [1, 2, 4]\n output y = x |> RotaryEmbedding }";
        let y = crate::lower::gradcheck::run_spec(spec, std::slice::from_ref(&x), false);
        let y = y[0].to_vec3::<f64>().unwrap();
        assert_eq!(y[0][0], [1.0, 2.0, 3.0, 4.0]);
        let (c1, s1, c2, s2) = (1f64.cos(), 1f64.sin(), 0.01f64.cos(), 0.01f64.sin());
        let expected = [c1 - 3.0 * s1, 2.0 * c2 - 4.0 * s2, 3.0 * c1 + s1, 4.0 * c2 + 2.0 * s2];
        for (got, want) in y[0][1].iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{:?} vs {expected:?}", y[0][1]);
        }
        let spec = "model M { input x: [2, 3, 5, 6]\n input s: [7, 4]\n \
                    output a = x |> RotaryEmbedding(theta=50.0)\n output b = s |> RotaryEmbedding }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
