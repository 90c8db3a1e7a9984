//! Reference figures: every spec in `specs/` must have a row here, and its summary must equal
//! it exactly. The figures are what PyTorch 2.15 and torchvision 0.29 report for the same
//! architectures (parameters, buffers, output shapes; MACs as FlopCounterMode's FLOPs / 2),
//! recorded below.

use wick::report::DimValue;

struct Reference {
    spec: &'static str,
    params: u64,
    running_stats: u64,
    output: &'static [i64],
    macs: i64,
}

const REFERENCE: &[Reference] = &[
    Reference { spec: "seed_mlp", params: 185_235, running_stats: 0, output: &[1, 10], macs: 184_800 },
    Reference { spec: "lenet5", params: 61_706, running_stats: 0, output: &[1, 10], macs: 416_520 },
    Reference {
        spec: "resnet18",
        params: 11_689_512,
        running_stats: 9_600,
        output: &[1, 1000],
        macs: 1_814_073_344,
    },
    Reference {
        spec: "alexnet",
        params: 61_100_840,
        running_stats: 0,
        output: &[1, 1000],
        macs: 714_188_480,
    },
    Reference {
        spec: "vgg16",
        params: 138_357_544,
        running_stats: 0,
        output: &[1, 1000],
        macs: 15_470_264_320,
    },
    Reference {
        spec: "vgg16_bn",
        params: 138_365_992,
        running_stats: 8_448,
        output: &[1, 1000],
        macs: 15_470_264_320,
    },
    Reference {
        spec: "resnet34",
        params: 21_797_672,
        running_stats: 17_024,
        output: &[1, 1000],
        macs: 3_663_761_408,
    },
    Reference {
        spec: "resnet50",
        params: 25_557_032,
        running_stats: 53_120,
        output: &[1, 1000],
        macs: 4_089_184_256,
    },
    Reference {
        spec: "googlenet",
        params: 6_624_904,
        running_stats: 14_560,
        output: &[1, 1000],
        macs: 1_498_376_192,
    },
    // The second table of shared/reference/param_counts.md (torchvision's mobilenet_v3_large
    // and resnext50_32x4d).
    Reference {
        spec: "mobilenet_v3_large",
        params: 5_483_032,
        running_stats: 24_400,
        output: &[1, 1000],
        macs: 216_589_760,
    },
    Reference {
        spec: "resnext50_32x4d",
        params: 25_028_904,
        running_stats: 68_224,
        output: &[1, 1000],
        macs: 4_230_479_872,
    },
    // Hugging Face LlamaForCausalLM with TinyLlama-1.1B's configuration, ids [1, 128].
    Reference {
        spec: "tinyllama_1_1b",
        params: 1_100_048_384,
        running_stats: 0,
        output: &[1, 128, 32000],
        macs: 133_882_183_680,
    },
    // torchvision's swin_t (the same table); its twelve int64 relative_position_index buffers
    // are in neither column.
    Reference {
        spec: "swin_t",
        params: 28_288_354,
        running_stats: 0,
        output: &[1, 1000],
        macs: 4_490_566_656,
    },
    Reference {
        spec: "se_resnet50",
        params: 28_088_024,
        running_stats: 53_120,
        output: &[1, 1000],
        macs: 4_091_699_200,
    },
    Reference {
        spec: "mobilenet_v2",
        params: 3_504_872,
        running_stats: 34_112,
        output: &[1, 1000],
        macs: 300_774_272,
    },
    Reference {
        spec: "inception_v1_3a",
        params: 163_696,
        running_stats: 0,
        output: &[1, 256, 28, 28],
        macs: 128_049_152,
    },
    Reference {
        spec: "googlenet_inception3a_torchvision",
        params: 155_872,
        running_stats: 736,
        output: &[1, 256, 28, 28],
        macs: 121_626_624,
    },
    Reference {
        spec: "dcgan_generator",
        params: 3_576_704,
        running_stats: 1_920,
        output: &[1, 3, 64, 64],
        macs: 104_628_224,
    },
    Reference {
        spec: "dcgan_discriminator",
        params: 2_765_568,
        running_stats: 1_792,
        output: &[1, 1, 1, 1],
        macs: 103_817_216,
    },
    Reference {
        spec: "unet_milesial",
        params: 31_037_698,
        running_stats: 11_776,
        output: &[1, 2, 224, 224],
        macs: 36_881_367_040,
    },
    Reference {
        spec: "conv_autoencoder",
        params: 10_147,
        running_stats: 0,
        output: &[1, 3, 64, 64],
        macs: 3_244_032,
    },
    Reference {
        spec: "transformer_default",
        params: 44_140_544,
        running_stats: 0,
        output: &[20, 32, 512],
        macs: 21_276_917_760,
    },
    Reference {
        spec: "bert_base_like_encoder",
        params: 108_891_648,
        running_stats: 0,
        output: &[1, 512, 768],
        macs: 48_318_382_080,
    },
    Reference {
        spec: "vit_b_16",
        params: 86_567_656,
        running_stats: 0,
        output: &[1, 1000],
        macs: 17_563_828_224,
    },
    Reference {
        spec: "gpt2_small",
        params: 124_439_808,
        running_stats: 0,
        output: &[1, 1024, 50257],
        macs: 145_824_153_600,
    },
    Reference {
        spec: "stylegan_mapping",
        params: 2_101_248,
        running_stats: 0,
        output: &[1, 512],
        macs: 2_097_152,
    },
    // MACs are wick's, not the reference's 543,948,800: that figure is the final Linear alone
    // (12,800 x 512 x 83), as PyTorch's counter skips the recurrent kernels. wick adds them:
    // 12,800 steps (128 x 100) x [layer 0: 4 x 512 x (83 + 512) = 1,218,560
    //                           + layer 1: 4 x 512 x (512 + 512) = 2,097,152]
    // = 12,800 x 3,315,712 = 42,441,113,600, so 543,948,800 + 42,441,113,600 = 42,985,062,400.
    Reference {
        spec: "char_rnn_lstm",
        params: 3_366_483,
        running_stats: 0,
        output: &[12_800, 83],
        macs: 42_985_062_400,
    },
    // wick's own design (no reference row); figures computed by hand at N = 1, weights + bias:
    // encoder conv 1->32 k3: 32*1*9 + 32 = 320; conv 32->64 k3: 64*32*9 + 64 = 18,496;
    // fc_mu, fc_logvar 3136->16: 2 x (3136*16 + 16) = 100,384; fc_dec 16->3136: 16*3136 + 3136
    // = 53,312; decoder conv 64->32 k3: 32*64*9 + 32 = 18,464; conv 32->1 k3: 1*32*9 + 1 = 289;
    // total 191,265. MACs (output elements x inputs per output): 32*14*14 * 9 = 56,448;
    // 64*7*7 * 288 = 903,168; heads 2 x 3136*16 = 100,352; fc_dec 16*3136 = 50,176;
    // 32*14*14 * 576 = 3,612,672; 1*28*28 * 288 = 225,792; total 4,948,608.
    Reference { spec: "vae", params: 191_265, running_stats: 0, output: &[1, 1, 28, 28], macs: 4_948_608 },
    // wick's own design, by hand at N = 1, S = 24, T = 20; GRU rows are 3 gates x 256 = 768.
    // Params: encoder (bidirectional, 2 layers), per direction: layer 0 768*80 + 768*256 +
    // 2*768 = 259,584, layer 1 768*512 + 768*256 + 2*768 = 591,360; x 2 = 1,701,888. bridge
    // 512*256 + 256 = 131,328; tgt_proj 96*256 + 256 = 24,832; decoder 2 x (768*256 + 768*256
    // + 2*768) = 789,504; fc 256*96 + 96 = 24,672; total 2,672,224.
    // MACs: encoder 24 steps x 2 directions x (768*(80 + 256) + 768*(512 + 256)) = 40,697,856;
    // bridge 256*512 = 131,072; tgt_proj 20*256*96 = 491,520; decoder 20 steps x 2 layers x
    // 768*(256 + 256) = 15,728,640; fc 20*96*256 = 491,520; total 57,540,608 (PyTorch's
    // counter, without the recurrent kernels, would give 1,114,112).
    // wick's own (the Iris example), by hand at N = 10: fc1 4*16 + 16 = 80, fc2 16*3 + 3 = 51;
    // total 131. MACs 10 x (4*16 + 16*3) = 1,120.
    // wick's own (the digits example), by hand at N = 32: conv1 16*1*9 + 16 = 160, conv2
    // 32*16*9 + 32 = 4,640, fc1 128*64 + 64 = 8,256, fc2 64*10 + 10 = 650; total 13,706.
    // MACs per image: conv1 16*8*8 * 9 = 9,216; conv2 32*4*4 * 144 = 73,728; fc1 8,192; fc2
    // 640; 91,776 x 32 = 2,936,832.
    Reference { spec: "digits_cnn", params: 13_706, running_stats: 0, output: &[32, 10], macs: 2_936_832 },
    // digits_cnn's network, fed from PNG files.
    Reference { spec: "digits_images", params: 13_706, running_stats: 0, output: &[32, 10], macs: 2_936_832 },
    Reference { spec: "iris_mlp", params: 131, running_stats: 0, output: &[10, 3], macs: 1_120 },
    // The digits GANs: the catalog row is each spec's last model (its discriminator), by hand
    // at N = 64. dcgan_digits: down1 32*1*16 + 32 = 544, down2 64*32*16 = 32,768 (no bias),
    // bn2 2*64 = 128 (+128 running stats), out 64*4 + 1 = 257; total 33,697. MACs per image:
    // down1 32*4*4 * 16 = 8,192, down2 64*2*2 * 512 = 131,072, out 256; 139,520 x 64 = 8,929,280.
    Reference { spec: "dcgan_digits", params: 33_697, running_stats: 128, output: &[64, 1], macs: 8_929_280 },
    // wgan_gp_digits: as above with down2's bias (+64) and LayerNorm([64, 2, 2]) for the batch
    // norm (2*256 = 512), a Linear(256, 1) head (257); total 34,145; the same MACs.
    Reference { spec: "wgan_gp_digits", params: 34_145, running_stats: 0, output: &[64, 1], macs: 8_929_280 },
    // cgan_digits: embed 10*16 = 160, fc1 (64 + 16)*256 + 256 = 20,736, fc2 256*128 + 128 =
    // 32,896, fc3 129; total 53,921. MACs per row 80*256 + 256*128 + 128 = 53,376; x 64 = 3,416,064.
    Reference { spec: "cgan_digits", params: 53_921, running_stats: 0, output: &[64, 1], macs: 3_416_064 },
    // stylegan_digits, at N = 24: from_rgb 16*1 + 16 = 32, down 32*16*9 + 32 = 4,640,
    // final_conv 32*33*9 + 32 = 9,536 (the minibatch statistic adds a channel), final_linear
    // 512*32 + 32 = 16,416 and 32 + 1 = 33; total 30,657. MACs per image: 16*64 = 1,024,
    // 32*16 * 144 = 73,728, 32*16 * 297 = 152,064, 16,384 + 32; 243,232 x 24 = 5,837,568.
    Reference {
        spec: "stylegan_digits",
        params: 30_657,
        running_stats: 0,
        output: &[24, 1],
        macs: 5_837_568,
    },
    Reference {
        spec: "gru_seq2seq",
        params: 2_672_224,
        running_stats: 0,
        output: &[20, 1, 96],
        macs: 57_540_608,
    },
    // digits_multitask, at N = 32: conv1 16*9 + 16 = 160, conv2 32*16*9 + 32 = 4,640, fc1 128*64 +
    // 64 = 8,256, cls 64*10 + 10 = 650, reg 64*4 + 4 = 260; total 13,966. MACs per image:
    // 16*64*9 = 9,216, 32*16*144 = 73,728, 8,192, 640, 256; 92,032 x 32 = 2,945,024.
    Reference {
        spec: "digits_multitask",
        params: 13_966,
        running_stats: 0,
        output: &[32, 10],
        macs: 2_945_024,
    },
    // seq2seq_reverse, at N = 32, S = T = 6: embeddings 2 * 11*32 = 704, encoder GRU 3*128*(32 + 128)
    // + 2*3*128 = 62,208, bridge 128*128 + 128 = 16,512, tgt_proj 32*128 + 128 = 4,224, decoder
    // GRU 3*128*256 + 768 = 99,072, fc 128*11 + 11 = 1,419; total 184,139. MACs per sequence:
    // 6*61,440 = 368,640, 16,384, 6*4,096 = 24,576, 6*98,304 = 589,824, 6*1,408 = 8,448;
    // 1,007,872 x 32 = 32,251,904.
    Reference {
        spec: "seq2seq_reverse",
        params: 184_139,
        running_stats: 0,
        output: &[32, 6, 11],
        macs: 32_251_904,
    },
    // transformer_reverse, at N = 32, S = T = 6, d 64, 4 heads, ff 128, 2 + 2 pre-norm layers:
    // embeddings 2 * 11*64 = 1,408, positions 2 * 16*64 = 2,048; an encoder layer: in_proj
    // 3*64*64 + 192 = 12,480, out_proj 4,160, linear1 8,320, linear2 8,256, two norms 256 =
    // 33,472; a decoder layer adds cross-attention 16,640 and a norm 128: 50,240; final norms
    // 2 * 128; fc 64*11 + 11 = 715; total 171,851. MACs over the 192 tokens a side: encoder
    // layer 192*(12,288 + 4,096 + 16,384) + 32*(2 * 6*6*64) = 6,438,912; decoder layer
    // self-attention 192*16,384 + 147,456 = 3,293,184, cross-attention (q and out per target,
    // k and v per source token) 192*8,192 + 192*8,192 + 147,456 = 3,293,184, ffn 3,145,728;
    // fc 192*704 = 135,168; 2*6,438,912 + 2*9,732,096 + 135,168 = 32,477,184.
    Reference {
        spec: "transformer_reverse",
        params: 171_851,
        running_stats: 0,
        output: &[32, 6, 11],
        macs: 32_477_184,
    },
    // char_lstm (wick's design; PyTorch's nn.Module of the same layers counts 238,985): embed
    // 89*48 = 4,272; lstm layer 0: 512*48 + 512*128 + 2*512 = 91,136, layer 1: 2*512*128 +
    // 2*512 = 132,096; fc 128*89 + 89 = 11,481. MACs per position: 4*128*(48 + 128) +
    // 4*128*(128 + 128) + 128*89 = 232,576, x 32*64 positions = 476,315,648.
    Reference {
        spec: "char_lstm",
        params: 238_985,
        running_stats: 0,
        output: &[32, 64, 89],
        macs: 476_315_648,
    },
    // char_gpt (PyTorch's Embedding, Embedding(256, 96), TransformerEncoder of 3 pre-norm
    // layers with a final LayerNorm and Linear(96, 89) count 377,465): wte 89*96 = 8,544, wpe
    // 256*96 = 24,576, per layer in_proj 3*96*96 + 288, out_proj 96*96 + 96, linear1 96*384 +
    // 384, linear2 384*96 + 96, two LayerNorms 384: 111,840, x 3; final norm 192; lm_head
    // 96*89 + 89 = 8,633. MACs per position: per layer 110,592 projections + 2*64*96 = 12,288
    // attention core, x 3, + 8,544 head = 377,184, x 2,048 positions = 772,472,832.
    Reference {
        spec: "char_gpt",
        params: 377_465,
        running_stats: 0,
        output: &[32, 64, 89],
        macs: 772_472_832,
    },
    // char_llama (Hugging Face's LlamaForCausalLM at vocab 89, d 96, 3 layers, 4 heads of 24
    // over 2 key-value heads, intermediate 256, untied head): embed_tokens and lm_head 89*96
    // each; per layer q and o 96*96, k and v 96*48, gate, up and down 96*256, two RMSNorms 96:
    // 101,568, x 3; final norm 96. MACs per position: per layer 101,376 projections + 4 * 64 *
    // 48 = 12,288 attention core, x 3, + 8,544 head = 349,536, x 2,048 positions = 715,849,728.
    Reference {
        spec: "char_llama",
        params: 321_888,
        running_stats: 0,
        output: &[32, 64, 89],
        macs: 715_849_728,
    },
];

