//! `patch_merging_pad(x)`: torchvision's `_patch_merging_pad`, the gather of Swin's patch
//! merging. A channels-last map `[..., H, W, C]` is padded with a zero row and column where H
//! or W is odd, and each 2x2 patch's four tokens are concatenated in torchvision's order
//! `x0 = x[0::2, 0::2]`, `x1 = x[1::2, 0::2]`, `x2 = x[0::2, 1::2]`, `x3 = x[1::2, 1::2]`:
//! `[..., cdiv(H, 2), cdiv(W, 2), 4C]`. An op rather than `reshape |> permute |> reshape`
//! because that needs H and W even, which symbolic sizes cannot show. Not counted in MACs.

use super::signature::Inputs;
use super::{expect_float, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static PATCH_MERGING_PAD: OpDef = OpDef {
    name: "patch_merging_pad",
    signature: Signature { inputs: Inputs::Fixed(&["x"]), attrs: &[] },
    build: |_: &Attrs| Ok(Box::new(PatchMergingPad)),
};

#[derive(Debug)]
pub struct PatchMergingPad;

impl Op for PatchMergingPad {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        expect_float(inputs, 0, "patch_merging_pad")?;
        let rank = x.rank();
        if rank < 3 {
            return Err(
                OpError::new(format!("expected a channels-last map [..., H, W, C], found {x}")).input(0)
            );
        }
        let two = Dim::konst(2);
        let mut shape = x.shape.clone();
        for axis in [rank - 3, rank - 2] {
            shape[axis] = x.shape[axis].ceil_div(&two).map_err(|e| OpError::new(format!("{e:?}")))?;
        }
        shape[rank - 1] = x.shape[rank - 1].mul(&4.into());
        Ok(vec![x.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for PatchMergingPad {
    /// Pad to even, split each of H and W into (half, offset), and order the offsets (column,
    /// row) so that the row offset varies fastest within the 4C features.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let dims = ctx.input_dims(0)?;
        let rank = dims.len();
        let (h, w, c) = (dims[rank - 3], dims[rank - 2], dims[rank - 1]);
        let lead: usize = dims[..rank - 3].iter().product();
        let out = ctx.output_dims(0)?;
        Ok(unary(move |x, _| {
            let x = x.reshape((lead, h, w, c))?.pad_with_zeros(1, 0, h % 2)?.pad_with_zeros(2, 0, w % 2)?;
            let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
            x.reshape((lead, h2, 2, w2, 2, c))?.permute((0, 1, 3, 4, 2, 5))?.reshape(out.as_slice())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, err, f32, macs, out_shape};

    #[test]
    fn halves_the_map_rounding_up_and_quadruples_the_channels() {
        let op = build(&PATCH_MERGING_PAD, &[]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[1, 56, 56, 96])]), vec![1, 28, 28, 384]);
        assert_eq!(out_shape(&*op, &[f32(&[2, 7, 4, 3])]), vec![2, 4, 2, 12]);
        assert_eq!(macs(&*op, &[f32(&[1, 56, 56, 96])]), 0);
        assert!(err(op.infer(&[f32(&[4, 3])])).message.contains("channels-last"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn torchvisions_order_and_padding() {
        use candle_core::{Device, Tensor};
        // x[0, i, j, 0] = 10 i + j on a 3x3 map: padded to 4x4 with zeros.
        let values: Vec<f64> = (0..3).flat_map(|i| (0..3).map(move |j| f64::from(10 * i + j))).collect();
        let x = Tensor::from_vec(values, (1, 3, 3, 1), &Device::Cpu).unwrap();
        let spec = "model M { input x: [1, 3, 3, 1]\n output y = patch_merging_pad(x) }";
        let y = crate::lower::gradcheck::run_spec(spec, &[x], false);
        let y = y[0].flatten_all().unwrap().to_vec1::<f64>().unwrap();
        // torchvision: _patch_merging_pad(x).flatten().tolist().
        assert_eq!(y, [0.0, 10.0, 1.0, 11.0, 2.0, 12.0, 0.0, 0.0, 20.0, 0.0, 21.0, 0.0, 22.0, 0.0, 0.0, 0.0]);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_on_odd_maps() {
        let spec = "model M { input x: [2, 5, 7, 3]\n input z: [3, 4, 3, 2]\n \
                    output a = patch_merging_pad(x)\n output b = patch_merging_pad(z) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
