//! ONNX import: a model file read into wick's IR, so that `wick compile model.onnx --summary`,
//! `wick check` and `wick graph` work on it as on a spec.
//!
//! The file is decoded and checked ([`decode`]), then its nodes are read in topological order
//! in groups that share a layer path ([`names`]): wick's exporter writes one layer as several
//! ONNX nodes (attention, GELU's tanh form, RMSNorm), so a group that matches such a
//! composition becomes the one wick op again, and its numbers (MACs, memory) are the spec's.
//! Any other node maps to the wick op of the same meaning, one family per file beside this
//! one, or becomes an opaque node typed as the file declares, listed as uncounted. Every node
//! enters the graph through [`crate::ir::graph::NodeDraft::infer`], so wick's ops infer every
//! shape; initializers feeding a layer become its parameters, keyed by their own names when
//! those are `state_dict` keys.

mod activation;
mod attention;
mod builder;
pub(super) mod decode;
mod names;
mod nn;
mod norm;
mod rnn;
mod sequence;
mod style;
mod tensor;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::span::SourceMap;
use crate::ir::dim::Dim;
use crate::ir::graph::{DimInfo, Graph, NodeId, TensorRef};
use crate::ir::tensor::TensorType;
use crate::onnx::export::{Initializer, Weights};
use crate::onnx::proto::{
    tensor_shape_proto::dimension, type_proto, AttributeProto, NodeProto, ValueInfoProto,
};
use crate::{Compiled, Options};
use builder::Builder;

/// A model read from an ONNX file: the graph, its weights keyed by the graph's parameter paths,
/// and what the reading found to say (an operator whose output type is unknown stops it).
#[derive(Debug)]
pub struct Imported {
    pub graph: Graph,
    pub weights: Weights,
    pub diagnostics: Diagnostics,
}

/// Why a file's bytes are not a model wick can read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("`{file}` is not a model wick can read: {message}")]
    Invalid { file: String, message: String },
}

/// The model in `bytes` (the file `file_name`, whose folder holds any external data it names),
/// its dims bound as `opts.bind` says.
pub fn read(bytes: &[u8], file_name: &str, opts: &Options) -> Result<Imported, ImportError> {
    let invalid = |message: String| ImportError::Invalid { file: file_name.to_string(), message };
    let max_nodes = opts.max_nodes.unwrap_or(crate::elab::MAX_NODES);
    let mut g = decode::graph(bytes, max_nodes).map_err(invalid)?;
    let mut consts = HashMap::new();
    let mut files = decode::ExternalFiles::beside(file_name);
    for mut t in std::mem::take(&mut g.initializer) {
        let value = decode::tensor_value(&mut t, &mut files).map_err(invalid)?;
        consts.insert(std::mem::take(&mut t.name), value);
    }
    constant_nodes(&mut g.node, &mut consts, &mut files).map_err(invalid)?;
    // An `Identity` of a constant is a constant of its own name (torch.onnx writes equal
    // initializers once and the others as such copies); the copies, together, are at most as
    // large as the file and its external data, so a file cannot multiply its own size.
    let mut budget = bytes.len().saturating_add(usize::try_from(files.read()).unwrap_or(usize::MAX));
    for n in g.node.iter().filter(|n| n.op_type == "Identity") {
        if let (Some(i), Some(o)) = (n.input.first(), n.output.first()) {
            if let Some(value) = consts.get(i) {
                budget = budget
                    .checked_sub(value.dims().iter().product::<i64>().max(1) as usize)
                    .ok_or_else(|| {
                        invalid(format!(
                            "the Identity copies of constants (`{o}` among them) are larger than the file"
                        ))
                    })?;
                consts.insert(o.clone(), value.clone());
            }
        }
    }
    let mut diagnostics = Diagnostics::default();
    let mut graph = Graph { name: model_name(&g.name, file_name), ..Graph::default() };
    let mut dims: Vec<String> = Vec::new();
    let mut input_types = Vec::new();
    for i in g.input.iter().filter(|i| !consts.contains_key(&i.name)) {
        let ty = value_type(i, &mut dims).map_err(|e| invalid(format!("graph input `{}`: {e}", i.name)))?;
        input_types.push((i.name.clone(), ty));
    }
    let bind: BTreeMap<&str, i64> = opts.bind.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    for name in bind.keys().filter(|k| !dims.iter().any(|d| d == *k)) {
        let known = if dims.is_empty() {
            "the model has no named dims".to_string()
        } else {
            format!("its dims are {}", dims.join(", "))
        };
        diagnostics.push(Diagnostic::error(
            "E0214",
            format!("`--bind {name}=...` names no dim of the model: {known}"),
        ));
    }
    graph.dims = dims
        .iter()
        .map(|d| DimInfo { name: d.clone(), value: bind.get(d.as_str()).copied(), span: Default::default() })
        .collect();

    let mut b = Builder::new(graph, consts);
    for (name, ty) in input_types {
        b.input(&name, ty);
    }
    let mut declared: HashMap<&str, &ValueInfoProto> = HashMap::new();
    for v in g.value_info.iter().chain(&g.output) {
        declared.insert(v.name.as_str(), v);
    }
    let readers = readers(&g.node, &g.output);
    let mut start = 0;
    while start < g.node.len() {
        let key = names::layer_path(&g.node[start].name);
        let mut end = start + 1;
        while key.is_some() && end < g.node.len() && names::layer_path(&g.node[end].name) == key {
            end += 1;
        }
        let nodes = &g.node[start..end];
        let outside = nodes
            .iter()
            .flat_map(|n| &n.output)
            .filter(|o| {
                readers.get(o.as_str()).is_some_and(|rs| rs.iter().any(|r| !(start..end).contains(r)))
            })
            .cloned()
            .collect();
        let group =
            Group { path: key.unwrap_or_else(|| anonymous_path(&g.node[start], start)), nodes, outside };
        if let Err((node, message)) = read_group(&mut b, &group, &declared, &mut dims) {
            diagnostics.push(
                Diagnostic::error(
                    "E0117",
                    format!("`{file_name}`: node `{}` ({}): {message}", node.name, node.op_type),
                )
                .help("the summary stops at this node"),
            );
            break;
        }
        start = end;
    }
    for o in &g.output {
        if let Some(t) = b.get(&o.name) {
            b.graph.outputs.push((o.name.clone(), t));
        }
    }
    let Builder { graph, weights, .. } = b;
    Ok(Imported { graph, weights, diagnostics })
}

