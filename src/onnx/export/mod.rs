//! The exporter: each node of the graph, in topological order, becomes one or more standard
//! ONNX nodes through its op's mapping (one family per file beside this one), in eval mode.
//!
//! Tensors are named after the layers that make them (`layer1.0.conv1`), weights are
//! initializers under their `state_dict` keys, dims bound at compile time are fixed sizes and
//! the others named dynamic dims. Every node is mapped before anything is returned: an op
//! without a mapping is an error naming its layer, all such layers in one error.

mod activation;
mod attention;
mod movement;
mod nn;
mod norm;
mod rnn;
mod sequence;
mod style;
mod tensor;
mod window;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io;

use super::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::ir::dim::{Bindings, Dim};
use crate::ir::graph::{Graph, Node, NodeId, TensorRef};
use crate::ir::tensor::{DType, TensorType};

/// The operator set written unless asked otherwise: the first with `LayerNormalization`.
pub const DEFAULT_OPSET: i64 = 17;
/// The operator sets export knows the semantics of (LayerNormalization needs 17; 18 moved
/// `Split`'s and the reductions' arguments, which export writes in both forms' shared subset).
pub const OPSETS: std::ops::RangeInclusive<i64> = 17..=20;

/// A weight's values as export writes them.
#[derive(Clone, Debug, PartialEq)]
pub enum Initializer {
    F32 { dims: Vec<i64>, data: Vec<f32> },
    I64 { dims: Vec<i64>, data: Vec<i64> },
}

impl Initializer {
    /// The bytes its values take in a file.
    pub fn byte_len(&self) -> u64 {
        match self {
            Initializer::F32 { data, .. } => 4 * data.len() as u64,
            Initializer::I64 { data, .. } => 8 * data.len() as u64,
        }
    }

    pub fn dims(&self) -> &[i64] {
        match self {
            Initializer::F32 { dims, .. } | Initializer::I64 { dims, .. } => dims,
        }
    }

    /// Its values as little-endian bytes, handed to `write` a bounded piece at a time, so a
    /// large weight is written to a file without a second copy of it in memory.
    pub fn write_le(&self, write: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        match self {
            Initializer::F32 { data, .. } => write_pieces(data, f32::to_le_bytes, write),
            Initializer::I64 { data, .. } => write_pieces(data, i64::to_le_bytes, write),
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Initializer::F32 { .. } => DataType::Float,
            Initializer::I64 { .. } => DataType::Int64,
        }
    }

    /// Its values as little-endian bytes, in memory.
    pub fn le_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.byte_len()).unwrap_or(0));
        // Writing to memory does not fail.
        let _ = self.write_le(|b| {
            bytes.extend_from_slice(b);
            Ok(())
        });
        bytes
    }

    /// The tensor with its values inside the message.
    fn proto(&self, name: String) -> TensorProto {
        TensorProto {
            dims: self.dims().to_vec(),
            data_type: self.data_type() as i32,
            name,
            raw_data: self.le_bytes(),
            ..TensorProto::default()
        }
    }
}

/// `values` as bytes, `PIECE` values at a time.
fn write_pieces<T: Copy, const W: usize>(
    values: &[T],
    bytes_of: fn(T) -> [u8; W],
    mut write: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    const PIECE: usize = 1 << 14;
    let mut bytes = Vec::with_capacity(W * PIECE.min(values.len()));
    for piece in values.chunks(PIECE) {
        bytes.clear();
        bytes.extend(piece.iter().flat_map(|v| bytes_of(*v)));
        write(&bytes)?;
    }
    Ok(())
}

