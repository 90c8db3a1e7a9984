//! The file's bytes as checked messages: a model with a graph, unique tensor names, nodes in an
//! order where each reads only what is made before it, and constant tensors whose values are
//! exactly as many as their dims say, inside the file or in external data beside it. A file
//! that lies about any of these is refused here, with what it says and what was expected,
//! before anything is allocated from its numbers.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use prost::Message;

use crate::ir::tensor::DType;
use crate::onnx::export::Initializer;
use crate::onnx::proto::{DataType, GraphProto, ModelProto, NodeProto, StringStringEntryProto, TensorProto};

/// The graph of a model file, its nodes in a topological order.
pub fn graph(bytes: &[u8], max_nodes: usize) -> Result<GraphProto, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let model = ModelProto::decode(bytes).map_err(|e| format!("not an ONNX model (protobuf: {e})"))?;
    let mut graph = model.graph.ok_or("the model has no graph")?;
    if graph.node.len() > max_nodes {
        return Err(format!(
            "the graph has {} nodes, more than the {max_nodes} wick reads",
            graph.node.len()
        ));
    }
    unique_names(&graph)?;
    graph.node = topological(std::mem::take(&mut graph.node), &graph)?;
    Ok(graph)
}

/// Every tensor is made once: by an initializer, a graph input, or one node output.
fn unique_names(g: &GraphProto) -> Result<(), String> {
    let mut seen: HashSet<&str> = HashSet::new();
    for t in &g.initializer {
        if !seen.insert(&t.name) {
            return Err(format!("two initializers are named `{}`", t.name));
        }
    }
    // Older files list the initializers among the inputs too: that is the same tensor.
    let initializers = seen.clone();
    for i in &g.input {
        if !initializers.contains(i.name.as_str()) && !seen.insert(&i.name) {
            return Err(format!("two graph inputs are named `{}`", i.name));
        }
    }
    for n in &g.node {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if !seen.insert(o) {
                return Err(format!("tensor `{o}` (an output of node `{}`) is made twice", n.name));
            }
        }
    }
    Ok(())
}

/// The nodes in file order when that order is topological (as the format requires), else
/// sorted so; a node reading a tensor nothing makes, or nodes in a cycle, are errors.
fn topological(nodes: Vec<NodeProto>, g: &GraphProto) -> Result<Vec<NodeProto>, String> {
    let mut made: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    made.extend(g.input.iter().map(|i| i.name.as_str()));
    let producer: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .flat_map(|(k, n)| n.output.iter().filter(|o| !o.is_empty()).map(move |o| (o.as_str(), k)))
        .collect();
    for n in &nodes {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            if !made.contains(i.as_str()) && !producer.contains_key(i.as_str()) {
                return Err(format!(
                    "node `{}` ({}) reads tensor `{i}`, which nothing makes",
                    n.name, n.op_type
                ));
            }
        }
    }
    // Kahn's order, taking the earliest ready node first so a sorted file keeps its order.
    let mut waiting: Vec<usize> = nodes
        .iter()
        .map(|n| {
            n.input.iter().filter(|i| producer.contains_key(i.as_str()) && !made.contains(i.as_str())).count()
        })
        .collect();
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, n) in nodes.iter().enumerate() {
        for i in n.input.iter().filter(|i| producer.contains_key(i.as_str()) && !made.contains(i.as_str())) {
            readers.entry(i.as_str()).or_default().push(k);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        waiting.iter().enumerate().filter(|(_, w)| **w == 0).map(|(k, _)| k).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(k) = ready.pop_first() {
        order.push(k);
        for o in &nodes[k].output {
            for r in readers.get(o.as_str()).into_iter().flatten() {
                waiting[*r] -= 1;
                if waiting[*r] == 0 {
                    ready.insert(*r);
                }
            }
        }
    }
    if order.len() < nodes.len() {
        let stuck: Vec<&str> =
            (0..nodes.len()).filter(|k| waiting[*k] > 0).take(3).map(|k| nodes[k].name.as_str()).collect();
        return Err(format!("the nodes form a cycle (through {})", stuck.join(", ")));
    }
    let mut slots: Vec<Option<NodeProto>> = nodes.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|k| slots[k].take()).collect())
}

/// wick's element type for an ONNX one.
pub fn dtype(elem: i32) -> Result<DType, String> {
    Ok(match DataType::try_from(elem) {
        Ok(DataType::Float) => DType::F32,
        Ok(DataType::Double) => DType::F64,
        Ok(DataType::Float16) => DType::F16,
        Ok(DataType::Bfloat16) => DType::BF16,
        Ok(DataType::Int64) => DType::I64,
        Ok(DataType::Int32) => DType::I32,
        Ok(DataType::Bool) => DType::Bool,
        Ok(other) => return Err(format!("element type {other:?} has no wick dtype")),
        Err(_) => return Err(format!("element type {elem} is not an ONNX one")),
    })
}

