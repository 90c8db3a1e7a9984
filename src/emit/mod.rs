//! A graph written back as a `.wick` spec: what `wick import` writes for a graph it read.
//!
//! The writer reads the graph alone — node kinds, the attributes each node was built from,
//! paths, edges, inputs, outputs and dims — never a spec's syntax tree, so a graph read from
//! another format is written the same way as one elaborated from a spec. Paths become the
//! spec's structure: a prefix shared by several layers is a `block` call (`layer1.0:
//! BasicBlock(...)`) or, where its layers are numbered `0, 1, ...` and form a chain, a list
//! (`downsample: [Conv2d(...), BatchNorm2d]`); prefixes of one structure share one `block`
//! definition, the values that differ between them its parameters, and a list of equal
//! calls is a `repeat`. Compiling the written text gives the same layers at the same paths,
//! so weights keyed by the graph's parameter paths load into it.
//!
//! ```
//! let spec = "dim N = 2
//! model Net {
//!     input x: [N, 8]
//!     y = x |> stages: [Linear(8), ReLU, Linear(8), ReLU] |> head: Linear(3)
//!     output y
//! }";
//! let compiled = wick::compile_source("net.wick", spec, &wick::Options::default());
//! let graph = compiled.graph.expect("the spec compiles");
//! let written = wick::emit::write_spec(&graph, &wick::emit::WriteOptions::default()).expect("writable");
//! assert!(written.text.contains("stages: [Linear(8), ReLU, Linear(8), ReLU]"), "{}", written.text);
//! assert!(written.renames.is_empty()); // every parameter keeps its path
//!
//! let again = wick::compile_source("again.wick", &written.text, &wick::Options::default());
//! assert_eq!(again.summary(None).expect("it compiles").total_params, 8 * 8 * 2 + 8 * 2 + 8 * 3 + 3);
//! ```

mod blocks;
mod body;
mod naming;
mod render;
mod scope;
mod slots;

use std::collections::HashMap;

use blocks::Plan;
use body::Body;
use render::Names;
use scope::Tree;

use crate::ir::graph::{Graph, TensorRef};

/// How to write a spec.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Comment lines written at the top (`imported from model.onnx`), without their `#`.
    pub header: Vec<String>,
}

/// A written spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub text: String,
    /// Parameters whose path the spec could not keep: (the graph's path, the spec's path).
    /// Empty when every path is kept, so weights keyed by the graph's paths load unchanged.
    pub renames: Vec<(String, String)>,
    /// Model inputs and outputs whose names are not identifiers: (graph's name, spec's name).
    pub io_renames: Vec<(String, String)>,
}

/// Why a graph cannot be written as a spec.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WriteError {
    #[error("layer `{layer}` is `{op}`, which is not an op a spec can call")]
    UnknownOp { layer: String, op: String },
    #[error("layer `{layer}`: attribute `{attr}` has no spec text ({why})")]
    Unwritable { layer: String, attr: String, why: String },
    #[error("layer `{layer}` failed shape inference: only a checked graph can be written")]
    Failed { layer: String },
    #[error(
        "the layers under `{path}` read from a sibling scope that reads from them: the paths do not nest as block calls"
    )]
    Interleaved { path: String },
}

/// Writes `graph` as a `.wick` spec.
pub fn write_spec(graph: &Graph, opts: &WriteOptions) -> Result<Written, WriteError> {
    if let Some(id) = graph.order.iter().find(|id| graph.node(**id).failed()) {
        return Err(WriteError::Failed { layer: graph.node(*id).path.clone() });
    }
    let tree = Tree::build(graph)?;
    let dims: Vec<String> = graph.dims.iter().map(|d| d.name.clone()).collect();
    let mut global = Names::new(dims.iter().cloned());
    let model_name = global.fresh(if graph.name.is_empty() { "Model" } else { &graph.name });
    let mut reserved = dims.clone();
    reserved.push(model_name.clone());
    let plan = blocks::plan(graph, &tree, &reserved)?;
    let mut text = String::new();
    for line in &opts.header {
        text.push_str(&format!("# {line}\n"));
    }
    // A blank line between the header and the dims (blocks and the model start with their own).
    if !opts.header.is_empty() && !graph.dims.is_empty() {
        text.push('\n');
    }
    for d in &graph.dims {
        match d.value {
            Some(v) => text.push_str(&format!("dim {} = {v}\n", d.name)),
            None => text.push_str(&format!("dim {}\n", d.name)),
        }
    }
    let block_names: Vec<String> = plan.blocks.iter().map(|b| b.name.clone()).collect();
    reserved.extend(block_names);
    for b in 0..plan.blocks.len() {
        text.push('\n');
        text.push_str(&block_text(graph, &tree, &plan, b, &reserved));
    }
    let mut io_renames = Vec::new();
    text.push('\n');
    text.push_str(&model_text(graph, &tree, &plan, &model_name, &reserved, &mut io_renames));
    Ok(Written { text, renames: renames(graph, &tree), io_renames })
}