/// Where export puts the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement<'a> {
    /// Inside the model: a model past 2 GiB is refused ([`ExportError::TooLarge`]).
    Inline,
    /// In the file `location` beside the model (ONNX external data), each weight of at least
    /// [`EXTERNAL_MIN_BYTES`]; `location` is relative to the model's folder.
    External(&'a str),
    /// Inside the model, unless the model would then pass 2 GiB: then as `External`.
    Auto(&'a str),
}

/// Weights smaller than this stay inside the model even with external data (onnx's
/// `save_model` threshold): biases and norms cost a file offset more than their bytes.
pub const EXTERNAL_MIN_BYTES: u64 = 1024;

/// An exported model, and the weights it reads from a file beside it.
#[derive(Debug)]
pub struct Exported {
    pub model: ModelProto,
    /// `None` when every weight is inside the model.
    pub external: Option<ExternalData>,
}

/// The file of external data an exported model names: its location relative to the model's
/// folder, each weight's key and byte offset in file order, and its size.
#[derive(Debug, Default)]
pub struct ExternalData {
    pub location: String,
    pub tensors: Vec<(String, u64)>,
    pub bytes: u64,
}

impl ExternalData {
    /// `value` placed after the weights before it, as a tensor naming its place. A tensor over 1
    /// MiB starts on a 64 KiB boundary, as torch.onnx places them (so a reader can map it
    /// from the file); the others on 8 bytes, their elements' alignment.
    fn place(&mut self, key: String, value: &Initializer) -> TensorProto {
        let len = value.byte_len();
        let align = if len > 1 << 20 { 1 << 16 } else { 8 };
        let offset = self.bytes.next_multiple_of(align);
        self.bytes = offset + len;
        self.tensors.push((key.clone(), offset));
        let entry = |key: &str, value: String| StringStringEntryProto { key: key.into(), value };
        TensorProto {
            dims: value.dims().to_vec(),
            data_type: value.data_type() as i32,
            name: key,
            external_data: vec![
                entry("location", self.location.clone()),
                entry("offset", offset.to_string()),
                entry("length", len.to_string()),
            ],
            data_location: 1,
            ..TensorProto::default()
        }
    }
}

/// The model's weights by `state_dict` key.
pub type Weights = BTreeMap<String, Initializer>;

/// Why a graph could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Layers whose op has no ONNX mapping, or whose configuration has none: each with why.
    #[error("cannot export {} layer{}:\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, LayerList(.0))]
    Layers(Vec<LayerError>),
    #[error("opset {0} is not supported: export writes opsets {min} to {max}", min = OPSETS.start(), max = OPSETS.end())]
    Opset(i64),
    #[error("the graph has errors: compile the spec and fix them first")]
    Failed,
    /// More bytes than one protobuf message holds, with the weights inside it.
    #[error(
        "the model takes {:.2} GiB: an ONNX file holds at most 2 GiB (protobuf's limit on one message); write its weights as external data beside it (`wick export` does so by itself)",
        *.0 as f64 / (1u64 << 30) as f64
    )]
    TooLarge(u64),
}

/// protobuf's limit on one message's size, and so an ONNX file's without external data.
pub const MAX_FILE_BYTES: u64 = i32::MAX as u64;

/// One layer that cannot be exported.
#[derive(Debug)]
pub struct LayerError {
    pub path: String,
    pub kind: String,
    pub message: String,
}

struct LayerList<'a>(&'a [LayerError]);

impl fmt::Display for LayerList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in self.0 {
            writeln!(f, "  `{}` ({}): {}", e.path, e.kind, e.message)?;
        }
        Ok(())
    }
}

/// What a mapping returns: its output tensors' names, or why the layer cannot be exported.
pub(super) type Mapped = Result<Vec<String>, String>;

/// The ONNX mapping of the op registered as `kind`, if it has one.
fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    activation::mapping(kind)
        .or_else(|| nn::mapping(kind))
        .or_else(|| norm::mapping(kind))
        .or_else(|| tensor::mapping(kind))
        .or_else(|| attention::mapping(kind))
        .or_else(|| sequence::mapping(kind))
        .or_else(|| rnn::mapping(kind))
        .or_else(|| style::mapping(kind))
        .or_else(|| movement::mapping(kind))
        .or_else(|| window::mapping(kind))
}

/// `graph` with `weights` as an ONNX model of operator set `opset`, in eval mode, its weights
/// inside it.
pub fn export(graph: &Graph, weights: &Weights, opset: i64) -> Result<ModelProto, ExportError> {
    export_within(graph, weights, opset, Placement::Inline, MAX_FILE_BYTES).map(|e| e.model)
}

