//! The summary as a Markdown table with totals, for READMEs and reports.

use super::{dim_thousands, mib, shape_text, thousands, Summary, MAC_CONVENTION};

pub fn render_markdown(s: &Summary) -> String {
    let mut out = format!("### {}\n\n", s.model);
    out.push_str("| Layer (path) | Op | Output shape | Params | MACs |\n|---|---|---|---:|---:|\n");
    for r in &s.rows {
        let macs = r.macs.as_ref().map_or("uncounted".into(), dim_thousands);
        out.push_str(&format!(
            "| {}`{}` | {} | {} | {} | {} |\n",
            "&nbsp;&nbsp;".repeat(r.depth.saturating_sub(1)),
            r.path,
            r.op,
            shape_text(&r.output_shape),
            thousands(r.params),
            macs
        ));
    }
    out.push_str(&format!(
        "\n| Total params | Trainable | Frozen | Buffers | MACs | Params memory |\n|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} |\n\n{MAC_CONVENTION}\n",
        thousands(s.total_params),
        thousands(s.trainable_params),
        thousands(s.frozen_params),
        thousands(s.buffers),
        dim_thousands(&s.macs),
        mib(s.memory.params_bytes)
    ));
    for note in &s.cost_notes {
        out.push_str(&format!("\nNote: {note}\n"));
    }
    out
}
