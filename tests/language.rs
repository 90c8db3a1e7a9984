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
        "repeat", "in", "as", "of", "true", "false", "none",
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

fn sequence_spec(dims: &str) -> String {
    format!("{dims}\nmodel M {{\n    input x: [N, L, 32]\n    y = x |> pos: LearnedPositions(L + 2)\n    output y\n}}\n")
}

#[test]
fn a_layer_argument_may_be_an_expression_over_dims_with_values() {
    let c = compile_source("s.wick", &sequence_spec("dim N = 1\ndim L = 16"), &Options::default());
    assert_eq!(params(&c), [("pos.weight".to_string(), vec![18, 32])]);
    // `--bind` gives the value an example would, or overrides it.
    let opts = Options { bind: vec![("L".into(), 30)], ..Options::default() };
    let c = compile_source("s.wick", &sequence_spec("dim N = 1\ndim L = 16"), &opts);
    assert_eq!(params(&c), [("pos.weight".to_string(), vec![32, 32])]);
    let c = compile_source("s.wick", &sequence_spec("dim N = 1\ndim L"), &opts);
    assert_eq!(params(&c), [("pos.weight".to_string(), vec![32, 32])]);
}

#[test]
fn a_layer_argument_over_a_dim_without_a_value_says_how_to_give_one() {
    let c = compile_source("s.wick", &sequence_spec("dim N = 1\ndim L"), &Options::default());
    let rendered = c.render_diagnostics(wick::diag::RenderStyle::PLAIN);
    assert!(rendered.contains("`max_len` must be a constant, found `L + 2`"), "{rendered}");
    assert!(rendered.contains("`dim L = 16`") && rendered.contains("--bind L=16"), "{rendered}");
    assert!(rendered.contains("s.wick:5:36"), "{rendered}");
}

#[test]
fn widths_are_computed_with_pythons_rounding() {
    let c = compile(
        "    w = 48\n    y = x |> a: Conv2d(round(0.25 * w), 1) |> b: Conv2d(round(2.5), 1) |> c: Conv2d(round(3.5), 1)\n          |> d: Conv2d(floor(7.9), 1) |> e: Conv2d(ceil(7.1), 1) |> f: Conv2d(int(w / 5 + 0.9), 1)\n    output y",
    );
    let widths: Vec<i64> =
        params(&c).iter().filter(|(k, _)| k.ends_with("bias")).map(|(_, s)| s[0]).collect();
    assert_eq!(widths, [12, 2, 4, 7, 8, 9]);
}

#[test]
fn a_rounding_of_what_no_int_holds_is_an_error() {
    let c = compile("    y = x |> Conv2d(round(1e300), 1)\n    output y");
    let rendered = c.render_diagnostics(wick::diag::RenderStyle::PLAIN);
    assert!(rendered.contains("`round` of 1e300 is not an int wick can hold"), "{rendered}");
}

#[test]
fn yaml_computes_widths_and_table_sizes_alike() {
    let yaml = "dims:\n  N: 1\n  L: 16\nmodels:\n  M:\n    params:\n      ratio: float = 0.25\n    body:\n      - input: {x: \"[N, L, 48]\"}\n      - y: \"x |> pos: LearnedPositions(L + 2) |> fc: Linear(round(ratio * 48))\"\n      - output: y\n";
    let c = compile_source("m.yaml", yaml, &Options::default());
    let p = params(&c);
    assert!(p.contains(&("pos.weight".into(), vec![18, 48])), "{p:?}");
    assert!(p.contains(&("fc.weight".into(), vec![12, 48])), "{p:?}");
}

#[test]
fn a_quoted_label_names_a_layer_with_any_segment() {
    let c = compile("    y = x |> trunk: [\"block1-0\": Conv2d(4, 1), \"block1-1\" : ReLU] |> \"head 2\": Conv2d(2, 1)\n    output y");
    let p = params(&c);
    let paths: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(paths, ["trunk.block1-0.weight", "trunk.block1-0.bias", "head 2.weight", "head 2.bias"]);
    let yaml = "dims:\n  N: 1\nmodels:\n  M:\n    body:\n      - input: {x: \"[N, 8]\"}\n      - y: 'x |> \"block1-0\": Linear(4)'\n      - output: y\n";
    let c = compile_source("m.yaml", yaml, &Options::default());
    assert_eq!(params(&c)[0].0, "block1-0.weight");
}