fn spec_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir("specs")
        .expect("specs/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wick" || e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_spec_equals_its_reference_row() {
    let files = spec_files();
    assert!(files.len() >= 3, "specs/ holds the catalog");
    for path in files {
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("utf-8 name");
        let r = REFERENCE
            .iter()
            .find(|r| r.spec == stem)
            .unwrap_or_else(|| panic!("{} has no row in tests/reference.rs", path.display()));
        let c = wick::compile_file(path.to_str().expect("utf-8 path"), &wick::Options::default())
            .expect("readable");
        assert!(!c.diagnostics.has_errors(), "{}: {:?}", path.display(), c.diagnostics);
        let s = c.summary(None).expect("summary");
        assert_eq!(s.total_params, r.params, "{stem}: params");
        assert_eq!(s.trainable_params, r.params, "{stem}: all trainable");
        assert_eq!(s.buffers, r.running_stats, "{stem}: running stats");
        assert_eq!(s.macs, DimValue::Int(r.macs), "{stem}: MACs");
        let out: Vec<DimValue> = r.output.iter().map(|v| DimValue::Int(*v)).collect();
        assert_eq!(s.outputs[0].shape, out, "{stem}: output shape");
    }
}

/// A state_dict listing: `key d0,d1,...` per line, `#` comments.
fn state_dict_keys(text: &str) -> Vec<(String, Vec<i64>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, shape) = l.split_once(' ').expect("key and shape");
            (key.to_string(), shape.split(',').map(|d| d.parse().expect("int")).collect())
        })
        .collect()
}