/// The files of external data beside a model, as its tensors name them (ONNX's
/// `data_location` EXTERNAL): each opened once, and only inside the model's folder. Together
/// the tensors read at most each file's size from it, so a model whose tensors all name the
/// same large span cannot make wick allocate that span over and over.
pub struct ExternalFiles {
    /// The model file's folder, against which locations are resolved.
    folder: PathBuf,
    /// Each file opened, with its size and the bytes read from it so far.
    open: HashMap<String, (File, u64, u64)>,
}

impl ExternalFiles {
    /// The external data of the model file `model_file`.
    pub fn beside(model_file: &str) -> ExternalFiles {
        let folder = Path::new(model_file).parent().filter(|f| !f.as_os_str().is_empty());
        ExternalFiles { folder: folder.unwrap_or(Path::new(".")).to_path_buf(), open: HashMap::new() }
    }

    /// The bytes read from the files so far, all together.
    pub fn read(&self) -> u64 {
        self.open.values().map(|(_, _, read)| read).sum()
    }

    /// The `expected` bytes a tensor's `external_data` entries point to. The location must be a
    /// file inside the model's folder, and the length (when given) and the span within the file
    /// are checked before anything is allocated.
    fn bytes(&mut self, entries: &[StringStringEntryProto], expected: u64) -> Result<Vec<u8>, String> {
        let entry = |key: &str| entries.iter().find(|e| e.key == key).map(|e| e.value.as_str());
        let location = entry("location").ok_or("its values are external, but it names no location")?;
        let number = |key: &str| -> Result<Option<u64>, String> {
            entry(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("external data `{location}`: {key} `{v}` is not a byte count"))
                })
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        if let Some(length) = number("length")? {
            if length != expected {
                return Err(format!(
                    "external data `{location}`: length {length} bytes, but its dims and type take {expected}"
                ));
            }
        }
        let (file, size, read) = self.file(location)?;
        let end = offset.checked_add(expected).filter(|end| *end <= *size).ok_or_else(|| {
            format!(
                "external data `{location}`: bytes {offset} to {} are past the file's end ({size} bytes)",
                offset.saturating_add(expected)
            )
        })?;
        if *read + expected > *size {
            return Err(format!(
                "external data `{location}`: the tensors read more than its {size} bytes (their spans overlap)"
            ));
        }
        *read += expected;
        let mut bytes = Vec::new();
        let len =
            usize::try_from(expected).map_err(|_| format!("external data `{location}`: {expected} bytes"))?;
        bytes.try_reserve_exact(len).map_err(|_| {
            format!("external data `{location}`: {expected} bytes are more than memory holds")
        })?;
        bytes.resize(len, 0);
        file.read_exact_at(&mut bytes, offset)
            .map_err(|e| format!("external data `{location}`: bytes {offset} to {end}: {e}"))?;
        Ok(bytes)
    }

    /// The file at `location`, opened (once) if it is a regular file inside the model's folder:
    /// not an absolute path, no `..`, no link leading out.
    fn file(&mut self, location: &str) -> Result<&mut (File, u64, u64), String> {
        if !self.open.contains_key(location) {
            let inside = !location.is_empty()
                && Path::new(location)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            if !inside {
                return Err(format!(
                    "external data location `{location}` is not a path inside the model's folder"
                ));
            }
            let path = self.folder.join(location);
            let cannot = |e: std::io::Error| format!("external data `{location}` ({}): {e}", path.display());
            let real = path.canonicalize().map_err(cannot)?;
            let folder = self.folder.canonicalize().map_err(cannot)?;
            if !real.starts_with(&folder) {
                return Err(format!(
                    "external data `{location}` leads outside the model's folder, to {}",
                    real.display()
                ));
            }
            let (file, size) = crate::train::files::open_regular(&real).map_err(cannot)?;
            self.open.insert(location.to_string(), (file, size, 0));
        }
        self.open.get_mut(location).ok_or_else(|| format!("external data `{location}` is not open"))
    }
}