#[test]
fn a_table_as_data_is_repeated_over_row_by_row() {
    let spec = "dim N = 1\n\
        block Stage(x: [N, c, h, w], widths: [int] = [8, 8]) -> [N, _, h, w] {\n\
            return x |> repeat i, width in enumerate(widths) as \"conv{i}\" { Conv2d(width, 1) }\n\
        }\n\
        model M(cfg: [[int]] = [[1, 16, 1], [6, 24, 2]]) {\n\
            input x: [N, 3, 16, 16]\n\
            assert len(cfg) == 2\n\
            y = x |> s1: Stage([4] * 2 + [6]) |> s2: Stage(widths=[5])\n\
                  |> rows: repeat t, c, s in cfg { Conv2d(c * t, 1, stride=s) }\n\
            output y\n\
        }\n";
    let c = compile_source("m.wick", spec, &Options::default());
    let p = params(&c);
    let weights: Vec<(&str, &[i64])> =
        p.iter().filter(|(k, _)| k.ends_with("weight")).map(|(k, s)| (k.as_str(), s.as_slice())).collect();
    assert_eq!(
        weights,
        [
            ("s1.conv0.weight", &[4, 3, 1, 1][..]),
            ("s1.conv1.weight", &[4, 4, 1, 1][..]),
            ("s1.conv2.weight", &[6, 4, 1, 1][..]),
            ("s2.conv0.weight", &[5, 6, 1, 1][..]),
            ("rows.0.weight", &[16, 5, 1, 1][..]),
            ("rows.1.weight", &[144, 16, 1, 1][..]),
        ]
    );
    let out = &c.graph.as_ref().expect("a graph").outputs;
    assert_eq!(out.len(), 1);
}

fn first_error(body: &str) -> String {
    let c = compile(body);
    assert!(c.diagnostics.has_errors(), "expected an error");
    c.render_diagnostics(wick::diag::RenderStyle::PLAIN)
}

#[test]
fn lists_misused_are_located_errors() {
    let e = first_error("    y = x |> repeat a, b in [[1, 2], [3]] { Conv2d(a, b) }\n    output y");
    assert!(e.contains("cannot unpack a list of 1 item into 2 names"), "{e}");
    let e = first_error("    y = x |> repeat a in 5 { ReLU }\n    output y");
    assert!(e.contains("expected a list to repeat over, found int `5`"), "{e}");
    let e = first_error("    n = len(4)\n    y = x |> Conv2d(n, 1)\n    output y");
    assert!(e.contains("expected a list, found int `4`"), "{e}");
    // A list as long as the work budget is refused before it is built.
    let e = first_error("    big = [1, 2] * 1000000000\n    y = x |> Conv2d(len(big), 1)\n    output y");
    assert!(e.contains("E0402"), "{e}");
}

#[test]
fn a_list_parameter_checks_its_items() {
    let spec = "dim N = 1\nblock B(x: [N, c], widths: [int]) -> [N, _] {\n    return x |> repeat w in widths { Linear(w) }\n}\nmodel M {\n    input x: [N, 4]\n    y = x |> B([2.5])\n    output y\n}\n";
    let c = compile_source("m.wick", spec, &Options::default());
    let e = c.render_diagnostics(wick::diag::RenderStyle::PLAIN);
    assert!(c.diagnostics.has_errors() && e.contains("m.wick:7:16"), "{e}");
}

#[test]
fn yaml_takes_list_parameters_and_repeats_over_them() {
    let yaml = "dims:\n  N: 1\nmodels:\n  M:\n    params:\n      widths: \"[int] = [3, 5]\"\n    body:\n      - input: {x: \"[N, 4]\"}\n      - y: \"x |> fcs: repeat i, w in enumerate(widths) { Linear(w + i) }\"\n      - output: y\n";
    let c = compile_source("m.yaml", yaml, &Options::default());
    let p = params(&c);
    assert!(p.contains(&("fcs.1.weight".into(), vec![6, 3])), "{p:?}");
}

