//! The optimizers against PyTorch: the `mlp` fixture's 6-step loss trajectories and final
//! parameters for each optimizer (see `tests/fixtures/mlp.json`, `training`).

use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor};

use super::*;
use crate::train::loss::cross_entropy;
use crate::{Model, Options};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(format!("{DIR}/mlp.safetensors"), &Device::Cpu).expect("fixture")
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// The fixture's MLP with its stored starting weights, and its trainable parameters.
fn fixture_net(t: &HashMap<String, Tensor>) -> (crate::Lowered, Vec<Param>) {
    let model = Model::from_file(&format!("{DIR}/mlp.wick"), &Options::default()).expect("spec");
    let net = model.build(&Device::Cpu, DType::F32).expect("build");
    let state: HashMap<String, Tensor> =
        ["0.weight", "0.bias", "2.weight", "2.bias"].iter().map(|k| (k.to_string(), t[*k].clone())).collect();
    net.params().load_map(&state, false).expect("weights");
    let params = Param::trainable(&net);
    (net, params)
}

/// One full-batch step: the loss before it, then `step` on its gradients.
fn train_step(net: &crate::Lowered, t: &HashMap<String, Tensor>, step: impl FnOnce(&GradStore)) -> f64 {
    let logits = net.forward(&[t["train.x"].clone()], true).expect("forward").remove(0);
    let loss = cross_entropy(&logits, &t["train.y"], 1, 0.0).expect("loss");
    step(&net.backward(&loss).expect("backward"));
    loss.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

/// Trains the fixture's MLP from its stored weights for 6 steps; the losses and final weights.
fn trajectory(make: impl FnOnce(Vec<Param>) -> Box<dyn Optimizer>) -> (Vec<f64>, BTreeMap<String, Tensor>) {
    let t = fixture();
    let (net, params) = fixture_net(&t);
    let mut opt = make(params);
    let losses = (0..6).map(|_| train_step(&net, &t, |g| opt.step(g).expect("step"))).collect();
    (losses, net.params().state_dict())
}

fn assert_matches(tag: &str, losses: &[f64], finals: &BTreeMap<String, Tensor>) {
    let t = fixture();
    let reference = values(&t[&format!("losses.{tag}")]);
    for (i, (got, want)) in losses.iter().zip(&reference).enumerate() {
        assert!((got - want).abs() <= 1e-5, "{tag}: loss {i}: {got} vs {want}");
    }
    for (key, got) in finals {
        let want = values(&t[&format!("final.{tag}.{key}")]);
        let err = values(got).iter().zip(&want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(err <= 1e-5, "{tag}: {key} differs by {err}");
    }
}

#[test]
fn sgd_variants_follow_pytorch() {
    let cases = [
        ("sgd", SgdConfig { lr: 0.1, ..Default::default() }),
        ("sgd_momentum", SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }),
        (
            "sgd_nesterov_wd",
            SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 0.001, nesterov: true, ..Default::default() },
        ),
    ];
    for (tag, config) in cases {
        let (losses, finals) = trajectory(|p| Box::new(Sgd::new(p, config).expect("valid config")));
        assert_matches(tag, &losses, &finals);
    }
}

#[test]
fn adam_and_adamw_follow_pytorch() {
    let (losses, finals) =
        trajectory(|p| Box::new(Adam::new(p, AdamConfig { lr: 0.01, ..AdamConfig::adam() })));
    assert_matches("adam", &losses, &finals);
    let config = AdamConfig { lr: 0.01, weight_decay: 0.1, ..AdamConfig::adamw() };
    let (losses, finals) = trajectory(|p| Box::new(Adam::new(p, config)));
    assert_matches("adamw", &losses, &finals);
}

#[test]
fn rmsprop_and_adagrad_follow_pytorch() {
    let (losses, finals) =
        trajectory(|p| Box::new(RmsProp::new(p, RmsPropConfig { lr: 0.01, ..Default::default() })));
    assert_matches("rmsprop", &losses, &finals);
    let (losses, finals) =
        trajectory(|p| Box::new(Adagrad::new(p, AdagradConfig { lr: 0.1, ..Default::default() })));
    assert_matches("adagrad", &losses, &finals);
}

#[test]
fn state_round_trips_so_a_resumed_run_continues_exactly() {
    let make = |p| -> Box<dyn Optimizer> { Box::new(Adam::new(p, AdamConfig::adam())) };
    let (straight, _) = trajectory(make);
    // The same run with the optimizer rebuilt from its saved state after every step.
    let t = fixture();
    let (net, params) = fixture_net(&t);
    let mut saved = BTreeMap::new();
    let mut losses = Vec::new();
    for _ in 0..6 {
        let mut opt = Adam::new(params.clone(), AdamConfig::adam());
        opt.load_state(&saved).unwrap();
        losses.push(train_step(&net, &t, |g| opt.step(g).unwrap()));
        saved = opt.state();
    }
    assert_eq!(losses, straight);
    assert_eq!(saved["step"].to_scalar::<f64>().unwrap(), 6.0);
}

#[test]
fn nesterov_without_momentum_is_refused() {
    assert!(Sgd::new(Vec::new(), SgdConfig { nesterov: true, ..Default::default() }).is_err());
}
