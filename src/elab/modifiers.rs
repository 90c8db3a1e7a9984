//! Keywords every call accepts besides its own: `frozen=true` keeps a layer's or a whole
//! block's parameters out of training; `tie="path"` makes a layer's parameters the very
//! tensors of another layer's same-named parameters (GPT-2's head and token embedding).
//!
//! A tie is resolved after elaboration, once every layer exists, so a layer may tie to one
//! written later in the spec.

use super::diagnostics as diag;
use super::value::Value;
use super::Elaborator;
use crate::front::ast::Arg;
use crate::front::span::Span;
use crate::ir::graph::NodeId;

/// Keyword arguments that belong to the call, not to the op or block.
pub(super) const MODIFIERS: &[&str] = &["frozen", "tie"];

/// Whether `key` is a modifier for a callee whose own arguments are `names`.
pub(super) fn is_modifier(key: &str, names: &[&str]) -> bool {
    MODIFIERS.contains(&key) && !names.contains(&key)
}

#[derive(Debug, Default)]
pub(super) struct Modifiers {
    pub frozen: bool,
    pub tie: Option<(String, Span)>,
}

/// A requested tie: the layer's node and the path of the layer that owns the tensors.
#[derive(Debug)]
pub(super) struct Tie {
    pub node: NodeId,
    pub target: String,
    pub span: Span,
}

impl<'a> Elaborator<'a> {
    /// Evaluate the modifiers among `args`; `is_layer` is false for block calls, which
    /// cannot be tied.
    pub(super) fn modifiers(
        &mut self,
        args: &'a [Arg],
        names: &[&str],
        is_layer: bool,
        env: usize,
        prefix: &str,
    ) -> Modifiers {
        let mut m = Modifiers::default();
        for arg in args {
            let Some(key) = arg.name.as_ref().filter(|k| is_modifier(&k.name, names)) else { continue };
            let value = self.eval(&arg.value, env, prefix);
            match (key.name.as_str(), value) {
                (_, Value::Poison) => {}
                ("frozen", Value::Bool(b)) => m.frozen = b,
                ("tie", Value::Str(s)) if is_layer => m.tie = Some((s, arg.value.span)),
                ("tie", _) if !is_layer => self.report(diag::tie_on_block(key.span)),
                ("frozen", other) => self.report(diag::wrong_type(arg.value.span, "bool", &other)),
                (_, other) => self.report(diag::wrong_type(arg.value.span, "a layer path string", &other)),
            }
        }
        m
    }

    /// Point each tied layer's parameters at the owner's, checking names and shapes.
    pub(super) fn resolve_ties(&mut self) {
        let ties = std::mem::take(&mut self.ties);
        if ties.is_empty() {
            return;
        }
        let by_path: std::collections::HashMap<String, NodeId> =
            self.graph.g.node_indices().map(|i| (self.graph.g[i].path.clone(), NodeId(i))).collect();
        let targets: std::collections::HashMap<NodeId, NodeId> =
            ties.iter().filter_map(|t| by_path.get(&t.target).map(|o| (t.node, *o))).collect();
        for tie in ties {
            let Some(&owner) = by_path.get(&tie.target) else {
                let layers: Vec<&str> = by_path
                    .iter()
                    .filter(|(_, id)| !self.graph.node(**id).params.is_empty())
                    .map(|(p, _)| p.as_str())
                    .collect();
                self.report(diag::unknown_tie_target(tie.span, &tie.target, &layers));
                continue;
            };
            // Tying to a layer that is itself tied means tying to the end of that chain.
            let mut root = owner;
            let mut chain = vec![tie.node];
            let mut problems = Vec::new();
            while let Some(next) = targets.get(&root) {
                if chain.contains(&root) {
                    problems.push("the ties form a cycle, so no layer owns the tensors".to_string());
                    break;
                }
                chain.push(root);
                root = *next;
            }
            let owner_node = self.graph.node(owner);
            let root_node = self.graph.node(root);
            let mut links = Vec::new();
            let layer = self.graph.node(tie.node);
            for p in &layer.params {
                match owner_node.params.iter().find(|q| q.name == p.name) {
                    Some(q) if q.shape == p.shape || same_value(&q.shape, &p.shape, &self.bindings) => {
                        let shared = root_node.params.iter().find(|r| r.name == p.name).unwrap_or(q);
                        links.push((p.name.clone(), shared.path_under(&root_node.path)));
                    }
                    Some(q) => problems.push(format!(
                        "`{}` is {} here but {} in `{}`",
                        p.name,
                        crate::ir::tensor::shape_string(&p.shape),
                        crate::ir::tensor::shape_string(&q.shape),
                        tie.target
                    )),
                    None => problems.push(format!("`{}` has no `{}` to share", tie.target, p.name)),
                }
            }
            if tie.node == owner {
                problems.push("a layer cannot be tied to itself".into());
            }
            if problems.is_empty() {
                self.graph.g[tie.node.0].tied = links;
            } else {
                self.report(diag::bad_tie(tie.span, &layer.path, &tie.target, &problems));
            }
        }
    }
}

fn same_value(
    a: &[crate::ir::dim::Dim],
    b: &[crate::ir::dim::Dim],
    bindings: &crate::ir::dim::Bindings,
) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| matches!((x.eval(bindings), y.eval(bindings)), (Some(u), Some(v)) if u == v))
}
