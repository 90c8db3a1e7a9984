//! Every catalog spec lowers, and the lowered model agrees with the static figures: the same
//! parameter and buffer counts, and outputs of the inferred shapes after a forward pass. A
//! spec that uses an op without a lowering yet must fail the build saying so, naming the layer.

use candle_core::{DType, Device, Tensor};
use wick::lower::LowerError;
use wick::ops::ParamKind;
use wick::{compile_file, Model, Options};

/// Specs whose reference sizes make a slow CPU test, and the smaller dims they are lowered at
/// (the static figures are inferred at the same dims).
const SMALL_DIMS: &[(&str, &[(&str, i64)])] = &[("specs/char_rnn_lstm.wick", &[("N", 3), ("T", 7)])];

fn options_for(path: &str) -> Options {
    let bind = SMALL_DIMS.iter().filter(|(p, _)| *p == path).flat_map(|(_, dims)| dims.iter());
    Options { bind: bind.map(|(d, v)| (d.to_string(), *v)).collect(), ..Options::default() }
}

#[test]
fn every_catalog_spec_lowers_with_its_static_figures() {
    let mut specs: Vec<_> = std::fs::read_dir("specs")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wick"))
        .collect();
    specs.sort();
    let (mut lowered_specs, mut waiting) = (Vec::new(), Vec::new());
    for path in specs {
        let path = path.to_str().unwrap();
        let compiled = compile_file(path, &options_for(path)).unwrap();
        let analysis = compiled.analysis.as_ref().unwrap();
        let (params, buffers) = (analysis.total_params(), analysis.buffers);
        let g = compiled.graph.as_ref().unwrap();
        let b = g.bindings();
        let output_shapes: Vec<Vec<usize>> = g
            .outputs
            .iter()
            .map(|(_, t)| {
                g.tensor_type(*t).unwrap().shape.iter().map(|d| d.eval(&b).unwrap() as usize).collect()
            })
            .collect();
        let lowered = match Model::from_compiled(compiled).unwrap().build(&Device::Cpu, DType::F32) {
            Ok(l) => l,
            Err(LowerError::Layer { path: layer, kind, message })
                if message.contains("has no lowering yet") =>
            {
                waiting.push(format!("{path} ({kind} at {layer})"));
                continue;
            }
            Err(e) => panic!("{path}: {e}"),
        };
        let count = |kind: ParamKind| -> u64 {
            let entries = lowered.params().entries().iter();
            entries.filter(|e| e.kind == kind).map(|e| e.var.elem_count() as u64).sum()
        };
        assert_eq!((count(ParamKind::Weight), count(ParamKind::Buffer)), (params, buffers), "{path}");
        let inputs: Vec<Tensor> = lowered
            .inputs()
            .iter()
            .map(|d| Tensor::zeros(d.dims.as_slice(), DType::F32, &Device::Cpu).unwrap())
            .collect();
        let outputs = lowered.forward(&inputs, false).unwrap();
        let shapes: Vec<Vec<usize>> = outputs.iter().map(|t| t.dims().to_vec()).collect();
        assert_eq!(shapes, output_shapes, "{path}");
        lowered_specs.push(path.to_string());
    }
    eprintln!("lowered: {}\nwaiting for op lowerings: {}", lowered_specs.join(", "), waiting.join(", "));
    let must = ["specs/lenet5.wick", "specs/resnet18.wick", "specs/seed_mlp.wick"];
    let recurrent_and_generative = [
        "specs/char_rnn_lstm.wick",
        "specs/gru_seq2seq.wick",
        "specs/stylegan_mapping.wick",
        "specs/vae.wick",
    ];
    for must in must.into_iter().chain(recurrent_and_generative) {
        assert!(lowered_specs.iter().any(|s| s == must), "{must} did not lower");
    }
}
