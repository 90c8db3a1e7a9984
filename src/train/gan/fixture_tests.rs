//! The two GAN fixtures (`tests/fixtures/gan_dcgan`, `gan_wgan_gp`: whole PyTorch training
//! iterations with every random draw) replayed through the path `wick train` takes: the
//! session built from the spec and a `gan:` configuration, the loop driving the program, with
//! the fixture's initial weights and its draws injected.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};

use super::draws::{Draw, Draws, Kind, Update};
use super::session::prepare;
use crate::train::checkpoint::RunState;
use crate::train::fit::fit;
use crate::train::observe::{Observer, Plan, StepRecord};
use crate::train::program::Program;
use crate::train::session::feeds;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
/// The fixtures' tolerance on losses, gradients and weights, relative to max(1, |reference|).
const TOL: f64 = 1e-4;

/// A fixture's draws by name: `name(draw)` gives the key of a draw.
struct Replay {
    tensors: HashMap<String, Tensor>,
    name: fn(&Draw) -> String,
}

impl Draws for Replay {
    fn draw(&mut self, draw: Draw, dims: &[usize], dtype: DType, _: &Device) -> candle_core::Result<Tensor> {
        let key = (self.name)(&draw);
        let t = self.tensors.get(&key).ok_or_else(|| candle_core::Error::msg(format!("no draw `{key}`")))?;
        assert_eq!(t.dims(), dims, "{key}");
        t.to_dtype(dtype)
    }
}

/// The gradients a player was shown, update by update.
type Seen = Arc<Mutex<Vec<BTreeMap<String, Tensor>>>>;

/// Each step's figures.
struct Steps(Arc<Mutex<Vec<StepRecord>>>);

impl Observer for Steps {
    fn start(&mut self, _: &Plan) -> std::io::Result<()> {
        Ok(())
    }
    fn step(&mut self, record: &StepRecord) -> std::io::Result<()> {
        self.0.lock().unwrap().push(record.clone());
        Ok(())
    }
}

/// max |got - want| / max(1, max |want|).
fn error(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.dims(), want.dims());
    let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let (g, w) = (flat(got), flat(want));
    let scale = w.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale
}

/// The outcome of a replay: each step's figures, the first gradients of each player, the
/// final weights (`Generator.<key>`, ...), and the fixture's tensors.
struct Replayed {
    steps: Vec<StepRecord>,
    first_grads: [BTreeMap<String, Tensor>; 2],
    weights: BTreeMap<String, Tensor>,
    fixture: HashMap<String, Tensor>,
}

