use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::*;
use crate::train::config::{ConfigError, TrainConfig};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A configuration from YAML text, its relative paths from the repository's root.
fn yaml(text: &str) -> Result<TrainConfig, ConfigError> {
    let mut sources = crate::front::span::SourceMap::new();
    let id = sources.add("t.yaml", None, text.to_string());
    TrainConfig::from_value(&crate::front::yaml::parse_config(text, id).unwrap())
}

/// The conditional digits GAN's configuration with `fid` as its FID section.
fn cgan(fid: &str) -> TrainConfig {
    yaml(&format!(
        "data: {{csv: data/digits8x8.csv, target: digit, shape: [1, 8, 8], val_split: 0, rescale: [-1, 1]}}\n\
         optimizer: {{name: adam, lr: 0.0002, betas: [0.5, 0.999]}}\n\
         gan: {{generator: {{model: Generator}}, discriminator: {{model: Discriminator}}, fid: {fid}}}\n\
         batch_size: 64\nepochs: 2\nseed: 0\n"
    ))
    .unwrap()
}

const DIGITS_FEATURES: &str =
    "{spec: specs/digits_cnn.wick, model: DigitsFeatures, weights: data/digits_features.safetensors, samples: 500}";

#[test]
fn real_digits_are_near_each_other_in_the_classifiers_features_and_noise_is_far() {
    let config = cgan(DIGITS_FEATURES);
    let fid = config.gan.as_ref().and_then(|g| g.fid.as_ref()).unwrap();
    let splits =
        crate::train::data::load_with(&config.data, Path::new(ROOT), 0, &Device::Cpu, false).unwrap();
    let real = &splits.train.x;
    let probe = FidProbe::prepare(fid, Path::new(ROOT), &Device::Cpu, &[64, 1, 8, 8], real, 0, 29).unwrap();
    let rows =
        |order: &[u32]| real.index_select(&Tensor::from_slice(order, order.len(), &Device::Cpu).unwrap(), 0);
    let order = crate::train::data::shuffled(real.dim(0).unwrap(), REAL_ROWS_SALT);
    let itself = probe.distance(&rows(&order[..500]).unwrap()).unwrap();
    let others = probe.distance(&rows(&order[500..1000]).unwrap()).unwrap();
    let noise = Tensor::rand(-1f32, 1., (500, 1, 8, 8), &Device::Cpu).unwrap();
    let noise = probe.distance(&noise).unwrap();
    eprintln!(
        "FID of the real sample against itself {itself:.3e}, other real digits {others:.3}, noise {noise:.3}"
    );
    assert!(itself.abs() < 1e-9, "the real images against themselves: {itself}");
    assert!(others > 0.0 && noise > 20.0 * others, "other real digits {others}, noise {noise}");
}

