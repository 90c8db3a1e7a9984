//! Weights for export and import: candle tensors (a lowered model's parameters, or a
//! safetensors file) as initializer values and back, and the exported model written to a file,
//! with its external data beside it.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use prost::Message;

use super::export::{Exported, ExternalData, Initializer, Weights};
use super::import::decode;
use super::proto::{DataType, ModelProto};

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

/// A safetensors file (a `state_dict`, as `wick train` and `wick compile -o` write them), read
/// a tensor at a time: a large model (tinyllama's 4.4 GB) is held once, as values, never also
/// as the file's bytes. Integer tensors become int64, float ones f32, as in [`from_tensors`].
pub fn read_safetensors(path: &Path) -> candle_core::Result<Weights> {
    use safetensors::Dtype;
    use std::os::unix::fs::FileExt;
    let header = crate::train::data::read_safetensors_header(path).map_err(candle_core::Error::wrap)?;
    let bad = |msg: String| candle_core::Error::msg(format!("not a safetensors file: {msg}"));
    let mut out = BTreeMap::new();
    for (key, info) in header.tensors.tensors() {
        let kind = match info.dtype {
            Dtype::F32 => DataType::Float,
            Dtype::F64 => DataType::Double,
            Dtype::F16 => DataType::Float16,
            Dtype::BF16 => DataType::Bfloat16,
            Dtype::I64 => DataType::Int64,
            Dtype::U64 => DataType::Uint64,
            Dtype::I32 => DataType::Int32,
            Dtype::U32 => DataType::Uint32,
            Dtype::I16 => DataType::Int16,
            Dtype::U16 => DataType::Uint16,
            Dtype::I8 => DataType::Int8,
            Dtype::U8 => DataType::Uint8,
            Dtype::BOOL => DataType::Bool,
            other => return Err(bad(format!("`{key}` is {other:?}, which wick does not read"))),
        };
        // The header's offsets and sizes were checked against each other and the file by
        // `read_safetensors_header`.
        let (from, to) = info.data_offsets;
        let mut bytes = vec![0u8; to - from];
        header.file.read_exact_at(&mut bytes, header.data_start + from as u64)?;
        let dims = info.shape.iter().map(|d| *d as i64).collect();
        out.insert(key, decode::le_values(kind, dims, &bytes));
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
/// `path` only once it is whole. Each tensor's bytes are made as it is written, so a large model
/// is not held twice.
pub fn write_safetensors(weights: &Weights, path: &Path) -> candle_core::Result<()> {
    let views = weights.iter().map(|(key, value)| (key, LeBytes::of(value)));
    crate::train::files::replace_file(path, |tmp| {
        safetensors::serialize_to_file(views, None, tmp).map_err(|e| std::io::Error::other(e.to_string()))
    })
    .map_err(candle_core::Error::wrap)
}

/// An initializer as safetensors sees a tensor: its values' bytes made when asked for.
struct LeBytes<'a> {
    value: &'a Initializer,
    shape: Vec<usize>,
}

impl<'a> LeBytes<'a> {
    fn of(value: &'a Initializer) -> LeBytes<'a> {
        LeBytes { value, shape: value.dims().iter().map(|d| usize::try_from(*d).unwrap_or(0)).collect() }
    }
}

impl safetensors::View for LeBytes<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        match self.value {
            Initializer::F32 { .. } => safetensors::Dtype::F32,
            Initializer::I64 { .. } => safetensors::Dtype::I64,
        }
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        self.value.le_bytes().into()
    }

    fn data_len(&self) -> usize {
        usize::try_from(self.value.byte_len()).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_safetensors_file_reads_as_candle_reads_it_and_a_broken_one_is_an_error() {
        let dir = std::env::temp_dir().join(format!("wick-onnx-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        let w = Tensor::new(&[[1.5f32, -2.25, 3.0], [0.1, 0.2, 0.3]], &Device::Cpu).unwrap();
        let ids = Tensor::new(&[7i64, -1], &Device::Cpu).unwrap();
        let half = Tensor::new(&[0.5f32, -8.0], &Device::Cpu).unwrap().to_dtype(DType::BF16).unwrap();
        let tensors: HashMap<String, Tensor> =
            [("w".to_string(), w), ("ids".to_string(), ids), ("half".to_string(), half)].into();
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let read = read_safetensors(&path).unwrap();
        assert_eq!(read, from_tensors(&tensors).unwrap());
        assert_eq!(read["half"], Initializer::F32 { dims: vec![2], data: vec![0.5, -8.0] });
        // Written back and read by candle: the same values, the integers as int64.
        let again = dir.join("again.safetensors");
        write_safetensors(&read, &again).unwrap();
        assert_eq!(read_safetensors(&again).unwrap(), read);
        let by_candle = candle_core::safetensors::load(&again, &Device::Cpu).unwrap();
        assert_eq!(from_tensors(&by_candle).unwrap(), read);
        assert_eq!(by_candle["ids"].dtype(), DType::I64);

        let bytes = std::fs::read(&path).unwrap();
        let broken = dir.join("broken.safetensors");
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for (cut, why) in [
            (bytes[..5].to_vec(), "no header"),
            (bytes[..bytes.len() - 1].to_vec(), "the file has"),
            ([&(u64::MAX).to_le_bytes()[..], &bytes[8..]].concat(), "a header of"),
            (
                [&bytes[..8], &bytes[8..8 + header].to_ascii_uppercase()[..], &bytes[8 + header..]].concat(),
                "its header",
            ),
        ] {
            std::fs::write(&broken, &cut).unwrap();
            let e = read_safetensors(&broken).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
