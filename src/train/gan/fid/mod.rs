//! The Frechet inception distance (FID) of a GAN's samples, measured in the features of a model
//! the configuration names (any trained classifier: the digits CNN's penultimate layer for the
//! digits) rather than Inception's, after every `every`-th epoch.
//!
//! The real side is fixed when training starts: `samples` training images chosen by the run's
//! seed, their feature statistics computed once. The generated side is the generator's output
//! for one fixed latent batch (the sample grid's stream, so epochs compare), in evaluation mode
//! and with its moving average's weights when there is one.
//!
//! The distance itself ([`frechet`]) is plain f64 arithmetic, apart from candle: it lives here
//! because the GAN loop is its only user; the features model is what ties it to a run.

pub mod frechet;

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::config::FidConfig;
use crate::train::run::TrainError;
use frechet::{Reference, Statistics};

/// Separates the choice of real images from every other use of the run's seed.
const REAL_ROWS_SALT: u64 = 0xF1D0_5EED;

/// A features model with the real images' statistics, measuring generated images against them.
pub struct FidProbe {
    net: crate::Lowered,
    /// Which of the model's outputs holds the features.
    output: usize,
    real: Reference,
    /// Generated images compared per measurement (as many as the real ones).
    pub samples: usize,
    every: u64,
    steps_per_epoch: u64,
}

impl FidProbe {
    /// The features model `config` names (paths relative to `config_dir`), checked to take
    /// images of the generator's output shape `made` (`[batch, ...]`), and the statistics of
    /// `samples` rows of `real` (the training images) chosen by `seed`; measuring at the end of
    /// every `every`-th epoch of `steps_per_epoch` iterations.
    pub fn prepare(
        config: &FidConfig,
        config_dir: &Path,
        device: &Device,
        made: &[usize],
        real: &Tensor,
        seed: u64,
        steps_per_epoch: usize,
    ) -> Result<FidProbe, TrainError> {
        let net = features_net(config, config_dir, device, made)?;
        let names = net.output_names();
        let output = match &config.output {
            None => 0,
            Some(name) => names.iter().position(|n| n == name).ok_or_else(|| {
                located(
                    "output",
                    format!("{} has no output `{name}`; its outputs: {}", net.name, names.join(", ")),
                )
            })?,
        };
        let rows = real.dim(0)?;
        if config.samples > rows {
            let why =
                format!("{} samples asked for, and the training split has {rows} images", config.samples);
            return Err(located("samples", why));
        }
        let chosen: Vec<u32> = crate::train::data::shuffled(rows, seed ^ REAL_ROWS_SALT)
            .into_iter()
            .take(config.samples)
            .collect();
        let chosen = real.index_select(&Tensor::from_slice(&chosen, chosen.len(), real.device())?, 0)?;
        let real = Reference::new(statistics(&net, output, &chosen)?);
        Ok(FidProbe {
            net,
            output,
            real,
            samples: config.samples,
            every: config.every as u64,
            steps_per_epoch: steps_per_epoch.max(1) as u64,
        })
    }

    /// Whether iteration `iteration` (0-based, over the run) ends an epoch measured after.
    pub fn due(&self, iteration: u64) -> bool {
        let done = iteration + 1;
        done.is_multiple_of(self.steps_per_epoch) && (done / self.steps_per_epoch).is_multiple_of(self.every)
    }

    /// The distance between `generated` (`[samples, ...]`, the generator's output) and the
    /// real images, in the features model's features.
    pub fn distance(&self, generated: &Tensor) -> candle_core::Result<f64> {
        let generated = statistics(&self.net, self.output, generated)?;
        self.real.distance(&generated).map_err(candle_core::Error::msg)
    }
}

