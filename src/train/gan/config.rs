//! The `gan:` section of a `train` configuration: which models play, how each is optimised,
//! the adversarial loss and the tricks around it.
//!
//! ```yaml
//! gan:
//!   generator: {model: Generator, optimizer: {name: adam, lr: 0.0002, betas: [0.5, 0.999]}}
//!   discriminator: {model: Discriminator, steps: 1}   # `steps`: its updates per generator update
//!                                                     # `spec: other.wick`: a model of another file
//!   loss: {name: bce, real_label: 0.9}                # lsgan, wgan, wgan_gp, dragan, hinge; r1: γ
//!   label_noise: 0.05                                 # flip a real/fake label with this chance
//!   latent: normal                                    # or uniform (in [-1, 1])
//!   ema: 0.999                                        # the generator's weights' moving average
//!   fid: {spec: digits_cnn.wick, model: DigitsFeatures, weights: ../data/digits_features.safetensors,
//!         samples: 500, every: 1}                     # Frechet distance in a classifier's features
//! ```
//!
//! A player without its own `optimizer` takes the section's top-level one.

use serde::Deserialize;

use super::loss::AdversarialLoss;
use crate::train::config::de;
use crate::train::config::Clip;
use crate::train::optim::config::OptimizerConfig;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GanConfig {
    pub generator: PlayerConfig,
    pub discriminator: PlayerConfig,
    #[serde(default, deserialize_with = "de::by_name")]
    pub loss: AdversarialLoss,
    /// The chance that each real or fake label the discriminator is trained on is flipped.
    #[serde(default)]
    pub label_noise: f64,
    #[serde(default)]
    pub latent: Latent,
    /// The generator step reuses the last discriminator step's fake batch (as PyTorch's DCGAN
    /// example does) instead of drawing a fresh one (as WGAN-GP's algorithm does). Default:
    /// reuse when the discriminator takes one step per iteration, draw afresh otherwise.
    #[serde(default)]
    pub reuse_fake: Option<bool>,
    /// Keep an exponential moving average of the generator's weights with this decay; the
    /// samples and the generator's weights file are the average's.
    #[serde(default)]
    pub ema: Option<f64>,
    /// Images in each epoch's sample grid (from one fixed latent batch).
    #[serde(default = "sixty_four")]
    pub samples: usize,
    /// The Frechet distance between generated and real images' features, after some epochs.
    #[serde(default)]
    pub fid: Option<FidConfig>,
}

/// Where the features the Frechet distance compares come from, and how often it is measured.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FidConfig {
    /// The spec of the features model, relative to the configuration (as data paths are).
    pub spec: String,
    /// The features model in it; its default model when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// Its trained weights (a `.safetensors` keyed like its `state_dict`), relative as `spec`.
    pub weights: String,
    /// The output holding the features; its first when absent.
    #[serde(default)]
    pub output: Option<String>,
    /// Generated images compared with as many real training images.
    #[serde(default = "five_hundred")]
    pub samples: usize,
    /// Measured after every `every`-th epoch.
    #[serde(default = "one")]
    pub every: usize,
}

/// One model of the game and how it is trained.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayerConfig {
    /// The model's name in its spec (`model Generator { ... }`).
    pub model: String,
    /// The spec file that holds the model, relative to the configuration's folder; absent: the
    /// spec being trained.
    #[serde(default)]
    pub spec: Option<String>,
    /// This player's optimizer; the configuration's `optimizer` when absent.
    #[serde(default, deserialize_with = "optional_by_name")]
    pub optimizer: Option<OptimizerConfig>,
    /// Updates per iteration (a WGAN critic takes 5).
    #[serde(default = "one")]
    pub steps: usize,
    /// Gradient clipping before each of its updates.
    #[serde(default)]
    pub clip: Option<Clip>,
    /// Parameter paths (globs) left untouched.
    #[serde(default)]
    pub frozen: Vec<String>,
}

/// How latent vectors are drawn.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Latent {
    /// Standard normal.
    #[default]
    Normal,
    /// Uniform in [-1, 1].
    Uniform,
}

fn one() -> usize {
    1
}

fn sixty_four() -> usize {
    64
}

fn five_hundred() -> usize {
    500
}

fn optional_by_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<OptimizerConfig>, D::Error> {
    de::by_name(d).map(Some)
}

impl GanConfig {
    /// Whether the generator step reuses the discriminator's fake batch (see `reuse_fake`).
    pub fn reuses_fake(&self) -> bool {
        self.reuse_fake.unwrap_or(self.discriminator.steps == 1)
    }

    /// What the keys say together; an error names the key's path.
    pub fn check(&self) -> Result<(), (Vec<&'static str>, String)> {
        for (key, player) in [("generator", &self.generator), ("discriminator", &self.discriminator)] {
            if player.steps == 0 {
                return Err((vec!["gan", key, "steps"], "`steps` must be at least 1, found 0".into()));
            }
        }
        if self.generator.steps != 1 {
            return Err((
                vec!["gan", "generator", "steps"],
                "the generator takes one update per iteration; give the discriminator more `steps` instead"
                    .into(),
            ));
        }
        if self.generator.model == self.discriminator.model && self.generator.spec == self.discriminator.spec
        {
            return Err((
                vec!["gan", "discriminator", "model"],
                format!("the generator and the discriminator are both `{}`", self.generator.model),
            ));
        }
        if !(0.0..0.5).contains(&self.label_noise) {
            return Err((
                vec!["gan", "label_noise"],
                format!("`label_noise` is a probability below 0.5, found {}", self.label_noise),
            ));
        }
        if let Some(decay) = self.ema.filter(|d| !(0.0..1.0).contains(d)) {
            return Err((vec!["gan", "ema"], format!("`ema` is a decay in [0, 1), found {decay}")));
        }
        if self.samples == 0 {
            return Err((vec!["gan", "samples"], "`samples` must be at least 1, found 0".into()));
        }
        if let Some(fid) = &self.fid {
            // An unbiased covariance needs two rows.
            if fid.samples < 2 {
                let why = format!("`samples` must be at least 2, found {}", fid.samples);
                return Err((vec!["gan", "fid", "samples"], why));
            }
            if fid.every == 0 {
                return Err((vec!["gan", "fid", "every"], "`every` must be at least 1, found 0".into()));
            }
        }
        self.loss.check().map_err(|e| (vec!["gan", "loss"], e))
    }
}