#[test]
fn resnet18_parameter_paths_are_torchvisions_state_dict_keys() {
    let expected = state_dict_keys(include_str!("fixtures/resnet18_state_dict_keys.txt"));
    let ours = tensors("specs/resnet18.wick");
    assert_eq!(ours.len(), 102);
    // Same keys, same shapes, same order as the state_dict.
    assert_eq!(ours, expected);
}

/// The DCGAN specs are the PyTorch DCGAN tutorial's modules, keyed as its single
/// `nn.Sequential` named `main` numbers them (lists made by scripts/dcgan_tutorial_keys.py).
#[test]
fn dcgan_parameter_paths_are_the_tutorials_state_dict_keys() {
    let generator = state_dict_keys(include_str!("fixtures/dcgan_tutorial_generator_keys.txt"));
    assert_eq!((generator.len(), generator[20].0.as_str()), (21, "main.12.weight"));
    assert_eq!(tensors("specs/dcgan_generator.wick"), generator);
    assert_eq!(tensors("specs/dcgan_generator.yaml"), generator);
    let discriminator = state_dict_keys(include_str!("fixtures/dcgan_tutorial_discriminator_keys.txt"));
    assert_eq!((discriminator.len(), discriminator[16].0.as_str()), (17, "main.11.weight"));
    assert_eq!(tensors("specs/dcgan_discriminator.wick"), discriminator);
}

