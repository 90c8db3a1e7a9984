//! Statements and value expressions: bindings, arithmetic, conditions, asserts.

use super::diagnostics as diag;
use super::env::StmtState;
use super::value::Value;
use super::Elaborator;
use crate::front::ast::{BinOp, DefKind, Expr, ExprKind, Stmt, StrLit, UnOp};
use crate::front::span::Span;
use crate::ir::dim::{Dim, DimError};

/// Whether `e` is a value that builds no layer (a number, a name, a list of them...): as a
/// statement of its own, nothing could take it.
fn is_plain_value(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Name(_)
        | ExprKind::None => true,
        ExprKind::List(items) => items.iter().all(is_plain_value),
        ExprKind::Paren(x) | ExprKind::Unary { operand: x, .. } => is_plain_value(x),
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Index { base: lhs, index: rhs } => {
            is_plain_value(lhs) && is_plain_value(rhs)
        }
        _ => false,
    }
}

impl<'a> Elaborator<'a> {
    /// Run the statements of a body in order; returns the value of `return` (blocks) or of the
    /// last bare expression (`if` branches).
    pub(super) fn run_body(&mut self, env: usize) -> Option<Value> {
        let stmts = self.envs[env].stmts;
        let kind = self.envs[env].kind;
        let prefix = self.envs[env].prefix.clone();
        let prefix = prefix.as_str();
        let mut last = None;
        // A model whose rule on its inputs failed (`assert H % 16 == 0`) checks its other
        // rules and builds nothing: its layers would only repeat the mistake as shape errors.
        let mut refused = false;
        for (k, stmt) in stmts.iter().enumerate() {
            if self.aborted {
                return Some(Value::Poison);
            }
            if refused && !matches!(stmt, Stmt::Assert { .. }) {
                continue;
            }
            self.envs[env].pos = k;
            last = None;
            match stmt {
                Stmt::Let { .. } | Stmt::Input { .. } => {
                    if matches!(self.envs[env].states[k], StmtState::Pending) {
                        self.run_binding(env, k);
                    }
                }
                Stmt::Output(items) => {
                    if kind != DefKind::Model {
                        self.report(diag::misplaced(stmt_span(stmt), "`output`", "a model"));
                        continue;
                    }
                    for item in items {
                        let value = match &item.value {
                            Some(e) => self.eval(e, env, prefix),
                            None => self.lookup(&item.name.name, item.name.span, env),
                        };
                        if let Some(ty) = &item.ty {
                            let what = format!("output `{}`", item.name.name);
                            self.check_type(ty, &value, env, &what, item.name.span);
                        }
                        self.record_output(&item.name, value);
                    }
                }
                Stmt::Return { value, span } => {
                    if kind == DefKind::Model {
                        self.report(diag::misplaced(
                            *span,
                            "`return`",
                            "a block (a model names its results with `output`)",
                        ));
                        continue;
                    }
                    return Some(self.eval(value, env, prefix));
                }
                Stmt::Assert { cond, message, .. } => {
                    // A block whose precondition fails builds nothing: what follows would
                    // only repeat the same mistake as follow-on errors.
                    if !self.check_assert(cond, message.as_ref(), env, prefix) {
                        if kind == DefKind::Block {
                            return Some(Value::Poison);
                        }
                        refused = true;
                    }
                }
                Stmt::Expr(e) => {
                    // Only a body's last statement gives its value (an `if` branch's).
                    if k + 1 < stmts.len() && is_plain_value(e) {
                        self.report(diag::unused_value(e.span));
                    }
                    last = Some(self.eval(e, env, prefix))
                }
            }
        }
        last
    }

