//! A [`Drawing`] as a Mermaid flowchart: blocks as nested subgraphs.

use std::fmt::Write;

use super::{escape, Drawing, NodeKind, Visit};

/// Text safe inside a double-quoted Mermaid label: quotes, markup and `#` become entity codes.
pub fn mermaid_escape(s: &str) -> String {
    escape(s, |c| match c {
        '"' => Some("#quot;"),
        '#' => Some("#35;"),
        '&' => Some("#amp;"),
        '<' => Some("#lt;"),
        '>' => Some("#gt;"),
        '|' => Some("#124;"),
        '`' => Some("#96;"),
        '\n' | '\r' => Some(" "),
        _ => None,
    })
}

fn label(lines: &[String]) -> String {
    lines.iter().map(|l| mermaid_escape(l)).collect::<Vec<_>>().join("<br/>")
}

fn emit(d: &Drawing, out: &mut String) {
    for (depth, visit) in d.walk() {
        let pad = "  ".repeat(depth + 1);
        let _ = match visit {
            Visit::Node(i) => {
                let text = label(&d.nodes[i].lines);
                match d.nodes[i].kind {
                    NodeKind::Input | NodeKind::Output => writeln!(out, "{pad}n{i}([\"{text}\"])"),
                    NodeKind::Op => writeln!(out, "{pad}n{i}[\"{text}\"]"),
                    NodeKind::Folded => writeln!(out, "{pad}n{i}[[\"{text}\"]]"),
                }
            }
            Visit::Open(c) => {
                writeln!(out, "{pad}subgraph c{c} [\"{}\"]", mermaid_escape(&d.clusters[c].label()))
            }
            Visit::Close(_) => writeln!(out, "{pad}end"),
        };
    }
}

/// Render the drawing as a Mermaid `flowchart TD`.
pub fn render_mermaid(d: &Drawing) -> String {
    let mut out = format!("---\ntitle: \"{}\"\n---\nflowchart TD\n", mermaid_escape(&d.title));
    emit(d, &mut out);
    for e in &d.edges {
        let _ = writeln!(out, "  n{} -->|\"{}\"| n{}", e.from, mermaid_escape(&e.label), e.to);
    }
    out.push_str("  classDef input fill:#e6f4ea,stroke:#2f855a,stroke-width:2px\n");
    out.push_str("  classDef output fill:#fdf0e6,stroke:#c05621,stroke-width:2px\n");
    out.push_str("  classDef folded fill:#edf2f7,stroke:#2d3748,stroke-dasharray:5 3\n");
    for (class, kind) in
        [("input", NodeKind::Input), ("output", NodeKind::Output), ("folded", NodeKind::Folded)]
    {
        let ids: Vec<String> = d
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.kind == kind)
            .map(|(i, _)| format!("n{i}"))
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "  class {} {class}", ids.join(","));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cannot_close_their_quotes_or_inject_markup() {
        let e = mermaid_escape("a \"b\" <i>#1</i> | `c` & d");
        assert!(!e.contains('"') && !e.contains('<') && !e.contains('|') && !e.contains('`'));
        assert_eq!(mermaid_escape("x\"y"), "x#quot;y");
    }
}
