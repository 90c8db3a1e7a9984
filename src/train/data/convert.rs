//! From arrays as a file stores them to features and targets as training wants them: the
//! dtype rules, the per-example reshape and the row-count agreement, written once for every
//! reader.

use candle_core::{DType, Tensor};

use super::config::{Element, Target};
use super::{DataError, Dataset};

/// An array as a reader found it, with the words an error uses to point at it
/// (`` `X.npy` ``, `` `mnist.npz` array `x_train` ``).
#[derive(Debug)]
pub(super) struct Named {
    pub what: String,
    pub tensor: Tensor,
}

impl Named {
    pub fn new(what: impl Into<String>, tensor: Tensor) -> Named {
        Named { what: what.into(), tensor }
    }

    fn error(&self, message: impl Into<String>) -> DataError {
        DataError::Array { what: self.what.clone(), message: message.into() }
    }

    /// `[100, 1, 8, 8] u8`.
    pub fn described(&self) -> String {
        format!("{:?} {}", self.tensor.dims(), dtype_name(self.tensor.dtype()))
    }
}

/// The features and (unless they are the features) the targets a reader found.
#[derive(Debug)]
pub(super) struct Raw {
    pub x: Named,
    pub y: Option<Named>,
}

/// Features and targets with the configuration's dtypes and example shape, rows checked.
pub(super) fn assemble(
    raw: Raw,
    dtype: Option<Element>,
    shape: Option<&[usize]>,
    target: Target,
) -> Result<Dataset, DataError> {
    let x = features(&raw.x, dtype, shape)?;
    let y = match (raw.y, target) {
        (_, Target::Input) => x.clone(),
        (Some(y), _) => targets(&y, target, &raw.x)?,
        (None, _) => return Err(raw.x.error("no targets were read for these features")),
    };
    Ok(Dataset::new(x, y))
}

pub(super) fn features(
    x: &Named,
    dtype: Option<Element>,
    shape: Option<&[usize]>,
) -> Result<Tensor, DataError> {
    let t = &x.tensor;
    if t.rank() == 0 {
        return Err(x.error(format!("expected an array of examples, found a scalar ({})", x.described())));
    }
    let converted = match (dtype, t.dtype()) {
        (Some(Element::I64), d) if d.is_float() => whole_numbers(x, "features")?,
        (Some(Element::I64), _) => t.to_dtype(DType::I64)?,
        // A true division, as torchvision's `ToTensor` does (candle's `/ 255.0` multiplies by
        // the rounded reciprocal).
        (_, DType::U8) => t.to_dtype(DType::F32)?.broadcast_div(&Tensor::new(255f32, t.device())?)?,
        (Some(Element::F32), _) => t.to_dtype(DType::F32)?,
        (None, d) if d.is_float() => t.to_dtype(DType::F32)?,
        (None, _) => t.to_dtype(DType::I64)?,
    };
    let Some(shape) = shape else { return Ok(converted) };
    let n = t.dim(0)?;
    let per_example: usize = t.dims()[1..].iter().product();
    if count(shape) != Some(per_example) {
        let wanted = count(shape).map_or("too many".to_string(), |n| n.to_string());
        return Err(x.error(format!(
            "`shape: {shape:?}` holds {wanted} values, but each example has {per_example} (shape {:?})",
            &t.dims()[1..]
        )));
    }
    Ok(converted.reshape([&[n], shape].concat())?)
}

pub(super) fn targets(y: &Named, target: Target, x: &Named) -> Result<Tensor, DataError> {
    let t = &y.tensor;
    let (rows_x, rows_y) = (x.tensor.dim(0)?, t.dims().first().copied().unwrap_or(0));
    if t.rank() == 0 || rows_x != rows_y {
        return Err(y.error(format!(
            "{} has {rows_x} examples, but the targets are {}: expected one per example",
            x.what,
            y.described()
        )));
    }
    if target == Target::Values {
        return Ok(t.to_dtype(DType::F32)?);
    }
    let t = if t.dtype().is_float() { whole_numbers(y, "class indices")? } else { t.to_dtype(DType::I64)? };
    // A column vector of labels, as `y.reshape(-1, 1)` leaves them, is still one label each.
    let t = if t.dims()[1..] == [1] { t.squeeze(1)? } else { t };
    let labels = t.flatten_all()?.to_vec1::<i64>()?;
    if let Some((i, v)) = labels.iter().enumerate().find(|(_, v)| **v < 0) {
        return Err(y.error(format!("class indices must be 0 or more; value {i} is {v}")));
    }
    Ok(t)
}

