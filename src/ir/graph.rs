//! The graph: op instances as nodes, typed tensors as edges, spans and call chains beside them.

use std::collections::BTreeMap;

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::tensor::TensorType;
use crate::front::span::Span;
use crate::ops::{Attrs, Op, OpError, ParamDecl};

/// A node of the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub NodeIndex);

/// One output of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TensorRef {
    pub node: NodeId,
    pub port: u16,
}

/// An op instance at a path.
#[derive(Debug)]
pub struct Node {
    /// The op's registered name (`Conv2d`), or `input` for model inputs.
    pub kind: &'static str,
    pub op: Box<dyn Op>,
    /// The attributes `op` was built from, the signature's defaults filled in (empty for model
    /// inputs and operators such as `+`): what an exporter writes, reading them by the names
    /// of the op's signature ([`Attrs::get`]), since the op keeps only what it computes with.
    pub attrs: Attrs,
    /// Full dotted path, as in a PyTorch `state_dict` (`layer1.0.conv1`).
    pub path: String,
    /// Output types; empty when inference failed.
    pub outputs: Vec<TensorType>,
    pub params: Vec<ParamDecl>,
    /// Parameters excluded from training.
    pub frozen: bool,
    /// Parameters that are another layer's tensors: (name here, owner's full path).
    pub tied: Vec<(std::borrow::Cow<'static, str>, String)>,
}

impl Node {
    pub fn failed(&self) -> bool {
        self.outputs.is_empty()
    }

    /// The owner's path when parameter `name` is tied to another layer's.
    pub fn tied_to(&self, name: &str) -> Option<&str> {
        self.tied.iter().find(|(n, _)| *n == name).map(|(_, owner)| owner.as_str())
    }
}

/// An edge: which output feeds which input. Its tensor's type is the source's output
/// ([`Graph::tensor_type`]), kept once there rather than again on every edge that reads it.
#[derive(Clone, Copy, Debug)]
pub struct Edge {
    pub src_port: u16,
    pub dst_port: u16,
}

/// One block call on the way to a node: "in BasicBlock called at resnet18.wick:12:9 as layer1.0".
#[derive(Clone, Debug, PartialEq)]
pub struct CallSite {
    pub block: String,
    pub span: Span,
    pub path: String,
}

/// Where a node came from in the spec.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub span: Span,
    /// Outermost call first; shared by every node made inside the same call, so a deep block
    /// does not copy its chain into each of its layers.
    pub chain: std::sync::Arc<[CallSite]>,
}

/// What made a path prefix: a block instance or a group of layers.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The block's name, `Sequential` for a bracketed or parenthesised chain, `Repeat`.
    pub kind: String,
    pub span: Span,
}

/// A declared dim and the value numbers are computed with.
#[derive(Clone, Debug, PartialEq)]
pub struct DimInfo {
    pub name: String,
    /// From the spec (`dim N = 1`) or `--bind`; `None` keeps it symbolic.
    pub value: Option<i64>,
    pub span: Span,
}

/// A model, elaborated.
#[derive(Debug, Default)]
pub struct Graph {
    pub name: String,
    pub g: StableDiGraph<Node, Edge>,
    /// Side table: origin of each node, by node index ([`Graph::origin`] reads it).
    pub origins: Vec<Origin>,
    /// Model inputs in declaration order.
    pub inputs: Vec<(String, NodeId)>,
    /// Model outputs in declaration order.
    pub outputs: Vec<(String, TensorRef)>,
    /// Path prefixes made by blocks and groups.
    pub groups: BTreeMap<String, Group>,
    pub dims: Vec<DimInfo>,
    /// Nodes in creation order, which is a topological order.
    pub order: Vec<NodeId>,
}

