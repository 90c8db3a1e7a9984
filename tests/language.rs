//! The language reads what a spec says: indexing, keywords as prefixes of names and as labels,
//! and summaries that never pass off a spec with errors as complete.

use wick::{compile_source, Compiled, Options};

fn compile(body: &str) -> Compiled {
    let spec = format!("dim N = 1\nmodel M {{\n    input x: [N, 3, 16, 16]\n{body}\n}}\n");
    compile_source("m.wick", &spec, &Options::default())
}

fn params(c: &Compiled) -> Vec<(String, Vec<i64>)> {
    let rendered = c.render_diagnostics(wick::diag::RenderStyle::PLAIN);
    assert!(!c.diagnostics.has_errors(), "{rendered}");
    let g = c.graph.as_ref().expect("a graph");
    g.parameters()
        .into_iter()
        .map(|(path, shape, _)| (path, shape.iter().map(|d| d.as_const().expect("bound")).collect()))
        .collect()
}

#[test]
fn an_index_picks_the_item_it_names() {
    let c = compile(
        "    ks = [3, [5, 7]]\n    y = x |> a: Conv2d(8, ks[1][0]) |> b: Conv2d(4, ks[-2])\n    output y",
    );
    let p = params(&c);
    assert!(p.contains(&("a.weight".into(), vec![8, 3, 5, 5])), "{p:?}");
    assert!(p.contains(&("b.weight".into(), vec![4, 8, 3, 3])), "{p:?}");
}

#[test]
fn every_keyword_may_begin_a_name() {
    for kw in [
        "use", "dim", "block", "model", "train", "input", "output", "return", "assert", "if", "else",
        "repeat", "in", "as", "of", "true", "false",
    ] {
        let name = format!("{kw}s");
        let c = compile(&format!(
            "    {name} = 2\n    {kw}_n = 1\n    y = x |> repeat i in 0..{name} {{ Conv2d(3, 1) }}\n    output y"
        ));
        let p = params(&c);
        assert_eq!(p.len(), 4, "{kw}: two convolutions of weight and bias, got {p:?}");
    }
}

#[test]
fn any_word_labels_a_layer() {
    let c = compile("    y = x |> block: [Conv2d(4, 1), if: ReLU] |> repeat: Conv2d(2, 1)\n    output y");
    let p = params(&c);
    let paths: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(paths, ["block.0.weight", "block.0.bias", "repeat.weight", "repeat.bias"]);
}

#[test]
fn a_spec_with_errors_has_no_summary_and_its_partial_one_says_incomplete() {
    let c = compile("    y = x |> Conv2d(8, 3) |> Lnear(3)\n    output y");
    assert!(matches!(c.summary(None), Err(wick::SummaryError::Errors { count: 1, .. })));
    let partial = c.partial_summary(None).expect("what was built");
    assert!(!partial.complete);
    let json = wick::report::render_json(&partial);
    assert!(json.contains("\"complete\": false"), "{json}");
    let fine = compile("    y = x |> Conv2d(8, 3)\n    output y");
    assert!(fine.summary(None).expect("no errors").complete);
}

// ---- issue 12, item 5: PyTorch's positional order never builds another model ----

/// A model over `input` (importing `std/{file}.wick` when given) whose one layer is `call`.
fn one_layer(file: Option<&str>, input: &str, call: &str) -> Compiled {
    let import = file.map(|f| format!("use \"std/{f}.wick\"\n")).unwrap_or_default();
    // An LSTM's outputs are the sequence and its final hidden and cell states.
    let outputs = if call.starts_with("LSTM") { "y, h, c" } else { "y" };
    let spec =
        format!("{import}dim N = 2\nmodel M {{\n    input x: {input}\n    {outputs} = x |> l: {call}\n    output y\n}}\n");
    compile_source("m.wick", &spec, &Options::default())
}

/// Each call, (imported file, input type, call), fails with `code` and nothing else.
fn each_fails_with(code: &str, calls: &[(Option<&str>, &str, &str)]) {
    for (file, input, call) in calls {
        let c = one_layer(*file, input, call);
        let codes: Vec<&str> = c.diagnostics.items.iter().filter(|d| d.is_error()).map(|d| d.code).collect();
        assert_eq!(codes, [code], "{call}");
    }
}

