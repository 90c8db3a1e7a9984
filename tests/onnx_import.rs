//! ONNX import: wick's own exports of catalog specs read back give the spec's figures (params,
//! MACs, memory, the layer rows); a foreign file made by torch.onnx gives the counts worked out
//! by hand; files that are truncated, corrupt or lie about themselves are errors naming the
//! file and the problem, never a panic; and the CLI reads `.onnx` files as it reads specs.

use std::path::PathBuf;
use std::process::Command;

use prost::Message;

use wick::ir::graph::Graph;
use wick::onnx::import::{self, ImportError};
use wick::onnx::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, AttributeType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use wick::onnx::{self, Initializer, Weights};
use wick::report::{DimValue, RowKind, Summary};
use wick::Options;

fn opts(bind: &[(&str, i64)]) -> Options {
    Options { bind: bind.iter().map(|(k, v)| (k.to_string(), *v)).collect(), ..Options::default() }
}

/// Every parameter and buffer of `graph` as zeros (the numbers read back do not depend on them).
fn zero_weights(graph: &Graph) -> Weights {
    let bindings = graph.bindings();
    let mut out = Weights::new();
    for (key, shape, _) in graph.parameters() {
        let dims: Vec<i64> = shape.iter().map(|d| d.eval(&bindings).unwrap()).collect();
        let n = dims.iter().product::<i64>() as usize;
        out.insert(key, Initializer::F32 { dims, data: vec![0.0; n] });
    }
    out
}

