//! The statements of one body (a block's or the model's): its items as pipes, a layer
//! labelled where wick's automatic name would not give its path, a named intermediate
//! wherever a result is read twice or by a later item.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::blocks::{Form, Plan};
use super::render::{self, Names};
use super::scope::{Item, Tree};
use super::slots::{infix, pipes, Slot};
use crate::ir::graph::{Graph, NodeId, TensorRef};
use crate::ops::{self, Inputs};

/// How a slot is written in this body: a block parameter's name, or its value.
pub(super) type Resolve<'r> = &'r dyn Fn(usize) -> Option<String>;

/// The automatic names wick gives unlabelled layers in one scope (`relu`, `relu_1`), replayed
/// in the order the written body makes them, so a label is written only where it is needed.
#[derive(Default)]
struct AutoNames {
    claimed: HashSet<String>,
    counters: HashMap<String, usize>,
}

impl AutoNames {
    /// Whether an unlabelled layer of `kind` gets `segment`; if so it is taken.
    fn gives(&mut self, kind: &str, segment: &str) -> bool {
        let base = kind.to_lowercase();
        let mut n = self.counters.get(&base).copied().unwrap_or(0);
        let auto = loop {
            let candidate = if n == 0 { base.clone() } else { format!("{base}_{n}") };
            n += 1;
            if !self.claimed.contains(&candidate) {
                break candidate;
            }
        };
        if auto != segment {
            self.claimed.insert(segment.to_string());
            return false;
        }
        self.counters.insert(base, n);
        self.claimed.insert(auto);
        true
    }
}

/// A pipe being written, not yet bound to a name.
struct Pending {
    head: String,
    stages: Vec<String>,
    out: TensorRef,
    /// What to name it after: the last item's segment.
    hint: String,
}

pub(super) struct Body<'a> {
    pub graph: &'a Graph,
    pub tree: &'a Tree,
    pub plan: &'a Plan,
    pub names: Names,
    /// The name each tensor is bound to in this body.
    pub tensors: HashMap<TensorRef, String>,
    /// What a tensor is best named (a model output's name).
    pub preferred: HashMap<TensorRef, String>,
    pub lines: Vec<String>,
    auto: AutoNames,
    pending: Option<Pending>,
}