/// The parameters of the layers whose paths moved, under both paths.
fn renames(graph: &Graph, tree: &Tree) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (id, old, new) in &tree.moved {
        for p in &graph.node(*id).params {
            out.push((p.path_under(old), p.path_under(new)));
        }
    }
    out
}

fn indent(lines: &[String]) -> String {
    lines.iter().map(|l| format!("    {l}\n")).collect()
}

/// `block Name(x: [x0, x1], out_features: int) { ... }`.
fn block_text(graph: &Graph, tree: &Tree, plan: &Plan, b: usize, reserved: &[String]) -> String {
    let def = &plan.blocks[b];
    let s = def.instances[0];
    let scope = &tree.scopes[s];
    let mut names = Names::new(reserved.iter().cloned().chain(def.params.iter().map(|p| p.name.clone())));
    let mut params = Vec::new();
    let mut tensors = HashMap::new();
    for t in &scope.inputs {
        let name = names.fresh("x");
        let ty = graph.tensor_type(*t);
        let rank = ty.map_or(0, |ty| ty.rank());
        let dims: Vec<String> = (0..rank).map(|k| names.fresh(&format!("{name}{k}"))).collect();
        let dtype = match ty.map(|ty| ty.dtype.name()) {
            Some("f32") | None => String::new(),
            Some(d) => format!(" of {d}"),
        };
        params.push(format!("{name}: [{}]{dtype}", dims.join(", ")));
        tensors.insert(*t, name);
    }
    for p in &def.params {
        params.push(format!("{}: {}", p.name, p.ty.declared()));
    }
    let mut body = Body::new(graph, tree, plan, names);
    body.tensors = tensors;
    let resolve = |pos: usize| def.slot_param.get(pos).copied().flatten().map(|p| def.params[p].name.clone());
    body.items(s, &resolve, &scope.outputs);
    let ret = match &scope.outputs[..] {
        [one] => match body.take_result(*one) {
            Some(text) => text,
            None => body.name_of(*one),
        },
        many => {
            let names: Vec<String> = many.iter().map(|t| body.name_of(*t)).collect();
            format!("[{}]", names.join(", "))
        }
    };
    let mut lines = body.lines;
    lines.push(format!("return {ret}"));
    let header = format!("block {}({}) {{\n", def.name, params.join(", "));
    let header = if header.len() > 100 {
        format!("block {}(\n        {}\n) {{\n", def.name, params.join(",\n        "))
    } else {
        header
    };
    format!("{header}{}}}\n", indent(&lines))
}

/// `model Name { input ...; ...; output ... }`.
fn model_text(
    graph: &Graph,
    tree: &Tree,
    plan: &Plan,
    model_name: &str,
    reserved: &[String],
    io_renames: &mut Vec<(String, String)>,
) -> String {
    let mut body = Body::new(graph, tree, plan, Names::new(reserved.iter().cloned()));
    let mut lines = Vec::new();
    for (name, id) in &graph.inputs {
        let written = body.names.fresh(name);
        if written != *name {
            io_renames.push((name.clone(), written.clone()));
        }
        body.claim(&written);
        let ty = graph.node(*id).outputs.first();
        let shape: Vec<String> = ty
            .map(|t| t.shape.iter().map(|d| render::dim(d).unwrap_or_else(|_| d.to_string())).collect())
            .unwrap_or_default();
        let dtype = match ty.map(|t| t.dtype.name()) {
            Some("f32") | None => String::new(),
            Some(d) => format!(" of {d}"),
        };
        lines.push(format!("input {written}: [{}]{dtype}", shape.join(", ")));
        body.tensors.insert(TensorRef { node: *id, port: 0 }, written);
    }
    // Output names are taken first, so the pipes that make them are named after them.
    let mut outputs = Vec::new();
    for (name, t) in &graph.outputs {
        let mut spec_name = name.clone();
        if !crate::front::is_word(name) || render::KEYWORDS.contains(&name.as_str()) {
            spec_name = Names::default().fresh(name);
            io_renames.push((name.clone(), spec_name.clone()));
        }
        body.preferred.entry(*t).or_insert_with(|| spec_name.clone());
        outputs.push((spec_name, *t));
    }
    let results: Vec<TensorRef> = graph.outputs.iter().map(|(_, t)| *t).collect();
    body.items(0, &|_| None, &results);
    body.flush();
    for (name, t) in &outputs {
        let value = body.name_of(*t);
        if value == *name {
            body.lines.push(format!("output {name}"));
        } else {
            body.lines.push(format!("output {name} = {value}"));
        }
    }
    lines.extend(body.lines);
    format!("model {model_name} {{\n{}}}\n", indent(&lines))
}

#[cfg(test)]
mod tests;
