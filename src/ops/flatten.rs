//! `Flatten(start_dim=1, end_dim=-1)`: merges a run of axes into one, as `torch.nn.Flatten`.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_axis, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static FLATTEN: OpDef = OpDef {
    name: "Flatten",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            // 1, not torch.flatten's 0: the module keeps the batch axis.
            attr("start_dim", AttrType::Int, Default::Int(1)),
            attr("end_dim", AttrType::Int, Default::Int(-1)),
        ],
    },
    build: |a: &Attrs| Ok(Box::new(Flatten { start_dim: a.int("start_dim")?, end_dim: a.int("end_dim")? })),
};

#[derive(Debug)]
pub struct Flatten {
    pub start_dim: i64,
    pub end_dim: i64,
}

impl Op for Flatten {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        let (start, end) =
            (expect_axis(x, self.start_dim, "start_dim")?, expect_axis(x, self.end_dim, "end_dim")?);
        if start > end {
            return Err(OpError::new(format!(
                "`start_dim` ({start}) cannot come after `end_dim` ({end}) for shape {}",
                shape_string(&x.shape)
            ))
            .attr("start_dim"));
        }
        let mut shape = x.shape[..start].to_vec();
        shape.push(Dim::product(&x.shape[start..=end]));
        shape.extend_from_slice(&x.shape[end + 1..]);
        Ok(vec![x.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Flatten {
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let shape = ctx.output_dims(0)?;
        Ok(unary(move |x, _| x.reshape(shape.as_slice())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, int, out_shape};

    #[test]
    fn flattens_all_but_the_batch_axis() {
        let op = build(&FLATTEN, &[]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[1, 512, 7, 7])]), vec![1, 25_088]);
        let x = TensorType::new(DType::F32, vec![Dim::sym("N"), 16.into(), Dim::sym("H"), Dim::sym("W")]);
        let out = op.infer(&[x]).unwrap();
        assert_eq!(out[0].shape[1], Dim::sym("H").mul(&Dim::sym("W")).mul(&16.into()));
    }

    #[test]
    fn a_middle_run_and_bad_ranges() {
        let op = build(&FLATTEN, &[("start_dim", int(1)), ("end_dim", int(2))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 3, 4, 5])]), vec![2, 12, 5]);
        assert_eq!(err(op.infer(&[f32(&[2])])).attr, Some("start_dim"));
        let op = build(&FLATTEN, &[("start_dim", int(2)), ("end_dim", int(1))]).unwrap();
        assert!(err(op.infer(&[f32(&[2, 3, 4])])).message.contains("cannot come after"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck() {
        let spec = "model M { input x: [2, 3, 4, 5]\n output y = x |> Flatten\n \
                    output z = x |> Flatten(start_dim=1, end_dim=2) |> Linear(2) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
