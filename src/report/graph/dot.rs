//! A [`Drawing`] as Graphviz DOT: blocks as nested `cluster_` subgraphs.

use std::fmt::Write;

use super::{Drawing, Item, NodeKind};

/// Escape text for a double-quoted DOT string.
pub fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn lines(lines: &[String]) -> String {
    lines.iter().map(|l| dot_escape(l)).collect::<Vec<_>>().join("\\n")
}

fn node_style(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Input => "shape=ellipse, fillcolor=\"#e6f4ea\", color=\"#2f855a\", penwidth=1.5",
        NodeKind::Output => "shape=ellipse, fillcolor=\"#fdf0e6\", color=\"#c05621\", penwidth=1.5",
        NodeKind::Op => "shape=box",
        NodeKind::Folded => "shape=box3d, fillcolor=\"#edf2f7\", penwidth=1.5",
    }
}

fn emit(d: &Drawing, items: &[Item], inside: &[Vec<Item>], indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    for item in items {
        match *item {
            Item::Node(i) => {
                let n = &d.nodes[i];
                let _ = writeln!(
                    out,
                    "{pad}n{i} [label=\"{}\", tooltip=\"{}\", {}];",
                    lines(&n.lines),
                    dot_escape(&n.path),
                    node_style(n.kind)
                );
            }
            Item::Cluster(c) => {
                let _ = writeln!(out, "{pad}subgraph cluster_{c} {{");
                let _ = writeln!(
                    out,
                    "{pad}  label=\"{}\"; style=\"rounded,filled\"; fillcolor=\"{}\"; color=\"#9aa9bf\";",
                    dot_escape(&d.clusters[c].label()),
                    if d.cluster_depth(c).is_multiple_of(2) { "#f3f6fb" } else { "#e8eef7" }
                );
                emit(d, &inside[c], inside, indent + 1, out);
                let _ = writeln!(out, "{pad}}}");
            }
        }
    }
}

/// Render the drawing as a DOT digraph (`dot -Tsvg` draws it).
pub fn render_dot(d: &Drawing) -> String {
    let mut out = format!("digraph \"{}\" {{\n", dot_escape(&d.title));
    out.push_str("  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11, labeljust=l];\n");
    out.push_str(
        "  node [style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\", fontsize=11];\n",
    );
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9, color=\"#4a5568\", fontcolor=\"#718096\"];\n");
    let (top, inside) = d.nesting();
    emit(d, &top, &inside, 1, &mut out);
    for e in &d.edges {
        let _ = writeln!(out, "  n{} -> n{} [label=\"{}\"];", e.from, e.to, dot_escape(&e.label));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_newlines() {
        assert_eq!(dot_escape("a \"b\" \\ c\nd"), "a \\\"b\\\" \\\\ c\\nd");
    }
}
