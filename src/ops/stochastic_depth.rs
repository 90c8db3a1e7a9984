//! `StochasticDepth(p, mode)`: torchvision's drop path. In training it zeroes a residual
//! branch with probability `p`, per sample (`mode="row"`) or for the whole batch
//! (`mode="batch"`), and scales what it keeps by `1 / (1 - p)`; in eval it is the identity.
//! Its draws are seeded like Dropout's (`lower/random.rs`).

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_float, expect_rank, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::random::keep_mask;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static STOCHASTIC_DEPTH: OpDef = OpDef {
    name: "StochasticDepth",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("p", AttrType::Float, Default::Required),
            attr("mode", AttrType::Choice(&["row", "batch"]), Default::Str("row")),
        ],
    },
    build: |a: &Attrs| {
        let p = a.float("p")?;
        // Written so that NaN is refused too.
        if !(0.0..=1.0).contains(&p) {
            return Err(
                OpError::new(format!("`p` is a probability and must be in [0, 1], found {p}")).attr("p")
            );
        }
        let per_row = match a.str("mode") {
            Some("row") | None => true,
            Some("batch") => false,
            Some(other) => {
                return Err(OpError::new(format!("`mode` must be \"row\" or \"batch\", found \"{other}\""))
                    .attr("mode"))
            }
        };
        Ok(Box::new(StochasticDepth { p, per_row }))
    },
};

#[derive(Debug)]
pub struct StochasticDepth {
    pub p: f64,
    /// One draw per sample (the first axis), or one for the batch.
    pub per_row: bool,
}

impl Op for StochasticDepth {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_float(inputs, 0, "StochasticDepth")?;
        expect_rank(inputs, 0, &[1, 2, 3, 4, 5, 6], "batched, [N, ...]")?;
        Ok(vec![inputs[0].clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for StochasticDepth {
    fn lower(&self, _: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let (p, per_row) = (self.p, self.per_row);
        Ok(unary(move |x, ctx| {
            if !ctx.train || p == 0.0 {
                return Ok(x.clone());
            }
            // `[N, 1, 1, ...]` or all ones: a multiplier broadcast over the rest.
            let mut dims = vec![1; x.rank()];
            if per_row {
                dims[0] = x.dim(0)?;
            }
            x.broadcast_mul(&keep_mask(&dims, p, x.dtype(), x.device())?)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, macs, out_shape};
    use crate::ops::AttrValue;

    #[test]
    fn keeps_the_shape_and_checks_p_and_mode() {
        let op = build(&STOCHASTIC_DEPTH, &[("p", AttrValue::Float(0.1))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[4, 96, 7, 5])]), vec![4, 96, 7, 5]);
        assert_eq!(macs(&*op, &[f32(&[4, 96, 7, 5])]), 0);
        assert_eq!(err(build(&STOCHASTIC_DEPTH, &[("p", AttrValue::Float(-0.1))])).attr, Some("p"));
        let e = err(op.infer(&[TensorType::new(crate::ir::tensor::DType::F32, vec![])]));
        assert!(e.message.contains("batched"), "{}", e.message);
        let c = crate::compile_source(
            "s.wick",
            "model M { input x: [2, 3]\n output y = x |> StochasticDepth(0.2, mode=\"rows\") }",
            &crate::Options::default(),
        );
        let text = format!("{:?}", c.diagnostics);
        assert!(c.diagnostics.has_errors() && text.contains("batch"), "{text}");
    }

    #[cfg(feature = "lower")]
    #[test]
    fn drops_whole_rows_or_the_whole_batch_in_training_only() {
        use candle_core::{Device, Tensor};
        let x = (Tensor::ones((64, 3, 5), candle_core::DType::F64, &Device::Cpu).unwrap() + 1.0).unwrap();
        let spec = |mode: &str| {
            format!("model M {{ input x: [64, 3, 5]\n output y = x |> sd: StochasticDepth(0.25, mode=\"{mode}\") }}")
        };
        let rows = |y: &Tensor| y.flatten_from(1).unwrap().to_vec2::<f64>().unwrap();
        let run = |mode: &str, train: bool| {
            crate::lower::gradcheck::run_spec(&spec(mode), std::slice::from_ref(&x), train).remove(0)
        };
        assert_eq!(rows(&run("row", false)), rows(&x));
        // Each row is all dropped or all kept, scaled by 1 / 0.75, as torchvision's.
        let kept: Vec<bool> = rows(&run("row", true))
            .iter()
            .map(|r| {
                assert!(r.iter().all(|v| *v == r[0]) && (r[0] == 0.0 || (r[0] - 2.0 / 0.75).abs() < 1e-12));
                r[0] != 0.0
            })
            .collect();
        let dropped = kept.iter().filter(|k| !**k).count();
        assert!((4..=32).contains(&dropped), "{dropped} of 64 rows dropped at p = 0.25");
        let batch = rows(&run("batch", true));
        assert!(batch.iter().flatten().all(|v| *v == batch[0][0]));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_in_eval_and_the_masked_gradient_in_training() {
        use candle_core::{DType, Device, Tensor, Var};
        let spec = "model M { input x: [3, 5, 2]\n output a = x |> StochasticDepth(0.4)\n \
                    output b = x |> StochasticDepth(1.0, mode=\"batch\") }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
        // p = 1 drops everything in every pass, so its training gradient is fixed: zero.
        let fixed = "model M { input x: [3, 5, 2]\n output b = x |> StochasticDepth(1.0) }";
        crate::lower::gradcheck::check_spec(fixed, true).unwrap().assert_within(1e-6);
        // Otherwise the draw changes with each pass, which finite differences cannot follow:
        // the gradient must be the row's multiplier, y / x.
        let spec = "model M { input x: [9, 5, 2]\n output y = x |> StochasticDepth(0.4) }";
        let model = crate::Model::from_source("d.wick", spec, &crate::Options::default()).unwrap();
        let lowered = model.build(&Device::Cpu, DType::F64).unwrap();
        let x = Var::from_tensor(&(Tensor::rand(0.5f64, 2.0, (9, 5, 2), &Device::Cpu).unwrap())).unwrap();
        let y = lowered.forward(&[x.as_tensor().clone()], true).unwrap().remove(0);
        let g = lowered.backward(&y.sum_all().unwrap()).unwrap();
        let g = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let ratio = (y / x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (g, r) in g.iter().zip(&ratio) {
            assert!((g - r).abs() < 1e-12 && (*g == 0.0 || (g - 1.0 / 0.6).abs() < 1e-12), "{g} vs {r}");
        }
    }
}
