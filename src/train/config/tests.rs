use super::*;
use crate::diag::RenderStyle;
use crate::train::losses::Losses;
use crate::train::objective::LossConfig;
use crate::train::schedule::Unit;

fn from_wick(text: &str) -> Result<TrainConfig, String> {
    let spec = format!("dim N = 2\nmodel M {{ input x: [N, 4]\n output y = x |> Linear(3) }}\n{text}");
    let c = crate::compile_source("m.wick", &spec, &crate::Options::default());
    assert!(!c.diagnostics.has_errors(), "{}", c.render_diagnostics(RenderStyle::PLAIN));
    let value = c.train.as_ref().expect("a train section");
    TrainConfig::from_value(value).map_err(|e| {
        let mut d = crate::diag::Diagnostics::default();
        d.push(e.diagnostic());
        crate::diag::render_all(&d, &c.sources, RenderStyle::PLAIN)
    })
}

fn from_yaml(text: &str) -> Result<TrainConfig, ConfigError> {
    let mut sources = crate::front::span::SourceMap::new();
    let id = sources.add("t.yaml", None, text.to_string());
    let value = crate::front::yaml::parse_config(text, id).expect("yaml");
    TrainConfig::from_value(&value)
}

#[test]
fn a_train_section_reads_every_kind_of_value() {
    let c = from_wick(
        r#"train {
    data: { csv: "iris.csv", target: species, val_split: 0.25 }
    loss: { name: cross_entropy, label_smoothing: 0.1 }
    optimizer: sgd_is_not_here_so_use_a_map
}"#,
    );
    let e = c.unwrap_err();
    assert!(e.contains("unknown name `sgd_is_not_here_so_use_a_map`"), "{e}");
    let c = from_wick(
        r#"train {
    data: { csv: "iris.csv", target: species, val_split: 0.25 }
    loss: { name: cross_entropy, label_smoothing: 0.1 }
    optimizer: { name: sgd, lr: 1e-2, momentum: 0.9, nesterov: true }
    schedule: { name: cosine, every: step, warmup: 100 }
    epochs: 3, batch_size: 8
    metrics: [accuracy, top2_accuracy]
    early_stopping: { patience: 2 }
    clip: { norm: 1.0 }
    frozen: ["fc1", "layers.*.attn"]
    l1: -0.5e-3
}"#,
    )
    .unwrap();
    use crate::train::data::{Source, Validation};
    assert!(
        matches!(&c.data.source, Source::Csv { path, target: Some(t), .. } if path == "iris.csv" && t == "species")
    );
    assert_eq!(c.data.val, Validation::Split(0.25));
    assert_eq!(c.loss, Losses::One(LossConfig::cross_entropy(0.1)));
    assert!(
        matches!(c.optimizer, crate::train::optim::config::OptimizerConfig::Sgd { lr, nesterov: true, .. } if lr == 0.01)
    );
    assert_eq!((c.schedule.every, c.schedule.warmup), (Unit::Step, 100));
    assert_eq!((c.epochs, c.batch_size), (3, 8));
    assert_eq!(c.metrics, Some(vec!["accuracy".to_string(), "top2_accuracy".to_string()]));
    assert_eq!(
        c.early_stopping.map(|e| (e.monitor, e.patience, e.restore_best)),
        Some(("val_loss".into(), 2, true))
    );
    assert_eq!(c.clip, Some(Clip::Norm { max: 1.0, norm_type: 2.0 }));
    assert_eq!(c.frozen, ["fc1", "layers.*.attn"]);
    assert_eq!(c.l1, -0.0005);
}

#[test]
fn bare_names_stand_for_name_only_mappings() {
    let c = from_yaml("data: {csv: a.csv, target: y}\noptimizer: rmsprop\nloss: mse\nschedule: constant\n")
        .unwrap();
    assert!(
        matches!(c.optimizer, crate::train::optim::config::OptimizerConfig::Rmsprop { alpha, .. } if alpha == 0.99)
    );
    assert_eq!(c.loss, Losses::One(LossConfig::Mse));
}

#[test]
fn a_misspelled_key_points_at_itself_and_suggests_the_right_one() {
    let e = from_wick("train {\n    data: { csv: \"a.csv\", target: y }\n    epohcs: 3\n}").unwrap_err();
    assert!(e.contains("unknown key `epohcs`"), "{e}");
    assert!(e.contains("m.wick:6:5"), "{e}");
    assert!(e.contains("did you mean `epochs`?"), "{e}");

    let e = from_yaml("data: {csv: a.csv, target: y}\noptimizer: {name: adam, lrr: 0.1}\n").unwrap_err();
    assert_eq!(e.message, "unknown key `lrr`");
    assert!(e.help.as_deref().is_some_and(|h| h.starts_with("did you mean `lr`?")), "{e:?}");
    // Inside a name-tagged mapping the error still lands on the key.
    let span = e.span.expect("a span");
    assert_eq!((span.start, span.end), (54, 57));
}