/// The spec's compile and its export's bytes, at `bind`.
fn exported(name: &str, text: &str, bind: &[(&str, i64)]) -> (wick::Compiled, Vec<u8>) {
    let spec = wick::compile_source(name, text, &opts(bind));
    let graph = spec.graph.as_ref().unwrap();
    let proto = onnx::export(graph, &zero_weights(graph), onnx::DEFAULT_OPSET).unwrap();
    (spec, proto.encode_to_vec())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-onnx-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The imported file's summary, through `compile_file` as the CLI reads it.
fn imported_summary(file: &str, bytes: &[u8], bind: &[(&str, i64)]) -> Summary {
    let path = scratch(file);
    std::fs::write(&path, bytes).unwrap();
    let c = wick::compile_file(path.to_str().unwrap(), &opts(bind)).unwrap();
    c.summary(None).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A layer row's path, op, shape, params, buffers and MACs.
type LayerRow = (String, String, Option<Vec<DimValue>>, u64, u64, Option<DimValue>);

/// Layer rows without the layers an eval-mode file has no node for (dropout).
fn layer_rows(s: &Summary) -> Vec<LayerRow> {
    s.rows
        .iter()
        .filter(|r| r.kind == RowKind::Layer && r.op != "Dropout")
        .map(|r| (r.path.clone(), r.op.clone(), r.output_shape.clone(), r.params, r.buffers, r.macs.clone()))
        .collect()
}

/// The bytes autograd would keep for the dropout layers' outputs: the spec counts them in its
/// training estimate, the eval-mode file has no such layers.
fn dropout_bytes(s: &Summary) -> u64 {
    s.rows
        .iter()
        .filter(|r| r.op == "Dropout")
        .map(|r| {
            let shape = r.output_shape.as_ref().unwrap();
            4 * shape
                .iter()
                .map(|d| if let DimValue::Int(v) = d { *v as u64 } else { panic!() })
                .product::<u64>()
        })
        .sum()
}

/// Read back, the export of `spec` at `bind` has the spec's params, MACs, memory and rows.
fn round_trip(spec: &str, text: &str, bind: &[(&str, i64)]) {
    let (compiled, bytes) = exported(spec, text, bind);
    let ours = compiled.summary(None).unwrap();
    let theirs = imported_summary(&format!("{spec}.onnx"), &bytes, &[]);
    assert_eq!(theirs.total_params, ours.total_params, "{spec}: params");
    assert_eq!(theirs.shared_params, ours.shared_params, "{spec}: shared params");
    assert_eq!(theirs.buffers, ours.buffers, "{spec}: buffers");
    assert_eq!(theirs.macs, ours.macs, "{spec}: MACs");
    assert!(theirs.uncounted.is_empty(), "{spec}: uncounted {:?}", theirs.uncounted);
    assert_eq!(theirs.memory.params_bytes, ours.memory.params_bytes, "{spec}: parameter memory");
    assert_eq!(theirs.memory.peak_activation_bytes, ours.memory.peak_activation_bytes, "{spec}: peak");
    assert_eq!(theirs.memory.inference_bytes, ours.memory.inference_bytes, "{spec}: inference memory");
    assert_eq!(
        theirs.memory.saved_activation_bytes,
        ours.memory.saved_activation_bytes.map(|b| b - dropout_bytes(&ours)),
        "{spec}: saved activations"
    );
    assert_eq!(layer_rows(&theirs), layer_rows(&ours), "{spec}: rows");
}

fn catalog(spec: &str) -> String {
    std::fs::read_to_string(format!("specs/{spec}.wick")).unwrap()
}

#[test]
fn resnet18_reads_back_with_the_specs_figures() {
    round_trip("resnet18", &catalog("resnet18"), &[("N", 2), ("H", 64), ("W", 48)]);
}

#[test]
fn transformer_default_reads_back_with_the_specs_figures() {
    round_trip("transformer_default", &catalog("transformer_default"), &[("N", 2), ("S", 3), ("T", 4)]);
}

/// GPT-2 small's structure (causal pre-norm attention, GELU's tanh form, learned positions, the
/// head tied to the token embedding) at a vocabulary of 1,000 and two blocks, so the test moves
/// megabytes rather than half a gigabyte; the full model reads back the same way.
#[test]
fn gpt2_small_reads_back_with_the_specs_figures() {
    let text = catalog("gpt2_small")
        .replace("vocab_size: int = 50257", "vocab_size: int = 1000")
        .replace("n_positions: int = 1024", "n_positions: int = 64")
        .replace("n_layer: int = 12", "n_layer: int = 2");
    assert!(text.contains("vocab_size: int = 1000") && text.contains("n_layer: int = 2"));
    round_trip("gpt2_small", &text, &[("N", 2), ("L", 8)]);
}

/// StyleGAN's layers and the VAE's `randn_like` come back as their ops from the compositions
/// export writes for them (EqualLinear's gains as Gemm's alpha and beta, the unfused modulated
/// convolution, the minibatch statistic, the expanded constant, the per-channel bias,
/// `RandomNormalLike`), with the
/// batch a dim of the file in the last case.
#[test]
fn stylegan_and_the_vae_read_back_with_the_specs_figures() {
    round_trip("stylegan_mapping", &catalog("stylegan_mapping"), &[("N", 2)]);
    round_trip("stylegan_digits", &catalog("stylegan_digits"), &[("N", 6)]);
    // The Generator alone (the file's last model is the discriminator): its per-channel `Bias`.
    let text = catalog("stylegan_digits");
    let generator = &text[..text.find("model Discriminator").unwrap()];
    round_trip("stylegan_digits_generator", generator, &[("N", 2)]);
    round_trip("vae", &catalog("vae"), &[("N", 2)]);
    let layers = "dim N\nmodel M { input z: [N, 6]\n input a: [N, 3, 7, 5]\n \
                  w = z |> fc: EqualLinear(5, lr_mul=0.1) |> nb: EqualLinear(5, bias=false)\n \
                  x = w |> c: ConstantInput(3, size=5) |> m: ModulatedConv2d(w, 4, 3) |> n: NoiseInjection\n \
                  output y = x |> rgb: ModulatedConv2d(w, 2, 1, demodulate=false) |> MinibatchStd(2)\n \
                  output d = a |> e: EqualConv2d(4, 3, stride=2, padding=1) |> f: EqualConv2d(2, 1, bias=false)\n \
                  output r = randn_like(w) }";
    round_trip("stylegan_layers", layers, &[]);
}

#[test]
fn the_weights_come_back_under_the_graphs_parameter_paths() {
    let text = "dim N = 2\nmodel M { input x: [N, 3, 8, 8]\n output y = x |> c: Conv2d(4, 3) |> bn: BatchNorm2d |> Flatten |> fc: Linear(5) }";
    let spec = wick::compile_source("m.wick", text, &Options::default());
    let graph = spec.graph.as_ref().unwrap();
    let mut weights = zero_weights(graph);
    if let Some(Initializer::F32 { data, .. }) = weights.get_mut("bn.running_var") {
        data.iter_mut().enumerate().for_each(|(k, v)| *v = 1.0 + k as f32);
    }
    let bytes = onnx::export(graph, &weights, 17).unwrap().encode_to_vec();
    let read = import::read(&bytes, "m.onnx", &Options::default()).unwrap();
    let keys: Vec<String> = read.graph.parameters().into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(
        keys,
        [
            "c.weight",
            "c.bias",
            "bn.weight",
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "fc.weight",
            "fc.bias"
        ]
    );
    assert_eq!(
        read.weights.keys().cloned().collect::<std::collections::BTreeSet<_>>(),
        keys.iter().cloned().collect()
    );
    assert_eq!(read.weights["bn.running_var"], weights["bn.running_var"]);
    assert!(read.diagnostics.items.is_empty());
}

/// A dim left symbolic is a named dim of the file, which the import keeps symbolic and
/// `--bind` gives a value.
#[test]
fn named_dims_stay_symbolic_and_bind() {
    let text = "dim N\nmodel M { input x: [N, 3, 8, 8]\n output y = x |> c: Conv2d(4, 3) |> Flatten |> fc: Linear(5) }";
    let spec = wick::compile_source("m.wick", text, &Options::default());
    let bytes = onnx::export(
        spec.graph.as_ref().unwrap(),
        &zero_weights(&wick::compile_source("m.wick", text, &opts(&[("N", 1)])).graph.unwrap()),
        17,
    )
    .unwrap()
    .encode_to_vec();
    let free = imported_summary("sym.onnx", &bytes, &[]);
    assert_eq!(free.dims, vec![("N".to_string(), None)]);
    // conv 4 x 6 x 6 outputs of 27 MACs each, fc 144 x 5, per sample.
    assert_eq!(free.macs, DimValue::Sym("4608*N".into()));
    assert_eq!(free.macs, spec.summary(None).unwrap().macs);
    let bound = imported_summary("sym.onnx", &bytes, &[("N", 8)]);
    let at8 = wick::compile_source("m.wick", text, &opts(&[("N", 8)])).summary(None).unwrap();
    assert_eq!(bound.macs, at8.macs);
    assert_eq!(bound.memory.inference_bytes, at8.memory.inference_bytes);
}

/// torch.onnx's export of a small CNN (scripts/onnx-fixture.py): the figures below are worked
/// out by hand from the module's definition, at a batch of 4.
#[test]
fn a_torch_onnx_export_has_the_counts_worked_out_by_hand() {
    let c = wick::compile_file("tests/fixtures/onnx/small_cnn.onnx", &opts(&[("batch_size", 4)])).unwrap();
    let s = c.summary(None).unwrap();
    // conv1 8x3x3x3 (no bias); bn1 weight and bias 8 + 8; conv2 16x8x3x3 + 16; fc 10x16 + 10.
    let (conv1, bn1, conv2, fc) = (8 * 3 * 3 * 3, 8 + 8, 16 * 8 * 3 * 3 + 16, 10 * 16 + 10);
    assert_eq!(s.total_params, conv1 + bn1 + conv2 + fc);
    assert_eq!(s.buffers, 8 + 8);
    // Per sample: conv1 at 16x16 x 8 channels, 27 each; conv2 at 8x8 x 16 channels, 72 each; fc 160.
    let per_sample = 16 * 16 * 8 * 27 + 8 * 8 * 16 * 72 + 160;
    assert_eq!(s.macs, DimValue::Int(4 * per_sample));
    let rows: Vec<(&str, &str)> = s.rows.iter().map(|r| (r.path.as_str(), r.op.as_str())).collect();
    assert_eq!(
        rows,
        [
            ("conv1", "Conv2d"),
            ("bn1", "BatchNorm2d"),
            ("relu", "ReLU"),
            ("conv2", "Conv2d"),
            ("relu_1", "ReLU"),
            ("pool", "AdaptiveAvgPool2d"),
            ("flatten", "Flatten"),
            ("fc", "Linear")
        ]
    );
    assert_eq!(s.outputs[0].shape, vec![DimValue::Int(4), DimValue::Int(10)]);
}

// Hand-built files: a model of one graph, nodes by (op, inputs, outputs).

fn tensor_type(dims: &[Result<i64, &str>]) -> Option<TypeProto> {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Ok(v) => dimension::Value::DimValue(*v),
                Err(n) => dimension::Value::DimParam(n.to_string()),
            }),
            denotation: String::new(),
        })
        .collect();
    let t = type_proto::Tensor { elem_type: 1, shape: Some(TensorShapeProto { dim }) };
    Some(TypeProto { value: Some(type_proto::Value::TensorType(t)), denotation: String::new() })
}

