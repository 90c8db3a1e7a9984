//! StyleGAN's `NoiseInjection(x)`: `x + weight * noise`, the noise `N(0, 1)` of shape
//! `[N, 1, H, W]` (one image of noise per sample, shared by its channels) drawn afresh at each
//! pass, `weight [C]` a learned scale per channel (the paper's "learned per-feature scaling
//! factors"; rosinality's stylegan2-pytorch learns a single one), starting at zero.

use super::signature::Inputs;
use super::Init;
use super::{expect_float, expect_rank, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{random, unary, Forward, Lower, LowerCtx, LowerError};

pub static NOISE_INJECTION: OpDef = OpDef {
    name: "NoiseInjection",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: &[] },
    build: |_| Ok(Box::new(NoiseInjection)),
};

#[derive(Debug)]
pub struct NoiseInjection;

impl Op for NoiseInjection {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[4], "[N, C, H, W]")?;
        expect_float(inputs, 0, "NoiseInjection")?;
        Ok(vec![inputs[0].clone()])
    }

    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let channels = inputs[0].shape.get(1).cloned().unwrap_or_default();
        vec![ParamDecl::weight("weight", vec![channels], Init::Zeros)]
    }

    /// Elementwise: not counted.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for NoiseInjection {
    /// The noise comes from the model's random stream (`lower::random`, as `randn_like`), in
    /// training and evaluation alike (as StyleGAN2 draws it when no noise is given). It is a
    /// constant to autograd: gradients reach `x` and `weight`.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let weight = ctx.weight("weight")?;
        Ok(unary(move |x, _| {
            let (n, c, h, w) = x.dims4()?;
            let noise = random::normal(&[n, 1, h, w], x.dtype(), x.device())?;
            x.broadcast_add(&noise.broadcast_mul(&weight.reshape((1, c, 1, 1))?)?)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, macs, out_shape};
    use crate::ops::ParamKind;

    #[test]
    fn keeps_the_shape_with_a_zero_scale_per_channel() {
        let op = build(&NOISE_INJECTION, &[]).unwrap();
        let x = [f32(&[2, 5, 4, 3])];
        assert_eq!(out_shape(&*op, &x), vec![2, 5, 4, 3]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 5);
        assert_eq!(op.params(&x)[0].init, Init::Zeros);
        assert_eq!(macs(&*op, &x), 0);
        assert!(err(op.infer(&[f32(&[2, 5])])).message.contains("rank-4"));
    }

    /// Finite differences cannot see through fresh noise, so the gradients are checked against
    /// their closed form: with `y = x + weight * noise`, `dL/dx = dL/dy` and
    /// `dL/dweight[c] = sum over (n, h, w) of dL/dy * noise`, the noise read back from `y`.
    #[cfg(feature = "lower")]
    #[test]
    fn noise_is_one_image_per_sample_fresh_per_pass_and_gradients_are_exact() {
        use candle_core::{DType, Device, Tensor, Var};
        let spec = "model M { input x: [2, 3, 4, 5]\n output y = x |> noise: NoiseInjection }";
        let model = crate::Model::from_source("n.wick", spec, &crate::Options::default()).unwrap();
        let lowered = model.build(&Device::Cpu, DType::F64).unwrap();
        let weight = lowered.params().get("noise.weight").unwrap();
        weight.set(&Tensor::new(&[0.5f64, -1.0, 2.0], &Device::Cpu).unwrap()).unwrap();
        let x = Var::from_tensor(&Tensor::rand(-1f64, 1.0, (2, 3, 4, 5), &Device::Cpu).unwrap()).unwrap();
        let run = || lowered.forward(&[x.as_tensor().clone()], true).unwrap().remove(0);
        let y = run();
        let noise = (&y - x.as_tensor())
            .unwrap()
            .broadcast_div(&weight.as_tensor().reshape((1, 3, 1, 1)).unwrap())
            .unwrap();
        let first = noise.narrow(1, 0, 1).unwrap();
        let spread = noise
            .broadcast_sub(&first)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(spread < 1e-12, "every channel of a sample gets the same noise image: {spread}");
        assert_ne!(
            y.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            run().flatten_all().unwrap().to_vec1::<f64>().unwrap()
        );
        let probe = Tensor::rand(-1f64, 1.0, (2, 3, 4, 5), &Device::Cpu).unwrap();
        let grads = lowered.backward(&(&y * &probe).unwrap().sum_all().unwrap()).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(flat(grads.get(x.as_tensor()).unwrap()), flat(&probe));
        let expected = flat(&(&probe * &noise).unwrap().sum((0, 2, 3)).unwrap());
        let got = flat(grads.get(weight.as_tensor()).unwrap());
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-12, "{g} vs {e}");
        }
    }
}
