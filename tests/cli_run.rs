//! `wick compile -o` and `wick run` from the command line: a fixture's outputs reproduced,
//! weights that do not fit refused (or partly loaded on request), devices chosen clearly.

mod common;
use common::wick;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{DType, Device, Tensor};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

/// The fixture's state_dict alone, as a weights file.
fn weights_of(fixture: &str) -> PathBuf {
    let all =
        candle_core::safetensors::load(format!("{FIXTURES}/{fixture}.safetensors"), &Device::Cpu).unwrap();
    let not_state = ["input.", "output.", "probe.", "grad", "after.", "train.", "losses.", "final."];
    let state: HashMap<String, Tensor> =
        all.into_iter().filter(|(k, _)| !not_state.iter().any(|p| k.starts_with(p))).collect();
    let path = temp(&format!("{fixture}-weights.safetensors"));
    candle_core::safetensors::save(&state, &path).unwrap();
    path
}

#[test]
fn run_reproduces_a_fixture_from_the_command_line() {
    let weights = weights_of("cnn_bn_eval");
    let out = temp("cnn_out.safetensors");
    let fixture = format!("{FIXTURES}/cnn_bn_eval.safetensors");
    let o = wick(&[
        "run",
        &format!("{FIXTURES}/cnn_bn_eval.wick"),
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        &format!("x={fixture}"),
        "--output",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
    let reference = candle_core::safetensors::load(&fixture, &Device::Cpu).unwrap();
    assert!(max_abs_diff(&got["y"], &reference["output.y"]) < 1e-5);
}

/// `wick run` on the `mlp` fixture's spec, with `extra` flags.
fn run_mlp(weights: &Path, x: &Path, out: &Path, extra: &[&str]) -> Output {
    let (spec, x) = (format!("{FIXTURES}/mlp.wick"), format!("x={}", x.display()));
    let (weights, out) = (weights.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["run", &spec, "--weights", weights, "--input", &x, "--output", out];
    args.extend(extra);
    wick(&args)
}

#[test]
fn batch_dims_are_bound_from_the_input_file_and_npy_works_both_ways() {
    let (weights, x, out) = (weights_of("mlp"), temp("x.npy"), temp("y.npy"));
    // The spec's example batch is 5; a batch of 2 binds N = 2.
    Tensor::new(&[[0.5f32, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]], &Device::Cpu)
        .unwrap()
        .write_npy(&x)
        .unwrap();
    let o = run_mlp(&weights, &x, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(Tensor::read_npy(&out).unwrap().dims(), &[2, 3]);
}

#[test]
fn weights_that_do_not_fit_are_listed_and_allow_partial_loads_the_rest() {
    let fixture = format!("{FIXTURES}/mlp.safetensors");
    let out = temp("partial.safetensors");
    let args = |partial: bool| {
        let mut a = vec![
            "run".to_string(),
            format!("{FIXTURES}/mlp.wick"),
            "--weights".into(),
            fixture.clone(),
            "--input".into(),
            format!("x={fixture}"),
            "--output".into(),
            out.to_str().unwrap().to_string(),
            "--device".into(),
            "cpu".into(),
        ];
        if partial {
            a.push("--allow-partial".into());
        }
        a
    };
    let strict = Command::new(env!("CARGO_BIN_EXE_wick")).args(args(false)).output().unwrap();
    assert_eq!(strict.status.code(), Some(2));
    assert!(
        stderr(&strict).contains("unexpected: input.x") && stderr(&strict).contains("unexpected: probe.y")
    );
    let partial = Command::new(env!("CARGO_BIN_EXE_wick")).args(args(true)).output().unwrap();
    assert!(partial.status.success(), "{}", stderr(&partial));
    assert!(stderr(&partial).contains("loaded 4 tensors"), "{}", stderr(&partial));
}

#[test]
fn compile_saves_seeded_pytorch_initialisation() {
    let (a, b, c) = (temp("a.safetensors"), temp("b.safetensors"), temp("c.safetensors"));
    let spec = format!("{FIXTURES}/cnn_bn_train.wick");
    for (path, seed) in [(&a, "1"), (&b, "1"), (&c, "2")] {
        let o = wick(&["compile", &spec, "-o", path.to_str().unwrap(), "--seed", seed]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let load = |p: &PathBuf| candle_core::safetensors::load(p, &Device::Cpu).unwrap();
    let (a, b, c) = (load(&a), load(&b), load(&c));
    let mut keys: Vec<&String> = a.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "bn1.weight",
            "conv1.weight",
            "conv2.bias",
            "conv2.weight",
            "fc.bias",
            "fc.weight"
        ]
    );
    assert_eq!(max_abs_diff(&a["conv1.weight"], &b["conv1.weight"]), 0.0);
    assert!(max_abs_diff(&a["conv1.weight"], &c["conv1.weight"]) > 0.0);
    // BatchNorm starts at weight 1, bias 0, mean 0, variance 1, as in PyTorch.
    assert_eq!(a["bn1.running_var"].sum_all().unwrap().to_scalar::<f32>().unwrap(), 8.0);
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_on_a_build_without_it_is_a_clear_usage_error() {
    let o = wick(&[
        "run",
        &format!("{FIXTURES}/mlp.wick"),
        "--weights",
        "w.safetensors",
        "--input",
        "x=x.npy",
        "--output",
        "y.npy",
        "--device",
        "cuda",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("built without CUDA"), "{}", stderr(&o));
}

#[test]
fn allow_partial_that_loads_nothing_is_an_error() {
    let other = temp("other-model.safetensors");
    let tensors = HashMap::from([(
        "encoder.weight".to_string(),
        Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap(),
    )]);
    candle_core::safetensors::save(&tensors, &other).unwrap();
    let x = temp("partial-x.npy");
    Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap().write_npy(&x).unwrap();
    let o = run_mlp(&other, &x, &temp("partial-y.npy"), &["--allow-partial"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to load: none of the model's"), "{}", stderr(&o));
    assert!(stderr(&o).contains(other.to_str().unwrap()), "{}", stderr(&o));
    assert!(!temp("partial-y.npy").exists());
}

#[test]
fn an_input_of_the_wrong_shape_is_a_usage_error() {
    let (weights, x) = (weights_of("mlp"), temp("wrong-x.npy"));
    Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap().write_npy(&x).unwrap();
    let o = run_mlp(&weights, &x, &temp("wrong-y.npy"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let expected =
        format!("error: input `x` must have shape [2, 4], found [2, 5] (inputs: `x` from {})\n", x.display());
    assert_eq!(stderr(&o), expected);
}

#[test]
fn an_input_name_the_model_lacks_is_named_with_the_inputs_it_has() {
    let weights = weights_of("cnn_bn_eval");
    let fixture = format!("{FIXTURES}/cnn_bn_eval.safetensors");
    let spec = format!("{FIXTURES}/cnn_bn_eval.wick");
    let out = temp("misnamed_out.safetensors");
    let o = wick(&[
        "run",
        &spec,
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        &format!("img={fixture}"),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("the model has no input `img`; its inputs are `x`"), "{}", stderr(&o));
}

/// `wick run` binds a Llama's batch and sequence length from the ids it is given: the first 5
/// ids of the `llama_decoder` fixture's first row (the spec declares [2, 7]) give the first 5
/// positions of its logits, since each position sees only the ones before it.
#[test]
fn a_llama_takes_its_batch_and_length_from_the_ids() {
    let (weights, ids, out) = (weights_of("llama_decoder"), temp("llama_ids.npy"), temp("llama_y.npy"));
    let fixture =
        candle_core::safetensors::load(format!("{FIXTURES}/llama_decoder.safetensors"), &Device::Cpu)
            .unwrap();
    fixture["input.ids"].narrow(0, 0, 1).unwrap().narrow(1, 0, 5).unwrap().write_npy(&ids).unwrap();
    let o = wick(&[
        "run",
        &format!("{FIXTURES}/llama_decoder.wick"),
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        &format!("ids={}", ids.display()),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let y = Tensor::read_npy(&out).unwrap();
    assert_eq!(y.dims(), &[1, 5, 50]);
    let expected = fixture["output.y"].narrow(0, 0, 1).unwrap().narrow(1, 0, 5).unwrap();
    assert!(max_abs_diff(&y, &expected) < 1e-5);
}
