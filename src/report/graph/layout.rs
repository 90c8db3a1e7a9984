//! A layered (Sugiyama-style) layout with cluster boxes, for drawing without Graphviz.
//!
//! Longest-path layering; long edges are split into dummy nodes, one per layer they cross;
//! barycenter sweeps reorder each layer, keeping each cluster's nodes side by side; x
//! positions come from isotonic regression (each node as close as the order allows to the
//! mean of its neighbours). Past [`DUMMY_BUDGET_PER_NODE`] dummies per node, further long
//! edges are drawn straight, so a pathological graph stays linear in time.

use std::collections::HashMap;

/// Horizontal space between neighbours in a layer.
pub const NODE_GAP: f64 = 24.0;
/// Vertical space between layers (edge labels sit here).
pub const LAYER_GAP: f64 = 40.0;
/// Space between a cluster's box and what it holds.
pub const CLUSTER_PAD: f64 = 10.0;
/// Room for a cluster's title above its contents.
pub const CLUSTER_HEADER: f64 = 18.0;
pub const MARGIN: f64 = 16.0;
const DUMMY_WIDTH: f64 = 8.0;
const DUMMY_BUDGET_PER_NODE: usize = 16;
const SWEEPS: usize = 4;

/// What to lay out: node sizes, edges between node indices, and each node's clusters from
/// the outermost in.
pub struct Graph<'a> {
    pub sizes: &'a [(f64, f64)],
    pub edges: &'a [(usize, usize)],
    pub chains: &'a [Vec<usize>],
}

/// A rectangle by its top-left corner.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.w
    }
    pub fn bottom(&self) -> f64 {
        self.y + self.h
    }
    pub fn center_x(&self) -> f64 {
        self.x + self.w / 2.0
    }
    fn union(&self, o: &Rect) -> Rect {
        let (x, y) = (self.x.min(o.x), self.y.min(o.y));
        Rect { x, y, w: self.right().max(o.right()) - x, h: self.bottom().max(o.bottom()) - y }
    }
}

/// Where everything goes.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub nodes: Vec<Rect>,
    pub layers: Vec<usize>,
    /// One polyline per input edge, from the bottom of its source to the top of its target.
    pub edges: Vec<Vec<(f64, f64)>>,
    /// Where each edge's label goes: beside its start, in the free band below its source's layer.
    pub labels: Vec<(f64, f64)>,
    /// By cluster index; `None` for a cluster with no nodes.
    pub clusters: Vec<Option<Rect>>,
    pub width: f64,
    pub height: f64,
}