    /// Evaluate the binding statement `k` of `env` (a `let` or an `input`).
    fn run_binding(&mut self, env: usize, k: usize) {
        let stmt = &self.envs[env].stmts[k];
        let kind = self.envs[env].kind;
        let prefix = self.envs[env].prefix.clone();
        let prefix = prefix.as_str();
        self.envs[env].states[k] = StmtState::InProgress;
        let saved = self.envs[env].pos;
        self.envs[env].pos = k;
        let values = match stmt {
            Stmt::Let { names, value } => {
                let v = self.eval(value, env, prefix);
                if names.len() == 1 {
                    vec![v]
                } else {
                    match v {
                        Value::List(items) if items.len() == names.len() => items,
                        Value::Poison => vec![Value::Poison; names.len()],
                        other => {
                            let d = diag::destructure(value.span, names.len(), &other);
                            self.report(match self.layer_of_outputs(&other) {
                                Some((path, kind, n)) => d.help(format!(
                                    "`{path}` ({kind}) gives {n} outputs, in its order: name each, `{} = ...`",
                                    (0..n).map(|i| format!("y{i}")).collect::<Vec<_>>().join(", ")
                                )),
                                None => d,
                            });
                            vec![Value::Poison; names.len()]
                        }
                    }
                }
            }
            Stmt::Input { name, ty } => {
                if kind != DefKind::Model {
                    self.report(diag::misplaced(
                        name.span,
                        "`input`",
                        "a model (a block takes tensors as parameters)",
                    ));
                    vec![Value::Poison]
                } else {
                    vec![self.add_input(name, ty, env)]
                }
            }
            _ => Vec::new(),
        };
        self.envs[env].pos = saved;
        self.envs[env].states[k] = StmtState::Done(values);
    }

    /// Resolve a name used at the current position of `env` (see `env.rs` for the rule).
    pub(super) fn lookup(&mut self, name: &str, span: Span, env: usize) -> Value {
        match self.try_lookup(name, span, env) {
            Some(v) => v,
            None => {
                if crate::ops::lookup(name).is_some() || self.defs.contains_key(name) {
                    self.report(diag::layer_as_value(span, name));
                } else {
                    let mut candidates: Vec<&str> = Vec::new();
                    let mut e = Some(env);
                    while let Some(i) = e {
                        candidates.extend(self.envs[i].names());
                        e = self.envs[i].parent.map(|(p, _)| p);
                    }
                    candidates.extend(self.dim_names());
                    self.report(diag::undefined_name(span, name, &candidates));
                }
                Value::Poison
            }
        }
    }

    /// Like [`lookup`](Self::lookup), but `None` instead of an error when nothing binds `name`.
    pub(super) fn try_lookup(&mut self, name: &str, span: Span, env: usize) -> Option<Value> {
        let mut e = env;
        let mut pos = self.envs[env].pos;
        loop {
            if let Some(k) = self.envs[e].binder_before(name, pos) {
                return Some(self.force(e, k, name, span));
            }
            if let Some(v) = self.envs[e].locals.get(name) {
                return Some(v.clone());
            }
            if let Some(k) = self.envs[e].binder_after(name, pos) {
                return Some(self.force(e, k, name, span));
            }
            match self.envs[e].parent {
                Some((p, ppos)) => {
                    e = p;
                    pos = ppos;
                }
                None => break,
            }
        }
        self.dims.contains_key(name).then(|| Value::Int(Dim::sym(name)))
    }

    /// The value `name` gets from binding statement `k` of `env`, evaluating it if needed.
    fn force(&mut self, env: usize, k: usize, name: &str, span: Span) -> Value {
        if matches!(self.envs[env].states[k], StmtState::Pending) {
            if self.depth > super::MAX_DEPTH {
                self.report(diag::too_deep(span));
                return Value::Poison;
            }
            self.depth += 1;
            self.run_binding(env, k);
            self.depth -= 1;
        }
        let stmt = &self.envs[env].stmts[k];
        match &self.envs[env].states[k] {
            StmtState::Done(values) => {
                let i = super::env::bound_names(stmt).position(|n| n.name == name).unwrap_or(0);
                values.get(i).cloned().unwrap_or(Value::Poison)
            }
            _ => {
                let binder = super::env::bound_names(stmt).find(|n| n.name == name);
                self.report(diag::cycle(span, name, binder.map(|b| b.span)));
                Value::Poison
            }
        }
    }

    /// Evaluate an expression for its value.
    pub(super) fn eval(&mut self, e: &'a Expr, env: usize, prefix: &str) -> Value {
        if !self.spend(1, e.span) {
            return Value::Poison;
        }
        if self.depth > super::MAX_DEPTH {
            self.report(diag::too_deep(e.span));
            return Value::Poison;
        }
        self.depth += 1;
        let v = self.eval_inner(e, env, prefix);
        self.depth -= 1;
        v
    }