#[test]
fn wrong_values_say_what_was_expected_and_where() {
    let e = from_yaml("data: {csv: a.csv, target: y}\nepochs: many\n").unwrap_err();
    assert!(e.message.contains("many"), "{e:?}");
    assert_eq!(e.span.map(|s| s.start), Some(38));
    let e = from_yaml("data: {csv: a.csv, target: y}\nclip: {norm: 1, value: 2}\n").unwrap_err();
    assert!(e.message.contains("one of `norm`"), "{e:?}");
    let e = from_yaml("epochs: 3\n").unwrap_err();
    assert!(e.message.contains("missing field `data`"), "{e:?}");
}

#[test]
fn a_spec_has_at_most_one_train_section() {
    let spec =
        "model M { input x: [2, 4]\n output y = x |> Linear(3) }\ntrain { epochs: 1 }\ntrain { epochs: 2 }\n";
    let c = crate::compile_source("m.wick", spec, &crate::Options::default());
    let text = c.render_diagnostics(RenderStyle::PLAIN);
    assert!(text.contains("E0113") && text.contains("m.wick:4:7"), "{text}");
}

#[test]
fn a_yaml_spec_carries_its_train_section_too() {
    let spec = "dims: {N: 2}\nmodels:\n  M:\n    body:\n      - input: {x: \"[N, 4]\"}\n      - y: x |> Linear(3)\n      - output: y\ntrain:\n  data: {csv: a.csv, target: y}\n  epochs: 7\n  optimizer: sgd\n";
    let c = crate::compile_source("m.yaml", spec, &crate::Options::default());
    assert!(!c.diagnostics.has_errors(), "{}", c.render_diagnostics(RenderStyle::PLAIN));
    let config = TrainConfig::from_value(c.train.as_ref().unwrap());
    // `sgd` has no default rate, as in PyTorch: the error names the missing key.
    let e = config.unwrap_err();
    assert!(e.message.contains("missing field `lr`"), "{e:?}");
    let fixed = spec.replace("optimizer: sgd", "optimizer: {name: sgd, lr: 0.1}");
    let c = crate::compile_source("m.yaml", &fixed, &crate::Options::default());
    assert_eq!(TrainConfig::from_value(c.train.as_ref().unwrap()).unwrap().epochs, 7);
}

#[test]
fn losses_per_output_read_from_a_spec_and_name_their_figures() {
    let c = from_wick(
        "train {\n    data: { csv: \"a.csv\", target: y }\n    loss: { y: { name: mse, weight: 2 } }\n    \
         early_stopping: { monitor: val_y_loss }\n}",
    )
    .unwrap();
    let Losses::PerOutput(l) = &c.loss else { panic!("per output: {:?}", c.loss) };
    assert_eq!((l[0].output.as_str(), l[0].weight), ("y", 2.0));
    let e = from_wick(
        "train {\n    data: { csv: \"a.csv\", target: y }\n    loss: { y: mse }\n    \
         early_stopping: { monitor: val_accuracy }\n}",
    )
    .unwrap_err();
    assert!(
        e.contains("`val_accuracy` is not a figure this run computes") && e.contains("val_y_loss"),
        "{e}"
    );
    let e = from_yaml("data: {csv: a.csv, target: y}\nloss: cross_entrop\n").unwrap_err();
    assert_eq!(e.message, "unknown name `cross_entrop`");
    assert!(e.help.as_deref().is_some_and(|h| h.starts_with("did you mean `cross_entropy`?")), "{e:?}");
}

#[test]
fn without_validation_nothing_may_watch_a_validation_figure() {
    let yaml =
        |extra: &str| format!("data: {{csv: iris.csv, target: species, val_split: 0}}\nepochs: 2\n{extra}");
    assert!(from_yaml(&yaml("")).is_ok(), "val_split: 0 trains without validation");
    let e = from_yaml(&yaml("early_stopping: {patience: 2}\n")).unwrap_err().message;
    assert!(e.contains("`val_loss` needs validation data") && e.contains("`train_loss`"), "{e}");
    let e = from_yaml(&yaml("schedule: {name: plateau, monitor: val_accuracy}\n")).unwrap_err().message;
    assert!(e.contains("`val_accuracy` needs validation data"), "{e}");
    assert!(from_yaml(&yaml("early_stopping: {monitor: train_loss, patience: 2}\n")).is_ok());
    // A schedule that watches nothing is no trouble.
    assert!(from_yaml(&yaml("schedule: {name: step, step_size: 1}\n")).is_ok());
}