#[test]
fn tinyllama_parameter_paths_are_llama_for_causal_lms_state_dict_keys() {
    let mut expected = state_dict_keys(include_str!("fixtures/tinyllama_1_1b_state_dict_keys.txt"));
    let mut ours = tensors("specs/tinyllama_1_1b.wick");
    assert_eq!(ours.len(), 201);
    assert_eq!(ours[1], ("model.layers.0.input_layernorm.weight".to_string(), vec![2048]));
    // The same keys and shapes; a safetensors file loads by name, so the order (wick's is the
    // order of computation, the norm before the attention) does not matter.
    ours.sort();
    expected.sort();
    assert_eq!(ours, expected);
}

#[test]
fn swin_t_parameter_paths_are_torchvisions_state_dict_keys() {
    let expected = state_dict_keys(include_str!("fixtures/swin_t_state_dict_keys.txt"));
    let c = wick::compile_file("specs/swin_t.wick", &wick::Options::default()).expect("readable");
    let graph = c.graph.expect("graph");
    let bindings = graph.bindings();
    let ours: Vec<(String, Vec<i64>, wick::ops::ParamKind)> = graph
        .parameters()
        .into_iter()
        .map(|(path, shape, kind)| {
            (path, shape.iter().map(|d| d.eval(&bindings).expect("bound")).collect(), kind)
        })
        .collect();
    assert_eq!(ours.len(), 185);
    // Same keys with the same shapes. The order is the forward pass's, which differs from the
    // state_dict's only in patch merging (torchvision declares `reduction` before `norm`).
    let keys: std::collections::BTreeMap<String, Vec<i64>> =
        ours.iter().map(|(k, s, _)| (k.clone(), s.clone())).collect();
    assert_eq!(keys, expected.into_iter().collect::<std::collections::BTreeMap<_, _>>());
    // The twelve index buffers are int64 tables, neither parameters nor running statistics.
    let index: Vec<&str> = ours
        .iter()
        .filter(|(_, _, kind)| *kind == wick::ops::ParamKind::Index)
        .map(|(k, _, _)| k.as_str())
        .collect();
    assert_eq!(index.len(), 12);
    assert!(index.iter().all(|k| k.ends_with(".attn.relative_position_index")), "{index:?}");
}