/// Layer of each node: one below its lowest predecessor. Nodes on a cycle (never in a
/// compiled model) are layered as if the edge closing it were absent.
fn longest_path(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
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
        // Break a cycle at its first node in index order.
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

/// The virtual graph: real nodes, then dummies; every edge spans one layer or is left long.
struct Virtual {
    sizes: Vec<(f64, f64)>,
    chains: Vec<Vec<usize>>,
    layer: Vec<usize>,
    preds: Vec<Vec<usize>>,
    succs: Vec<Vec<usize>>,
    /// Dummies of each input edge, top down.
    routes: Vec<Vec<usize>>,
}

impl Virtual {
    fn new(g: &Graph, layer: Vec<usize>) -> Virtual {
        let n = g.sizes.len();
        let mut v = Virtual {
            sizes: g.sizes.to_vec(),
            chains: (0..n).map(|i| g.chains.get(i).cloned().unwrap_or_default()).collect(),
            layer,
            preds: vec![Vec::new(); n],
            succs: vec![Vec::new(); n],
            routes: Vec::with_capacity(g.edges.len()),
        };
        let spans = cluster_layers(&v.chains, &v.layer);
        let mut budget = DUMMY_BUDGET_PER_NODE.saturating_mul(n);
        for &(a, b) in g.edges {
            let span = v.layer[b].saturating_sub(v.layer[a]);
            let mut route = Vec::new();
            let mut prev = a;
            if span > 1 && span - 1 <= budget {
                budget -= span - 1;
                for l in v.layer[a] + 1..v.layer[b] {
                    let chain = dummy_chain(&v.chains[a], &v.chains[b], l, &spans);
                    let d = v.sizes.len();
                    v.sizes.push((DUMMY_WIDTH, 0.0));
                    v.chains.push(chain);
                    v.layer.push(l);
                    v.preds.push(Vec::new());
                    v.succs.push(Vec::new());
                    v.link(prev, d);
                    route.push(d);
                    prev = d;
                }
            }
            if span > 0 {
                v.link(prev, b);
            }
            v.routes.push(route);
        }
        v
    }

    fn link(&mut self, a: usize, b: usize) {
        self.succs[a].push(b);
        self.preds[b].push(a);
    }

    fn is_dummy(&self, v: usize, real: usize) -> bool {
        v >= real
    }

    /// Gap between neighbours `a` (left) and `b`: wider for each cluster border between them.
    fn separation(&self, a: usize, b: usize, real: usize) -> f64 {
        let (ca, cb) = (&self.chains[a], &self.chains[b]);
        let common = ca.iter().zip(cb).take_while(|(x, y)| x == y).count();
        let borders = (ca.len() - common + cb.len() - common) as f64;
        let gap = if self.is_dummy(a, real) || self.is_dummy(b, real) { NODE_GAP / 2.0 } else { NODE_GAP };
        (self.sizes[a].0 + self.sizes[b].0) / 2.0 + gap + borders * CLUSTER_PAD
    }
}

/// First and last layer of each cluster's nodes.
fn cluster_layers(chains: &[Vec<usize>], layer: &[usize]) -> HashMap<usize, (usize, usize)> {
    let mut spans: HashMap<usize, (usize, usize)> = HashMap::new();
    for (chain, &l) in chains.iter().zip(layer) {
        for &c in chain {
            let s = spans.entry(c).or_insert((l, l));
            *s = (s.0.min(l), s.1.max(l));
        }
    }
    spans
}

/// The clusters a dummy at layer `l` belongs to: the deepest of either end's clusters that
/// already spans `l` (a skip edge inside a block stays inside its box), else those shared by
/// both ends.
fn dummy_chain(a: &[usize], b: &[usize], l: usize, spans: &HashMap<usize, (usize, usize)>) -> Vec<usize> {
    let covers = |c: &usize| spans.get(c).is_some_and(|&(lo, hi)| lo <= l && l <= hi);
    let inside = |chain: &[usize]| chain.iter().take_while(|c| covers(c)).count();
    let (ka, kb) = (inside(a), inside(b));
    if kb >= ka {
        b[..kb].to_vec()
    } else {
        a[..ka].to_vec()
    }
}

/// Sort one layer by `key`, keeping every cluster's members together: clusters are ordered by
/// their members' mean key, recursively.
fn cluster_sort(nodes: &[usize], key: &[f64], chains: &[Vec<usize>], depth: usize, out: &mut Vec<usize>) {
    let mut units: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
    let mut unit_of: HashMap<usize, usize> = HashMap::new();
    for &v in nodes {
        match chains[v].get(depth) {
            Some(&c) => match unit_of.get(&c) {
                Some(&u) => units[u].1.push(v),
                None => {
                    unit_of.insert(c, units.len());
                    units.push((Some(c), vec![v]));
                }
            },
            None => units.push((None, vec![v])),
        }
    }
    let mut keyed: Vec<(f64, usize)> = units
        .iter()
        .enumerate()
        .map(|(i, (_, m))| (m.iter().map(|&v| key[v]).sum::<f64>() / m.len() as f64, i))
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (_, i) in keyed {
        match &units[i] {
            (Some(_), members) => cluster_sort(members, key, chains, depth + 1, out),
            (None, members) => out.extend(members),
        }
    }
}

/// Reorder layers by the barycenter of each node's neighbours in the layer before.
fn order_layers(v: &Virtual, layers: &mut [Vec<usize>]) {
    let mut pos = vec![0.0f64; v.sizes.len()];
    let set_pos = |layer: &[usize], pos: &mut Vec<f64>| {
        for (i, &n) in layer.iter().enumerate() {
            pos[n] = i as f64;
        }
    };
    for layer in layers.iter() {
        set_pos(layer, &mut pos);
    }
    let mut key = pos.clone();
    for sweep in 0..SWEEPS * 2 + 1 {
        let down = sweep % 2 == 0;
        let order: Vec<usize> = if down {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        for l in order {
            for &n in &layers[l] {
                let near = if down { &v.preds[n] } else { &v.succs[n] };
                key[n] = if near.is_empty() {
                    pos[n]
                } else {
                    near.iter().map(|&m| pos[m]).sum::<f64>() / near.len() as f64
                };
            }
            let mut sorted = Vec::with_capacity(layers[l].len());
            cluster_sort(&layers[l], &key, &v.chains, 0, &mut sorted);
            layers[l] = sorted;
            set_pos(&layers[l], &mut pos);
        }
    }
}

/// Centres as close as possible (least squares) to `desired`, keeping order and `gaps`
/// (pool-adjacent-violators on the gap-shifted targets).
fn place_row(desired: &[f64], gaps: &[f64]) -> Vec<f64> {
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
        for _ in 0..count {
            out.push(sum / count as f64);
        }
    }
    out.iter_mut().zip(&offset).for_each(|(x, o)| *x += o);
    out
}

fn assign_x(v: &Virtual, layers: &[Vec<usize>], real: usize) -> Vec<f64> {
    let mut x = vec![0.0f64; v.sizes.len()];
    let gaps: Vec<Vec<f64>> =
        layers.iter().map(|l| l.windows(2).map(|w| v.separation(w[0], w[1], real)).collect()).collect();
    for (l, layer) in layers.iter().enumerate() {
        let row = place_row(&vec![0.0; layer.len()], &gaps[l]);
        layer.iter().zip(row).for_each(|(&n, cx)| x[n] = cx);
    }
    for round in 0..SWEEPS * 2 + 1 {
        let last = round == SWEEPS * 2;
        let down = round % 2 == 0;
        let order: Vec<usize> =
            if down { (0..layers.len()).collect() } else { (0..layers.len()).rev().collect() };
        for l in order {
            let desired: Vec<f64> = layers[l]
                .iter()
                .map(|&n| {
                    let near: Vec<usize> = match (last, down) {
                        (true, _) => v.preds[n].iter().chain(&v.succs[n]).copied().collect(),
                        (false, true) => v.preds[n].clone(),
                        (false, false) => v.succs[n].clone(),
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

/// Lay out `g`. Deterministic: the same graph gives the same coordinates.
pub fn layout(g: &Graph) -> Layout {
    let real = g.sizes.len();
    let edges: Vec<(usize, usize)> =
        g.edges.iter().copied().filter(|&(a, b)| a < real && b < real && a != b).collect();
    let v =
        Virtual::new(&Graph { sizes: g.sizes, edges: &edges, chains: g.chains }, longest_path(real, &edges));
    let depth = v.layer.iter().max().map_or(0, |m| m + 1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (n, &l) in v.layer.iter().enumerate() {
        layers[l].push(n);
    }
    order_layers(&v, &mut layers);
    let x = assign_x(&v, &layers, real);
    let ys = layer_tops(&v, &layers);
    let mut rects: Vec<Rect> = (0..v.sizes.len())
        .map(|n| {
            let (w, h) = v.sizes[n];
            let (top, height) = ys[v.layer[n]];
            // A dummy runs the layer's full height, so an edge through it stays vertical.
            let (y, h) = if n < real { (top + (height - h) / 2.0, h) } else { (top, height) };
            Rect { x: x[n] - w / 2.0, y, w, h }
        })
        .collect();
    let cluster_count = v.chains.iter().flatten().max().map_or(0, |m| m + 1);
    let mut clusters = cluster_boxes(&v, &rects, cluster_count);
    // Shift right so the leftmost box starts at the margin.
    let left =
        rects.iter().map(|r| r.x).chain(clusters.iter().flatten().map(|r| r.x)).fold(f64::MAX, f64::min);
    let shift = if left == f64::MAX { 0.0 } else { MARGIN - left };
    rects.iter_mut().for_each(|r| r.x += shift);
    clusters.iter_mut().flatten().for_each(|r| r.x += shift);
    let width =
        rects.iter().map(Rect::right).chain(clusters.iter().flatten().map(Rect::right)).fold(0.0, f64::max)
            + MARGIN;
    let height = ys.last().map_or(0.0, |(t, h)| t + h) + trailing_space(&v, &layers) + MARGIN;
    let routes = edges_routes(g.edges, &edges, &v, &rects);
    let (_, closes) = cluster_spans(&v, layers.len());
    let labels = g
        .edges
        .iter()
        .zip(&routes)
        .map(|(&(a, _), route)| {
            let l = v.layer.get(a).copied().unwrap_or(0);
            let below = ys.get(l).map_or(0.0, |(t, h)| t + h)
                + closes.get(l).map_or(0.0, |&c| c as f64 * CLUSTER_PAD);
            let x = route.first().map_or(0.0, |p| p.0);
            (x + 5.0, below + LAYER_GAP / 2.0 + 4.0)
        })
        .collect();
    rects.truncate(real);
    Layout { nodes: rects, layers: v.layer[..real].to_vec(), edges: routes, labels, clusters, width, height }
}

/// Clusters that open at each layer (their first node is there) and close at each layer.
fn cluster_spans(v: &Virtual, layers: usize) -> (Vec<usize>, Vec<usize>) {
    let (mut opens, mut closes) = (vec![0; layers], vec![0; layers]);
    for (first, last) in cluster_layers(&v.chains, &v.layer).values() {
        opens[*first] += 1;
        closes[*last] += 1;
    }
    (opens, closes)
}

/// Top and height of each layer, leaving room for the cluster borders and titles between.
fn layer_tops(v: &Virtual, layers: &[Vec<usize>]) -> Vec<(f64, f64)> {
    let (opens, closes) = cluster_spans(v, layers.len());
    let mut y = MARGIN;
    let mut out = Vec::with_capacity(layers.len());
    for (l, layer) in layers.iter().enumerate() {
        if l > 0 {
            // Closing borders first, then the band for edge labels, then opening titles.
            y += closes[l - 1] as f64 * CLUSTER_PAD + LAYER_GAP;
        }
        y += opens[l] as f64 * (CLUSTER_PAD + CLUSTER_HEADER);
        let height = layer.iter().map(|&n| v.sizes[n].1).fold(0.0, f64::max);
        out.push((y, height));
        y += height;
    }
    out
}

fn trailing_space(v: &Virtual, layers: &[Vec<usize>]) -> f64 {
    let (_, closes) = cluster_spans(v, layers.len());
    closes.last().map_or(0.0, |&c| c as f64 * CLUSTER_PAD)
}

/// Each cluster's box: its nodes and inner boxes, padded, with room for the title.
fn cluster_boxes(v: &Virtual, rects: &[Rect], count: usize) -> Vec<Option<Rect>> {
    let mut boxes: Vec<Option<Rect>> = vec![None; count];
    let mut parent: Vec<Option<usize>> = vec![None; count];
    let mut depth = vec![0usize; count];
    for (n, chain) in v.chains.iter().enumerate() {
        for (i, &c) in chain.iter().enumerate() {
            parent[c] = i.checked_sub(1).map(|p| chain[p]);
            depth[c] = i;
        }
        if let Some(&inner) = chain.last() {
            let r = rects[n];
            boxes[inner] = Some(boxes[inner].map_or(r, |b| b.union(&r)));
        }
    }
    let mut by_depth: Vec<usize> = (0..count).collect();
    by_depth.sort_by_key(|&c| std::cmp::Reverse(depth[c]));
    for c in by_depth {
        let Some(b) = boxes[c] else { continue };
        let padded = Rect {
            x: b.x - CLUSTER_PAD,
            y: b.y - CLUSTER_PAD - CLUSTER_HEADER,
            w: b.w + 2.0 * CLUSTER_PAD,
            h: b.h + 2.0 * CLUSTER_PAD + CLUSTER_HEADER,
        };
        boxes[c] = Some(padded);
        if let Some(p) = parent[c] {
            boxes[p] = Some(boxes[p].map_or(padded, |q| q.union(&padded)));
        }
    }
    boxes
}

/// Polylines for the caller's edges (`all`), through the dummies of the kept ones (`kept`).
fn edges_routes(
    all: &[(usize, usize)],
    kept: &[(usize, usize)],
    v: &Virtual,
    rects: &[Rect],
) -> Vec<Vec<(f64, f64)>> {
    let mut route_of: HashMap<(usize, usize), &Vec<usize>> = HashMap::new();
    for (e, route) in kept.iter().zip(&v.routes) {
        route_of.entry(*e).or_insert(route);
    }
    all.iter()
        .map(|&(a, b)| {
            let (Some(ra), Some(rb)) = (rects.get(a), rects.get(b)) else { return Vec::new() };
            let mut points = vec![(ra.center_x(), ra.bottom())];
            for &d in route_of.get(&(a, b)).map_or(&[][..], |r| r.as_slice()) {
                let r = rects[d];
                points.push((r.center_x(), r.y));
                points.push((r.center_x(), r.bottom()));
            }
            points.push((rb.center_x(), rb.y));
            points
        })
        .collect()
}

#[cfg(test)]
mod tests;
