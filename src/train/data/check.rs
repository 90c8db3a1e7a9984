//! Before training starts: does the data fit the model? Each example's shape and dtype must
//! be what the spec's input takes past its batch axis, and class indices must name classes
//! the output has. The errors name both sides and, where one key would fix it, that key.

use candle_core::{DType, Tensor};

use super::convert::dtype_name;
use super::{DataError, Dataset, Names, Role};
use crate::ir::tensor::DType as SpecDType;
use crate::lower::executor::InputSlot;

/// The features of `data` against the lowered model's input `input` (batch axis first).
pub fn check_fits(data: &Dataset, input: &InputSlot) -> Result<(), DataError> {
    check_array(&data.x, None, &input.name, &input.dims, input.dtype)
}

/// The features of `data` against an input `name` of shape `dims` (batch axis first).
pub fn check_input(data: &Dataset, name: &str, dims: &[usize], dtype: SpecDType) -> Result<(), DataError> {
    check_array(&data.x, None, name, dims, dtype)
}

/// The named form's arrays against the lowered model's inputs: every input fed by exactly one
/// array of `data.inputs`, each of its shape and kind of element.
pub fn check_named(
    data: &Dataset,
    names: &Names,
    model: &str,
    inputs: &[InputSlot],
) -> Result<(), DataError> {
    let (x, y) = names.first();
    let arrays: Vec<(&str, &Tensor)> =
        data.named(x, y).filter(|(_, role, _)| *role == Role::Input).map(|(n, _, t)| (n, t)).collect();
    let listed = |names: &mut dyn Iterator<Item = &str>| {
        names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    };
    if let Some((extra, _)) = arrays.iter().find(|(n, _)| !inputs.iter().any(|i| i.name == *n)) {
        return Err(DataError::Mismatch(format!(
            "`data.inputs` names `{extra}`, which is not an input of `{model}` (its inputs are {})",
            listed(&mut inputs.iter().map(|i| i.name.as_str()))
        )));
    }
    for input in inputs {
        let Some((_, t)) = arrays.iter().find(|(n, _)| *n == input.name) else {
            return Err(DataError::Mismatch(format!(
                "the spec's input `{}` has no array: add it to `data.inputs` (which names {})",
                input.name,
                listed(&mut arrays.iter().map(|(n, _)| *n))
            )));
        };
        let key = names.inputs.iter().find(|(n, _)| *n == input.name).map(|(_, k)| k.join(", "));
        check_array(t, key.as_deref(), &input.name, &input.dims, input.dtype)?;
    }
    Ok(())
}

/// The examples of `t` (the array `key` of the named form, or the one-array form's features)
/// against an input `name` of shape `dims` (batch axis first).
fn check_array(
    t: &Tensor,
    key: Option<&str>,
    name: &str,
    dims: &[usize],
    dtype: SpecDType,
) -> Result<(), DataError> {
    let example = t.dims().get(1..).unwrap_or(&[]);
    let Some(wanted) = dims.get(1..) else {
        return Err(DataError::Mismatch(format!(
            "the spec's input `{name}` is a scalar; training needs a batch axis first"
        )));
    };
    let (data_float, input_float) = (t.dtype().is_float(), dtype.is_float());
    if example == wanted && data_float == input_float {
        return Ok(());
    }
    let mut hints = Vec::new();
    let (have, need) = (example.iter().product::<usize>(), wanted.iter().product::<usize>());
    if example != wanted {
        hints.push(match (have == need, key) {
            (true, None) => format!("set `data.shape: {wanted:?}` to reshape each example"),
            (true, Some(_)) => format!("reshape it to {wanted:?} in the spec, or store it so"),
            (false, _) => format!(
                "each example holds {have} values and the input takes {need}: check the data's \
                 features or the spec's input"
            ),
        });
    }
    match (data_float, input_float) {
        (true, false) => hints.push("the input takes integer ids: set `data.dtype: i64`".into()),
        (false, true) => hints.push("the input takes floats: set `data.dtype: f32`".into()),
        _ => {}
    }
    let subject = match key {
        None => "the data's examples".to_string(),
        Some(key) => format!("the examples of `{key}` (`data.inputs.{name}`)"),
    };
    Err(DataError::Mismatch(format!(
        "{subject} are {example:?} ({}) but the spec's input `{}` takes {} ({}): {}",
        dtype_name(t.dtype()),
        name,
        with_batch(wanted),
        dtype,
        hints.join("; ")
    )))
}

