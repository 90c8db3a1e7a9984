//! Every catalog spec lowers, and the lowered model agrees with the static figures: the same
//! parameter and buffer counts, and outputs of the inferred shapes after a forward pass. A
//! spec that uses an op without a lowering yet must fail the build saying so, naming the layer.

use candle_core::{DType, Device, Tensor};
use wick::lower::LowerError;
use wick::ops::ParamKind;
use wick::{compile_source, Model, Options};

/// Sequence, batch and image dims bound smaller than the reference's for the forward pass of a
/// test; the parameters, which do not depend on them, stay the reference size. At the reference
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
        // Image specs take any size (`dim H = 224`): a small non-square one, a multiple of 16
        // as ViT's patches and U-Net's halvings need, runs them at a size other than the
        // reference's (ViT's positions table follows it; the other parameters stay).
        "specs/alexnet.wick"
        | "specs/googlenet.wick"
        | "specs/mobilenet_v2.wick"
        | "specs/mobilenet_v3_large.wick"
        | "specs/resnet18.wick"
        | "specs/resnet34.wick"
        | "specs/resnet50.wick"
        | "specs/resnext50_32x4d.wick"
        | "specs/se_resnet50.wick"
        | "specs/unet_milesial.wick"
        | "specs/vgg16.wick"
        | "specs/vgg16_bn.wick"
        | "specs/vit_b_16.wick" => &[("H", 64), ("W", 96)],
        _ => &[],
    };
    dims.iter().map(|(d, v)| (d.to_string(), *v)).collect()
}

/// The spec's text, at a smaller configuration where the reference size is too large to lower
/// in a test: TinyLlama's 1.1 billion parameters are 4.4 GB of f32, minutes to initialise in a
/// debug build. The same blocks at 2 layers, d 128 and a vocabulary of 320 (4 query heads of 32
/// over 2 key-value heads) lower through every op the full model has; `tests/reference.rs`
/// checks the full model's figures.
fn source(path: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let reduced: &[(&str, &str)] = match path {
        "specs/tinyllama_1_1b.wick" => &[
            ("vocab_size: int = 32000", "vocab_size: int = 320"),
            ("hidden_size: int = 2048", "hidden_size: int = 128"),
            ("intermediate_size: int = 5632", "intermediate_size: int = 344"),
            ("num_hidden_layers: int = 22", "num_hidden_layers: int = 2"),
            ("num_attention_heads: int = 32", "num_attention_heads: int = 4"),
            ("num_key_value_heads: int = 4", "num_key_value_heads: int = 2"),
        ],
        _ => &[],
    };
    reduced.iter().fold(text, |t, (from, to)| {
        assert!(t.contains(from), "{path} no longer declares `{from}`");
        t.replace(from, to)
    })
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
    let compiled = compile_source(path, &source(path), &opts);
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
    char_llama,
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
    swin_t,
    tinyllama_1_1b,
    transformer_default,
    transformer_reverse,
    unet_milesial,
    vae,
    vgg16,
    vgg16_bn,
    vit_b_16,
    wgan_gp_digits,
);

/// Tensor number `i` of the DCGAN tutorial's state dict, as scripts/dcgan_tutorial_outputs.py
/// makes it: a formula of its element's index, in f64 and then f32.
fn tutorial_tensor(key: &str, shape: &[usize], i: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|j| {
            let s = (0.37 * j as f64 + 1.3 * i as f64).sin();
            let v = if key.ends_with("running_var") {
                1.0 + 0.5 * s * s
            } else if shape.len() == 1 && key.ends_with("weight") {
                1.0 + 0.1 * s
            } else if shape.len() == 1 {
                0.1 * s
            } else {
                3.0 * s / (shape[1..].iter().product::<usize>() as f64).sqrt()
            };
            v as f32
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// A state dict keyed as the PyTorch DCGAN tutorial's modules (`main.0.weight`,
/// `main.1.running_mean`, ...: the key lists PyTorch printed, in tests/fixtures) loads into the
/// catalog's DCGAN specs with nothing missing, left over or mis-shaped, and they give the
/// tutorial's outputs on it (PyTorch's, eval mode, from scripts/dcgan_tutorial_outputs.py).
#[test]
fn dcgan_specs_load_a_state_dict_keyed_as_the_tutorials() {
    let cases = [
        ("generator", include_str!("fixtures/dcgan_tutorial_generator_keys.txt")),
        ("discriminator", include_str!("fixtures/dcgan_tutorial_discriminator_keys.txt")),
    ];
    let dir = std::env::temp_dir().join(format!("wick-dcgan-tutorial-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, keys) in cases {
        let spec = format!("specs/dcgan_{name}.wick");
        let mut state = std::collections::HashMap::new();
        for (i, line) in keys.lines().filter(|l| !l.starts_with('#')).enumerate() {
            let (key, shape) = line.split_once(' ').unwrap();
            let shape: Vec<usize> = shape.split(',').map(|d| d.parse().unwrap()).collect();
            state.insert(key.to_string(), tutorial_tensor(key, &shape, i));
        }
        let file = dir.join(format!("{name}.safetensors"));
        candle_core::safetensors::save(&state, &file).unwrap();
        let net =
            Model::from_file(&spec, &Options::default()).unwrap().build(&Device::Cpu, DType::F32).unwrap();
        let report = net.load_weights(&file, false).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(report.loaded, state.len(), "{spec}");
        let dims = net.inputs()[0].dims.clone();
        let n: usize = dims.iter().product();
        let x: Vec<f32> = (0..n).map(|j| (0.05 * j as f64).sin() as f32).collect();
        let x = Tensor::from_vec(x, dims, &Device::Cpu).unwrap();
        let y = net.forward(&[x], false).unwrap().remove(0);
        let expected = Tensor::read_npy(format!("tests/fixtures/dcgan_tutorial_{name}_output.npy")).unwrap();
        assert_eq!(y.dims(), expected.dims(), "{spec}");
        let diff: f32 = (&y - &expected)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff < 1e-5, "{spec}: the tutorial's output differs by {diff}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
