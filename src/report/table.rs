//! The summary as a text table, torchinfo-like but with full paths, bound or symbolic shapes
//! and never-truncated numbers.

use super::{dim_thousands, mib, shape_text, thousands, RowKind, Summary, MAC_CONVENTION};

/// How to draw the table.
#[derive(Clone, Copy, Debug)]
pub struct TableStyle {
    /// Box-drawing rules (a terminal); plain ASCII otherwise.
    pub unicode: bool,
    /// Bold headings (a terminal that takes colour).
    pub color: bool,
}

impl TableStyle {
    pub const PLAIN: TableStyle = TableStyle { unicode: false, color: false };
}

pub fn render_table(s: &Summary, style: TableStyle) -> String {
    let bold = |t: &str| if style.color { format!("\x1b[1m{t}\x1b[0m") } else { t.to_string() };
    let rule_char = if style.unicode { "─" } else { "-" };
    let heavy_char = if style.unicode { "═" } else { "=" };
    let headers = ["Layer (path)", "Op", "Output shape", "Params", "MACs"];
    let cells: Vec<[String; 5]> = s
        .rows
        .iter()
        .map(|r| {
            let indent = "  ".repeat(r.depth.saturating_sub(1));
            let params =
                if r.kind == RowKind::Group || r.params > 0 { thousands(r.params) } else { "-".into() };
            let macs = match &r.macs {
                Some(m) if *m == super::DimValue::Int(0) && r.kind == RowKind::Layer => "-".into(),
                Some(m) => dim_thousands(m),
                None => "uncounted".into(),
            };
            let mut op = r.op.clone();
            if r.frozen {
                op.push_str(" (frozen)");
            }
            if !r.tied_to.is_empty() {
                op.push_str(&format!(" (tied to {})", r.tied_to.join(", ")));
            }
            [format!("{indent}{}", r.path), op, shape_text(&r.output_shape), params, macs]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let total_width = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    let rule = rule_char.repeat(total_width);
    let heavy = heavy_char.repeat(total_width);
    let line = |cols: &[String; 5]| {
        let mut l = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            if i >= 3 {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                if i < 4 {
                    l.push_str(&" ".repeat(pad));
                }
            }
            if i < 4 {
                l.push_str("  ");
            }
        }
        l.trim_end().to_string()
    };

    let mut out = String::new();
    out.push_str(&heavy);
    out.push('\n');
    out.push_str(&bold(&format!("Model {}", s.model)));
    out.push('\n');
    if !s.dims.is_empty() {
        let dims: Vec<String> = s
            .dims
            .iter()
            .map(|(n, v)| match v {
                Some(v) => format!("{n} = {v}"),
                None => format!("{n} (symbolic)"),
            })
            .collect();
        out.push_str(&format!("Dims: {}\n", dims.join(", ")));
    }
    for (label, ports) in [("Inputs", &s.inputs), ("Outputs", &s.outputs)] {
        let items: Vec<String> = ports
            .iter()
            .map(|p| format!("{} {} {}", p.name, shape_text(&Some(p.shape.clone())), p.dtype))
            .collect();
        out.push_str(&format!(
            "{label}: {}\n",
            if items.is_empty() { "none".into() } else { items.join(", ") }
        ));
    }
    out.push_str(&format!("{MAC_CONVENTION}\n"));
    for note in &s.cost_notes {
        out.push_str(&format!("Note: {note}\n"));
    }
    out.push_str(&heavy);
    out.push('\n');
    out.push_str(&bold(&line(&headers.map(String::from))));
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    if s.truncated {
        out.push_str("(stopped at the layer whose shape could not be inferred; see the errors above)\n");
    }
    out.push_str(&heavy);
    out.push('\n');
    let macs = dim_thousands(&s.macs);
    let flops = match &s.macs {
        super::DimValue::Int(v) => thousands(super::flops(*v)),
        other => format!("2*({other})"),
    };
    let totals = [
        ("Total params", thousands(s.total_params)),
        ("Trainable params", thousands(s.trainable_params)),
        ("Frozen params", thousands(s.frozen_params)),
        ("Buffers (running stats)", thousands(s.buffers)),
        ("Total MACs", macs),
        ("Total FLOPs", flops),
    ];
    let mut totals = totals.to_vec();
    if s.shared_params > 0 {
        totals.insert(1, ("Shared params (counted once)", thousands(s.shared_params)));
    }
    let key_width = totals.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in totals {
        out.push_str(&format!("{k:<key_width$}  {v}\n"));
    }
    if !s.uncounted.is_empty() {
        out.push_str(&format!("Uncounted ops (no cost rule): {}\n", s.uncounted.join(", ")));
    }
    out.push_str(&rule);
    out.push('\n');
    let m = &s.memory;
    let opt = |b: Option<u64>| b.map_or("unknown (unbound dims)".to_string(), mib);
    out.push_str(&format!("Params + buffers (f32)                {}\n", mib(m.params_bytes)));
    out.push_str(&format!("Inference: params + peak activations  {}\n", opt(m.inference_bytes)));
    out.push_str(&format!("Training: + grads, Adam state, saved  {}\n", opt(m.training_bytes)));
    out.push_str(&heavy);
    out.push('\n');
    out
}
