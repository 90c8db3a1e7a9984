//! The summary: one [`Summary`] value built from the graph and its analysis, and renderers
//! over it (table, JSON, CSV, Markdown).

pub mod catalog;
mod csv;
pub mod graph;
mod json;
mod markdown;
mod table;

use std::collections::HashMap;

use crate::check::{Analysis, Memory};
use crate::ir::dim::{Bindings, Dim};
use crate::ir::graph::Graph;
use crate::ir::tensor::TensorType;

#[cfg(feature = "lower")]
pub(crate) use csv::field as csv_field;
pub use csv::render_csv;
pub use json::render_json;
pub use markdown::render_markdown;
pub use table::{render_table, TableStyle};

/// The convention MACs are counted under, printed in every summary.
pub const MAC_CONVENTION: &str =
    "MACs: multiply-accumulates of conv, linear, matmul and attention core, one forward pass\n\
      at the dims shown; bias, norms, activations, pooling, elementwise not counted; FLOPs = 2 x MACs";

/// A dim as reported: a number when bound, else its expression.
#[derive(Clone, Debug, PartialEq)]
pub enum DimValue {
    Int(i64),
    Sym(String),
}

impl DimValue {
    pub fn of(d: &Dim, bindings: &Bindings) -> DimValue {
        match d.eval(bindings) {
            Some(v) => DimValue::Int(v),
            None => DimValue::Sym(d.substitute(bindings).to_string()),
        }
    }
}

impl std::fmt::Display for DimValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DimValue::Int(v) => write!(f, "{v}"),
            DimValue::Sym(s) => write!(f, "{s}"),
        }
    }
}

/// A named input or output.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub name: String,
    pub shape: Vec<DimValue>,
    pub dtype: String,
}

/// Whether a row is one op or the total of a block or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    Layer,
    Group,
}

/// One row of the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub path: String,
    pub op: String,
    pub kind: RowKind,
    pub depth: usize,
    /// `None` when the shape could not be inferred (the failing layer).
    pub output_shape: Option<Vec<DimValue>>,
    pub params: u64,
    pub trainable: u64,
    pub buffers: u64,
    /// `None` when the op has no cost rule.
    pub macs: Option<DimValue>,
    /// Parameters excluded from training (a layer row only).
    pub frozen: bool,
    /// Owners of this layer's tied parameters (`wte.weight`); their elements are not in `params`.
    pub tied_to: Vec<String>,
}

/// Everything a summary shows.
#[derive(Clone, Debug)]
pub struct Summary {
    pub model: String,
    pub dims: Vec<(String, Option<i64>)>,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    pub rows: Vec<Row>,
    pub total_params: u64,
    pub trainable_params: u64,
    pub frozen_params: u64,
    pub buffers: u64,
    /// Parameter elements used by more than one layer, counted once in the totals.
    pub shared_params: u64,
    pub macs: DimValue,
    pub uncounted: Vec<String>,
    /// Where some op counts differently from [`MAC_CONVENTION`] (recurrent kernels).
    pub cost_notes: Vec<String>,
    pub memory: Memory,
    /// True when the rows stop at a layer whose shape inference failed.
    pub truncated: bool,
    /// Whether the spec compiled without errors: a summary of a spec with errors shows what
    /// was built before them, and its figures are not the model's.
    pub complete: bool,
}

/// Build the summary, folding paths deeper than `depth` into their ancestors.
pub fn summarize(graph: &Graph, analysis: &Analysis, depth: Option<usize>) -> Summary {
    let bindings = graph.bindings();
    let port = |name: &str, ty: Option<&TensorType>| Port {
        name: name.to_string(),
        shape: ty.map(|t| t.shape.iter().map(|d| DimValue::of(d, &bindings)).collect()).unwrap_or_default(),
        dtype: ty.map_or("?".into(), |t| t.dtype.name().to_string()),
    };
    let inputs = graph.inputs.iter().map(|(n, id)| port(n, graph.node(*id).outputs.first())).collect();
    let outputs = graph.outputs.iter().map(|(n, t)| port(n, graph.tensor_type(*t))).collect();
    let (rows, truncated) = rows(graph, analysis, depth.unwrap_or(usize::MAX), &bindings);
    Summary {
        model: graph.name.clone(),
        dims: graph.dims.iter().map(|d| (d.name.clone(), d.value)).collect(),
        inputs,
        outputs,
        rows,
        total_params: analysis.total_params(),
        trainable_params: analysis.trainable,
        frozen_params: analysis.frozen,
        buffers: analysis.buffers,
        shared_params: analysis.shared,
        macs: DimValue::of(&analysis.macs, &bindings),
        uncounted: analysis.uncounted.iter().map(|s| s.to_string()).collect(),
        cost_notes: analysis.cost_notes.iter().map(|s| s.to_string()).collect(),
        memory: analysis.memory.clone(),
        truncated,
        complete: !truncated,
    }
}

/// Totals of one path prefix.
#[derive(Default, Clone)]
struct Totals {
    params: u64,
    trainable: u64,
    buffers: u64,
    macs: Dim,
    uncounted: bool,
    last_output: Option<Vec<DimValue>>,
}

fn prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('.').map(move |(i, _)| &path[..i])
}

