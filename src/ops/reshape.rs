//! `reshape(shape)`: same elements, new shape; one `-1` is inferred from the element count.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{divide_exactly, Attrs, Cost, Op, OpDef, OpError, Quotient, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static RESHAPE: OpDef = OpDef {
    name: "reshape",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[attr("shape", AttrType::IntList, Default::Required)],
    },
    build: |a: &Attrs| {
        let shape = a.dims("shape")?;
        let negatives: Vec<usize> =
            (0..shape.len()).filter(|i| shape[*i].as_const().is_some_and(|v| v < 0)).collect();
        let inferred = match negatives.as_slice() {
            [] => None,
            [i] if shape[*i].as_const() == Some(-1) => Some(*i),
            _ => {
                return Err(OpError::new(format!(
                    "`shape` may hold one -1 and no other negative size, found {}",
                    shape_string(&shape)
                ))
                .attr("shape"))
            }
        };
        Ok(Box::new(Reshape { shape, inferred }))
    },
};

#[derive(Debug)]
pub struct Reshape {
    pub shape: Vec<Dim>,
    /// The position of the `-1`, if any.
    pub inferred: Option<usize>,
}

impl Op for Reshape {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let x = &inputs[0];
        let mut shape = self.shape.clone();
        if let Some(i) = self.inferred {
            let known: Vec<Dim> =
                shape.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, d)| d.clone()).collect();
            let size = infer_size(x, &known, &self.shape)?;
            if let Some(slot) = shape.get_mut(i) {
                *slot = size;
            }
        }
        let (from, to) = (x.numel(), Dim::product(&shape));
        if from != to {
            return Err(OpError::new(format!(
                "cannot reshape {} ({from} elements) into {} ({to} elements)",
                shape_string(&x.shape),
                shape_string(&self.shape)
            ))
            .attr("shape")
            .help("if the counts are equal for your dims, bind them, e.g. `--bind N=1`"));
        }
        Ok(vec![x.with_shape(shape)])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Reshape {
    /// Each target size is read from the input at run time where the spec ties it to input
    /// axes (`[N, T, 12, -1]` of an `[N, T, 768]` input), so a lowered model serves any
    /// sequence length; other sizes keep their bound values and the `-1` takes the rest.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let declared = ctx.declared_inputs.first().ok_or_else(|| ctx.error("missing input 0"))?;
        let sizes = self
            .shape
            .iter()
            .enumerate()
            .map(|(i, d)| match d.as_const() {
                _ if self.inferred == Some(i) => Ok(Size::Rest),
                Some(_) => ctx.dim(d).map(Size::Bound),
                None => match declared.shape.iter().position(|a| a == d) {
                    Some(axis) => Ok(Size::Axes(axis, axis + 1)),
                    None => match run_with_product(&declared.shape, d) {
                        Some((start, end)) => Ok(Size::Axes(start, end)),
                        None => ctx.dim(d).map(Size::Bound),
                    },
                },
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(unary(move |x, _| x.reshape(runtime_shape(&sizes, x.dims())?)))
    }
}

/// Where a target size comes from when the layer runs.
#[cfg(feature = "lower")]
#[derive(Clone, Copy, Debug)]
enum Size {
    /// Its value under the model's bindings.
    Bound(usize),
    /// The product of the input's axes `start..end`.
    Axes(usize, usize),
    /// The `-1`: the elements left over.
    Rest,
}

/// The target shape for an input of shape `input`.
#[cfg(feature = "lower")]
fn runtime_shape(sizes: &[Size], input: &[usize]) -> candle_core::Result<Vec<usize>> {
    let mut shape: Vec<usize> = sizes
        .iter()
        .map(|s| match *s {
            Size::Bound(v) => v,
            Size::Axes(start, end) => input[start..end].iter().product(),
            Size::Rest => 1,
        })
        .collect();
    if let Some(rest) = sizes.iter().position(|s| matches!(s, Size::Rest)) {
        let (numel, known) = (input.iter().product::<usize>(), shape.iter().product::<usize>());
        if known == 0 || numel % known != 0 {
            candle_core::bail!(
                "cannot reshape {input:?} into {shape:?} with the -1 at {rest}: {numel} elements"
            );
        }
        shape[rest] = numel / known;
    }
    Ok(shape)
}

/// The size of the `-1`: numel divided by the `known` sizes.
///
/// Dim has no symbolic divisor, so symbols are cancelled first: a known size equal to an input
/// axis, or to the product of a run of input axes (`N*T` from `[N, T, C]`), leaves the division;
/// what is left of the divisor must then be a constant.
fn infer_size(x: &TensorType, known: &[Dim], target: &[Dim]) -> Result<Dim, OpError> {
    let mut rest: Vec<Dim> = x.shape.clone();
    let mut divisor = Dim::one();
    for k in known {
        if let Some(pos) = rest.iter().position(|d| d == k) {
            rest.remove(pos);
        } else if let Some((start, end)) = run_with_product(&rest, k) {
            rest.drain(start..end);
        } else {
            divisor = divisor.mul(k);
        }
    }
    let fail = |why: String| {
        OpError::new(format!(
            "cannot infer the -1 in {} for an input of shape {}: {why}",
            shape_string(target),
            shape_string(&x.shape)
        ))
        .attr("shape")
    };
    let by = match divisor.as_const() {
        Some(0) => return Err(fail("a size of 0 leaves it undetermined".into())),
        Some(by) => by,
        None => return Err(fail(format!("cannot divide by `{divisor}`")).help("bind the dims it depends on")),
    };
    let numerator = Dim::product(&rest);
    match divide_exactly(&numerator, by) {
        Quotient::Exact(q) => Ok(q),
        Quotient::Remainder(_) => Err(fail(format!("{numerator} elements are not divisible by {by}"))),
        Quotient::Unknown => Err(fail(format!("cannot tell whether {numerator} is divisible by {by}"))
            .help("bind the dims it depends on")),
    }
}

/// A run `rest[start..end]` of at least two axes whose product is `k`.
fn run_with_product(rest: &[Dim], k: &Dim) -> Option<(usize, usize)> {
    if k.as_const().is_some() {
        return None;
    }
    (0..rest.len()).find_map(|start| {
        (start + 2..=rest.len()).find(|end| Dim::product(&rest[start..*end]) == *k).map(|end| (start, end))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, ints, out_shape};
    use crate::ops::AttrValue;

    fn sym_shape(shape: &[Dim]) -> AttrValue {
        AttrValue::List(shape.iter().map(|d| AttrValue::Int(d.clone())).collect())
    }

    #[test]
    fn infers_the_minus_one_for_constant_shapes() {
        let op = build(&RESHAPE, &[("shape", ints(&[2, -1, 64]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 197, 768])]), vec![2, 2364, 64]);
        let e = err(op.infer(&[f32(&[2, 3, 5])]));
        assert!(e.message.contains("15 elements are not divisible by 64"), "{}", e.message);
    }

    #[test]
    fn cancels_symbols_before_dividing() {
        let (n, t) = (Dim::sym("N"), Dim::sym("T"));
        let x = TensorType::new(DType::F32, vec![n.clone(), t.clone(), 768.into()]);
        let op = build(&RESHAPE, &[("shape", sym_shape(&[n.clone(), t.clone(), 12.into(), (-1).into()]))])
            .unwrap();
        assert_eq!(op.infer(std::slice::from_ref(&x)).unwrap()[0].shape[3], Dim::konst(64));
        let op = build(&RESHAPE, &[("shape", sym_shape(&[n.mul(&t), (-1).into()]))]).unwrap();
        assert_eq!(op.infer(std::slice::from_ref(&x)).unwrap()[0].shape[1], Dim::konst(768));
        // T*768 / 2 is exact for every T; T / 2 is not, and needs T bound.
        let op = build(&RESHAPE, &[("shape", sym_shape(&[n.clone(), 2.into(), (-1).into()]))]).unwrap();
        assert_eq!(op.infer(std::slice::from_ref(&x)).unwrap()[0].shape[2], t.mul(&384.into()));
        let odd = TensorType::new(DType::F32, vec![n.clone(), t.clone()]);
        assert!(err(op.infer(&[odd])).help.unwrap().contains("bind"));
    }

    #[test]
    fn refuses_mismatched_counts_and_two_unknowns() {
        let op = build(&RESHAPE, &[("shape", ints(&[5, 5]))]).unwrap();
        let e = err(op.infer(&[f32(&[2, 3, 4])]));
        assert!(e.message.contains("[2, 3, 4] (24 elements) into [5, 5] (25 elements)"), "{}", e.message);
        assert_eq!(err(build(&RESHAPE, &[("shape", ints(&[-1, -1]))])).attr, Some("shape"));
        assert!(build(&RESHAPE, &[("shape", ints(&[-2, 4]))]).is_err());
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_with_an_inferred_size() {
        let spec =
            "dim N = 2\n model M { input x: [N, 3, 4]\n output y = reshape(x, [N, 4, -1]) |> Linear(2) }";
        crate::lower::gradcheck::check_spec(spec, true).unwrap().assert_within(1e-6);
    }
}
