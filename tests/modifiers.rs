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

// `init=` on a block call reaches every layer in it; a layer's own choice wins inside.
const CHOSEN_INITS: &str = r#"
dim N = 2

block Stage(x: [N, cin, h, w], out: int) {
    return x |> conv: Conv2d(out, 3, padding=1) |> bn: BatchNorm2d(init=normal(1, 0.02)) |> ReLU
}

model M {
    input x: [N, 3, 8, 8]
    y = x |> s1: Stage(8, init=kaiming_normal(mode="fan_out", nonlinearity="relu"), bias_init=zeros)
          |> head: Conv2d(4, 1, init="xavier_uniform(gain=2)", bias_init=constant(-1))
          |> tail: Conv2d(4, 1)
    output y
}
"#;

fn init_of(c: &wick::Compiled, key: &str) -> String {
    let g = c.graph.as_ref().expect("graph");
    g.order
        .iter()
        .map(|id| g.node(*id))
        .flat_map(|n| n.params.iter().map(move |p| (p.path_under(&n.path), p.init.to_string())))
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no parameter {key}"))
        .1
}

#[test]
fn init_and_bias_init_choose_each_layers_schemes_block_calls_included() {
    let c = compile_source("inits.wick", CHOSEN_INITS, &Options::default());
    assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics);
    let kaiming = "kaiming_normal(a=0, mode=\"fan_out\", nonlinearity=\"relu\")";
    assert_eq!(init_of(&c, "s1.conv.weight"), kaiming);
    assert_eq!(init_of(&c, "s1.conv.bias"), "zeros");
    // The batch norm's own choice wins over its block's; its bias takes the block's.
    assert_eq!(init_of(&c, "s1.bn.weight"), "normal(1, 0.02)");
    assert_eq!(init_of(&c, "s1.bn.bias"), "zeros");
    assert_eq!(init_of(&c, "s1.bn.running_var"), "ones");
    assert_eq!(init_of(&c, "head.weight"), "xavier_uniform(gain=2)");
    assert_eq!(init_of(&c, "head.bias"), "constant(-1)");
    // Outside any choice: PyTorch's default.
    assert!(init_of(&c, "tail.weight").starts_with("U(-1/sqrt("), "{}", init_of(&c, "tail.weight"));
}

#[test]
fn a_scheme_that_needs_fans_on_a_1d_parameter_or_a_typo_is_an_error_at_the_choice() {
    let bare = CHOSEN_INITS.replace("BatchNorm2d(init=normal(1, 0.02))", "BatchNorm2d");
    let c = compile_source("inits.wick", &bare, &Options::default());
    let errors: Vec<String> =
        c.diagnostics.items.iter().filter(|d| d.code == "E0225").map(|d| d.message.clone()).collect();
    // The block's kaiming reaches `bn.weight` [8]: PyTorch refuses fans of a 1-d tensor too.
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("`s1.bn.weight` has shape [8]"), "{}", errors[0]);
    assert!(errors[0].contains("need 2 or more dims"), "{}", errors[0]);

    let typo = CHOSEN_INITS.replace("bias_init=zeros", "bias_init=zeroes");
    let c = compile_source("typo.wick", &typo, &Options::default());
    assert!(c.diagnostics.has_errors());
    let args = CHOSEN_INITS.replace("constant(-1)", "constant(value=-1)");
    let c = compile_source("args.wick", &args, &Options::default());
    let text = format!("{:?}", c.diagnostics);
    assert!(text.contains("`constant` has no argument `value`; it takes val"), "{text}");
}

#[test]
fn yaml_layers_choose_inits_in_both_forms() {
    // The expression form inside YAML, and the string form a YAML value holds.
    let yaml = "dims:\n  N: 2\nmodels:\n  M:\n    body:\n      - input: {x: \"[N, 8]\"}\n      - y: 'x |> a: Linear(4, init=orthogonal(gain=2), bias_init=\"constant(0.5)\") |> b: Linear(3, init=\"kaiming_uniform(a=0.2)\")'\n      - output: y\n";
    let c = compile_source("m.yaml", yaml, &Options::default());
    assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics);
    assert_eq!(init_of(&c, "a.weight"), "orthogonal(gain=2)");
    assert_eq!(init_of(&c, "a.bias"), "constant(0.5)");
    assert_eq!(
        init_of(&c, "b.weight"),
        "kaiming_uniform(a=0.2, mode=\"fan_in\", nonlinearity=\"leaky_relu\")"
    );
}

#[test]
fn an_init_on_a_layer_without_such_a_parameter_is_an_error() {
    let spec = "dim N = 2\nmodel M { input x: [N, 3, 8, 8]\n output y = x |> c: Conv2d(4, 3, bias=false, bias_init=zeros) |> r: ReLU(init=ones) }";
    let c = compile_source("unused.wick", spec, &Options::default());
    let errors: Vec<String> =
        c.diagnostics.items.iter().filter(|d| d.code == "E0225").map(|d| d.message.clone()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("`bias_init` on `c` (Conv2d), which has no bias to start"), "{}", errors[0]);
    assert!(
        errors[1].contains("`init` on `r` (ReLU), which has no learned weight to start"),
        "{}",
        errors[1]
    );
}
