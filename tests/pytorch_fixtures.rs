//! The lowered models against PyTorch: each fixture in `tests/fixtures/` (copied from the
//! shared fixtures, see their README) is run from its spec `tests/fixtures/NAME.wick` with the
//! stored weights; forward outputs, running statistics after a training pass, and the
//! gradients of `L = sum(output * probe)` must equal PyTorch's within the README's tolerances.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use wick::{Model, Options};

/// Prefixes of the fixture tensors that are not model state.
const NOT_STATE: &[&str] = &[
    "input.",
    "output.",
    "probe.",
    "grad.",
    "grad_input.",
    "grad_branch.",
    "after.",
    "train.",
    "losses.",
    "final.",
];

const FORWARD_TOL: f64 = 1e-5;
const GRAD_TOL: f64 = 1e-4;

/// One comparison: key, max |got - ref|, the allowed error.
struct Check {
    key: String,
    error: f64,
    allowed: f64,
}

fn compare(key: &str, got: &Tensor, reference: &Tensor, tol: f64) -> Check {
    assert_eq!(got.dims(), reference.dims(), "{key}: shape");
    let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let (got, reference) = (flat(got), flat(reference));
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let error = got.iter().zip(&reference).fold(0.0f64, |m, (g, r)| {
        let e = (g - r).abs();
        if e.is_nan() {
            f64::INFINITY
        } else {
            m.max(e)
        }
    });
    Check { key: key.to_string(), error, allowed: tol * (1.0 + scale) }
}

