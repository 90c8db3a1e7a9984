//! Calls: binding arguments to an op's signature or a block's parameters, adding nodes,
//! instantiating blocks, model inputs and outputs.

use super::diagnostics as diag;
use super::functions;
use super::modifiers::Tie;
use super::reading::{assign, Callee, Inferred, Problem, Source};
use super::stage::Naming;
use super::value::{TensorVal, Value};
use super::Elaborator;
use crate::front::ast::{Arg, Def, DefKind, ExprKind, Ident, TypeExpr, TypeKind};
use crate::front::span::Span;
use crate::ir::dim::Dim;
use crate::ir::graph::{CallSite, NodeDraft, Origin, TensorRef};
use crate::ir::tensor::{DType, TensorType};
use crate::ops::{self, AttrType, AttrValue, Attrs, Default, Inputs, Op, OpDef};

/// A call's argument values by index, each evaluated once: choosing a reading may look at
/// some before the call binds them.
type Evaluated = Vec<Option<(Value, Span)>>;

/// What converting a value to an attribute gave.
enum Conversion {
    Done(AttrValue),
    NotAChoice(String, &'static [&'static str]),
    WrongType,
}

impl<'a> Elaborator<'a> {
    /// Call an op, a block or a builtin; `piped` is the tensor a pipe feeds in as the first
    /// argument.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn call(
        &mut self,
        name: &str,
        name_span: Span,
        args: &'a [Arg],
        piped: Option<Value>,
        env: usize,
        prefix: &str,
        naming: Naming,
        span: Span,
    ) -> Value {
        if let Some(f) = functions::lookup(name).filter(|_| piped.is_none()) {
            return self.call_function(f, name_span, args, env, prefix, span);
        }
        if let Some(def) = ops::lookup(name) {
            let names = def.signature.arg_names();
            let m = self.modifiers(args, &names, true, env, prefix);
            self.frozen_depth += usize::from(m.frozen);
            self.inits.push(m.inits);
            let value = self.call_op(def, &names, args, piped, env, prefix, naming, (span, name_span));
            if let (Some(chosen), Some(node)) = (self.inits.pop(), value.node()) {
                self.check_inits_used(&chosen, node);
            }
            self.frozen_depth -= usize::from(m.frozen);
            if let (Some((target, span)), Some(node)) = (m.tie, value.node()) {
                self.ties.push(Tie { node, target, span });
            }
            return value;
        }
        match self.defs.get(name).copied() {
            Some(def) if def.kind == DefKind::Block => {
                let names: Vec<&str> = def.params.iter().map(|p| p.name.name.as_str()).collect();
                let m = self.modifiers(args, &names, false, env, prefix);
                self.frozen_depth += usize::from(m.frozen);
                self.inits.push(m.inits);
                let value = self.call_block(def, args, piped, env, prefix, naming, span);
                self.inits.pop();
                self.frozen_depth -= usize::from(m.frozen);
                value
            }
            Some(def) => {
                self.report(diag::model_called(name_span, &def.name));
                Value::Poison
            }
            None => match self.local_op(name, env) {
                Some(id) => self.apply_op(id, args, piped, env, prefix, naming, span),
                None => {
                    self.report_unknown_op(name, name_span);
                    Value::Poison
                }
            },
        }
    }

    pub(super) fn report_unknown_op(&mut self, name: &str, span: Span) {
        let candidates: Vec<&str> = ops::all()
            .iter()
            .map(|d| d.name)
            .chain(self.defs.keys().copied())
            .chain(functions::FUNCTIONS.iter().map(|f| f.name))
            .collect();
        self.report(diag::unknown_op(span, name, &candidates));
    }

    /// Match positional arguments (in `order`) and keywords to slots; reports every problem.
    pub(super) fn match_args(
        &mut self,
        callee: &str,
        names: &[&str],
        order: &[usize],
        args: &'a [Arg],
        piped: bool,
        span: Span,
    ) -> Option<Vec<Option<Source>>> {
        let (slots, problems) = assign(names, order, args, (piped, callee), span);
        for problem in &problems {
            self.report(match problem {
                Problem::AfterKeyword(at) => diag::positional_after_keyword(*at),
                Problem::TooMany(at) => diag::too_many_args(*at, callee, order.len()),
                Problem::UnknownKeyword(key) => diag::unknown_keyword(key, callee, names),
                Problem::GivenTwice(key) => diag::given_twice(key, callee),
            });
        }
        problems.is_empty().then_some(slots)
    }

    /// The value and span of a matched argument.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn arg_value(
        &mut self,
        src: Source,
        args: &'a [Arg],
        values: &mut Evaluated,
        piped: &Option<Value>,
        env: usize,
        prefix: &str,
        span: Span,
    ) -> (Value, Span) {
        match src {
            Source::Piped => {
                let v = piped.clone().unwrap_or(Value::Poison);
                let s = match &v {
                    Value::Tensor(t) => t.span,
                    _ => span,
                };
                (v, s)
            }
            Source::Given(i) => {
                if let Some(Some(done)) = values.get(i) {
                    return done.clone();
                }
                let Some(arg) = args.get(i) else { return (Value::Poison, span) };
                let done = (self.eval(&arg.value, env, prefix), arg.value.span);
                if let Some(slot) = values.get_mut(i) {
                    *slot = Some(done.clone());
                }
                done
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    /// Call op `def`, whose argument names (`Signature::arg_names`) are `names`.
    fn call_op(
        &mut self,
        def: &'static OpDef,
        names: &[&'static str],
        args: &'a [Arg],
        piped: Option<Value>,
        env: usize,
        prefix: &str,
        naming: Naming,
        (span, name_span): (Span, Span),
    ) -> Value {
        let sig = &def.signature;
        let n_required = sig.inputs.required();
        let fits = |this: &Elaborator<'_>, slot: usize, v: &Value| match sig
            .attrs
            .get(slot.wrapping_sub(n_required))
        {
            Some(a) if slot >= n_required => {
                !matches!(this.convert_attr(a.ty, a.default, v), Conversion::WrongType)
            }
            _ => matches!(v, Value::Tensor(_)),
        };
        let callee = Self::op_callee(def, names, &fits);
        let mut values: Evaluated = vec![None; args.len()];
        let Some(order) = self.choose_reading(&callee, args, &piped, &mut values, env, prefix, span) else {
            return Value::Poison;
        };
        let Some(slots) = self.match_args(def.name, names, &order, args, piped.is_some(), name_span) else {
            return Value::Poison;
        };
        let slots = sig.inputs_first(slots);
        let input_names = sig.inputs.names();
        let n_inputs = input_names.len();
        let mut poisoned = false;
        let mut tensors: Vec<TensorVal> = Vec::new();
        let required = sig.inputs.required();
        for (i, slot) in slots.iter().take(n_inputs).enumerate() {
            let Some(src) = *slot else {
                if i < required {
                    self.report(diag::missing_arg(
                        span,
                        def.name,
                        input_names[i],
                        "a tensor",
                        &sig.render(def.name),
                    ));
                    poisoned = true;
                }
                continue;
            };
            // Optional inputs are left out from the end only: the op knows them by their count.
            if let Some(gap) = (required..i).find(|j| slots[*j].is_none()) {
                if !poisoned {
                    self.report(diag::missing_arg(
                        span,
                        def.name,
                        input_names[gap],
                        "a tensor",
                        &sig.render(def.name),
                    ));
                }
                poisoned = true;
                continue;
            }
            let (value, vspan) = self.arg_value(src, args, &mut values, &piped, env, prefix, span);
            match (sig.inputs, value) {
                (_, v) if v.is_poison() => poisoned = true,
                (Inputs::Fixed(_) | Inputs::Trailing { .. }, Value::Tensor(t)) => tensors.push(t),
                (Inputs::List(_), Value::List(items)) => {
                    for item in items {
                        match item {
                            Value::Tensor(t) => tensors.push(t),
                            other => {
                                self.report(diag::wrong_type(vspan, "a list of tensors", &other));
                                poisoned = true;
                            }
                        }
                    }
                }
                (Inputs::Fixed(_), Value::List(items))
                    if items.iter().all(|v| matches!(v, Value::Tensor(_))) =>
                {
                    self.report(diag::several_outputs(vspan, &Value::List(items)));
                    poisoned = true;
                }
                (inputs, other) => {
                    let want =
                        if matches!(inputs, Inputs::List(_)) { "a list of tensors" } else { "a tensor" };
                    self.report(diag::wrong_type(vspan, want, &other));
                    poisoned = true;
                }
            }
        }
        let mut attrs = Attrs::default();
        let mut attr_spans: Vec<(&'static str, Span)> = Vec::new();
        for (spec, slot) in sig.attrs.iter().zip(slots.iter().skip(n_inputs)) {
            let value = match *slot {
                Some(src) => {
                    let (v, vspan) = self.arg_value(src, args, &mut values, &piped, env, prefix, span);
                    attr_spans.push((spec.name, vspan));
                    // Before any input failed, `tensors` holds them all, in order.
                    let input = spec
                        .inferred
                        .filter(|_| !poisoned)
                        .and_then(|f| Some((tensors.get(f.input)?, f.axis)));
                    if let Some((input, axis)) = input {
                        let input = Value::Tensor(input.clone());
                        poisoned |= !self.check_inferred(def.name, spec.name, (&v, vspan), &input, axis);
                    }
                    match self.attr_value(spec.ty, spec.default, v, vspan, spec.name) {
                        Some(a) => a,
                        None => {
                            poisoned = true;
                            continue;
                        }
                    }
                }
                None => match spec.default {
                    Default::Required => {
                        self.report(diag::missing_arg(
                            span,
                            def.name,
                            spec.name,
                            &spec.ty.to_string(),
                            &sig.render(def.name),
                        ));
                        poisoned = true;
                        continue;
                    }
                    Default::Optional => AttrValue::None,
                    Default::Int(v) => AttrValue::Int(Dim::konst(v)),
                    Default::Float(v) => AttrValue::Float(v),
                    Default::Bool(v) => AttrValue::Bool(v),
                    Default::Str(v) => AttrValue::Str(v.to_string()),
                },
            };
            attrs.insert(spec.name, value);
        }
        if poisoned {
            return Value::Poison;
        }
        let attrs = attrs.with_dims(std::sync::Arc::clone(&self.bindings));
        let op = match (def.build)(&attrs) {
            Ok(op) => op,
            Err(e) => {
                let at =
                    e.attr.and_then(|a| attr_spans.iter().find(|(n, _)| *n == a)).map_or(span, |(_, s)| *s);
                self.report(diag::bad_attr(at, def.name, &e, &self.chain));
                return Value::Poison;
            }
        };
        let path = self.node_path(prefix, naming, &def.name.to_lowercase());
        let explicit = !matches!(naming, Naming::Auto);
        self.add_node(def.name, op, attrs, tensors, path, span, explicit)
    }

    /// Convert an argument to an attribute value of the declared type, reporting a mismatch.
    fn attr_value(
        &mut self,
        ty: AttrType,
        default: Default,
        v: Value,
        span: Span,
        name: &str,
    ) -> Option<AttrValue> {
        match self.convert_attr(ty, default, &v) {
            Conversion::Done(a) => Some(a),
            Conversion::NotAChoice(s, choices) => {
                let or_number = matches!(ty, AttrType::FloatOrChoice(_));
                self.report(diag::bad_choice(span, name, &s, choices, or_number));
                None
            }
            Conversion::WrongType => {
                if !v.is_poison() {
                    self.report(diag::wrong_type(span, &ty.to_string(), &v));
                }
                None
            }
        }
    }

    fn convert_attr(&self, ty: AttrType, default: Default, v: &Value) -> Conversion {
        let int = |v: &Value| match v {
            Value::Int(d) => Some(AttrValue::Int(d.clone())),
            _ => None,
        };
        let int_list = |v: &Value| match v {
            Value::List(items) => items.iter().map(int).collect::<Option<Vec<_>>>().map(AttrValue::List),
            _ => None,
        };
        let converted = match (&ty, v) {
            (_, Value::None) if default != Default::Required => Some(AttrValue::None),
            (AttrType::Int, _) => int(v),
            (AttrType::Float | AttrType::FloatOrChoice(_), Value::Float(f)) => Some(AttrValue::Float(*f)),
            (AttrType::Float | AttrType::FloatOrChoice(_), Value::Int(d)) => {
                self.decide(d).map(|i| AttrValue::Float(i as f64))
            }
            (AttrType::Bool, Value::Bool(b)) => Some(AttrValue::Bool(*b)),
            (
                AttrType::Choice(choices)
                | AttrType::IntListOrChoice(choices)
                | AttrType::FloatOrChoice(choices),
                Value::Str(s),
            ) => {
                if !choices.contains(&s.as_str()) {
                    return Conversion::NotAChoice(s.clone(), choices);
                }
                Some(AttrValue::Str(s.clone()))
            }
            (AttrType::IntOrList | AttrType::IntListOrChoice(_), _) => int(v).or_else(|| int_list(v)),
            (AttrType::IntList, _) => int_list(v).or_else(|| int(v)),
            (AttrType::DType, Value::Str(s)) if DType::parse(s).is_some() => Some(AttrValue::Str(s.clone())),
            _ => None,
        };
        converted.map_or(Conversion::WrongType, Conversion::Done)
    }

    /// An op's slots as choosing a reading sees them.
    fn op_callee<'c>(
        def: &'static OpDef,
        names: &'c [&'c str],
        fits: &'c dyn Fn(&Elaborator<'_>, usize, &Value) -> bool,
    ) -> Callee<'c> {
        let sig = &def.signature;
        let inputs = sig.inputs.required();
        let required = (0..names.len())
            .map(|slot| {
                slot < inputs || sig.attrs.get(slot - inputs).is_some_and(|a| a.default == Default::Required)
            })
            .collect();
        let inferred = sig
            .inferred_slots()
            .into_iter()
            .map(|(slot, from)| Inferred { slot, input: from.input, axis: from.axis })
            .collect();
        Callee { name: def.name, names, inferred, required, fits }
    }

    /// Checks a given inferred size against the input it is read from (`Linear(784, 200)` on
    /// 100 features); false when it differs.
    fn check_inferred(
        &mut self,
        callee: &str,
        name: &str,
        given: (&Value, Span),
        input: &Value,
        axis: i64,
    ) -> bool {
        let (Value::Int(g), Some(actual)) = (given.0, self.size_at(input, axis)) else { return true };
        let agrees = self.dims_equal(g, &actual);
        if !agrees {
            let input_span = match input {
                Value::Tensor(t) => t.span,
                _ => given.1,
            };
            self.report(diag::inferred_mismatch(given.1, callee, name, g, &actual, input_span));
        }
        agrees
    }

    /// Add an op instance, inferring its output types; returns its output(s).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_node(
        &mut self,
        kind: &'static str,
        op: Box<dyn Op>,
        attrs: Attrs,
        mut inputs: Vec<TensorVal>,
        path: String,
        span: Span,
        explicit: bool,
    ) -> Value {
        if !self.count_nodes(1, span) {
            return Value::Poison;
        }
        // The types move into the graph's edges; an error reads them back from the draft.
        let typed = inputs.iter_mut().map(|t| (t.tensor, std::mem::take(&mut t.ty))).collect();
        let (mut draft, error) = NodeDraft::infer(kind, op, attrs, path, typed);
        match error {
            // Outputs past the first count as nodes: one `split` may make thousands.
            None if !self.count_nodes(draft.node.outputs.len().saturating_sub(1), span) => {
                return Value::Poison
            }
            None => {}
            Some(e) => {
                let input_label =
                    e.input.and_then(|i| Some((inputs.get(i)?.span, draft.input_types().get(i)?.clone())));
                self.report(diag::shape_error(span, kind, &draft.node.path, &e, input_label, &self.chain));
            }
        }
        let (path, params) = (&draft.node.path, &draft.node.params);
        // One error per layer: its first parameter with an unbound size stands for the rest.
        let unbound = params
            .iter()
            .find_map(|p| p.shape.iter().find(|d| d.eval(&self.bindings).is_none()).map(|d| (p, d)));
        if let Some((p, d)) = unbound {
            let what = format!(
                "parameter `{}` of shape {}",
                p.path_under(path),
                crate::ir::tensor::shape_string(&p.shape)
            );
            self.report(diag::unbound(span, d, &what));
        }
        let has_params = !params.is_empty();
        if explicit {
            self.claim_path(&draft.node.path, span, has_params);
        } else {
            self.paths.entry(draft.node.path.clone()).or_insert((span, has_params));
        }
        let origin = Origin { span, chain: self.shared_chain.clone() };
        draft.node.frozen = self.frozen_depth > 0;
        self.choose_inits(&mut draft.node.params, &draft.node.path);
        let outputs = draft.node.outputs.clone();
        let id = self.graph.add(draft, origin);
        let mut values: Vec<Value> = outputs
            .into_iter()
            .enumerate()
            .map(|(port, ty)| {
                Value::Tensor(TensorVal { tensor: TensorRef { node: id, port: port as u16 }, ty, span })
            })
            .collect();
        match values.len() {
            0 => Value::Poison,
            1 => values.remove(0),
            _ => Value::List(values),
        }
    }

    /// Count `n` more nodes (layers, groups, extra outputs); past the cap, report it once and
    /// stop.
    pub(super) fn count_nodes(&mut self, n: usize, span: Span) -> bool {
        if self.nodes.saturating_add(n) > self.max_nodes {
            if !self.aborted {
                self.report(diag::size_cap(span, None, self.max_nodes));
                self.aborted = true;
            }
            return false;
        }
        self.nodes += n;
        true
    }

    /// `a + b` and friends on tensors.
    pub(super) fn elementwise(
        &mut self,
        name: &str,
        a: TensorVal,
        b: TensorVal,
        span: Span,
        prefix: &str,
    ) -> Value {
        let Some(def) = ops::lookup(name) else { return Value::Poison };
        match (def.build)(&Attrs::default()) {
            Ok(op) => {
                let path = self.node_path(prefix, Naming::Auto, name);
                self.add_node(def.name, op, Attrs::default(), vec![a, b], path, span, false)
            }
            Err(_) => Value::Poison,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn call_block(
        &mut self,
        def: &'a Def,
        args: &'a [Arg],
        piped: Option<Value>,
        env: usize,
        prefix: &str,
        naming: Naming,
        span: Span,
    ) -> Value {
        if self.chain.len() >= super::MAX_DEPTH / 4 {
            self.report(diag::recursion(span, &def.name.name, self.chain.len()));
            self.aborted = true;
            return Value::Poison;
        }
        let names: Vec<&str> = def.params.iter().map(|p| p.name.name.as_str()).collect();
        let inferred = block_inferred(def);
        let is_inferred: Vec<bool> = (0..names.len()).map(|s| inferred.iter().any(|i| i.slot == s)).collect();
        let fits = |_: &Elaborator<'_>, slot: usize, v: &Value| {
            def.params.get(slot).is_some_and(|p| kind_fits(&p.ty.kind, v))
        };
        let required =
            def.params.iter().zip(&is_inferred).map(|(p, inf)| p.default.is_none() && !inf).collect();
        let callee = Callee { name: &def.name.name, names: &names, inferred, required, fits: &fits };
        let mut values = self.op_arguments(def, args, env);
        let Some(order) = self.choose_reading(&callee, args, &piped, &mut values, env, prefix, span) else {
            return Value::Poison;
        };
        let Some(slots) = self.match_args(&def.name.name, &names, &order, args, piped.is_some(), span) else {
            return Value::Poison;
        };
        let given: Vec<Option<(Value, Span)>> = slots
            .iter()
            .map(|s| s.map(|src| self.arg_value(src, args, &mut values, &piped, env, prefix, span)))
            .collect();
        let mut agree = true;
        for inf in &callee.inferred {
            if let (Some((v, vspan)), Some((input, _))) = (&given[inf.slot], &given[inf.input]) {
                agree &= self.check_inferred(&def.name.name, names[inf.slot], (v, *vspan), input, inf.axis);
            }
        }
        if !agree {
            return Value::Poison;
        }
        let path = match naming {
            // A spliced block's layers are its caller's sequence's items: no path of its own.
            Naming::Spliced => prefix.to_string(),
            _ => {
                let path = self.node_path(prefix, naming, &def.name.name.to_lowercase());
                self.claim_path(&path, span, true);
                self.add_group(&path, &def.name.name, span);
                path
            }
        };
        let what = format!("call of `{}`", def.name.name);
        self.running(span, what, |this| this.run_block(def, given, &is_inferred, span, path))
    }

    /// A block's body, run with its arguments bound, checked against its return type.
    fn run_block(
        &mut self,
        def: &'a Def,
        given: Vec<Option<(Value, Span)>>,
        inferred: &[bool],
        span: Span,
        path: String,
    ) -> Value {
        let benv = self.push_env(&def.body, None, DefKind::Block, &path);
        self.chain.push(CallSite { block: def.name.name.clone(), span, path: path.clone() });
        self.shared_chain = self.chain.as_slice().into();
        let mut ok = true;
        for ((p, g), inferred) in def.params.iter().zip(given).zip(inferred) {
            ok &= self.check_op_param(p);
            let (value, vspan) = match g {
                Some(v) => v,
                // Bound already, by the type of the tensor it is read from.
                None if *inferred => continue,
                None => match &p.default {
                    Some(d) => (self.param_value(&p.ty, d, benv, &path), d.span),
                    None => {
                        self.report(diag::missing_block_arg(span, &def.name, &p.name));
                        (Value::Poison, span)
                    }
                },
            };
            ok &= !value.is_poison();
            ok &= self.check_type(
                &p.ty,
                &value,
                benv,
                &format!("parameter `{}` of {}", p.name.name, def.name.name),
                vspan,
            );
            self.envs[benv].locals.insert(p.name.name.clone(), value);
        }
        let result = if ok {
            match self.run_body(benv) {
                Some(v) => v,
                None => {
                    self.report(diag::no_return(&def.name));
                    Value::Poison
                }
            }
        } else {
            Value::Poison
        };
        // An op value reads its arguments in the scope that wrote it, which ends here.
        let result = self.kept_in_scope(result, span);
        if let Some(ty) = &def.returns {
            let what = format!("the result of {}", def.name.name);
            let at = match &result {
                Value::Tensor(t) => t.span,
                _ => span,
            };
            self.check_type(ty, &result, benv, &what, at);
        }
        self.chain.pop();
        self.shared_chain = self.chain.as_slice().into();
        self.envs.truncate(benv);
        result
    }

    /// `input x: [N, 784] of f32`
    pub(super) fn add_input(&mut self, name: &'a Ident, ty: &'a TypeExpr, env: usize) -> Value {
        let TypeKind::Tensor { dims, dtype } = &ty.kind else {
            self.report(diag::expected_tensor_type(ty.span));
            return Value::Poison;
        };
        let mut shape = Vec::new();
        for d in dims {
            match self.eval(d, env, "") {
                Value::Int(v) => shape.push(v),
                Value::Poison => return Value::Poison,
                other => {
                    self.report(diag::wrong_type(d.span, "a dim", &other));
                    return Value::Poison;
                }
            }
        }
        let Some(dtype) = self.dtype_of(dtype.as_ref()) else { return Value::Poison };
        let t = TensorType::new(dtype, shape);
        if self.graph.inputs.iter().any(|(n, _)| *n == name.name) {
            self.report(diag::duplicate_io(name, "input"));
        }
        self.paths.insert(name.name.clone(), (name.span, false));
        let v = self.add_node(
            "input",
            ops::input_op(t),
            Attrs::default(),
            Vec::new(),
            name.name.clone(),
            name.span,
            false,
        );
        if let Value::Tensor(tv) = &v {
            self.graph.inputs.push((name.name.clone(), tv.tensor.node));
        }
        v
    }

    pub(super) fn dtype_of(&mut self, dtype: Option<&Ident>) -> Option<DType> {
        match dtype {
            None => Some(DType::F32),
            Some(id) => DType::parse(&id.name).or_else(|| {
                self.report(diag::unknown_dtype(id));
                None
            }),
        }
    }

    pub(super) fn record_output(&mut self, name: &Ident, value: Value) {
        match value {
            Value::Tensor(t) => {
                if self.graph.outputs.iter().any(|(n, _)| *n == name.name) {
                    self.report(diag::duplicate_io(name, "output"));
                }
                self.graph.outputs.push((name.name.clone(), t.tensor));
            }
            Value::Poison => {}
            other => self.report(diag::wrong_type(name.span, "a tensor", &other)),
        }
    }
}