/// The statistics of `net`'s features (its output `output`) of `images`, run through it in
/// batches of the size it was built for; the last batch is padded with zeros, whose rows are
/// dropped (evaluation mode treats rows apart).
fn statistics(net: &crate::Lowered, output: usize, images: &Tensor) -> candle_core::Result<Statistics> {
    let batch = net.inputs().first().and_then(|i| i.dims.first().copied()).unwrap_or(1);
    let rows = images.dim(0)?;
    let images = images.to_dtype(net.dtype())?.to_device(net.device())?;
    let mut features = Vec::with_capacity(rows);
    for start in (0..rows).step_by(batch.max(1)) {
        let take = batch.min(rows - start);
        let mut chunk = images.narrow(0, start, take)?;
        if take < batch {
            let mut pad = chunk.dims().to_vec();
            pad[0] = batch - take;
            chunk = Tensor::cat(&[&chunk, &Tensor::zeros(pad, chunk.dtype(), chunk.device())?], 0)?;
        }
        let out = net.infer(&[chunk], false)?.swap_remove(output);
        let flat = out.flatten_from(1)?.narrow(0, 0, take)?.to_dtype(DType::F64)?;
        features.extend(flat.to_vec2::<f64>()?);
    }
    Statistics::of_rows(&features).map_err(candle_core::Error::msg)
}

/// An error in the key `gan.fid.<key>`.
fn located(key: &str, why: String) -> TrainError {
    TrainError::Usage(format!("gan.fid.{key}: {why}"))
}

/// Below this many rows a batch's fixed costs (a pass's layers and allocations) dominate
/// small images' features; above it, a large features model's activations would.
const MOST_ROWS_PER_PASS: usize = 256;

/// The features model, built for batches of (about) `config.samples` rows in as few passes of
/// at most [`MOST_ROWS_PER_PASS`], its input checked against the generator's images `made`,
/// with its weights.
fn features_net(
    config: &FidConfig,
    config_dir: &Path,
    device: &Device,
    made: &[usize],
) -> Result<crate::Lowered, TrainError> {
    let spec = config_dir.join(&config.spec).display().to_string();
    let not_compiled = |e| located("spec", format!("the features spec `{spec}` does not compile: {e}"));
    let compiled = crate::train::session::compile(&spec, config.model.as_deref())?;
    let declared = crate::Model::from_compiled(compiled).map_err(not_compiled)?;
    // Bound as `wick run` binds a spec's dims from its inputs, here a pass of `rows` of the
    // generator's images: the batch dim takes `rows` (and a symbolic image size the generator's).
    let rows = config.samples.div_ceil(config.samples.div_ceil(MOST_ROWS_PER_PASS));
    let mut dims = made.to_vec();
    if let Some(batch) = dims.first_mut() {
        *batch = rows;
    }
    let inputs = declared
        .graph()
        .inputs
        .iter()
        .map(|(name, _)| Ok((name.clone(), Tensor::zeros(dims.as_slice(), DType::F32, device)?)));
    let inputs = inputs.collect::<candle_core::Result<_>>()?;
    let options = crate::Options { model: config.model.clone(), ..Default::default() };
    let model = crate::Model::bound_to_inputs(&spec, &options, &inputs).map_err(not_compiled)?;
    let net = model.build(device, DType::F32)?;
    check_input(&net, made).map_err(|why| located("model", why))?;
    let weights = config_dir.join(&config.weights);
    let report = net
        .load_weights(&weights, true)
        .map_err(|e| located("weights", format!("`{}`: {e}", weights.display())))?;
    // The file may hold more than the features need (a classifier's last layer).
    let skipped = report.skipped;
    if !skipped.missing.is_empty() || !skipped.mismatched.is_empty() {
        let lacking = crate::lower::WeightsMismatch { unexpected: Vec::new(), ..skipped };
        let why =
            format!("`{}` does not fit {}: {}", weights.display(), net.name, lacking.to_string().trim_end());
        return Err(located("weights", why));
    }
    Ok(net)
}

/// The features model takes one float input, of the generator's image shape past the batch.
fn check_input(net: &crate::Lowered, made: &[usize]) -> Result<(), String> {
    let [input] = net.inputs() else {
        return Err(format!(
            "{} takes {} inputs; a features model takes one, the image",
            net.name,
            net.inputs().len()
        ));
    };
    let image = made.get(1..).unwrap_or_default();
    if !input.dtype.is_float() || input.dims.get(1..) != Some(image) {
        return Err(format!(
            "{}'s input `{}` takes {:?} ({}) per batch of {}, and the generator makes images of {image:?}: \
             the features model must take the generator's images",
            net.name,
            input.name,
            input.dims.get(1..).unwrap_or_default(),
            input.dtype,
            input.dims.first().copied().unwrap_or_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
