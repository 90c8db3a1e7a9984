//! Data sets stored as named tensors in a safetensors file.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::convert::{dtype_name, Named};
use super::DataError;
use crate::train::files;

/// The tensors `names` of the file at `path`, in that order.
pub(super) fn read(path: &Path, names: &[&str]) -> Result<Vec<Named>, DataError> {
    let shown = path.display().to_string();
    let mut tensors = read_all(path)?;
    let mut held: Vec<String> =
        tensors.iter().map(|(k, t)| format!("{k} {:?} {}", t.dims(), dtype_name(t.dtype()))).collect();
    held.sort();
    let mut found = Vec::new();
    for name in names {
        let Some(t) = tensors.remove(*name) else {
            let message = format!("no tensor `{name}`; the file holds {}", held.join(", "));
            return Err(DataError::Array { what: format!("`{shown}`"), message });
        };
        found.push(Named::new(format!("`{shown}` tensor `{name}`"), t));
    }
    Ok(found)
}

/// Every tensor of the safetensors file at `path`, on the CPU. The file is read whole (it is a
/// regular file, so that is its size) and the header's offsets and shapes are checked against
/// it before any tensor is made.
pub fn read_all(path: &Path) -> Result<HashMap<String, Tensor>, DataError> {
    let shown = path.display().to_string();
    let bytes = files::read_regular(path).map_err(|source| DataError::Io { path: shown.clone(), source })?;
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| DataError::Array {
        what: format!("`{shown}`"),
        message: format!("not a safetensors file ({e})"),
    })
}

/// The `__metadata__` of the safetensors file at `path` (empty when it has none).
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, DataError> {
    let shown = path.display().to_string();
    let bytes = files::read_regular(path).map_err(|source| DataError::Io { path: shown.clone(), source })?;
    let (_, header) = ::safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| DataError::Array {
        what: format!("`{shown}`"),
        message: format!("not a safetensors file ({e})"),
    })?;
    Ok(header.metadata().clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::data::test_dir;
    use candle_core::Tensor;
    use std::collections::HashMap;

    #[test]
    fn tensors_are_found_by_name() {
        let dir = test_dir("safetensors");
        let path = dir.join("d.safetensors");
        let tensors = HashMap::from([
            ("x".to_string(), Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu).unwrap()),
            ("y".to_string(), Tensor::new(&[1i64, 0], &Device::Cpu).unwrap()),
        ]);
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let got = read(&path, &["x", "y"]).unwrap();
        assert_eq!(got[1].tensor.to_vec1::<i64>().unwrap(), [1, 0]);
        assert!(got[0].what.ends_with("d.safetensors` tensor `x`"));
        let e = read(&path, &["images"]).unwrap_err().to_string();
        assert!(e.ends_with("no tensor `images`; the file holds x [2, 2] f32, y [2] i64"), "{e}");
    }
}
