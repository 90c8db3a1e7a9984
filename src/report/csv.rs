//! The summary's rows as CSV, one line per row, for spreadsheets and scripts.

use super::{shape_text, RowKind, Summary};

pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn render_csv(s: &Summary) -> String {
    let mut out = String::from("path,op,kind,depth,output_shape,params,trainable_params,buffers,macs\n");
    for r in &s.rows {
        let kind = if r.kind == RowKind::Layer { "layer" } else { "group" };
        let macs = r.macs.as_ref().map_or(String::new(), |m| m.to_string());
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            field(&r.path),
            field(&r.op),
            kind,
            r.depth,
            field(&shape_text(&r.output_shape)),
            r.params,
            r.trainable,
            r.buffers,
            field(&macs)
        ));
    }
    out
}