/// The file at `path` compiled as a spec would be: its graph checked and counted, an invalid
/// file a diagnostic naming it. `Err` only when the file cannot be read, as for a spec (a
/// device or pipe named `.onnx` is refused, not read without end).
pub fn compile_file(path: &str, opts: &Options) -> std::io::Result<Compiled> {
    let bytes = crate::train::files::read_regular(std::path::Path::new(path))?;
    Ok(match read(&bytes, path, opts) {
        Ok(imported) => crate::analyzed(SourceMap::new(), Some(imported.graph), imported.diagnostics, None),
        Err(e) => {
            let mut diagnostics = Diagnostics::default();
            diagnostics.push(Diagnostic::error("E0116", e.to_string()));
            crate::analyzed(SourceMap::new(), None, diagnostics, None)
        }
    })
}

/// `Constant` nodes' values (a tensor, or one of the number attributes) as constants.
fn constant_nodes(
    nodes: &mut [NodeProto],
    consts: &mut HashMap<String, Initializer>,
    files: &mut decode::ExternalFiles,
) -> Result<(), String> {
    for n in nodes.iter_mut().filter(|n| n.op_type == "Constant") {
        let Some(out) = n.output.first().cloned() else { continue };
        let Some(a) = n.attribute.first_mut() else { continue };
        let value = match a.name.as_str() {
            "value" => match a.t.as_mut() {
                Some(t) => {
                    t.name = out.clone();
                    decode::tensor_value(t, files)?
                }
                None => continue,
            },
            "value_float" => Initializer::F32 { dims: vec![], data: vec![a.f] },
            "value_floats" => {
                Initializer::F32 { dims: vec![a.floats.len() as i64], data: std::mem::take(&mut a.floats) }
            }
            "value_int" => Initializer::I64 { dims: vec![], data: vec![a.i] },
            "value_ints" => {
                Initializer::I64 { dims: vec![a.ints.len() as i64], data: std::mem::take(&mut a.ints) }
            }
            _ => continue,
        };
        consts.insert(out, value);
    }
    Ok(())
}

/// Consecutive nodes that share a layer path.
pub(super) struct Group<'g> {
    pub path: String,
    pub nodes: &'g [NodeProto],
    /// The tensors it makes that are read after it (or are graph outputs).
    pub outside: HashSet<String>,
}

