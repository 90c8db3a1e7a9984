//! The writer on small specs: each written text compiles to the same layers.

use super::*;

/// The graph of a spec that compiles.
fn graph_of(spec: &str) -> Graph {
    let compiled = crate::compile_source("t.wick", spec, &crate::Options::default());
    assert!(
        !compiled.diagnostics.has_errors(),
        "{}",
        compiled.render_diagnostics(crate::diag::RenderStyle::PLAIN)
    );
    compiled.graph.expect("a graph")
}

/// Compiles `spec`, clears what only an elaborated graph has, writes it.
fn write(spec: &str) -> (Graph, Written) {
    let mut graph = graph_of(spec);
    graph.groups.clear();
    graph.origins.clear();
    let written = write_spec(&graph, &WriteOptions::default()).expect("writable");
    (graph, written)
}

/// The layers of a spec as (path, op, output shapes).
fn layers(g: &Graph) -> Vec<(String, String, String)> {
    g.order
        .iter()
        .map(|id| {
            let n = g.node(*id);
            (n.path.clone(), n.kind.to_string(), format!("{:?}", n.outputs))
        })
        .collect()
}

fn round_trip(spec: &str) -> String {
    let (graph, written) = write(spec);
    let again = crate::compile_source("w.wick", &written.text, &crate::Options::default());
    assert!(
        !again.diagnostics.has_errors(),
        "{}\n{}",
        written.text,
        again.render_diagnostics(crate::diag::RenderStyle::PLAIN)
    );
    let g2 = again.graph.expect("a graph");
    assert_eq!(layers(&graph), layers(&g2), "{}", written.text);
    written.text
}

#[test]
fn a_residual_block_and_its_repeats_round_trip() {
    let text = round_trip(
        "dim N = 1
        block Res(x: [N, c, h, w], width: int) {
            y = x |> conv1: Conv2d(width, 3, padding=1) |> relu: ReLU |> conv2: Conv2d(c, 3, padding=1)
            return ReLU(y + x)
        }
        model M {
            input x: [N, 4, 8, 8]
            y = x |> stage: repeat 3 { Res(8) } |> other: [Res(2), Res(6)]
            output y
        }",
    );
    assert!(text.contains("stage: repeat 3 { ConvResidual(8) }"), "{text}");
    assert!(text.contains("other: [ConvResidual(2), ConvResidual(6)]"), "{text}");
    assert!(text.contains("block ConvResidual(x: [x0, x1, x2, x3], out_channels: int)"), "{text}");
}

#[test]
fn several_outputs_inputs_and_quoted_labels_round_trip() {
    let text = round_trip(
        "dim N = 2
        dim T = 5
        model M {
            input ids: [N, T] of i64
            input mem: [T, N, 16]
            e = ids |> embed: Embedding(10, 16) |> transpose(0, 1)
            out, h, c = e |> lstm: LSTM(16, num_layers=2)
            a = out |> \"attn-1\": MultiheadAttention(16, 2, key=mem, value=mem)
            s = split(a, 8, axis=2)
            z = concat([s[1], s[0]], axis=2) |> Linear(4)
            output z, h, c
        }",
    );
    assert!(
        text.contains(
            "lstm, h, c = ids |> embed: Embedding(10, 16) |> transpose(0, 1) |> LSTM(16, num_layers=2)"
        ),
        "{text}"
    );
    assert!(text.contains("\"attn-1\": MultiheadAttention(16, 2, key=mem, value=mem)"), "{text}");
}

#[test]
fn a_float_without_a_literal_is_an_error_naming_the_layer() {
    let mut graph = graph_of("dim N = 1\nmodel M { input x: [N, 4]\n output y = x |> act: LeakyReLU(0.1) }");
    let id = graph.order[1];
    graph.g[id.0].attrs.insert("negative_slope", crate::ops::AttrValue::Float(f64::NAN));
    let err = write_spec(&graph, &WriteOptions::default()).expect_err("NaN has no literal");
    assert!(
        matches!(&err, WriteError::Unwritable { layer, attr, .. } if layer == "act" && attr == "negative_slope"),
        "{err}"
    );
}