/// A node on its way into a graph: an op applied to typed inputs, its output types and
/// parameters inferred. Every node enters a graph this way (the elaborator, and whatever
/// imports or rewrites a graph), so shape inference belongs to the graph, not to one caller.
#[derive(Debug)]
pub struct NodeDraft {
    pub node: Node,
    /// The tensors feeding it, and their types (the edges' types), in input order.
    inputs: Vec<TensorRef>,
    types: Vec<TensorType>,
}

impl NodeDraft {
    /// `op` (built from `attrs`) applied to `inputs`, each a tensor and its type. When they
    /// do not fit, the draft has no outputs and no parameters (a failed node, which later
    /// checks skip) and the error says why; the caller reports it.
    pub fn infer(
        kind: &'static str,
        op: Box<dyn Op>,
        attrs: Attrs,
        path: String,
        inputs: Vec<(TensorRef, TensorType)>,
    ) -> (NodeDraft, Option<OpError>) {
        // The types move into the edges: the op reads them without a copy.
        let (inputs, types): (Vec<TensorRef>, Vec<TensorType>) = inputs.into_iter().unzip();
        let (outputs, params, error) = match op.infer(&types) {
            Ok(mut outputs) => {
                // Kept for the graph's life: no room to spare.
                let mut params = op.params(&types);
                params.shrink_to_fit();
                outputs.shrink_to_fit();
                (outputs, params, None)
            }
            Err(e) => (Vec::new(), Vec::new(), Some(e)),
        };
        let node = Node { kind, op, attrs, path, outputs, params, frozen: false, tied: Vec::new() };
        (NodeDraft { node, inputs, types }, error)
    }

    /// The types of the inputs, in input order.
    pub fn input_types(&self) -> &[TensorType] {
        &self.types
    }
}