    fn eval_inner(&mut self, e: &'a Expr, env: usize, prefix: &str) -> Value {
        match &e.kind {
            ExprKind::Int(v) => Value::Int(Dim::konst(*v)),
            ExprKind::Float(v) => Value::Float(*v),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::None => Value::None,
            ExprKind::Str(s) => Value::Str(s.clone()),
            ExprKind::Name(n) => self.lookup(n, e.span, env),
            ExprKind::List(items) => Value::List(items.iter().map(|i| self.eval(i, env, prefix)).collect()),
            ExprKind::Paren(inner) => self.eval(inner, env, prefix),
            ExprKind::Index { base, index } => {
                let list = self.eval(base, env, prefix);
                let i = self.eval(index, env, prefix);
                self.item(list, base.span, i, index.span)
            }
            ExprKind::Call { callee, args } => self.call(
                &callee.name,
                callee.span,
                args,
                None,
                env,
                prefix,
                super::stage::Naming::Auto,
                e.span,
            ),
            ExprKind::Labelled { label, .. } if !self.is_segment(label) => Value::Poison,
            ExprKind::Labelled { label, body } => match &body.kind {
                ExprKind::Call { callee, args } => self.call(
                    &callee.name,
                    callee.span,
                    args,
                    None,
                    env,
                    prefix,
                    super::stage::Naming::Label(label),
                    e.span,
                ),
                _ => {
                    self.report(diag::label_without_input(label));
                    Value::Poison
                }
            },
            ExprKind::Pipe { head, stages } => {
                let mut v = self.eval(head, env, prefix);
                for stage in stages {
                    v = self.apply(stage, v, env, prefix, super::stage::Naming::Auto);
                }
                v
            }
            ExprKind::Unary { op, operand } => {
                let v = self.eval(operand, env, prefix);
                match (op, v) {
                    (_, Value::Poison) => Value::Poison,
                    (UnOp::Neg, Value::Int(d)) => Value::Int(d.neg()),
                    (UnOp::Neg, Value::Float(f)) => Value::Float(-f),
                    (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
                    (op, other) => {
                        let want = if *op == UnOp::Neg { "a number" } else { "a bool" };
                        self.report(diag::wrong_type(operand.span, want, &other));
                        Value::Poison
                    }
                }
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e.span, env, prefix),
            ExprKind::If { cond, then, otherwise } => {
                let Some(c) = self.condition(cond, env, prefix) else {
                    return Value::Poison;
                };
                let branch = if c { Some(then) } else { otherwise.as_ref() };
                match branch {
                    Some(stmts) => {
                        let pos = self.envs[env].pos;
                        let child = self.push_env(stmts, Some((env, pos)), DefKind::Block, prefix);
                        let v = self.run_body(child);
                        self.envs.truncate(child);
                        v.unwrap_or(Value::None)
                    }
                    None => Value::None,
                }
            }
            ExprKind::Repeat(r) => {
                self.report(diag::repeat_without_input(e.span, r));
                Value::Poison
            }
            ExprKind::Spread(_) => {
                self.report(diag::misplaced_spread(e.span));
                Value::Poison
            }
        }
    }

    /// A condition that must be decided now.
    pub(super) fn condition(&mut self, cond: &'a Expr, env: usize, prefix: &str) -> Option<bool> {
        match self.eval(cond, env, prefix) {
            Value::Bool(b) => Some(b),
            Value::Poison => None,
            other => {
                self.report(diag::wrong_type(cond.span, "a bool", &other));
                None
            }
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        lhs: &'a Expr,
        rhs: &'a Expr,
        span: Span,
        env: usize,
        prefix: &str,
    ) -> Value {
        // `&&` and `||` short-circuit, so `stride != 1 || cin != planes` never evaluates more than needed.
        if matches!(op, BinOp::And | BinOp::Or) {
            let Some(l) = self.condition(lhs, env, prefix) else { return Value::Poison };
            if (op == BinOp::And && !l) || (op == BinOp::Or && l) {
                return Value::Bool(l);
            }
            return self.condition(rhs, env, prefix).map_or(Value::Poison, Value::Bool);
        }
        let l = self.eval(lhs, env, prefix);
        let r = self.eval(rhs, env, prefix);
        if l.is_poison() || r.is_poison() {
            return Value::Poison;
        }
        match (&l, &r) {
            (Value::Tensor(a), Value::Tensor(b)) => {
                let name = match op {
                    BinOp::Add => "add",
                    BinOp::Sub => "sub",
                    BinOp::Mul => "mul",
                    BinOp::Div => "div",
                    _ => {
                        self.report(diag::bad_operands(span, op, &l, &r));
                        return Value::Poison;
                    }
                };
                self.elementwise(name, a.clone(), b.clone(), span, prefix)
            }
            (Value::Int(a), Value::Int(b)) => self.int_op(op, a, b, span, rhs.span),
            (Value::Float(_) | Value::Int(_), Value::Float(_) | Value::Int(_)) => {
                match (self.as_float(&l), self.as_float(&r)) {
                    (Some(a), Some(b)) => float_op(op, a, b).unwrap_or_else(|| {
                        self.report(diag::bad_operands(span, op, &l, &r));
                        Value::Poison
                    }),
                    _ => {
                        self.report(diag::undecidable(
                            span,
                            &format!("{} {} {}", l.display(), op.symbol(), r.display()),
                        ));
                        Value::Poison
                    }
                }
            }
            (Value::Bool(a), Value::Bool(b)) if matches!(op, BinOp::Eq | BinOp::Ne) => {
                Value::Bool((a == b) == (op == BinOp::Eq))
            }
            (Value::Str(a), Value::Str(b)) if matches!(op, BinOp::Eq | BinOp::Ne) => {
                Value::Bool((a == b) == (op == BinOp::Eq))
            }
            (Value::Str(a), Value::Str(b)) if op == BinOp::Add => Value::Str(format!("{a}{b}")),
            (Value::List(a), Value::List(b)) if op == BinOp::Add => {
                self.made_list(a.iter().chain(b).cloned().collect(), span)
            }
            (Value::List(items), Value::Int(n)) | (Value::Int(n), Value::List(items)) if op == BinOp::Mul => {
                self.repeated(items, n, span)
            }
            _ => {
                self.report(diag::bad_operands(span, op, &l, &r));
                Value::Poison
            }
        }
    }

    /// `items * n`: the list repeated `n` times (`[64] * 3`), as Python's.
    fn repeated(&mut self, items: &[Value], n: &Dim, span: Span) -> Value {
        let Some(n) = self.decide(n) else {
            self.report(diag::not_constant(span, n));
            return Value::Poison;
        };
        // Charged before it is built: a list as long as the work budget is not a model's table.
        let size = items.iter().map(size_of).sum::<u64>().saturating_mul(n.max(0) as u64);
        if !self.spend(size, span) {
            return Value::Poison;
        }
        Value::List((0..n.max(0)).flat_map(|_| items.iter().cloned()).collect())
    }

    /// A list made by `+`, charged to the work budget by its size.
    fn made_list(&mut self, items: Vec<Value>, span: Span) -> Value {
        if !self.spend(items.iter().map(size_of).sum(), span) {
            return Value::Poison;
        }
        Value::List(items)
    }

    /// The layer whose outputs `v` lists (an LSTM's output, h_n, c_n): its path, kind and
    /// how many there are.
    fn layer_of_outputs(&self, v: &Value) -> Option<(String, &'static str, usize)> {
        let Value::List(items) = v else { return None };
        let nodes: Vec<_> = items
            .iter()
            .map(|i| match i {
                Value::Tensor(t) => Some(t.tensor.node),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let first = *nodes.first()?;
        if nodes.iter().any(|n| *n != first) {
            return None;
        }
        let node = self.graph.node(first);
        Some((node.path.clone(), node.kind, items.len()))
    }

    /// Item `index` of `list` (a negative index counts from the end).
    fn item(&mut self, list: Value, list_span: Span, index: Value, index_span: Span) -> Value {
        let items = match list {
            Value::Poison => return Value::Poison,
            Value::List(items) => items,
            other => {
                self.report(diag::not_indexable(list_span, &other));
                return Value::Poison;
            }
        };
        let i = match index {
            Value::Poison => return Value::Poison,
            Value::Int(d) => match self.decide(&d) {
                Some(i) => i,
                None => {
                    self.report(diag::not_constant(index_span, &d));
                    return Value::Poison;
                }
            },
            other => {
                self.report(diag::wrong_type(index_span, "an int index", &other));
                return Value::Poison;
            }
        };
        let len = items.len();
        let at = if i < 0 { i.checked_add(len as i64) } else { Some(i) };
        match at.and_then(|a| usize::try_from(a).ok()).filter(|a| *a < len) {
            Some(a) => items.into_iter().nth(a).unwrap_or(Value::Poison),
            None => {
                self.report(diag::index_out_of_range(index_span, i, len));
                Value::Poison
            }
        }
    }

    fn as_float(&self, v: &Value) -> Option<f64> {
        match v {
            Value::Float(f) => Some(*f),
            Value::Int(d) => self.decide(d).map(|v| v as f64),
            _ => None,
        }
    }

    fn int_op(&mut self, op: BinOp, a: &Dim, b: &Dim, span: Span, rhs_span: Span) -> Value {
        let divided = |r: Result<Dim, DimError>, this: &mut Self| match r {
            Ok(d) => Value::Int(d),
            Err(e) => {
                this.report(diag::division(rhs_span, &e));
                Value::Poison
            }
        };
        let v = match op {
            BinOp::Add => Value::Int(a.add(b)),
            BinOp::Sub => Value::Int(a.sub(b)),
            BinOp::Mul => Value::Int(a.mul(b)),
            BinOp::Div => divided(a.floor_div(b), self),
            BinOp::Rem => divided(a.rem(b), self),
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ord = a.compare(b).or_else(|| self.decide(&a.sub(b)).map(|v| v.cmp(&0)));
                let Some(ord) = ord else {
                    self.report(diag::undecidable(span, &format!("{a} {} {b}", op.symbol())));
                    return Value::Poison;
                };
                use std::cmp::Ordering::*;
                Value::Bool(match op {
                    BinOp::Eq => ord == Equal,
                    BinOp::Ne => ord != Equal,
                    BinOp::Lt => ord == Less,
                    BinOp::Le => ord != Greater,
                    BinOp::Gt => ord == Greater,
                    _ => ord != Less,
                })
            }
            BinOp::And | BinOp::Or => Value::Poison,
        };
        if let Value::Int(d) = &v {
            if d.is_saturated() {
                self.report(diag::overflow(span));
                return Value::Poison;
            }
        }
        v
    }

    fn check_assert(&mut self, cond: &'a Expr, message: Option<&StrLit>, env: usize, prefix: &str) -> bool {
        if self.condition(cond, env, prefix) == Some(false) {
            let text = message.map(|m| (self.interpolate(m, env), m.span));
            self.report(diag::assert_failed(cond.span, text, &self.chain));
            return false;
        }
        true
    }

    /// Replace `{name}` in a message by the value of `name`.
    pub(super) fn interpolate(&mut self, msg: &StrLit, env: usize) -> String {
        // Its cost grows with the message, which a loop may format many times.
        self.spend(msg.value.len() as u64 / 64, msg.span);
        let mut out = String::new();
        let mut rest = msg.value.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    let name = after[..close].trim();
                    match self.try_lookup(name, msg.span, env) {
                        // A dim reads as the value it is compiled with (`--bind H=200`: 200).
                        Some(Value::Int(d)) => match self.decide(&d) {
                            Some(n) => out.push_str(&n.to_string()),
                            None => out.push_str(&d.to_string()),
                        },
                        Some(v) => out.push_str(&v.display()),
                        None => out.push_str(&format!("{{{name}}}")),
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }
}

fn float_op(op: BinOp, a: f64, b: f64) -> Option<Value> {
    Some(match op {
        BinOp::Add => Value::Float(a + b),
        BinOp::Sub => Value::Float(a - b),
        BinOp::Mul => Value::Float(a * b),
        BinOp::Div if b != 0.0 => Value::Float(a / b),
        BinOp::Eq => Value::Bool(a == b),
        BinOp::Ne => Value::Bool(a != b),
        BinOp::Lt => Value::Bool(a < b),
        BinOp::Le => Value::Bool(a <= b),
        BinOp::Gt => Value::Bool(a > b),
        BinOp::Ge => Value::Bool(a >= b),
        _ => return None,
    })
}

/// The span of a statement, for messages about the statement as a whole.
pub(super) fn stmt_span(s: &Stmt) -> Span {
    match s {
        Stmt::Let { names, value } => names.first().map_or(value.span, |n| n.span.to(value.span)),
        Stmt::Input { name, ty } => name.span.to(ty.span),
        Stmt::Output(items) => items.first().map_or_else(Span::default, |i| i.name.span),
        Stmt::Return { span, .. } | Stmt::Assert { span, .. } => *span,
        Stmt::Expr(e) => e.span,
    }
}

/// The values a value holds, itself included: what copying it costs.
fn size_of(v: &Value) -> u64 {
    match v {
        Value::List(items) => 1 + items.iter().map(size_of).sum::<u64>(),
        _ => 1,
    }
}
