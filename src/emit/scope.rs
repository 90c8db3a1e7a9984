//! The graph's paths as a tree of scopes: each prefix shared by several layers is a scope
//! whose items (its layers and sub-scopes) are written in one body, a block's or a list's.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};

use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::WriteError;
use crate::ir::graph::{Graph, NodeId, TensorRef};

/// A layer, or a scope below the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Item {
    Node(NodeId),
    Scope(usize),
}

#[derive(Clone, Debug, Default)]
pub(super) struct Scope {
    /// Full dotted path; empty for the model itself.
    pub path: String,
    /// The last segment of `path`.
    pub segment: String,
    /// Layers and sub-scopes, in an order where each comes after what it reads.
    pub items: Vec<Item>,
    /// Tensors made outside and read inside, in order of first use.
    pub inputs: Vec<TensorRef>,
    /// Tensors made inside and read outside (or model outputs), in the order they are made.
    pub outputs: Vec<TensorRef>,
}

/// Every scope (the model's is 0), and the paths the layers get in the written spec.
#[derive(Debug, Default)]
pub(super) struct Tree {
    pub scopes: Vec<Scope>,
    /// Each layer's segment in its scope (its path's last, after renaming).
    pub segment: HashMap<NodeId, String>,
    /// Path changes forced on layers: (layer, old path, new path).
    pub moved: Vec<(NodeId, String, String)>,
}

impl Tree {
    /// The tree of `graph`'s layers (inputs are the model's, outside every scope).
    pub fn build(graph: &Graph) -> Result<Tree, WriteError> {
        let layers: Vec<NodeId> =
            graph.order.iter().copied().filter(|id| graph.node(*id).kind != "input").collect();
        let paths = written_paths(graph, &layers);
        let mut tree = Tree { scopes: vec![Scope::default()], ..Tree::default() };
        let mut by_path: HashMap<String, usize> = HashMap::new();
        // The scopes each layer is in, outermost first.
        let mut chain: HashMap<NodeId, Vec<usize>> = HashMap::new();
        for id in &layers {
            let (path, moved) = &paths[id];
            if let Some(old) = moved {
                tree.moved.push((*id, old.clone(), path.join(".")));
            }
            let mut at = 0;
            let mut scopes = vec![0];
            for depth in 1..path.len() {
                let prefix = path[..depth].join(".");
                at = match by_path.get(&prefix) {
                    Some(s) => *s,
                    None => {
                        let s = tree.scopes.len();
                        let segment = path[depth - 1].clone();
                        tree.scopes.push(Scope { path: prefix.clone(), segment, ..Scope::default() });
                        tree.scopes[at].items.push(Item::Scope(s));
                        by_path.insert(prefix, s);
                        s
                    }
                };
                scopes.push(at);
            }
            tree.scopes[at].items.push(Item::Node(*id));
            tree.segment.insert(*id, path.last().cloned().unwrap_or_default());
            chain.insert(*id, scopes);
        }
        tree.interfaces(graph, &layers, &chain);
        // A scope whose results nothing reads still gives one, so its call is a value.
        for id in layers.iter().rev() {
            for &s in chain[id].iter().skip(1) {
                if tree.scopes[s].outputs.is_empty() {
                    tree.scopes[s].outputs.push(TensorRef { node: *id, port: 0 });
                }
            }
        }
        for s in 0..tree.scopes.len() {
            tree.order_items(graph, s, &chain)?;
        }
        Ok(tree)
    }

    /// Each scope's inputs and outputs.
    fn interfaces(&mut self, graph: &Graph, layers: &[NodeId], chain: &HashMap<NodeId, Vec<usize>>) {
        let inside = |id: NodeId, s: usize| chain.get(&id).is_some_and(|c| c.contains(&s));
        let model_outputs: HashSet<TensorRef> = graph.outputs.iter().map(|(_, t)| *t).collect();
        let mut seen: HashSet<(usize, TensorRef)> = HashSet::new();
        for id in layers {
            let scopes = &chain[id];
            for t in graph.inputs_of(*id) {
                for &s in scopes.iter().skip(1) {
                    if !inside(t.node, s) && seen.insert((s, t)) {
                        self.scopes[s].inputs.push(t);
                    }
                }
            }
            let ports = graph.node(*id).outputs.len() as u16;
            for port in 0..ports {
                let t = TensorRef { node: *id, port };
                let readers: Vec<NodeId> = graph
                    .g
                    .edges_directed(id.0, Direction::Outgoing)
                    .filter(|e| e.weight().src_port == port)
                    .map(|e| NodeId(e.target()))
                    .collect();
                for &s in scopes.iter().skip(1) {
                    if model_outputs.contains(&t) || readers.iter().any(|r| !inside(*r, s)) {
                        self.scopes[s].outputs.push(t);
                    }
                }
            }
        }
    }

