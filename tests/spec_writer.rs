//! `wick::emit::write_spec` on the catalog: every spec, compiled, stripped of what only an
//! elaborated graph has (its groups and origins, as an imported graph has none), written and
//! compiled again, has the same parameters at the same paths, the same figures and the same
//! summary rows.

use wick::emit::{write_spec, WriteOptions, Written};
use wick::ir::graph::Graph;
use wick::report::{RowKind, Summary};
use wick::{compile_file, compile_source, Compiled, Options};

fn compiled(path: &str, opts: &Options) -> Compiled {
    let c = compile_file(path, opts).expect("readable spec");
    assert!(!c.diagnostics.has_errors(), "{path}: {}", c.render_diagnostics(wick::diag::RenderStyle::PLAIN));
    c
}

/// The graph of `c` as an importer would hand it over: no groups, no origins.
fn bare(c: &mut Compiled) -> Graph {
    let mut g = c.graph.take().expect("a graph");
    g.groups.clear();
    g.origins.clear();
    g
}

/// What a written spec must keep: parameters, totals, memory, ports and the layer rows.
fn figures(s: &Summary) -> String {
    let layers: Vec<String> = s
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Layer)
        .map(|r| {
            format!(
                "{} {} {:?} {} {} {} {:?} {} {:?}",
                r.path, r.op, r.output_shape, r.params, r.trainable, r.buffers, r.macs, r.frozen, r.tied_to
            )
        })
        .collect();
    format!(
        "params {} trainable {} frozen {} buffers {} shared {}\nmacs {:?}\nuncounted {:?}\nmemory {:?}\ninputs {:?}\noutputs {:?}\ndims {:?}\n{}",
        s.total_params,
        s.trainable_params,
        s.frozen_params,
        s.buffers,
        s.shared_params,
        s.macs,
        s.uncounted,
        s.memory,
        s.inputs,
        s.outputs,
        s.dims,
        layers.join("\n")
    )
}

/// Writes the spec at `path` and compiles the text; both compiles' summaries.
fn round_trip(path: &str, opts: &Options) -> (Written, Compiled, Compiled) {
    let mut original = compiled(path, opts);
    let graph = bare(&mut original);
    let written = write_spec(&graph, &WriteOptions::default()).unwrap_or_else(|e| panic!("{path}: {e}"));
    let again = compile_source("written.wick", &written.text, &Options::default());
    assert!(
        !again.diagnostics.has_errors(),
        "{path}:\n{}\n{}",
        written.text,
        again.render_diagnostics(wick::diag::RenderStyle::PLAIN)
    );
    original.graph = Some(graph);
    (written, original, again)
}

fn check(path: &str) -> Written {
    check_with(path, &Options::default())
}

/// [`check`] of the spec compiled with `opts`; the written spec is compiled as it is (its dims
/// hold the values the graph had).
fn check_with(path: &str, opts: &Options) -> Written {
    let (written, original, again) = round_trip(path, opts);
    let (a, b) = (original.graph.as_ref().expect("graph"), again.graph.as_ref().expect("graph"));
    // Every parameter and buffer with its shape, kind and how it starts (`init=` included).
    let keys = |g: &Graph| {
        let mut k: Vec<String> = g
            .order
            .iter()
            .flat_map(|id| {
                let n = g.node(*id);
                n.params
                    .iter()
                    .map(move |p| format!("{} {:?} {:?} {}", p.path_under(&n.path), p.shape, p.kind, p.init))
            })
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(a), keys(b), "{path}: parameter keys\n{}", written.text);
    assert!(written.renames.is_empty(), "{path}: {:?}", written.renames);
    let (sa, sb) = (original.summary(None).expect("summary"), again.summary(None).expect("summary"));
    let (fa, fb) = (figures(&sa), figures(&sb));
    if fa != fb {
        let diff: Vec<String> = fa
            .lines()
            .zip(fb.lines())
            .filter(|(x, y)| x != y)
            .take(5)
            .map(|(x, y)| format!("- {x}\n+ {y}"))
            .collect();
        panic!("{path}: summaries differ\n{}\n{}", diff.join("\n"), written.text);
    }
    written
}

/// Every `.wick` spec of the catalog.
fn catalog() -> Vec<String> {
    let mut specs: Vec<String> = std::fs::read_dir("specs")
        .expect("specs folder")
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".wick") || p.ends_with(".yaml"))
        .collect();
    specs.sort();
    specs
}

#[test]
fn every_catalog_spec_round_trips_through_the_writer() {
    let mut failures = Vec::new();
    for path in catalog() {
        if let Err(e) = std::panic::catch_unwind(|| check(&path)) {
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
            failures.push(format!("{path}: {}", msg.chars().take(3000).collect::<String>()));
        }
    }
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n\n"));
}

/// Symbolic dims stay symbols: a batch without a value is `dim N`, and the MACs stay a
/// multiple of it.
#[test]
fn symbolic_dims_stay_symbolic() {
    for (path, bind) in [
        ("specs/resnet18.wick", vec![("H", 224), ("W", 224)]),
        ("specs/transformer_default.wick", vec![("S", 10), ("T", 20)]),
    ] {
        let opts = Options {
            symbolic: true,
            bind: bind.iter().map(|(d, v)| (d.to_string(), *v)).collect(),
            ..Options::default()
        };
        let text = check_with(path, &opts).text;
        assert!(text.starts_with("dim N\n") || text.contains("\ndim N\n"), "{text}");
        let again = compile_source("w.wick", &text, &Options::default());
        let macs = again.summary(None).expect("compiles").macs;
        assert!(format!("{macs:?}").contains('N'), "{path}: {macs:?}");
    }
}