fn value(name: &str, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    ValueInfoProto { name: name.into(), r#type: tensor_type(dims), doc_string: String::new() }
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..NodeProto::default()
    }
}

fn weight(name: &str, dims: &[i64]) -> TensorProto {
    let n = dims.iter().product::<i64>() as usize;
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        raw_data: vec![0; 4 * n],
        ..TensorProto::default()
    }
}

fn model(graph: GraphProto) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        graph: Some(graph),
        ..ModelProto::default()
    }
    .encode_to_vec()
}

/// `x [N, 4] -> fc (Gemm) -> TopK-like unknown op -> y`, the unknown op's output declared
/// when `declare` is set.
fn with_unknown_op(declare: bool) -> Vec<u8> {
    let mut fc = node("Gemm", "fc", &["x", "fc.weight", "fc.bias"], &["h"]);
    fc.attribute.push(AttributeProto {
        name: "transB".into(),
        r#type: AttributeType::Int as i32,
        i: 1,
        ..AttributeProto::default()
    });
    let mut g = GraphProto {
        node: vec![fc, node("Mystery", "odd", &["h"], &["m"]), node("Relu", "act", &["m"], &["y"])],
        initializer: vec![weight("fc.weight", &[3, 4]), weight("fc.bias", &[3])],
        input: vec![value("x", &[Err("N"), Ok(4)])],
        output: vec![value("y", &[Err("N"), Ok(3)])],
        ..GraphProto::default()
    };
    if declare {
        g.value_info.push(value("m", &[Err("N"), Ok(3)]));
    }
    model(g)
}