impl Group<'_> {
    /// Whether only the last node's outputs are read outside the group (so the group can be
    /// one op).
    fn closed(&self) -> bool {
        let Some(last) = self.nodes.last() else { return false };
        self.outside.iter().all(|o| last.output.contains(o))
    }

    /// The tensors the group reads that it does not make and that are not constants, in the
    /// order they are first read.
    pub fn external_inputs(&self, b: &Builder) -> Vec<String> {
        let made: HashSet<&str> =
            self.nodes.iter().flat_map(|n| n.output.iter().map(String::as_str)).collect();
        let mut out: Vec<String> = Vec::new();
        for i in self.nodes.iter().flat_map(|n| &n.input) {
            if !i.is_empty() && !made.contains(i.as_str()) && !b.is_const(i) && !out.contains(i) {
                out.push(i.clone());
            }
        }
        out
    }

    /// The constants the group reads, in the order they are first read.
    pub fn constants(&self, b: &Builder) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for i in self.nodes.iter().flat_map(|n| &n.input) {
            if b.is_const(i) && !out.contains(i) {
                out.push(i.clone());
            }
        }
        out
    }

    /// The first constant read whose name is `name` or ends in `.name`.
    pub fn constant_named(&self, b: &Builder, name: &str) -> Option<String> {
        let suffix = format!(".{name}");
        self.constants(b).into_iter().find(|c| c == name || c.ends_with(&suffix))
    }

    pub fn op_types(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.op_type.as_str()).collect()
    }

    pub fn last(&self) -> Option<&NodeProto> {
        self.nodes.last()
    }
}

/// A composition of ONNX nodes recognised as one wick op: the op's node, whose output is the
/// group's last node's, or why the group is not that composition.
type Composite = fn(&mut Builder, &Group) -> Result<NodeId, String>;

const COMPOSITES: &[Composite] = &[
    attention::multihead_attention,
    nn::linear,
    activation::gelu,
    activation::silu,
    norm::rms_norm,
    sequence::learned_positions,
    sequence::class_token,
    tensor::zeros_like,
    attention::scaled_dot_product_attention,
    attention::rotary_embedding,
    style::layer,
];

/// A group as one composite op when it is one, else node by node; the node that could not be
/// typed, and why, stops the reading.
fn read_group<'g>(
    b: &mut Builder,
    group: &Group<'g>,
    declared: &HashMap<&str, &ValueInfoProto>,
    dims: &mut Vec<String>,
) -> Result<(), (&'g NodeProto, String)> {
    if group.nodes.len() > 1 {
        if let Ok(outputs) = rnn::recurrent(b, group) {
            for (name, t) in outputs {
                b.set(&name, t);
            }
            return Ok(());
        }
    }
    if group.closed() && group.nodes.len() > 1 {
        for recognise in COMPOSITES {
            if let Ok(id) = recognise(b, group) {
                if let Some(last) = group.last() {
                    if let Some(o) = last.output.first() {
                        b.set(o, TensorRef { node: id, port: 0 });
                    }
                }
                return Ok(());
            }
        }
    }
    for node in group.nodes {
        let made_constant = matches!(node.op_type.as_str(), "Constant" | "Identity");
        if made_constant && b.is_const(node.output.first().map_or("", String::as_str)) {
            continue;
        }
        let mapped = if node.domain.is_empty() || node.domain == "ai.onnx" {
            map_node(b, node, &group.path)
        } else {
            Err(String::new())
        };
        let outputs = match mapped {
            Ok(outputs) => outputs,
            Err(_) => {
                let inputs: Vec<TensorRef> =
                    node.input.iter().filter(|i| !i.is_empty()).filter_map(|i| b.tensor(i).ok()).collect();
                let types: Option<Vec<TensorType>> = node
                    .output
                    .iter()
                    .map(|o| declared.get(o.as_str()).and_then(|v| value_type(v, dims).ok()))
                    .collect();
                let types = types.or_else(|| same_as_input(b, node, &inputs));
                let (id, error) = b.opaque(&node.op_type, &group.path, inputs, types);
                if let Some(message) = error {
                    return Err((node, message));
                }
                (0..node.output.len()).map(|k| TensorRef { node: id, port: k as u16 }).collect()
            }
        };
        for (name, t) in node.output.iter().zip(outputs) {
            if !name.is_empty() {
                b.set(name, t);
            }
        }
    }
    Ok(())
}