/// [`export`], with the weights placed as `placement` says; a model with external data is
/// written by [`super::weights::write_exported`], which streams them to their file.
pub fn export_placed(
    graph: &Graph,
    weights: &Weights,
    opset: i64,
    placement: Placement,
) -> Result<Exported, ExportError> {
    export_within(graph, weights, opset, placement, MAX_FILE_BYTES)
}

/// [`export_placed`], refusing a model file of more than `limit` bytes.
fn export_within(
    graph: &Graph,
    weights: &Weights,
    opset: i64,
    placement: Placement,
    limit: u64,
) -> Result<Exported, ExportError> {
    if !OPSETS.contains(&opset) {
        return Err(ExportError::Opset(opset));
    }
    if graph.order.iter().any(|id| graph.node(*id).failed()) {
        return Err(ExportError::Failed);
    }
    let (location, auto) = match placement {
        Placement::Inline => (None, false),
        Placement::External(location) => (Some(location), false),
        Placement::Auto(location) => (Some(location), true),
    };
    // Checked before any initializer is copied: a model past the limit (tinyllama_1_1b's 4.4
    // GB) is refused without making a second copy of its weights first.
    let weight_bytes: u64 = weights.values().map(Initializer::byte_len).sum();
    if location.is_none() && weight_bytes > limit {
        return Err(ExportError::TooLarge(weight_bytes));
    }
    let mut out = Emitter {
        bindings: graph.bindings(),
        opset,
        weights,
        nodes: Vec::new(),
        initializers: Vec::new(),
        declared: Vec::new(),
        taken: HashSet::new(),
        external: location.map(|l| ExternalData { location: l.to_string(), ..ExternalData::default() }),
    };
    let mut names: HashMap<TensorRef, String> = HashMap::new();
    let mut errors = Vec::new();
    for (name, id) in &graph.inputs {
        out.taken.insert(name.clone());
        names.insert(TensorRef { node: *id, port: 0 }, name.clone());
    }
    for id in &graph.order {
        let node = graph.node(*id);
        if graph.inputs.iter().any(|(_, i)| i == id) {
            continue;
        }
        match map_node(&mut out, graph, *id, &names) {
            Ok(outputs) => {
                for (port, name) in outputs.into_iter().enumerate() {
                    names.insert(TensorRef { node: *id, port: port as u16 }, name);
                }
            }
            Err(message) => {
                errors.push(LayerError { path: display_path(node), kind: node.kind.to_string(), message })
            }
        }
    }
    if !errors.is_empty() {
        return Err(ExportError::Layers(errors));
    }
    let input =
        graph.inputs.iter().map(|(name, id)| out.value_info(name, &graph.node(*id).outputs[0])).collect();
    let mut output = Vec::new();
    for (name, r) in &graph.outputs {
        let ty = &graph.node(r.node).outputs[r.port as usize];
        let inner = names.get(r).cloned().unwrap_or_default();
        // Graph outputs carry the spec's names: an Identity renames the last layer's tensor.
        out.nodes.push(node_proto(
            "Identity",
            format!("output.{name}"),
            vec![inner],
            vec![name.clone()],
            vec![],
        ));
        output.push(out.value_info(name, ty));
    }
    let graph_proto = GraphProto {
        node: std::mem::take(&mut out.nodes),
        name: graph.name.clone(),
        initializer: std::mem::take(&mut out.initializers),
        value_info: std::mem::take(&mut out.declared),
        input,
        output,
        ..GraphProto::default()
    };
    let mut model = ModelProto {
        ir_version: if opset >= 19 { 9 } else { 8 },
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
        producer_name: "wick".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph_proto),
        ..ModelProto::default()
    };
    let mut external = out.external.take().filter(|e| !e.tensors.is_empty());
    if let Some(file) = external.as_ref().filter(|_| auto) {
        // The model with its external weights moved inside, at most: each gains a field tag,
        // a length and its bytes, and loses its external entries.
        let inside = prost::Message::encoded_len(&model) as u64
            + file
                .tensors
                .iter()
                .map(|(key, _)| 11 + weights.get(key).map_or(0, Initializer::byte_len))
                .sum::<u64>();
        if inside <= limit {
            bring_inside(&mut model, weights);
            external = None;
        }
    }
    match prost::Message::encoded_len(&model) as u64 {
        bytes if bytes > limit => Err(ExportError::TooLarge(bytes)),
        _ => Ok(Exported { model, external }),
    }
}