/// Runs fixture `name` and checks it. `absent` lists fixture outputs the spec does not have
/// (they need ops not on this branch); their gradients are then taken branch by branch.
fn check_fixture(name: &str, absent: &[&str]) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let tensors = candle_core::safetensors::load(format!("{dir}/{name}.safetensors"), &Device::Cpu).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}.json")).unwrap()).unwrap();
    let train = meta["mode"] == "train";

    let model = Model::from_file(&format!("{dir}/{name}.wick"), &Options::default()).unwrap();
    let lowered = model.build(&Device::Cpu, DType::F32).unwrap();
    let state: HashMap<String, Tensor> = tensors
        .iter()
        .filter(|(k, _)| !NOT_STATE.iter().any(|p| k.starts_with(p)))
        .map(|(k, t)| (k.clone(), t.clone()))
        .collect();
    // The weights of absent branches are the only ones allowed not to fit.
    let report = lowered.params().load_map(&state, !absent.is_empty()).unwrap();
    assert_eq!(report.loaded, lowered.params().entries().len());
    let (skipped, missing) = (&report.skipped.unexpected, &report.skipped.missing);
    assert!(missing.is_empty() && report.skipped.mismatched.is_empty(), "{name}: {:?}", report.skipped);
    assert!(
        skipped.iter().all(|k| absent.iter().any(|a| k.starts_with(&format!("{a}.")))),
        "{name}: {skipped:?}"
    );

    let inputs: Vec<Var> = lowered
        .inputs()
        .iter()
        .map(|d| Var::from_tensor(&tensors[&format!("input.{}", d.name)]).unwrap())
        .collect();
    let xs: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let outputs = lowered.forward(&xs, train).unwrap();

    let fixture_outputs: Vec<String> =
        tensors.keys().filter_map(|k| k.strip_prefix("output.")).map(String::from).collect();
    let names = lowered.output_names();
    for o in &fixture_outputs {
        assert!(
            names.contains(&o.as_str()) || absent.contains(&o.as_str()),
            "{name}: spec lacks output `{o}`"
        );
    }

    let mut checks = Vec::new();
    let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu).unwrap();
    for (o, y) in names.iter().zip(&outputs) {
        checks.push(compare(&format!("output.{o}"), y, &tensors[&format!("output.{o}")], FORWARD_TOL));
        loss = (loss + (y * &tensors[&format!("probe.{o}")]).unwrap().sum_all().unwrap()).unwrap();
    }
    for key in tensors.keys().filter(|k| k.starts_with("after.")) {
        let var = lowered.params().get(&key["after.".len()..]).unwrap();
        checks.push(compare(key, var.as_tensor(), &tensors[key], FORWARD_TOL));
    }

    let grads = lowered.backward(&loss).unwrap();
    for (key, var) in lowered.params().trainable() {
        let got = grads.get(var.as_tensor()).unwrap();
        checks.push(compare(&format!("grad.{key}"), got, &tensors[&format!("grad.{key}")], GRAD_TOL));
    }
    // Ids and masks have no gradient.
    for (d, var) in lowered.inputs().iter().zip(&inputs).filter(|(d, _)| d.dtype.is_float()) {
        let got = grads.get(var.as_tensor()).unwrap();
        let reference = if absent.is_empty() {
            tensors[&format!("grad_input.{}", d.name)].clone()
        } else {
            let branches: Vec<&Tensor> =
                names.iter().map(|o| &tensors[&format!("grad_branch.{o}.{}", d.name)]).collect();
            branches.iter().skip(1).fold(branches[0].clone(), |acc, t| (acc + *t).unwrap())
        };
        checks.push(compare(&format!("grad_input.{}", d.name), got, &reference, GRAD_TOL));
    }

    for c in &checks {
        eprintln!("{name:>20} {:<40} max abs error {:.2e} (allowed {:.2e})", c.key, c.error, c.allowed);
    }
    let failed: Vec<&Check> = checks.iter().filter(|c| c.error > c.allowed).collect();
    assert!(
        failed.is_empty(),
        "{name}: {}",
        failed
            .iter()
            .map(|c| format!("{} error {:.3e} > {:.3e}", c.key, c.error, c.allowed))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

#[test]
fn mlp() {
    check_fixture("mlp", &[]);
}

#[test]
fn cnn_bn_train() {
    check_fixture("cnn_bn_train", &[]);
}

#[test]
fn cnn_bn_eval() {
    check_fixture("cnn_bn_eval", &[]);
}

#[test]
fn pools() {
    check_fixture("pools", &[]);
}

#[test]
fn norms() {
    check_fixture("norms", &[]);
}

#[test]
fn lstm() {
    check_fixture("lstm", &[]);
}

#[test]
fn gru() {
    check_fixture("gru", &[]);
}

/// The `lstm` network from a random (h0, c0) given as inputs: outputs, and the gradients of the
/// weights and of h0 and c0.
#[test]
fn lstm_state() {
    check_fixture("lstm_state", &[]);
}

#[test]
fn gru_state() {
    check_fixture("gru_state", &[]);
}

#[test]
fn stylegan_mapping() {
    check_fixture("stylegan_mapping", &[]);
}

#[test]
fn activations() {
    check_fixture("activations", &[]);
}

#[test]
fn conv_transpose() {
    check_fixture("conv_transpose", &[]);
}

#[test]
fn depthwise_separable() {
    check_fixture("depthwise_separable", &[]);
}

#[test]
fn resnet_basic() {
    check_fixture("resnet_basic", &[]);
}

#[test]
fn resnet_bottleneck() {
    check_fixture("resnet_bottleneck", &[]);
}

#[test]
fn inception() {
    check_fixture("inception", &[]);
}

#[test]
fn se_block() {
    check_fixture("se_block", &[]);
}

#[test]
fn embeddings_layernorm() {
    check_fixture("embeddings_layernorm", &[]);
}

#[test]
fn transformer_encoder_layer() {
    check_fixture("transformer_encoder_layer", &[]);
}

#[test]
fn transformer_decoder_layer() {
    // The spec masks the self-attention with `causal=true` (the op has no attn_mask input):
    // the fixture's tgt_mask must be exactly that mask, 1 where key j > query i.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let tensors =
        candle_core::safetensors::load(format!("{dir}/transformer_decoder_layer.safetensors"), &Device::Cpu);
    let mask = tensors.unwrap()["input.tgt_mask"].to_vec2::<u8>().unwrap();
    for (i, row) in mask.iter().enumerate() {
        for (j, m) in row.iter().enumerate() {
            assert_eq!(*m, u8::from(j > i), "tgt_mask[{i}][{j}]");
        }
    }
    check_fixture("transformer_decoder_layer", &[]);
}

/// A tiny Hugging Face LlamaForCausalLM from std/llama.wick: RMSNorm, rotary positions, causal
/// grouped-query attention (4 query heads sharing 2 key-value heads), SwiGLU, untied head.
#[test]
fn llama_decoder() {
    check_fixture("llama_decoder", &[]);
}

#[test]
fn swin_blocks() {
    check_fixture("swin_blocks", &[]);
}