/// A long flat model and a deep repeat are written in time linear in their size: 20,000
/// layers in one scope, 2,000 blocks of one definition.
#[test]
fn large_graphs_are_written_quickly() {
    let flat = "dim N = 1\nmodel M { input x: [N, 4]\n y = x |> seq: repeat 10000 { (Linear(4) |> ReLU) }\n output y }";
    let deep = "dim N = 1\nblock B(x: [N, c], w: int) { return x |> fc: Linear(w) |> act: ReLU }\n\
                model M { input x: [N, 4]\n y = x |> seq: repeat 2000 { B(4) }\n output y }";
    for spec in [flat, deep] {
        let start = std::time::Instant::now();
        let (graph, written) = write(spec);
        let seconds = start.elapsed().as_secs_f64();
        assert!(written.text.contains("repeat"), "{}", &written.text[..200]);
        assert!(seconds < 20.0, "{} layers took {seconds:.1} s", graph.order.len());
    }
}

#[test]
fn frozen_layers_blocks_of_two_results_and_inputs_passed_through_round_trip() {
    let text = round_trip(
        "dim N = 3
        block Two(x: [N, c], w: int) {
            a = x |> fc: Linear(w)
            b = x |> gate: Linear(w) |> Sigmoid
            return [a, b]
        }
        model M {
            input x: [N, 4]
            p, q = x |> first: Two(8, frozen=true)
            r, s = p |> second: Two(5)
            y = r * s |> head: Linear(2, frozen=true)
            output y, q, x
            output again = y
        }",
    );
    assert!(text.contains("return [fc, sigmoid]"), "{text}");
    assert!(text.contains("first, q = x |> first: LinearBlock(8, true)"), "{text}");
    assert!(text.contains("head: Linear(2, frozen=true)"), "{text}");
    assert!(text.contains("frozen: bool"), "{text}");
    assert!(text.contains("output x = x") || text.contains("output x\n"), "{text}");
}

#[test]
fn inputs_and_outputs_whose_names_are_not_identifiers_are_renamed_and_reported() {
    let mut graph = graph_of("dim N = 1\nmodel M { input x: [N, 4]\n output y = x |> fc: Linear(3) }");
    graph.inputs[0].0 = "input.1".to_string();
    graph.outputs[0].0 = "output".to_string();
    let written = write_spec(&graph, &WriteOptions::default()).expect("writable");
    assert_eq!(
        written.io_renames,
        [("input.1".to_string(), "input_1".to_string()), ("output".to_string(), "output_2".to_string())]
    );
    let again = crate::compile_source("w.wick", &written.text, &crate::Options::default());
    assert!(!again.diagnostics.has_errors(), "{}", written.text);
}

/// Two layers with parameters at one path (which an importer might hand over) cannot both
/// keep it: the second moves, and its weights' keys are reported.
#[test]
fn a_second_owner_of_a_path_moves_and_is_reported() {
    let mut graph = graph_of(
        "dim N = 1\nmodel M { input x: [N, 4]\n output y = x |> fc: Linear(4) |> head: Linear(3, bias=false) }",
    );
    let head = graph.order[2];
    graph.g[head.0].path = "fc".to_string();
    let written = write_spec(&graph, &WriteOptions::default()).expect("writable");
    assert_eq!(written.renames, [("fc.weight".to_string(), "fc_.weight".to_string())]);
    let again = crate::compile_source("w.wick", &written.text, &crate::Options::default());
    assert!(!again.diagnostics.has_errors(), "{}", written.text);
}

/// A graph builder may leave an attribute with a default out of a node's attributes: it is
/// written as the default, that is, left out.
#[test]
fn attributes_left_out_by_a_builder_read_as_their_defaults() {
    let mut graph = graph_of(
        "dim N = 1\nmodel M { input x: [N, 3, 8, 8]\n output y = x |> conv: Conv2d(4, 3, stride=2) }",
    );
    let conv = graph.order[1];
    let mut attrs = crate::ops::Attrs::default();
    for name in ["out_channels", "kernel_size", "stride"] {
        attrs.insert(name, graph.node(conv).attrs.get(name).clone());
    }
    graph.g[conv.0].attrs = attrs;
    let written = write_spec(&graph, &WriteOptions::default()).expect("writable");
    assert!(written.text.contains("conv: Conv2d(4, 3, stride=2)"), "{}", written.text);
}
