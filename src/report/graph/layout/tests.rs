//! Layout invariants on small graphs: layers do not overlap, edges go down, clusters hold
//! their nodes.

use super::*;

fn run(n: usize, edges: &[(usize, usize)], chains: &[Vec<usize>]) -> Layout {
    let sizes: Vec<(f64, f64)> = (0..n).map(|i| (40.0 + (i % 3) as f64 * 30.0, 30.0)).collect();
    layout(&Graph { sizes: &sizes, edges, chains })
}

fn assert_no_overlap_in_layers(l: &Layout) {
    for (a, ra) in l.nodes.iter().enumerate() {
        for (b, rb) in l.nodes.iter().enumerate().skip(a + 1) {
            if l.layers[a] == l.layers[b] {
                assert!(ra.right() <= rb.x || rb.right() <= ra.x, "nodes {a} and {b} overlap: {ra:?} {rb:?}");
            }
        }
    }
}

fn assert_edges_go_down(l: &Layout, edges: &[(usize, usize)]) {
    for (e, points) in edges.iter().zip(&l.edges) {
        assert!(l.layers[e.1] > l.layers[e.0], "{e:?} is not layered downward");
        assert!(points.windows(2).all(|w| w[1].1 >= w[0].1), "{e:?} goes up: {points:?}");
        assert!(points.last().unwrap().1 > points[0].1, "{e:?} does not descend");
        assert_eq!(points[0].1, l.nodes[e.0].bottom());
        assert_eq!(points.last().unwrap().1, l.nodes[e.1].y);
    }
}

/// A residual block: a chain of four with a skip from its input to its sum.
fn residual() -> (usize, Vec<(usize, usize)>) {
    (6, vec![(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (4, 5)])
}

#[test]
fn longest_path_layering_puts_each_node_below_all_its_inputs() {
    let (n, edges) = residual();
    let l = run(n, &edges, &[]);
    assert_eq!(l.layers, vec![0, 1, 2, 3, 4, 5]);
    assert_edges_go_down(&l, &edges);
    // The skip edge runs through three dummies beside the chain: 2 points each, plus its ends.
    assert_eq!(l.edges[4].len(), 2 + 2 * 3);
}

#[test]
fn nodes_of_a_layer_never_overlap() {
    // A fan-out of five branches of different widths, joined again.
    let mut edges = Vec::new();
    for b in 1..=5 {
        edges.push((0, b));
        edges.push((b, 6));
    }
    let l = run(7, &edges, &[]);
    assert_no_overlap_in_layers(&l);
    assert_edges_go_down(&l, &edges);
    assert!(l.nodes.iter().all(|r| r.x >= MARGIN - 1e-9 && r.right() <= l.width));
}

#[test]
fn barycenter_ordering_removes_a_needless_crossing() {
    // 0 -> 3 and 1 -> 2: in index order the second layer would be [2, 3], crossing both edges.
    let edges = [(0, 3), (1, 2)];
    let l = run(4, &edges, &[]);
    let order = |a: usize, b: usize| l.nodes[a].x < l.nodes[b].x;
    assert_eq!(order(0, 1), order(3, 2), "edges cross: {:?}", l.nodes);
}

#[test]
fn cluster_boxes_enclose_their_nodes_and_keep_out_the_others() {
    let (n, edges) = residual();
    // Nodes 1..=4 are one block, 2 and 3 an inner one.
    let chains = vec![vec![], vec![0], vec![0, 1], vec![0, 1], vec![0], vec![]];
    let l = run(n, &edges, &chains);
    let outer = l.clusters[0].expect("outer box");
    let inner = l.clusters[1].expect("inner box");
    let inside =
        |b: &Rect, r: &Rect| b.x <= r.x && b.y <= r.y && r.right() <= b.right() && r.bottom() <= b.bottom();
    for i in 1..=4 {
        assert!(inside(&outer, &l.nodes[i]), "node {i} outside {outer:?}");
    }
    assert!(inside(&outer, &inner));
    assert!(inside(&inner, &l.nodes[2]) && inside(&inner, &l.nodes[3]));
    assert!(!inside(&outer, &l.nodes[0]) && !inside(&outer, &l.nodes[5]));
    // Room for the title: the box starts a header above its first node.
    assert!(l.nodes[1].y - outer.y >= CLUSTER_HEADER + CLUSTER_PAD);
    assert_no_overlap_in_layers(&l);
}

#[test]
fn the_same_graph_gives_the_same_coordinates() {
    let (n, edges) = residual();
    let a = run(n, &edges, &[]);
    let b = run(n, &edges, &[]);
    assert_eq!(a.nodes, b.nodes);
    assert_eq!(a.edges, b.edges);
}

#[test]
fn cycles_and_bad_indices_do_not_panic() {
    let edges = [(0, 1), (1, 2), (2, 0), (2, 9), (1, 1)];
    let l = run(3, &edges, &[vec![], vec![7], vec![]]);
    assert_eq!(l.nodes.len(), 3);
    assert_eq!(l.edges.len(), edges.len());
    assert!(l.edges[3].is_empty(), "an edge to a missing node is not drawn");
    let empty = run(0, &[], &[]);
    assert!(empty.nodes.is_empty() && empty.width > 0.0);
}

#[test]
fn isotonic_placement_keeps_order_and_gaps() {
    let x = place_row(&[5.0, 0.0, 0.0], &[10.0, 10.0]);
    assert!(x[1] - x[0] >= 10.0 - 1e-9 && x[2] - x[1] >= 10.0 - 1e-9);
    // Least squares: the mean stays where the targets' mean minus the offsets' mean puts it.
    assert!((x.iter().sum::<f64>() / 3.0 - 5.0 / 3.0).abs() < 1e-9, "{x:?}");
    assert_eq!(place_row(&[0.0, 50.0], &[10.0]), vec![0.0, 50.0]);
}

#[test]
fn a_long_chain_lays_out_in_linear_time() {
    let n = 20_000;
    let edges: Vec<(usize, usize)> = (1..n).map(|i| (i - 1, i)).collect();
    let t = std::time::Instant::now();
    let l = run(n, &edges, &[]);
    assert_eq!(l.layers[n - 1], n - 1);
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
}