#[test]
fn an_op_parameter_takes_an_op_a_call_of_one_or_a_block() {
    let spec = "use \"std/conv.wick\"\nuse \"std/squeeze_excite.wick\"\ndim N = 1\n\
        block Twice(x: [N, c, h, w], layer: op = Identity) -> [N, _, h, w] {\n    return x |> first: layer |> second: layer\n}\n\
        model M {\n    input x: [N, 16, 8, 8]\n\
            y = x |> a: ConvNormAct(24, act=SiLU) |> b: ConvNormAct(8, 1, 1, 1, Sigmoid, norm=GroupNorm(4))\n\
                  |> se: SqueezeExcitation(squeeze=round(0.25 * 8), act=SiLU, scale_act=Hardtanh(-1.0, 1.0))\n\
                  |> t: Twice(layer=ConvNormAct(8, 1, act=LeakyReLU(0.2)))\n\
            output y\n}\n";
    let c = compile_source("m.wick", spec, &Options::default());
    let p = params(&c);
    let paths: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).filter(|k| !k.contains(".running_")).collect();
    assert_eq!(
        paths,
        [
            "a.0.weight",
            "a.1.weight",
            "a.1.bias",
            "b.0.weight",
            "b.1.weight",
            "b.1.bias",
            "se.fc1.weight",
            "se.fc1.bias",
            "se.fc2.weight",
            "se.fc2.bias",
            "t.first.0.weight",
            "t.first.1.weight",
            "t.first.1.bias",
            "t.second.0.weight",
            "t.second.1.weight",
            "t.second.1.bias",
        ]
    );
    assert!(p.contains(&("se.fc1.weight".into(), vec![2, 8, 1, 1])), "{p:?}");
    let g = c.graph.as_ref().expect("a graph");
    let kinds: Vec<&str> = g.g.node_weights().map(|n| n.kind).collect();
    for kind in ["SiLU", "Sigmoid", "GroupNorm", "Hardtanh", "LeakyReLU"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
}

#[test]
fn yaml_takes_op_parameters() {
    let yaml = "dims:\n  N: 1\nblocks:\n  Act:\n    params:\n      x: \"[N, c]\"\n      act: op = ReLU\n    returns: \"[N, c]\"\n    body:\n      - return: x |> act\nmodels:\n  M:\n    body:\n      - input: {x: \"[N, 4]\"}\n      - y: \"x |> a: Act(act=LeakyReLU(0.2)) |> fc: Linear(3)\"\n      - output: y\n";
    let c = compile_source("m.yaml", yaml, &Options::default());
    let p = params(&c);
    assert!(p.contains(&("fc.weight".into(), vec![3, 4])), "{p:?}");
    let g = c.graph.as_ref().expect("a graph");
    assert!(g.g.node_weights().any(|n| n.kind == "LeakyReLU" && n.path == "a.leakyrelu"));
}

#[test]
fn spliced_layers_are_numbered_in_the_sequence_around_them() {
    let spec = "dim N = 1\n\
        block Stage(x: [N, c, h, w], width: int, convs: int) {\n    return x |> repeat convs { (Conv2d(width, 3, padding=1) |> ReLU) } |> MaxPool2d(2)\n}\n\
        model M(cfg: [int] = [4, 0, 6]) {\n    input x: [N, 3, 16, 16]\n\
            y = x |> f: [Conv2d(4, 1), ...Stage(5, 2), ...repeat c in cfg { if c == 0 { MaxPool2d(2) } else { (Conv2d(c, 1) |> ReLU) } }, last: Conv2d(2, 1), Conv2d(3, 1)]\n\
                  |> g: [Conv2d(3, 1), [Conv2d(3, 1), ReLU]]\n\
            output y\n}\n";
    let c = compile_source("m.wick", spec, &Options::default());
    let p = params(&c);
    let weights: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).filter(|k| k.ends_with("weight")).collect();
    // 0 conv; 1-5 the stage (conv, relu, conv, relu, pool); 6-7 conv, relu; 8 pool; 9-10 conv,
    // relu; `last` by its label, in place of 11; 12 the conv after it. A nested list without
    // `...` is a group.
    assert_eq!(
        weights,
        [
            "f.0.weight",
            "f.1.weight",
            "f.3.weight",
            "f.6.weight",
            "f.9.weight",
            "f.last.weight",
            "f.12.weight",
            "g.0.weight",
            "g.1.0.weight"
        ]
    );
}

