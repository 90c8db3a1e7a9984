//! The bundled block library (`std/*.wick`) beyond what the catalog exercises: blocks no
//! catalog spec calls, and the contracts the blocks assert.

use wick::report::DimValue;

fn compile(spec: &str) -> wick::Compiled {
    wick::compile_source("std_blocks.wick", spec, &wick::Options::default())
}

/// Error codes and messages of a spec that should fail.
fn errors(spec: &str) -> Vec<(&'static str, String)> {
    let c = compile(spec);
    assert!(c.diagnostics.has_errors(), "expected errors in:\n{spec}");
    c.diagnostics.items.iter().map(|d| (d.code, d.message.clone())).collect()
}

/// The parameters of a spec that compiled, with their shapes at its dims.
fn parameters(c: &wick::Compiled) -> Vec<(String, Vec<i64>)> {
    assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics);
    let graph = c.graph.as_ref().expect("graph");
    let bindings = graph.bindings();
    let shape =
        |dims: &[wick::ir::dim::Dim]| dims.iter().map(|d| d.eval(&bindings).expect("bound")).collect();
    graph.parameters().into_iter().map(|(path, dims, _)| (path, shape(&dims))).collect()
}

/// A one-layer model over `input` calling `call`, importing `file`.
fn model(file: &str, input: &str, call: &str) -> String {
    format!("use \"std/{file}.wick\"\ndim N = 1\nmodel M {{\n    input x: {input}\n    y = x |> b: {call}\n    output y\n}}\n")
}

#[test]
fn depthwise_separable_is_a_depthwise_then_a_pointwise_conv_bn_relu() {
    let c = compile(&model("conv", "[N, 32, 112, 112]", "DepthwiseSeparable(64)"));
    let params: Vec<(String, Vec<i64>)> =
        parameters(&c).into_iter().filter(|(path, _)| path.ends_with("weight")).collect();
    let expected = [
        ("b.depthwise.0.weight", vec![32, 1, 3, 3]),
        ("b.depthwise.1.weight", vec![32]),
        ("b.pointwise.0.weight", vec![64, 32, 1, 1]),
        ("b.pointwise.1.weight", vec![64]),
    ];
    let expected: Vec<(String, Vec<i64>)> =
        expected.iter().map(|(p, s)| (p.to_string(), s.clone())).collect();
    assert_eq!(params, expected);
    let s = c.summary(None).expect("summary");
    assert_eq!(s.total_params, 288 + 64 + 2048 + 128);
    assert_eq!(s.buffers, 64 + 128);
    assert_eq!(s.macs, DimValue::Int((288 + 2048) * 112 * 112));
}

#[test]
fn squeeze_excite_needs_the_reduction_to_divide_the_channels() {
    let e = errors(&model("squeeze_excite", "[N, 24, 7, 7]", "SqueezeExcite(r=16)"));
    assert!(e
        .iter()
        .any(|(code, m)| *code == "E0303" && m.ends_with("reduction 16 must divide channels 24")));
    let c = compile(&model("squeeze_excite", "[N, 32, 7, 7]", "SqueezeExcite(r=16)"));
    assert_eq!(c.summary(None).expect("summary").total_params, (32 * 2 + 2) + (2 * 32 + 32));
}

#[test]
fn conv_bn_relu_refuses_even_kernels_and_unknown_activations() {
    let e = errors(&model("conv", "[N, 8, 16, 16]", "ConvBNReLU(8, 2)"));
    assert!(e.iter().any(|(code, m)| *code == "E0303" && m.contains("found kernel 2")), "{e:?}");
    let e = errors(&model("conv", "[N, 8, 16, 16]", "ConvBNReLU(8, activation=\"gelu\")"));
    assert!(e.iter().any(|(code, m)| *code == "E0303" && m.contains("found \"gelu\"")), "{e:?}");
}

#[test]
fn inverted_residual_strides_by_one_or_two() {
    let e = errors(&model("mobilenet", "[N, 16, 32, 32]", "InvertedResidual(24, stride=3, expand_ratio=6)"));
    assert!(e.iter().any(|(code, m)| *code == "E0303" && m.contains("found 3")), "{e:?}");
}

#[test]
fn dcgan_down_stage_halves_even_sizes_only() {
    let e = errors(&model("dcgan", "[N, 3, 63, 63]", "DownStage(64)"));
    assert!(e.iter().any(|(code, m)| *code == "E0303" && m.contains("63 x 63")), "{e:?}");
}

#[test]
fn unet_up_needs_a_skip_twice_the_size() {
    let spec = "use \"std/unet.wick\"\ndim N = 1\nmodel M {\n    input x: [N, 128, 14, 14]\n    \
                input skip: [N, 64, 27, 27]\n    y = x |> up: Up(skip, 64)\n    output y\n}\n";
    let e = errors(spec);
    assert!(e.iter().any(|(code, m)| *code == "E0302" && m.contains("parameter `skip` of Up")), "{e:?}");
}

#[test]
fn llama_attention_groups_query_heads_over_key_value_heads_that_divide_them() {
    let errs = errors(&model("llama", "[N, 5, 24]", "LlamaAttention(6, 4)"));
    assert!(
        errs.iter().any(|(_, m)| m.contains("num_key_value_heads 4 must divide num_heads 6")),
        "{errs:?}"
    );
    // A head_dim apart from d / heads (as some Llamas have): 6 query heads of 8, 2 key-value heads.
    let c = compile(&model("llama", "[N, 5, 24]", "LlamaAttention(6, 2, head_dim=8)"));
    let params = parameters(&c);
    let expected = [
        ("b.q_proj.weight", vec![48, 24]),
        ("b.k_proj.weight", vec![16, 24]),
        ("b.v_proj.weight", vec![16, 24]),
        ("b.o_proj.weight", vec![24, 48]),
    ];
    let expected: Vec<(String, Vec<i64>)> =
        expected.iter().map(|(p, s)| (p.to_string(), s.clone())).collect();
    assert_eq!(params, expected);
    // Projections 5 * 24 * (48 + 16 + 16 + 48); the core 6 heads * 5 * 5 * (8 + 8).
    let s = c.summary(None).expect("summary");
    assert_eq!(s.macs, DimValue::Int(5 * 24 * 128 + 6 * 25 * 16));
}