/// Replays fixture `name`: its reals (`real_keys`, in order) as the data, its draws by `draw_name`.
fn replay(
    name: &str,
    gan: &str,
    real_keys: &[String],
    draw_name: fn(&Draw) -> String,
    models: [&str; 2],
) -> Replayed {
    let fixture = candle_core::safetensors::load(format!("{DIR}/{name}.safetensors"), &Device::Cpu).unwrap();
    let reals: Vec<Tensor> = real_keys.iter().map(|k| fixture[k].clone()).collect();
    let batch = reals[0].dim(0).unwrap();
    let dir = std::env::temp_dir().join(format!("wick-gan-fixture-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("real.safetensors");
    candle_core::safetensors::save(
        &HashMap::from([("x".to_string(), Tensor::cat(&reals, 0).unwrap())]),
        &data,
    )
    .unwrap();
    let yaml = format!(
        "data: {{safetensors: {}, autoencoder: true, val_split: 0, shuffle: false}}\nbatch_size: {batch}\n\
         epochs: 1\n{gan}",
        data.display()
    );
    let config = crate::train::tests::parse_config(&yaml);
    let spec = format!("{DIR}/{name}.wick");
    let mut session = prepare(&spec, &config, config.gan.as_ref().unwrap(), Path::new("/"), false).unwrap();
    std::fs::remove_dir_all(&dir).ok();

    let program = &mut session.program;
    program.draws = Box::new(Replay { tensors: fixture.clone(), name: draw_name });
    // The fixture's initial weights: `g.<key>` and `d.<key>`, namespaced by model here.
    let initial: HashMap<String, Tensor> = fixture
        .iter()
        .filter_map(|(k, t)| {
            let (model, key) = match k.split_once('.')? {
                ("g", key) => (models[0], key),
                ("d", key) => (models[1], key),
                _ => return None,
            };
            Some((format!("{model}.{key}"), t.clone()))
        })
        .collect();
    program.restore(&initial, None).unwrap();
    let grads: [Seen; 2] = Default::default();
    for (player, seen) in [&mut program.generator, &mut program.discriminator].into_iter().zip(&grads) {
        let seen = seen.clone();
        player.watch = Some(Box::new(move |g| seen.lock().unwrap().push(g.clone())));
    }

    let (train, val) = feeds(&session.splits, &session.input, &session.target);
    let mut state = RunState { base_lr: program.base_learning_rate(), ..Default::default() };
    let steps = Arc::new(Mutex::new(Vec::new()));
    let mut observer = Steps(steps.clone());
    fit(program, &train, &val, &session.fit, &mut state, &mut observer, &mut |_, _, _| Ok(())).unwrap();
    let first = |i: usize| grads[i].lock().unwrap().first().cloned().unwrap();
    let steps = steps.lock().unwrap().clone();
    Replayed { steps, first_grads: [first(0), first(1)], weights: program.weights(), fixture }
}

impl Replayed {
    /// Every `<prefix><key>` tensor of the fixture against `got[<key>]`.
    fn check(&self, prefix: &str, got: &BTreeMap<String, Tensor>, what: &str) {
        let mut checked = 0;
        for (k, want) in self.fixture.iter().filter(|(k, _)| k.starts_with(prefix)) {
            let key = &k[prefix.len()..];
            let g = got.get(key).unwrap_or_else(|| panic!("{what}: no `{key}` (have {:?})", got.keys()));
            let e = error(g, want);
            assert!(e <= TOL, "{what} `{key}`: error {e:.3e}");
            checked += 1;
        }
        assert!(checked > 0, "{what}: nothing under `{prefix}`");
    }

    /// The figure `name` of every step against the fixture's `losses.<key>` (one per step,
    /// or `per` per step, averaged as the step reports them).
    fn check_figure(&self, name: &str, key: &str, per: usize) {
        let want = self.fixture[&format!("losses.{key}")].to_vec1::<f32>().unwrap();
        assert_eq!(want.len(), self.steps.len() * per, "{key}");
        for (i, step) in self.steps.iter().enumerate() {
            let w = want[i * per..(i + 1) * per].iter().map(|v| *v as f64).sum::<f64>() / per as f64;
            let got = step.figures.get(name).unwrap();
            assert!((got - w).abs() <= TOL * w.abs().max(1.0), "{name} at step {}: {got} vs {w}", i + 1);
        }
    }

    fn namespaced(&self, model: &str) -> BTreeMap<String, Tensor> {
        let prefix = format!("{model}.");
        self.weights
            .iter()
            .filter_map(|(k, t)| Some((k.strip_prefix(&prefix)?.to_string(), t.clone())))
            .collect()
    }
}

#[test]
fn the_dcgan_fixture_replays_four_iterations_of_bce_with_smoothed_labels() {
    let gan = "optimizer: {name: adam, lr: 0.0002, betas: [0.5, 0.999]}
gan:
  generator: {model: Generator}
  discriminator: {model: Discriminator}
  loss: {name: bce, real_label: 0.9}
";
    let reals: Vec<String> = (0..4).map(|i| format!("step{i}.real")).collect();
    let name = |d: &Draw| match (d.update, d.kind) {
        (Update::Discriminator(0), Kind::Latent) => format!("step{}.z", d.iteration),
        other => panic!("the DCGAN fixture draws no {other:?}"),
    };
    let r = replay("gan_dcgan", gan, &reals, name, ["Generator", "Discriminator"]);
    assert_eq!(r.steps.len(), 4);
    r.check_figure("d_loss", "d_loss", 1);
    r.check_figure("g_loss", "g_loss", 1);
    r.check_figure("d_real", "d_real", 1);
    r.check_figure("d_fake", "d_fake", 1);
    r.check("grad.g.", &r.first_grads[0], "the generator's first gradient");
    r.check("grad.d.", &r.first_grads[1], "the discriminator's first gradient");
    r.check("final.g.", &r.namespaced("Generator"), "the generator after 4 iterations");
    r.check("final.d.", &r.namespaced("Discriminator"), "the discriminator after 4 iterations");
}

#[test]
fn the_wgan_gp_fixture_replays_three_iterations_with_the_penalty_differentiated_twice() {
    let gan = "optimizer: {name: adam, lr: 0.001, betas: [0.0, 0.9]}
gan:
  generator: {model: Generator}
  discriminator: {model: Critic, steps: 2}
  loss: {name: wgan_gp, lambda: 10}
";
    let reals: Vec<String> =
        (0..3).flat_map(|i| (0..2).map(move |j| format!("iter{i}.critic{j}.real"))).collect();
    let name = |d: &Draw| match (d.update, d.kind) {
        (Update::Discriminator(j), Kind::Latent) => format!("iter{}.critic{j}.z", d.iteration),
        (Update::Discriminator(j), Kind::Uniform("interpolation")) => {
            format!("iter{}.critic{j}.eps", d.iteration)
        }
        (Update::Generator, Kind::Latent) => format!("iter{}.z", d.iteration),
        other => panic!("the WGAN-GP fixture draws no {other:?}"),
    };
    let r = replay("gan_wgan_gp", gan, &reals, name, ["Generator", "Critic"]);
    assert_eq!(r.steps.len(), 3);
    // A step reports the mean over its two critic updates.
    r.check_figure("d_loss", "d_loss", 2);
    r.check_figure("penalty", "gp", 2);
    r.check_figure("wasserstein", "wasserstein", 2);
    r.check_figure("g_loss", "g_loss", 1);
    r.check("grad.d.", &r.first_grads[1], "the critic's first gradient");
    // The penalty's share is far above the tolerance: dropping the second-order terms fails above.
    let share: f64 = r
        .fixture
        .iter()
        .filter(|(k, _)| k.starts_with("grad_gp.d."))
        .map(|(k, t)| {
            error(
                &(&r.fixture[&k.replace("grad_gp.", "grad.")] - t).unwrap(),
                &r.fixture[&k.replace("grad_gp.", "grad.")],
            )
        })
        .fold(0.0, f64::max);
    assert!(share > 100.0 * TOL, "the penalty's share of the gradient is {share:.3e}");
    r.check("final.g.", &r.namespaced("Generator"), "the generator after 3 iterations");
    r.check("final.d.", &r.namespaced("Critic"), "the critic after 3 iterations");
}

/// A small GAN on random 1x4x4 "images" (two models in one spec) for the tests below.
fn toy(critic_extra: &str, gan: &str, name: &str) -> (std::path::PathBuf, crate::train::config::TrainConfig) {
    let dir = std::env::temp_dir().join(format!("wick-gan-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!(
        "dim N = 4\n\
         model G {{ input z: [N, 3]\n output image = z |> fc: Linear(16) |> Tanh |> reshape([N, 1, 4, 4]) }}\n\
         model D {{ input image: [N, 1, 4, 4]\n h = image |> Flatten |> fc1: Linear(8)\n {critic_extra}\n output s = h |> fc2: Linear(1) }}\n"
    );
    std::fs::write(dir.join("gan.wick"), spec).unwrap();
    let x = Tensor::randn(0f32, 1., (12, 1, 4, 4), &Device::Cpu).unwrap().tanh().unwrap();
    candle_core::safetensors::save(&HashMap::from([("x".to_string(), x)]), dir.join("real.safetensors"))
        .unwrap();
    let yaml = format!(
        "data: {{safetensors: {}, autoencoder: true, val_split: 0}}\nbatch_size: 4\nepochs: 2\n{gan}",
        dir.join("real.safetensors").display()
    );
    (dir, crate::train::tests::parse_config(&yaml))
}

#[test]
fn a_penalty_on_a_critic_with_a_layer_lacking_second_order_gradients_is_refused_at_start_naming_it() {
    let gan = "gan: {generator: {model: G}, discriminator: {model: D}, loss: wgan_gp}\n";
    let (dir, config) = toy("h = h + randn_like(h)", gan, "blocked");
    let spec = dir.join("gan.wick").display().to_string();
    let e = match prepare(&spec, &config, config.gan.as_ref().unwrap(), &dir, false) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a critic with randn_like was accepted for a gradient penalty"),
    };
    assert!(e.contains("randn_like") && e.contains("second-order"), "{e}");
    // Without the penalty the same critic trains.
    let gan = "gan: {generator: {model: G}, discriminator: {model: D}, loss: wgan}\n";
    let (dir, config) = toy("h = h + randn_like(h)", gan, "unblocked");
    let spec = dir.join("gan.wick").display().to_string();
    assert!(prepare(&spec, &config, config.gan.as_ref().unwrap(), &dir, false).is_ok());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_gan_run_interrupted_and_resumed_ends_with_the_weights_of_an_uninterrupted_one() {
    use crate::train::observe::Progress;
    use crate::train::run::{train, RunOptions};
    let gan = "gan: {generator: {model: G}, discriminator: {model: D, steps: 2}, loss: wgan_gp, ema: 0.9, samples: 5}\n";
    let (dir, mut config) = toy("", gan, "resume");
    let spec = dir.join("gan.wick").display().to_string();
    let run = |config: &crate::train::config::TrainConfig, out: &str, resume: bool| {
        let options = RunOptions { resume, out: Some(dir.join(out)), ..Default::default() };
        train(&spec, config, &dir, &options, Box::new(Progress::quiet())).unwrap()
    };
    let whole = run(&config, "whole", false);
    assert_eq!((whole.epochs, whole.steps), (2, 4), "12 rows, batch 4, 2 critic batches a step");
    config.max_steps = Some(3);
    run(&config, "cut", false);
    config.max_steps = None;
    let resumed = run(&config, "cut", true);
    assert_eq!(resumed.steps, 4);
    for file in ["G", "D"] {
        let read = |out: &str| {
            candle_core::safetensors::load(dir.join(out).join(format!("{file}.safetensors")), &Device::Cpu)
                .unwrap()
        };
        let (a, b) = (read("whole"), read("cut"));
        assert!(!a.is_empty());
        for (k, t) in &a {
            assert_eq!(error(t, &b[k]), 0.0, "{file}.{k} differs after the resume");
        }
    }
    for epoch in 1..=2 {
        let png = std::fs::read(dir.join(format!("whole/samples/epoch_{epoch:03}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The critic's first gradient, and its initial `out.weight`, for a linear critic of 3
/// features trained with `loss` (the same seed, so the same weights and draws, every call).
fn linear_critic_first_gradient(loss: &str) -> (BTreeMap<String, Tensor>, Tensor) {
    let dir = std::env::temp_dir().join(format!("wick-gan-r1-{}-{}", std::process::id(), loss.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("linear.wick");
    std::fs::write(
        &spec,
        "dim N = 4\nmodel Generator {\n    input z: [N, 2]\n    x = z |> g: Linear(3)\n    output x: [N, 3]\n}\n\
         model Critic {\n    input x: [N, 3]\n    s = x |> out: Linear(1)\n    output s: [N, 1]\n}\n",
    )
    .unwrap();
    let real = Tensor::arange(0f32, 24.0, &Device::Cpu).unwrap().reshape((8, 3)).unwrap();
    let real = ((real / 10.0).unwrap().sin().unwrap() * 2.0).unwrap();
    let data = dir.join("real.safetensors");
    candle_core::safetensors::save(&HashMap::from([("x".to_string(), real)]), &data).unwrap();
    let yaml = format!(
        "data: {{safetensors: {}, autoencoder: true, val_split: 0, shuffle: false}}\nbatch_size: 4\n\
         epochs: 1\nseed: 3\ngan:\n  generator: {{model: Generator}}\n  discriminator: {{model: Critic}}\n  \
         loss: {loss}\n",
        data.display()
    );
    let config = crate::train::tests::parse_config(&yaml);
    let mut session =
        prepare(spec.to_str().unwrap(), &config, config.gan.as_ref().unwrap(), Path::new("/"), false)
            .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let program = &mut session.program;
    // A copy: the optimizer updates the weight's storage in place.
    let initial = program.weights()["Critic.out.weight"].copy().unwrap();
    let seen: Seen = Default::default();
    let sink = seen.clone();
    program.discriminator.watch = Some(Box::new(move |g| sink.lock().unwrap().push(g.clone())));
    let (train, val) = feeds(&session.splits, &session.input, &session.target);
    let mut state = RunState { base_lr: program.base_learning_rate(), ..Default::default() };
    let mut observer = Steps(Default::default());
    fit(program, &train, &val, &session.fit, &mut state, &mut observer, &mut |_, _, _| Ok(())).unwrap();
    let first = seen.lock().unwrap().first().cloned().unwrap();
    (first, initial)
}

/// For a linear critic D(x) = w·x + b the input gradient is w at every row, so R1 is γ/2 ‖w‖²
/// and adds exactly γ w to w's gradient (and nothing to b's): a penalty whose input gradient
/// came back detached would add nothing.
#[test]
fn an_r1_penalty_adds_gamma_times_the_weight_to_a_linear_critics_gradient() {
    let (plain, w) = linear_critic_first_gradient("{name: hinge}");
    let (penalised, _) = linear_critic_first_gradient("{name: hinge, r1: 4}");
    let added = (&penalised["out.weight"] - &plain["out.weight"]).unwrap();
    let want = (&w * 4.0).unwrap();
    assert!(error(&added, &want) < 1e-6, "{added} vs {want}");
    let bias = (&penalised["out.bias"] - &plain["out.bias"]).unwrap().abs().unwrap().max_all().unwrap();
    assert!(bias.to_scalar::<f32>().unwrap() < 1e-7);
    assert!(w.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() > 1e-3, "a weight to see");
}