/// A constant's values, moved out of the message (or read from its external data in `files`):
/// floats as f32, integers as i64.
pub fn tensor_value(t: &mut TensorProto, files: &mut ExternalFiles) -> Result<Initializer, String> {
    let what = |msg: String| format!("constant `{}`: {msg}", t.name);
    let mut count: usize = 1;
    for d in &t.dims {
        let d = usize::try_from(*d).map_err(|_| what(format!("negative dim {d} in {:?}", t.dims)))?;
        count = count.checked_mul(d).ok_or_else(|| what(format!("dims {:?} overflow", t.dims)))?;
    }
    let dims = t.dims.clone();
    let kind = DataType::try_from(t.data_type)
        .map_err(|_| what(format!("element type {} is not an ONNX one", t.data_type)))?;
    let width = width(kind).ok_or_else(|| what(format!("element type {kind:?} is not read")))?;
    if t.data_location == 1 || !t.external_data.is_empty() {
        let expected = count.checked_mul(width).ok_or_else(|| what(format!("dims {:?} overflow", t.dims)))?;
        t.raw_data = files.bytes(&t.external_data, expected as u64).map_err(what)?;
    }
    let raw = std::mem::take(&mut t.raw_data);
    let check = |found: usize| {
        if found == count {
            Ok(())
        } else {
            Err(what(format!("dims {:?} hold {count} values, but the tensor has {found}", t.dims)))
        }
    };
    if !raw.is_empty() {
        check(raw.len() / width)?;
        if !raw.len().is_multiple_of(width) {
            return Err(what(format!("{} bytes of data are not whole {width}-byte values", raw.len())));
        }
        return Ok(le_values(kind, dims, &raw));
    }
    Ok(match kind {
        DataType::Float => {
            check(t.float_data.len())?;
            Initializer::F32 { dims, data: std::mem::take(&mut t.float_data) }
        }
        DataType::Double => {
            check(t.double_data.len())?;
            Initializer::F32 { dims, data: t.double_data.iter().map(|v| *v as f32).collect() }
        }
        DataType::Float16 | DataType::Bfloat16 => {
            check(t.int32_data.len())?;
            let bf = kind == DataType::Bfloat16;
            let data = t
                .int32_data
                .iter()
                .map(|v| {
                    let bits = *v as u16;
                    if bf {
                        f32::from_bits(u32::from(bits) << 16)
                    } else {
                        f16_to_f32(bits)
                    }
                })
                .collect();
            Initializer::F32 { dims, data }
        }
        DataType::Int64 | DataType::Uint64 => {
            check(t.int64_data.len())?;
            Initializer::I64 { dims, data: std::mem::take(&mut t.int64_data) }
        }
        _ => {
            check(t.int32_data.len())?;
            Initializer::I64 { dims, data: t.int32_data.iter().map(|v| i64::from(*v)).collect() }
        }
    })
}

/// The bytes one value of `kind` takes, for the kinds wick reads.
pub fn width(kind: DataType) -> Option<usize> {
    Some(match kind {
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Double | DataType::Int64 | DataType::Uint64 => 8,
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => 2,
        DataType::Int8 | DataType::Uint8 | DataType::Bool => 1,
        _ => return None,
    })
}

/// Little-endian values of `kind` (one that [`width`] reads) as an initializer: floats as f32,
/// integers as i64. A partial value at the end is left out: the caller checks the length.
pub fn le_values(kind: DataType, dims: Vec<i64>, raw: &[u8]) -> Initializer {
    let width = width(kind).unwrap_or(1);
    let words = raw.chunks_exact(width);
    match kind {
        DataType::Float => Initializer::F32 {
            dims,
            data: words.map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect(),
        },
        DataType::Double => {
            Initializer::F32 { dims, data: words.map(|w| f64::from_le_bytes(array8(w)) as f32).collect() }
        }
        DataType::Float16 => Initializer::F32 {
            dims,
            data: words.map(|w| f16_to_f32(u16::from_le_bytes([w[0], w[1]]))).collect(),
        },
        DataType::Bfloat16 => Initializer::F32 {
            dims,
            data: words.map(|w| f32::from_bits(u32::from(u16::from_le_bytes([w[0], w[1]])) << 16)).collect(),
        },
        DataType::Int64 | DataType::Uint64 => {
            Initializer::I64 { dims, data: words.map(|w| i64::from_le_bytes(array8(w))).collect() }
        }
        DataType::Int32 => Initializer::I64 {
            dims,
            data: words.map(|w| i64::from(i32::from_le_bytes([w[0], w[1], w[2], w[3]]))).collect(),
        },
        DataType::Uint32 => Initializer::I64 {
            dims,
            data: words.map(|w| i64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))).collect(),
        },
        DataType::Int16 => Initializer::I64 {
            dims,
            data: words.map(|w| i64::from(i16::from_le_bytes([w[0], w[1]]))).collect(),
        },
        DataType::Uint16 => Initializer::I64 {
            dims,
            data: words.map(|w| i64::from(u16::from_le_bytes([w[0], w[1]]))).collect(),
        },
        DataType::Int8 => Initializer::I64 { dims, data: words.map(|w| i64::from(w[0] as i8)).collect() },
        _ => Initializer::I64 { dims, data: words.map(|w| i64::from(w[0])).collect() },
    }
}

fn array8(w: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&w[..8]);
    a
}

/// IEEE half to single precision (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise the fraction.
            let shift = f.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((f << shift) & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values_convert_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn a_tensor_whose_data_disagrees_with_its_dims_is_refused() {
        let mut t = TensorProto {
            name: "w".into(),
            dims: vec![2, 3],
            data_type: DataType::Float as i32,
            raw_data: vec![0; 20],
            ..TensorProto::default()
        };
        let files = &mut ExternalFiles::beside("m.onnx");
        let e = tensor_value(&mut t, files).unwrap_err();
        assert!(e.contains("hold 6 values, but the tensor has 5"), "{e}");
        let mut huge = TensorProto { dims: vec![i64::MAX, 4], data_type: 1, ..TensorProto::default() };
        assert!(tensor_value(&mut huge, files).unwrap_err().contains("overflow"));
    }
}