/// The model's external initializers with their values inside it.
fn bring_inside(model: &mut ModelProto, weights: &Weights) {
    let Some(graph) = model.graph.as_mut() else { return };
    for t in graph.initializer.iter_mut().filter(|t| t.data_location == 1) {
        if let Some(value) = weights.get(&t.name) {
            *t = value.proto(std::mem::take(&mut t.name));
        }
    }
}

fn display_path(node: &Node) -> String {
    if node.path.is_empty() {
        node.kind.to_string()
    } else {
        node.path.clone()
    }
}

fn map_node(out: &mut Emitter, graph: &Graph, id: NodeId, names: &HashMap<TensorRef, String>) -> Mapped {
    let node = graph.node(id);
    let map = mapping(node.kind).ok_or_else(|| format!("no ONNX mapping for `{}` yet", node.kind))?;
    let refs = graph.inputs_of(id);
    let inputs = refs.iter().map(|r| names.get(r).cloned().unwrap_or_default()).collect();
    let input_types = refs.iter().map(|r| graph.node(r.node).outputs[r.port as usize].clone()).collect();
    let mut ctx = NodeCtx { out, node, inputs, input_types, count: 0 };
    map(&mut ctx)
}

/// The model being written: nodes, initializers and the names already used.
struct Emitter<'w> {
    bindings: Bindings,
    opset: i64,
    weights: &'w Weights,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Types declared for tensors inside a composed layer.
    declared: Vec<ValueInfoProto>,
    taken: HashSet<String>,
    /// The file the large weights go to, when they go outside the model.
    external: Option<ExternalData>,
}

impl Emitter<'_> {
    /// `base`, or `base` with the first free `:k` suffix.
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}:{k}");
            k += 1;
        }
        name
    }

    fn value_info(&self, name: &str, ty: &TensorType) -> ValueInfoProto {
        let dim = ty
            .shape
            .iter()
            .map(|d| {
                let value = match d.eval(&self.bindings) {
                    Some(v) => dimension::Value::DimValue(v),
                    None => dimension::Value::DimParam(d.to_string()),
                };
                Dimension { value: Some(value), denotation: String::new() }
            })
            .collect();
        let tensor = type_proto::Tensor {
            elem_type: data_type(ty.dtype) as i32,
            shape: Some(TensorShapeProto { dim }),
        };
        ValueInfoProto {
            name: name.to_string(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(tensor)),
                denotation: String::new(),
            }),
            doc_string: String::new(),
        }
    }
}

fn data_type(d: DType) -> DataType {
    match d {
        DType::F32 => DataType::Float,
        DType::F16 => DataType::Float16,
        DType::BF16 => DataType::Bfloat16,
        DType::F64 => DataType::Double,
        DType::I64 => DataType::Int64,
        DType::I32 => DataType::Int32,
        DType::Bool => DataType::Bool,
    }
}

fn node_proto(
    op_type: &str,
    name: String,
    input: Vec<String>,
    output: Vec<String>,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto { input, output, name, op_type: op_type.into(), attribute, ..NodeProto::default() }
}

/// An integer attribute.
pub(super) fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i, ..AttributeProto::default() }
}

/// A float attribute.
pub(super) fn float(name: &str, f: f64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: f as f32,
        ..AttributeProto::default()
    }
}

/// An integer-list attribute.
pub(super) fn ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..AttributeProto::default()
    }
}

/// A tensor attribute (`ConstantOfShape`'s value).
pub(super) fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Tensor as i32,
        t: Some(t),
        ..AttributeProto::default()
    }
}

