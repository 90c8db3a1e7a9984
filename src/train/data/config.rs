//! The `data:` section of a training configuration: one source of examples, how to read its
//! features and targets (or, in the named form, several arrays by the model input or target
//! each feeds), and how to split off validation data.
//!
//! These are the checked forms; `written.rs` reads the YAML and checks it into them, so a
//! loaded [`DataConfig`] can only describe something the readers can do.

use serde::Deserialize;

/// What `data:` says, checked.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "super::written::RawData")]
pub struct DataConfig {
    pub source: Source,
    pub val: Validation,
    /// Held-out test examples (`test_split` or `test`), evaluated once on the run's result.
    pub test: Option<Validation>,
    /// Each example's features reshaped to this (`[1, 8, 8]` for 64 CSV columns into a CNN).
    pub shape: Option<Vec<usize>>,
    /// The features' element type; `None`: floats as f32, u8 as pixels scaled to [0, 1] (f32),
    /// other integers as token ids (i64).
    pub dtype: Option<Element>,
    pub target: Target,
    /// Standardise features with the training split's per-feature mean and deviation.
    pub standardize: bool,
    /// Map the features linearly from the training split's range (its least and greatest
    /// value) onto this one: `[-1, 1]` for a generator that ends in tanh.
    pub rescale: Option<(f64, f64)>,
    /// Shuffle before the split and between epochs; off, files keep their order (time series).
    pub shuffle: bool,
    /// The named form (`inputs:` and `targets:`): which arrays of the source feed which model
    /// input and which target; `None`: the one-feature, one-target form above.
    pub named: Option<Names>,
    /// Train on the first this many examples of the training split only (overfitting a tiny
    /// subset on purpose, to check that a model can learn at all); validation is unchanged.
    pub limit: Option<usize>,
    /// `augment:`: random changes to each training example, drawn from the run's seed, the
    /// epoch and the example.
    pub augment: Option<crate::train::augment::Augment>,
}

/// The named form: arrays (an `.npz`/safetensors key, a `.npy` file, a CSV column group) by
/// the model input or the target they feed, row-aligned. Each list is sorted by name and
/// holds at least one entry; the first input and target are a [`super::Dataset`]'s `x` and `y`.
#[derive(Clone, Debug, PartialEq)]
pub struct Names {
    pub inputs: Vec<(String, Vec<String>)>,
    pub targets: Vec<(String, Vec<String>)>,
    /// `target_dtype`: every target's kind. `None`: each target's own, from its array: integers
    /// are class indices and floats values; a CSV column is class indices, a group values.
    pub target_dtype: Option<Element>,
}

impl Names {
    /// The name `x` feeds (the first input) and the one `y` does (the first target).
    pub fn first(&self) -> (&str, &str) {
        fn name(list: &[(String, Vec<String>)]) -> &str {
            list.first().map_or("", |(n, _)| n.as_str())
        }
        (name(&self.inputs), name(&self.targets))
    }
}

/// Where examples come from. Paths are relative to the configuration file. A `target` of
/// `None` means the targets are the features ([`Target::Input`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A CSV file with a header row; `features` empty: every column but the target.
    Csv {
        path: String,
        features: Vec<String>,
        target: Option<String>,
    },
    /// One `.npy` file of features (first axis: examples) and one of targets.
    Npy {
        features: String,
        target: Option<String>,
    },
    /// Named arrays in a `.npz` archive (as `np.savez` writes; not `savez_compressed`).
    Npz {
        path: String,
        features: String,
        target: Option<String>,
    },
    /// Named tensors in a safetensors file.
    Safetensors {
        path: String,
        features: String,
        target: Option<String>,
    },
    /// MNIST's IDX files: u8 images `[N, H, W]` and u8 labels `[N]`, uncompressed.
    Idx {
        images: String,
        labels: Option<String>,
    },
    Synthetic(Synthetic),
    /// Images: a folder with one sub-folder per class, or a CSV with a `path` column and the
    /// label column `target` (`label` when `None`).
    Images {
        path: String,
        target: Option<String>,
        options: super::images::ImageOptions,
    },
    /// A text corpus as (input, next-token target) windows of token ids.
    Text(Text),
}

/// `text:`: windows of `seq_len` token ids, one every `stride`, each with the same window one
/// token on as its targets; tokens are the corpus's characters, or a `tokenizer.json`'s.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub path: String,
    pub tokenizer: Option<String>,
    pub seq_len: usize,
    pub stride: usize,
}

/// A seeded data set with a learnable rule, for smoke tests: features drawn from a normal
/// distribution (or token ids uniform in `0..vocab`), and each label the arg-max of a fixed
/// random linear map of them.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    pub rows: usize,
    /// Each example's shape: `4`, or `[1, 28, 28]`.
    #[serde(deserialize_with = "one_or_many")]
    pub features: Vec<usize>,
    #[serde(default = "two")]
    pub classes: usize,
    /// Token ids in `0..vocab` (i64) instead of float features.
    #[serde(default)]
    pub vocab: Option<usize>,
    #[serde(default)]
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Validation {
    /// This fraction of the (shuffled) examples, taken from the end.
    Split(f64),
    /// A separate source, read with the same rules as the training one.
    Source(Source),
    /// Fold `index` of `k` equal folds of the (shuffled) examples: k-fold cross-validation
    /// trains once per fold ([`crate::train::kfold`]).
    Fold { k: usize, index: usize },
}

/// What the targets are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Class indices (i64): cross-entropy, accuracy.
    Classes,
    /// Values (f32): regression.
    Values,
    /// The (standardised) features themselves: an autoencoder.
    Input,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Element {
    F32,
    I64,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "one value or a list of them")]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

pub(crate) fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(vs) => vs,
    })
}

fn two() -> usize {
    2
}
