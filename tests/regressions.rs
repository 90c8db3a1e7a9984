//! Inputs that once panicked or hung (found by fuzzing and by hand); each must now finish.

fn compile(path: &str) -> wick::Compiled {
    let c = wick::compile_file(path, &wick::Options::default()).expect("readable");
    let _ = c.render_diagnostics(wick::diag::RenderStyle::PLAIN);
    c
}

#[test]
fn huge_input_dim_does_not_overflow_memory_estimate() {
    let c = compile("tests/regressions/regression_huge_input_dim.wick");
    assert!(c.partial_summary(None).is_some());
}

#[test]
fn huge_parameter_count_does_not_overflow() {
    let c = compile("tests/regressions/regression_param_bytes_overflow.wick");
    assert!(c.partial_summary(None).is_some());
}

#[test]
fn squared_symbolic_dims_through_nested_blocks_finish() {
    // Exponents double each iteration; powers were computed one multiplication at a time.
    let c = compile("tests/regressions/regression_squared_dims_blowup.wick");
    assert!(c.diagnostics.items.iter().any(|d| d.code == "E0305"));
}

#[test]
fn twenty_thousand_chained_layers_do_not_overflow_the_stack() {
    let spec = "dim N = 1\nmodel M {\n input x: [N, 4]\n y = x |> repeat 20000 { ReLU }\n output y\n}\n";
    let c = wick::compile_source("chain.wick", spec, &wick::Options::default());
    assert!(!c.diagnostics.has_errors());
}

#[test]
fn keyword_argument_names_may_be_keywords() {
    let c = compile("tests/regressions/keyword_named_arguments.wick");
    assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics);
    let s = c.summary(None).expect("summary");
    assert_eq!(s.rows.iter().map(|r| r.op.as_str()).collect::<Vec<_>>(), ["Softmax", "LogSoftmax"]);
}
