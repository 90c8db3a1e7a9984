//! StyleGAN's `MinibatchStd(group_size=4)` (Karras et al. 2018, section 3): the discriminator
//! sees how varied the batch is, so a generator that draws one image for every latent is
//! caught. The batch is split into groups of `G = min(group_size, N)` samples (sample `n` in
//! group `n mod (N / G)`'s slot, as StyleGAN2 reshapes `[G, N / G, ...]`); for each group the
//! standard deviation (biased, `+ 1e-8` under the root) of every feature over its members,
//! averaged over `(C, H, W)`, is one number, appended to each member as a constant channel.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{
    divide_exactly, expect_float, expect_rank, Attrs, Cost, Op, OpDef, OpError, Quotient, Signature,
};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};
#[cfg(feature = "lower")]
use candle_core::Tensor;

pub static MINIBATCH_STD: OpDef = OpDef {
    name: "MinibatchStd",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("group_size", AttrType::Int, Default::Int(4))],
    },
    build: |a: &Attrs| Ok(Box::new(MinibatchStd { group_size: a.int_at_least("group_size", 1)? })),
};

/// StyleGAN's epsilon under the square root.
#[cfg(feature = "lower")]
const EPS: f64 = 1e-8;

#[derive(Debug)]
pub struct MinibatchStd {
    pub group_size: i64,
}

impl Op for MinibatchStd {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[4], "[N, C, H, W]")?;
        expect_float(inputs, 0, "MinibatchStd")?;
        let x = &inputs[0];
        // A symbolic batch is checked when it is bound (at lowering, per batch size).
        if let Some(n) = x.shape[0].as_const() {
            let group = self.group_size.min(n);
            if let Quotient::Remainder(r) = divide_exactly(&x.shape[0], group) {
                return Err(OpError::new(format!(
                    "the batch is split into groups of min(group_size, N) = {group} samples: N = {n} \
                     leaves {r} over"
                ))
                .input(0)
                .help(format!("use a batch size divisible by {group}, or a group_size that divides {n}")));
            }
        }
        let mut shape = x.shape.clone();
        shape[1] = shape[1].add(&Dim::one());
        Ok(vec![x.with_shape(shape)])
    }

    /// Elementwise statistics: not counted.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for MinibatchStd {
    /// On differentiable tensor ops only, so its gradients of any order are theirs.
    fn lower(&self, _: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let group_size = self.group_size as usize;
        Ok(unary(move |x, _| {
            let (n, c, h, w) = x.dims4()?;
            let group = group_size.min(n);
            let slots = n / group;
            let grouped = x.reshape((group, slots, c, h, w))?;
            let centred = grouped.broadcast_sub(&grouped.mean_keepdim(0)?)?;
            let std = (centred.sqr()?.mean(0)? + EPS)?.sqrt()?;
            let per_slot = std.reshape((slots, c * h * w))?.mean(1)?;
            let channel = per_slot.reshape((1, slots, 1, 1, 1))?.broadcast_as((group, slots, 1, h, w))?;
            Tensor::cat(&[x, &channel.reshape((n, 1, h, w))?], 1)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, int, macs, out_shape};

    #[test]
    fn appends_one_channel_and_checks_a_known_batch() {
        let op = build(&MINIBATCH_STD, &[]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[8, 5, 4, 3])]), vec![8, 6, 4, 3]);
        assert_eq!(out_shape(&*op, &[f32(&[3, 5, 4, 3])]), vec![3, 6, 4, 3], "a group of the whole batch");
        assert_eq!(macs(&*op, &[f32(&[8, 5, 4, 3])]), 0);
        assert!(op.params(&[f32(&[8, 5, 4, 3])]).is_empty());
        let e = err(op.infer(&[f32(&[6, 5, 4, 3])]));
        assert_eq!(e.input, Some(0));
        assert!(
            e.message.contains("groups of min(group_size, N) = 4 samples: N = 6 leaves 2 over"),
            "{}",
            e.message
        );
        let symbolic = TensorType::new(DType::F32, vec![Dim::sym("N"), 5.into(), 4.into(), 3.into()]);
        assert_eq!(op.infer(&[symbolic]).unwrap()[0].shape[1], Dim::konst(6));
        assert!(err(op.infer(&[f32(&[4, 5])])).message.contains("rank-4"));
        assert_eq!(err(build(&MINIBATCH_STD, &[("group_size", int(0))])).attr, Some("group_size"));
    }

    /// Groups of 2 in a batch of 4: samples 0 and 2 share a group, as do 1 and 3.
    #[cfg(feature = "lower")]
    #[test]
    fn groups_interleave_as_in_stylegan2() {
        use candle_core::{DType, Device};
        let spec = "model M { input x: [4, 1, 1, 2]\n output y = x |> MinibatchStd(2) }";
        let model = crate::Model::from_source("m.wick", spec, &crate::Options::default()).unwrap();
        let lowered = model.build(&Device::Cpu, DType::F64).unwrap();
        let x = Tensor::new(&[1.0f64, 2.0, 0.0, 0.0, 3.0, 6.0, 4.0, 8.0], &Device::Cpu)
            .unwrap()
            .reshape((4, 1, 1, 2))
            .unwrap();
        let y = lowered.forward(&[x], false).unwrap().remove(0);
        let stat = y.narrow(1, 1, 1).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        // Group {0, 2}: std of (1, 3) and (2, 6) is 1 and 2, mean 1.5; group {1, 3}: 2 and 4, mean 3.
        let expected = [1.5, 1.5, 3.0, 3.0, 1.5, 1.5, 3.0, 3.0];
        for (s, e) in stat.iter().zip(expected) {
            assert!((s - e).abs() < 1e-6, "{stat:?}");
        }
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_groups_and_a_whole_batch_group() {
        let spec = "model M { input x: [6, 2, 3, 5]\n input s: [3, 3, 2, 1]\n \
                    output y = x |> MinibatchStd(3) |> Tanh\n output z = s |> MinibatchStd |> Tanh }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
