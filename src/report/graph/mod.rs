//! Pictures of a compiled model: a small drawable graph built from the IR, with blocks as
//! clusters folded to a depth, and renderers for Graphviz DOT, Mermaid and standalone SVG.

mod dot;
pub mod layout;
mod mermaid;
mod svg;

use std::collections::{BTreeMap, HashMap, HashSet};

use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::{shape_text, thousands, DimValue};
use crate::check::Analysis;
use crate::ir::dim::Bindings;
use crate::ir::graph::{Graph, NodeId, TensorRef};
use crate::ir::tensor::{DType, TensorType};

pub use dot::render_dot;
pub use mermaid::render_mermaid;
pub use svg::{render_svg, xml_escape};

/// What a drawn node stands for; each kind is drawn in its own style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Input,
    Output,
    Op,
    /// A block deeper than the drawing's depth, drawn as one node.
    Folded,
}

/// One node of the picture.
#[derive(Clone, Debug, PartialEq)]
pub struct DrawNode {
    pub kind: NodeKind,
    /// The layer's or block's path; the port name for inputs and outputs.
    pub path: String,
    /// Text lines, first the path.
    pub lines: Vec<String>,
    /// The innermost cluster holding this node.
    pub cluster: Option<usize>,
    pub params: u64,
}

/// An edge between two drawn nodes, labelled with the tensor's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct DrawEdge {
    pub from: usize,
    pub to: usize,
    pub label: String,
}

/// A block instance or group drawn as a box around its contents.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub path: String,
    /// The block's name (`BasicBlock`), `Sequential` or `Repeat`.
    pub kind: String,
    pub parent: Option<usize>,
    pub params: u64,
}

impl Cluster {
    pub fn label(&self) -> String {
        format!("{}: {}{}", self.path, self.kind, params_suffix(self.params))
    }
}

/// An entry of a cluster (or of the top level).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Node(usize),
    Cluster(usize),
}

/// One step of a walk through the nesting: a node, or a cluster opening or closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    Node(usize),
    Open(usize),
    Close(usize),
}

/// The whole picture: nodes in topological order, then outputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drawing {
    pub title: String,
    pub nodes: Vec<DrawNode>,
    pub edges: Vec<DrawEdge>,
    pub clusters: Vec<Cluster>,
}

impl Drawing {
    /// Clusters from the outermost down to the one holding `node`.
    pub fn cluster_chain(&self, node: usize) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut next = self.nodes.get(node).and_then(|n| n.cluster);
        while let Some(c) = next {
            chain.push(c);
            next = self.clusters.get(c).and_then(|c| c.parent);
        }
        chain.reverse();
        chain
    }

    /// What each level holds, in order of first node: `.0` the top level, `.1[c]` cluster `c`.
    fn nesting(&self) -> (Vec<Item>, Vec<Vec<Item>>) {
        let mut first = vec![usize::MAX; self.clusters.len()];
        for i in 0..self.nodes.len() {
            for c in self.cluster_chain(i) {
                first[c] = first[c].min(i);
            }
        }
        let mut top = Vec::new();
        let mut inside = vec![Vec::new(); self.clusters.len()];
        let nodes = self.nodes.iter().enumerate().map(|(i, n)| (n.cluster, i, Item::Node(i)));
        let clusters = self.clusters.iter().enumerate().map(|(c, k)| (k.parent, first[c], Item::Cluster(c)));
        let mut keyed: Vec<_> = nodes.chain(clusters).collect();
        keyed.sort_by_key(|(_, key, item)| (*key, matches!(item, Item::Node(_))));
        for (parent, _, item) in keyed {
            match parent.and_then(|p| inside.get_mut(p)) {
                Some(level) => level.push(item),
                None => top.push(item),
            }
        }
        (top, inside)
    }

    /// Nodes and clusters in nesting order, each with how many clusters enclose it.
    pub fn walk(&self) -> Vec<(usize, Visit)> {
        let (top, inside) = self.nesting();
        let mut out = Vec::with_capacity(self.nodes.len() + 2 * self.clusters.len());
        // (items of a level, next index, the cluster to close after it)
        let mut stack: Vec<(&[Item], usize, Option<usize>)> = vec![(&top, 0, None)];
        while let Some((items, i, closes)) = stack.pop() {
            let depth = stack.len();
            match items.get(i) {
                None => {
                    if let Some(c) = closes {
                        out.push((depth.saturating_sub(1), Visit::Close(c)));
                    }
                }
                Some(&Item::Node(n)) => {
                    stack.push((items, i + 1, closes));
                    out.push((depth, Visit::Node(n)));
                }
                Some(&Item::Cluster(c)) => {
                    stack.push((items, i + 1, closes));
                    out.push((depth, Visit::Open(c)));
                    stack.push((inside.get(c).map_or(&[][..], |v| v.as_slice()), 0, Some(c)));
                }
            }
        }
        out
    }

    /// How many clusters enclose cluster `c`.
    pub fn cluster_depth(&self, c: usize) -> usize {
        let mut depth = 0;
        let mut next = self.clusters.get(c).and_then(|c| c.parent);
        while let Some(p) = next {
            depth += 1;
            next = self.clusters.get(p).and_then(|c| c.parent);
        }
        depth
    }
}

