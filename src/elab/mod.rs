//! Elaboration: from the AST of a spec (and its imports) to the graph of one model.
//!
//! Blocks are instantiated, `repeat` unrolled, `if` decided and dims kept symbolic; each op is
//! checked and its output types inferred as it is added, so a block's body can branch on the
//! shapes that reach it. Every error is reported and elaboration carries on past it.

mod budget;
mod call;
mod env;
mod eval;
pub mod functions;
mod modifiers;
mod op_value;
mod pattern;
mod reading;
mod stage;
mod value;

pub mod diagnostics;
pub mod imports;
pub mod library;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::{Def, DefKind, Item, Module};
use crate::front::span::Span;
use crate::ir::dim::{Bindings, Dim};
use crate::ir::graph::{CallSite, DimInfo, Graph};
use env::Env;
pub use value::{TensorVal, Value};

/// Most nodes (layers, groups and extra outputs) one model may elaborate to; past it
/// elaboration stops with an error. The largest models in use unroll to a few thousand nodes.
/// A node costs about 1 KB through checking and the summary (100 MB at the cap), and about
/// 35 microseconds in a debug build (3 to 4 seconds at the cap; a tenth of that optimised),
/// so even the tests' unoptimised binary stays well inside 10 seconds and 1 GB.
pub const MAX_NODES: usize = 100_000;
/// Deepest nesting of block calls and evaluation (recursion guard).
pub const MAX_DEPTH: usize = 200;

/// What to elaborate and with which dim values.
#[derive(Clone, Debug, Default)]
pub struct ElabOptions {
    /// The model to build; `None` picks the only (or last) model of the root file.
    pub model: Option<String>,
    /// Dim values that override the spec's examples.
    pub bind: Vec<(String, i64)>,
    /// Ignore the spec's example values, so only `bind` gives numbers.
    pub symbolic: bool,
    /// Node cap (defaults to [`MAX_NODES`]).
    pub max_nodes: Option<usize>,
}

/// A dim declared by `dim`.
#[derive(Clone, Debug)]
struct DimDecl {
    span: Span,
    value: Option<i64>,
}

pub(crate) struct Elaborator<'a> {
    defs: HashMap<&'a str, &'a Def>,
    dims: BTreeMap<String, DimDecl>,
    /// The dims with values (examples, `--bind`): they decide conditions that symbols alone
    /// cannot, and are shared with every op call's attributes.
    bindings: Arc<Bindings>,
    pub graph: Graph,
    pub diags: Diagnostics,
    envs: Vec<Env<'a>>,
    chain: Vec<CallSite>,
    /// `chain` as the nodes made now share it.
    shared_chain: std::sync::Arc<[CallSite]>,
    /// Paths used so far: where, and whether the owner holds parameters.
    paths: HashMap<String, (Span, bool)>,
    /// Layers named so far by each `prefix.base` (a base has no dot: one key per pair).
    auto_names: HashMap<String, usize>,
    nodes: usize,
    max_nodes: usize,
    depth: usize,
    /// Steps taken and allowed (see `budget.rs`).
    work: u64,
    max_work: u64,
    /// The `repeat`s and block calls running, outermost first: a budget error names them.
    costly: Vec<(Span, String)>,
    /// Set once the node cap or the work budget is hit: everything after is skipped.
    aborted: bool,
    /// Above zero inside a `frozen=true` call.
    frozen_depth: usize,
    /// `tie=` requests, resolved once every layer exists.
    ties: Vec<modifiers::Tie>,
    /// The `init=` / `bias_init=` of the calls being elaborated, outermost first.
    inits: Vec<modifiers::ChosenInits>,
    /// The sequence numbering spliced layers, while one is being built.
    splice: Option<stage::Splice>,
    /// What each `Value::Op` refers to, by its index.
    op_values: Vec<op_value::OpValue<'a>>,
}

