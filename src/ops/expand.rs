//! `expand(x, size)`: `Tensor.expand`, size-1 axes repeated to the given sizes (`-1` keeps an
//! axis as it is) and new leading axes added, as a class token grows to the batch. Its
//! gradient sums over what was repeated. Not counted in MACs.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static EXPAND: OpDef = OpDef {
    name: "expand",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("size", AttrType::IntList, Default::Required)],
    },
    build: |a: &Attrs| Ok(Box::new(Expand { size: a.dims("size")? })),
};

#[derive(Debug)]
pub struct Expand {
    pub size: Vec<Dim>,
}

impl Op for Expand {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        let fail = |why: String| {
            Err(OpError::new(format!(
                "cannot expand {} to {}: {why}",
                shape_string(&x.shape),
                shape_string(&self.size)
            ))
            .attr("size"))
        };
        let Some(new) = self.size.len().checked_sub(x.rank()) else {
            return fail(format!(
                "the size has {} axes, fewer than the input's {}",
                self.size.len(),
                x.rank()
            ));
        };
        let keep = Dim::konst(-1);
        let mut shape = Vec::with_capacity(self.size.len());
        for (i, want) in self.size.iter().enumerate() {
            let have = i.checked_sub(new).map(|j| &x.shape[j]);
            let d = match have {
                None if *want == keep => return fail(format!("-1 keeps an axis, and axis {i} is new")),
                Some(have) if *want == keep => have.clone(),
                Some(have) if have != want && *have != Dim::one() => {
                    return fail(format!("axis {i} has size {have}, and only size-1 axes expand"))
                }
                _ if want.as_const().is_some_and(|v| v < 1) => {
                    return fail(format!("axis {i} would be {want}"))
                }
                _ => want.clone(),
            };
            shape.push(d);
        }
        Ok(vec![x.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Expand {
    /// A broadcast, copied out so that every op after it sees a contiguous tensor (candle's
    /// matmul refuses some strides); its backward sums over the repeated axes.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let out = ctx.output_dims(0)?;
        Ok(unary(move |x, _| x.broadcast_as(out.as_slice())?.contiguous()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, ints, out_shape};
    use crate::ops::AttrValue;

    #[test]
    fn repeats_size_one_axes_and_adds_leading_ones() {
        let op = build(&EXPAND, &[("size", ints(&[4, -1, 5]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[1, 3, 1])]), vec![4, 3, 5]);
        let op = build(&EXPAND, &[("size", ints(&[2, 3, -1, 5]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[3, 1, 5])]), vec![2, 3, 1, 5]);
        let n = AttrValue::List(vec![AttrValue::Int(Dim::sym("N")), AttrValue::Int((-1).into())]);
        let op = build(&EXPAND, &[("size", n)]).unwrap();
        let t = op.infer(&[f32(&[1, 8])]).unwrap().remove(0);
        assert_eq!(t, TensorType::new(DType::F32, vec![Dim::sym("N"), 8.into()]));
    }

    #[test]
    fn refuses_what_pytorch_refuses() {
        let op = build(&EXPAND, &[("size", ints(&[4, 6]))]).unwrap();
        let e = err(op.infer(&[f32(&[1, 3])]));
        assert!(e.message.contains("axis 1 has size 3, and only size-1 axes expand"), "{}", e.message);
        assert!(err(op.infer(&[f32(&[1, 1, 3])])).message.contains("fewer than"));
        let op = build(&EXPAND, &[("size", ints(&[-1, 3]))]).unwrap();
        assert!(err(op.infer(&[f32(&[3])])).message.contains("axis 0 is new"));
        let op = build(&EXPAND, &[("size", ints(&[0, 3]))]).unwrap();
        assert!(err(op.infer(&[f32(&[1, 3])])).message.contains("axis 0 would be 0"));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn forward_values_and_gradcheck() {
        use candle_core::{Device, Tensor};
        let spec = "model M { input x: [3, 1]\n output y = expand(x, [2, 3, 4]) }";
        let x = Tensor::new(&[[1.0f64], [2.0], [3.0]], &Device::Cpu).unwrap();
        let y = crate::lower::gradcheck::run_spec(spec, std::slice::from_ref(&x), false).remove(0);
        // x.expand(2, 3, 4): each row's value four times, the whole twice.
        let row = |v: f64| vec![v; 4];
        let want = vec![vec![row(1.0), row(2.0), row(3.0)]; 2];
        assert_eq!(y.to_vec3::<f64>().unwrap(), want);
        let spec = "model M { input x: [3, 1, 5]\n output y = expand(x, [2, -1, 7, 5]) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
