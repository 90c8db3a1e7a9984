//! The summary as a text table, torchinfo-like but with full paths, bound or symbolic shapes
//! and never-truncated numbers.

use std::ops::Range;

use super::{
    dim_thousands, mib, shape_text, thousands, write_dim_thousands, write_shape, write_thousands, Row,
    RowKind, Summary, MAC_CONVENTION,
};

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

/// One row's cells but its path: ranges of the table's one string of cell text, so a row
/// costs no allocation of its own.
struct Cells {
    indent: usize,
    op: Range<usize>,
    shape: Range<usize>,
    params: Range<usize>,
    macs: Range<usize>,
}

/// Appends what `write` writes to `text` and returns where it went.
fn cell(text: &mut String, write: impl FnOnce(&mut String)) -> Range<usize> {
    let start = text.len();
    write(text);
    start..text.len()
}

/// A row's five cells.
fn row_cells<'s>(r: &'s Row, c: &Cells, text: &'s str) -> [&'s str; 5] {
    [&r.path, &text[c.op.clone()], &text[c.shape.clone()], &text[c.params.clone()], &text[c.macs.clone()]]
}

pub fn render_table(s: &Summary, style: TableStyle) -> String {
    let bold = |t: &str| if style.color { format!("\x1b[1m{t}\x1b[0m") } else { t.to_string() };
    let rule_char = if style.unicode { "─" } else { "-" };
    let heavy_char = if style.unicode { "═" } else { "=" };
    let headers = ["Layer (path)", "Op", "Output shape", "Params", "MACs"];
    let mut text = String::new();
    let cells: Vec<Cells> = s
        .rows
        .iter()
        .map(|r| {
            let op = cell(&mut text, |t| {
                t.push_str(&r.op);
                if r.frozen {
                    t.push_str(" (frozen)");
                }
                if !r.tied_to.is_empty() {
                    t.push_str(" (tied to ");
                    t.push_str(&r.tied_to.join(", "));
                    t.push(')');
                }
            });
            let shape = cell(&mut text, |t| write_shape(t, &r.output_shape));
            let params = cell(&mut text, |t| match r.kind == RowKind::Group || r.params > 0 {
                true => write_thousands(t, r.params),
                false => t.push('-'),
            });
            let macs = cell(&mut text, |t| match &r.macs {
                Some(m) if *m == super::DimValue::Int(0) && r.kind == RowKind::Layer => t.push('-'),
                Some(m) => write_dim_thousands(t, m),
                None => t.push_str("uncounted"),
            });
            Cells { indent: 2 * r.depth.saturating_sub(1), op, shape, params, macs }
        })
        .collect();
    let text = text;
    let row_cells = |r, c| row_cells(r, c, &text);
    let mut widths = headers.map(|h| h.chars().count());
    for (r, c) in s.rows.iter().zip(&cells) {
        for (i, (w, t)) in widths.iter_mut().zip(row_cells(r, c)).enumerate() {
            let indent = if i == 0 { c.indent } else { 0 };
            *w = (*w).max(indent + t.chars().count());
        }
    }
    let total_width = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    let rule = rule_char.repeat(total_width);
    let heavy = heavy_char.repeat(total_width);
    // One line of cells into `out`, the first indented by `indent`: left-aligned text columns,
    // right-aligned numbers, no trailing blanks.
    let line = |out: &mut String, indent: usize, cols: [&str; 5]| {
        let start = out.len();
        let spaces = |out: &mut String, mut n: usize| {
            const SPACES: &str = "                                ";
            while n > 0 {
                let k = n.min(SPACES.len());
                out.push_str(&SPACES[..k]);
                n -= k;
            }
        };
        for (i, (c, w)) in cols.into_iter().zip(widths).enumerate() {
            let pad = w - c.chars().count() - if i == 0 { indent } else { 0 };
            if i == 0 {
                spaces(out, indent);
            }
            if i >= 3 {
                spaces(out, pad);
                out.push_str(c);
            } else {
                out.push_str(c);
                spaces(out, pad);
            }
            if i < 4 {
                out.push_str("  ");
            }
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
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
    let mut heading = String::new();
    line(&mut heading, 0, headers);
    out.push_str(&bold(&heading));
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    out.reserve(s.rows.len() * (total_width + 1));
    for (r, c) in s.rows.iter().zip(&cells) {
        line(&mut out, c.indent, row_cells(r, c));
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