/// `s` with each character that `map` names replaced by its text: the one escaping loop
/// behind each format's own rules.
pub fn escape(s: &str, map: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match map(c) {
            Some(text) => out.push_str(text),
            None => out.push(c),
        }
    }
    out
}

fn params_suffix(params: u64) -> String {
    if params == 0 {
        String::new()
    } else {
        format!("  {} params", thousands(params))
    }
}

fn type_text(ty: &TensorType, bindings: &Bindings) -> String {
    let shape = Some(ty.shape.iter().map(|d| DimValue::of(d, bindings)).collect());
    match ty.dtype {
        DType::F32 => shape_text(&shape),
        other => format!("{} {other}", shape_text(&shape)),
    }
}

/// The path prefix with `depth` components, when `path` is deeper than that.
fn prefix_at(path: &str, depth: usize) -> Option<&str> {
    path.match_indices('.').nth(depth.checked_sub(1)?).map(|(i, _)| &path[..i])
}

/// The deepest proper prefix of `path` that is a group.
fn enclosing_group<'g>(graph: &'g Graph, path: &str) -> Option<&'g str> {
    let mut end = path.len();
    while let Some(i) = path[..end].rfind('.') {
        if let Some((key, _)) = graph.groups.get_key_value(&path[..i]) {
            return Some(key.as_str());
        }
        end = i;
    }
    None
}

/// Builds a [`Drawing`], creating clusters and folded nodes as paths ask for them.
struct Builder<'g> {
    graph: &'g Graph,
    drawing: Drawing,
    cluster_of_path: HashMap<&'g str, usize>,
    node_of_path: HashMap<String, usize>,
    /// For folded nodes: op kinds inside, in first-seen order, with counts.
    folded_ops: HashMap<usize, Vec<(&'static str, usize)>>,
}

impl<'g> Builder<'g> {
    fn cluster(&mut self, path: &'g str) -> usize {
        if let Some(&c) = self.cluster_of_path.get(path) {
            return c;
        }
        let parent = enclosing_group(self.graph, path).map(|p| self.cluster(p));
        let kind = self.graph.groups.get(path).map_or_else(String::new, |g| g.kind.clone());
        self.drawing.clusters.push(Cluster { path: path.to_string(), kind, parent, params: 0 });
        let c = self.drawing.clusters.len() - 1;
        self.cluster_of_path.insert(path, c);
        c
    }

    fn push(&mut self, kind: NodeKind, path: &'g str, lines: Vec<String>) -> usize {
        let cluster = enclosing_group(self.graph, path).map(|p| self.cluster(p));
        self.drawing.nodes.push(DrawNode { kind, path: path.to_string(), lines, cluster, params: 0 });
        self.drawing.nodes.len() - 1
    }

