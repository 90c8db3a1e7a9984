//! The catalog table: every spec in a folder compiled with its example dims, one row each
//! (params, running stats, MACs, input and output shapes), as Markdown, text or JSON.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{dim_thousands, shape_text, thousands, DimValue, Port, Summary};

/// One catalog row. `figures` is `None` when the spec did not compile.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub spec: String,
    /// YAML twins with the same figures, folded into this row.
    pub twins: Vec<String>,
    pub figures: Option<Figures>,
}

/// The numbers of a compiled spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub model: String,
    pub params: u64,
    pub buffers: u64,
    pub macs: DimValue,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
}

impl Figures {
    pub fn of(s: &Summary) -> Figures {
        Figures {
            model: s.model.clone(),
            params: s.total_params,
            buffers: s.buffers,
            macs: s.macs.clone(),
            inputs: s.inputs.clone(),
            outputs: s.outputs.clone(),
        }
    }
}

fn is_spec(p: &Path) -> bool {
    p.is_file()
        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "wick" | "yaml" | "yml"))
}

/// The spec files directly in `dir`, sorted by name.
pub fn spec_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if is_spec(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Fold each `NAME.yaml`/`NAME.yml` into the row of `NAME.wick` when their figures agree.
pub fn merge_twins(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    let mut twins = Vec::new();
    for e in entries {
        let is_yaml = e.spec.ends_with(".yaml") || e.spec.ends_with(".yml");
        if is_yaml && e.figures.is_some() {
            twins.push(e);
        } else {
            out.push(e);
        }
    }
    for t in twins {
        let stem = t.spec.rsplit_once('.').map_or(t.spec.as_str(), |(s, _)| s);
        let wick = format!("{stem}.wick");
        match out.iter_mut().find(|e| e.spec == wick && e.figures == t.figures) {
            Some(e) => e.twins.push(t.spec),
            None => out.push(t),
        }
    }
    out.sort_by(|a, b| a.spec.cmp(&b.spec));
    out
}

fn ports_text(ports: &[Port]) -> String {
    let one = |p: &Port| {
        let shape = shape_text(&Some(p.shape.clone()));
        if p.dtype == "f32" {
            shape
        } else {
            format!("{shape} {}", p.dtype)
        }
    };
    match ports {
        [p] => one(p),
        ps => ps.iter().map(|p| format!("{} {}", p.name, one(p))).collect::<Vec<_>>().join(", "),
    }
}

const HEADERS: [&str; 6] = ["spec", "params", "running stats", "MACs", "input", "output"];

fn cells(e: &Entry, code: bool) -> [String; 6] {
    let mut spec = if code { format!("`{}`", e.spec) } else { e.spec.clone() };
    for t in &e.twins {
        let ext = t.rsplit_once('.').map_or("", |(_, x)| x);
        spec.push_str(&if code { format!(" (and `.{ext}`)") } else { format!(" (and .{ext})") });
    }
    match &e.figures {
        Some(f) => [
            spec,
            thousands(f.params),
            thousands(f.buffers),
            dim_thousands(&f.macs),
            ports_text(&f.inputs),
            ports_text(&f.outputs),
        ],
        None => [spec, "error".into(), "-".into(), "-".into(), "-".into(), "-".into()],
    }
}

/// A Markdown table, as in the README.
pub fn render_catalog_md(entries: &[Entry]) -> String {
    let mut out = format!("| {} |\n|---|---:|---:|---:|---|---|\n", HEADERS.join(" | "));
    for e in entries {
        out.push_str(&format!("| {} |\n", cells(e, true).join(" | ")));
    }
    out
}

/// A plain text table with aligned columns, numbers to the right.
pub fn render_catalog_table(entries: &[Entry]) -> String {
    let rows: Vec<[String; 6]> =
        std::iter::once(HEADERS.map(String::from)).chain(entries.iter().map(|e| cells(e, false))).collect();
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (r, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            let numeric = (1..=3).contains(&i);
            line.push_str(&if numeric { format!("{pad}{c}  ") } else { format!("{c}{pad}  ") });
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if r == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out
}

fn ports_json(ports: &[Port]) -> Value {
    let dim = |d: &DimValue| match d {
        DimValue::Int(v) => json!(v),
        DimValue::Sym(s) => json!(s),
    };
    ports.iter().map(|p| json!({"name": p.name, "shape": p.shape.iter().map(dim).collect::<Vec<_>>(), "dtype": p.dtype})).collect()
}

/// JSON, schema `wick.catalog/1`: `{schema, specs: [{spec, twins, ok, model, params, buffers,
/// macs, inputs, outputs}]}`; the figures are absent when `ok` is false.
pub fn render_catalog_json(entries: &[Entry]) -> String {
    let specs: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!({"spec": e.spec, "twins": e.twins, "ok": e.figures.is_some()});
            if let (Some(f), Some(map)) = (&e.figures, v.as_object_mut()) {
                map.insert("model".into(), json!(f.model));
                map.insert("params".into(), json!(f.params));
                map.insert("buffers".into(), json!(f.buffers));
                map.insert(
                    "macs".into(),
                    match &f.macs {
                        DimValue::Int(m) => json!(m),
                        DimValue::Sym(s) => json!(s),
                    },
                );
                map.insert("inputs".into(), ports_json(&f.inputs));
                map.insert("outputs".into(), ports_json(&f.outputs));
            }
            v
        })
        .collect();
    let doc = json!({"schema": "wick.catalog/1", "specs": specs});
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, shape: &[i64], dtype: &str) -> Port {
        Port {
            name: name.into(),
            shape: shape.iter().map(|&d| DimValue::Int(d)).collect(),
            dtype: dtype.into(),
        }
    }

    fn entry(spec: &str, params: u64) -> Entry {
        let figures = Figures {
            model: "M".into(),
            params,
            buffers: 0,
            macs: DimValue::Sym("1000*N".into()),
            inputs: vec![port("x", &[1, 8], "f32")],
            outputs: vec![port("y", &[1, 2], "f32")],
        };
        Entry { spec: spec.into(), twins: Vec::new(), figures: Some(figures) }
    }

    #[test]
    fn yaml_twins_fold_into_their_wick_row_only_when_the_figures_agree() {
        let merged = merge_twins(vec![
            entry("s/a.wick", 10),
            entry("s/a.yaml", 10),
            entry("s/b.wick", 5),
            entry("s/b.yml", 6),
        ]);
        let specs: Vec<&str> = merged.iter().map(|e| e.spec.as_str()).collect();
        assert_eq!(specs, ["s/a.wick", "s/b.wick", "s/b.yml"]);
        assert_eq!(merged[0].twins, ["s/a.yaml"]);
        assert_eq!(cells(&merged[0], true)[0], "`s/a.wick` (and `.yaml`)");
    }

    #[test]
    fn cells_group_thousands_and_name_ports_when_there_are_several() {
        let mut e = entry("a.wick", 1_234_567);
        let row = cells(&e, false);
        assert_eq!((row[1].as_str(), row[3].as_str(), row[4].as_str()), ("1,234,567", "1000*N", "[1, 8]"));
        if let Some(f) = e.figures.as_mut() {
            f.inputs.push(port("ids", &[1, 128], "i64"));
        }
        assert_eq!(cells(&e, false)[4], "x [1, 8], ids [1, 128] i64");
        let broken = Entry { spec: "b.wick".into(), twins: Vec::new(), figures: None };
        assert_eq!(cells(&broken, false)[1], "error");
        let json: serde_json::Value = serde_json::from_str(&render_catalog_json(&[broken])).expect("json");
        assert_eq!(json["specs"][0]["ok"], false);
        assert!(json["specs"][0].get("params").is_none());
    }
}
