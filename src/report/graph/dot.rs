//! A [`Drawing`] as Graphviz DOT: blocks as nested `cluster_` subgraphs.

use std::fmt::Write;

use super::{escape, Drawing, NodeKind, Visit};

/// Escape text for a double-quoted DOT string.
pub fn dot_escape(s: &str) -> String {
    escape(s, |c| match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        '\n' | '\r' => Some("\\n"),
        _ => None,
    })
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

fn emit(d: &Drawing, out: &mut String) {
    for (depth, visit) in d.walk() {
        let pad = "  ".repeat(depth + 1);
        let _ = match visit {
            Visit::Node(i) => {
                let n = &d.nodes[i];
                let (label, path, style) = (lines(&n.lines), dot_escape(&n.path), node_style(n.kind));
                writeln!(out, "{pad}n{i} [label=\"{label}\", tooltip=\"{path}\", {style}];")
            }
            Visit::Open(c) => writeln!(
                out,
                "{pad}subgraph cluster_{c} {{\n{pad}  label=\"{}\"; style=\"rounded,filled\"; fillcolor=\"{}\"; \
                 color=\"#9aa9bf\";",
                dot_escape(&d.clusters[c].label()),
                if depth.is_multiple_of(2) { "#f3f6fb" } else { "#e8eef7" }
            ),
            Visit::Close(_) => writeln!(out, "{pad}}}"),
        };
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
    emit(d, &mut out);
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
