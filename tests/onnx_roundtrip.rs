//! `wick import`: a spec exported to ONNX, imported back as a spec, and exported again. The
//! imported spec has `repeat`ed blocks, the original's figures and, under the imported weights,
//! the original's outputs; its export is the first export again, node for node and weight for
//! weight.

use std::process::Command;

use candle_core::{DType, Device, Tensor};
use prost::Message;

use wick::onnx::{self, to_spec, weights};
use wick::{Lowered, Model, Options};

const BIND: [(&str, i64); 3] = [("N", 2), ("H", 32), ("W", 40)];

fn opts() -> Options {
    Options { bind: BIND.iter().map(|(k, v)| (k.to_string(), *v)).collect(), ..Options::default() }
}

/// resnet18 at small dims with seeded weights, its batch norms' statistics moved off 0 and 1 so
/// that an import losing them would show.
fn resnet18() -> (Model, Lowered) {
    let model = Model::from_file("specs/resnet18.wick", &opts()).unwrap();
    let lowered = model.build_seeded(&Device::Cpu, DType::F32, 11).unwrap();
    for e in lowered.params().entries() {
        let n = e.var.elem_count();
        let wave: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
        let values: Vec<f32> = if e.key.ends_with("running_mean") {
            wave.iter().map(|v| v - 0.5).collect()
        } else if e.key.ends_with("running_var") {
            wave.iter().map(|v| 0.5 + v).collect()
        } else {
            continue;
        };
        e.var.set(&Tensor::from_vec(values, e.var.dims(), &Device::Cpu).unwrap()).unwrap();
    }
    (model, lowered)
}

fn exported(model: &Model, lowered: &Lowered) -> Vec<u8> {
    let values = weights::from_tensors(&lowered.params().state_dict()).unwrap();
    onnx::export(model.graph(), &values, onnx::DEFAULT_OPSET).unwrap().encode_to_vec()
}

#[test]
fn an_imported_resnet18_repeats_its_blocks_and_keeps_figures_outputs_and_export() {
    let (model, lowered) = resnet18();
    let first = exported(&model, &lowered);
    let converted = to_spec::to_spec(&first, "resnet18.onnx", "imported.wick", &Options::default()).unwrap();
    let text = &converted.text;
    assert!(text.contains("layer1: repeat 2 { ConvResidual(64) }"), "{text}");
    assert!(text.contains("layer4: [ConvResidualDownsample(512), ConvResidual(512)]"), "{text}");
    assert_eq!(text.matches("\nblock ").count(), 2, "{text}");
    // Read as a person writes them: one int for a square kernel, no widened f32 epsilon.
    assert!(text.contains("Conv2d(out_channels, 3, padding=1, bias=false)"), "{text}");
    assert!(!text.contains("eps="), "{text}");

    // The same figures.
    let original = wick::compile_file("specs/resnet18.wick", &opts()).unwrap().summary(None).unwrap();
    let again = wick::compile_source("imported.wick", text, &Options::default()).summary(None).unwrap();
    assert_eq!(again.total_params, 11_689_512);
    assert_eq!(
        (again.total_params, again.buffers, &again.macs, &again.memory),
        (original.total_params, original.buffers, &original.macs, &original.memory)
    );

    // The same outputs under the imported weights.
    let imported = Model::from_source("imported.wick", text, &Options::default()).unwrap();
    let imported_net = imported.build_seeded(&Device::Cpu, DType::F32, 0).unwrap();
    imported_net.params().load_map(&weights::to_tensors(&converted.weights).unwrap(), false).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 3, 32, 40), &Device::Cpu).unwrap();
    let want = lowered.forward(std::slice::from_ref(&x), false).unwrap().remove(0);
    let got = imported_net.forward(std::slice::from_ref(&x), false).unwrap().remove(0);
    let diff = (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(diff, 0.0, "the imported model computes the same layers in the same order");

    // Exported again: the first file's nodes and weights.
    let second = exported(&imported, &imported_net);
    let (a, b) = (
        onnx::proto::ModelProto::decode(first.as_slice()).unwrap().graph.unwrap(),
        onnx::proto::ModelProto::decode(second.as_slice()).unwrap().graph.unwrap(),
    );
    assert_eq!(a.node.len(), b.node.len());
    for (x, y) in a.node.iter().zip(&b.node) {
        assert_eq!(
            (&x.op_type, &x.input, &x.output, &x.attribute),
            (&y.op_type, &y.input, &y.output, &y.attribute)
        );
    }
    assert_eq!(a.initializer, b.initializer);
    assert_eq!((a.input, a.output), (b.input, b.output));
}

