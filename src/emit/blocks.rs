//! Which scopes are written how: a numbered chain becomes a list (or a `repeat`), any other
//! scope a block call; scopes of one structure share one `block` definition, whose parameters
//! are the values that differ between them.

use std::collections::HashMap;
use std::ops::Range;

use super::naming::block_name;
use super::render::Names;
use super::scope::{Item, Tree};
use super::slots::{node_slots, pipes, Slot, SlotType};
use super::WriteError;
use crate::ir::graph::{Graph, TensorRef};

/// How a scope is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// The model's body.
    Model,
    /// `label: [a, b, c]`: a chain of items numbered 0, 1, ... as `nn.Sequential`.
    Sequence,
    /// `label: Block(...)`, an instance of block definition `.0`.
    Call(usize),
}

#[derive(Clone, Debug)]
pub(super) struct Param {
    pub name: String,
    pub ty: SlotType,
}

/// A `block` definition and the scopes that call it.
#[derive(Clone, Debug)]
pub(super) struct BlockDef {
    pub name: String,
    pub instances: Vec<usize>,
    pub params: Vec<Param>,
    /// For each slot of the body, the parameter that gives it, if it differs between calls.
    pub slot_param: Vec<Option<usize>>,
}

/// The plan of the whole spec.
#[derive(Debug)]
pub(super) struct Plan {
    pub form: Vec<Form>,
    pub blocks: Vec<BlockDef>,
    /// Each scope's slots, in the order its body writes them.
    pub slots: Vec<Vec<Slot>>,
    /// Where each item of a scope has its slots among the scope's.
    pub ranges: Vec<Vec<Range<usize>>>,
}

impl Plan {
    /// The arguments of a call of scope `s`: one per parameter of its block.
    pub fn call_args(&self, tree: &Tree, s: usize) -> Vec<Slot> {
        let Form::Call(b) = self.form[s] else { return Vec::new() };
        let def = &self.blocks[b];
        def.params
            .iter()
            .enumerate()
            .filter_map(|(p, param)| {
                let pos = def.slot_param.iter().position(|x| *x == Some(p))?;
                let slot = &self.slots[s][pos];
                Some(Slot {
                    name: param.name.clone(),
                    owner: tree.scopes[s].segment.clone(),
                    default: None,
                    positional: true,
                    ..slot.clone()
                })
            })
            .collect()
    }
}

/// Decides each scope's form, groups scopes into blocks and finds their parameters.
pub(super) fn plan(graph: &Graph, tree: &Tree, reserved: &[String]) -> Result<Plan, WriteError> {
    let n = tree.scopes.len();
    let mut form = vec![Form::Model; n];
    // Where a tie's owner went: the first layer with parameters that left that path.
    let mut moved: HashMap<String, String> = HashMap::new();
    for (id, old, new) in &tree.moved {
        if !graph.node(*id).params.is_empty() {
            moved.entry(old.clone()).or_insert_with(|| new.clone());
        }
    }
    // Children come after their parents, so the reverse order meets every child first.
    let mut keys: Vec<String> = vec![String::new(); n];
    let mut own: Vec<Vec<Slot>> = vec![Vec::new(); n];
    // Each distinct structure once: a parent's key names its children's by number, so keys
    // stay short however deep the nesting.
    let mut interned: HashMap<String, usize> = HashMap::new();
    let mut block_of_key: HashMap<usize, usize> = HashMap::new();
    let mut blocks: Vec<BlockDef> = Vec::new();
    for s in (1..n).rev() {
        let sequence = is_sequence(graph, tree, s);
        let (key, slots) = structure(graph, tree, s, sequence, &keys, &moved)?;
        own[s] = slots;
        let next = interned.len();
        let key = *interned.entry(key).or_insert(next);
        keys[s] = format!("#{key}");
        form[s] = if sequence {
            Form::Sequence
        } else {
            let b = *block_of_key.entry(key).or_insert_with(|| {
                blocks.push(BlockDef {
                    name: String::new(),
                    instances: Vec::new(),
                    params: Vec::new(),
                    slot_param: Vec::new(),
                });
                blocks.len() - 1
            });
            blocks[b].instances.push(s);
            Form::Call(b)
        };
    }
    let (_, root) = structure(graph, tree, 0, false, &keys, &moved)?;
    own[0] = root;
    let mut plan = Plan { form, blocks, slots: own, ranges: vec![Vec::new(); n] };
    // A scope's slots hold its calls' arguments, known once the called blocks' parameters are:
    // finish the blocks innermost first (each block's instances were met deepest first).
    let mut names = Names::new(reserved.iter().cloned());
    let order: Vec<usize> = (0..plan.blocks.len()).collect();
    for b in order {
        for &s in &plan.blocks[b].instances.clone() {
            (plan.slots[s], plan.ranges[s]) = expand(&plan, tree, s);
        }
        find_params(&mut plan, b, reserved);
        let name = block_name(graph, tree, &plan, b);
        plan.blocks[b].name = names.fresh(&name);
        plan.blocks[b].instances.reverse();
    }
    // Parents before children: a list's own slots are read by its parent's expansion.
    for s in 0..n {
        if matches!(plan.form[s], Form::Sequence | Form::Model) {
            (plan.slots[s], plan.ranges[s]) = expand(&plan, tree, s);
        }
    }
    Ok(plan)
}

