//! Data for training: examples read from CSV, `.npy`/`.npz`, safetensors, IDX or made up
//! (synthetic), converted to features and targets, split into training and validation, and
//! checked against the model before training starts.
//!
//! The path through this module: [`DataConfig`] (the `data:` section) → a reader → the dtype
//! and shape rules (`convert`) → [`Dataset`] → [`load`]'s split and standardisation →
//! [`Splits`]; then [`check_fits`] against the lowered model's inputs.

mod check;
mod config;
mod convert;
mod csv;
mod dataset;
mod idx;
mod npy;
pub mod rescaled;
mod safetensors;
mod synthetic;
pub mod text;
mod written;
mod zip;

use std::path::Path;

use candle_core::{Device, Tensor};

pub use check::{check_classes, check_fits, check_input};
pub use config::{DataConfig, Element, Source, Synthetic, Target, Text, Validation};
use convert::Raw;
pub use dataset::{shuffled, Dataset};
pub use safetensors::{read_all as read_safetensors, read_metadata as read_safetensors_metadata};

/// The training and validation splits a [`DataConfig`] describes.
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
    /// What `rescale` did to the features, if it was asked for.
    pub rescaled: Option<rescaled::Rescaled>,
    /// The tokens of a `text` source.
    pub vocabulary: Option<text::Vocabulary>,
}

impl Splits {
    /// What the weights files of a run on these splits carry besides tensors: how the data was
    /// rescaled, the vocabulary.
    pub fn metadata(&self) -> Option<std::collections::HashMap<String, String>> {
        let mut entries = self.rescaled.map(|r| r.metadata()).unwrap_or_default();
        entries.extend(self.vocabulary.iter().flat_map(text::Vocabulary::metadata));
        (!entries.is_empty()).then_some(entries)
    }
}

/// Why data could not be read or does not fit: names the file (and line, or array) and says
/// what was expected and what was found.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
    /// A text file's line.
    #[error("{path}:{line}: {message}")]
    Format { path: String, line: usize, message: String },
    /// A file or an array in one (`` `d.npz` array `x` ``).
    #[error("{what}: {message}")]
    Array { what: String, message: String },
    #[error("data: {0}")]
    Config(String),
    /// The data against the model.
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// Read the data `config` names (relative paths from `base`), split it with `seed`, and
/// standardise it if asked; the splits end on `device`. A validation split must not be empty.
pub fn load(config: &DataConfig, base: &Path, seed: u64, device: &Device) -> Result<Splits, DataError> {
    load_with(config, base, seed, device, true)
}

/// As [`load`]; `validated: false` lets the validation split be empty (a GAN has no use for one).
pub fn load_with(
    config: &DataConfig,
    base: &Path,
    seed: u64,
    device: &Device,
    validated: bool,
) -> Result<Splits, DataError> {
    // A text source's vocabulary is the training corpus's, shared by the validation text.
    let vocabulary = match &config.source {
        Source::Text(t) => Some(text::vocabulary(
            &base.join(&t.path),
            t.tokenizer.as_ref().map(|p| base.join(p)).as_deref(),
        )?),
        _ => None,
    };
    let data = read(&config.source, config, base, vocabulary.as_ref())?;
    // Overlapping windows of one text would leak into a shuffled validation split: its end is
    // held out instead.
    let in_order = !config.shuffle || vocabulary.is_some();
    let (mut train, mut val) = match &config.val {
        Validation::Split(f) if !in_order => data.split(*f, seed)?,
        Validation::Split(f) => data.split_in_order(*f)?,
        Validation::Source(source) => (data, read(source, config, base, vocabulary.as_ref())?),
    };
    if train.is_empty() {
        return Err(DataError::Config(format!(
            "no training examples are left ({} for validation)",
            val.len()
        )));
    }
    if val.example_shape() != train.example_shape() || val.x.dtype() != train.x.dtype() {
        return Err(DataError::Mismatch(format!(
            "the validation examples are {:?} ({}) but the training examples are {:?} ({})",
            val.example_shape(),
            convert::dtype_name(val.x.dtype()),
            train.example_shape(),
            convert::dtype_name(train.x.dtype()),
        )));
    }
    if config.standardize {
        if !train.x.dtype().is_float() {
            return Err(DataError::Config(
                "`standardize: true` needs float features; these are integer ids (i64)".into(),
            ));
        }
        train = train.standardize(&mut [&mut val])?;
    }
    let mut rescaled = None;
    if let Some(range) = config.rescale {
        if !train.x.dtype().is_float() {
            return Err(DataError::Config(
                "`rescale` needs float features; these are integer ids (i64)".into(),
            ));
        }
        let (min, max) = train.range()?;
        let map = rescaled::Rescaled { lo: range.0, hi: range.1, min, max };
        for d in [&mut train, &mut val] {
            d.x = map.apply(&d.x)?;
        }
        rescaled = Some(map);
    }
    if val.is_empty() && validated {
        return Err(DataError::Config(format!("no validation examples ({} for training)", train.len())));
    }
    let on_device = |d: Dataset| -> Result<Dataset, DataError> {
        // An autoencoder's target is what the model sees: the features as standardised.
        let y = if config.target == Target::Input { d.x.clone() } else { d.y };
        Ok(Dataset { x: d.x.to_device(device)?, y: y.to_device(device)? })
    };
    Ok(Splits { train: on_device(train)?, val: on_device(val)?, rescaled, vocabulary })
}

