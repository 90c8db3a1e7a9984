//! One level of the layout: a flat layered (Sugiyama-style) drawing of boxes.
//!
//! Longest-path layering; edges longer than one layer go through dummy nodes, one per layer;
//! barycenter sweeps reorder each layer to remove crossings; x positions come from isotonic
//! regression (each node as close as the order and gaps allow to the mean of its
//! neighbours). Edges may also enter from the top border or leave through the bottom one,
//! which is how a cluster's contents meet the world outside it. Past
//! [`DUMMY_BUDGET_PER_NODE`] dummies per node, further long edges are drawn straight, so a
//! pathological graph stays linear in time.

use super::Rect;

/// Horizontal space between neighbours in a layer.
pub const NODE_GAP: f64 = 24.0;
/// Vertical space between layers (edge labels sit here).
pub const LAYER_GAP: f64 = 40.0;
const DUMMY_WIDTH: f64 = 8.0;
const DUMMY_BUDGET_PER_NODE: usize = 16;
const SWEEPS: usize = 4;

/// A flat graph of boxes, with edges from the top border (`entries`: their targets) and to
/// the bottom border (`exits`: their sources).
#[derive(Default)]
pub struct Level {
    pub sizes: Vec<(f64, f64)>,
    pub edges: Vec<(usize, usize)>,
    pub entries: Vec<usize>,
    pub exits: Vec<usize>,
}

/// A level laid out in its own coordinates: contents span `[0, width] x [0, height]`.
#[derive(Clone, Debug, Default)]
pub struct Placed {
    pub rects: Vec<Rect>,
    pub layers: Vec<usize>,
    /// Polylines, from the source's bottom (or the top border) to the target's top (or the
    /// bottom border).
    pub edges: Vec<Vec<(f64, f64)>>,
    pub entries: Vec<Vec<(f64, f64)>>,
    pub exits: Vec<Vec<(f64, f64)>>,
    /// For each edge, the middle of the gap below its source's layer: where its label goes.
    pub label_y: Vec<f64>,
    pub width: f64,
    pub height: f64,
}

/// Layer of each node: one below its lowest predecessor. A cycle (never in a compiled model,
/// but folding could close one) is broken at its first node in index order.
pub fn longest_path(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut succs = vec![Vec::new(); n];
    for &(a, b) in edges {
        succs[a].push(b);
        indegree[b] += 1;
    }
    let mut layer = vec![0usize; n];
    let mut done = vec![false; n];
    let mut ready: Vec<usize> = (0..n).rev().filter(|&v| indegree[v] == 0).collect();
    let mut next_stuck = 0;
    loop {
        while let Some(v) = ready.pop() {
            done[v] = true;
            for &s in &succs[v] {
                if done[s] {
                    continue;
                }
                layer[s] = layer[s].max(layer[v] + 1);
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    ready.push(s);
                }
            }
        }
        while next_stuck < n && done[next_stuck] {
            next_stuck += 1;
        }
        if next_stuck == n {
            return layer;
        }
        indegree[next_stuck] = 0;
        ready.push(next_stuck);
    }
}

/// Real nodes, then dummies; every kept edge spans one layer.
struct Virtual {
    widths: Vec<f64>,
    layer: Vec<usize>,
    preds: Vec<Vec<usize>>,
    succs: Vec<Vec<usize>>,
    budget: usize,
}

impl Virtual {
    fn link(&mut self, a: usize, b: usize) {
        self.succs[a].push(b);
        self.preds[b].push(a);
    }

    /// Dummies on layers `from..to`, chained to each other; `None` past the budget.
    fn chain(&mut self, from: usize, to: usize) -> Option<Vec<usize>> {
        let count = to.saturating_sub(from);
        if count > self.budget {
            return None;
        }
        self.budget -= count;
        let mut out = Vec::with_capacity(count);
        for l in from..to {
            let d = self.widths.len();
            self.widths.push(DUMMY_WIDTH);
            self.layer.push(l);
            self.preds.push(Vec::new());
            self.succs.push(Vec::new());
            if let Some(&prev) = out.last() {
                self.link(prev, d);
            }
            out.push(d);
        }
        Some(out)
    }
}