#[test]
fn an_unknown_operator_is_listed_uncounted_with_its_declared_type() {
    let s = imported_summary("unknown.onnx", &with_unknown_op(true), &[("N", 2)]);
    assert_eq!(s.uncounted, ["Mystery"]);
    let odd = s.rows.iter().find(|r| r.path == "odd").unwrap();
    assert_eq!((odd.op.as_str(), odd.macs.clone()), ("Mystery", None));
    assert_eq!(s.total_params, 15);
    assert_eq!(s.outputs[0].shape, vec![DimValue::Int(2), DimValue::Int(3)]);
}

#[test]
fn an_unknown_operator_without_a_type_stops_the_summary_with_an_error_naming_it() {
    let path = scratch("untyped.onnx");
    std::fs::write(&path, with_unknown_op(false)).unwrap();
    let c = wick::compile_file(path.to_str().unwrap(), &Options::default()).unwrap();
    let text = c.render_diagnostics(wick::diag::RenderStyle::PLAIN);
    assert!(text.contains("node `odd` (Mystery)") && text.contains("untyped.onnx"), "{text}");
    let partial = c.partial_summary(None).unwrap();
    assert!(partial.truncated && !partial.complete);
    assert_eq!(partial.rows.last().map(|r| r.path.as_str()), Some("odd"));
}

fn read_err(bytes: &[u8]) -> String {
    match import::read(bytes, "bad.onnx", &Options::default()) {
        Err(e @ ImportError::Invalid { .. }) => e.to_string(),
        Ok(_) => panic!("expected an invalid file"),
    }
}

fn small_graph() -> GraphProto {
    let mut fc = node("Gemm", "fc", &["x", "fc.weight"], &["y"]);
    fc.attribute.push(AttributeProto {
        name: "transB".into(),
        r#type: AttributeType::Int as i32,
        i: 1,
        ..AttributeProto::default()
    });
    GraphProto {
        node: vec![fc],
        initializer: vec![weight("fc.weight", &[3, 4])],
        input: vec![value("x", &[Ok(2), Ok(4)])],
        output: vec![value("y", &[Ok(2), Ok(3)])],
        ..GraphProto::default()
    }
}

#[test]
fn files_that_lie_are_errors_naming_the_file_and_the_problem() {
    let ok = model(small_graph());
    assert!(import::read(&ok, "ok.onnx", &Options::default()).is_ok());
    let e = read_err(&ok[..ok.len() / 2]);
    assert!(e.contains("`bad.onnx`") && e.contains("not an ONNX model"), "{e}");
    assert!(read_err(&[]).contains("empty"));

    let mut g = small_graph();
    g.initializer[0].raw_data.truncate(44);
    let e = read_err(&model(g));
    assert!(e.contains("`fc.weight`") && e.contains("hold 12 values, but the tensor has 11"), "{e}");

    let mut g = small_graph();
    g.initializer[0].dims = vec![1 << 40, 1 << 40, 1 << 40];
    assert!(read_err(&model(g)).contains("overflow"));

    let mut g = small_graph();
    g.initializer[0].dims = vec![3, -4];
    assert!(read_err(&model(g)).contains("negative dim"));

    let mut g = small_graph();
    g.node[0].input[0] = "ghost".into();
    let e = read_err(&model(g));
    assert!(e.contains("reads tensor `ghost`, which nothing makes"), "{e}");

    let mut g = small_graph();
    g.node.push(node("Relu", "a", &["c"], &["b"]));
    g.node.push(node("Relu", "c", &["b"], &["c"]));
    assert!(read_err(&model(g)).contains("cycle"));

    let mut g = small_graph();
    g.node.push(node("Relu", "again", &["x"], &["y"]));
    assert!(read_err(&model(g)).contains("tensor `y`"));

    let mut g = small_graph();
    g.initializer.push(weight("fc.weight", &[3, 4]));
    assert!(read_err(&model(g)).contains("two initializers are named `fc.weight`"));

    let mut g = small_graph();
    g.initializer[0].data_location = 1;
    g.initializer[0].raw_data.clear();
    assert!(read_err(&model(g)).contains("its values are external, but it names no location"));

    let e = read_err(&model(GraphProto { input: vec![value("x", &[Ok(-3)])], ..small_graph() }));
    assert!(e.contains("graph input `x`") && e.contains("size -3"), "{e}");
}