/// A model input from a file (`wick run`): a `.npy` file, or a safetensors file's tensor `name`,
/// `input.NAME` or only tensor.
pub fn read_input(path: &Path, name: &str) -> Result<Tensor, DataError> {
    if path.extension().is_some_and(|e| e == "npy") {
        return Ok(npy::read_npy(path)?.tensor);
    }
    let mut tensors = read_safetensors(path)?;
    if tensors.len() == 1 {
        if let Some(t) = tensors.drain().map(|(_, t)| t).next() {
            return Ok(t);
        }
    }
    let prefixed = format!("input.{name}");
    tensors.remove(name).or_else(|| tensors.remove(&prefixed)).ok_or_else(|| {
        let mut held: Vec<&String> = tensors.keys().collect();
        held.sort();
        let held = match held.is_empty() {
            true => "no tensors".to_string(),
            false => held.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
        };
        let message = format!("no tensor `{name}` or `{prefixed}`; the file holds {held}");
        DataError::Array { what: format!("`{}`", path.display()), message }
    })
}

/// One source, read and converted by the configuration's dtype and shape rules; a text source
/// is tokenized with `vocabulary`.
fn read(
    source: &Source,
    config: &DataConfig,
    base: &Path,
    vocabulary: Option<&text::Vocabulary>,
) -> Result<Dataset, DataError> {
    let at = |p: &str| base.join(p);
    let raw = match source {
        Source::Csv { path, features, target } => {
            csv::read(&at(path), features, target.as_deref(), config.target)?
        }
        Source::Npy { features, target } => Raw {
            x: npy::read_npy(&at(features))?,
            y: target.as_deref().map(|t| npy::read_npy(&at(t))).transpose()?,
        },
        Source::Npz { path, features, target } => Raw {
            x: npy::read_npz(&at(path), features)?,
            y: target.as_deref().map(|t| npy::read_npz(&at(path), t)).transpose()?,
        },
        Source::Safetensors { path, features, target } => {
            let names: Vec<&str> = std::iter::once(features.as_str()).chain(target.as_deref()).collect();
            let mut found = safetensors::read(&at(path), &names)?.into_iter();
            let x = found.next().ok_or_else(|| DataError::Config(format!("`{path}` gave no features")))?;
            Raw { x, y: found.next() }
        }
        Source::Idx { images, labels } => idx::read(&at(images), labels.as_deref().map(at).as_deref())?,
        Source::Synthetic(s) => synthetic::generate(s, config.target)?,
        Source::Text(t) => {
            let vocabulary =
                vocabulary.ok_or_else(|| DataError::Config("a text source without its vocabulary".into()))?;
            text::windows(&at(&t.path), vocabulary, t.seq_len, t.stride)?
        }
    };
    convert::assemble(raw, config.dtype, config.shape.as_deref(), config.target)
}

/// A fresh folder under the system's temporary one, removed when dropped.
#[cfg(test)]
pub(crate) struct TestDir(std::path::PathBuf);

#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("wick-data-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    TestDir(dir)
}

#[cfg(test)]
impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

#[cfg(test)]
mod tests;