/// A scope's full slots: its layers' own, a list's items' (through nested lists), the
/// arguments of the blocks it calls; and where each item's slots are among them.
fn expand(plan: &Plan, tree: &Tree, s: usize) -> (Vec<Slot>, Vec<Range<usize>>) {
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    let mut own = plan.slots[s].iter();
    for item in &tree.scopes[s].items {
        let start = out.len();
        match item {
            Item::Node(_) => {
                // A layer's slots were collected in item order, each layer's ending with `tie`.
                for slot in own.by_ref() {
                    let last = slot.name == "tie";
                    out.push(slot.clone());
                    if last {
                        break;
                    }
                }
            }
            Item::Scope(c) => match plan.form[*c] {
                Form::Call(_) => out.extend(plan.call_args(tree, *c)),
                _ => out.extend(expand(plan, tree, *c).0),
            },
        }
        ranges.push(start..out.len());
    }
    (out, ranges)
}

/// The structure of a scope as a key (two scopes of one key are one block), and its layers'
/// slots in item order. The key holds the labels, the ops, the wiring, the ranks and the
/// kinds of values, never the values.
fn structure(
    graph: &Graph,
    tree: &Tree,
    s: usize,
    sequence: bool,
    keys: &[String],
    moved: &HashMap<String, String>,
) -> Result<(String, Vec<Slot>), WriteError> {
    let scope = &tree.scopes[s];
    let mut key = format!("{}(", if sequence { "seq" } else { "scope" });
    let mut slots = Vec::new();
    let mut made: HashMap<TensorRef, String> = HashMap::new();
    for (i, t) in scope.inputs.iter().enumerate() {
        let rank = graph.tensor_type(*t).map_or(0, |ty| ty.rank());
        key.push_str(&format!("in{i}:{rank};"));
        made.insert(*t, format!("in{i}"));
    }
    for (i, item) in scope.items.iter().enumerate() {
        let reads: Vec<String> = tree
            .reads(graph, *item)
            .iter()
            .map(|t| made.get(t).cloned().unwrap_or_else(|| "?".into()))
            .collect();
        key.push_str(&format!("[{}:", tree.segment(*item)));
        match item {
            Item::Node(id) => {
                let node_slots = node_slots(graph, *id, tree.segment(*item), moved)?;
                let kinds: Vec<String> = node_slots
                    .iter()
                    .map(|sl| match sl.ty {
                        SlotType::Fixed => format!("={}", sl.text),
                        ty => format!("{ty:?}"),
                    })
                    .collect();
                key.push_str(&format!("{}({})", graph.node(*id).kind, kinds.join(",")));
                slots.extend(node_slots);
            }
            Item::Scope(c) => key.push_str(&keys[*c]),
        }
        key.push_str(&format!("<-{}]", reads.join(",")));
        for (port, t) in tree.gives(graph, *item).iter().enumerate() {
            made.insert(*t, format!("{i}.{port}"));
        }
    }
    let outs: Vec<String> =
        scope.outputs.iter().map(|t| made.get(t).cloned().unwrap_or_else(|| "?".into())).collect();
    key.push_str(&format!(")->{}", outs.join(",")));
    Ok((key, slots))
}

