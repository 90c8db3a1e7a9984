//! One chart of the curves figure: frame, grid and tick labels on 1-2-5 or decade ticks,
//! axis labels, a legend on the title line, and each series as lines broken at non-finite
//! values, with a dot per point while there are few.

use std::fmt::Write as _;

use super::axis::Axis;
use crate::report::graph::xml_escape;

pub const PANEL_W: f64 = 520.0;
pub const PANEL_H: f64 = 320.0;
const LEFT: f64 = 66.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 46.0;
pub const FONT: f64 = 12.0;
/// Epoch points get a dot while there are few enough to tell apart (and a lone one shows).
const MAX_DOTS: usize = 40;
/// The dots' radius; the clip reaches this far past the frame so a dot on the edge stays whole.
const DOT: f64 = 3.0;

/// One line of a panel.
pub struct Series {
    pub name: &'static str,
    pub color: &'static str,
    /// (epoch, value); steps sit at fractions of their epoch.
    pub points: Vec<(f64, f64)>,
    pub faint: bool,
}

/// One chart: a figure (`loss`, `accuracy`) over the epochs.
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
    pub allow_log: bool,
    /// What the x axis counts (`epoch`, `learning rate`).
    pub x_label: &'static str,
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// Draw `panel` with its top-left corner at `(ox, oy)`; `index` names its clip path.
pub fn draw_panel(out: &mut String, index: usize, (ox, oy): (f64, f64), panel: &Panel, x: &Axis) {
    let (left, top) = (ox + LEFT, oy + TOP);
    let (w, h) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let y = Axis::fit(panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), panel.allow_log);
    let px = |v: f64| left + x.frac(v) * w;
    let py = |v: f64| top + h - y.frac(v) * h;
    let _ = writeln!(out, "<g class=\"panel\">");
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\" fill=\"#1a202c\">{}</text>",
        f(left),
        f(oy + 24.0),
        xml_escape(&panel.title)
    );
    draw_legend(out, &panel.series, left + w, oy + 24.0);
    let _ = writeln!(
        out,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ffffff\" stroke=\"#a0aec0\"/>",
        f(left),
        f(top),
        f(w),
        f(h)
    );
    for &t in &y.ticks {
        let (ty, label) = (py(t), y.label(t));
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{ty:.1}\" x2=\"{}\" y2=\"{ty:.1}\" stroke=\"#e2e8f0\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#4a5568\">{label}</text>",
            f(left),
            f(left + w),
            f(left - 6.0),
            ty + 4.0
        );
    }
    for &t in &x.ticks {
        let tx = px(t);
        let _ = writeln!(
            out,
            "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#e2e8f0\"/>\
             <text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#4a5568\">{}</text>",
            f(top),
            f(top + h),
            f(top + h + 16.0),
            x.label(t)
        );
    }
    let y_label = if y.log { format!("{} (log scale)", panel.title) } else { panel.title.clone() };
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#2d3748\">{}</text>\
         <text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\" fill=\"#2d3748\">{}</text>",
        f(left + w / 2.0),
        f(top + h + 36.0),
        panel.x_label,
        f(ox + 16.0),
        f(top + h / 2.0),
        xml_escape(&y_label)
    );
    let _ = writeln!(
        out,
        "<clipPath id=\"plot{index}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>\
         <g clip-path=\"url(#plot{index})\">",
        f(left - DOT),
        f(top - DOT),
        f(w + 2.0 * DOT),
        f(h + 2.0 * DOT)
    );
    let mut drawn = false;
    for s in &panel.series {
        let finite: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| p.1.is_finite()).collect();
        drawn |= !finite.is_empty();
        let (width, opacity) = if s.faint { (1.0, 0.35) } else { (2.0, 1.0) };
        // A NaN or infinite value breaks the line rather than dragging it off the chart.
        for run in s.points.split(|p| !p.1.is_finite()).filter(|r| r.len() > 1) {
            let pts: Vec<String> = run.iter().map(|&(a, b)| format!("{},{}", f(px(a)), f(py(b)))).collect();
            let _ = writeln!(
                out,
                "<polyline class=\"series\" data-series=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" \
                 stroke-width=\"{width}\" stroke-opacity=\"{opacity}\" stroke-linejoin=\"round\"/>",
                s.name,
                pts.join(" "),
                s.color
            );
        }
        if !s.faint && finite.len() <= MAX_DOTS {
            for (a, b) in finite {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"{DOT}\" fill=\"{}\"/>",
                    f(px(a)),
                    f(py(b)),
                    s.color
                );
            }
        }
    }
    out.push_str("</g>\n");
    if !drawn {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#718096\">no finite values</text>",
            f(left + w / 2.0),
            f(top + h / 2.0)
        );
    }
    out.push_str("</g>\n");
}

/// Swatches and names, right-aligned to `right` on the panel's title line.
fn draw_legend(out: &mut String, series: &[Series], right: f64, baseline: f64) {
    let mut x = right;
    for s in series.iter().rev() {
        x -= s.name.chars().count() as f64 * FONT * 0.6;
        let _ = writeln!(
            out,
            "<g class=\"legend\"><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\" \
             stroke-opacity=\"{}\"/><text x=\"{}\" y=\"{}\" fill=\"#2d3748\">{}</text></g>",
            f(x - 24.0),
            f(baseline - 4.0),
            f(x - 6.0),
            f(baseline - 4.0),
            s.color,
            if s.faint { 1.5 } else { 2.0 },
            if s.faint { 0.35 } else { 1.0 },
            f(x),
            f(baseline),
            s.name
        );
        x -= 24.0 + 14.0;
    }
}