// Read by the training tests, which need the backend half.
#[cfg(all(test, feature = "lower"))]
thread_local! {
    // Elaborations on this thread, for tests that a command elaborates its spec once.
    static ELABORATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many times this thread has elaborated a spec.
#[cfg(all(test, feature = "lower"))]
pub(crate) fn elaborations() -> usize {
    ELABORATIONS.with(std::cell::Cell::get)
}

/// Elaborate the chosen model of `modules` (the root file first) into a graph.
///
/// Returns the graph built so far even when there are errors, so a summary can show the
/// layers up to the first failure.
pub fn elaborate(modules: &[Module], opts: &ElabOptions) -> (Option<Graph>, Diagnostics) {
    #[cfg(all(test, feature = "lower"))]
    ELABORATIONS.with(|n| n.set(n.get() + 1));
    let max_nodes = opts.max_nodes.unwrap_or(MAX_NODES);
    let mut e = Elaborator {
        defs: HashMap::new(),
        dims: BTreeMap::new(),
        bindings: Arc::default(),
        graph: Graph::default(),
        diags: Diagnostics::default(),
        envs: Vec::new(),
        chain: Vec::new(),
        shared_chain: std::sync::Arc::new([]),
        paths: HashMap::new(),
        auto_names: HashMap::new(),
        nodes: 0,
        max_nodes,
        work: 0,
        max_work: (max_nodes as u64).saturating_mul(budget::STEPS_PER_NODE),
        costly: Vec::new(),
        depth: 0,
        aborted: false,
        frozen_depth: 0,
        ties: Vec::new(),
        inits: Vec::new(),
        op_values: Vec::new(),
        splice: None,
    };
    e.collect_globals(modules, opts);
    let Some(model) = e.choose_model(modules, opts) else {
        return (None, e.diags);
    };
    e.graph.name = model.name.name.clone();
    e.graph.dims =
        e.dims.iter().map(|(name, d)| DimInfo { name: name.clone(), value: d.value, span: d.span }).collect();
    e.run_model(model);
    e.resolve_ties();
    (Some(e.graph), e.diags)
}

impl<'a> Elaborator<'a> {
    fn collect_globals(&mut self, modules: &'a [Module], opts: &ElabOptions) {
        for module in modules {
            for item in &module.items {
                match item {
                    Item::Def(def) => {
                        if let Some(prev) = self.defs.get(def.name.name.as_str()) {
                            if prev.span != def.span {
                                self.report(diagnostics::duplicate_definition(&def.name, prev.name.span));
                            }
                            continue;
                        }
                        if crate::ops::lookup(&def.name.name).is_some() {
                            self.report(diagnostics::shadows_op(&def.name));
                            continue;
                        }
                        self.defs.insert(&def.name.name, def);
                    }
                    Item::Dim { name, example } => self.declare_dim(name, example.as_ref(), opts),
                    Item::Use { .. } | Item::Train(_) => {}
                }
            }
        }
        for (name, value) in &opts.bind {
            match self.dims.get_mut(name) {
                Some(d) => d.value = Some(*value),
                None => {
                    let known: Vec<&str> = self.dims.keys().map(String::as_str).collect();
                    self.report(diagnostics::unknown_bind(name, &known));
                }
            }
        }
        self.bindings =
            Arc::new(self.dims.iter().filter_map(|(n, d)| d.value.map(|v| (n.clone(), v))).collect());
    }

    fn declare_dim(
        &mut self,
        name: &'a crate::front::ast::Ident,
        example: Option<&'a crate::front::ast::Expr>,
        opts: &ElabOptions,
    ) {
        let value = match example {
            Some(expr) if !opts.symbolic => {
                // Examples may use earlier dims' examples, which `bindings` holds so far.
                let bindings = std::mem::take(&mut self.bindings);
                let value = self.eval_const(expr, &bindings);
                self.bindings = bindings;
                value
            }
            _ => None,
        };
        match self.dims.get(&name.name) {
            Some(prev)
                if prev.span != name.span
                    && prev.value != value
                    && value.is_some()
                    && prev.value.is_some() =>
            {
                self.report(diagnostics::conflicting_dim(name, prev.span));
            }
            Some(prev) if prev.value.is_some() || value.is_none() => {}
            _ => {
                if let Some(v) = value {
                    Arc::make_mut(&mut self.bindings).insert(name.name.clone(), v);
                }
                self.dims.insert(name.name.clone(), DimDecl { span: name.span, value });
            }
        }
    }

    fn choose_model(&mut self, modules: &'a [Module], opts: &ElabOptions) -> Option<&'a Def> {
        if let Some(wanted) = &opts.model {
            let found = self.defs.get(wanted.as_str()).filter(|d| d.kind == DefKind::Model).copied();
            if found.is_none() {
                let models: Vec<&str> = self
                    .defs
                    .values()
                    .filter(|d| d.kind == DefKind::Model)
                    .map(|d| d.name.name.as_str())
                    .collect();
                self.report(diagnostics::unknown_model(wanted, &models));
            }
            return found;
        }
        let root_models: Vec<&'a Def> = modules
            .first()
            .into_iter()
            .flat_map(|m| m.items.iter())
            .filter_map(|i| match i {
                Item::Def(d) if d.kind == DefKind::Model => Some(d),
                _ => None,
            })
            .collect();
        match root_models.last() {
            Some(m) => Some(*m),
            None => {
                let file = modules.first().map(|m| m.file).unwrap_or_default();
                self.report(diagnostics::no_model(Span::new(file, 0, 0)));
                None
            }
        }
    }

    fn run_model(&mut self, model: &'a Def) {
        let env = self.push_env(&model.body, None, DefKind::Model, "");
        for p in &model.params {
            self.check_op_param(p);
            let value = match &p.default {
                Some(d) => self.param_value(&p.ty, d, env, ""),
                None => {
                    self.report(diagnostics::model_param_without_default(&p.name));
                    Value::Poison
                }
            };
            let what = format!("parameter `{}` of {}", p.name.name, model.name.name);
            self.check_type(&p.ty, &value, env, &what, p.name.span);
            self.envs[env].locals.insert(p.name.name.clone(), value);
        }
        self.run_body(env);
        self.envs.pop();
        if self.graph.outputs.is_empty() && !self.diags.has_errors() {
            self.report(diagnostics::model_without_outputs(&model.name));
        }
    }

    /// A value that must be a constant integer now (dim examples); reports and returns `None`
    /// otherwise.
    fn eval_const(&mut self, expr: &'a crate::front::ast::Expr, bindings: &Bindings) -> Option<i64> {
        let env = self.push_env(&[], None, DefKind::Block, "");
        let v = self.eval(expr, env, "");
        self.envs.pop();
        let result: Result<i64, Diagnostic> = match v {
            Value::Int(d) => d.eval(bindings).ok_or_else(|| diagnostics::not_constant(expr.span, &d)),
            Value::Poison => return None,
            other => Err(diagnostics::wrong_type(expr.span, "an int", &other)),
        };
        result.map_err(|d| self.report(d)).ok()
    }

    fn push_env(
        &mut self,
        stmts: &'a [crate::front::ast::Stmt],
        parent: Option<(usize, usize)>,
        kind: DefKind,
        prefix: &str,
    ) -> usize {
        self.envs.push(Env::new(stmts, parent, kind, prefix.to_string()));
        self.envs.len() - 1
    }

    /// Decide a symbolic comparison, using the dims' values where symbols alone cannot.
    fn decide(&self, d: &Dim) -> Option<i64> {
        d.as_const().or_else(|| d.eval(&self.bindings))
    }

    fn dim_names(&self) -> impl Iterator<Item = &str> {
        self.dims.keys().map(String::as_str)
    }
}
