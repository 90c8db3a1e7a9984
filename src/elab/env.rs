//! Lexical environments with lazily evaluated bindings.
//!
//! A name used in statement `k` means the nearest binding before `k`; failing that a
//! parameter; failing that the nearest binding after `k` (so a body may be written in any
//! order, like a graph). A binding is evaluated the first time it is needed; meeting one that
//! is still being evaluated is a cycle.

use std::collections::HashMap;

use super::value::Value;
use crate::front::ast::{DefKind, Ident, Stmt};

/// Evaluation state of one statement of a body.
#[derive(Clone, Debug)]
pub enum StmtState {
    Pending,
    InProgress,
    Done(Vec<Value>),
}

#[derive(Debug)]
pub struct Env<'a> {
    /// The enclosing environment and the statement position in it (for `if` branches and
    /// `repeat` bodies); blocks have none, so they see only their parameters and globals.
    pub parent: Option<(usize, usize)>,
    pub stmts: &'a [Stmt],
    pub states: Vec<StmtState>,
    /// Parameters and loop variables.
    pub locals: HashMap<String, Value>,
    /// For each bound name, the statements binding it, in order.
    pub binders: HashMap<&'a str, Vec<usize>>,
    /// The statement being evaluated.
    pub pos: usize,
    /// Models may declare inputs and outputs; blocks and branches may not.
    pub kind: DefKind,
    /// The path prefix of the block instance this body belongs to.
    pub prefix: String,
}

impl<'a> Env<'a> {
    pub fn new(stmts: &'a [Stmt], parent: Option<(usize, usize)>, kind: DefKind, prefix: String) -> Env<'a> {
        let mut binders: HashMap<&'a str, Vec<usize>> = HashMap::new();
        for (k, s) in stmts.iter().enumerate() {
            for name in bound_names(s) {
                binders.entry(name.name.as_str()).or_default().push(k);
            }
        }
        Env {
            parent,
            stmts,
            states: vec![StmtState::Pending; stmts.len()],
            locals: HashMap::new(),
            binders,
            pos: 0,
            kind,
            prefix,
        }
    }

    /// The statement that binds `name` as seen from `pos`: the nearest before, else `None`.
    pub fn binder_before(&self, name: &str, pos: usize) -> Option<usize> {
        let ks = self.binders.get(name)?;
        let i = ks.partition_point(|k| *k < pos);
        i.checked_sub(1).map(|i| ks[i])
    }

    /// The nearest statement after `pos` that binds `name`.
    pub fn binder_after(&self, name: &str, pos: usize) -> Option<usize> {
        let ks = self.binders.get(name)?;
        let i = ks.partition_point(|k| *k <= pos);
        ks.get(i).copied()
    }

    /// Every name visible in this environment, for suggestions.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.locals.keys().map(String::as_str).chain(self.binders.keys().copied())
    }
}

/// The names a statement binds.
pub fn bound_names(s: &Stmt) -> impl Iterator<Item = &Ident> {
    let (names, input): (&[Ident], Option<&Ident>) = match s {
        Stmt::Let { names, .. } => (names, None),
        Stmt::Input { name, .. } => (&[], Some(name)),
        _ => (&[], None),
    };
    names.iter().chain(input)
}