/// Whether `bytes` read as a model; what was read is checked and counted as a spec's graph is.
fn read_and_count(bytes: &[u8], name: &str) -> bool {
    match import::read(bytes, name, &Options::default()) {
        Ok(imported) => {
            let a = wick::check::analyze(&imported.graph, &imported.graph.bindings());
            let _ = wick::report::summarize(&imported.graph, &a, None);
            true
        }
        Err(_) => false,
    }
}

/// Thousands of mutations of a small exported model (bytes changed, dropped, repeated; a
/// fixed seed, so every run reads the same files): each reads or is refused, none panics.
#[test]
fn mutated_files_never_panic() {
    let text = "dim N = 2\nmodel M { input x: [N, 3, 6, 6]\n output y = x |> c: Conv2d(4, 3) |> bn: BatchNorm2d |> ReLU |> Flatten |> fc: Linear(5) |> GELU(approximate=\"tanh\") }";
    let (_, bytes) = exported("m.wick", text, &[]);
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut read, mut refused) = (0, 0);
    for _ in 0..3000 {
        let mut m = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % m.len() as u64) as usize;
            match next() % 4 {
                0 => m[at] = next() as u8,
                1 => m[at] ^= 1 << (next() % 8),
                2 => m.truncate(at),
                _ => {
                    let end = (at + 1 + (next() % 16) as usize).min(m.len());
                    let piece = m[at..end].to_vec();
                    m.splice(at..at, piece);
                }
            }
            if m.is_empty() {
                break;
            }
        }
        if read_and_count(&m, "fuzz.onnx") {
            read += 1;
        } else {
            refused += 1;
        }
    }
    assert!(read > 0 && refused > 0, "read {read}, refused {refused}");
}

