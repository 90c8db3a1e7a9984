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
mod images;
mod named;
mod npy;
pub mod recorded;
pub mod rescaled;
mod safetensors;
mod synthetic;
pub mod text;
mod written;
mod zip;

use std::path::Path;

use candle_core::{Device, Tensor};

pub use check::{check_class_indices, check_classes, check_fits, check_input, check_named};
pub(crate) use config::one_or_many;
pub use config::{DataConfig, Element, Names, Source, Synthetic, Target, Text, Validation};
use convert::Raw;
pub use dataset::{shuffled, Column, Dataset, Role};
pub use images::{with_image_hint, ImageOptions, Size};
pub use safetensors::{
    read_all as read_safetensors, read_header as read_safetensors_header,
    read_metadata as read_safetensors_metadata, Header as SafetensorsHeader,
};

/// The training, validation and test splits a [`DataConfig`] describes.
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
    /// The held-out test examples (`test_split` or `test`), evaluated once after training.
    pub test: Option<Dataset>,
    /// What the section learned from the training split (standardisation, `rescale`, class
    /// names, a text's vocabulary), recorded with the weights.
    pub recorded: recorded::Recorded,
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
/// standardise it if asked; the splits end on `device`. A validation split must not be empty
/// unless `val_split: 0` asks for none.
pub fn load(config: &DataConfig, base: &Path, seed: u64, device: &Device) -> Result<Splits, DataError> {
    load_with(config, base, seed, device, true)
}

/// As [`load`]; `validated: false` lets the validation split be empty (a GAN has no use for one).
/// `val_split: 0` always may.
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
    let (data, classes) = read(&config.source, config, base, None, vocabulary.as_ref())?;
    // Other files' class names are indexed as the training file's.
    let read_other =
        |source| read(source, config, base, classes.as_deref(), vocabulary.as_ref()).map(|(d, _)| d);
    // Overlapping windows of one text would leak into a shuffled split: its end is held out.
    let in_order = !config.shuffle || vocabulary.is_some();
    let (data, mut test) = match &config.test {
        None => (data, None),
        // Drawn with another seed than validation's, so the two are independent draws.
        Some(Validation::Split(f)) if !in_order => split_off(data.split(*f, seed ^ TEST_SEED)?),
        Some(Validation::Split(f)) => split_off(data.split_in_order(*f)?),
        Some(Validation::Source(source)) => (data, Some(read_other(source)?)),
        Some(Validation::Fold { .. }) => {
            return Err(DataError::Config("a test split is held out once, not by folds".into()))
        }
    };
    let (mut train, mut val) = match &config.val {
        Validation::Split(f) if !in_order => data.split(*f, seed)?,
        Validation::Split(f) => data.split_in_order(*f)?,
        Validation::Source(source) => (data, read_other(source)?),
        Validation::Fold { k, index } => {
            if data.len() < *k {
                return Err(DataError::Config(format!(
                    "{k} folds need at least {k} examples; there are {}",
                    data.len()
                )));
            }
            let order = match in_order {
                true => (0..data.len() as u32).collect(),
                false => shuffled(data.len(), seed),
            };
            data.fold(&order, *k, *index)?
        }
    };
    if train.is_empty() {
        return Err(DataError::Config(format!(
            "no training examples are left ({} for validation)",
            val.len()
        )));
    }
    if let Some(n) = config.limit.filter(|n| *n < train.len()) {
        train = train.head(n)?;
    }
    check_alike(&train, &val, config.named.as_ref(), "validation")?;
    if let Some(test) = &test {
        check_alike(&train, test, config.named.as_ref(), "test")?;
    }
    let mut recorded = recorded::Recorded { classes, vocabulary, ..Default::default() };
    if config.standardize {
        let float_input = train.x.dtype().is_float()
            || train.more.values().any(|c| c.role == Role::Input && c.tensor.dtype().is_float());
        if let (Some(names), false) = (&config.named, float_input) {
            let inputs: Vec<&str> = names.inputs.iter().map(|(n, _)| n.as_str()).collect();
            return Err(DataError::Config(format!(
                "`standardize: true` standardises float inputs; {} hold integer ids (i64)",
                inputs.join(", ")
            )));
        }
        if !float_input {
            return Err(DataError::Config(
                "`standardize: true` needs float features; these are integer ids (i64)".into(),
            ));
        }
        let mut others: Vec<&mut Dataset> = std::iter::once(&mut val).chain(test.as_mut()).collect();
        let (standardized, stats) = train.standardize(&mut others)?;
        train = standardized;
        recorded.standardized = stats;
    }
    if let Some(range) = config.rescale {
        if !train.x.dtype().is_float() {
            return Err(DataError::Config(
                "`rescale` needs float features; these are integer ids (i64)".into(),
            ));
        }
        let (min, max) = train.range()?;
        let map = rescaled::Rescaled { lo: range.0, hi: range.1, min, max };
        for d in [&mut train, &mut val].into_iter().chain(test.as_mut()) {
            d.x = map.apply(&d.x)?;
        }
        recorded.rescaled = Some(map);
    }
    // `val_split: 0` asks for no validation; a split too small to hold a row is a mistake.
    let asked_none = matches!(config.val, Validation::Split(f) if f == 0.0);
    if val.is_empty() && validated && !asked_none {
        return Err(DataError::Config(format!(
            "no validation examples ({} for training): the split is too small to hold one; \
             `val_split: 0` trains without validation",
            train.len()
        )));
    }
    let on_device = |d: Dataset| -> Result<Dataset, DataError> {
        // An autoencoder's target is what the model sees: the features as standardised.
        let y = if config.target == Target::Input { d.x.clone() } else { d.y.clone() };
        Ok(Dataset { y, ..d }.to_device(device)?)
    };
    let test = test.map(on_device).transpose()?;
    Ok(Splits { train: on_device(train)?, val: on_device(val)?, test, recorded })
}