    /// Add one IR node: as itself, or into the folded node of its block at `depth`.
    fn add(&mut self, id: NodeId, params: u64, depth: usize, bindings: &Bindings) -> usize {
        let node = self.graph.node(id);
        let index = match prefix_at(&node.path, depth) {
            Some(block) => {
                let index = match self.node_of_path.get(block) {
                    Some(&i) => i,
                    None => {
                        let i = self.push(NodeKind::Folded, block, Vec::new());
                        self.node_of_path.insert(block.to_string(), i);
                        i
                    }
                };
                let ops = self.folded_ops.entry(index).or_default();
                match ops.iter_mut().find(|(k, _)| *k == node.kind) {
                    Some((_, n)) => *n += 1,
                    None => ops.push((node.kind, 1)),
                }
                index
            }
            None if node.kind == "input" => {
                let ty = node.outputs.first().map_or("?".into(), |t| type_text(t, bindings));
                self.push(NodeKind::Input, &node.path, vec![format!("input {}", node.path), ty])
            }
            None => {
                let mut second = format!("{}{}", node.kind, params_suffix(params));
                if node.frozen && params > 0 {
                    second.push_str(" (frozen)");
                }
                let mut lines = vec![node.path.clone(), second];
                lines.extend(node.tied.iter().map(|(name, owner)| format!("{name} tied to {owner}")));
                self.push(NodeKind::Op, &node.path, lines)
            }
        };
        self.drawing.nodes[index].params += params;
        let mut cluster = self.drawing.nodes[index].cluster;
        while let Some(c) = cluster {
            self.drawing.clusters[c].params += params;
            cluster = self.drawing.clusters[c].parent;
        }
        index
    }

    fn label_folded(&mut self) {
        let mut folded: Vec<_> = self.folded_ops.drain().collect();
        folded.sort_by_key(|(i, _)| *i);
        for (index, ops) in folded {
            const SHOWN: usize = 4;
            let mut summary: Vec<String> =
                ops.iter().take(SHOWN).map(|(kind, n)| format!("{n} {kind}")).collect();
            if ops.len() > SHOWN {
                summary.push(format!("{} more kinds", ops.len() - SHOWN));
            }
            let node = &mut self.drawing.nodes[index];
            let kind = self.graph.groups.get(node.path.as_str()).map_or("block", |g| g.kind.as_str());
            node.lines =
                vec![node.path.clone(), format!("{kind}{}", params_suffix(node.params)), summary.join(", ")];
        }
    }
}

/// Build the picture of `graph`, folding blocks deeper than `depth` (at least 1) into one
/// node each. Parameter counts come from `analysis`.
pub fn build(graph: &Graph, analysis: &Analysis, depth: Option<usize>) -> Drawing {
    let depth = depth.unwrap_or(usize::MAX).max(1);
    let bindings = graph.bindings();
    let params: HashMap<NodeId, u64> = analysis.nodes.iter().map(|(id, c)| (*id, c.params())).collect();
    let mut b = Builder {
        graph,
        drawing: Drawing { title: graph.name.clone(), ..Drawing::default() },
        cluster_of_path: HashMap::new(),
        node_of_path: HashMap::new(),
        folded_ops: HashMap::new(),
    };
    let mut drawn: BTreeMap<NodeId, usize> = BTreeMap::new();
    for &id in &graph.order {
        let index = b.add(id, params.get(&id).copied().unwrap_or(0), depth, &bindings);
        drawn.insert(id, index);
    }
    b.label_folded();
    let mut seen = HashSet::new();
    let mut edges = Vec::new();
    for &id in &graph.order {
        let mut incoming: Vec<_> = graph.g.edges_directed(id.0, Direction::Incoming).collect();
        incoming.sort_by_key(|e| e.weight().dst_port);
        for e in incoming {
            let (Some(&from), Some(&to)) = (drawn.get(&NodeId(e.source())), drawn.get(&id)) else { continue };
            let tensor = TensorRef { node: NodeId(e.source()), port: e.weight().src_port };
            let label = graph.tensor_type(tensor).map_or("?".into(), |t| type_text(t, &bindings));
            if from != to && seen.insert((from, to, label.clone())) {
                edges.push(DrawEdge { from, to, label });
            }
        }
    }
    for (name, tensor) in &graph.outputs {
        let ty = graph.tensor_type(*tensor).map_or("?".into(), |t| type_text(t, &bindings));
        b.drawing.nodes.push(DrawNode {
            kind: NodeKind::Output,
            path: name.clone(),
            lines: vec![format!("output {name}"), ty.clone()],
            cluster: None,
            params: 0,
        });
        if let Some(&from) = drawn.get(&tensor.node) {
            edges.push(DrawEdge { from, to: b.drawing.nodes.len() - 1, label: ty });
        }
    }
    b.drawing.edges = edges;
    b.drawing
}