#[test]
fn the_catalog_holds_the_specs_the_writer_is_held_to() {
    let specs = catalog();
    for name in [
        "resnet18.wick",
        "resnet50.wick",
        "vgg16.wick",
        "mobilenet_v2.wick",
        "gpt2_small.wick",
        "transformer_default.wick",
        "char_lstm.wick",
        "gru_seq2seq.wick",
        "dcgan_generator.wick",
    ] {
        assert!(specs.contains(&format!("specs/{name}")), "{name} is no longer in the catalog");
    }
}

/// ResNet-18's stages: each a list of two calls of blocks written once, the first stage a
/// `repeat` of one.
#[test]
fn resnet18_is_written_with_blocks_and_repeats() {
    let written = check("specs/resnet18.wick");
    let text = &written.text;
    assert!(text.contains("layer1: repeat 2 { ConvResidual(64) }"), "{text}");
    assert!(text.contains("layer2: [ConvResidualDownsample(128), ConvResidual(128)]"), "{text}");
    assert_eq!(text.matches("block ").count(), 2, "{text}");
    insta::assert_snapshot!("resnet18_written", text);
}

/// The DCGAN generator's one `nn.Sequential` is one list keyed `main.0` to `main.12`.
#[test]
fn dcgan_generator_is_one_list() {
    let text = check("specs/dcgan_generator.wick").text;
    assert!(text.contains("main: [") && !text.contains("block "), "{text}");
}

/// A layer whose path is also the prefix of other layers' cannot keep it (a label names one
/// thing): it moves to a sibling path, and the move is reported for its weights.
#[test]
fn a_path_that_is_also_a_prefix_moves_and_is_reported() {
    let spec =
        "dim N = 1\nmodel M { input x: [N, 4]\n y = x |> fc: Linear(4)\n output z = y |> head: Linear(2) }";
    let mut c = compile_source("m.wick", spec, &Options::default());
    let mut graph = bare(&mut c);
    let ids = graph.order.clone();
    // An importer may hand over such paths: `fc` and `fc.head`.
    graph.g[ids[2].0].path = "fc.head".to_string();
    let written = write_spec(&graph, &WriteOptions::default()).expect("writable");
    assert_eq!(
        written.renames,
        [
            ("fc.weight".to_string(), "fc_.weight".to_string()),
            ("fc.bias".to_string(), "fc_.bias".to_string())
        ]
    );
    let again = compile_source("w.wick", &written.text, &Options::default());
    assert!(!again.diagnostics.has_errors(), "{}", written.text);
    let keys: Vec<String> = again.graph.expect("graph").parameters().into_iter().map(|(p, _, _)| p).collect();
    assert_eq!(keys, ["fc_.weight", "fc_.bias", "fc.head.weight", "fc.head.bias"], "{}", written.text);
}

/// The same weights give the same outputs, bit for bit, through the original and the written
/// spec.
#[cfg(feature = "lower")]
mod lowered {
    use super::*;
    use candle_core::{DType, Device, Tensor};
    use wick::Model;

    fn same_outputs(path: &str, bind: &[(&str, i64)]) {
        let opts =
            Options { bind: bind.iter().map(|(d, v)| (d.to_string(), *v)).collect(), ..Options::default() };
        let mut c = compile_file(path, &opts).expect("readable");
        let graph = bare(&mut c);
        let written = write_spec(&graph, &WriteOptions::default()).expect("writable");
        let original = Model::from_file(path, &opts)
            .expect("compiles")
            .build_seeded(&Device::Cpu, DType::F32, 7)
            .expect("lowers");
        // The written spec's dims hold the values the graph was compiled with.
        let copy = Model::from_source("written.wick", &written.text, &Options::default())
            .expect("compiles")
            .build_seeded(&Device::Cpu, DType::F32, 8)
            .expect("lowers");
        let weights: std::collections::HashMap<String, Tensor> =
            original.params().state_dict().into_iter().collect();
        let report = copy.params().load_map(&weights, false).expect("every key loads");
        assert_eq!(report.loaded, weights.len(), "{path}");
        let inputs: Vec<Tensor> = original
            .inputs()
            .iter()
            .map(|d| match d.dtype {
                // Token ids: a few small ones, inside any vocabulary.
                wick::ir::tensor::DType::I64 => {
                    let n: usize = d.dims.iter().product();
                    let ids: Vec<i64> = (0..n as i64).map(|i| (i * 7) % 5).collect();
                    Tensor::from_vec(ids, d.dims.as_slice(), &Device::Cpu).expect("ids")
                }
                _ => Tensor::randn(0f32, 1.0, d.dims.as_slice(), &Device::Cpu).expect("random input"),
            })
            .collect();
        let (a, b) =
            (original.forward(&inputs, false).expect("runs"), copy.forward(&inputs, false).expect("runs"));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(x.len(), y.len(), "{path}");
            assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "{path}: outputs differ");
            assert!(x.iter().any(|v| *v != 0.0), "{path}: a zero output proves nothing");
        }
    }

    #[test]
    fn resnet18_gives_bit_identical_outputs() {
        same_outputs("specs/resnet18.wick", &[("H", 40), ("W", 56), ("N", 2)]);
    }

    #[test]
    fn transformer_default_gives_bit_identical_outputs() {
        same_outputs("specs/transformer_default.wick", &[("N", 2), ("S", 5), ("T", 4)]);
    }

    #[test]
    fn mobilenet_v2_gives_bit_identical_outputs() {
        same_outputs("specs/mobilenet_v2.wick", &[("H", 32), ("W", 32)]);
    }

    #[test]
    fn char_lstm_gives_bit_identical_outputs() {
        same_outputs("specs/char_lstm.wick", &[("N", 3), ("T", 5)]);
    }
}