/// Whether a scope is a numbered chain: items `0, 1, ...` in order, each reading the one
/// before it first (the first item the scope's first input), that result read by nothing
/// else; an item may also read the scope's other inputs (a decoder layer's memory). The last
/// item's result is the scope's one output.
fn is_sequence(graph: &Graph, tree: &Tree, s: usize) -> bool {
    let scope = &tree.scopes[s];
    let (Some(&first), 1) = (scope.inputs.first(), scope.outputs.len()) else { return false };
    let others = &scope.inputs[1..];
    let mut prev = first;
    let mut readers: HashMap<TensorRef, usize> = HashMap::new();
    for item in &scope.items {
        for t in tree.reads(graph, *item) {
            *readers.entry(t).or_default() += 1;
        }
    }
    for (i, item) in scope.items.iter().enumerate() {
        if tree.segment(*item) != i.to_string() {
            return false;
        }
        if let Item::Node(id) = item {
            if !pipes(graph, *id) {
                return false;
            }
        }
        let reads = tree.reads(graph, *item);
        let gives = tree.gives(graph, *item);
        let chained = reads.first() == Some(&prev) && reads[1..].iter().all(|t| others.contains(t));
        if !chained || gives.len() != 1 || readers.get(&prev).copied() != Some(1) {
            return false;
        }
        prev = gives[0];
    }
    prev == scope.outputs[0]
}

/// The parameters of block `b`: the slots whose values differ between its calls, one
/// parameter for slots that differ alike (`conv1` and `conv2`'s `out_channels` are `planes`).
fn find_params(plan: &mut Plan, b: usize, reserved: &[String]) {
    let instances = plan.blocks[b].instances.clone();
    let first = instances[0];
    let len = plan.slots[first].len();
    let mut slot_param = vec![None; len];
    let mut params: Vec<Param> = Vec::new();
    let mut by_values: HashMap<Vec<String>, usize> = HashMap::new();
    let mut owners: Vec<Vec<(String, String)>> = Vec::new();
    for (pos, param) in slot_param.iter_mut().enumerate() {
        let values: Vec<String> = instances.iter().map(|s| plan.slots[*s][pos].text.clone()).collect();
        let slot = &plan.slots[first][pos];
        // Equal structure means equal slot types (the key holds them): only values differ.
        if values.iter().all(|v| *v == values[0]) || slot.ty == SlotType::Fixed {
            continue;
        }
        let p = *by_values.entry(values).or_insert_with(|| {
            params.push(Param { name: String::new(), ty: slot.ty });
            owners.push(Vec::new());
            params.len() - 1
        });
        owners[p].push((slot.owner.clone(), slot.name.clone()));
        *param = Some(p);
    }
    // A parameter is named after its attribute, with its layer where two would share a name.
    let plain: Vec<String> = owners.iter().map(|o| o[0].1.clone()).collect();
    let mut names = Names::new(reserved.iter().cloned().chain(["x".to_string()]));
    for (p, param) in params.iter_mut().enumerate() {
        let clash = plain.iter().filter(|n| **n == plain[p]).count() > 1;
        let wanted = if clash && crate::front::is_word(&owners[p][0].0) {
            format!("{}_{}", owners[p][0].0, plain[p])
        } else {
            plain[p].clone()
        };
        param.name = names.fresh(&wanted);
    }
    plan.blocks[b].params = params;
    plan.blocks[b].slot_param = slot_param;
}
