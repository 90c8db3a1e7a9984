//! Declared types as assertions: block parameters, block results and model outputs.
//!
//! In a tensor type each dim is a pattern: a name not yet bound binds to the dim it meets
//! (`[N, cin, h, w]` binds `cin`, `h`, `w`), a name met again must be equal, `_` matches
//! anything, and any other expression is evaluated and compared.

use super::diagnostics as diag;
use super::value::Value;
use super::Elaborator;
use crate::front::ast::{ExprKind, TypeExpr, TypeKind};
use crate::front::span::Span;
use crate::ir::dim::Dim;

impl<'a> Elaborator<'a> {
    /// Check `value` against `ty`, binding fresh dim names in `env`; reports and returns false
    /// on a mismatch.
    pub(super) fn check_type(
        &mut self,
        ty: &'a TypeExpr,
        value: &Value,
        env: usize,
        what: &str,
        at: Span,
    ) -> bool {
        if value.is_poison() {
            return false;
        }
        let (dims, dtype) = match (&ty.kind, value) {
            (TypeKind::Tensor { dims, dtype }, Value::Tensor(_)) => (dims, dtype),
            (kind, v) if super::call::kind_fits(kind, v) => return true,
            (_, other) => {
                self.report(diag::type_mismatch_kind(at, ty.span, what, other));
                return false;
            }
        };
        let Value::Tensor(t) = value else { return false };
        if let Some(want) = self.dtype_of(dtype.as_ref()) {
            if dtype.is_some() && want != t.ty.dtype {
                self.report(diag::dtype_mismatch(at, ty.span, what, want, t.ty.dtype));
                return false;
            }
        }
        if dims.len() != t.ty.rank() {
            self.report(diag::rank_mismatch(at, ty.span, what, dims.len(), &t.ty));
            return false;
        }
        let prefix = self.envs[env].prefix.clone();
        let mut mismatches = Vec::new();
        for (axis, (pattern, actual)) in dims.iter().zip(&t.ty.shape).enumerate() {
            if let ExprKind::Name(n) = &pattern.kind {
                if n == "_" {
                    continue;
                }
                if !self.envs[env].locals.contains_key(n) && !self.dims.contains_key(n) {
                    self.envs[env].locals.insert(n.clone(), Value::Int(actual.clone()));
                    continue;
                }
            }
            match self.eval(pattern, env, &prefix) {
                Value::Int(expected) => {
                    if !self.dims_equal(&expected, actual) {
                        mismatches.push((axis, expected, actual.clone()));
                    }
                }
                Value::Poison => return false,
                other => {
                    self.report(diag::wrong_type(pattern.span, "a dim", &other));
                    return false;
                }
            }
        }
        if mismatches.is_empty() {
            return true;
        }
        self.report(diag::shape_mismatch(at, ty.span, what, &t.ty, &mismatches, &self.chain));
        false
    }

    /// Equal as expressions, or equal under the dims' values.
    pub(super) fn dims_equal(&self, a: &Dim, b: &Dim) -> bool {
        a.equal_under(b, &self.bindings)
    }
}