impl Graph {
    /// Adds a drafted node and the edges from its inputs, after every node added before it
    /// (creation order stays a topological order).
    pub fn add(&mut self, draft: NodeDraft, origin: Origin) -> NodeId {
        let id = NodeId(self.g.add_node(draft.node));
        let i = id.0.index();
        match self.origins.get_mut(i) {
            // A removed node's index, reused.
            Some(slot) => *slot = origin,
            None => {
                self.origins.resize_with(i, Origin::default);
                self.origins.push(origin);
            }
        }
        self.order.push(id);
        for (dst_port, from) in draft.inputs.into_iter().enumerate() {
            self.g.add_edge(from.node.0, id.0, Edge { src_port: from.port, dst_port: dst_port as u16 });
        }
        id
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.0]
    }

    pub fn origin(&self, id: NodeId) -> Origin {
        self.origins.get(id.0.index()).cloned().unwrap_or_default()
    }

    /// The tensors feeding a node, in input order.
    pub fn inputs_of(&self, id: NodeId) -> Vec<TensorRef> {
        let mut refs = Vec::new();
        self.inputs_into(id, &mut refs);
        refs
    }

    /// [`Graph::inputs_of`] into a buffer the caller reuses: a pass over every node allocates
    /// nothing per node.
    pub fn inputs_into(&self, id: NodeId, refs: &mut Vec<TensorRef>) {
        // Ports sorted beside the refs on the stack; a node with more inputs sorts its edges.
        const INLINE: usize = 8;
        let mut ports = [0u16; INLINE];
        refs.clear();
        for e in self.g.edges_directed(id.0, Direction::Incoming) {
            if refs.len() == INLINE {
                let mut edges: Vec<_> = self.g.edges_directed(id.0, Direction::Incoming).collect();
                edges.sort_by_key(|e| e.weight().dst_port);
                refs.clear();
                refs.extend(
                    edges.iter().map(|e| TensorRef { node: NodeId(e.source()), port: e.weight().src_port }),
                );
                return;
            }
            ports[refs.len()] = e.weight().dst_port;
            refs.push(TensorRef { node: NodeId(e.source()), port: e.weight().src_port });
        }
        // Insertion sort, stable as the sort above: a handful of inputs.
        for i in 1..refs.len() {
            let mut j = i;
            while j > 0 && ports[j - 1] > ports[j] {
                ports.swap(j - 1, j);
                refs.swap(j - 1, j);
                j -= 1;
            }
        }
    }

    /// How many edges leave a node.
    pub fn consumers(&self, id: NodeId) -> usize {
        self.g.edges_directed(id.0, Direction::Outgoing).count()
    }

    /// The type of one tensor, if its node was inferred.
    pub fn tensor_type(&self, t: TensorRef) -> Option<&TensorType> {
        self.node(t.node).outputs.get(t.port as usize)
    }

    /// Every parameter and buffer as `(path, shape, kind)`, in node order: the keys a PyTorch
    /// `state_dict` of the same model has (without `num_batches_tracked`).
    pub fn parameters(&self) -> Vec<(String, Vec<crate::ir::dim::Dim>, crate::ops::ParamKind)> {
        self.order
            .iter()
            .flat_map(|id| {
                let node = self.node(*id);
                node.params.iter().map(move |p| (p.path_under(&node.path), p.shape.clone(), p.kind))
            })
            .collect()
    }

    /// Values for the dims that have one.
    pub fn bindings(&self) -> crate::ir::dim::Bindings {
        self.dims.iter().filter_map(|d| d.value.map(|v| (d.name.clone(), v))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::dim::Dim;
    use crate::ir::tensor::DType;
    use crate::ops::{self, AttrValue};

    fn f32(shape: &[i64]) -> TensorType {
        TensorType::new(DType::F32, shape.iter().map(|d| Dim::konst(*d)).collect())
    }

    /// A model input of type `ty`, added as every node is.
    fn input(g: &mut Graph, ty: TensorType) -> TensorRef {
        let (draft, error) =
            NodeDraft::infer("input", ops::input_op(ty), Attrs::default(), "x".into(), vec![]);
        assert!(error.is_none());
        TensorRef { node: g.add(draft, Origin::default()), port: 0 }
    }

    fn linear(out_features: i64) -> (Box<dyn Op>, Attrs) {
        let def = ops::lookup("Linear").unwrap();
        let mut attrs = Attrs::default();
        attrs.insert("out_features", AttrValue::Int(Dim::konst(out_features)));
        attrs.insert("bias", AttrValue::Bool(true));
        ((def.build)(&attrs).unwrap(), attrs)
    }

    #[test]
    fn an_added_node_has_its_inferred_outputs_params_attrs_and_edges() {
        let mut g = Graph::default();
        let x = input(&mut g, f32(&[2, 4]));
        let (op, attrs) = linear(3);
        let (draft, error) = NodeDraft::infer("Linear", op, attrs, "fc".into(), vec![(x, f32(&[2, 4]))]);
        assert!(error.is_none());
        let fc = g.add(draft, Origin::default());
        let node = g.node(fc);
        assert_eq!(node.outputs, vec![f32(&[2, 3])]);
        assert_eq!(
            node.params.iter().map(|p| p.path_under(&node.path)).collect::<Vec<_>>(),
            ["fc.weight", "fc.bias"]
        );
        assert_eq!(node.attrs.get("out_features"), &AttrValue::Int(Dim::konst(3)));
        assert_eq!(g.inputs_of(fc), vec![x]);
        assert_eq!(g.order, vec![x.node, fc]);
    }

    #[test]
    fn a_node_whose_inputs_do_not_fit_is_added_failed_with_the_ops_error() {
        let mut g = Graph::default();
        let x = input(&mut g, f32(&[]));
        let (op, attrs) = linear(3);
        let (draft, error) = NodeDraft::infer("Linear", op, attrs, "fc".into(), vec![(x, f32(&[]))]);
        let error = error.unwrap();
        assert!(error.message.contains("rank-0"), "{}", error.message);
        let fc = g.add(draft, Origin::default());
        assert!(g.node(fc).failed());
        assert!(g.node(fc).params.is_empty());
    }
}
