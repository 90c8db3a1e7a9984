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

mod groups {
    use super::*;
    use crate::train::optim::config::OptimizerConfig;
    use crate::train::optim::groups::{build, ParamGroup};

    fn group(globs: &[&str], lr: Option<f64>, weight_decay: Option<f64>) -> ParamGroup {
        ParamGroup { params: globs.iter().map(|g| g.to_string()).collect(), lr, weight_decay }
    }

    fn sgd(lr: f64) -> OptimizerConfig {
        OptimizerConfig::Sgd {
            lr,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            decoupled: false,
        }
    }

    #[test]
    fn groups_with_the_optimizers_own_settings_train_as_it_does() {
        let adamw: OptimizerConfig = serde_yaml::from_str("{name: adamw, lr: 0.01}").unwrap();
        let (one, weights) = trajectory(|p| adamw.build(p).unwrap());
        let groups = [group(&["0"], None, None), group(&["**.bias"], None, None)];
        let (grouped, same) = trajectory(|p| build(&adamw, p, &groups).unwrap());
        assert_eq!(one, grouped);
        for (k, w) in &weights {
            assert_eq!(values(w), values(&same[k]), "{k}");
        }
    }

    #[test]
    fn a_group_keeps_its_rate_in_proportion_under_a_schedule() {
        let t = fixture();
        let (net, params) = fixture_net(&t);
        // Copies: the optimizer updates the parameters' storage in place.
        let before: HashMap<String, Tensor> =
            net.params().state_dict().into_iter().map(|(k, v)| (k, v.copy().unwrap())).collect();
        // Layer 0 at twice the rate, biases frozen in place by a zero rate.
        let groups = [group(&["**.bias"], Some(0.0), None), group(&["0"], Some(0.2), None)];
        let mut opt = build(&sgd(0.1), params, &groups).unwrap();
        opt.set_learning_rate(0.05); // a schedule halved the rate
        let mut grads = None;
        train_step(&net, &t, |g| {
            opt.step(g).unwrap();
            grads = Some(
                net.params()
                    .trainable()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), g.get(v.as_tensor()).unwrap().clone()))
                    .collect::<HashMap<_, _>>(),
            );
        });
        let (grads, after) = (grads.unwrap(), net.params().state_dict());
        let moved = |k: &str, lr: f64| {
            let (b, a, g) = (values(&before[k]), values(&after[k]), values(&grads[k]));
            b.iter().zip(&a).zip(&g).all(|((b, a), g)| (a - (b - lr * g)).abs() < 1e-6)
        };
        assert!(moved("0.weight", 0.1), "0.2 halved");
        assert!(moved("2.weight", 0.05), "the optimizer's own 0.1 halved");
        assert!(moved("0.bias", 0.0) && moved("2.bias", 0.0), "rate 0 leaves biases alone");
    }

    #[test]
    fn a_grouped_state_restores_into_a_fresh_optimizer() {
        let adam: OptimizerConfig =
            serde_yaml::from_str("{name: adam, lr: 0.01, weight_decay: 0.1}").unwrap();
        let groups = [group(&["**.bias"], None, Some(0.0))];
        let (straight, end) = trajectory(|p| build(&adam, p, &groups).unwrap());
        // Three steps, the state saved and loaded into a new optimizer, three more.
        let t = fixture();
        let (net, params) = fixture_net(&t);
        let mut first = build(&adam, params.clone(), &groups).unwrap();
        let mut losses: Vec<f64> = (0..3).map(|_| train_step(&net, &t, |g| first.step(g).unwrap())).collect();
        let mut second = build(&adam, params, &groups).unwrap();
        second.load_state(&first.state()).unwrap();
        losses.extend((0..3).map(|_| train_step(&net, &t, |g| second.step(g).unwrap())));
        assert_eq!(losses, straight);
        let resumed = net.params().state_dict();
        assert!(end.iter().all(|(k, w)| values(w) == values(&resumed[k])));
        let typo = build(&adam, Param::trainable(&net), &[group(&["**.bais"], None, Some(0.0))]);
        assert!(typo.err().unwrap().to_string().contains("`**.bais` covers no trainable parameter"));
    }
}