/// Floats that must be integers (class indices, token ids) as i64; the first that is not
/// is named.
fn whole_numbers(a: &Named, role: &str) -> Result<Tensor, DataError> {
    let values = a.tensor.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| v.fract() != 0.0 || !v.is_finite()) {
        let hint = if role == "class indices" { ": for regression set `target_dtype: f32`" } else { "" };
        return Err(a.error(format!("{role} must be whole numbers; value {i} is {v}{hint}")));
    }
    Ok(a.tensor.to_dtype(DType::I64)?)
}

/// The number of values in an array of `dims`, or `None` past `usize`: sizes read from a
/// file or a configuration are checked before anything is allocated.
pub(super) fn count(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, d| n.checked_mul(*d))
}

/// numpy's names, which people know their arrays by.
pub(super) fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::U8 => "u8",
        DType::U32 => "u32",
        DType::I16 => "i16",
        DType::I32 => "i32",
        DType::I64 => "i64",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F32 => "f32",
        DType::F64 => "f64",
        _ => "an 8-bit or smaller float",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn named(what: &str, t: Tensor) -> Named {
        Named::new(format!("`{what}`"), t)
    }

    #[test]
    fn pixels_scale_to_unit_range_and_integers_become_token_ids() {
        let px = Tensor::new(&[[0u8, 255], [51, 102]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[[1u8], [0]], &Device::Cpu).unwrap();
        let raw = Raw { x: named("x", px), y: Some(named("y", y)) };
        let d = assemble(raw, None, Some(&[1, 2]), Target::Classes).unwrap();
        assert_eq!(d.x.dims(), &[2, 1, 2]);
        assert_eq!(d.x.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [0., 1., 0.2, 0.4]);
        assert_eq!(d.y.to_vec1::<i64>().unwrap(), [1, 0]);
        let tokens = Tensor::new(&[[3i32, 4]], &Device::Cpu).unwrap();
        let d = assemble(Raw { x: named("t", tokens), y: None }, None, None, Target::Input).unwrap();
        assert_eq!((d.x.dtype(), d.y.dtype()), (DType::I64, DType::I64));
    }

    #[test]
    fn errors_name_the_array_and_what_was_found() {
        let x = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
        let err = |y: Tensor, shape: Option<&[usize]>| {
            let raw = Raw { x: named("X.npy", x.clone()), y: Some(named("y.npy", y)) };
            assemble(raw, None, shape, Target::Classes).unwrap_err().to_string()
        };
        let e = err(Tensor::new(&[0i64, 1], &Device::Cpu).unwrap(), None);
        assert_eq!(
            e,
            "`y.npy`: `X.npy` has 3 examples, but the targets are [2] i64: expected one per example"
        );
        let e = err(Tensor::new(&[0f32, 0.5, 1.], &Device::Cpu).unwrap(), None);
        assert!(
            e.ends_with(
                "class indices must be whole numbers; value 1 is 0.5: for regression set `target_dtype: f32`"
            ),
            "{e}"
        );
        let e = err(Tensor::new(&[0i64, -1, 1], &Device::Cpu).unwrap(), None);
        assert!(e.ends_with("class indices must be 0 or more; value 1 is -1"), "{e}");
        let e = err(Tensor::new(&[0i64, 1, 1], &Device::Cpu).unwrap(), Some(&[1, 8, 8]));
        assert_eq!(e, "`X.npy`: `shape: [1, 8, 8]` holds 64 values, but each example has 4 (shape [4])");
    }
}
