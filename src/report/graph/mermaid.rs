//! A [`Drawing`] as a Mermaid flowchart: blocks as nested subgraphs.

use std::fmt::Write;

use super::{Drawing, Item, NodeKind};

/// Text safe inside a double-quoted Mermaid label: quotes, markup and `#` become entity codes.
pub fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '|' => out.push_str("#124;"),
            '`' => out.push_str("#96;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn label(lines: &[String]) -> String {
    lines.iter().map(|l| mermaid_escape(l)).collect::<Vec<_>>().join("<br/>")
}

fn emit(d: &Drawing, items: &[Item], inside: &[Vec<Item>], indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    for item in items {
        match *item {
            Item::Node(i) => {
                let n = &d.nodes[i];
                let text = label(&n.lines);
                let _ = match n.kind {
                    NodeKind::Input | NodeKind::Output => writeln!(out, "{pad}n{i}([\"{text}\"])"),
                    NodeKind::Op => writeln!(out, "{pad}n{i}[\"{text}\"]"),
                    NodeKind::Folded => writeln!(out, "{pad}n{i}[[\"{text}\"]]"),
                };
            }
            Item::Cluster(c) => {
                let _ = writeln!(out, "{pad}subgraph c{c} [\"{}\"]", mermaid_escape(&d.clusters[c].label()));
                emit(d, &inside[c], inside, indent + 1, out);
                let _ = writeln!(out, "{pad}end");
            }
        }
    }
}

/// Render the drawing as a Mermaid `flowchart TD`.
pub fn render_mermaid(d: &Drawing) -> String {
    let mut out = format!("---\ntitle: \"{}\"\n---\nflowchart TD\n", mermaid_escape(&d.title));
    let (top, inside) = d.nesting();
    emit(d, &top, &inside, 1, &mut out);
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