#[test]
fn a_spread_outside_a_sequence_is_an_error() {
    let e = first_error("    y = x |> ...Conv2d(3, 1)\n    output y");
    assert!(e.contains("E0224") && e.contains("m.wick:4:14"), "{e}");
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

#[test]
fn a_numeric_label_places_a_layer_at_its_index() {
    // Swin's stem: a convolution, a parameter-free permute (1), then the norm at 2.
    let c = compile(
        "    y = x |> stem: [Conv2d(8, 4, stride=4), 2: GroupNorm(2, 8), Conv2d(4, 1)]\n    output y",
    );
    let p = params(&c);
    let weights: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).filter(|k| k.ends_with("weight")).collect();
    assert_eq!(weights, ["stem.0.weight", "stem.2.weight", "stem.3.weight"]);
}

#[test]
fn an_absent_op_makes_no_layer_and_an_inlined_block_no_path_segment() {
    let spec = "dim N = 1\n\
        block Unit(x: [N, c, h, w], out: int, attention: op = none) -> [N, out, h, w] {\n    return x |> conv: Conv2d(out, 1) |> se: attention |> ReLU\n}\n\
        block Gated(x: [N, c, h, w], out: int) -> [N, out, h, w] {\n    return x |> ...Unit(out, attention=Sigmoid)\n}\n\
        model M {\n    input x: [N, 3, 8, 8]\n    y = x |> a: Unit(4) |> b: Gated(4) |> c: Unit(4, attention=none)\n    output y\n}\n";
    let c = compile_source("m.wick", spec, &Options::default());
    let p = params(&c);
    let weights: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).filter(|k| k.ends_with("weight")).collect();
    assert_eq!(weights, ["a.conv.weight", "b.conv.weight", "c.conv.weight"]);
    let g = c.graph.as_ref().expect("a graph");
    let paths: Vec<&str> = g.g.node_weights().map(|n| n.path.as_str()).collect();
    assert!(paths.contains(&"b.se") && !paths.contains(&"a.se") && !paths.contains(&"c.se"), "{paths:?}");
    assert!(!g.groups.contains_key("b.unit"), "the inlined block adds no group");
}

#[test]
fn yaml_splices_inlines_and_takes_absent_ops_and_bare_parameters() {
    let yaml = "dims:\n  N: 1\nblocks:\n  Unit:\n    params:\n      x: \"[N, c, h, w]\"\n      out: int\n      attention: op = none\n    body:\n      - return: \"x |> conv: Conv2d(out, 1) |> se: attention\"\nmodels:\n  M:\n    params:\n      cfg: \"[int] = [4, 0, 6]\"\n    body:\n      - input: {x: \"[N, 3, 8, 8]\"}\n      - y: \"x |> f: [Conv2d(4, 1), ...repeat c in cfg { if c == 0 { MaxPool2d(2) } else { (Conv2d(c, 1) |> ReLU) } }, 6: Conv2d(2, 1)] |> ...Unit(3, attention=Sigmoid)\"\n      - scale: \"s: Parameter([1, 3, 1, 1], init=0.5)\"\n      - output: {z: \"[N, 3, 4, 4]\"}\n      - z: y * scale\n";
    let c = compile_source("m.yaml", yaml, &Options::default());
    let p = params(&c);
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "f.0.weight",
            "f.0.bias",
            "f.1.weight",
            "f.1.bias",
            "f.4.weight",
            "f.4.bias",
            "f.6.weight",
            "f.6.bias",
            "conv.weight",
            "conv.bias",
            "s"
        ]
    );
}
