//! A [`Drawing`] as a standalone SVG, laid out by [`super::layout`] (no Graphviz needed).

use std::collections::HashSet;
use std::fmt::Write;

use super::layout::{self, Layout, Rect};
use super::{escape, Drawing, NodeKind};

const FONT: f64 = 12.0;
const TITLE_FONT: f64 = 11.0;
const LABEL_FONT: f64 = 10.0;
/// Monospace advance as a fraction of the font size.
const ADVANCE: f64 = 0.6;
const LINE: f64 = 15.0;
const PAD_X: f64 = 10.0;
const PAD_Y: f64 = 6.0;
const CLUSTER_FILLS: [&str; 3] = ["#f3f6fb", "#e8eef7", "#dde6f2"];

/// Escape text for XML content and attribute values; control characters XML cannot hold
/// become spaces.
pub fn xml_escape(s: &str) -> String {
    escape(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&apos;"),
        c if (c as u32) < 0x20 && c != '\n' && c != '\t' => Some(" "),
        _ => None,
    })
}

fn text_width(text: &str, font: f64) -> f64 {
    text.chars().count() as f64 * font * ADVANCE
}

fn node_size(lines: &[String]) -> (f64, f64) {
    let widest = lines.iter().map(|l| text_width(l, FONT)).fold(0.0, f64::max);
    (widest + 2.0 * PAD_X, lines.len().max(1) as f64 * LINE + 2.0 * PAD_Y)
}

/// Lay out a drawing with the sizes its labels need.
pub fn layout_of(d: &Drawing) -> Layout {
    let sizes: Vec<(f64, f64)> = d.nodes.iter().map(|n| node_size(&n.lines)).collect();
    let edges: Vec<(usize, usize)> = d.edges.iter().map(|e| (e.from, e.to)).collect();
    let chains: Vec<Vec<usize>> = (0..d.nodes.len()).map(|i| d.cluster_chain(i)).collect();
    layout::layout(&layout::Graph { sizes: &sizes, edges: &edges, chains: &chains })
}

/// The longest title that fits the box: path, kind and params; path and kind; the path.
fn cluster_title(d: &Drawing, c: usize, width: f64) -> String {
    let cluster = &d.clusters[c];
    let candidates = [cluster.label(), format!("{}: {}", cluster.path, cluster.kind), cluster.path.clone()];
    let room = width - 12.0;
    candidates.iter().find(|t| text_width(t, TITLE_FONT) <= room).unwrap_or(&candidates[2]).clone()
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// Render the drawing as SVG.
pub fn render_svg(d: &Drawing) -> String {
    let lay = layout_of(d);
    let mut out = String::new();
    let (w, h) = (f(lay.width), f(lay.height));
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"monospace\" font-size=\"{FONT}\">"
    );
    let _ = writeln!(out, "<title>{}</title>", xml_escape(&d.title));
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#4a5568\"/></marker></defs>\n",
    );
    let _ = writeln!(out, "<rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>");
    draw_clusters(d, &lay, false, &mut out);
    draw_edges(d, &lay, &mut out);
    draw_clusters(d, &lay, true, &mut out);
    for (i, node) in d.nodes.iter().enumerate() {
        if let Some(r) = lay.nodes.get(i) {
            draw_node(&node.kind, &node.path, &node.lines, r, &mut out);
        }
    }
    out.push_str("</svg>\n");
    out
}