/// The parameters of one call, and those of another that must build the same model.
fn same_model(file: Option<&str>, input: &str, call: &str, same_as: &str) {
    let (a, b) = (params(&one_layer(file, input, call)), params(&one_layer(file, input, same_as)));
    assert!(!a.is_empty());
    assert_eq!(a, b, "`{call}` and `{same_as}` differ");
}

#[test]
fn pytorch_order_is_read_so_where_only_it_fits() {
    // Each once an error or (the transformer layer) another model: wick's order cannot take them.
    same_model(None, "[N, 784]", "Linear(784, 200)", "Linear(200)");
    same_model(
        None,
        "[N, 3, 8, 8]",
        "Conv2d(3, 16, 3, 1, 1, 1, 1, false)",
        "Conv2d(16, 3, padding=1, bias=false)",
    );
    same_model(
        None,
        "[N, 5, 12]",
        "LSTM(12, 6, 2, true, true, 0.0, true)",
        "LSTM(6, 2, batch_first=true, bidirectional=true)",
    );
    same_model(
        Some("transformer"),
        "[N, 10, 64]",
        "TransformerEncoderLayer(64, 4, 128, 0.1, \"gelu\")",
        "TransformerEncoderLayer(4, 128, activation=\"gelu\")",
    );
    same_model(Some("resnet"), "[N, 64, 8, 8]", "BasicBlock(64, 128, 2)", "BasicBlock(128, stride=2)");
}

#[test]
fn wick_short_forms_mean_what_they_meant() {
    // The PyTorch reading of each would contradict the input, so wick's holds.
    let p = params(&one_layer(None, "[N, 3, 32, 32]", "Conv2d(64, 3, 2)"));
    assert_eq!(p[0], ("l.weight".to_string(), vec![64, 3, 3, 3]));
    let p = params(&one_layer(None, "[N, 10, 32]", "LSTM(16, 2)"));
    assert!(p.contains(&("l.weight_ih_l1".to_string(), vec![64, 16])), "{p:?}");
    let p = params(&one_layer(Some("transformer"), "[N, 10, 64]", "TransformerEncoderLayer(8, 32)"));
    assert!(p.contains(&("l.linear1.weight".to_string(), vec![32, 64])), "{p:?}");
}

#[test]
fn pytorch_order_that_wick_also_reads_is_refused() {
    each_fails_with(
        "E0222",
        &[
            (None, "[N, 3, 32, 32]", "Conv2d(3, 64, 3)"),
            (None, "[N, 10, 32]", "LSTM(32, 64)"),
            (Some("transformer"), "[N, 10, 512]", "TransformerEncoderLayer(512, 8)"),
            (Some("vit"), "[N, 10, 96]", "ViTEncoderBlock(12, 96, 384)"),
            (Some("resnet"), "[N, 64, 8, 8]", "BasicBlock(64, 64)"),
        ],
    );
    // The keywords the error suggests settle it either way.
    same_model(
        None,
        "[N, 3, 32, 32]",
        "Conv2d(in_channels=3, out_channels=64, kernel_size=3)",
        "Conv2d(64, 3)",
    );
    same_model(Some("resnet"), "[N, 64, 8, 8]", "BasicBlock(cin=64, planes=64)", "BasicBlock(planes=64)");
}

#[test]
fn a_given_inferred_size_is_checked() {
    each_fails_with(
        "E0221",
        &[
            (None, "[N, 100]", "Linear(784, 200)"),
            (None, "[N, 3, 8, 8]", "Conv2d(in_channels=1, out_channels=8, kernel_size=3)"),
            (Some("transformer"), "[N, 10, 512]", "TransformerEncoderLayer(d_model=256, nhead=8)"),
        ],
    );
}

// ---- issue 12, item 5: sequence layouts that disagree ----

fn warning_codes(spec: &str) -> Vec<&'static str> {
    let c = compile_source("m.wick", spec, &Options::default());
    assert!(!c.diagnostics.has_errors(), "{}", c.render_diagnostics(wick::diag::RenderStyle::PLAIN));
    c.diagnostics.items.iter().filter(|d| !d.is_error()).map(|d| d.code).collect()
}