#[test]
fn char_rnn_lstm_has_the_modules_state_dict_keys_and_several_outputs() {
    let c = wick::compile_file("specs/char_rnn_lstm.wick", &wick::Options::default()).expect("readable");
    let graph = c.graph.as_ref().expect("graph");
    let bindings = graph.bindings();
    let ours: Vec<(String, Vec<i64>)> = graph
        .parameters()
        .into_iter()
        .map(|(path, shape, _)| (path, shape.iter().map(|d| d.eval(&bindings).expect("bound")).collect()))
        .collect();
    let gates = vec![2048];
    let expected: Vec<(String, Vec<i64>)> = [
        ("lstm.weight_ih_l0", vec![2048, 83]),
        ("lstm.weight_hh_l0", vec![2048, 512]),
        ("lstm.bias_ih_l0", gates.clone()),
        ("lstm.bias_hh_l0", gates.clone()),
        ("lstm.weight_ih_l1", vec![2048, 512]),
        ("lstm.weight_hh_l1", vec![2048, 512]),
        ("lstm.bias_ih_l1", gates.clone()),
        ("lstm.bias_hh_l1", gates),
        ("fc.weight", vec![83, 512]),
        ("fc.bias", vec![83]),
    ]
    .into_iter()
    .map(|(k, s)| (k.to_string(), s))
    .collect();
    assert_eq!(ours, expected);
    let s = c.summary(None).expect("summary");
    let state = vec![DimValue::Int(2), DimValue::Int(128), DimValue::Int(512)];
    assert_eq!(s.outputs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["logits", "h", "c"]);
    assert_eq!((&s.outputs[1].shape, &s.outputs[2].shape), (&state, &state));
}