/// Reorder layers by the barycenter of each node's neighbours in the layer before (down
/// sweeps) or after (up sweeps).
fn order_layers(v: &Virtual, layers: &mut [Vec<usize>]) {
    let mut pos = vec![0.0f64; v.widths.len()];
    for layer in layers.iter() {
        layer.iter().enumerate().for_each(|(i, &n)| pos[n] = i as f64);
    }
    for sweep in 0..SWEEPS * 2 + 1 {
        let down = sweep % 2 == 0;
        let order: Vec<usize> = if down {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        for l in order {
            let mut keyed: Vec<(f64, usize, usize)> = layers[l]
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let near = if down { &v.preds[n] } else { &v.succs[n] };
                    let key = if near.is_empty() {
                        pos[n]
                    } else {
                        near.iter().map(|&m| pos[m]).sum::<f64>() / near.len() as f64
                    };
                    (key, i, n)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            layers[l] = keyed.into_iter().map(|(_, _, n)| n).collect();
            layers[l].iter().enumerate().for_each(|(i, &n)| pos[n] = i as f64);
        }
    }
}

/// Centres as close as possible (least squares) to `desired`, keeping order and `gaps`
/// (pool-adjacent-violators on the gap-shifted targets).
pub fn place_row(desired: &[f64], gaps: &[f64]) -> Vec<f64> {
    let mut offset = Vec::with_capacity(desired.len());
    let mut acc = 0.0;
    for i in 0..desired.len() {
        if i > 0 {
            acc += gaps[i - 1];
        }
        offset.push(acc);
    }
    // Blocks of (sum of targets, count), merged while out of order.
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for (d, o) in desired.iter().zip(&offset) {
        blocks.push((d - o, 1));
        while blocks.len() > 1 {
            let (s2, n2) = blocks[blocks.len() - 1];
            let (s1, n1) = blocks[blocks.len() - 2];
            if s1 / n1 as f64 <= s2 / n2 as f64 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (s1 + s2, n1 + n2);
        }
    }
    let mut out = Vec::with_capacity(desired.len());
    for (sum, count) in blocks {
        out.extend(std::iter::repeat_n(sum / count as f64, count));
    }
    out.iter_mut().zip(&offset).for_each(|(x, o)| *x += o);
    out
}

fn assign_x(v: &Virtual, layers: &[Vec<usize>], real: usize) -> Vec<f64> {
    let mut x = vec![0.0f64; v.widths.len()];
    let gap = |a: usize, b: usize| {
        let space = if a >= real || b >= real { NODE_GAP / 2.0 } else { NODE_GAP };
        (v.widths[a] + v.widths[b]) / 2.0 + space
    };
    let gaps: Vec<Vec<f64>> =
        layers.iter().map(|l| l.windows(2).map(|w| gap(w[0], w[1])).collect()).collect();
    for round in 0..SWEEPS * 2 + 2 {
        let first = round == 0;
        let last = round == SWEEPS * 2 + 1;
        let down = round % 2 == 1;
        let order: Vec<usize> =
            if down || first { (0..layers.len()).collect() } else { (0..layers.len()).rev().collect() };
        for l in order {
            let desired: Vec<f64> = layers[l]
                .iter()
                .map(|&n| {
                    let near: Vec<usize> = match (first, last, down) {
                        (true, _, _) => Vec::new(),
                        (_, true, _) => v.preds[n].iter().chain(&v.succs[n]).copied().collect(),
                        (_, _, true) => v.preds[n].clone(),
                        _ => v.succs[n].clone(),
                    };
                    if near.is_empty() {
                        x[n]
                    } else {
                        near.iter().map(|&m| x[m]).sum::<f64>() / near.len() as f64
                    }
                })
                .collect();
            let row = place_row(&desired, &gaps[l]);
            layers[l].iter().zip(row).for_each(|(&n, cx)| x[n] = cx);
        }
    }
    x
}

/// Lay out one level. Deterministic; edges with bad indices get empty routes.
pub fn place(level: &Level) -> Placed {
    let real = level.sizes.len();
    let ok = |&(a, b): &(usize, usize)| a < real && b < real && a != b;
    let kept: Vec<(usize, usize)> = level.edges.iter().copied().filter(ok).collect();
    let layer = longest_path(real, &kept);
    let bottom = layer.iter().max().copied().unwrap_or(0);
    let mut v = Virtual {
        widths: level.sizes.iter().map(|s| s.0).collect(),
        layer,
        preds: vec![Vec::new(); real],
        succs: vec![Vec::new(); real],
        budget: DUMMY_BUDGET_PER_NODE.saturating_mul(real),
    };
    // Each route: its dummies, or None when drawn straight (or not at all).
    let mut edge_dummies = Vec::with_capacity(level.edges.len());
    for e in &level.edges {
        if !ok(e) {
            edge_dummies.push(None);
            continue;
        }
        let (a, b) = *e;
        let dummies = if v.layer[b] > v.layer[a] { v.chain(v.layer[a] + 1, v.layer[b]) } else { None };
        let ends = dummies.as_ref().and_then(|d| Some((*d.first()?, *d.last()?)));
        match ends {
            Some((first, last)) => {
                v.link(a, first);
                v.link(last, b);
            }
            None if v.layer[b] == v.layer[a] + 1 => v.link(a, b),
            None => {}
        }
        edge_dummies.push(Some(dummies.unwrap_or_default()));
    }
    let mut entry_dummies = Vec::with_capacity(level.entries.len());
    for &t in &level.entries {
        let d = (t < real).then(|| v.chain(0, v.layer[t])).flatten();
        if let Some(&last) = d.as_ref().and_then(|d| d.last()) {
            v.link(last, t);
        }
        entry_dummies.push((t < real).then(|| d.unwrap_or_default()));
    }
    let mut exit_dummies = Vec::with_capacity(level.exits.len());
    for &s in &level.exits {
        let d = (s < real).then(|| v.chain(v.layer[s] + 1, bottom + 1)).flatten();
        if let Some(&first) = d.as_ref().and_then(|d| d.first()) {
            v.link(s, first);
        }
        exit_dummies.push((s < real).then(|| d.unwrap_or_default()));
    }

    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); bottom + 1];
    for (n, &l) in v.layer.iter().enumerate() {
        layers[l].push(n);
    }
    order_layers(&v, &mut layers);
    let x = assign_x(&v, &layers, real);
    let left = (0..v.widths.len()).map(|n| x[n] - v.widths[n] / 2.0).fold(f64::MAX, f64::min);
    let left = if left == f64::MAX { 0.0 } else { left };
    // Layers top-aligned: parallel branches start level with each other.
    let mut tops = Vec::with_capacity(layers.len());
    let mut y = 0.0;
    for layer in &layers {
        let h = layer.iter().filter(|&&n| n < real).map(|&n| level.sizes[n].1).fold(0.0, f64::max);
        tops.push((y, h));
        y += h + LAYER_GAP;
    }
    let height = (y - LAYER_GAP).max(0.0);
    let rects: Vec<Rect> = (0..v.widths.len())
        .map(|n| {
            let (top, h) = tops[v.layer[n]];
            let h = if n < real { level.sizes[n].1 } else { h };
            Rect { x: x[n] - v.widths[n] / 2.0 - left, y: top, w: v.widths[n], h }
        })
        .collect();
    let width = rects.iter().map(Rect::right).fold(0.0, f64::max);
    // Leave a box straight down to the bottom of its layer: a short box in a tall layer has
    // only empty space below it, while a slanted line could cross its neighbours.
    let start = |n: usize| {
        let (top, h) = tops[v.layer[n]];
        let r = rects[n];
        let mut points = vec![(r.center_x(), r.bottom())];
        if r.bottom() < top + h {
            points.push((r.center_x(), top + h));
        }
        points
    };
    // A polyline: its start, down through its dummies, to its end (or the bottom border).
    let path = |mut points: Vec<(f64, f64)>, dummies: &[usize], end: Option<usize>| {
        for &d in dummies {
            points.push((rects[d].center_x(), rects[d].y));
            points.push((rects[d].center_x(), rects[d].bottom()));
        }
        let x = points.last().map_or(0.0, |p| p.0);
        points.push(end.map_or((x, height), |t| (rects[t].center_x(), rects[t].y)));
        points
    };
    let edges = level
        .edges
        .iter()
        .zip(&edge_dummies)
        .map(|(&(a, b), d)| d.as_ref().map_or_else(Vec::new, |d| path(start(a), d, Some(b))))
        .collect();
    let entries = level
        .entries
        .iter()
        .zip(&entry_dummies)
        .map(|(&t, d)| {
            let top = |d: &Vec<usize>| (d.first().map_or(rects[t].center_x(), |&f| rects[f].center_x()), 0.0);
            d.as_ref().map_or_else(Vec::new, |d| path(vec![top(d)], d, Some(t)))
        })
        .collect();
    let exits = level
        .exits
        .iter()
        .zip(&exit_dummies)
        .map(|(&s, d)| d.as_ref().map_or_else(Vec::new, |d| path(start(s), d, None)))
        .collect();
    let label_y = level
        .edges
        .iter()
        .map(|&(a, _)| v.layer.get(a).map_or(0.0, |&l| tops[l].0 + tops[l].1 + LAYER_GAP / 2.0))
        .collect();
    let mut rects = rects;
    rects.truncate(real);
    Placed { rects, layers: v.layer[..real].to_vec(), edges, entries, exits, label_y, width, height }
}
