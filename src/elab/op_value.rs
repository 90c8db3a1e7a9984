//! Ops and blocks as values: a block parameter of type `op` (`act: op = ReLU`) takes an op or a
//! block by name, or a call of one with its arguments (`act=LeakyReLU(0.2)`), and the block
//! applies it as a layer (`x |> act`, `act(x)`). The arguments are checked where it is applied,
//! against the op's own signature, and reported where they were written.

use super::diagnostics as diag;
use super::stage::Naming;
use super::value::Value;
use super::Elaborator;
use crate::front::ast::{Arg, Def, Expr, ExprKind, Param, TypeExpr, TypeKind};
use crate::front::span::Span;

/// What a `Value::Op` refers to: the callee and the arguments written with it, read in the
/// scope (`env`) where they were written.
pub(super) struct OpValue<'a> {
    name: &'a str,
    name_span: Span,
    args: &'a [Arg],
    env: usize,
}

impl<'a> Elaborator<'a> {
    /// `expr` as an op value, if it names an op or a block, alone or called with arguments.
    fn op_value(&mut self, expr: &'a Expr, env: usize) -> Option<Value> {
        let (name, name_span, args) = match &expr.kind {
            ExprKind::Name(name) => (name.as_str(), expr.span, &[][..]),
            ExprKind::Call { callee, args } => (callee.name.as_str(), callee.span, args.as_slice()),
            ExprKind::Paren(inner) => return self.op_value(inner, env),
            // `act=if hs { Hardswish } else { ReLU }`: the branch the condition picks.
            ExprKind::If { cond, then, otherwise } => {
                let branch = if self.condition(cond, env, "")? { Some(then) } else { otherwise.as_ref() };
                return match branch.map(Vec::as_slice) {
                    Some([crate::front::ast::Stmt::Expr(e)]) => self.op_value(e, env),
                    None => Some(Value::None),
                    Some(_) => None,
                };
            }
            _ => return None,
        };
        if crate::ops::lookup(name).is_none() && !self.defs.contains_key(name) {
            return None;
        }
        self.op_values.push(OpValue { name, name_span, args, env });
        Some(Value::Op { id: self.op_values.len() - 1, name: name.to_string() })
    }

    /// Refuses an `op` parameter named like an op or a block: `x |> scale` would call the op
    /// `scale`, never the parameter.
    pub(super) fn check_op_param(&mut self, param: &Param) -> bool {
        let shadowed = crate::ops::lookup(&param.name.name).is_some()
            || self.defs.contains_key(param.name.name.as_str());
        if param.ty.kind == TypeKind::Op && shadowed {
            self.report(diag::op_param_named_like_op(&param.name));
            return false;
        }
        true
    }

    /// A parameter's value from `expr`: an op value where the type is `op` and `expr` names one.
    pub(super) fn param_value(&mut self, ty: &TypeExpr, expr: &'a Expr, env: usize, prefix: &str) -> Value {
        let op = match ty.kind {
            TypeKind::Op => self.op_value(expr, env),
            _ => None,
        };
        op.unwrap_or_else(|| self.eval(expr, env, prefix))
    }

    /// A block call's arguments that are op values, evaluated before the call is read: a
    /// keyword naming an `op` parameter, or a bare op name given by position (which has no
    /// other meaning as an argument).
    pub(super) fn op_arguments(
        &mut self,
        def: &'a Def,
        args: &'a [Arg],
        env: usize,
    ) -> Vec<Option<(Value, Span)>> {
        let is_op = |name: &str| def.params.iter().any(|p| p.name.name == name && p.ty.kind == TypeKind::Op);
        let takes_ops = def.params.iter().any(|p| p.ty.kind == TypeKind::Op);
        args.iter()
            .map(|arg| {
                let wanted = match &arg.name {
                    Some(key) => is_op(&key.name),
                    None => takes_ops && matches!(arg.value.kind, ExprKind::Name(_)),
                };
                wanted.then(|| self.op_value(&arg.value, env)).flatten().map(|v| (v, arg.value.span))
            })
            .collect()
    }

    /// The op value a binding named `name` holds (`Some(None)`: `none`, no layer), where no op
    /// or block has that name.
    pub(super) fn local_op(&self, name: &str, env: usize) -> Option<Option<usize>> {
        if crate::ops::lookup(name).is_some() || self.defs.contains_key(name) {
            return None;
        }
        let mut e = Some(env);
        while let Some(i) = e {
            if let Some(v) = self.envs[i].locals.get(name) {
                return match v {
                    Value::Op { id, .. } => Some(Some(*id)),
                    Value::None => Some(None),
                    _ => None,
                };
            }
            e = self.envs[i].parent.map(|(p, _)| p);
        }
        None
    }

    /// Apply op value `id` to `piped` (`x |> act`), or call it with `args` (`act(x)`, only
    /// when it was written without arguments of its own); `env` is the caller's scope.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_op(
        &mut self,
        id: Option<usize>,
        args: &'a [Arg],
        piped: Option<Value>,
        env: usize,
        prefix: &str,
        naming: Naming,
        span: Span,
    ) -> Value {
        // `none`: no layer; a piped tensor passes through, and `act(x)` is `x`.
        let Some(id) = id else {
            return match (piped, args) {
                (Some(v), []) => v,
                (None, [only]) if only.name.is_none() => self.eval(&only.value, env, prefix),
                _ => {
                    self.report(diag::op_value_called_with_arguments(span, "none", span));
                    Value::Poison
                }
            };
        };
        let Some(op) = self.op_values.get(id) else { return Value::Poison };
        let (name, name_span, own, env) = (op.name, op.name_span, op.args, op.env);
        if !own.is_empty() && !args.is_empty() {
            self.report(diag::op_value_called_with_arguments(span, name, name_span));
            return Value::Poison;
        }
        let args = if own.is_empty() { args } else { own };
        self.call(name, name_span, args, piped, env, prefix, naming, span)
    }

    /// `result`, unless it holds an op value, which must not outlive the block that made it.
    pub(super) fn kept_in_scope(&mut self, result: Value, span: Span) -> Value {
        if holds_op(&result) {
            self.report(diag::op_value_returned(span));
            return Value::Poison;
        }
        result
    }
}

fn holds_op(v: &Value) -> bool {
    match v {
        Value::Op { .. } => true,
        Value::List(items) => items.iter().any(holds_op),
        _ => false,
    }
}