#[test]
fn batch_dim_stays_symbolic_or_scales_when_bound() {
    // The image size is a dim too (`dim H = 224`): bound, it leaves the batch alone symbolic.
    let at_224 = vec![("H".into(), 224), ("W".into(), 224)];
    let symbolic = wick::Options { symbolic: true, bind: at_224, ..Default::default() };
    let c = wick::compile_file("specs/resnet18.wick", &symbolic).expect("readable");
    let s = c.summary(None).expect("summary");
    assert_eq!(s.macs, DimValue::Sym("1814073344*N".into()));
    assert_eq!(s.outputs[0].shape, vec![DimValue::Sym("N".into()), DimValue::Int(1000)]);
    assert_eq!(s.total_params, 11_689_512, "parameters do not depend on the batch");

    let bound = wick::Options { bind: vec![("N".into(), 8)], ..Default::default() };
    let c = wick::compile_file("specs/resnet18.wick", &bound).expect("readable");
    assert_eq!(c.summary(None).expect("summary").macs, DimValue::Int(8 * 1_814_073_344));
}

/// Parameter and buffer tensors of a spec, by path, with their bound shapes.
fn tensors(spec: &str) -> Vec<(String, Vec<i64>)> {
    let c = wick::compile_file(spec, &wick::Options::default()).expect("readable");
    let graph = c.graph.expect("graph");
    let bindings = graph.bindings();
    graph
        .parameters()
        .into_iter()
        .map(|(path, shape, _)| (path, shape.iter().map(|d| d.eval(&bindings).expect("bound")).collect()))
        .collect()
}