/// Mixed into the seed of the test split's shuffle.
const TEST_SEED: u64 = 0x7e57;

fn split_off((rest, held): (Dataset, Dataset)) -> (Dataset, Option<Dataset>) {
    (rest, Some(held))
}

/// One source read by `config`'s rules (paths relative to `base`), as it is in the file: not
/// split, standardised or rescaled (`wick eval --data`). Class names are indexed as in
/// `classes` (the training data's, as the weights record them).
pub fn read_source(
    source: &Source,
    config: &DataConfig,
    base: &Path,
    classes: Option<&[String]>,
) -> Result<Dataset, DataError> {
    read(source, config, base, classes, None).map(|(d, _)| d)
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

/// The validation or test split (`what`) against the training one: each array's example shape
/// and kind of element must agree, so a model that fits one fits the other.
fn check_alike(train: &Dataset, other: &Dataset, names: Option<&Names>, what: &str) -> Result<(), DataError> {
    let (x, y) = names.map_or(("", ""), Names::first);
    // The one-array form compares the features only: an autoencoder's targets are set later.
    let arrays = if names.is_some() { usize::MAX } else { 1 };
    for ((name, _, t), (_, _, v)) in train.named(x, y).zip(other.named(x, y)).take(arrays) {
        let (tt, vt) = (t.dims().get(1..).unwrap_or(&[]), v.dims().get(1..).unwrap_or(&[]));
        if tt != vt || t.dtype() != v.dtype() {
            let of = if names.is_some() { format!(" of `{name}`") } else { String::new() };
            return Err(DataError::Mismatch(format!(
                "the {what} examples{of} are {vt:?} ({}) but the training examples{of} are {tt:?} ({})",
                convert::dtype_name(v.dtype()),
                convert::dtype_name(t.dtype()),
            )));
        }
    }
    Ok(())
}

/// One source, read and converted by the configuration's dtype and shape rules; the class
/// names of a CSV's string labels (indexed as `classes`, when given). A text source is
/// tokenized with `vocabulary`.
fn read(
    source: &Source,
    config: &DataConfig,
    base: &Path,
    classes: Option<&[String]>,
    vocabulary: Option<&text::Vocabulary>,
) -> Result<(Dataset, Option<Vec<String>>), DataError> {
    if let Some(names) = &config.named {
        return Ok((named::read(source, names, config.dtype, base)?, None));
    }
    let at = |p: &str| base.join(p);
    let mut names = None;
    let raw = match source {
        Source::Csv { path, features, target } => {
            let (raw, found) = csv::read(&at(path), features, target.as_deref(), config.target, classes)?;
            names = found;
            raw
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
        Source::Images { path, target, options } => {
            let (raw, found) = images::read(&at(path), target.as_deref(), options, classes)?;
            names = found;
            raw
        }
        Source::Synthetic(s) => synthetic::generate(s, config.target)?,
        Source::Text(t) => {
            let vocabulary =
                vocabulary.ok_or_else(|| DataError::Config("a text source without its vocabulary".into()))?;
            text::windows(&at(&t.path), vocabulary, t.seq_len, t.stride)?
        }
    };
    Ok((convert::assemble(raw, config.dtype, config.shape.as_deref(), config.target)?, names))
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
mod named_tests;
#[cfg(test)]
mod tests;