/// `wick args`: its exit code, stdout and stderr.
fn wick(args: &[&str]) -> (Option<i32>, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_wick")).args(args).env("RUST_BACKTRACE", "1").output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

#[test]
fn wick_import_writes_a_spec_and_weights_that_run() {
    let dir = std::env::temp_dir().join(format!("wick-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (model, lowered) = resnet18();
    let onnx_file = dir.join("resnet18.onnx");
    std::fs::write(&onnx_file, exported(&model, &lowered)).unwrap();
    let (spec, weights_file) = (dir.join("resnet18.wick"), dir.join("resnet18.safetensors"));
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (code, _, err) =
        wick(&["import", &path(&onnx_file), "-o", &path(&spec), "--weights-out", &path(&weights_file)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("11689512 parameters"), "{err}");
    let (code, _, err) = wick(&["check", &path(&spec)]);
    assert_eq!(code, Some(0), "{err}");
    let loaded = Model::from_file(&path(&spec), &Options::default()).unwrap();
    let net = loaded.build_seeded(&Device::Cpu, DType::F32, 0).unwrap();
    net.params().load(&weights_file, false).unwrap();

    // A file that is not a model: nothing is written, exit 1 with the file named.
    let bad = dir.join("bad.onnx");
    std::fs::write(&bad, b"not a model").unwrap();
    let target = dir.join("bad.wick");
    let (code, _, err) = wick(&["import", &path(&bad), "-o", &path(&target)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("bad.onnx"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!target.exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// StyleGAN's layers exported, imported as a spec and exported again: the spec names the ops
/// with their settings (`lr_mul` as written, `bias=false`, `demodulate=false`), computes the
/// same outputs under the imported weights, and exports to the first file again.
#[test]
fn stylegan_layers_come_back_as_themselves() {
    let text = "dim N = 4\nmodel M { input z: [N, 6]\n input a: [N, 3, 7, 5]\n \
                w = z |> PixelNorm |> fc: EqualLinear(5, lr_mul=0.01) |> nb: EqualLinear(5, bias=false, lr_mul=0.1)\n \
                x = w |> c: ConstantInput(3, size=5) |> m: ModulatedConv2d(w, 4, 3) |> n: NoiseInjection\n \
                output y = x |> rgb: ModulatedConv2d(w, 2, 1, demodulate=false) |> MinibatchStd(2)\n \
                output d = a |> e: EqualConv2d(4, 3, stride=2, padding=1) |> f: EqualConv2d(2, 1, bias=false) }";
    let model = Model::from_source("style.wick", text, &Options::default()).unwrap();
    let lowered = model.build_seeded(&Device::Cpu, DType::F32, 5).unwrap();
    // Every parameter off its start but the noise strength, which stays 0: the outputs are
    // then exact despite the draw.
    for e in lowered.params().entries().iter().filter(|e| e.key != "n.weight") {
        let n = e.var.elem_count();
        let wave: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.3).collect();
        e.var.set(&Tensor::from_vec(wave, e.var.dims(), &Device::Cpu).unwrap()).unwrap();
    }
    let first = exported(&model, &lowered);
    let converted = to_spec::to_spec(&first, "style.onnx", "imported.wick", &Options::default()).unwrap();
    let spec = &converted.text;
    for layer in [
        "PixelNorm",
        "fc: EqualLinear(5, lr_mul=0.01)",
        "nb: EqualLinear(5, bias=false, lr_mul=0.1)",
        "c: ConstantInput(3, size=5)",
        "m: ModulatedConv2d(",
        "n: NoiseInjection",
        "demodulate=false",
        "MinibatchStd(group_size=2)",
        "e: EqualConv2d(4, 3, stride=2, padding=1)",
        "f: EqualConv2d(2, 1, bias=false)",
    ] {
        assert!(spec.contains(layer), "{layer} in\n{spec}");
    }
    let imported = Model::from_source("imported.wick", spec, &Options::default()).unwrap();
    let imported_net = imported.build_seeded(&Device::Cpu, DType::F32, 0).unwrap();
    imported_net.params().load_map(&weights::to_tensors(&converted.weights).unwrap(), false).unwrap();
    let inputs = [
        Tensor::randn(0f32, 1.0, (4, 6), &Device::Cpu).unwrap(),
        Tensor::randn(0f32, 1.0, (4, 3, 7, 5), &Device::Cpu).unwrap(),
    ];
    let want = lowered.forward(&inputs, false).unwrap();
    let got = imported_net.forward(&inputs, false).unwrap();
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got) {
        let diff = (g - w).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(diff, 0.0, "the imported model computes the same layers in the same order");
    }
    let second = exported(&imported, &imported_net);
    let (a, b) = (
        onnx::proto::ModelProto::decode(first.as_slice()).unwrap().graph.unwrap(),
        onnx::proto::ModelProto::decode(second.as_slice()).unwrap().graph.unwrap(),
    );
    let ops = |g: &onnx::proto::GraphProto| {
        g.node.iter().map(|n| (n.op_type.clone(), n.attribute.clone())).collect::<Vec<_>>()
    };
    assert_eq!(ops(&a), ops(&b));
    let values = |g: &onnx::proto::GraphProto| {
        g.initializer.iter().map(|t| (t.dims.clone(), t.raw_data.clone())).collect::<Vec<_>>()
    };
    assert_eq!(values(&a), values(&b));
}

/// `wick export --external-data` writes the weights beside the model; `wick compile`, `check`
/// and `import` read them from there, and the imported weights are the spec's, bit for bit.
#[test]
fn the_cli_exports_and_imports_a_model_with_external_data() {
    let dir = std::env::temp_dir().join(format!("wick-import-external-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_, lowered) = resnet18();
    let trained = dir.join("trained.safetensors");
    lowered.params().save(&trained).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (model, bind) = (path("resnet18.onnx"), "N=2,H=32,W=40");
    let (code, _, err) = wick(&[
        "export",
        "specs/resnet18.wick",
        "--bind",
        bind,
        "--weights",
        &path("trained.safetensors"),
        "-o",
        &model,
        "--external-data",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("in resnet18.onnx.data beside it"), "{err}");
    let (inside, outside) = (
        std::fs::metadata(&model).unwrap().len(),
        std::fs::metadata(path("resnet18.onnx.data")).unwrap().len(),
    );
    // 11,689,512 parameters (46.8 MB) beside a model of nodes and the small vectors.
    assert!(inside < 100_000 && outside > 46_000_000, "{inside} and {outside} bytes");

    let (code, table, err) = wick(&["compile", &model, "--summary"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(table.contains("11,689,512"), "{table}");
    let (code, _, err) = wick(&["check", &model]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = wick(&[
        "import",
        &model,
        "-o",
        &path("imported.wick"),
        "--weights-out",
        &path("imported.safetensors"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let original = candle_core::safetensors::load(&trained, &Device::Cpu).unwrap();
    let imported = candle_core::safetensors::load(path("imported.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(original.len(), imported.len());
    for (key, want) in &original {
        let got = imported.get(key).unwrap_or_else(|| panic!("`{key}` was not imported"));
        let bits = |t: &Tensor| {
            t.flatten_all()
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(got), bits(want), "`{key}`");
    }

    // The data file gone: the model names it, and nothing is imported.
    std::fs::remove_file(path("resnet18.onnx.data")).unwrap();
    let (code, _, err) = wick(&["compile", &model, "--summary"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("E0116") && err.contains("resnet18.onnx.data") && !err.contains("panicked"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