/// Token ids embedded and given learned positions (batch-first), then `layers`.
fn tokens_then(layers: &str) -> String {
    format!(
        "use \"std/transformer.wick\"\ndim N = 2\ndim L = 10\nmodel M {{\n    input ids: [N, L] of i64\n    \
         y = ids |> Embedding(100, 64) |> LearnedPositions(16) |> Dropout(0.1) |> {layers}\n    output y\n}}\n"
    )
}

#[test]
fn a_sequence_layer_laid_out_unlike_its_feeder_is_warned_of() {
    // Once silent: attention over the batch axis of a batch-first sequence.
    assert_eq!(warning_codes(&tokens_then("MultiheadAttention(64, 4)")), ["W0403"]);
    assert_eq!(warning_codes(&tokens_then("TransformerEncoderLayer(4)")), ["W0403"]);
    assert_eq!(warning_codes(&tokens_then("LayerNorm |> TransformerEncoder(2, 4)")), ["W0403"]);
    // Agreeing layouts, and a permute between them, say nothing.
    assert!(warning_codes(&tokens_then("MultiheadAttention(64, 4, batch_first=true)")).is_empty());
    assert!(warning_codes(&tokens_then("TransformerEncoderLayer(4, batch_first=true)")).is_empty());
    assert!(warning_codes(&tokens_then("permute([1, 0, 2]) |> MultiheadAttention(64, 4)")).is_empty());
}

// ---- issue 12: one axis, three spellings; ops a ConvNeXt block needs ----

#[test]
fn an_ops_axis_may_be_spelled_axis_dim_or_dims() {
    let c = compile(
        "    output a: [N, 16, 16] = mean(x, dim=1)\n    output b: [N, 3, 16, 16] = Softmax(x, axis=1)\n    \
         output c: [N, 3, 16, 16] = flip(x, dims=[2, 3])\n    output d: [N, 3, 1, 16] = std(x, dim=2, keepdim=true)",
    );
    assert!(!c.diagnostics.has_errors(), "{}", c.render_diagnostics(wick::diag::RenderStyle::PLAIN));
    // A block's parameters keep the names their writer gave: `axis` does not reach `dims`.
    let spec = "dim N = 1\nblock B(x: [N, c], dims: int) { return x |> Linear(dims) }\n\
                model M {\n    input x: [N, 3]\n    output y = x |> B(axis=4)\n}\n";
    let c = compile_source("b.wick", spec, &Options::default());
    let text = c.render_diagnostics(wick::diag::RenderStyle::PLAIN);
    assert!(text.contains("E0203"), "{text}");
}

#[test]
fn a_convnext_block_has_torchvisions_keys() {
    let spec = "dim N = 2\n\
        block CNBlock(x: [N, c, h, w], p: float = 0.1) -> [N, c, h, w] {\n\
            y = x |> block: [Conv2d(c, 7, padding=3, groups=c), permute([0, 2, 3, 1]), LayerNorm(eps=1e-6),\n\
                             Linear(4 * c), GELU, Linear(c), permute([0, 3, 1, 2])]\n\
            s = layer_scale: Parameter([c, 1, 1], init=1e-6)\n\
            return x + StochasticDepth(y * reshape(s, [1, c, 1, 1]), p)\n\
        }\n\
        model M {\n    input x: [N, 3, 16, 16]\n    \
            output y = x |> stem: [Conv2d(8, 4, stride=4), LayerNorm2d(8, eps=1e-6)] |> b: CNBlock\n}\n";
    let c = compile_source("c.wick", spec, &Options::default());
    let p = params(&c);
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "stem.0.weight",
            "stem.0.bias",
            "stem.1.weight",
            "stem.1.bias",
            "b.block.0.weight",
            "b.block.0.bias",
            "b.block.2.weight",
            "b.block.2.bias",
            "b.block.3.weight",
            "b.block.3.bias",
            "b.block.5.weight",
            "b.block.5.bias",
            "b.layer_scale"
        ]
    );
    assert!(p.contains(&("b.layer_scale".into(), vec![8, 1, 1])), "{p:?}");
}
