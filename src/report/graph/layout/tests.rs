//! Layout invariants: boxes in a layer never overlap, edges go down, clusters hold their
//! nodes and keep out the rest, and the same graph gives the same picture.

use super::layered::{longest_path, place, place_row, Level, LAYER_GAP};
use super::*;

fn sizes(n: usize) -> Vec<(f64, f64)> {
    (0..n).map(|i| (40.0 + (i % 3) as f64 * 30.0, 30.0)).collect()
}

fn run(n: usize, edges: &[(usize, usize)], chains: &[Vec<usize>]) -> Layout {
    layout(&Graph { sizes: &sizes(n), edges, chains })
}

fn overlap(a: &Rect, b: &Rect) -> bool {
    a.x < b.right() && b.x < a.right() && a.y < b.bottom() && b.y < a.bottom()
}

fn inside(outer: &Rect, r: &Rect) -> bool {
    outer.x <= r.x && outer.y <= r.y && r.right() <= outer.right() && r.bottom() <= outer.bottom()
}

fn assert_goes_down(points: &[(f64, f64)]) {
    assert!(points.len() >= 2, "{points:?}");
    assert!(points.windows(2).all(|w| w[1].1 >= w[0].1), "goes up: {points:?}");
    assert!(points[points.len() - 1].1 > points[0].1, "does not descend: {points:?}");
}

