//! `wick graph`: every catalog spec drawn in every format, checked for what a picture must
//! show (every layer, every edge, inputs and outputs, folded blocks) and for well-formed
//! output (XML tags matched, DOT braces balanced, Mermaid blocks closed).

use std::collections::BTreeMap;
mod common;

use common::wick;

use wick::report::graph::{
    build, render_dot, render_mermaid, render_svg, Cluster, DrawEdge, DrawNode, Drawing, NodeKind,
};

fn compiled(spec: &str) -> wick::Compiled {
    let c = wick::compile_file(spec, &wick::Options::default()).expect("readable");
    assert!(!c.diagnostics.has_errors(), "{spec}: {:?}", c.diagnostics);
    c
}

fn drawing(c: &wick::Compiled, depth: Option<usize>) -> Drawing {
    build(c.graph.as_ref().expect("graph"), c.analysis.as_ref().expect("analysis"), depth)
}

fn catalog() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir("specs")
        .expect("specs/")
        .map(|e| e.expect("entry").path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".wick") || p.ends_with(".yaml"))
        .collect();
    files.sort();
    files
}

/// Checks that `svg` is one well-formed element tree: tags matched, attributes quoted,
/// `&` only in entities, no stray `<`. Returns the number of elements.
fn check_xml(svg: &str) -> Result<usize, String> {
    let entity_ok = |t: &str| {
        t.match_indices('&')
            .all(|(i, _)| ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| t[i..].starts_with(e)))
    };
    let mut stack: Vec<&str> = Vec::new();
    let (mut rest, mut elements, mut roots) = (svg, 0, 0);
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        if !entity_ok(text) || (stack.is_empty() && !text.trim().is_empty()) {
            return Err(format!("bad text {text:?}"));
        }
        let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name) {
                return Err(format!("</{name}> closes nothing open"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body.split_whitespace().next().ok_or("empty tag")?;
        let mut attrs = body[name.len()..].trim();
        while !attrs.is_empty() {
            let eq = attrs.find("=\"").ok_or(format!("unquoted attribute in <{name}>: {attrs}"))?;
            let end = attrs[eq + 2..].find('"').ok_or("unclosed attribute")? + eq + 2;
            let value = &attrs[eq + 2..end];
            if attrs[..eq].contains(char::is_whitespace) || value.contains('<') || !entity_ok(value) {
                return Err(format!("bad attribute in <{name}>: {}", &attrs[..=end]));
            }
            attrs = attrs[end + 1..].trim_start();
        }
        elements += 1;
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name);
        }
    }
    match (stack.is_empty(), roots, rest.trim().is_empty()) {
        (true, 1, true) => Ok(elements),
        _ => Err(format!("unclosed {stack:?} or {roots} roots")),
    }
}

/// Braces balance outside quoted strings and no string is left open.
fn dot_balanced(dot: &str) -> bool {
    let (mut depth, mut quoted, mut escaped) = (0i64, false, false);
    for c in dot.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            (false, _, '{') => depth += 1,
            (false, _, '}') => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0 && !quoted
}

fn count_lines(text: &str, pred: impl Fn(&str) -> bool) -> usize {
    text.lines().map(str::trim).filter(|l| pred(l)).count()
}

fn check_renderings(spec: &str, d: &Drawing) {
    let svg = render_svg(d);
    let elements = check_xml(&svg).unwrap_or_else(|e| panic!("{spec}: SVG not well formed: {e}"));
    assert!(elements > d.nodes.len() + d.edges.len(), "{spec}");
    assert_eq!(svg.matches("<path class=\"edge\"").count(), d.edges.len(), "{spec}");
    assert_eq!(svg.matches("<g class=\"node ").count(), d.nodes.len(), "{spec}");
    assert_eq!(svg.matches("<g class=\"cluster\"").count(), d.clusters.len(), "{spec}");
    assert_eq!(
        svg.matches("class=\"node input\"").count(),
        d.nodes.iter().filter(|n| n.kind == NodeKind::Input).count()
    );

    let dot = render_dot(d);
    assert!(dot.starts_with("digraph ") && dot_balanced(&dot), "{spec}: DOT unbalanced\n{dot}");
    assert_eq!(count_lines(&dot, |l| l.contains(" -> ")), d.edges.len(), "{spec}");
    assert_eq!(dot.matches("subgraph cluster_").count(), d.clusters.len(), "{spec}");

    let mermaid = render_mermaid(d);
    assert!(mermaid.contains("\nflowchart TD\n"), "{spec}");
    assert_eq!(count_lines(&mermaid, |l| l.contains(" -->|")), d.edges.len(), "{spec}");
    assert_eq!(count_lines(&mermaid, |l| l.starts_with("subgraph ")), d.clusters.len(), "{spec}");
    assert_eq!(count_lines(&mermaid, |l| l == "end"), d.clusters.len(), "{spec}");
}

