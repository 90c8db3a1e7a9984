//! Every catalog spec lowers, and the lowered model agrees with the static figures: the same
//! parameter and buffer counts, and outputs of the inferred shapes after a forward pass. A
//! spec that uses an op without a lowering yet must fail the build saying so, naming the layer.

use candle_core::{DType, Device, Tensor};
use wick::lower::LowerError;
use wick::ops::ParamKind;
use wick::{compile_file, Model, Options};

/// Sequence and batch dims bound smaller than the reference's for the forward pass of a test;
/// the parameters, which do not depend on them, stay the reference size. At the reference
/// dims (measured on 2 shared cores) GPT-2's 1024 tokens take 40 s and 6.6 GB peak (its
/// [1, 1024, 50257] logits and a 1024 x 1024 score matrix per head), BERT's 512 take 14 s,
/// nn.Transformer's batch of 32 takes 5 s; at these dims 8 s, 6 s and 2 s, mostly the
/// initialisation of the reference-size parameters.
fn small_dims(path: &str) -> Vec<(String, i64)> {
    let dims: &[(&str, i64)] = match path {
        "specs/gpt2_small.wick" | "specs/bert_base_like_encoder.wick" => &[("L", 16)],
        "specs/transformer_default.wick" => &[("N", 2)],
        // Its full forward alone takes 8.6 s on the CPU.
        "specs/char_rnn_lstm.wick" => &[("N", 3), ("T", 7)],
        _ => &[],
    };
    dims.iter().map(|(d, v)| (d.to_string(), *v)).collect()
}

/// Zeros of an input's declared type: floats as f32, ids as i64, masks as u8.
fn candle_dtype(d: wick::ir::tensor::DType) -> DType {
    match d {
        wick::ir::tensor::DType::I64 | wick::ir::tensor::DType::I32 => DType::I64,
        wick::ir::tensor::DType::Bool => DType::U8,
        _ => DType::F32,
    }
}

/// Lower `path` and check it against its static figures: parameter and buffer counts, and the
/// output shapes of a forward pass.
fn lowers_with_its_static_figures(path: &str) {
    let opts = Options { bind: small_dims(path), ..Options::default() };
    let compiled = compile_file(path, &opts).unwrap();
    let analysis = compiled.analysis.as_ref().unwrap();
    let (params, buffers) = (analysis.total_params(), analysis.buffers);
    let summary_peak = analysis.memory.peak_activation_bytes;
    let g = compiled.graph.as_ref().unwrap();
    let b = g.bindings();
    let output_shapes: Vec<Vec<usize>> = g
        .outputs
        .iter()
        .map(|(_, t)| g.tensor_type(*t).unwrap().shape.iter().map(|d| d.eval(&b).unwrap() as usize).collect())
        .collect();
    let lowered = match Model::from_compiled(compiled).unwrap().build(&Device::Cpu, DType::F32) {
        Ok(l) => l,
        Err(LowerError::Layer { path: layer, kind, message }) if message.contains("has no lowering yet") => {
            panic!("{path}: {kind} at {layer} has no lowering")
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
        .map(|d| Tensor::zeros(d.dims.as_slice(), candle_dtype(d.dtype), &Device::Cpu).unwrap())
        .collect();
    // One schedule: the summary's peak is the executor's.
    assert_eq!(summary_peak, Some(lowered.peak_live_bytes() as u64), "{path}");
    let outputs = lowered.forward(&inputs, false).unwrap();
    let shapes: Vec<Vec<usize>> = outputs.iter().map(|t| t.dims().to_vec()).collect();
    assert_eq!(shapes, output_shapes, "{path}");
}

/// One test per catalog spec, so they run in parallel and a failure names its spec.
macro_rules! catalog {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                lowers_with_its_static_figures(concat!("specs/", stringify!($name), ".wick"));
            }
        )*

        /// The names above are every `.wick` file in `specs/`: a new spec cannot go untested.
        #[test]
        fn every_catalog_spec_has_its_test() {
            let mut listed = vec![$(stringify!($name)),*];
            listed.sort();
            let mut found: Vec<String> = std::fs::read_dir("specs")
                .unwrap()
                .filter_map(|e| e.unwrap().path().file_name()?.to_str()?.strip_suffix(".wick").map(str::to_string))
                .collect();
            found.sort();
            assert_eq!(listed, found);
        }
    };
}

catalog!(
    alexnet,
    bert_base_like_encoder,
    cgan_digits,
    char_gpt,
    char_lstm,
    char_rnn_lstm,
    conv_autoencoder,
    dcgan_digits,
    dcgan_discriminator,
    dcgan_generator,
    digits_cnn,
    digits_images,
    digits_multitask,
    googlenet,
    googlenet_inception3a_torchvision,
    gpt2_small,
    gru_seq2seq,
    inception_v1_3a,
    iris_mlp,
    lenet5,
    mobilenet_v2,
    mobilenet_v3_large,
    resnet18,
    resnet34,
    resnet50,
    resnext50_32x4d,
    se_resnet50,
    seed_mlp,
    seq2seq_reverse,
    stylegan_digits,
    stylegan_mapping,
    transformer_default,
    transformer_reverse,
    unet_milesial,
    vae,
    vgg16,
    vgg16_bn,
    vit_b_16,
    wgan_gp_digits,
);
