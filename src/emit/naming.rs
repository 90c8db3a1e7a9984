//! Names for block definitions, from what they hold.

use super::blocks::Plan;
use super::scope::{Item, Tree};
use super::slots::infix;
use crate::ir::graph::Graph;
use crate::ops;

/// A block's name from what it holds: the segment its calls share (`Downsample`), else its
/// main op and whether it adds its input back (`ConvResidual`).
pub(super) fn block_name(graph: &Graph, tree: &Tree, plan: &Plan, b: usize) -> String {
    let def = &plan.blocks[b];
    let segments: Vec<&str> = def.instances.iter().map(|s| tree.scopes[*s].segment.as_str()).collect();
    if segments.iter().all(|s| *s == segments[0]) && crate::front::is_word(segments[0]) {
        let name = camel(segments[0]);
        // `embedding` is a layer's name, `Embedding` an op's.
        return if ops::lookup(&name).is_some() { format!("{name}Block") } else { name };
    }
    let s = def.instances[0];
    let mut kinds: Vec<&str> = Vec::new();
    collect_kinds(graph, tree, s, &mut kinds);
    const RANK: &[(&str, &str)] = &[
        ("MultiheadAttention", "Attention"),
        ("ScaledDotProductAttention", "Attention"),
        ("ShiftedWindowAttention", "Attention"),
        ("LSTM", "Lstm"),
        ("GRU", "Gru"),
        ("RNN", "Rnn"),
        ("ModulatedConv2d", "ModConv"),
        ("ConvTranspose2d", "UpConv"),
        ("Conv2d", "Conv"),
        ("Conv1d", "Conv"),
        ("EqualConv2d", "Conv"),
        ("Linear", "Linear"),
        ("EqualLinear", "Linear"),
    ];
    let main = RANK.iter().find(|(k, _)| kinds.contains(k)).map_or("", |(_, name)| *name);
    let scope = &tree.scopes[s];
    // A sum of two branches in its own body: a residual connection.
    let residual =
        scope.items.iter().any(|it| matches!(it, Item::Node(id) if infix(graph.node(*id).kind) == Some("+")));
    let sub: Option<String> = scope.items.iter().find_map(|it| match it {
        Item::Scope(c) if crate::front::is_word(&tree.scopes[*c].segment) => {
            Some(camel(&tree.scopes[*c].segment))
        }
        _ => None,
    });
    let concat =
        scope.items.iter().any(|it| matches!(it, Item::Node(id) if graph.node(*id).kind == "concat"));
    let tail = match (residual, concat) {
        (true, _) => "Residual",
        (false, true) => "Branches",
        _ => "Block",
    };
    let base = if main.is_empty() { tail.to_string() } else { format!("{main}{tail}") };
    match sub.filter(|_| residual) {
        Some(sub) => format!("{base}{sub}"),
        None => base,
    }
}

fn collect_kinds<'g>(graph: &'g Graph, tree: &Tree, s: usize, out: &mut Vec<&'g str>) {
    for item in &tree.scopes[s].items {
        match item {
            Item::Node(id) => out.push(graph.node(*id).kind),
            Item::Scope(c) => collect_kinds(graph, tree, *c, out),
        }
    }
}

/// `self_attn` -> `SelfAttn`.
fn camel(segment: &str) -> String {
    segment
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}
