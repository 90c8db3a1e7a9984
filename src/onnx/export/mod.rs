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

use super::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
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

    fn proto(&self, name: String) -> TensorProto {
        let (dims, data_type, raw_data) = match self {
            Initializer::F32 { dims, data } => {
                (dims, DataType::Float, data.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
            Initializer::I64 { dims, data } => {
                (dims, DataType::Int64, data.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
        };
        TensorProto {
            dims: dims.clone(),
            data_type: data_type as i32,
            name,
            raw_data,
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
    /// More weight bytes than one protobuf message holds.
    #[error(
        "the weights take {:.2} GiB: an ONNX file holds at most 2 GiB (protobuf's limit on one message), and wick does not write weights as external data yet",
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

/// `graph` with `weights` as an ONNX model of operator set `opset`, in eval mode.
pub fn export(graph: &Graph, weights: &Weights, opset: i64) -> Result<ModelProto, ExportError> {
    export_within(graph, weights, opset, MAX_FILE_BYTES)
}

/// [`export`], refusing a model of more than `limit` bytes.
fn export_within(
    graph: &Graph,
    weights: &Weights,
    opset: i64,
    limit: u64,
) -> Result<ModelProto, ExportError> {
    if !OPSETS.contains(&opset) {
        return Err(ExportError::Opset(opset));
    }
    if graph.order.iter().any(|id| graph.node(*id).failed()) {
        return Err(ExportError::Failed);
    }
    // Checked before any initializer is copied: a model past the limit (tinyllama_1_1b's 4.4
    // GB) is refused without making a second copy of its weights first.
    let weight_bytes: u64 = weights.values().map(Initializer::byte_len).sum();
    if weight_bytes > limit {
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
    let model = ModelProto {
        ir_version: if opset >= 19 { 9 } else { 8 },
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
        producer_name: "wick".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph_proto),
        ..ModelProto::default()
    };
    match prost::Message::encoded_len(&model) as u64 {
        bytes if bytes > limit => Err(ExportError::TooLarge(bytes)),
        _ => Ok(model),
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
        self.out.initializers.push(value.proto(key.clone()));
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

    #[test]
    fn a_model_past_the_size_limit_is_refused_before_its_weights_are_copied() {
        let spec = "model M { input x: [1, 4]\n output y = x |> fc: Linear(4) }";
        let compiled = crate::compile_source("m.wick", spec, &crate::Options::default());
        let graph = compiled.graph.unwrap();
        let mut weights = Weights::new();
        weights.insert("fc.weight".into(), Initializer::F32 { dims: vec![4, 4], data: vec![0.5; 16] });
        weights.insert("fc.bias".into(), Initializer::F32 { dims: vec![4], data: vec![0.0; 4] });
        // 80 bytes of weights: refused under 80, and at 80 by the whole file's size.
        assert!(matches!(export_within(&graph, &weights, 17, 79), Err(ExportError::TooLarge(80))));
        assert!(matches!(export_within(&graph, &weights, 17, 80), Err(ExportError::TooLarge(n)) if n > 80));
        assert!(export_within(&graph, &weights, 17, 10_000).is_ok());
        // tinyllama_1_1b's f32 weights.
        let message = ExportError::TooLarge(4_400_411_648).to_string();
        assert!(
            message.starts_with("the weights take 4.10 GiB: an ONNX file holds at most 2 GiB"),
            "{message}"
        );
    }
}