    /// Sorts a scope's items so each comes after the items it reads (the layers' order when
    /// it already is); a scope that reads from a sibling that reads from it cannot be written.
    fn order_items(
        &mut self,
        graph: &Graph,
        s: usize,
        chain: &HashMap<NodeId, Vec<usize>>,
    ) -> Result<(), WriteError> {
        let items = self.scopes[s].items.clone();
        if items.is_empty() {
            return Ok(());
        }
        let depth =
            chain.get(&first_node(self, items[0])).map_or(0, |c| c.iter().position(|x| *x == s).unwrap_or(0));
        let position: HashMap<Item, usize> = items.iter().enumerate().map(|(i, it)| (*it, i)).collect();
        // The item of this scope that holds a layer.
        let item_of = |id: NodeId| -> Option<usize> {
            let c = chain.get(&id)?;
            if c.get(depth) != Some(&s) {
                return None;
            }
            match c.get(depth + 1) {
                Some(sub) => position.get(&Item::Scope(*sub)).copied(),
                None => position.get(&Item::Node(id)).copied(),
            }
        };
        let mut waiting = vec![0usize; items.len()];
        let mut unblocks: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
        for (i, item) in items.iter().enumerate() {
            let mut needs: BTreeSet<usize> = BTreeSet::new();
            for t in self.reads(graph, *item) {
                if let Some(j) = item_of(t.node).filter(|j| *j != i) {
                    needs.insert(j);
                }
            }
            waiting[i] = needs.len();
            for j in needs {
                unblocks[j].push(i);
            }
        }
        // Kahn's algorithm, the earliest ready item first: the layers' order where it is one.
        let mut ready: BinaryHeap<Reverse<usize>> =
            (0..items.len()).filter(|i| waiting[*i] == 0).map(Reverse).collect();
        let mut sorted = Vec::with_capacity(items.len());
        while let Some(Reverse(i)) = ready.pop() {
            sorted.push(items[i]);
            for &k in &unblocks[i] {
                waiting[k] -= 1;
                if waiting[k] == 0 {
                    ready.push(Reverse(k));
                }
            }
        }
        if sorted.len() < items.len() {
            return Err(WriteError::Interleaved { path: self.scopes[s].path.clone() });
        }
        self.scopes[s].items = sorted;
        Ok(())
    }

    /// The tensors an item reads.
    pub fn reads(&self, graph: &Graph, item: Item) -> Vec<TensorRef> {
        match item {
            Item::Node(id) => graph.inputs_of(id),
            Item::Scope(s) => self.scopes[s].inputs.clone(),
        }
    }

    /// The tensors an item gives.
    pub fn gives(&self, graph: &Graph, item: Item) -> Vec<TensorRef> {
        match item {
            Item::Node(id) => {
                (0..graph.node(id).outputs.len() as u16).map(|port| TensorRef { node: id, port }).collect()
            }
            Item::Scope(s) => self.scopes[s].outputs.clone(),
        }
    }

    /// An item's segment in its scope.
    pub fn segment(&self, item: Item) -> &str {
        match item {
            Item::Node(id) => self.segment.get(&id).map_or("", String::as_str),
            Item::Scope(s) => &self.scopes[s].segment,
        }
    }
}

fn first_node(tree: &Tree, item: Item) -> NodeId {
    match item {
        Item::Node(id) => id,
        Item::Scope(s) => first_node(tree, tree.scopes[s].items[0]),
    }
}

/// Each layer's path as segments the language can write: an empty segment becomes `_`; a
/// layer whose path is also a prefix of other layers' (a label names one thing), or that
/// another layer or a model input holds already where either has parameters (two owners of
/// one key), moves to a fresh sibling segment. Returns the segments and, when moved, the old
/// path.
fn written_paths(graph: &Graph, layers: &[NodeId]) -> HashMap<NodeId, (Vec<String>, Option<String>)> {
    let split = |p: &str| -> Vec<String> {
        p.split('.').map(|s| if s.is_empty() { "_".to_string() } else { s.to_string() }).collect()
    };
    let mut prefixes: HashSet<String> = HashSet::new();
    for id in layers {
        let segs = split(&graph.node(*id).path);
        for depth in 1..segs.len() {
            prefixes.insert(segs[..depth].join("."));
        }
    }
    // Paths taken so far, and whether their holder has parameters.
    let mut taken: HashMap<String, bool> =
        graph.inputs.iter().map(|(name, _)| (name.clone(), false)).collect();
    let mut out = HashMap::new();
    for id in layers {
        let node = graph.node(*id);
        let has_params = !node.params.is_empty();
        let mut segs = split(&node.path);
        loop {
            let path = segs.join(".");
            let clash = taken.get(&path).is_some_and(|held| *held || has_params);
            if !prefixes.contains(&path) && !clash {
                break;
            }
            if let Some(last) = segs.last_mut() {
                last.push('_');
            }
        }
        let path = segs.join(".");
        let held = taken.entry(path.clone()).or_insert(false);
        *held |= has_params;
        let moved = (path != node.path).then(|| node.path.clone());
        out.insert(*id, (segs, moved));
    }
    out
}