/// A residual block: a chain of four with a skip from its input to its sum.
fn residual() -> (usize, Vec<(usize, usize)>) {
    (6, vec![(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (4, 5)])
}

#[test]
fn longest_path_layering_puts_each_node_below_all_its_inputs() {
    let (n, edges) = residual();
    assert_eq!(longest_path(n, &edges), vec![0, 1, 2, 3, 4, 5]);
    let p = place(&Level { sizes: sizes(n), edges: edges.clone(), ..Level::default() });
    // The skip edge runs through three dummies beside the chain: 2 points each, plus its ends.
    assert_eq!(p.edges[4].len(), 2 + 2 * 3);
    for (e, route) in edges.iter().zip(&p.edges) {
        assert_goes_down(route);
        assert_eq!(route[0].1, p.rects[e.0].bottom());
        assert_eq!(route[route.len() - 1].1, p.rects[e.1].y);
    }
    assert!(p.rects[1].y - p.rects[0].bottom() >= LAYER_GAP);
}

#[test]
fn boxes_of_a_layer_never_overlap() {
    // A fan-out of five branches of different widths, joined again.
    let mut edges = Vec::new();
    for b in 1..=5 {
        edges.push((0, b));
        edges.push((b, 6));
    }
    let p = place(&Level { sizes: sizes(7), edges: edges.clone(), ..Level::default() });
    for a in 0..7 {
        for b in a + 1..7 {
            if p.layers[a] == p.layers[b] {
                assert!(!overlap(&p.rects[a], &p.rects[b]), "{a} and {b} overlap");
            }
        }
    }
    p.edges.iter().for_each(|r| assert_goes_down(r));
    assert!(p.rects.iter().all(|r| r.x >= -1e-9 && r.right() <= p.width + 1e-9));
}

#[test]
fn barycenter_ordering_removes_a_needless_crossing() {
    // 0 -> 3 and 1 -> 2: in index order the second layer would be [2, 3], crossing both edges.
    let p = place(&Level { sizes: sizes(4), edges: vec![(0, 3), (1, 2)], ..Level::default() });
    let left = |a: usize, b: usize| p.rects[a].x < p.rects[b].x;
    assert_eq!(left(0, 1), left(3, 2), "edges cross: {:?}", p.rects);
}

#[test]
fn entries_start_at_the_top_border_and_exits_end_at_the_bottom() {
    let p = place(&Level {
        sizes: sizes(3),
        edges: vec![(0, 1), (1, 2)],
        entries: vec![0, 2],
        exits: vec![0, 2],
    });
    for route in p.entries.iter().chain(&p.exits) {
        // Zero length where the node already touches the border.
        assert!(route.len() >= 2 && route.windows(2).all(|w| w[1].1 >= w[0].1), "{route:?}");
    }
    assert_eq!(p.entries[1][0].1, 0.0);
    assert_eq!(p.entries[1].len(), 2 + 2 * 2, "an entry to layer 2 passes two dummies");
    assert_eq!(p.exits[0].last().map(|q| q.1), Some(p.height));
}

#[test]
fn isotonic_placement_keeps_order_and_gaps() {
    let x = place_row(&[5.0, 0.0, 0.0], &[10.0, 10.0]);
    assert!(x[1] - x[0] >= 10.0 - 1e-9 && x[2] - x[1] >= 10.0 - 1e-9);
    // Least squares: the mean stays at the targets' mean.
    assert!((x.iter().sum::<f64>() / 3.0 - 5.0 / 3.0).abs() < 1e-9, "{x:?}");
    assert_eq!(place_row(&[0.0, 50.0], &[10.0]), vec![0.0, 50.0]);
}

#[test]
fn cluster_boxes_hold_their_nodes_nest_and_keep_out_the_others() {
    let (n, edges) = residual();
    // Nodes 1..=4 are one block, 2 and 3 an inner one.
    let chains = vec![vec![], vec![0], vec![0, 1], vec![0, 1], vec![0], vec![]];
    let l = run(n, &edges, &chains);
    let outer = l.clusters[0].expect("outer box");
    let inner = l.clusters[1].expect("inner box");
    (1..=4).for_each(|i| assert!(inside(&outer, &l.nodes[i]), "node {i} outside {outer:?}"));
    assert!(inside(&outer, &inner) && inside(&inner, &l.nodes[2]) && inside(&inner, &l.nodes[3]));
    assert!(!overlap(&outer, &l.nodes[0]) && !overlap(&outer, &l.nodes[5]));
    assert!(!overlap(&inner, &l.nodes[1]) && !overlap(&inner, &l.nodes[4]));
    assert!(l.nodes[1].y - outer.y >= CLUSTER_HEADER + CLUSTER_PAD, "room for the title");
    l.edges.iter().for_each(|r| assert_goes_down(r));
    for (e, route) in edges.iter().zip(&l.edges) {
        assert_eq!(route[0], (l.nodes[e.0].center_x(), l.nodes[e.0].bottom()));
        assert_eq!(route[route.len() - 1], (l.nodes[e.1].center_x(), l.nodes[e.1].y));
    }
}

#[test]
fn parallel_clusters_never_overlap() {
    // Four branches of different lengths, each its own cluster, inside one block: Inception.
    let mut edges = Vec::new();
    let mut chains = vec![vec![]];
    let mut next = 1;
    for (b, len) in [1usize, 3, 5, 2].into_iter().enumerate() {
        for k in 0..len {
            edges.push((if k == 0 { 0 } else { next - 1 }, next));
            chains.push(vec![0, b + 1]);
            next += 1;
        }
        edges.push((next - 1, 99));
    }
    let join = next;
    edges.iter_mut().for_each(|e| e.1 = if e.1 == 99 { join } else { e.1 });
    chains.push(vec![0]);
    let l = run(join + 1, &edges, &chains);
    let boxes: Vec<Rect> = (1..=4).map(|c| l.clusters[c].expect("box")).collect();
    for a in 0..4 {
        for b in a + 1..4 {
            assert!(!overlap(&boxes[a], &boxes[b]), "branches {a} and {b} overlap");
        }
    }
    for a in 0..l.nodes.len() {
        for b in a + 1..l.nodes.len() {
            assert!(!overlap(&l.nodes[a], &l.nodes[b]), "nodes {a} and {b} overlap");
        }
    }
    l.edges.iter().for_each(|r| assert_goes_down(r));
}

#[test]
fn the_same_graph_gives_the_same_coordinates() {
    let (n, edges) = residual();
    let chains = vec![vec![], vec![0], vec![0], vec![0], vec![0], vec![]];
    let (a, b) = (run(n, &edges, &chains), run(n, &edges, &chains));
    assert_eq!((a.nodes, a.edges, a.clusters), (b.nodes, b.edges, b.clusters));
}

#[test]
fn cycles_and_bad_indices_do_not_panic() {
    let edges = [(0, 1), (1, 2), (2, 0), (2, 9), (1, 1)];
    let l = run(3, &edges, &[vec![], vec![7], vec![]]);
    assert_eq!((l.nodes.len(), l.edges.len()), (3, edges.len()));
    assert!(l.edges[3].is_empty(), "an edge to a missing node is not drawn");
    let empty = run(0, &[], &[]);
    assert!(empty.nodes.is_empty() && empty.width > 0.0);
}

#[test]
fn a_long_chain_lays_out_in_linear_time() {
    let n = 20_000;
    let edges: Vec<(usize, usize)> = (1..n).map(|i| (i - 1, i)).collect();
    let t = std::time::Instant::now();
    let l = run(n, &edges, &[]);
    assert!(l.nodes[n - 1].y > l.nodes[0].y);
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
}
