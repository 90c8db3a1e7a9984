//! Fragments parsed from a YAML scalar carry spans relative to the scalar; these move them
//! onto the YAML text.

use crate::front::ast::*;
use crate::front::span::Span;

pub(super) fn respan_expr(e: &mut Expr, s: Span) {
    e.span = s;
    match &mut e.kind {
        ExprKind::List(items) => items.iter_mut().for_each(|x| respan_expr(x, s)),
        ExprKind::Call { callee, args } => {
            callee.span = s;
            for a in args {
                a.name.iter_mut().for_each(|n| n.span = s);
                respan_expr(&mut a.value, s);
            }
        }
        ExprKind::Unary { operand: x, .. } | ExprKind::Paren(x) => respan_expr(x, s),
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Index { base: lhs, index: rhs } => {
            respan_expr(lhs, s);
            respan_expr(rhs, s);
        }
        ExprKind::Pipe { head, stages } => {
            respan_expr(head, s);
            stages.iter_mut().for_each(|x| respan_expr(x, s));
        }
        ExprKind::Spread(inner) => respan_expr(inner, s),
        ExprKind::Labelled { label, body } => {
            label.span = s;
            respan_expr(body, s);
        }
        ExprKind::If { cond, then, otherwise } => {
            respan_expr(cond, s);
            then.iter_mut().chain(otherwise.iter_mut().flatten()).for_each(|st| respan_stmt(st, s));
        }
        ExprKind::Repeat(r) => {
            match &mut r.over {
                Over::Count(n) => respan_expr(n, s),
                Over::Range { var, start, end } => {
                    var.span = s;
                    respan_expr(start, s);
                    respan_expr(end, s);
                }
                Over::Items { vars, list } => {
                    vars.iter_mut().for_each(|v| v.span = s);
                    respan_expr(list, s);
                }
            }
            r.name_format.iter_mut().for_each(|f| f.span = s);
            respan_expr(&mut r.body, s);
        }
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Name(_)
        | ExprKind::None => {}
    }
}

pub(super) fn respan_stmt(st: &mut Stmt, s: Span) {
    match st {
        Stmt::Let { names, value } => {
            names.iter_mut().for_each(|n| n.span = s);
            respan_expr(value, s);
        }
        Stmt::Input { name, ty } => {
            name.span = s;
            respan_type(ty, s);
        }
        Stmt::Output(items) => {
            for item in items {
                item.name.span = s;
                item.ty.iter_mut().for_each(|t| respan_type(t, s));
                item.value.iter_mut().for_each(|v| respan_expr(v, s));
            }
        }
        Stmt::Return { value: e, span } | Stmt::Assert { cond: e, span, .. } => {
            *span = s;
            respan_expr(e, s);
        }
        Stmt::Expr(e) => respan_expr(e, s),
    }
    if let Stmt::Assert { message: Some(m), .. } = st {
        m.span = s;
    }
}

pub(super) fn respan_type(t: &mut TypeExpr, s: Span) {
    t.span = s;
    match &mut t.kind {
        TypeKind::Tensor { dims, dtype } => {
            dims.iter_mut().for_each(|d| respan_expr(d, s));
            dtype.iter_mut().for_each(|d| d.span = s);
        }
        TypeKind::List(item) => respan_type(item, s),
        _ => {}
    }
}

pub(super) fn respan_param(p: &mut Param, s: Span) {
    p.name.span = s;
    respan_type(&mut p.ty, s);
    p.default.iter_mut().for_each(|d| respan_expr(d, s));
}
