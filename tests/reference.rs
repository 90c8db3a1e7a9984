//! Reference figures: every spec in `specs/` must have a row here, and its summary must equal
//! it exactly. Figures from `shared/reference/param_counts.md` (PyTorch 2.15, torchvision 0.29:
//! FlopCounterMode FLOPs / 2 for MACs).

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
    // wick's own design, by hand at N = 1, S = 24, T = 20; GRU rows are 3 gates x 256 = 768.
    // Params: encoder (bidirectional, 2 layers), per direction: layer 0 768*80 + 768*256 +
    // 2*768 = 259,584, layer 1 768*512 + 768*256 + 2*768 = 591,360; x 2 = 1,701,888. bridge
    // 512*256 + 256 = 131,328; tgt_proj 96*256 + 256 = 24,832; decoder 2 x (768*256 + 768*256
    // + 2*768) = 789,504; fc 256*96 + 96 = 24,672; total 2,672,224.
    // MACs: encoder 24 steps x 2 directions x (768*(80 + 256) + 768*(512 + 256)) = 40,697,856;
    // bridge 256*512 = 131,072; tgt_proj 20*256*96 = 491,520; decoder 20 steps x 2 layers x
    // 768*(256 + 256) = 15,728,640; fc 20*96*256 = 491,520; total 57,540,608 (PyTorch's
    // counter, without the recurrent kernels, would give 1,114,112).
    Reference {
        spec: "gru_seq2seq",
        params: 2_672_224,
        running_stats: 0,
        output: &[20, 1, 96],
        macs: 57_540_608,
    },
    Reference { spec: "vae", params: 191_265, running_stats: 0, output: &[1, 1, 28, 28], macs: 4_948_608 },
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

#[test]
fn resnet18_parameter_paths_are_torchvisions_state_dict_keys() {
    let expected: Vec<(String, Vec<i64>)> = include_str!("fixtures/resnet18_state_dict_keys.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, shape) = l.split_once(' ').expect("key and shape");
            (key.to_string(), shape.split(',').map(|d| d.parse().expect("int")).collect())
        })
        .collect();
    let c = wick::compile_file("specs/resnet18.wick", &wick::Options::default()).expect("readable");
    let graph = c.graph.expect("graph");
    let bindings = graph.bindings();
    let ours: Vec<(String, Vec<i64>)> = graph
        .parameters()
        .into_iter()
        .map(|(path, shape, _)| (path, shape.iter().map(|d| d.eval(&bindings).expect("bound")).collect()))
        .collect();
    assert_eq!(ours.len(), 102);
    // Same keys, same shapes, same order as the state_dict.
    assert_eq!(ours, expected);
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
    let symbolic = wick::Options { symbolic: true, ..Default::default() };
    let c = wick::compile_file("specs/resnet18.wick", &symbolic).expect("readable");
    let s = c.summary(None).expect("summary");
    assert_eq!(s.macs, DimValue::Sym("1814073344*N".into()));
    assert_eq!(s.outputs[0].shape, vec![DimValue::Sym("N".into()), DimValue::Int(1000)]);
    assert_eq!(s.total_params, 11_689_512, "parameters do not depend on the batch");

    let bound = wick::Options { bind: vec![("N".into(), 8)], ..Default::default() };
    let c = wick::compile_file("specs/resnet18.wick", &bound).expect("readable");
    assert_eq!(c.summary(None).expect("summary").macs, DimValue::Int(8 * 1_814_073_344));
}
