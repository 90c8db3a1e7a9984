//! `frozen=` and `tie=`: frozen parameters are reported apart; tied parameters are counted once.

use wick::report::{render_json, render_table, TableStyle};
use wick::{compile_source, Options};

// A weight-shared recurrence unrolled twice (the head reuses `cell`'s weight and bias).
const TIED: &str = r#"
dim N = 2
dim T = 7

model Unrolled(d: int = 16) {
    input x: [N, T, d]
    h = x |> cell: Linear(d) |> ln: LayerNorm(d)
    y = h |> again: Linear(d, tie="cell")
    output y
}
"#;

const FROZEN_BACKBONE: &str = r#"
dim N = 2

block Backbone(x: [N, cin]) {
    return x |> fc1: Linear(8) |> ReLU |> fc2: Linear(8)
}

model Finetune {
    input x: [N, 4]
    y = x |> backbone: Backbone(frozen=true) |> head: Linear(3)
    z = y |> extra: Linear(3, frozen=true)
    output z
}
"#;

#[test]
fn a_tied_layer_is_counted_once_and_marked() {
    let c = compile_source("tied.wick", TIED, &Options::default());
    assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics);
    let s = c.summary(None).expect("summary");
    // cell 16x16 + 16, LayerNorm 2x16; `again` adds nothing.
    assert_eq!(s.total_params, 16 * 16 + 16 + 2 * 16);
    assert_eq!(s.shared_params, 16 * 16 + 16);
    let again = s.rows.iter().find(|r| r.path == "again").expect("row");
    assert_eq!(again.params, 0);
    assert_eq!(again.tied_to, vec!["cell.weight".to_string(), "cell.bias".to_string()]);
    // It still does its matmul: 2*7 rows of 16x16.
    assert_eq!(again.macs, Some(wick::report::DimValue::Int(2 * 7 * 16 * 16)));
    let table = render_table(&s, TableStyle::PLAIN);
    assert!(table.contains("Linear (tied to cell.weight, cell.bias)"), "{table}");
    assert!(table.contains("Shared params (counted once)  272"), "{table}");
    assert!(render_json(&s).contains("\"shared_params\": 272"));
    // Memory counts the tensors once too.
    assert_eq!(s.memory.params_bytes, 4 * (16 * 16 + 16 + 2 * 16));
}

#[test]
fn frozen_calls_freeze_every_parameter_below_them() {
    let c = compile_source("frozen.wick", FROZEN_BACKBONE, &Options::default());
    assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics);
    let s = c.summary(None).expect("summary");
    let backbone = 4 * 8 + 8 + 8 * 8 + 8;
    let extra = 3 * 3 + 3;
    assert_eq!(s.frozen_params, (backbone + extra) as u64);
    assert_eq!(s.trainable_params, 8 * 3 + 3);
    let fc1 = s.rows.iter().find(|r| r.path == "backbone.fc1").expect("fc1 row");
    assert!(fc1.frozen && fc1.trainable == 0);
    let head = s.rows.iter().find(|r| r.path == "head").expect("head row");
    assert!(!head.frozen && head.trainable == 27);
    assert!(render_table(&s, TableStyle::PLAIN).contains("Linear (frozen)"));
}

#[test]
fn a_tie_on_a_block_call_is_an_error() {
    let src = FROZEN_BACKBONE.replace("Backbone(frozen=true)", "Backbone(tie=\"head\")");
    let c = compile_source("tie_block.wick", &src, &Options::default());
    assert!(c.diagnostics.items.iter().any(|d| d.code == "E0215"), "{:?}", c.diagnostics);
}

#[test]
fn frozen_must_be_a_bool() {
    let src = FROZEN_BACKBONE.replace("frozen=true)", "frozen=1)");
    let c = compile_source("frozen_int.wick", &src, &Options::default());
    assert!(c.diagnostics.items.iter().any(|d| d.code == "E0207"), "{:?}", c.diagnostics);
}

#[test]
fn a_tie_to_a_tied_layer_reaches_the_owner_and_cycles_are_errors() {
    let chain = TIED.replace(
        "    y = h |> again: Linear(d, tie=\"cell\")",
        "    y = h |> third: Linear(d, tie=\"again\") |> again: Linear(d, tie=\"cell\")",
    );
    let c = compile_source("chain.wick", &chain, &Options::default());
    assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics);
    let s = c.summary(None).expect("summary");
    let third = s.rows.iter().find(|r| r.path == "third").expect("row");
    assert_eq!(third.tied_to, vec!["cell.weight".to_string(), "cell.bias".to_string()]);
    assert_eq!(s.total_params, 16 * 16 + 16 + 2 * 16);

    let cycle = TIED.replace("cell: Linear(d)", "cell: Linear(d, tie=\"again\")");
    let c = compile_source("cycle.wick", &cycle, &Options::default());
    assert!(c
        .diagnostics
        .items
        .iter()
        .any(|d| d.code == "E0217" && d.notes.iter().any(|n| n.contains("cycle"))));
}