#[test]
fn every_catalog_spec_draws_every_layer_and_edge_in_every_format() {
    for spec in catalog() {
        let c = compiled(&spec);
        let g = c.graph.as_ref().expect("graph");
        let d = drawing(&c, None);
        let node_of: BTreeMap<&str, usize> =
            d.nodes.iter().enumerate().map(|(i, n)| (n.path.as_str(), i)).collect();
        for &id in &g.order {
            let node = g.node(id);
            let kind = if node.kind == "input" { NodeKind::Input } else { NodeKind::Op };
            let drawn = node_of.get(node.path.as_str()).map(|&i| &d.nodes[i]);
            assert_eq!(drawn.map(|n| n.kind), Some(kind), "{spec}: layer {} not drawn", node.path);
        }
        assert!(!d.nodes.iter().any(|n| n.kind == NodeKind::Folded), "{spec}: nothing folds at full depth");
        let outputs = d.nodes.iter().filter(|n| n.kind == NodeKind::Output).count();
        assert_eq!(outputs, g.outputs.len(), "{spec}");
        // Every tensor edge of the IR, plus one per output, and nothing else.
        let mut expected = std::collections::BTreeSet::new();
        for e in g.g.edge_indices() {
            let (a, b) = g.g.edge_endpoints(e).expect("endpoints");
            expected.insert((node_of[g.g[a].path.as_str()], node_of[g.g[b].path.as_str()]));
        }
        let drawn: std::collections::BTreeSet<_> = d
            .edges
            .iter()
            .filter(|e| d.nodes[e.to].kind != NodeKind::Output)
            .map(|e| (e.from, e.to))
            .collect();
        assert_eq!(drawn, expected, "{spec}");
        assert_eq!(d.edges.len() - drawn.len(), outputs, "{spec}: one edge into each output");
        assert!(d.edges.iter().all(|e| e.label.starts_with('[')), "{spec}: every edge shows a shape");
        let params: u64 = d.nodes.iter().map(|n| n.params).sum();
        assert_eq!(params, c.analysis.as_ref().expect("analysis").total_params(), "{spec}");
        check_renderings(&spec, &d);
        assert_eq!(render_svg(&d), render_svg(&drawing(&c, None)), "{spec}: deterministic");
    }
}

#[test]
fn folding_resnet18_draws_blocks_as_single_nodes_with_their_totals() {
    let c = compiled("specs/resnet18.wick");
    let full = drawing(&c, None);
    let stages = drawing(&c, Some(1));
    let blocks = drawing(&c, Some(2));
    assert!(stages.nodes.len() < blocks.nodes.len() && blocks.nodes.len() < full.nodes.len());
    assert!(stages.clusters.is_empty(), "at depth 1 every block is a node");
    let layer1 = stages.nodes.iter().find(|n| n.path == "layer1").expect("layer1 folded");
    assert_eq!(layer1.kind, NodeKind::Folded);
    assert_eq!(layer1.params, 147_968);
    assert_eq!(layer1.lines[1], "BasicStage  147,968 params");
    assert_eq!(layer1.lines[2], "4 Conv2d, 4 BatchNorm2d, 4 ReLU, 2 add");
    // Depth 2: stages are boxes around their two folded blocks.
    let names: Vec<&str> = blocks.clusters.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(names, ["layer1", "layer2", "layer3", "layer4"]);
    let downsampling = blocks.nodes.iter().find(|n| n.path == "layer2.0").expect("layer2.0");
    assert_eq!(downsampling.lines[2], "3 Conv2d, 3 BatchNorm2d, 2 ReLU, 1 add");
    assert_eq!(
        blocks.cluster_chain(blocks.nodes.iter().position(|n| n.path == "layer2.0").unwrap()),
        vec![1]
    );
    for d in [&stages, &blocks] {
        let params: u64 = d.nodes.iter().map(|n| n.params).sum();
        assert_eq!(params, 11_689_512, "folding keeps every parameter");
        // Folding drops the edges inside a block, never the ones between blocks.
        assert_eq!(d.edges.len(), d.nodes.len() - 1, "a chain of blocks");
        check_renderings("resnet18 folded", d);
    }
}

#[test]
fn labels_are_escaped_in_every_format() {
    let nasty = "a\"b<c>&d'e\\f{g}|h#i`j";
    let node = |kind, path: &str| DrawNode {
        kind,
        path: path.into(),
        lines: vec![nasty.into(), path.into()],
        cluster: None,
        params: 0,
    };
    let d = Drawing {
        title: nasty.into(),
        nodes: vec![
            node(NodeKind::Input, "x"),
            DrawNode { cluster: Some(0), ..node(NodeKind::Op, nasty) },
            node(NodeKind::Output, "y"),
        ],
        edges: vec![
            DrawEdge { from: 0, to: 1, label: nasty.into() },
            DrawEdge { from: 1, to: 2, label: nasty.into() },
        ],
        clusters: vec![Cluster { path: nasty.into(), kind: nasty.into(), parent: None, params: 7 }],
    };
    check_renderings("nasty labels", &d);
    let mermaid = render_mermaid(&d);
    // Inside a label only entity codes: every quote on a node line opens or closes a label.
    for line in mermaid.lines().filter(|l| l.contains("n1[")) {
        assert_eq!(line.matches('"').count(), 2, "{line}");
    }
    assert!(render_dot(&d).contains("a\\\"b<c>&d'e\\\\f{g}|h#i`j"));
}

