//! `randn_like(x)`: standard normal noise of `x`'s shape and dtype, as `torch.randn_like` (a
//! VAE's reparameterisation, `z = mu + eps * std`). Reads only `x`'s type; no parameters, no
//! MACs.

use super::signature::Inputs;
use super::{expect_float, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{random, unary, Forward, Lower, LowerCtx, LowerError};

pub static RANDN_LIKE: OpDef = OpDef {
    name: "randn_like",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: &[] },
    build: |_| Ok(Box::new(RandnLike)),
};

/// Sampled afresh at every forward pass, in training and evaluation alike (as in PyTorch).
#[derive(Debug)]
pub struct RandnLike;

impl Op for RandnLike {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_float(inputs, 0, "randn_like")?;
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for RandnLike {
    /// Drawn on the host from the model's random stream (its seed, the layer's path and the
    /// pass count: `lower::random`), so a run is reproducible and every pass draws afresh. The
    /// noise is a constant to autograd: gradients flow through what it is combined with,
    /// never into `x`.
    fn lower(&self, _: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        Ok(unary(|x, _| random::normal(x.dims(), x.dtype(), x.device())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, macs};

    #[test]
    fn copies_the_type_with_no_params_or_macs() {
        let op = build(&RANDN_LIKE, &[]).unwrap();
        let x = TensorType::new(DType::F16, vec![Dim::sym("N"), 16.into()]);
        assert_eq!(op.infer(std::slice::from_ref(&x)).unwrap()[0], x);
        assert!(op.params(std::slice::from_ref(&x)).is_empty());
        assert_eq!(macs(&*op, &[TensorType::new(DType::F32, vec![1.into(), 16.into()])]), 0);
        let ids = TensorType::new(DType::I64, vec![1.into()]);
        assert!(err(op.infer(&[ids])).message.contains("found dtype i64"));
    }

    #[cfg(feature = "lower")]
    /// Finite differences cannot see through fresh noise, so the gradient is checked against
    /// its closed form: for `y = x + randn_like(x) * x`, dy/dx = 1 + eps with eps = y / x - 1.
    #[test]
    fn noise_is_seeded_fresh_per_pass_and_passes_no_gradient() {
        use candle_core::{DType, Device, Tensor, Var};
        let spec = "model M { input x: [3, 5]\n output y = x + randn_like(x) * x }";
        let model = crate::Model::from_source("r.wick", spec, &crate::Options::default()).unwrap();
        let (a, b) =
            (model.build(&Device::Cpu, DType::F64).unwrap(), model.build(&Device::Cpu, DType::F64).unwrap());
        let x = Var::from_tensor(&Tensor::rand(0.5f64, 2.0, (3, 5), &Device::Cpu).unwrap()).unwrap();
        let run = |m: &crate::lower::Lowered| m.forward(&[x.as_tensor().clone()], true).unwrap().remove(0);
        let (y, y2) = (run(&a), run(&a));
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(flat(&y), flat(&run(&b)), "same seed, same first draw");
        assert_ne!(flat(&y), flat(&y2), "each pass draws afresh");
        let grads = a.backward(&y.sum_all().unwrap()).unwrap();
        let g = flat(grads.get(x.as_tensor()).unwrap());
        let eps = flat(&((&y / x.as_tensor()).unwrap() - 1.0).unwrap());
        for (g, e) in g.iter().zip(&eps) {
            assert!((g - (1.0 + e)).abs() < 1e-12, "{g} vs 1 + {e}");
        }
        let mean = eps.iter().sum::<f64>() / 15.0;
        assert!(mean.abs() < 1.5 && eps.iter().any(|e| *e < 0.0) && eps.iter().any(|e| *e > 0.0));
    }
}