/// Class-index targets against an output with `classes` classes (its class axis), so that
/// a label past the last class is an error here rather than an index error mid-epoch.
pub fn check_classes(data: &Dataset, output: &str, classes: usize) -> Result<(), DataError> {
    check_class_indices(&data.y, output, classes)
}

/// [`check_classes`] for one target tensor.
pub fn check_class_indices(y: &Tensor, output: &str, classes: usize) -> Result<(), DataError> {
    if y.dtype() != DType::I64 {
        return Ok(());
    }
    let Some(top) = y.flatten_all()?.to_vec1::<i64>()?.into_iter().max() else { return Ok(()) };
    if top < classes as i64 {
        return Ok(());
    }
    Err(DataError::Mismatch(format!(
        "the targets hold class indices up to {top}, but the output `{output}` has {classes} classes \
         (0 to {}): check `data.target` or the spec's class count",
        classes.saturating_sub(1)
    )))
}

/// `[N, 1, 8, 8]`: the batch axis, whatever its bound size, shown as `N`.
fn with_batch(rest: &[usize]) -> String {
    let dims: Vec<String> =
        std::iter::once("N".to_string()).chain(rest.iter().map(usize::to_string)).collect();
    format!("[{}]", dims.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn data(shape: &[usize], dtype: DType) -> Dataset {
        let x = Tensor::zeros(shape, dtype, &Device::Cpu).unwrap();
        Dataset::new(x, Tensor::new(&[0i64, 2], &Device::Cpu).unwrap())
    }

    fn fits(data: &Dataset, dims: &[usize], dtype: SpecDType) -> Result<(), DataError> {
        check_input(data, "x", dims, dtype)
    }

    #[test]
    fn matching_shapes_fit_whatever_the_batch() {
        assert!(fits(&data(&[2, 1, 8, 8], DType::F32), &[10, 1, 8, 8], SpecDType::F32).is_ok());
        assert!(fits(&data(&[2, 16], DType::I64), &[4, 16], SpecDType::I64).is_ok());
    }

    #[test]
    fn a_flat_example_is_told_the_shape_to_set() {
        let e = fits(&data(&[2, 64], DType::F32), &[10, 1, 8, 8], SpecDType::F32);
        assert_eq!(
            e.unwrap_err().to_string(),
            "the data's examples are [64] (f32) but the spec's input `x` takes [N, 1, 8, 8] (f32): \
             set `data.shape: [1, 8, 8]` to reshape each example"
        );
    }

    #[test]
    fn sizes_and_dtypes_that_differ_are_both_named() {
        let e = fits(&data(&[2, 4], DType::F32), &[3, 16], SpecDType::I64).unwrap_err().to_string();
        assert_eq!(
            e,
            "the data's examples are [4] (f32) but the spec's input `x` takes [N, 16] (i64): each \
             example holds 4 values and the input takes 16: check the data's features or the spec's \
             input; the input takes integer ids: set `data.dtype: i64`"
        );
    }

    #[test]
    fn the_digits_fit_a_lowered_cnn_once_reshaped() {
        let spec = "dim N = 4\nmodel Cnn {\n input x: [N, 1, 8, 8]\n output logits = x |> \
                    [Conv2d(4, 3, padding=1), ReLU, Flatten, Linear(10)]\n}";
        let net = crate::Model::from_source("cnn.wick", spec, &crate::Options::default())
            .unwrap()
            .build(&Device::Cpu, DType::F32)
            .unwrap();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let load = |yaml: &str| {
            let config = serde_yaml::from_str(yaml).unwrap();
            super::super::load(&config, repo, 0, &Device::Cpu).unwrap().train
        };
        let flat = load("{csv: data/digits8x8.csv, target: digit}");
        let e = check_fits(&flat, &net.inputs()[0]).unwrap_err().to_string();
        assert!(e.ends_with("set `data.shape: [1, 8, 8]` to reshape each example"), "{e}");
        let images = load("{csv: data/digits8x8.csv, target: digit, shape: [1, 8, 8]}");
        check_fits(&images, &net.inputs()[0]).unwrap();
        check_classes(&images, "logits", 10).unwrap();
    }

    #[test]
    fn labels_past_the_last_class_are_refused() {
        let d = data(&[2, 4], DType::F32);
        assert!(check_classes(&d, "logits", 3).is_ok());
        let e = check_classes(&d, "logits", 2).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "the targets hold class indices up to 2, but the output `logits` has 2 classes (0 to 1)"
            ),
            "{e}"
        );
    }
}