/// A chain of `blocks` residual blocks of five layers each.
fn generated(blocks: usize) -> String {
    format!(
        "dim N = 1\nblock Res(x: [N, d]) {{\n    y = x |> fc1: Linear(d) |> ReLU |> fc2: Linear(d)\n    return ReLU(y + x)\n}}\n\
         model Big {{\n    input x: [N, 16]\n    h = x |> blocks: repeat {blocks} {{ Res() }}\n    output h\n}}\n"
    )
}

#[test]
fn a_ten_thousand_layer_spec_draws_in_every_format() {
    let c = wick::compile_source("big.wick", &generated(2_000), &wick::Options::default());
    assert!(!c.diagnostics.has_errors());
    let d = drawing(&c, None);
    assert_eq!(d.nodes.len(), 1 + 10_000 + 1);
    assert_eq!(d.clusters.len(), 1 + 2_000);
    let t = std::time::Instant::now();
    check_renderings("generated", &d);
    // Generous for an unoptimised build on a shared machine; release takes well under 1 s.
    assert!(t.elapsed().as_secs() < 60, "took {:?}", t.elapsed());
    assert_eq!(drawing(&c, Some(1)).nodes.len(), 3, "input, the folded repeat, output");
}

#[test]
fn cli_graph_writes_the_format_its_file_asks_for() {
    let dir = std::env::temp_dir().join(format!("wick-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (ext, start) in [("svg", "<svg "), ("dot", "digraph "), ("mmd", "---\n")] {
        let file = dir.join(format!("lenet.{ext}"));
        let out = wick(&["graph", "specs/lenet5.wick", "-o", file.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty());
        let text = std::fs::read_to_string(&file).expect("written");
        assert!(text.starts_with(start), "{ext}: {}", &text[..40.min(text.len())]);
        assert!(text.contains("fc3"), "{ext}");
    }
    let out = wick(&["graph", "specs/resnet18.wick", "--depth", "1", "--format", "mermaid", "--bind", "N=8"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("[8, 3, 224, 224]") && text.contains("layer4<br/>BasicStage"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn cli_graph_exit_codes_match_compile() {
    let out = wick(&["graph", "tests/errors/batchnorm_mismatch.wick", "--format", "svg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no picture of a broken spec");
    assert!(String::from_utf8_lossy(&out.stderr).contains("E0301"));
    assert_eq!(wick(&["graph", "specs/no_such_spec.wick"]).status.code(), Some(2));
    assert_eq!(wick(&["graph", "specs/lenet5.wick", "--format", "png"]).status.code(), Some(2));
    let out = wick(&["graph", "specs/lenet5.wick", "-o", "/nonexistent-dir/x.svg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write"));
}

#[test]
fn the_checkers_reject_malformed_output() {
    assert_eq!(check_xml("<svg><g><rect x=\"1\"/></g></svg>"), Ok(3));
    for bad in ["<svg><g></svg>", "<svg a=b/>", "<svg>a & b</svg>", "<svg/><svg/>", "<svg x=\"<\"/>", "<svg>"]
    {
        assert!(check_xml(bad).is_err(), "{bad}");
    }
    assert!(dot_balanced("digraph { a [label=\"}\"]; }"));
    assert!(!dot_balanced("digraph { a [label=\"x\\\"]; }") && !dot_balanced("digraph { }}"));
}

#[test]
fn the_readme_picture_is_well_formed_and_folded_to_depth_2() {
    let svg = std::fs::read_to_string("docs/resnet18.svg").expect("docs/resnet18.svg");
    check_xml(&svg).expect("well formed");
    assert!(svg.contains("<title>layer1.0</title>") && !svg.contains("layer1.0.conv1"));
    assert!(std::fs::read_to_string("README.md").expect("README").contains("](docs/resnet18.svg)"));
}

#[test]
fn partial_graphs_of_broken_specs_still_draw() {
    let mut drawn = 0;
    for entry in std::fs::read_dir("tests/errors").expect("tests/errors") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "wick") {
            continue;
        }
        let c =
            wick::compile_file(path.to_str().expect("utf-8"), &wick::Options::default()).expect("readable");
        let (Some(g), Some(a)) = (&c.graph, &c.analysis) else { continue };
        for depth in [None, Some(1), Some(2)] {
            let d = build(g, a, depth);
            check_xml(&render_svg(&d)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(dot_balanced(&render_dot(&d)));
            assert!(render_mermaid(&d).contains("flowchart TD"));
        }
        drawn += 1;
    }
    assert!(drawn > 5, "broken specs with a partial graph: {drawn}");
}
