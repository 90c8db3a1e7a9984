//! The conditional GAN of `specs/cgan_digits.wick` learns to draw the digit it is asked for: a
//! brief run, judged by a digits classifier trained here on the same data, recognises the
//! samples of each label as that label far above chance (10%). A full run's figure is in
//! the README's GAN section.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use wick::diag::RenderStyle;
use wick::sample::{self, Request, Weights};
use wick::train::config::source::read_config;
use wick::train::config::Overrides;
use wick::train::observe::Progress;
use wick::train::run::{train, RunOptions};
use wick::{Model, Options};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Trains `spec` as its `train` section says, with `epochs` and `data` changed.
fn trained(spec: &str, epochs: usize, out: &Path, data: Option<&str>) -> std::path::PathBuf {
    let spec = format!("{ROOT}/{spec}");
    let compiled = wick::train::session::compile(&spec, None).unwrap();
    let (mut config, dir) = read_config(&spec, &compiled, None, RenderStyle::PLAIN).unwrap();
    config.apply(&Overrides { epochs: Some(epochs), ..Default::default() }).unwrap();
    if let Some(data) = data {
        let text = format!("data: {data}\n");
        let mut sources = wick::front::span::SourceMap::new();
        let id = sources.add("data.yaml", None, text.clone());
        let value = wick::front::yaml::parse_config(&text, id).unwrap();
        let mut with = wick::train::config::TrainConfig::from_value(&value)
            .unwrap_or_else(|_| panic!("a data section alone is a configuration"));
        std::mem::swap(&mut config.data, &mut with.data);
    }
    let options = RunOptions { out: Some(out.to_path_buf()), ..Default::default() };
    train(&spec, &config, &dir, &options, Box::new(Progress::quiet())).unwrap();
    out.to_path_buf()
}

#[test]
fn a_briefly_trained_conditional_gan_draws_the_digits_it_is_asked_for() {
    let dir = std::env::temp_dir().join(format!("wick-cgan-{}", std::process::id()));
    // The classifier sees the data as it is (0..16): samples come back in that scale, the
    // generator's tanh range mapped back by the `rescale` its weights record.
    let data = "{csv: \"../data/digits8x8.csv\", target: digit, shape: [1, 8, 8], val_split: 0.2}";
    let classifier = trained("specs/digits_cnn.wick", 8, &dir.join("classifier"), Some(data));
    let gan = trained("specs/cgan_digits.wick", 15, &dir.join("gan"), None);

    let cnn = Model::from_file(&format!("{ROOT}/specs/digits_cnn.wick"), &Options::default()).unwrap();
    let cnn = cnn.build(&Device::Cpu, DType::F32).unwrap();
    cnn.load_weights(classifier.join("weights.safetensors"), false).unwrap();
    let mut recognised = 0;
    let per_label = 32; // the classifier's batch
    for label in 0..10i64 {
        let request = Request {
            spec: format!("{ROOT}/specs/cgan_digits.wick"),
            options: Options::default(),
            n: per_label,
            seed: label as u64,
            weights: Weights::File(gan.join("Generator.safetensors")),
            device: Device::Cpu,
            label: Some(label),
        };
        let samples = sample::generate(&request).unwrap();
        assert_eq!(samples.model, "Generator", "the spec's train section names its generator");
        let images: &Tensor = &samples.outputs["image"];
        let logits = cnn.infer(std::slice::from_ref(images), false).unwrap().remove(0);
        let guesses = logits.argmax(1).unwrap().to_vec1::<u32>().unwrap();
        recognised += guesses.iter().filter(|g| **g as i64 == label).count();
    }
    let rate = recognised as f64 / (10 * per_label) as f64;
    eprintln!("recognised {recognised} of {} samples as their label ({:.1}%)", 10 * per_label, 100.0 * rate);
    assert!(rate > 0.6, "only {:.1}% of the samples were recognised as their label", 100.0 * rate);
    std::fs::remove_dir_all(&dir).ok();
}
