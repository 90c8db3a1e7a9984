//! Weights for export and import: candle tensors (a lowered model's parameters, or a
//! safetensors file) as initializer values and back, and the exported model written to a file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use prost::Message;

use super::export::{Initializer, Weights};
use super::proto::ModelProto;

/// Tensors by key as initializer values: integer tables as int64, every float type as f32.
pub fn from_tensors<'t>(
    tensors: impl IntoIterator<Item = (&'t String, &'t Tensor)>,
) -> candle_core::Result<Weights> {
    let mut out = BTreeMap::new();
    for (key, t) in tensors {
        let dims = t.dims().iter().map(|d| *d as i64).collect();
        let flat = t.to_device(&Device::Cpu)?.flatten_all()?;
        let value = match t.dtype() {
            DType::I64 | DType::U32 | DType::U8 => {
                Initializer::I64 { dims, data: flat.to_dtype(DType::I64)?.to_vec1()? }
            }
            _ => Initializer::F32 { dims, data: flat.to_dtype(DType::F32)?.to_vec1()? },
        };
        out.insert(key.clone(), value);
    }
    Ok(out)
}

/// A safetensors file (a `state_dict`, as `wick train` and `wick compile -o` write them).
pub fn read_safetensors(path: &Path) -> candle_core::Result<Weights> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)?;
    from_tensors(&tensors)
}

/// The model's bytes at `path`, replacing any file there only once they are all written.
pub fn write_model(model: &ModelProto, path: &Path) -> std::io::Result<()> {
    let bytes = model.encode_to_vec();
    crate::train::files::replace_file(path, |tmp| std::fs::write(tmp, &bytes))
}

/// Initializer values as candle tensors by key (the inverse of [`from_tensors`]).
pub fn to_tensors(weights: &Weights) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut tensors = HashMap::new();
    for (key, value) in weights {
        let dims: Vec<usize> = value.dims().iter().map(|d| usize::try_from(*d).unwrap_or(0)).collect();
        let tensor = match value {
            Initializer::F32 { data, .. } => Tensor::from_slice(data, dims, &Device::Cpu),
            Initializer::I64 { data, .. } => Tensor::from_slice(data, dims, &Device::Cpu),
        }
        .map_err(|e| candle_core::Error::msg(format!("`{key}`: {e}")))?;
        tensors.insert(key.clone(), tensor);
    }
    Ok(tensors)
}

/// Initializer values as a safetensors file (`wick import --weights-out`), replacing any file at
/// `path` only once it is whole.
pub fn write_safetensors(weights: &Weights, path: &Path) -> candle_core::Result<()> {
    let tensors = to_tensors(weights)?;
    crate::train::files::replace_file(path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp).map_err(|e| std::io::Error::other(e.to_string()))
    })
    .map_err(candle_core::Error::wrap)
}