/// A block's inferred sizes: an int parameter without a default named after a size of an
/// earlier tensor parameter, as `d_model` in
/// `TransformerEncoderLayer(x: [a, b, d_model], d_model: int, nhead: int)`.
fn block_inferred(def: &Def) -> Vec<Inferred> {
    let inferred_from = |slot: usize, name: &str| {
        def.params[..slot].iter().enumerate().find_map(|(input, q)| match &q.ty.kind {
            TypeKind::Tensor { dims, .. } => dims
                .iter()
                .position(|d| matches!(&d.kind, ExprKind::Name(n) if n == name))
                .map(|axis| Inferred { slot, input, axis: axis as i64 }),
            _ => None,
        })
    };
    def.params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.default.is_none() && p.ty.kind == TypeKind::Int)
        .filter_map(|(slot, p)| inferred_from(slot, &p.name.name))
        .collect()
}

/// Whether a value has the kind a block parameter declares (its shape is checked on binding).
pub(super) fn kind_fits(kind: &TypeKind, v: &Value) -> bool {
    match (kind, v) {
        (TypeKind::List(item), Value::List(items)) => items.iter().all(|v| kind_fits(&item.kind, v)),
        _ => matches!(
            (kind, v),
            (TypeKind::Int, Value::Int(_))
                | (TypeKind::Float, Value::Float(_) | Value::Int(_))
                | (TypeKind::Bool, Value::Bool(_))
                | (TypeKind::Str, Value::Str(_))
                | (TypeKind::Tensor { .. }, Value::Tensor(_))
                | (TypeKind::Op, Value::Op { .. } | Value::None)
        ),
    }
}
