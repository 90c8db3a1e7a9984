//! Frozen layers stay frozen: the batch norms of a frozen backbone keep their running
//! statistics bit for bit (eval mode, as torchvision fine-tuning puts them), unless
//! `frozen_bn: train` asks for batch statistics.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

use super::observe::Progress;
use super::run::{train, RunOptions};
use super::tests::parse_config;

/// A ResNet-18 in small: the stem and two stages of basic blocks (10 batch norms, 20 running-
/// statistic tensors), then a linear head.
const SPEC: &str = r#"use "std/resnet.wick"
dim N = 16
model TinyResNet {
    input x: [N, 1, 8, 8]
    features = x |> conv1: Conv2d(8, 3, padding=1, bias=false) |> bn1: BatchNorm2d |> relu: ReLU
                 |> layer1: BasicStage(8, blocks=2)
                 |> layer2: BasicStage(16, blocks=2, stride=2)
    logits = features |> avgpool: AdaptiveAvgPool2d(1) |> Flatten |> fc: Linear(3)
    output logits: [N, 3]
}
"#;

/// Trains two epochs with the backbone frozen; the result weights.
fn trained(frozen_bn: &str, name: &str) -> HashMap<String, Tensor> {
    let dir = std::env::temp_dir().join(format!("wick-frozen-bn-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("tiny_resnet.wick");
    std::fs::write(&spec, SPEC).unwrap();
    let config = parse_config(&format!(
        "data: {{synthetic: {{rows: 72, features: [1, 8, 8], classes: 3}}, val_split: 0.25}}\n\
         frozen: [conv1, bn1, layer1, layer2]\n{frozen_bn}epochs: 2\nbatch_size: 16\n"
    ));
    let options = RunOptions { out: Some(dir.join("run")), ..Default::default() };
    let report =
        train(spec.to_str().unwrap(), &config, Path::new(""), &options, Box::new(Progress::quiet())).unwrap();
    assert_eq!(report.epochs, 2);
    let weights = super::data::read_safetensors(&dir.join("run/weights.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    weights
}

fn running_stats(weights: &HashMap<String, Tensor>) -> Vec<(String, Vec<f32>)> {
    let mut stats: Vec<(String, Vec<f32>)> = weights
        .iter()
        .filter(|(k, _)| k.ends_with("running_mean") || k.ends_with("running_var"))
        .map(|(k, t)| (k.clone(), t.to_vec1::<f32>().unwrap()))
        .collect();
    stats.sort_by(|a, b| a.0.cmp(&b.0));
    stats
}

#[test]
fn a_frozen_backbones_running_statistics_are_bit_identical_after_training() {
    let stats = running_stats(&trained("", "eval"));
    assert_eq!(stats.len(), 20, "{:?}", stats.iter().map(|s| &s.0).collect::<Vec<_>>());
    // As initialised: means 0, variances 1, every bit.
    for (key, values) in &stats {
        let init = if key.ends_with("running_mean") { 0f32 } else { 1f32 };
        assert!(values.iter().all(|v| v.to_bits() == init.to_bits()), "{key} moved: {values:?}");
    }
    // Asked to train them, all 20 move, as they did for every frozen backbone before.
    let moved = running_stats(&trained("frozen_bn: train\n", "train"));
    let drifted = moved.iter().zip(&stats).filter(|(a, b)| a.1 != b.1).count();
    assert_eq!(drifted, 20);
}

/// A DCGAN in small whose generator's first stage (`up1`, `bn1`) is frozen.
const GAN_SPEC: &str = r#"dim N = 16
model Generator {
    input z: [N, 8, 1, 1]
    image = z |> up1: ConvTranspose2d(16, 2, bias=false) |> bn1: BatchNorm2d |> ReLU
              |> up2: ConvTranspose2d(8, 4, stride=2, padding=1, bias=false) |> bn2: BatchNorm2d |> ReLU
              |> up3: ConvTranspose2d(1, 4, stride=2, padding=1) |> Tanh
    output image: [N, 1, 8, 8]
}
model Discriminator {
    input image: [N, 1, 8, 8]
    logit = image |> down1: Conv2d(8, 4, stride=2, padding=1) |> LeakyReLU(0.2)
                  |> down2: Conv2d(16, 4, stride=2, padding=1, bias=false) |> bn2: BatchNorm2d
                  |> LeakyReLU(0.2) |> out: Conv2d(1, 2) |> Flatten
    output logit: [N, 1]
}
"#;

#[test]
fn a_gan_players_frozen_batch_norms_keep_their_running_statistics() {
    let dir = std::env::temp_dir().join(format!("wick-frozen-bn-gan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("tiny_dcgan.wick");
    std::fs::write(&spec, GAN_SPEC).unwrap();
    let config = parse_config(
        "data: {synthetic: {rows: 48, features: [1, 8, 8], classes: 2}, val_split: 0}\n\
         gan: {generator: {model: Generator, frozen: [up1, bn1]}, discriminator: {model: Discriminator}, \
         loss: bce, samples: 4}\nepochs: 2\nbatch_size: 16\n",
    );
    let options = RunOptions { out: Some(dir.join("run")), ..Default::default() };
    train(spec.to_str().unwrap(), &config, Path::new(""), &options, Box::new(Progress::quiet())).unwrap();
    let g = running_stats(&super::data::read_safetensors(&dir.join("run/Generator.safetensors")).unwrap());
    let d =
        running_stats(&super::data::read_safetensors(&dir.join("run/Discriminator.safetensors")).unwrap());
    std::fs::remove_dir_all(&dir).ok();
    let untouched = |values: &[f32], init: f32| values.iter().all(|v| v.to_bits() == init.to_bits());
    for (key, values) in &g {
        let init = if key.ends_with("running_mean") { 0f32 } else { 1f32 };
        // The frozen stage's statistics are as initialised; the trained stage's moved.
        assert_eq!(untouched(values, init), key.starts_with("bn1."), "{key}: {values:?}");
    }
    assert_eq!(g.len(), 4);
    assert!(d.iter().all(|(key, values)| !untouched(values, if key.ends_with("mean") { 0.0 } else { 1.0 })));
}
