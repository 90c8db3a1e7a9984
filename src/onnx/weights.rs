//! Weights for export and import: candle tensors (a lowered model's parameters, or a
//! safetensors file) as initializer values and back, and the exported model written to a file,
//! with its external data beside it.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use prost::Message;

use super::export::{Exported, ExternalData, Initializer, Weights};
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

/// A safetensors file (a `state_dict`, as `wick train` and `wick compile -o` write them). Each
/// tensor is dropped once converted, so a large model is not held twice (tinyllama's 4.4 GB).
pub fn read_safetensors(path: &Path) -> candle_core::Result<Weights> {
    let mut out = BTreeMap::new();
    for (key, tensor) in candle_core::safetensors::load(path, &Device::Cpu)? {
        out.append(&mut from_tensors([(&key, &tensor)])?);
    }
    Ok(out)
}

/// The model's bytes at `path`, replacing any file there only once they are all written.
pub fn write_model(model: &ModelProto, path: &Path) -> std::io::Result<()> {
    let bytes = model.encode_to_vec();
    crate::train::files::replace_file(path, |tmp| std::fs::write(tmp, &bytes))
}

/// The name of the external data file beside the model at `path`: `model.onnx.data`.
pub fn external_location(path: &Path) -> String {
    let name = path.file_name().map_or("model.onnx".into(), |n| n.to_string_lossy().into_owned());
    format!("{name}.data")
}

/// An exported model at `path`, and its external data at its location beside it: the weights
/// first, the model last, each file replacing the one there only once it is whole, so a model
/// file never names data that is not yet written. The weights are streamed from `weights`.
pub fn write_exported(exported: &Exported, weights: &Weights, path: &Path) -> io::Result<()> {
    if let Some(file) = &exported.external {
        let folder = path.parent().unwrap_or(Path::new(""));
        crate::train::files::replace_file(&folder.join(&file.location), |tmp| {
            write_external(file, weights, tmp)
        })?;
    }
    write_model(&exported.model, path)
}

/// The external weights at their offsets, zeros between them.
fn write_external(file: &ExternalData, weights: &Weights, tmp: &Path) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(tmp)?);
    let mut end = 0u64;
    for (key, offset) in &file.tensors {
        let value = weights
            .get(key)
            .ok_or_else(|| io::Error::other(format!("the weights have no tensor `{key}`")))?;
        io::copy(&mut io::repeat(0).take(offset.saturating_sub(end)), &mut out)?;
        value.write_le(|bytes| out.write_all(bytes))?;
        end = offset + value.byte_len();
    }
    out.into_inner().map_err(io::IntoInnerError::into_error)?.sync_data()
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