/// One ONNX node as the wick op of the same meaning: its outputs, or why it has none.
fn map_node(b: &mut Builder, node: &NodeProto, path: &str) -> Result<Vec<TensorRef>, String> {
    let single = |id: NodeId| vec![TensorRef { node: id, port: 0 }];
    if let Some(f) = activation::mapping(&node.op_type) {
        return f(b, node, path).map(single);
    }
    if let Some(f) = nn::mapping(&node.op_type) {
        return f(b, node, path).map(single);
    }
    if let Some(f) = norm::mapping(&node.op_type) {
        return f(b, node, path).map(single);
    }
    tensor::map(b, node, path)
}

/// Operators whose one output has their one input's type.
const ELEMENTWISE: &[&str] = &[
    "Abs",
    "Neg",
    "Erf",
    "Log",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Cos",
    "Sin",
    "Not",
    "Softsign",
    "Selu",
    "Celu",
    "ThresholdedRelu",
    "Shrink",
    "Mish",
    "IsNaN",
    "IsInf",
    "LRN",
];

/// The output type of an elementwise operator without a declared one: its input's.
fn same_as_input(b: &Builder, node: &NodeProto, inputs: &[TensorRef]) -> Option<Vec<TensorType>> {
    let [x] = inputs else { return None };
    if !ELEMENTWISE.contains(&node.op_type.as_str()) || node.output.len() != 1 {
        return None;
    }
    let ty = b.ty(*x);
    Some(vec![match node.op_type.as_str() {
        "Not" | "IsNaN" | "IsInf" => TensorType::new(crate::ir::tensor::DType::Bool, ty.shape),
        _ => ty,
    }])
}

/// Who reads each tensor (node indices; a graph output counts as read by no node, `usize::MAX`).
fn readers<'g>(nodes: &'g [NodeProto], outputs: &'g [ValueInfoProto]) -> HashMap<&'g str, Vec<usize>> {
    let mut r: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, n) in nodes.iter().enumerate() {
        for i in &n.input {
            r.entry(i.as_str()).or_default().push(k);
        }
    }
    for o in outputs {
        r.entry(o.name.as_str()).or_default().push(usize::MAX);
    }
    r
}

fn anonymous_path(node: &NodeProto, index: usize) -> String {
    format!("{}_{index}", node.op_type.to_lowercase())
}

fn model_name(graph_name: &str, file: &str) -> String {
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
    if valid(graph_name) {
        return graph_name.to_string();
    }
    let stem = std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let cleaned: String = stem.chars().map(|c| if c.is_alphanumeric() { c } else { '_' }).collect();
    if cleaned.is_empty() {
        "model".into()
    } else {
        cleaned
    }
}

/// A declared tensor type, its named dims recorded in `dims` (a dim with neither a size nor a
/// name gets one of its own).
fn value_type(v: &ValueInfoProto, dims: &mut Vec<String>) -> Result<TensorType, String> {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err("its type is not a tensor type".into());
    };
    let dtype = decode::dtype(t.elem_type)?;
    let shape = t.shape.as_ref().ok_or("its shape is not given")?;
    let mut out = Vec::with_capacity(shape.dim.len());
    for (k, d) in shape.dim.iter().enumerate() {
        out.push(match &d.value {
            Some(dimension::Value::DimValue(n)) if *n >= 0 => Dim::konst(*n),
            Some(dimension::Value::DimValue(n)) => return Err(format!("axis {k} has size {n}")),
            Some(dimension::Value::DimParam(name)) if !name.is_empty() => symbol(name, dims),
            _ => symbol(&format!("{}_{k}", v.name), dims),
        });
    }
    Ok(TensorType::new(dtype, out))
}

fn symbol(name: &str, dims: &mut Vec<String>) -> Dim {
    if !dims.iter().any(|d| d == name) {
        dims.push(name.to_string());
    }
    Dim::sym(name)
}

/// Attribute readers: the value when the node has the attribute with that kind of value.
pub(super) fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub(super) fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).map(|a| a.i)
}

pub(super) fn attr_float(node: &NodeProto, name: &str) -> Option<f64> {
    attr(node, name).map(|a| as_written(a.f))
}

/// An f32 of the file as the decimal it was written from: the shortest that reads back to the
/// same f32 (`1e-5`, where widening gives 9.999999747378752e-6), so an imported spec says
/// `eps=1e-5` and reads back to the same f32 the file holds.
pub(super) fn as_written(f: f32) -> f64 {
    f.to_string().parse().unwrap_or(f64::from(f))
}

pub(super) fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

pub(super) fn attr_str(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}