#[test]
fn a_features_model_that_does_not_take_the_generators_images_is_refused_at_start() {
    // A features model of 4x4 images, with weights that fit it, against the 8x8 digits GAN.
    let dir = std::env::temp_dir().join(format!("wick-fid-refused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("small.wick");
    std::fs::write(
        &spec,
        "dim N = 8\nmodel Small { input x: [N, 1, 4, 4]\n output f = x |> Flatten |> fc: Linear(3) }\n",
    )
    .unwrap();
    let small = crate::Model::from_file(spec.to_str().unwrap(), &crate::Options::default()).unwrap();
    small.build(&Device::Cpu, DType::F32).unwrap().save_weights(dir.join("small.safetensors")).unwrap();
    let fid = format!("{{spec: {}, weights: {}}}", spec.display(), dir.join("small.safetensors").display());
    let config = cgan(&fid);
    let gan = config.gan.as_ref().unwrap();
    let cgan_spec = format!("{ROOT}/specs/cgan_digits.wick");
    let e = match crate::train::gan::session::prepare(&cgan_spec, &config, gan, Path::new(ROOT), false) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a features model of 4x4 images was accepted for 8x8 samples"),
    };
    std::fs::remove_dir_all(&dir).ok();
    assert!(e.starts_with("gan.fid.model: Small's input `x` takes [1, 4, 4]"), "{e}");
    assert!(e.contains("the generator makes images of [1, 8, 8]"), "{e}");
}

#[test]
fn fid_keys_are_checked_where_they_are_written() {
    let gan = |fid: &str| {
        format!(
            "data: {{csv: a.csv, target: y}}\n\
             gan: {{generator: {{model: G}}, discriminator: {{model: D}}, fid: {fid}}}\n"
        )
    };
    let e = yaml(&gan("{spec: f.wick, weigths: w.safetensors}")).unwrap_err();
    assert_eq!(e.message, "unknown key `weigths`");
    assert!(e.help.as_deref().is_some_and(|h| h.starts_with("did you mean `weights`?")), "{e:?}");
    assert!(e.span.is_some());
    let e = yaml(&gan("{spec: f.wick, weights: w.safetensors, every: 0}")).unwrap_err();
    assert_eq!(e.message, "`every` must be at least 1, found 0");
    let text = gan("{spec: f.wick, weights: w.safetensors, samples: 1}");
    let e = yaml(&text).unwrap_err();
    assert_eq!(e.message, "`samples` must be at least 2, found 1");
    let span = e.span.expect("a span");
    assert_eq!(&text[span.start as usize..span.end as usize], "1");
}

/// The `train_fid` column of a run folder's metrics log, one value per epoch row.
fn fid_per_epoch(run: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|c| *c == "train_fid").unwrap();
    lines
        .filter(|l| l.starts_with("epoch,"))
        .map(|l| l.split(',').nth(at).unwrap().parse().unwrap())
        .collect()
}

/// Trains the digits cGAN briefly with `config` into `dir/out` (resuming what is there).
fn cgan_run(config: &TrainConfig, dir: &Path, out: &str, resume: bool) -> std::path::PathBuf {
    use crate::train::observe::Progress;
    use crate::train::run::{train, RunOptions};
    let options = RunOptions { resume, out: Some(dir.join(out)), ..Default::default() };
    let spec = format!("{ROOT}/specs/cgan_digits.wick");
    train(&spec, config, Path::new(ROOT), &options, Box::new(Progress::quiet())).unwrap();
    dir.join(out)
}

const SMALL_FID: &str =
    "{spec: specs/digits_cnn.wick, model: DigitsFeatures, weights: data/digits_features.safetensors, samples: 100";

#[test]
fn the_fid_is_measured_after_every_nth_epoch_only() {
    let dir = std::env::temp_dir().join(format!("wick-fid-every-{}", std::process::id()));
    let mut config = cgan(&format!("{SMALL_FID}, every: 2}}"));
    config.epochs = 4;
    let fids = fid_per_epoch(&cgan_run(&config, &dir, "run", false));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(fids.len(), 4);
    assert!(fids[0].is_nan() && fids[2].is_nan(), "measured after epochs 2 and 4 only: {fids:?}");
    assert!(fids[1].is_finite() && fids[3].is_finite() && fids[1] > 0.0, "{fids:?}");
}

#[test]
fn a_resumed_run_measures_the_fids_of_an_uninterrupted_one() {
    let dir = std::env::temp_dir().join(format!("wick-fid-resume-{}", std::process::id()));
    let mut config = cgan(&format!("{SMALL_FID}}}"));
    config.epochs = 3; // 29 steps an epoch: 1,797 rows in batches of 64
    let whole = fid_per_epoch(&cgan_run(&config, &dir, "whole", false));
    // Cut where epoch 2 ends, and cut inside epoch 3: a cut epoch is recorded with a NaN
    // `fid` (not measured), which the checkpoint must hold and give back.
    config.max_steps = Some(58);
    cgan_run(&config, &dir, "cut", false);
    config.max_steps = Some(70);
    cgan_run(&config, &dir, "cut", true);
    config.max_steps = None;
    let resumed = fid_per_epoch(&cgan_run(&config, &dir, "cut", true));
    std::fs::remove_dir_all(&dir).ok();
    assert!(whole.len() == 3 && whole.iter().all(|f| f.is_finite()), "{whole:?}");
    assert_eq!(format!("{whole:?}"), format!("{resumed:?}"), "the resumed run's FIDs differ");
}
