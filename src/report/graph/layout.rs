//! Where things go in a picture, without Graphviz: a layered layout per cluster, nested.
//!
//! Each cluster's contents (its nodes and inner clusters, the latter as single boxes) are
//! laid out on their own by [`layered::place`], innermost first; the cluster then becomes one
//! box, padded and titled, in its parent's layout. Boxes therefore never overlap. An edge
//! between nodes in different clusters is routed at every level it crosses: out through the
//! bottom of each cluster around its source, across the level that holds both ends, and in
//! through the top of each cluster around its target, so it bends around whatever lies
//! between.

pub mod layered;

use std::collections::HashMap;

use layered::{Level, Placed};

/// Space between a cluster's box and what it holds.
pub const CLUSTER_PAD: f64 = 10.0;
/// Room for a cluster's title above its contents.
pub const CLUSTER_HEADER: f64 = 18.0;
pub const MARGIN: f64 = 16.0;

/// What to lay out: node sizes, edges between node indices, and each node's clusters from
/// the outermost in (a cluster's position in every chain that holds it is the same).
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
    fn shifted(&self, dx: f64, dy: f64) -> Rect {
        Rect { x: self.x + dx, y: self.y + dy, ..*self }
    }
}

/// Where everything goes.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub nodes: Vec<Rect>,
    /// One polyline per input edge, from the bottom of its source to the top of its target.
    pub edges: Vec<Vec<(f64, f64)>>,
    /// For each edge, a point on it in the gap below its source (or its source's box), where
    /// a label fits.
    pub labels: Vec<(f64, f64)>,
    /// By cluster index; `None` for a cluster with no nodes.
    pub clusters: Vec<Option<Rect>>,
    pub width: f64,
    pub height: f64,
}

/// A member of a level: a node, or an inner cluster drawn as one box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Item {
    Node(usize),
    Cluster(usize),
}

/// The level of cluster `c` (`None`: the top), what it holds, and its laid-out contents.
#[derive(Default)]
struct LevelState {
    items: Vec<Item>,
    index: HashMap<Item, usize>,
    level: Level,
    edge_of: HashMap<(usize, usize), usize>,
    /// Keyed by (outside source node, member it feeds).
    entry_of: HashMap<(usize, usize), usize>,
    exit_of: HashMap<usize, usize>,
    placed: Placed,
    /// Top-left of the contents, once placed.
    origin: (f64, f64),
}

impl LevelState {
    fn local(&self, item: Item) -> Option<usize> {
        self.index.get(&item).copied()
    }

    fn edge(&mut self, a: usize, b: usize) {
        let next = self.level.edges.len();
        if *self.edge_of.entry((a, b)).or_insert(next) == next {
            self.level.edges.push((a, b));
        }
    }

    fn entry(&mut self, source: usize, member: usize) {
        let next = self.level.entries.len();
        if *self.entry_of.entry((source, member)).or_insert(next) == next {
            self.level.entries.push(member);
        }
    }

    fn exit(&mut self, member: usize) {
        let next = self.level.exits.len();
        if *self.exit_of.entry(member).or_insert(next) == next {
            self.level.exits.push(member);
        }
    }
}

/// The member of the level at `depth` of `chain` that holds `node`.
fn item_at(chain: &[usize], depth: usize, node: usize) -> Item {
    chain.get(depth).map_or(Item::Node(node), |&c| Item::Cluster(c))
}

/// Lay out `g`. Deterministic: the same graph gives the same coordinates.
pub fn layout(g: &Graph) -> Layout {
    let n = g.sizes.len();
    let chain = |i: usize| g.chains.get(i).map_or(&[][..], |c| c.as_slice());
    let count = (0..n).flat_map(chain).max().map_or(0, |m| m + 1);
    // Level 0 is the top; level c + 1 is cluster c.
    let mut levels: Vec<LevelState> = (0..=count).map(|_| LevelState::default()).collect();
    let mut parent = vec![0usize; count];
    let mut depth = vec![0usize; count];
    let add = |levels: &mut Vec<LevelState>, level: usize, item: Item| {
        let l = &mut levels[level];
        if !l.index.contains_key(&item) {
            l.index.insert(item, l.items.len());
            l.items.push(item);
        }
    };
    for i in 0..n {
        let ch = chain(i);
        for (d, &c) in ch.iter().enumerate() {
            let up = if d == 0 { 0 } else { ch[d - 1] + 1 };
            parent[c] = up;
            depth[c] = d;
            add(&mut levels, up, Item::Cluster(c));
        }
        add(&mut levels, ch.last().map_or(0, |c| c + 1), Item::Node(i));
    }
    let edges: Vec<(usize, usize)> =
        g.edges.iter().copied().filter(|&(a, b)| a < n && b < n && a != b).collect();
    for &(s, t) in &edges {
        let (cs, ct) = (chain(s), chain(t));
        let k = cs.iter().zip(ct).take_while(|(a, b)| a == b).count();
        let across = if k == 0 { 0 } else { cs[k - 1] + 1 };
        let ends = (levels[across].local(item_at(cs, k, s)), levels[across].local(item_at(ct, k, t)));
        if let (Some(a), Some(b)) = ends {
            levels[across].edge(a, b);
        }
        for d in k..cs.len() {
            if let Some(member) = levels[cs[d] + 1].local(item_at(cs, d + 1, s)) {
                levels[cs[d] + 1].exit(member);
            }
        }
        for d in k..ct.len() {
            if let Some(member) = levels[ct[d] + 1].local(item_at(ct, d + 1, t)) {
                levels[ct[d] + 1].entry(s, member);
            }
        }
    }
    // Innermost clusters first, so each is one box of known size in its parent.
    let mut inner_first: Vec<usize> = (0..count).collect();
    inner_first.sort_by_key(|&c| std::cmp::Reverse(depth[c]));
    let mut box_size = vec![(0.0, 0.0); count];
    for level in inner_first.into_iter().map(|c| c + 1).chain([0]) {
        let sizes = levels[level]
            .items
            .iter()
            .map(|item| match *item {
                Item::Node(i) => g.sizes[i],
                Item::Cluster(c) => box_size[c],
            })
            .collect();
        levels[level].level.sizes = sizes;
        levels[level].placed = layered::place(&levels[level].level);
        let p = &levels[level].placed;
        if level > 0 {
            let title_room = if p.width > 0.0 { 0.0 } else { 40.0 };
            box_size[level - 1] =
                (p.width.max(title_room) + 2.0 * CLUSTER_PAD, p.height + 2.0 * CLUSTER_PAD + CLUSTER_HEADER);
        }
    }
    let mut clusters = vec![None; count];
    place_boxes(&mut levels, &parent, &depth, &mut clusters);
    let nodes: Vec<Rect> = (0..n)
        .map(|i| {
            let l = &levels[chain(i).last().map_or(0, |c| c + 1)];
            let local = l.index.get(&Item::Node(i)).and_then(|&k| l.placed.rects.get(k));
            local.map_or_else(Rect::default, |r| r.shifted(l.origin.0, l.origin.1))
        })
        .collect();
    let mut routes = Vec::with_capacity(g.edges.len());
    let mut labels = Vec::with_capacity(g.edges.len());
    for &(s, t) in g.edges {
        let (points, label) = if s < n && t < n && s != t {
            route(s, t, chain(s), chain(t), &levels, &nodes)
        } else {
            (Vec::new(), (0.0, 0.0))
        };
        routes.push(points);
        labels.push(label);
    }
    let top = &levels[0].placed;
    Layout {
        nodes,
        edges: routes,
        labels,
        clusters,
        width: top.width + 2.0 * MARGIN,
        height: top.height + 2.0 * MARGIN,
    }
}

