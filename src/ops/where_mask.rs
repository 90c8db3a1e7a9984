//! `where(mask, a, b)`: `torch.where`, `a` where the bool `mask` holds and `b` elsewhere. The
//! three broadcast as the elementwise ops do, through size-1 axes of equal ranks. Not counted
//! in MACs.

use super::elementwise::{broadcast, same_dtype_pair};
use super::signature::Inputs;
use super::{Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, DType, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

pub static WHERE: OpDef = OpDef {
    name: "where",
    signature: Signature { inputs: Inputs::Fixed(&["mask", "a", "b"]), attrs: &[] },
    build: |_| Ok(Box::new(Where)),
};

#[derive(Debug)]
pub struct Where;

impl Op for Where {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let [mask, rest @ ..] = inputs else { return Err(OpError::new("expected 3 inputs, found none")) };
        let [a, b] = same_dtype_pair(rest).map_err(|e| OpError { input: e.input.map(|i| i + 1), ..e })?;
        if mask.dtype != DType::Bool {
            return Err(OpError::new(format!("the mask must be bool, found dtype {} ({mask})", mask.dtype))
                .input(0)
                .help("declare it `of bool`"));
        }
        let all = || [mask, a, b].map(|t| shape_string(&t.shape)).join(", ");
        if mask.rank() != a.rank() || a.rank() != b.rank() {
            return Err(OpError::new(format!("ranks must match, found shapes {}", all()))
                .input(2)
                .help("reshape to the same rank, with size-1 axes to broadcast over"));
        }
        let mut shape = Vec::with_capacity(a.rank());
        for (axis, ((m, x), y)) in mask.shape.iter().zip(&a.shape).zip(&b.shape).enumerate() {
            let Some(d) = broadcast(m, x).and_then(|d| broadcast(&d, y)) else {
                return Err(OpError::new(format!(
                    "axis {axis} does not broadcast ({m}, {x}, {y}): sizes must be equal or 1, shapes {}",
                    all()
                ))
                .input(2));
            };
            shape.push(d);
        }
        Ok(vec![TensorType::new(a.dtype, shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Where {
    /// Each of `a` and `b` gets the gradient where the mask picks it (candle's `where_cond`).
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let out = ctx.output_dims(0)?;
        Ok(Box::new(move |xs: &[candle_core::Tensor], _: &mut ForwardCtx| {
            let [mask, a, b] = xs else { candle_core::bail!("expected 3 inputs, found {}", xs.len()) };
            let grown = |t: &candle_core::Tensor| t.broadcast_as(out.as_slice());
            Ok(vec![grown(mask)?.where_cond(&grown(a)?, &grown(b)?)?])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, out_shape};

    fn mask(shape: &[i64]) -> TensorType {
        TensorType::new(DType::Bool, shape.iter().map(|d| Dim::konst(*d)).collect())
    }

    #[test]
    fn broadcasts_the_three_and_needs_a_bool_mask() {
        let op = build(&WHERE, &[]).unwrap();
        assert_eq!(out_shape(&*op, &[mask(&[1, 5]), f32(&[3, 5]), f32(&[3, 1])]), vec![3, 5]);
        let e = err(op.infer(&[f32(&[3, 5]), f32(&[3, 5]), f32(&[3, 5])]));
        assert!(e.message.contains("must be bool") && e.input == Some(0), "{}", e.message);
        let ids = TensorType::new(DType::I64, vec![3.into(), 5.into()]);
        assert_eq!(err(op.infer(&[mask(&[3, 5]), f32(&[3, 5]), ids])).input, Some(2));
        let e = err(op.infer(&[mask(&[3, 4]), f32(&[3, 5]), f32(&[3, 5])]));
        assert!(e.message.contains("axis 1 does not broadcast (4, 5, 5)"), "{}", e.message);
        assert!(err(op.infer(&[mask(&[5]), f32(&[3, 5]), f32(&[3, 5])])).message.contains("ranks"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn picks_as_pytorch_and_gradcheck() {
        use candle_core::{Device, Tensor};
        let m = Tensor::new(&[[1u8, 0, 1, 1, 0], [0, 0, 1, 0, 1], [1, 1, 0, 0, 0]], &Device::Cpu).unwrap();
        let spec = "model M { input m: [3, 5] of bool\n input a: [3, 5]\n input b: [3, 1]\n \
                    output y = where(m, a, b) }";
        let a = Tensor::arange(0.0f64, 15.0, &Device::Cpu).unwrap().reshape((3, 5)).unwrap();
        let b = Tensor::new(&[[-1.0f64], [-2.0], [-3.0]], &Device::Cpu).unwrap();
        let y = crate::lower::gradcheck::run_spec(spec, &[m.clone(), a, b], false).remove(0);
        // torch.where(m.bool(), a, b).
        let want = [[0., -1., 2., 3., -1.], [-2., -2., 7., -2., 9.], [10., 11., -3., -3., -3.]];
        assert_eq!(y.to_vec2::<f64>().unwrap(), want);
        crate::lower::gradcheck::check_spec_with(spec, false, &[("m", m)]).unwrap().assert_within(1e-6);
    }
}