#[test]
fn catalog_paths_are_the_reference_models_state_dict_keys() {
    // (spec, number of tensors without num_batches_tracked, sampled keys with their shapes),
    // from torchvision's modules (and milesial/Pytorch-UNet's for the U-Net).
    type Keys = &'static [(&'static str, &'static [i64])];
    let cases: &[(&str, usize, Keys)] = &[
        (
            "alexnet",
            16,
            &[
                ("features.0.weight", &[64, 3, 11, 11]),
                ("features.10.bias", &[256]),
                ("classifier.1.weight", &[4096, 9216]),
                ("classifier.6.bias", &[1000]),
            ],
        ),
        (
            "vgg16",
            32,
            &[
                ("features.0.weight", &[64, 3, 3, 3]),
                ("features.28.weight", &[512, 512, 3, 3]),
                ("classifier.0.weight", &[4096, 25088]),
                ("classifier.6.bias", &[1000]),
            ],
        ),
        (
            "vgg16_bn",
            84,
            &[
                ("features.1.running_var", &[64]),
                ("features.40.weight", &[512, 512, 3, 3]),
                ("features.41.bias", &[512]),
                ("classifier.3.weight", &[4096, 4096]),
            ],
        ),
        (
            "resnet34",
            182,
            &[
                ("layer2.0.downsample.1.running_var", &[128]),
                ("layer3.5.conv2.weight", &[256, 256, 3, 3]),
                ("fc.weight", &[1000, 512]),
            ],
        ),
        (
            "resnet50",
            267,
            &[
                ("layer1.0.downsample.0.weight", &[256, 64, 1, 1]),
                ("layer2.0.conv2.weight", &[128, 128, 3, 3]),
                ("layer4.2.bn3.running_mean", &[2048]),
                ("fc.weight", &[1000, 2048]),
            ],
        ),
        (
            "mobilenet_v3_large",
            266,
            &[
                ("features.0.0.weight", &[16, 3, 3, 3]),
                ("features.1.block.0.0.weight", &[16, 1, 3, 3]),
                ("features.4.block.2.fc1.weight", &[24, 72, 1, 1]),
                ("features.4.block.3.1.running_var", &[40]),
                ("features.16.1.running_var", &[960]),
                ("classifier.3.weight", &[1000, 1280]),
            ],
        ),
        (
            "resnext50_32x4d",
            267,
            &[
                ("layer1.0.conv1.weight", &[128, 64, 1, 1]),
                ("layer1.0.conv2.weight", &[128, 4, 3, 3]),
                ("layer3.5.conv2.weight", &[512, 16, 3, 3]),
                ("layer4.2.conv3.weight", &[2048, 1024, 1, 1]),
                ("layer4.0.downsample.1.running_var", &[2048]),
            ],
        ),
        (
            "googlenet",
            287,
            &[
                ("conv1.conv.weight", &[64, 3, 7, 7]),
                ("conv3.bn.running_var", &[192]),
                ("inception3a.branch2.1.conv.weight", &[128, 96, 3, 3]),
                ("inception3a.branch3.1.conv.weight", &[32, 16, 3, 3]),
                ("inception5b.branch4.1.bn.bias", &[128]),
                ("fc.weight", &[1000, 1024]),
            ],
        ),
        (
            "mobilenet_v2",
            262,
            &[
                ("features.0.0.weight", &[32, 3, 3, 3]),
                ("features.1.conv.0.0.weight", &[32, 1, 3, 3]),
                ("features.1.conv.1.weight", &[16, 32, 1, 1]),
                ("features.2.conv.1.0.weight", &[96, 1, 3, 3]),
                ("features.2.conv.3.running_mean", &[24]),
                ("features.18.0.weight", &[1280, 320, 1, 1]),
                ("classifier.1.weight", &[1000, 1280]),
            ],
        ),
        ("googlenet_inception3a_torchvision", 30, &[("inception3a.branch4.1.conv.weight", &[32, 192, 1, 1])]),
        (
            "unet_milesial",
            100,
            &[
                ("inc.double_conv.0.weight", &[64, 3, 3, 3]),
                ("down1.maxpool_conv.1.double_conv.4.running_var", &[128]),
                ("up1.up.weight", &[1024, 512, 2, 2]),
                ("up1.conv.double_conv.0.weight", &[512, 1024, 3, 3]),
                ("outc.conv.bias", &[2]),
            ],
        ),
    ];
    for (spec, count, keys) in cases {
        let ours = tensors(&format!("specs/{spec}.wick"));
        assert_eq!(ours.len(), *count, "{spec}: number of state_dict tensors");
        for (key, shape) in *keys {
            let found = ours.iter().find(|(p, _)| p == key).map(|(_, s)| s.as_slice());
            assert_eq!(found, Some(*shape), "{spec}: {key}");
        }
    }
}