fn wick(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_wick")).args(args).env("RUST_BACKTRACE", "1").output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn the_cli_summarises_checks_and_draws_an_onnx_file() {
    let file = "tests/fixtures/onnx/small_cnn.onnx";
    let (code, table, err) = wick(&["compile", file, "--summary", "--bind", "batch_size=4"]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("conv1") && table.contains("BatchNorm2d") && table.contains("516,736"), "{table}");
    let (code, json, _) = wick(&["compile", file, "--summary", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["total_params"], 1570);
    let (code, csv, _) = wick(&["compile", file, "--summary", "--format", "csv"]);
    assert!(code == 0 && csv.lines().any(|l| l.starts_with("fc,Linear")), "{csv}");
    let (code, out, err) = wick(&["check", file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1,570 parameters"), "{out}");
    let (code, dot, _) = wick(&["graph", file]);
    assert!(code == 0 && dot.starts_with("digraph") && dot.contains("conv2"), "{dot}");
}

#[test]
fn the_cli_refuses_a_corrupt_onnx_file_naming_it() {
    let bytes = std::fs::read("tests/fixtures/onnx/small_cnn.onnx").unwrap();
    let path = scratch("corrupt.onnx");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let p = path.to_str().unwrap();
    for args in [vec!["compile", p, "--summary"], vec!["check", p], vec!["graph", p]] {
        let (code, _, err) = wick(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains("corrupt.onnx") && !err.contains("panicked"), "{args:?}: {err}");
    }
    let (code, _, err) =
        wick(&["compile", "tests/fixtures/onnx/small_cnn.onnx", "--summary", "--bind", "T=3"]);
    assert_ne!(code, 0);
    assert!(err.contains("--bind T=") && err.contains("batch_size"), "{err}");
}

#[test]
fn char_llama_reads_back_with_the_specs_figures() {
    // RMSNorm, rotary embedding and grouped-query scaled dot-product attention, recomposed.
    round_trip("char_llama", &catalog("char_llama"), &[("N", 2), ("T", 8)]);
}

#[test]
fn recurrent_specs_read_back_with_the_specs_figures() {
    round_trip("char_lstm", &catalog("char_lstm"), &[("N", 2), ("T", 7)]);
    round_trip("gru_seq2seq", &catalog("gru_seq2seq"), &[("N", 2), ("S", 5), ("T", 4)]);
}

#[test]
fn dcgan_generator_reads_back_with_the_specs_figures() {
    round_trip("dcgan_generator", &catalog("dcgan_generator"), &[("N", 2)]);
}

/// Ops the catalog specs above do not reach, one small model each.
#[test]
fn further_layers_read_back_as_themselves() {
    let cases = [
        ("vit_parts", "model M { input x: [2, 4, 6]\\n output y = x |> cls: ClassToken(batch_first=true) |> pos: PositionParameter(5, batch_first=true) |> SelectToken(batch_first=true) |> head: Linear(3) }"),
        ("zeros_like", "model M { input ids: [2, 3] of i64\\n output y = ids |> zeros_like |> t: Embedding(2, 4)\\n output z = ids |> e: Embedding(5, 4) |> zeros_like }"),
        ("cross_attention", "model M { input q: [2, 3, 8]\\n input m: [2, 5, 8]\\n output y = q |> att: MultiheadAttention(8, 2, key=m, batch_first=true) |> SiLU }"),
        ("activations", "model M { input x: [2, 5, 6]\\n output y = x |> r: RMSNorm(eps=0.01) |> l: LayerNorm(elementwise_affine=false) |> GELU |> Hardswish |> LeakyReLU(0.2) |> Hardsigmoid |> Softmax }"),
        // A permute that swaps two axes reads back as `transpose` (the same op) unless its node is
        // named `permute`: this one moves three.
        ("gru", "model M { input x: [5, 2, 3]\\n input h: [4, 2, 6]\\n out, hn = x |> g: GRU(6, num_layers=2, bidirectional=true, h0=h)\\n output y = out\\n output z = hn }"),
        ("lstm", "model M { input x: [2, 5, 3]\\n input h: [2, 2, 4]\\n input c: [2, 2, 4]\\n out, hn, cn = x |> l: LSTM(4, num_layers=2, batch_first=true, h0=h, c0=c)\\n output y = out\\n output z = hn\\n output w = cn }"),
        ("rnn", "model M { input x: [2, 5, 3]\\n out, hn = x |> r: RNN(4, nonlinearity=\"relu\", bidirectional=true, batch_first=true, bias=false)\\n output y = out\\n output z = hn }"),
        ("shapes", "model M { input x: [2, 6, 5]\\n a = x |> permute([2, 0, 1]) |> transpose(0, 1)\\n p0, p1, p2 = split(a, 2, axis=2)\\n output y = concat([p1, p0, p2], axis=2) |> clamp(min=-0.5, max=0.8)\\n output z = slice(x, axis=2, start=1, end=4) |> mean(axis=2, keepdim=true) |> LogSoftmax }"),
    ];
    for (name, text) in cases {
        round_trip(name, &text.replace("\\n", "\n"), &[]);
    }
}

/// Mutations of the messages rather than the bytes (attributes, dims with data to match,
/// operator types, inputs rewired, nodes dropped), so the files decode and reach the reading of
/// each layer and composition: each reads or is refused, none panics.
#[test]
fn mutated_graphs_never_panic() {
    let text = "dim N = 2\nmodel M { input x: [N, 5, 8]\n input q: [N, 4, 5, 6]\n \
                a = x |> l: LayerNorm |> att: MultiheadAttention(8, 2, batch_first=true, causal=true) |> f: Linear(8) |> GELU(approximate=\"tanh\") |> r: RMSNorm\n \
                output y = a |> pos: LearnedPositions(9, batch_first=true) |> s: SiLU\n \
                output z = ScaledDotProductAttention(q |> RotaryEmbedding, q, q, causal=true) |> transpose(1, 2) }";
    let (_, bytes) = exported("m.wick", text, &[]);
    let original = ModelProto::decode(bytes.as_slice()).unwrap();
    let ops = [
        "Add",
        "MatMul",
        "Reshape",
        "Transpose",
        "Softmax",
        "Split",
        "Gather",
        "Conv",
        "Gemm",
        "Slice",
        "Concat",
        "LayerNormalization",
        "Mystery",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n.max(1)
    };
    let (mut read, mut refused) = (0, 0);
    for _ in 0..2000 {
        let mut m = original.clone();
        let g = m.graph.as_mut().unwrap();
        let names: Vec<String> = g
            .node
            .iter()
            .flat_map(|n| n.output.clone())
            .chain(g.initializer.iter().map(|t| t.name.clone()))
            .collect();
        for _ in 0..1 + next(3) {
            let k = next(g.node.len() as u64) as usize;
            match next(6) {
                0 => {
                    if let Some(a) = g.node[k].attribute.first_mut() {
                        a.i = next(7) as i64 - 2;
                        a.f = next(5) as f32 - 1.0;
                        a.ints.iter_mut().for_each(|v| *v = next(6) as i64 - 1);
                    }
                }
                1 => {
                    let t = next(g.initializer.len() as u64) as usize;
                    let init = &mut g.initializer[t];
                    let dims: Vec<i64> = (0..next(4)).map(|_| next(5) as i64).collect();
                    let n = dims.iter().product::<i64>() as usize;
                    let width = if init.data_type == 7 { 8 } else { 4 };
                    init.dims = dims;
                    init.raw_data = vec![0x3f; n * width];
                }
                2 => g.node[k].op_type = ops[next(ops.len() as u64) as usize].to_string(),
                3 => {
                    if !g.node[k].input.is_empty() {
                        let i = next(g.node[k].input.len() as u64) as usize;
                        g.node[k].input[i] = names[next(names.len() as u64) as usize].clone();
                    }
                }
                4 => {
                    g.node.remove(k);
                }
                _ => g.node[k].name = g.node[next(g.node.len() as u64) as usize].name.clone(),
            }
            if g.node.is_empty() {
                break;
            }
        }
        if read_and_count(&m.encode_to_vec(), "mutant.onnx") {
            read += 1;
        } else {
            refused += 1;
        }
    }
    assert!(read > 0 && refused > 0, "read {read}, refused {refused}");
}

/// Every parameter and buffer of `graph`, each value a different bit pattern (a weight read
/// back from the wrong offset, or converted on the way, would show).
fn distinct_weights(graph: &Graph) -> Weights {
    let mut out = zero_weights(graph);
    for (k, value) in out.values_mut().enumerate() {
        if let Initializer::F32 { data, .. } = value {
            for (i, v) in data.iter_mut().enumerate() {
                *v = ((i * 31 + k * 7) as f32 * 0.618).sin() * (1.0 + k as f32);
            }
        }
    }
    out
}

fn bits(w: &Weights) -> Vec<(&String, Vec<u32>)> {
    w.iter()
        .map(|(k, v)| match v {
            Initializer::F32 { data, .. } => (k, data.iter().map(|x| x.to_bits()).collect()),
            Initializer::I64 { data, .. } => (k, data.iter().map(|x| *x as u32).collect()),
        })
        .collect()
}

/// A model written with its weights beside it reads back with the same weights, bit for bit,
/// and the same figures as the model in one file.
#[test]
fn external_data_reads_back_bit_for_bit() {
    let bind = [("N", 2), ("T", 8)];
    let spec = wick::compile_source(
        "char_llama.wick",
        &std::fs::read_to_string("specs/char_llama.wick").unwrap(),
        &opts(&bind),
    );
    let graph = spec.graph.as_ref().unwrap();
    let values = distinct_weights(graph);
    let dir = scratch("external-bits");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("char_llama.onnx");
    let placement = onnx::Placement::External("char_llama.onnx.data");
    let exported = onnx::export_placed(graph, &values, onnx::DEFAULT_OPSET, placement).unwrap();
    let external = exported.external.as_ref().unwrap();
    onnx::weights::write_exported(&exported, &values, &file).unwrap();
    let data = std::fs::metadata(dir.join("char_llama.onnx.data")).unwrap().len();
    assert_eq!(data, external.bytes);
    // Some weights beside the model (the embedding, the projections), the small ones inside.
    let initializers = &exported.model.graph.as_ref().unwrap().initializer;
    let outside = initializers.iter().filter(|t| t.data_location == 1).count();
    assert!(outside > 0 && outside < initializers.len(), "{outside} of {}", initializers.len());

    let bytes = std::fs::read(&file).unwrap();
    let read = import::read(&bytes, file.to_str().unwrap(), &Options::default()).unwrap();
    assert_eq!(bits(&read.weights), bits(&values));
    let inside = onnx::export(graph, &values, onnx::DEFAULT_OPSET).unwrap().encode_to_vec();
    let s = imported_summary("char_llama_inside.onnx", &inside, &[]);
    let c = wick::compile_file(file.to_str().unwrap(), &Options::default()).unwrap();
    let t = c.summary(None).unwrap();
    assert_eq!((t.total_params, &t.macs, &t.memory), (s.total_params, &s.macs, &s.memory));
    assert_eq!(layer_rows(&t), layer_rows(&s));
}

/// `small_graph` with `fc.weight` (3 x 4 f32, 48 bytes) as external data with `entries`, in
/// a folder of its own with `data` as `fc.data` when given: the codes and messages of the
/// diagnostics `wick compile` gives the model.
fn external_case(case: &str, entries: &[(&str, &str)], data: Option<&[u8]>) -> String {
    use wick::onnx::proto::StringStringEntryProto;
    let dir = scratch(&format!("external-{case}"));
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(data) = data {
        std::fs::write(dir.join("fc.data"), data).unwrap();
    }
    let mut g = small_graph();
    let w = &mut g.initializer[0];
    w.raw_data.clear();
    w.data_location = 1;
    w.external_data = entries
        .iter()
        .map(|(k, v)| StringStringEntryProto { key: k.to_string(), value: v.to_string() })
        .collect();
    let file = dir.join("m.onnx");
    std::fs::write(&file, model(g)).unwrap();
    let c = wick::compile_file(file.to_str().unwrap(), &Options::default()).unwrap();
    c.diagnostics.items.iter().map(|d| format!("{}: {}\n", d.code, d.message)).collect()
}

/// A case's name, its `external_data` entries, the data file's bytes, the problem named.
type ExternalCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a [u8]>, &'a str);

#[test]
fn bad_external_data_is_an_error_naming_the_file_and_the_problem() {
    let values: Vec<u8> = (0..48).collect();
    let fine =
        external_case("fine", &[("location", "fc.data"), ("offset", "0"), ("length", "48")], Some(&values));
    assert!(!fine.contains("error"), "{fine}");
    // A model at an offset, without a length: the dims say how many bytes.
    let mut padded = vec![0u8; 16];
    padded.extend(&values);
    let fine = external_case("offset", &[("location", "fc.data"), ("offset", "16")], Some(&padded));
    assert!(!fine.contains("error"), "{fine}");

    let outside = scratch("outside.data");
    std::fs::write(&outside, &values).unwrap();
    let link_dir = scratch("external-link");
    std::fs::create_dir_all(&link_dir).unwrap();
    std::fs::remove_file(link_dir.join("link.data")).ok();
    std::os::unix::fs::symlink(&outside, link_dir.join("link.data")).unwrap();
    let cases: [ExternalCase; 9] = [
        (
            "absolute",
            vec![("location", outside.to_str().unwrap())],
            None,
            "is not a path inside the model's folder",
        ),
        ("parent", vec![("location", "../outside.data")], None, "is not a path inside the model's folder"),
        ("link", vec![("location", "link.data")], None, "leads outside the model's folder"),
        ("missing", vec![("location", "fc.data")], None, "No such file"),
        (
            "short",
            vec![("location", "fc.data")],
            Some(&values[..40]),
            "bytes 0 to 48 are past the file's end (40 bytes)",
        ),
        (
            "offset_past",
            vec![("location", "fc.data"), ("offset", "18446744073709551615")],
            Some(&values),
            "past the file's end",
        ),
        (
            "length",
            vec![("location", "fc.data"), ("length", "40")],
            Some(&values),
            "length 40 bytes, but its dims and type take 48",
        ),
        (
            "nonsense",
            vec![("location", "fc.data"), ("offset", "-1")],
            Some(&values),
            "offset `-1` is not a byte count",
        ),
        ("folder", vec![("location", ".")], None, "not a regular file"),
    ];
    for (case, entries, data, problem) in cases {
        let text = external_case(case, &entries, data);
        assert!(
            text.contains("E0116") && text.contains("m.onnx") && text.contains("`fc.weight`"),
            "{case}: {text}"
        );
        assert!(text.contains(problem), "{case}: {text}");
        assert!(case == "folder" || text.contains(entries[0].1), "{case}: the data file is named: {text}");
    }

    // Dims of 4 TiB with a 48-byte file: refused by the file's size, before any allocation.
    use wick::onnx::proto::StringStringEntryProto;
    let dir = scratch("external-huge");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fc.data"), &values).unwrap();
    let mut g = small_graph();
    g.initializer[0].dims = vec![1 << 20, 1 << 20];
    g.initializer[0].raw_data.clear();
    g.initializer[0].external_data =
        vec![StringStringEntryProto { key: "location".into(), value: "fc.data".into() }];
    let e = match import::read(&model(g), dir.join("m.onnx").to_str().unwrap(), &Options::default()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("4 TiB of dims read from 48 bytes"),
    };
    assert!(e.contains("bytes 0 to 4398046511104 are past the file's end (48 bytes)"), "{e}");

    // Two tensors on the same 48 bytes: together they would read more than the file holds (a
    // thousand such tensors on a large span would allocate it a thousand times).
    let mut g = small_graph();
    g.initializer[0].raw_data.clear();
    g.initializer[0].external_data =
        vec![StringStringEntryProto { key: "location".into(), value: "fc.data".into() }];
    let mut twin = g.initializer[0].clone();
    twin.name = "twin".into();
    g.initializer.push(twin);
    let e = match import::read(&model(g), dir.join("m.onnx").to_str().unwrap(), &Options::default()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("one span read twice"),
    };
    assert!(e.contains("`twin`") && e.contains("read more than its 48 bytes (their spans overlap)"), "{e}");
}