/// Give every level its origin and every cluster its box, outermost first.
fn place_boxes(levels: &mut [LevelState], parent: &[usize], depth: &[usize], clusters: &mut [Option<Rect>]) {
    levels[0].origin = (MARGIN, MARGIN);
    let mut outer_first: Vec<usize> = (0..parent.len()).collect();
    outer_first.sort_by_key(|&c| depth[c]);
    for c in outer_first {
        let up = &levels[parent[c]];
        let Some(local) = up.index.get(&Item::Cluster(c)).and_then(|&k| up.placed.rects.get(k)) else {
            continue;
        };
        let r = local.shifted(up.origin.0, up.origin.1);
        clusters[c] = Some(r);
        levels[c + 1].origin = (r.x + CLUSTER_PAD, r.y + CLUSTER_PAD + CLUSTER_HEADER);
    }
}

fn shift(points: &[(f64, f64)], origin: (f64, f64)) -> impl Iterator<Item = (f64, f64)> + '_ {
    points.iter().map(move |(x, y)| (x + origin.0, y + origin.1))
}

/// The x of a descending polyline at height `y`.
fn x_at(points: &[(f64, f64)], y: f64) -> f64 {
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if y0 <= y && y <= y1 {
            return if y1 > y0 { x0 + (x1 - x0) * (y - y0) / (y1 - y0) } else { x0 };
        }
    }
    points.first().map_or(0.0, |p| p.0)
}

/// The polyline of one edge, out of the clusters around `s`, across, into those around `t`,
/// and the anchor of its label.
fn route(
    s: usize,
    t: usize,
    cs: &[usize],
    ct: &[usize],
    levels: &[LevelState],
    nodes: &[Rect],
) -> (Vec<(f64, f64)>, (f64, f64)) {
    let k = cs.iter().zip(ct).take_while(|(a, b)| a == b).count();
    let mut points = vec![(nodes[s].center_x(), nodes[s].bottom())];
    // Each route starts where the previous one ended (a member's border), so its first point
    // is dropped; the last is dropped where the next route takes over.
    for d in (k..cs.len()).rev() {
        let l = &levels[cs[d] + 1];
        let exit = l.index.get(&item_at(cs, d + 1, s)).and_then(|m| l.exit_of.get(m));
        if let Some(path) = exit.and_then(|&e| l.placed.exits.get(e)) {
            points.extend(shift(path, l.origin).skip(1));
        }
    }
    let l = &levels[if k == 0 { 0 } else { cs[k - 1] + 1 }];
    let ends = (l.index.get(&item_at(cs, k, s)), l.index.get(&item_at(ct, k, t)));
    let mut label_y = nodes[s].bottom() + 16.0;
    if let (Some(a), Some(b)) = ends {
        if let Some(&e) = l.edge_of.get(&(*a, *b)) {
            let path = l.placed.edges.get(e).map_or(&[][..], |p| p.as_slice());
            points.extend(shift(path, l.origin).skip(1).take(path.len().saturating_sub(2)));
            label_y = l.placed.label_y.get(e).map_or(label_y, |y| y + l.origin.1 + 4.0);
        }
    }
    for d in k..ct.len() {
        let l = &levels[ct[d] + 1];
        let entry = l.index.get(&item_at(ct, d + 1, t)).and_then(|m| l.entry_of.get(&(s, *m)));
        if let Some(path) = entry.and_then(|&e| l.placed.entries.get(e)) {
            points.extend(shift(path, l.origin).take(path.len().saturating_sub(1)));
        }
    }
    points.push((nodes[t].center_x(), nodes[t].y));
    let label = (x_at(&points, label_y) + 5.0, label_y);
    (points, label)
}

#[cfg(test)]
mod tests;