/// `(key, shape)` rows as nn.MultiheadAttention names them under `prefix`.
fn attention_keys(prefix: &str, e: i64) -> Vec<(String, Vec<i64>)> {
    vec![
        (format!("{prefix}.in_proj_weight"), vec![3 * e, e]),
        (format!("{prefix}.in_proj_bias"), vec![3 * e]),
        (format!("{prefix}.out_proj.weight"), vec![e, e]),
        (format!("{prefix}.out_proj.bias"), vec![e]),
    ]
}

/// `weight` and `bias` of a Linear (`[out, in]`) or a LayerNorm (`in == 0`).
fn affine_keys(prefix: &str, out: i64, inp: i64) -> Vec<(String, Vec<i64>)> {
    let weight = if inp == 0 { vec![out] } else { vec![out, inp] };
    vec![(format!("{prefix}.weight"), weight), (format!("{prefix}.bias"), vec![out])]
}

#[test]
fn transformer_parameter_paths_are_nn_transformers_state_dict_keys() {
    let (e, ff) = (512, 2048);
    let mut expected = Vec::new();
    for (stack, attentions, norms) in
        [("encoder", &["self_attn"][..], 2), ("decoder", &["self_attn", "multihead_attn"][..], 3)]
    {
        for i in 0..6 {
            let layer = format!("{stack}.layers.{i}");
            for a in attentions {
                expected.extend(attention_keys(&format!("{layer}.{a}"), e));
            }
            expected.extend(affine_keys(&format!("{layer}.linear1"), ff, e));
            expected.extend(affine_keys(&format!("{layer}.linear2"), e, ff));
            for n in 1..=norms {
                expected.extend(affine_keys(&format!("{layer}.norm{n}"), e, 0));
            }
        }
        expected.extend(affine_keys(&format!("{stack}.norm"), e, 0));
    }
    let expected: std::collections::BTreeMap<_, _> = expected.into_iter().collect();
    assert_eq!(expected.len(), 6 * 12 + 2 + 6 * 18 + 2);
    assert_eq!(
        tensors("specs/transformer_default.wick").into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        expected
    );
}

#[test]
fn vit_parameter_paths_are_torchvisions_state_dict_keys() {
    let (e, mlp) = (768, 3072);
    let mut expected = vec![
        ("class_token".to_string(), vec![1, 1, e]),
        ("conv_proj.weight".to_string(), vec![e, 3, 16, 16]),
        ("conv_proj.bias".to_string(), vec![e]),
        ("encoder.pos_embedding".to_string(), vec![1, 197, e]),
    ];
    for i in 0..12 {
        let layer = format!("encoder.layers.encoder_layer_{i}");
        expected.extend(affine_keys(&format!("{layer}.ln_1"), e, 0));
        expected.extend(attention_keys(&format!("{layer}.self_attention"), e));
        expected.extend(affine_keys(&format!("{layer}.ln_2"), e, 0));
        expected.extend(affine_keys(&format!("{layer}.mlp.0"), mlp, e));
        expected.extend(affine_keys(&format!("{layer}.mlp.3"), e, mlp));
    }
    expected.extend(affine_keys("encoder.ln", e, 0));
    expected.extend(affine_keys("heads.head", 1000, e));
    let expected: std::collections::BTreeMap<_, _> = expected.into_iter().collect();
    assert_eq!(expected.len(), 152);
    assert_eq!(
        tensors("specs/vit_b_16.wick").into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        expected
    );
}
