//! Pipe stages and the paths they give layers: labels, numbered groups, `repeat`.
//!
//! A labelled layer `conv1: Conv2d(...)` is at `prefix.conv1`. A bracketed list, a
//! parenthesised chain and each `repeat` iteration number their elements `0, 1, …` as
//! `nn.Sequential` does, every element counting whether it has parameters or not; under a
//! label they live below it (`downsample.0`), without one directly in the current prefix.
//! Unlabelled layers outside groups get a readable unique name (`relu`, `relu_1`).

use super::diagnostics as diag;
use super::value::Value;
use super::Elaborator;
use crate::front::ast::{DefKind, Expr, ExprKind, Ident, Over, Repeat};
use crate::front::span::Span;
use crate::ir::graph::Group;

/// How the next layer is named.
#[derive(Clone, Copy, Debug)]
pub(super) enum Naming<'n> {
    Auto,
    Label(&'n Ident),
    Index(usize),
    /// A `repeat ... as "fc{i}"` iteration name.
    Named(&'n str),
    /// `...stage`: no path segment of its own; its layers are numbered in the sequence
    /// around it.
    Spliced,
}

/// A sequence whose items are numbered by one counter because some of them are spliced
/// (`[stem, ...repeat n { Block }, head]`), placed (`2: LayerNorm`) or optional (`if se {
/// SE }` without `else`, which takes no number when absent, as PyTorch appends layers
/// conditionally): every layer or group numbered directly under `prefix` takes the next number.
pub(super) struct Splice {
    prefix: String,
    next: usize,
    /// Inside a spliced item: sequences met at `prefix` are flattened into this one.
    open: bool,
}

pub(super) fn join(prefix: &str, segment: &str) -> String {
    if prefix.is_empty() {
        segment.to_string()
    } else {
        format!("{prefix}.{segment}")
    }
}

impl<'a> Elaborator<'a> {
    /// Feed `input` through one stage of a pipe.
    pub(super) fn apply(
        &mut self,
        stage: &'a Expr,
        input: Value,
        env: usize,
        prefix: &str,
        naming: Naming,
    ) -> Value {
        if !self.spend(1, stage.span) {
            return Value::Poison;
        }
        if input.is_poison() {
            // The input's error is reported already; a misspelled layer after it is an
            // independent error and is reported too.
            self.check_callee(stage);
            return Value::Poison;
        }
        match &stage.kind {
            ExprKind::Labelled { label, body } => {
                if !self.is_segment(label) {
                    return Value::Poison;
                }
                self.apply(body, input, env, prefix, Naming::Label(label))
            }
            ExprKind::Call { callee, args } => {
                self.call(&callee.name, callee.span, args, Some(input), env, prefix, naming, stage.span)
            }
            ExprKind::Name(name) => {
                if let Some(id) = self.local_op(name, env) {
                    return self.apply_op(id, &[], Some(input), env, prefix, naming, stage.span);
                }
                if self.is_value_name(name, env) {
                    self.report(diag::value_as_layer(stage.span, name));
                    return Value::Poison;
                }
                self.call(name, stage.span, &[], Some(input), env, prefix, naming, stage.span)
            }
            ExprKind::List(items) => {
                let stages: Vec<&'a Expr> = items.iter().collect();
                self.group(&stages, input, env, prefix, naming, stage.span)
            }
            ExprKind::Paren(inner) => match &inner.kind {
                ExprKind::Pipe { head, stages } => {
                    let all: Vec<&'a Expr> = std::iter::once(&**head).chain(stages.iter()).collect();
                    self.group(&all, input, env, prefix, naming, stage.span)
                }
                _ => self.apply(inner, input, env, prefix, naming),
            },
            ExprKind::Pipe { head, stages } => {
                let all: Vec<&'a Expr> = std::iter::once(&**head).chain(stages.iter()).collect();
                self.group(&all, input, env, prefix, naming, stage.span)
            }
            ExprKind::Repeat(r) => self.repeat(r, input, env, prefix, naming, stage.span),
            // A block call spread outside a sequence is inlined: its layers take their paths
            // at the caller's level, with no segment of its own.
            ExprKind::Spread(inner) if self.is_block_call(inner) => {
                self.apply(inner, input, env, prefix, Naming::Spliced)
            }
            ExprKind::Spread(_) => {
                self.report(diag::misplaced_spread(stage.span));
                Value::Poison
            }
            ExprKind::If { cond, then, otherwise } => {
                let Some(c) = self.condition(cond, env, prefix) else { return Value::Poison };
                let branch = if c { Some(then) } else { otherwise.as_ref() };
                match branch.map(|b| b.as_slice()) {
                    Some([crate::front::ast::Stmt::Expr(e)]) => self.apply(e, input, env, prefix, naming),
                    None => input,
                    Some(_) => {
                        self.report(diag::expected_layer(
                            stage.span,
                            "an `if` whose branches are not single layers",
                        ));
                        Value::Poison
                    }
                }
            }
            _ => {
                self.report(diag::expected_layer(stage.span, "a value"));
                Value::Poison
            }
        }
    }

    /// Report an unknown op or block, or an unknown keyword of one, in a stage that cannot run
    /// (an earlier stage failed): each mistake of a chain is reported, not only the first.
    fn check_callee(&mut self, stage: &'a Expr) {
        let (name, span, args) = match &stage.kind {
            ExprKind::Labelled { body, .. } => return self.check_callee(body),
            ExprKind::Call { callee, args } => (callee.name.as_str(), callee.span, args.as_slice()),
            ExprKind::Name(n) => (n.as_str(), stage.span, &[][..]),
            _ => return,
        };
        let names: Vec<&str> = match (crate::ops::lookup(name), self.defs.get(name)) {
            (Some(op), _) => op.signature.arg_names(),
            (None, Some(def)) => def.params.iter().map(|p| p.name.name.as_str()).collect(),
            (None, None) => return self.report_unknown_op(name, span),
        };
        let order: Vec<usize> = (0..names.len()).collect();
        let (_, problems) = super::reading::assign(&names, &order, args, (true, name), span);
        for problem in problems {
            if let super::reading::Problem::UnknownKeyword(key) = problem {
                self.report(diag::unknown_keyword(key, name, &names));
            }
        }
    }

    /// Whether `name` names a value (a binding, a parameter, a dim) rather than a layer.
    fn is_value_name(&self, name: &str, env: usize) -> bool {
        if crate::ops::lookup(name).is_some() || self.defs.contains_key(name) {
            return false;
        }
        let mut e = Some(env);
        while let Some(i) = e {
            if self.envs[i].locals.contains_key(name) || self.envs[i].binders.contains_key(name) {
                return true;
            }
            e = self.envs[i].parent.map(|(p, _)| p);
        }
        self.dims.contains_key(name)
    }

    /// A numbered sequence of stages (a list, a parenthesised chain, a repeat body).
    fn group(
        &mut self,
        stages: &[&'a Expr],
        input: Value,
        env: usize,
        prefix: &str,
        naming: Naming,
        span: Span,
    ) -> Value {
        let inner = self.group_prefix(prefix, naming, "Sequential", span);
        let spliced = stages.iter().any(|s| {
            matches!(s.kind, ExprKind::Spread(_) | ExprKind::If { otherwise: None, .. })
                || index_label(s).is_some()
        });
        // A sequence flattened into an enclosing splice keeps counting with it.
        let own = spliced && !self.splicing_at(&inner);
        let outer = own.then(|| self.splice.replace(Splice { prefix: inner.clone(), next: 0, open: false }));
        let mut v = input;
        for (i, s) in stages.iter().enumerate() {
            v = match &s.kind {
                ExprKind::Spread(item) => {
                    let was_open = self.splice.as_mut().map(|sp| std::mem::replace(&mut sp.open, true));
                    let v = self.apply(item, v, env, &inner, Naming::Spliced);
                    if let (Some(sp), Some(was)) = (self.splice.as_mut(), was_open) {
                        sp.open = was;
                    }
                    v
                }
                _ => {
                    let v = self.apply(s, v, env, &inner, Naming::Index(i));
                    // A labelled item takes its place in the numbering: `2:` puts the next
                    // item at 3, a name takes one number as its position would.
                    if let Some(sp) = self.splice.as_mut().filter(|sp| sp.prefix == inner) {
                        match index_label(s) {
                            Some(n) => sp.next = n + 1,
                            None if matches!(s.kind, ExprKind::Labelled { .. }) => sp.next += 1,
                            None => {}
                        }
                    }
                    v
                }
            };
        }
        if let Some(outer) = outer {
            self.splice = outer;
        }
        v
    }

    fn is_block_call(&self, e: &Expr) -> bool {
        matches!(&e.kind, ExprKind::Call { callee, .. } if self.defs.contains_key(callee.name.as_str()))
    }

    /// Whether a splice numbers the layers directly under `prefix`.
    fn splicing_at(&self, prefix: &str) -> bool {
        self.splice.as_ref().is_some_and(|s| s.prefix == prefix)
    }

    /// The prefix a group's elements live under: below its name, or the current prefix when
    /// it has none.
    fn group_prefix(&mut self, prefix: &str, naming: Naming, kind: &str, span: Span) -> String {
        let flattened = self.splice.as_ref().is_some_and(|s| s.open && s.prefix == prefix);
        match naming {
            Naming::Auto | Naming::Spliced => prefix.to_string(),
            Naming::Index(_) if flattened => prefix.to_string(),
            _ => {
                let path = self.node_path(prefix, naming, "");
                self.claim_path(&path, span, true);
                self.add_group(&path, kind, span);
                path
            }
        }
    }

    /// Record a group (a block instance, a numbered sequence) once; groups count against the
    /// node cap like layers, since `repeat` can make them without making any layer.
    pub(super) fn add_group(&mut self, path: &str, kind: &str, span: Span) {
        if self.graph.groups.contains_key(path) || !self.count_nodes(1, span) {
            return;
        }
        self.graph.groups.insert(path.to_string(), Group { kind: kind.to_string(), span });
    }

    fn repeat(
        &mut self,
        r: &'a Repeat,
        input: Value,
        env: usize,
        prefix: &str,
        naming: Naming,
        span: Span,
    ) -> Value {
        let Some(iterations) = self.iterations(&r.over, env, prefix, span) else { return Value::Poison };
        let inner = self.group_prefix(prefix, naming, "Repeat", span);
        let pos = self.envs[env].pos;
        self.running(span, "`repeat`".into(), |this| {
            let mut v = input;
            for (n, bound) in iterations.into_iter().enumerate() {
                if v.is_poison() || !this.spend(1, span) {
                    return Value::Poison;
                }
                let child = this.push_env(&[], Some((env, pos)), DefKind::Block, &inner);
                for (var, value) in bound {
                    this.envs[child].locals.insert(var.name.clone(), value);
                }
                let name = r.name_format.as_ref().map(|f| this.interpolate(f, child));
                if let (Some(name), Some(format)) = (&name, &r.name_format) {
                    if !is_segment(name) {
                        this.report(diag::bad_repeat_name(format.span, name));
                        return Value::Poison;
                    }
                }
                let naming = match &name {
                    Some(s) => Naming::Named(s),
                    None => Naming::Index(n),
                };
                v = this.apply(&r.body, v, child, &inner, naming);
                this.envs.truncate(child);
            }
            v
        })
    }

    /// What each iteration of a repeat binds: its index, or a list's item (unpacked into
    /// several names). The count is checked against the layer cap before anything is made.
    #[allow(clippy::type_complexity)]
    fn iterations(
        &mut self,
        over: &'a Over,
        env: usize,
        prefix: &str,
        span: Span,
    ) -> Option<Vec<Vec<(&'a Ident, Value)>>> {
        let room = (self.max_nodes - self.nodes.min(self.max_nodes)) as i64;
        let too_many = |this: &mut Self, count: i64| {
            this.report(diag::size_cap(span, Some(count), this.max_nodes));
            this.aborted = true;
            None
        };
        let (var, start, end_expr) = match over {
            Over::Count(n) => (None, 0, n),
            Over::Range { var, start, end } => (Some(var), self.const_int(start, env, prefix)?, end),
            Over::Items { vars, list } => {
                let items = match self.eval(list, env, prefix) {
                    Value::List(items) => items,
                    Value::Poison => return None,
                    other => {
                        self.report(diag::wrong_type(list.span, "a list to repeat over", &other));
                        return None;
                    }
                };
                if items.len() as i64 > room {
                    return too_many(self, items.len() as i64);
                }
                return items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| self.unpack(vars, i, item, list.span))
                    .collect();
            }
        };
        let end = self.const_int(end_expr, env, prefix)?;
        let count = end.saturating_sub(start);
        if count < 0 {
            self.report(diag::negative_repeat(end_expr.span, start, end));
            return None;
        }
        if count > room {
            return too_many(self, count);
        }
        Some((start..end).map(|i| var.map(|v| (v, Value::Int(i.into()))).into_iter().collect()).collect())
    }

    /// Item `index` of a list bound to `vars`: the item itself to one name, its own items to
    /// several.
    fn unpack(
        &mut self,
        vars: &'a [Ident],
        index: usize,
        item: Value,
        at: Span,
    ) -> Option<Vec<(&'a Ident, Value)>> {
        match (vars, item) {
            ([var], item) => Some(vec![(var, item)]),
            (_, Value::List(parts)) if parts.len() == vars.len() => Some(vars.iter().zip(parts).collect()),
            (_, other) => {
                self.report(
                    diag::destructure(at, vars.len(), &other).note(format!("item {index} of the list")),
                );
                None
            }
        }
    }

    /// An integer that must be known now (a repeat count), from symbols or the dims' values.
    pub(super) fn const_int(&mut self, e: &'a Expr, env: usize, prefix: &str) -> Option<i64> {
        match self.eval(e, env, prefix) {
            Value::Int(d) => match self.decide(&d) {
                Some(v) => Some(v),
                None => {
                    self.report(diag::unbound(e.span, &d, "the count of a `repeat`"));
                    None
                }
            },
            Value::Poison => None,
            other => {
                self.report(diag::wrong_type(e.span, "an int", &other));
                None
            }
        }
    }

    /// The path of a layer or group named by `naming` under `prefix`.
    pub(super) fn node_path(&mut self, prefix: &str, naming: Naming, base: &str) -> String {
        if matches!(naming, Naming::Index(_) | Naming::Auto | Naming::Spliced) {
            if let Some(s) = self.splice.as_mut().filter(|s| s.prefix == prefix) {
                s.next += 1;
                return join(prefix, &(s.next - 1).to_string());
            }
        }
        match naming {
            Naming::Spliced => prefix.to_string(),
            Naming::Label(l) => join(prefix, &l.name),
            Naming::Index(i) => join(prefix, &i.to_string()),
            Naming::Named(s) => join(prefix, s),
            Naming::Auto => {
                // The key is the first name it gives; the count is stored once it is found.
                let first = join(prefix, base);
                let mut n = self.auto_names.get(&first).copied().unwrap_or(0);
                let path = loop {
                    let path = match n {
                        0 => first.clone(),
                        _ => format!("{first}_{n}"),
                    };
                    n += 1;
                    if !self.paths.contains_key(&path) {
                        break path;
                    }
                };
                match self.auto_names.get_mut(&first) {
                    Some(count) => *count = n,
                    None => {
                        self.auto_names.insert(first, n);
                    }
                }
                path
            }
        }
    }

    /// Take a path for a layer or group; two owners of one path are an error when either holds
    /// parameters (parameter-free layers such as a shared `relu` may repeat, as in PyTorch).
    pub(super) fn claim_path(&mut self, path: &str, span: Span, has_params: bool) {
        // One hash of the path: a new one (the usual case) goes in where it was looked for.
        let clash = match self.paths.entry(path.to_string()) {
            std::collections::hash_map::Entry::Occupied(taken) => {
                let (prev, prev_params) = *taken.get();
                (has_params || prev_params).then_some(prev)
            }
            std::collections::hash_map::Entry::Vacant(free) => {
                free.insert((span, has_params));
                None
            }
        };
        if let Some(prev) = clash {
            self.report(diag::duplicate_path(span, path, prev));
        }
    }
}

/// The index a stage's numeric label gives it (`2: LayerNorm`).
fn index_label(stage: &Expr) -> Option<usize> {
    match &stage.kind {
        ExprKind::Labelled { label, .. } => label.name.parse().ok(),
        _ => None,
    }
}

/// Whether `name` is one segment of a parameter path: not empty, no `.`.
fn is_segment(name: &str) -> bool {
    !name.is_empty() && !name.contains('.')
}

impl Elaborator<'_> {
    /// Whether a label (a quoted one may hold any text) is one path segment; reports it if not.
    pub(super) fn is_segment(&mut self, label: &Ident) -> bool {
        if is_segment(&label.name) {
            return true;
        }
        self.report(diag::bad_label(label.span, &label.name));
        false
    }
}