/// A list-of-strings attribute.
pub(super) fn strings(name: &str, items: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings as i32,
        strings: items.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..AttributeProto::default()
    }
}

/// A string attribute.
pub(super) fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: s.as_bytes().to_vec(),
        ..AttributeProto::default()
    }
}

/// What a mapping sees of its node, and how it writes ONNX nodes.
pub(super) struct NodeCtx<'a, 'w> {
    out: &'a mut Emitter<'w>,
    pub node: &'a Node,
    /// The names of the node's input tensors, in port order.
    pub inputs: Vec<String>,
    pub input_types: Vec<TensorType>,
    /// ONNX nodes written so far for this layer.
    count: usize,
}

impl NodeCtx<'_, '_> {
    pub fn input(&self, i: usize) -> Result<String, String> {
        self.inputs.get(i).cloned().ok_or_else(|| format!("missing input {i}"))
    }

    pub fn input_type(&self, i: usize) -> Result<&TensorType, String> {
        self.input_types.get(i).ok_or_else(|| format!("missing input {i}"))
    }

    pub fn output_type(&self, i: usize) -> Result<&TensorType, String> {
        self.node.outputs.get(i).ok_or_else(|| format!("missing output {i}"))
    }

    pub fn opset(&self) -> i64 {
        self.out.opset
    }

    /// A dim's value under the compile-time bindings, or why a fixed size is needed.
    pub fn bound(&self, d: &Dim, what: &str) -> Result<i64, String> {
        d.eval(&self.out.bindings).ok_or_else(|| {
            format!(
                "{what} is `{d}`, which has no value: bind it when exporting (--bind {}=...)",
                d.symbols().join(",")
            )
        })
    }