#[test]
fn parameter_groups_read_with_their_own_rate_and_decay() {
    let c = from_yaml(
        "data: {csv: iris.csv, target: species}\noptimizer: {name: adamw, lr: 0.001}\nparam_groups:\n  - {params: [\"**.bias\", \"**.*norm*\"], weight_decay: 0}\n  - {params: [backbone], lr: 1e-4}\n",
    )
    .unwrap();
    assert_eq!(c.param_groups.len(), 2);
    assert_eq!((c.param_groups[0].weight_decay, c.param_groups[0].lr), (Some(0.0), None));
    assert_eq!(c.param_groups[1].params, ["backbone"]);
    let e =
        from_yaml("data: {csv: iris.csv, target: species}\nparam_groups: [{params: [fc], momentum: 0.5}]\n")
            .unwrap_err()
            .message;
    assert!(e.contains("momentum"), "{e}");
}

#[test]
fn init_weights_reads_scheme_calls_in_order_in_both_surfaces() {
    use crate::ops::init_scheme::Scheme;
    let c = from_wick(
        r#"train {
    data: { csv: "iris.csv", target: species }
    init_weights: { "**.weight": normal(0, 0.02), "**.bias": zeros, "0.weight": kaiming_normal(mode=fan_out, nonlinearity="relu") }
}"#,
    )
    .unwrap();
    let globs: Vec<&str> = c.init_weights.iter().map(|(g, _)| g.as_str()).collect();
    assert_eq!(globs, ["**.weight", "**.bias", "0.weight"]);
    assert_eq!(c.init_weights[0].1, Scheme::Normal { mean: 0.0, std: 0.02 });
    assert_eq!(c.init_weights[1].1, Scheme::Zeros);
    assert_eq!(
        c.init_weights[2].1.to_string(),
        "kaiming_normal(a=0, mode=\"fan_out\", nonlinearity=\"relu\")"
    );
    let y = from_yaml("data: {csv: iris.csv, target: species}\ninit_weights:\n  \"**.weight\": \"xavier_uniform(gain=2)\"\n  \"**.bias\": zeros\n")
        .unwrap();
    assert_eq!(y.init_weights[0], ("**.weight".to_string(), Scheme::XavierUniform { gain: 2.0 }));
    // A scheme that does not read points at its value.
    let e = from_wick("train {\n data: { csv: \"iris.csv\", target: species }\n init_weights: { \"**.bias\": normal(0, 0.02, 3) }\n}")
        .unwrap_err();
    assert!(e.contains("`normal` takes at most 2 arguments"), "{e}");
    assert!(e.contains("m.wick:6:29"), "{e}");
}

#[test]
fn clip_reads_any_norm_type_and_refuses_what_does_not_fit() {
    let clip = |text: &str| {
        from_wick(&format!("train {{\n data: {{ csv: \"iris.csv\", target: species }}\n clip: {text}\n}}"))
    };
    assert_eq!(
        clip("{norm: 1.0, norm_type: inf}").unwrap().clip,
        Some(Clip::Norm { max: 1.0, norm_type: f64::INFINITY })
    );
    assert_eq!(clip("{norm: 2, norm_type: 1}").unwrap().clip, Some(Clip::Norm { max: 2.0, norm_type: 1.0 }));
    assert_eq!(clip("{value: 0.5}").unwrap().clip, Some(Clip::Value(0.5)));
    for (bad, says) in [
        ("{norm: 1, value: 1}", "one of `norm`"),
        ("{value: 1, norm_type: 1}", "`norm_type` goes with `norm`"),
        ("{norm: 1, norm_type: 0}", "above 0 or `inf`"),
        ("{norm: 1, norm_typ: 1}", "did you mean `norm_type`?"),
    ] {
        let e = clip(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
    // A 2-norm records the text earlier checkpoints did; another norm is a changed setting.
    let settings =
        |c: &TrainConfig| crate::train::resume::settings(c, &candle_core::Device::Cpu)["clip"].clone();
    assert_eq!(settings(&clip("{norm: 1.0}").unwrap()), "Some(Norm(1.0))");
    assert_eq!(
        settings(&clip("{norm: 1.0, norm_type: inf}").unwrap()),
        "Some(Norm { max: 1.0, norm_type: inf })"
    );
}
