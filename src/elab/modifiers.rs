//! Keywords every call accepts besides its own: `frozen=true` keeps a layer's or a whole
//! block's parameters out of training; `tie="path"` makes a layer's parameters the very
//! tensors of another layer's same-named parameters (GPT-2's head and token embedding);
//! `init=` and `bias_init=` choose how a layer's (or every layer of a block's) weights and
//! biases start (`init=kaiming_normal(mode="fan_out", nonlinearity="relu")`, `bias_init=zeros`).
//!
//! A tie is resolved after elaboration, once every layer exists, so a layer may tie to one
//! written later in the spec.

use super::diagnostics as diag;
use super::value::Value;
use super::Elaborator;
use crate::front::ast::{Arg, Expr, ExprKind};
use crate::front::span::Span;
use crate::ir::graph::NodeId;
use crate::ir::tensor::shape_string;
use crate::ops::init_scheme::{Scheme, SchemeArg, SCHEMES};
use crate::ops::{is_bias, Init, ParamDecl, ParamKind};

/// Keyword arguments that belong to the call, not to the op or block.
pub(super) const MODIFIERS: &[&str] = &["frozen", "tie", "init", "bias_init"];

/// Whether `key` is a modifier for a callee whose own arguments are `names`.
pub(super) fn is_modifier(key: &str, names: &[&str]) -> bool {
    MODIFIERS.contains(&key) && !names.contains(&key)
}

#[derive(Debug, Default)]
pub(super) struct Modifiers {
    pub frozen: bool,
    pub tie: Option<(String, Span)>,
    /// The schemes chosen for weights and for biases, with where each was written.
    pub inits: ChosenInits,
}

/// `init=` and `bias_init=` of one call; inside a block call, an inner layer's own choice wins.
#[derive(Clone, Debug, Default)]
pub(super) struct ChosenInits {
    pub weight: Option<(Scheme, Span)>,
    pub bias: Option<(Scheme, Span)>,
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
            if let "init" | "bias_init" = key.name.as_str() {
                let chosen = self.scheme(&arg.value, env, prefix).map(|s| (s, arg.value.span));
                if key.name == "init" {
                    m.inits.weight = chosen;
                } else {
                    m.inits.bias = chosen;
                }
                continue;
            }
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

    /// An initialisation as written: a scheme call (`normal(0, 0.02)`), a scheme's name
    /// (`zeros`), or a string holding either (`"kaiming_normal"`, the YAML surface's form).
    /// Reported and `None` when it is none of these.
    fn scheme(&mut self, expr: &'a Expr, env: usize, prefix: &str) -> Option<Scheme> {
        let (name, args): (&str, &'a [Arg]) = match &expr.kind {
            // Any call: an initialisation is never an op's or a function's value, and a
            // misspelled scheme gets its suggestion.
            ExprKind::Call { callee, args } => (&callee.name, args),
            ExprKind::Name(n) if SCHEMES.contains(&n.as_str()) => (n, &[]),
            _ => {
                let read = match self.eval(expr, env, prefix) {
                    Value::Str(text) => Scheme::parse(&text),
                    Value::Poison => return None,
                    other => {
                        self.report(diag::wrong_type(
                            expr.span,
                            "an initialisation (`normal(0, 0.02)`, `zeros`, ...)",
                            &other,
                        ));
                        return None;
                    }
                };
                return read.map_err(|e| self.report(diag::bad_init(expr.span, &e))).ok();
            }
        };
        let mut read = Vec::new();
        for arg in args {
            // A bare word is a choice (`nonlinearity=relu`), as the string would be.
            let value = match &arg.value.kind {
                ExprKind::Name(word) => SchemeArg::Text(word.clone()),
                _ => match self.eval(&arg.value, env, prefix) {
                    Value::Int(d) => match d.as_const() {
                        Some(v) => SchemeArg::Num(v as f64),
                        None => {
                            self.report(diag::wrong_type(arg.value.span, "a number", &Value::Int(d)));
                            return None;
                        }
                    },
                    Value::Float(f) => SchemeArg::Num(f),
                    Value::Str(s) => SchemeArg::Text(s),
                    Value::Poison => return None,
                    other => {
                        self.report(diag::wrong_type(arg.value.span, "a number or a name", &other));
                        return None;
                    }
                },
            };
            read.push((arg.name.as_ref().map(|n| n.name.clone()), value));
        }
        Scheme::from_call(name, &read).map_err(|e| self.report(diag::bad_init(expr.span, &e))).ok()
    }

    /// Set the chosen schemes of the calls around a new layer on its parameters (`params`, at
    /// `path`): the innermost call's choice for each kind. A scheme that reads fans on a
    /// tensor of fewer than 2 dims is an error at the choice, as PyTorch's.
    pub(super) fn choose_inits(&mut self, params: &mut [ParamDecl], path: &str) {
        let innermost = |pick: fn(&ChosenInits) -> &Option<(Scheme, Span)>| {
            self.inits.iter().rev().find_map(|c| pick(c).clone())
        };
        let (weight, bias) = (innermost(|c| &c.weight), innermost(|c| &c.bias));
        for p in params.iter_mut().filter(|p| p.kind == ParamKind::Weight) {
            let chosen = if is_bias(&p.name) { &bias } else { &weight };
            let Some((scheme, span)) = chosen else { continue };
            if scheme.needs_two_dims() && p.shape.len() < 2 {
                let what = format!("`{}` has shape {}", p.path_under(path), shape_string(&p.shape));
                self.report(diag::init_needs_fans(
                    *span,
                    &format!("{scheme} reads fans, which need 2 or more dims; {what}"),
                ));
                continue;
            }
            p.init = Init::Chosen(scheme.clone());
        }
    }

    /// `init=` or `bias_init=` on a layer that has no such parameter (`ReLU(init=zeros)`,
    /// `Conv2d(..., bias=false, bias_init=zeros)`) would choose nothing: an error at it.
    pub(super) fn check_inits_used(&mut self, chosen: &ChosenInits, node: NodeId) {
        let node = self.graph.node(node);
        if node.failed() {
            return;
        }
        let has =
            |bias: bool| node.params.iter().any(|p| p.kind == ParamKind::Weight && is_bias(&p.name) == bias);
        let unused: Vec<(Span, String)> =
            [("init", &chosen.weight, false), ("bias_init", &chosen.bias, true)]
                .into_iter()
                .filter_map(|(key, c, bias)| c.as_ref().filter(|_| !has(bias)).map(|(_, span)| (*span, key)))
                .map(|(span, key)| {
                    let what = if key == "init" { "learned weight" } else { "bias" };
                    (
                        span,
                        format!("`{key}` on `{}` ({}), which has no {what} to start", node.path, node.kind),
                    )
                })
                .collect();
        for (span, message) in unused {
            self.report(diag::bad_init(span, &message));
        }
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