/// Cluster boxes, outer first so inner ones paint over them; titles go in a later pass, over
/// the edges, with a halo in the box's colour.
fn draw_clusters(d: &Drawing, lay: &Layout, titles: bool, out: &mut String) {
    let mut order: Vec<(usize, usize)> = (0..d.clusters.len()).map(|c| (d.cluster_depth(c), c)).collect();
    order.sort();
    for (depth, c) in order {
        let Some(Some(r)) = lay.clusters.get(c) else { continue };
        let fill = CLUSTER_FILLS[depth % CLUSTER_FILLS.len()];
        let _ = if titles {
            writeln!(
                out,
                "<text class=\"cluster-title\" x=\"{}\" y=\"{}\" font-size=\"{TITLE_FONT}\" fill=\"#2d3748\" \
                 stroke=\"{fill}\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
                f(r.x + 6.0),
                f(r.y + 14.0),
                xml_escape(&cluster_title(d, c, r.w)),
            )
        } else {
            writeln!(
                out,
                "<g class=\"cluster\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" \
                 rx=\"6\" fill=\"{fill}\" stroke=\"#9aa9bf\"/></g>",
                xml_escape(&d.clusters[c].label()),
                f(r.x),
                f(r.y),
                f(r.w),
                f(r.h),
            )
        };
    }
}

/// Edge paths, then their labels over all of them; one label per source and shape, since
/// fan-out edges carry the same tensor.
fn draw_edges(d: &Drawing, lay: &Layout, out: &mut String) {
    for (i, _) in d.edges.iter().enumerate() {
        let Some(points) = lay.edges.get(i).filter(|p| p.len() >= 2) else { continue };
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(k, (x, y))| format!("{}{},{}", if k == 0 { "M" } else { "L" }, f(*x), f(*y)))
            .collect();
        let _ = writeln!(
            out,
            "<path class=\"edge\" d=\"{}\" fill=\"none\" stroke=\"#4a5568\" marker-end=\"url(#arrow)\"/>",
            path.join(" ")
        );
    }
    let mut labelled = HashSet::new();
    for (i, e) in d.edges.iter().enumerate() {
        let Some(&(x, y)) = lay.labels.get(i) else { continue };
        if labelled.insert((e.from, e.label.as_str())) {
            let _ = writeln!(
                out,
                "<text class=\"shape\" x=\"{}\" y=\"{}\" font-size=\"{LABEL_FONT}\" fill=\"#718096\" \
                 stroke=\"#ffffff\" stroke-width=\"2.5\" paint-order=\"stroke\">{}</text>",
                f(x),
                f(y),
                xml_escape(&e.label)
            );
        }
    }
}

fn draw_node(kind: &NodeKind, path: &str, lines: &[String], r: &Rect, out: &mut String) {
    let (class, fill, stroke, extra) = match kind {
        NodeKind::Input => ("input", "#e6f4ea", "#2f855a", " rx=\"14\" stroke-width=\"1.5\""),
        NodeKind::Output => ("output", "#fdf0e6", "#c05621", " rx=\"14\" stroke-width=\"1.5\""),
        NodeKind::Op => ("op", "#ffffff", "#4a5568", " rx=\"3\""),
        NodeKind::Folded => {
            ("folded", "#edf2f7", "#2d3748", " rx=\"3\" stroke-width=\"2\" stroke-dasharray=\"5,3\"")
        }
    };
    let _ = write!(
        out,
        "<g class=\"node {class}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" \
         fill=\"{fill}\" stroke=\"{stroke}\"{extra}/>",
        xml_escape(path),
        f(r.x),
        f(r.y),
        f(r.w),
        f(r.h)
    );
    let _ = write!(out, "<text x=\"{}\" text-anchor=\"middle\">", f(r.center_x()));
    for (k, line) in lines.iter().enumerate() {
        let weight = if k == 0 { " font-weight=\"bold\"" } else { "" };
        let _ = write!(
            out,
            "<tspan x=\"{}\" y=\"{}\"{weight}>{}</tspan>",
            f(r.center_x()),
            f(r.y + PAD_Y + LINE * (k as f64 + 1.0) - 3.5),
            xml_escape(line)
        );
    }
    out.push_str("</text></g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(xml_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
        assert_eq!(xml_escape("bell\u{7}"), "bell ");
    }

    #[test]
    fn nodes_are_wide_enough_for_their_longest_line() {
        let (w, h) = node_size(&["conv1".into(), "Conv2d  9,408 params".into()]);
        assert!(w >= text_width("Conv2d  9,408 params", FONT));
        assert!(h >= 2.0 * LINE);
    }
}