fn rows(graph: &Graph, analysis: &Analysis, max_depth: usize, bindings: &Bindings) -> (Vec<Row>, bool) {
    let shape_of = |id| {
        graph
            .node(id)
            .outputs
            .first()
            .map(|t: &TensorType| t.shape.iter().map(|d| DimValue::of(d, bindings)).collect())
    };
    // Sum every node into each of its ancestor groups first, so a group row can show its total.
    let mut totals: HashMap<&str, Totals> = HashMap::new();
    for (id, cost) in &analysis.nodes {
        let node = graph.node(*id);
        for p in prefixes(&node.path).filter(|p| graph.groups.contains_key(*p)) {
            let t = totals.entry(p).or_default();
            // Saturating: an overflowing total is an error already (`check::overflows`).
            t.params = t.params.saturating_add(cost.params());
            t.trainable = t.trainable.saturating_add(cost.trainable);
            t.buffers = t.buffers.saturating_add(cost.buffers);
            match &cost.macs {
                Some(m) => t.macs = t.macs.add(m),
                None => t.uncounted = true,
            }
            if !node.failed() {
                t.last_output = shape_of(*id);
            }
        }
    }
    // A row per layer, and one per group above them.
    let mut out = Vec::with_capacity(analysis.nodes.len() + graph.groups.len());
    let mut emitted: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (id, cost) in &analysis.nodes {
        let node = graph.node(*id);
        if node.kind == "input" {
            continue;
        }
        for (d, p) in prefixes(&node.path).enumerate() {
            if d + 1 > max_depth || !emitted.insert(p) {
                continue;
            }
            let (Some(group), Some(t)) = (graph.groups.get(p), totals.get(p)) else { continue };
            out.push(Row {
                path: p.to_string(),
                op: group.kind.clone(),
                kind: RowKind::Group,
                depth: d + 1,
                output_shape: t.last_output.clone(),
                params: t.params,
                trainable: t.trainable,
                buffers: t.buffers,
                macs: (!t.uncounted).then(|| DimValue::of(&t.macs, bindings)),
                frozen: false,
                tied_to: Vec::new(),
            });
        }
        let depth = node.path.split('.').count();
        if depth <= max_depth {
            out.push(Row {
                path: node.path.clone(),
                op: node.kind.to_string(),
                kind: RowKind::Layer,
                depth,
                output_shape: shape_of(*id),
                params: cost.params(),
                trainable: cost.trainable,
                buffers: cost.buffers,
                macs: cost.macs.as_ref().map(|m| DimValue::of(m, bindings)),
                frozen: node.frozen && cost.frozen > 0,
                tied_to: node.tied.iter().map(|(_, owner)| owner.clone()).collect(),
            });
        }
        if node.failed() {
            return (out, true);
        }
    }
    (out, false)
}

/// FLOPs of a MAC count: twice it, which fits in a `u64` for every `i64` count.
pub fn flops(macs: i64) -> u64 {
    2 * macs.max(0) as u64
}

/// `11,689,512`
pub fn thousands(v: u64) -> String {
    let mut out = String::new();
    write_thousands(&mut out, v);
    out
}

/// `v` in decimal appended to `out`, without the formatting machinery (a summary writes a
/// few numbers per layer).
fn write_int(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut rest = v.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// [`thousands`] appended to `out`.
pub fn write_thousands(out: &mut String, v: u64) {
    use std::fmt::Write;
    let start = out.len();
    match i64::try_from(v) {
        Ok(v) => write_int(out, v),
        Err(_) => {
            let _ = write!(out, "{v}");
        }
    }
    let digits = out.len() - start;
    // Commas go in from the right, each shifting the digits after it.
    let mut at = start + digits;
    while at > start + 3 {
        at -= 3;
        out.insert(at, ',');
    }
}

/// A dim value with thousands separators when it is a number.
pub fn dim_thousands(v: &DimValue) -> String {
    let mut out = String::new();
    write_dim_thousands(&mut out, v);
    out
}

/// [`dim_thousands`] appended to `out`.
pub fn write_dim_thousands(out: &mut String, v: &DimValue) {
    use std::fmt::Write;
    match v {
        DimValue::Int(i) if *i >= 0 => write_thousands(out, *i as u64),
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// `[1, 64, 112, 112]`
pub fn shape_text(shape: &Option<Vec<DimValue>>) -> String {
    let mut out = String::new();
    write_shape(&mut out, shape);
    out
}

/// [`shape_text`] appended to `out`.
pub fn write_shape(out: &mut String, shape: &Option<Vec<DimValue>>) {
    match shape {
        Some(dims) => {
            out.push('[');
            for (i, d) in dims.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match d {
                    DimValue::Int(v) => write_int(out, *v),
                    DimValue::Sym(s) => out.push_str(s),
                }
            }
            out.push(']');
        }
        None => out.push_str("error"),
    }
}

/// Bytes as MiB with two decimals.
pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_the_formatter_prints_them_with_thousands_separators() {
        for v in [0u64, 7, 999, 1_000, 65_536, 11_689_512, i64::MAX as u64, u64::MAX] {
            let plain: String = thousands(v).chars().filter(|c| *c != ',').collect();
            assert_eq!(plain, v.to_string());
        }
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(11_689_512), "11,689,512");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(dim_thousands(&DimValue::Int(-1_234)), "-1234");
        let shape = Some(vec![DimValue::Int(i64::MIN), DimValue::Int(0), DimValue::Sym("2*N".into())]);
        assert_eq!(shape_text(&shape), format!("[{}, 0, 2*N]", i64::MIN));
        assert_eq!(shape_text(&None), "error");
    }
}
