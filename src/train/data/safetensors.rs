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

/// The `__metadata__` of the safetensors file at `path` (empty when it has none), from its
/// header alone.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, DataError> {
    Ok(read_header(path)?.tensors.metadata().clone().unwrap_or_default())
}

/// A safetensors file opened and its header read, its data not: a reader takes each tensor's
/// bytes at `data_start` plus its offsets, when it wants them.
pub struct Header {
    pub file: std::fs::File,
    pub data_start: u64,
    /// The tensors' dtypes, shapes and offsets (checked against each other as the header is
    /// parsed, and their total against the file's size).
    pub tensors: ::safetensors::tensor::Metadata,
}

/// The header of the safetensors file at `path`, checked against the file's size before the
/// header itself is allocated, so a lying length cannot ask for more than the file holds.
pub fn read_header(path: &Path) -> Result<Header, DataError> {
    use std::os::unix::fs::FileExt;
    let shown = path.display().to_string();
    let io = |source| DataError::Io { path: shown.clone(), source };
    let bad = |msg: String| DataError::Array {
        what: format!("`{shown}`"),
        message: format!("not a safetensors file: {msg}"),
    };
    let (file, size) = files::open_regular(path).map_err(io)?;
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, 0).map_err(|_| bad(format!("{size} bytes, no header")))?;
    let n = u64::from_le_bytes(head);
    // The header is JSON of a few hundred bytes a tensor: 100 MB is the format's own bound.
    if n > size.saturating_sub(8) || n > 100_000_000 {
        return Err(bad(format!("a header of {n} bytes in a file of {size}")));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact_at(&mut header, 8).map_err(io)?;
    let tensors: ::safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(|e| bad(format!("its header: {e}")))?;
    let data_start = 8 + n;
    if data_start + tensors.data_len() as u64 != size {
        return Err(bad(format!(
            "its header describes {} bytes of data, the file has {}",
            tensors.data_len(),
            size - data_start
        )));
    }
    Ok(Header { file, data_start, tensors })
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