    /// Writes one ONNX node and returns the name of its (single) output.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.op_n(op_type, inputs, attrs, 1).pop().unwrap_or_default()
    }

    /// Writes one ONNX node with `n` outputs.
    pub fn op_n(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        n: usize,
    ) -> Vec<String> {
        let base = display_path(self.node);
        // The layer's first node carries its path; the others say which step they are.
        let label = if self.count == 0 { base.clone() } else { format!("{base}/{op_type}") };
        self.count += 1;
        let name = self.out.fresh(&label);
        let outputs: Vec<String> = (0..n).map(|i| self.out.fresh(&format!("{label}:{i}"))).collect();
        let inputs = inputs.iter().map(|s| s.to_string()).collect();
        self.out.nodes.push(node_proto(op_type, name, inputs, outputs.clone(), attrs));
        outputs
    }

    /// Declares the type of `tensor`, made inside this layer, in the file: for readers that
    /// cannot infer it (wick's importer, for an operator it has no op for).
    pub fn declare(&mut self, tensor: &str, ty: &TensorType) {
        let info = self.out.value_info(tensor, ty);
        self.out.declared.push(info);
    }

    /// The name of parameter `name` of this layer as an initializer under its `state_dict`
    /// key (its owner's, when tied), checked against the shape the graph gives it.
    pub fn weight(&mut self, name: &str) -> Result<String, String> {
        let decl = self
            .node
            .params
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("the layer has no parameter `{name}`"))?;
        let key = match self.node.tied_to(name) {
            Some(owner) => owner.to_string(),
            None => decl.path_under(&self.node.path),
        };
        if self.out.taken.contains(&key) {
            return Ok(key);
        }
        let value =
            self.out.weights.get(&key).ok_or_else(|| format!("the weights have no tensor `{key}`"))?;
        let expected: Vec<i64> = decl
            .shape
            .iter()
            .map(|d| self.bound(d, &format!("the size of `{key}`")))
            .collect::<Result<_, _>>()?;
        if value.dims() != expected {
            return Err(format!(
                "`{key}`: expected shape {expected:?}, found {:?} in the weights",
                value.dims()
            ));
        }
        self.out.taken.insert(key.clone());
        let proto = match self.out.external.as_mut() {
            Some(file) if value.byte_len() >= EXTERNAL_MIN_BYTES => file.place(key.clone(), value),
            _ => value.proto(key.clone()),
        };
        self.out.initializers.push(proto);
        Ok(key)
    }

    /// A constant float tensor, as an initializer named after the layer.
    pub fn const_f32(&mut self, dims: &[i64], data: Vec<f32>) -> String {
        self.constant(Initializer::F32 { dims: dims.to_vec(), data })
    }

    /// A constant int64 tensor (shapes, axes, split sizes), as an initializer.
    pub fn const_i64(&mut self, data: &[i64]) -> String {
        self.constant(Initializer::I64 { dims: vec![data.len() as i64], data: data.to_vec() })
    }

    /// An int64 scalar (a `Gather` index that removes its axis).
    pub fn const_scalar_i64(&mut self, v: i64) -> String {
        self.constant(Initializer::I64 { dims: vec![], data: vec![v] })
    }

    /// A float scalar, for the arithmetic of composed ops.
    pub fn scalar(&mut self, v: f64) -> String {
        self.const_f32(&[], vec![v as f32])
    }

    fn constant(&mut self, value: Initializer) -> String {
        let name = self.out.fresh(&format!("{}/const", display_path(self.node)));
        self.out.initializers.push(value.proto(name.clone()));
        name
    }

    /// The mean over `axes`: `ReduceMean` takes them as an attribute before opset 18, as an
    /// input from it.
    pub fn reduce_mean(&mut self, x: &str, axes: &[i64], keep: bool) -> String {
        let keepdims = int("keepdims", i64::from(keep));
        if self.opset() < 18 {
            return self.op("ReduceMean", &[x], vec![ints("axes", axes), keepdims]);
        }
        let axes = self.const_i64(axes);
        self.op("ReduceMean", &[x, &axes], vec![keepdims])
    }

    /// `x` less its mean over `axes`, and the root of its biased variance over them plus `eps`
    /// (the reduced axes kept as size 1 when `keep`): a normalisation's two halves.
    pub fn centred_and_deviation(&mut self, x: &str, axes: &[i64], keep: bool, eps: f64) -> (String, String) {
        let mean = self.reduce_mean(x, axes, true);
        let centred = self.op("Sub", &[x, &mean], vec![]);
        let sq = self.op("Mul", &[&centred, &centred], vec![]);
        let var = self.reduce_mean(&sq, axes, keep);
        let eps = self.scalar(eps);
        let shifted = self.op("Add", &[&var, &eps], vec![]);
        let deviation = self.op("Sqrt", &[&shifted], vec![]);
        (centred, deviation)
    }

    /// A shape for `Reshape` that also holds for other values of the dynamic dims: an axis
    /// equal to the input's at the same place copies it (0), one other unbound axis is
    /// inferred (-1), the rest must be bound.
    pub fn reshape_target(&self, from: &[Dim], to: &[Dim]) -> Result<Vec<i64>, String> {
        let mut inferred = false;
        to.iter()
            .enumerate()
            .map(|(i, d)| {
                if let Some(v) = d.eval(&self.out.bindings) {
                    return Ok(v);
                }
                if from.get(i) == Some(d) {
                    return Ok(0);
                }
                if !inferred {
                    inferred = true;
                    return Ok(-1);
                }
                Err(format!(
                    "the target shape has several dynamic axes ({d} among them): bind them to export"
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(features: usize) -> (Graph, Weights) {
        let spec = format!("model M {{ input x: [1, {features}]\n output y = x |> fc: Linear({features}) }}");
        let compiled = crate::compile_source("m.wick", &spec, &crate::Options::default());
        let mut weights = Weights::new();
        let n = features as i64;
        let values = |k: usize| (0..k).map(|i| i as f32 * 0.5).collect();
        weights.insert(
            "fc.weight".into(),
            Initializer::F32 { dims: vec![n, n], data: values(features * features) },
        );
        weights.insert("fc.bias".into(), Initializer::F32 { dims: vec![n], data: values(features) });
        (compiled.graph.unwrap(), weights)
    }

    #[test]
    fn a_model_past_the_size_limit_is_refused_before_its_weights_are_copied() {
        let (graph, weights) = linear(4);
        let inline = |limit| export_within(&graph, &weights, 17, Placement::Inline, limit);
        // 80 bytes of weights: refused under 80, and at 80 by the whole file's size.
        assert!(matches!(inline(79), Err(ExportError::TooLarge(80))));
        assert!(matches!(inline(80), Err(ExportError::TooLarge(n)) if n > 80));
        assert!(inline(10_000).is_ok());
        // tinyllama_1_1b's f32 weights.
        let message = ExportError::TooLarge(4_400_411_648).to_string();
        assert!(
            message.starts_with("the model takes 4.10 GiB: an ONNX file holds at most 2 GiB"),
            "{message}"
        );
    }

    /// The entries a tensor's `external_data` lists, in order.
    fn entries(t: &TensorProto) -> Vec<(&str, &str)> {
        t.external_data.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect()
    }

    #[test]
    fn external_data_places_the_large_weights_aligned_and_keeps_small_ones_inside() {
        // fc.weight: 300 x 300 f32, 360,000 bytes; fc.bias 1,200 bytes; both past the threshold.
        let (graph, weights) = linear(300);
        let exported =
            export_within(&graph, &weights, 17, Placement::External("m.onnx.data"), 1 << 30).unwrap();
        let file = exported.external.unwrap();
        assert_eq!(file.tensors, [("fc.weight".to_string(), 0), ("fc.bias".to_string(), 360_000)]);
        assert_eq!(file.bytes, 361_200);
        let g = exported.model.graph.unwrap();
        assert!(g.initializer.iter().all(|t| t.data_location == 1 && t.raw_data.is_empty()));
        assert_eq!(
            entries(&g.initializer[1]),
            [("location", "m.onnx.data"), ("offset", "360000"), ("length", "1200")]
        );

        // A 4 x 4 Linear: 64 and 16 bytes, under the threshold, so inside, and no file at all.
        let (graph, weights) = linear(4);
        let exported =
            export_within(&graph, &weights, 17, Placement::External("m.onnx.data"), 1 << 30).unwrap();
        assert!(exported.external.is_none());
        assert_eq!(exported.model, export(&graph, &weights, 17).unwrap());
    }

    #[test]
    fn large_tensors_start_on_64_kib_boundaries() {
        let mut file = ExternalData { location: "d".into(), ..ExternalData::default() };
        let small = Initializer::F32 { dims: vec![3], data: vec![1.0; 3] };
        let n = (1 << 17) + 1;
        let large = Initializer::I64 { dims: vec![n as i64], data: vec![2; n] };
        file.place("a".into(), &small);
        let t = file.place("b".into(), &large);
        file.place("c".into(), &small);
        let offsets: Vec<u64> = file.tensors.iter().map(|(_, o)| *o).collect();
        // 12 bytes, then 1 MiB and 8 bytes at 64 KiB, then 12 bytes at the next multiple of 8.
        assert_eq!(offsets, [0, 65_536, 65_536 + 1_048_584]);
        assert_eq!(entries(&t), [("location", "d"), ("offset", "65536"), ("length", "1048584")]);
        assert_eq!(t.data_type, DataType::Int64 as i32);
    }

    #[test]
    fn auto_placement_goes_outside_only_past_the_limit() {
        let (graph, weights) = linear(300);
        let auto =
            |limit| export_within(&graph, &weights, 17, Placement::Auto("m.onnx.data"), limit).unwrap();
        let inside = auto(1 << 30);
        assert!(inside.external.is_none());
        assert_eq!(inside.model, export(&graph, &weights, 17).unwrap());
        // Under the 361,200 weight bytes: the same model refused inline is written beside.
        assert!(matches!(
            export_within(&graph, &weights, 17, Placement::Inline, 100_000),
            Err(ExportError::TooLarge(_))
        ));
        let outside = auto(100_000);
        assert_eq!(outside.external.unwrap().bytes, 361_200);
        assert!((prost::Message::encoded_len(&outside.model) as u64) < 100_000);
    }
}
