//! The summary as JSON, schema `wick.summary/1` (documented in the README). Keys are stable;
//! new keys may be added, none renamed or removed without a new schema version.

use serde_json::{json, Value};

use super::{DimValue, Port, RowKind, Summary};

pub const SCHEMA: &str = "wick.summary/1";

fn dim(d: &DimValue) -> Value {
    match d {
        DimValue::Int(v) => json!(v),
        DimValue::Sym(s) => json!(s),
    }
}

fn shape(s: &[DimValue]) -> Value {
    Value::Array(s.iter().map(dim).collect())
}

fn ports(ps: &[Port]) -> Value {
    Value::Array(
        ps.iter().map(|p| json!({"name": p.name, "shape": shape(&p.shape), "dtype": p.dtype})).collect(),
    )
}

pub fn render_json(s: &Summary) -> String {
    let layers: Vec<Value> = s
        .rows
        .iter()
        .map(|r| {
            let mut row = json!({
                "path": r.path,
                "op": r.op,
                "kind": if r.kind == RowKind::Layer { "layer" } else { "group" },
                "depth": r.depth,
                "output_shape": r.output_shape.as_ref().map_or(Value::Null, |sh| shape(sh)),
                "params": r.params,
                "trainable_params": r.trainable,
                "buffers": r.buffers,
                "macs": r.macs.as_ref().map_or(Value::Null, dim),
            });
            // Present only where they apply, so summaries without them keep their shape.
            if r.frozen {
                row["frozen"] = json!(true);
            }
            if !r.tied_to.is_empty() {
                row["tied_to"] = json!(r.tied_to);
            }
            row
        })
        .collect();
    let dims: serde_json::Map<String, Value> =
        s.dims.iter().map(|(n, v)| (n.clone(), v.map_or(Value::Null, |v| json!(v)))).collect();
    let flops = match &s.macs {
        DimValue::Int(v) => json!(super::flops(*v)),
        DimValue::Sym(e) => json!(format!("2*({e})")),
    };
    let m = &s.memory;
    let mut doc = json!({
        "schema": SCHEMA,
        "model": s.model,
        "dims": dims,
        "inputs": ports(&s.inputs),
        "outputs": ports(&s.outputs),
        "total_params": s.total_params,
        "trainable_params": s.trainable_params,
        "frozen_params": s.frozen_params,
        "buffers": s.buffers,
        "macs": dim(&s.macs),
        "flops": flops,
        "uncounted_ops": s.uncounted,
        "memory": {
            "dtype": "f32",
            "params_bytes": m.params_bytes,
            "peak_activation_bytes": m.peak_activation_bytes,
            "saved_activation_bytes": m.saved_activation_bytes,
            "inference_bytes": m.inference_bytes,
            "training_bytes": m.training_bytes,
        },
        "complete": s.complete,
        "layers": layers,
    });
    if s.shared_params > 0 {
        doc["shared_params"] = json!(s.shared_params);
    }
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