impl<'a> Body<'a> {
    pub fn new(graph: &'a Graph, tree: &'a Tree, plan: &'a Plan, names: Names) -> Body<'a> {
        Body {
            graph,
            tree,
            plan,
            names,
            tensors: HashMap::new(),
            preferred: HashMap::new(),
            lines: Vec::new(),
            auto: AutoNames::default(),
            pending: None,
        }
    }

    /// Marks a segment of this scope as taken (a model input's name).
    pub fn claim(&mut self, segment: &str) {
        self.auto.claimed.insert(segment.to_string());
    }

    /// Writes scope `s`'s items; `results` are what its caller reads (a block's return values,
    /// the model's outputs), each counted as one more read.
    pub fn items(&mut self, s: usize, resolve: Resolve, results: &[TensorRef]) {
        let scope = &self.tree.scopes[s];
        let mut reads: HashMap<TensorRef, usize> = HashMap::new();
        for item in &scope.items {
            for t in self.tree.reads(self.graph, *item) {
                *reads.entry(t).or_default() += 1;
            }
        }
        for t in results {
            *reads.entry(*t).or_default() += 1;
        }
        let ranges = &self.plan.ranges[s];
        for (i, item) in scope.items.iter().enumerate() {
            let inputs = self.tree.reads(self.graph, *item);
            let piped = match item {
                Item::Node(id) => pipes(self.graph, *id),
                Item::Scope(_) => !inputs.is_empty(),
            };
            let chained = piped
                && self.pending.as_ref().is_some_and(|p| p.out == inputs[0])
                && reads.get(&inputs[0]).copied() == Some(1);
            if !chained {
                self.flush();
            }
            let range = ranges.get(i).cloned().unwrap_or(0..0);
            let stage = self.stage(s, *item, range, resolve, piped);
            let (head, stages) = match self.pending.take() {
                Some(p) if chained => (p.head, p.stages.into_iter().chain([stage]).collect()),
                _ if piped => (self.name_of(inputs[0]), vec![stage]),
                _ => (stage, Vec::new()),
            };
            let gives = self.tree.gives(self.graph, *item);
            let hint = match item {
                // `y = a + b`: an op's name is no binding's.
                Item::Node(id) if infix(self.graph.node(*id).kind).is_some() => "y".to_string(),
                _ => self.tree.segment(*item).to_string(),
            };
            if let [out] = gives[..] {
                self.pending = Some(Pending { head, stages, out, hint });
            } else {
                let text = pipe(&head, &stages);
                let names: Vec<String> = gives
                    .iter()
                    .enumerate()
                    .map(|(k, t)| {
                        let wanted = self.preferred.get(t).cloned().unwrap_or_else(|| {
                            if k == 0 {
                                hint.clone()
                            } else {
                                format!("{hint}_{k}")
                            }
                        });
                        let name = self.names.fresh(&wanted);
                        self.tensors.insert(*t, name.clone());
                        name
                    })
                    .collect();
                self.lines.push(format!("{} = {text}", names.join(", ")));
            }
        }
    }

    /// The text of `t` as the last result, when it is the pipe being written and nothing else
    /// reads it: `return <pipe>` rather than a name bound only to be returned.
    pub fn take_result(&mut self, t: TensorRef) -> Option<String> {
        if self.pending.as_ref().is_none_or(|p| p.out != t) {
            return None;
        }
        self.pending.take().map(|p| pipe(&p.head, &p.stages))
    }

    /// Binds the pipe being written to a name.
    pub fn flush(&mut self) {
        if let Some(p) = self.pending.take() {
            let wanted = self.preferred.get(&p.out).cloned().unwrap_or(p.hint);
            let name = self.names.fresh(&wanted);
            self.lines.push(format!("{name} = {}", pipe(&p.head, &p.stages)));
            self.tensors.insert(p.out, name);
        }
    }

    pub fn name_of(&mut self, t: TensorRef) -> String {
        if self.pending.as_ref().is_some_and(|p| p.out == t) {
            self.flush();
        }
        self.tensors.get(&t).cloned().unwrap_or_else(|| "undefined".to_string())
    }

    /// One item as a stage of a pipe (`piped`: its first input comes through `|>`) or as a
    /// value of its own.
    fn stage(&mut self, s: usize, item: Item, range: Range<usize>, resolve: Resolve, piped: bool) -> String {
        let segment = self.tree.segment(item).to_string();
        match item {
            Item::Node(id) => {
                let kind = self.graph.node(id).kind;
                let inputs = self.graph.inputs_of(id);
                let slots = &self.plan.slots[s][range.clone()];
                let unlabelled = self.auto.gives(kind, &segment);
                if let (Some(symbol), true, [a, b]) = (infix(kind), unlabelled, &inputs[..]) {
                    return format!("{} {symbol} {}", self.name_of(*a), self.name_of(*b));
                }
                let call = self.call(id, slots, range.start, resolve, piped);
                let label = if unlabelled { String::new() } else { format!("{}: ", render::label(&segment)) };
                format!("{label}{call}")
            }
            Item::Scope(c) => {
                self.auto.claimed.insert(segment.clone());
                let inner = self.scope_stage(c, s, range, resolve, piped, 0);
                format!("{}: {inner}", render::label(&segment))
            }
        }
    }

    /// A sub-scope as a stage: a list, a `repeat`, or a block call.
    fn scope_stage(
        &mut self,
        c: usize,
        s: usize,
        range: Range<usize>,
        resolve: Resolve,
        piped: bool,
        depth: usize,
    ) -> String {
        match self.plan.form[c] {
            Form::Call(b) => {
                let inputs = self.tree.scopes[c].inputs.clone();
                let skip = usize::from(piped);
                let mut args: Vec<String> = inputs.iter().skip(skip).map(|t| self.name_of(*t)).collect();
                let slots = &self.plan.slots[s][range.clone()];
                for (k, slot) in slots.iter().enumerate() {
                    args.push(resolve(range.start + k).unwrap_or_else(|| slot.text.clone()));
                }
                let name = &self.plan.blocks[b].name;
                if args.is_empty() {
                    name.clone()
                } else {
                    format!("{name}({})", args.join(", "))
                }
            }
            _ => {
                let shift = |k: usize| resolve(range.start + k);
                self.sequence(c, &shift, depth)
            }
        }
    }

    /// A numbered chain: `[a, b, c]`, with runs of one item as `repeat`.
    fn sequence(&mut self, c: usize, resolve: Resolve, depth: usize) -> String {
        let items = self.tree.scopes[c].items.clone();
        let ranges = self.plan.ranges[c].clone();
        let mut texts = Vec::new();
        for (item, range) in items.iter().zip(ranges) {
            let text = match item {
                Item::Node(id) => {
                    let slots = &self.plan.slots[c][range.clone()];
                    self.call(*id, slots, range.start, resolve, true)
                }
                Item::Scope(sub) => self.scope_stage(*sub, c, range, resolve, true, depth + 1),
            };
            texts.push(text);
        }
        // Runs of equal items.
        let mut runs: Vec<(String, usize)> = Vec::new();
        for t in texts {
            match runs.last_mut() {
                Some((last, n)) if *last == t => *n += 1,
                _ => runs.push((t, 1)),
            }
        }
        if let [(text, n)] = &runs[..] {
            if *n > 1 {
                return format!("repeat {n} {{ {text} }}");
            }
        }
        let parts: Vec<String> = runs
            .into_iter()
            .flat_map(
                |(text, n)| {
                    if n > 1 {
                        vec![format!("...repeat {n} {{ {text} }}")]
                    } else {
                        vec![text]
                    }
                },
            )
            .collect();
        let one_line = format!("[{}]", parts.join(", "));
        if one_line.len() <= 80 && !one_line.contains('\n') {
            one_line
        } else {
            let (inner, outer) = (" ".repeat(12 + 4 * depth), " ".repeat(8 + 4 * depth));
            format!("[\n{inner}{},\n{outer}]", parts.join(&format!(",\n{inner}")))
        }
    }

    /// An op call: its inputs past the piped one, its required attributes by position, the
    /// others by keyword where they differ from the default.
    fn call(&mut self, id: NodeId, slots: &[Slot], base: usize, resolve: Resolve, piped: bool) -> String {
        let node = self.graph.node(id);
        let kind = node.kind;
        let inputs = self.graph.inputs_of(id);
        let (required, optional_names): (usize, &[&str]) = match ops::lookup(kind).map(|d| d.signature.inputs)
        {
            Some(Inputs::Trailing { names, required }) => (required, names),
            _ => (inputs.len(), &[]),
        };
        let mut args: Vec<String> = Vec::new();
        let list = ops::lookup(kind).is_some_and(|d| matches!(d.signature.inputs, Inputs::List(_)));
        if list {
            let items: Vec<String> = inputs.iter().map(|t| self.name_of(*t)).collect();
            args.push(format!("[{}]", items.join(", ")));
        } else {
            let skip = usize::from(piped);
            for t in inputs.iter().take(required).skip(skip) {
                args.push(self.name_of(*t));
            }
        }
        let mut by_position = true;
        for (k, slot) in slots.iter().enumerate() {
            let param = resolve(base + k);
            let is_default = slot.default.as_deref() == Some(slot.text.as_str());
            if param.is_none() && is_default {
                by_position = false;
                continue;
            }
            let text = param.unwrap_or_else(|| slot.text.clone());
            by_position &= slot.positional;
            if by_position {
                args.push(text);
            } else {
                args.push(format!("{}={text}", slot.name));
            }
        }
        // Inputs a call may leave out are given by their names (`key=memory`).
        if !list {
            for (k, t) in inputs.iter().enumerate().skip(required) {
                let name = optional_names.get(k).copied().unwrap_or("x");
                let value = self.name_of(*t);
                args.push(format!("{name}={value}"));
            }
        }
        if args.is_empty() && piped {
            kind.to_string()
        } else {
            format!("{kind}({})", args.join(", "))
        }
    }
}

/// A pipe on one line where it is short, else one stage a line.
fn pipe(head: &str, stages: &[String]) -> String {
    let one_line =
        std::iter::once(head.to_string()).chain(stages.iter().cloned()).collect::<Vec<_>>().join(" |> ");
    if one_line.len() <= 90 && !one_line.contains('\n') {
        return one_line;
    }
    let mut text = head.to_string();
    for (i, stage) in stages.iter().enumerate() {
        text.push_str(if i == 0 { " |> " } else { "\n        |> " });
        text.push_str(stage);
    }
    text
}
