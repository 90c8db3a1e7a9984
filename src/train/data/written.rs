//! The `data:` section as a person writes it: plain optional keys, refused when unknown, then
//! checked into a [`DataConfig`] with every default resolved and every impossible combination
//! named.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::config::{one_or_many, DataConfig, Element, Source, Synthetic, Target, Text, Validation};
use super::convert::count;

mod images;
mod named;
use images::image_options;
use named::named;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NpyFiles {
    #[serde(default)]
    features: Option<String>,
    #[serde(default)]
    target: Option<String>,
    /// The named form: a file per model input and per target.
    #[serde(default)]
    inputs: Option<BTreeMap<String, String>>,
    #[serde(default)]
    targets: Option<BTreeMap<String, String>>,
}

/// `inputs:` or `targets:` as written: a name to an array, a column or a list of columns.
type Written = BTreeMap<String, OneOrMany>;

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged, expecting = "a name or a list of names")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn names(self) -> Vec<String> {
        match self {
            OneOrMany::One(n) => vec![n],
            OneOrMany::Many(ns) => ns,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdxFiles {
    images: String,
    #[serde(default)]
    labels: Option<String>,
}

/// `data:` as written. The source keys appear here and in [`RawSource`] because serde cannot
/// flatten a struct into one that refuses unknown keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawData {
    csv: Option<String>,
    npy: Option<NpyFiles>,
    npz: Option<String>,
    safetensors: Option<String>,
    idx: Option<IdxFiles>,
    synthetic: Option<Synthetic>,
    text: Option<String>,
    /// A folder of class folders, or a CSV of image paths and labels.
    images: Option<String>,
    /// Of an `images` source: how its images become features.
    #[serde(default, deserialize_with = "some_one_or_many")]
    size: Option<Vec<usize>>,
    #[serde(default, deserialize_with = "some_one_or_many")]
    center_crop: Option<Vec<usize>>,
    channels: Option<usize>,
    #[serde(default, deserialize_with = "some_one_or_many")]
    mean: Option<Vec<f64>>,
    #[serde(default, deserialize_with = "some_one_or_many")]
    std: Option<Vec<f64>>,
    /// Random changes to the training examples, drawn anew each epoch.
    augment: Option<crate::train::augment::Augment>,
    /// Of a `text` source: its tokens' `tokenizer.json` (else characters), window and stride.
    tokenizer: Option<String>,
    seq_len: Option<usize>,
    stride: Option<usize>,
    #[serde(default, deserialize_with = "some_one_or_many")]
    features: Option<Vec<String>>,
    target: Option<String>,
    inputs: Option<Written>,
    targets: Option<Written>,
    shape: Option<Vec<usize>>,
    dtype: Option<Element>,
    target_dtype: Option<Element>,
    #[serde(default)]
    autoencoder: bool,
    val_split: Option<f64>,
    val: Option<RawSource>,
    test_split: Option<f64>,
    test: Option<RawSource>,
    #[serde(default)]
    standardize: bool,
    rescale: Option<(f64, f64)>,
    #[serde(default = "yes")]
    shuffle: bool,
    limit: Option<usize>,
}

/// A source as written: `val:` takes one too. Keys it leaves out come from the training
/// source (all of them, if it names no file: other arrays of the same `.npz`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    csv: Option<String>,
    npy: Option<NpyFiles>,
    npz: Option<String>,
    safetensors: Option<String>,
    idx: Option<IdxFiles>,
    synthetic: Option<Synthetic>,
    text: Option<String>,
    images: Option<String>,
    #[serde(default, deserialize_with = "some_one_or_many")]
    features: Option<Vec<String>>,
    target: Option<String>,
    /// `val: {kfold: k}`: k-fold cross-validation instead of a source.
    kfold: Option<usize>,
    /// The `data:` section's image settings, which every `images` source shares.
    #[serde(skip)]
    image_options: Option<super::images::ImageOptions>,
}

impl TryFrom<RawData> for DataConfig {
    type Error = String;

    /// Errors start with `data:`, as serde_yaml's own do for this section (it gives no
    /// position for errors found after the section was read).
    fn try_from(raw: RawData) -> Result<DataConfig, String> {
        checked(raw).map_err(|e| format!("data: {e}"))
    }
}

/// `limit`, checked: at least one example.
pub(super) fn limit(limit: Option<usize>) -> Result<Option<usize>, String> {
    match limit {
        Some(0) => Err("`limit` keeps at least one training example, found 0".into()),
        n => Ok(n),
    }
}

/// Far longer than any window a model is trained on; keeps a typo from allocating terabytes.
const MAX_SEQ_LEN: usize = 1 << 20;

/// The window settings of a `text` source, checked; `None` when it has none.
fn text_windows(raw: &RawData) -> Result<Option<Text>, String> {
    let Some(path) = raw.text.clone() else {
        return match (&raw.tokenizer, raw.seq_len, raw.stride) {
            (None, None, None) => Ok(None),
            _ => Err("`tokenizer`, `seq_len` and `stride` belong to a `text` source".into()),
        };
    };
    let seq_len = raw.seq_len.ok_or("`text` needs `seq_len`, the window's length in tokens")?;
    if !(1..=MAX_SEQ_LEN).contains(&seq_len) {
        return Err(format!("`seq_len` must be in 1..={MAX_SEQ_LEN}, found {seq_len}"));
    }
    let stride = raw.stride.unwrap_or(seq_len);
    if stride == 0 {
        return Err("`stride` must be at least 1".into());
    }
    let others = [
        ("features", raw.features.is_some()),
        ("target", raw.target.is_some()),
        ("shape", raw.shape.is_some()),
        ("dtype", raw.dtype.is_some()),
        ("target_dtype", raw.target_dtype.is_some()),
        ("autoencoder", raw.autoencoder),
        ("standardize", raw.standardize),
        ("rescale", raw.rescale.is_some()),
    ];
    if let Some((key, _)) = others.iter().find(|(_, given)| *given) {
        return Err(format!(
            "`{key}` does not apply to `text`: its examples are token ids, its targets the next ones"
        ));
    }
    Ok(Some(Text { path, tokenizer: raw.tokenizer.clone(), seq_len, stride }))
}

fn checked(raw: RawData) -> Result<DataConfig, String> {
    if raw.inputs.is_some() || raw.targets.is_some() || raw.npy.as_ref().is_some_and(NpyFiles::named) {
        return named(raw);
    }
    let text = text_windows(&raw)?;
    let target = match (raw.autoencoder, raw.target_dtype) {
        (true, Some(_)) => {
            return Err("`autoencoder: true` takes the features as targets; drop `target_dtype`".into())
        }
        (true, None) => Target::Input,
        (false, Some(Element::F32)) => Target::Values,
        (false, _) => Target::Classes,
    };
    let image = image_options(&raw)?;
    let augment =
        raw.augment.clone().map(|a| a.checked()).transpose().map_err(|e| format!("augment: {e}"))?;
    let train = RawSource { image_options: image, ..raw.source() };
    let source = train.clone().resolve(target, text.as_ref())?;
    let val = match (raw.val, raw.val_split) {
        (Some(_), Some(_)) => return Err("give `val_split` or `val`, not both".into()),
        (Some(v), None) => match v.folds()? {
            Some(folds) => folds,
            None => Validation::Source(
                v.inheriting(&train)
                    .and_then(|v| v.resolve(target, text.as_ref()))
                    .map_err(|e| format!("in `val`: {e}"))?,
            ),
        },
        (None, Some(f)) if !(0.0..1.0).contains(&f) => {
            return Err(format!("`val_split` is the validation fraction, in [0, 1); found {f}"))
        }
        (None, f) => Validation::Split(f.unwrap_or(0.2)),
    };
    let test = match (raw.test, raw.test_split) {
        (Some(_), Some(_)) => return Err("give `test_split` or `test`, not both".into()),
        (Some(t), None) => Some(Validation::Source(
            t.inheriting(&train)
                .and_then(|t| t.resolve(target, text.as_ref()))
                .map_err(|e| format!("in `test`: {e}"))?,
        )),
        (None, f) => f.map(test_split).transpose()?,
    };
    if let Some((lo, hi)) = raw.rescale {
        if raw.standardize {
            return Err("give `standardize` or `rescale`, not both".into());
        }
        if !(lo < hi && lo.is_finite() && hi.is_finite()) {
            return Err(format!("`rescale: [{lo}, {hi}]` needs a finite low below the high"));
        }
    }
    if raw.shape.as_ref().is_some_and(|s| s.contains(&0)) {
        return Err("`shape` dims must be positive".into());
    }
    Ok(DataConfig {
        source,
        val,
        test,
        shape: raw.shape,
        dtype: raw.dtype,
        target,
        standardize: raw.standardize,
        rescale: raw.rescale,
        shuffle: raw.shuffle,
        named: None,
        limit: limit(raw.limit)?,
        augment,
    })
}

impl RawData {
    /// The training source as written.
    fn source(&self) -> RawSource {
        RawSource {
            csv: self.csv.clone(),
            npy: self.npy.clone(),
            npz: self.npz.clone(),
            safetensors: self.safetensors.clone(),
            idx: self.idx.clone(),
            synthetic: self.synthetic.clone(),
            text: self.text.clone(),
            images: self.images.clone(),
            features: self.features.clone(),
            target: self.target.clone(),
            kfold: None,
            image_options: None,
        }
    }
}

/// 8 GiB of f32: more than a smoke test needs, less than a typo can ask for.
/// `test_split: f`, checked: a fraction strictly between 0 and 1.
fn test_split(f: f64) -> Result<Validation, String> {
    match f > 0.0 && f < 1.0 {
        true => Ok(Validation::Split(f)),
        false => Err(format!("`test_split` is the test fraction, in (0, 1); found {f}")),
    }
}

const MAX_SYNTHETIC: usize = 1 << 31;

const SOURCES: &str = "csv, npy, npz, safetensors, idx, synthetic, text or images";

impl RawSource {
    /// `val: {kfold: k}` as the first of k folds (k-fold training runs each); `None` for a
    /// source.
    pub(super) fn folds(&self) -> Result<Option<Validation>, String> {
        let Some(k) = self.kfold else { return Ok(None) };
        if !self.given().is_empty() || self.features.is_some() || self.target.is_some() {
            return Err(
                "`val: {kfold: k}` takes no source: the folds are drawn from the training data".into()
            );
        }
        match k {
            0 | 1 => Err(format!("`kfold` needs at least 2 folds, found {k}")),
            _ => Ok(Some(Validation::Fold { k, index: 0 })),
        }
    }

    fn given(&self) -> Vec<&'static str> {
        let keys = [
            ("csv", self.csv.is_some()),
            ("npy", self.npy.is_some()),
            ("npz", self.npz.is_some()),
            ("safetensors", self.safetensors.is_some()),
            ("idx", self.idx.is_some()),
            ("synthetic", self.synthetic.is_some()),
            ("text", self.text.is_some()),
            ("images", self.images.is_some()),
        ];
        keys.into_iter().filter(|(_, given)| *given).map(|(k, _)| k).collect()
    }

    fn inheriting(self, train: &RawSource) -> Result<RawSource, String> {
        let names_given = self.features.is_some() || self.target.is_some();
        if self.given().is_empty() && !names_given {
            return Err(format!(
                "it names no data: give one of {SOURCES}, or arrays other than the training ones"
            ));
        }
        let mut v = if self.given().is_empty() {
            RawSource { features: None, target: None, ..train.clone() }
        } else {
            self.clone()
        };
        v.features = self.features.or_else(|| train.features.clone());
        v.target = self.target.or_else(|| train.target.clone());
        v.image_options = train.image_options.clone();
        Ok(v)
    }

    /// The source this names; `text` holds the training source's window settings, which a
    /// `text` validation source shares.
    fn resolve(self, kind: Target, text: Option<&Text>) -> Result<Source, String> {
        let given = self.given();
        let key = match given.as_slice() {
            [key] => *key,
            [] => return Err(format!("no data source: give one of {SOURCES}")),
            many => return Err(format!("give one data source, found {}", many.join(" and "))),
        };
        let wants_target = kind != Target::Input;
        let target = |t: Option<String>, what: &str| match (t, wants_target) {
            (Some(t), true) => Ok(Some(t)),
            (None, false) => Ok(None),
            (None, true) => Err(format!("`{key}` needs {what} (or `autoencoder: true`)")),
            (Some(t), false) => {
                Err(format!("`autoencoder: true` takes the features as targets; drop the target `{t}`"))
            }
        };
        let no_names = || match (&self.features, &self.target) {
            (None, None) => Ok(()),
            _ => Err(format!(
                "`features` and `target` name CSV columns or arrays in .npz/.safetensors files; \
                 `{key}` takes no names"
            )),
        };
        let one_array = |names: Option<Vec<String>>| match names.as_deref() {
            None => Ok("x".to_string()),
            Some([one]) => Ok(one.clone()),
            Some(many) => {
                Err(format!("`features` names one array of the `{key}` file, found {}", many.len()))
            }
        };
        let default_y = |t: Option<String>| if wants_target { t.or(Some("y".into())) } else { t };
        if key == "text" {
            let (Some(path), Some(windows)) = (self.text, text) else {
                return Err("a `text` validation source needs a `text` training source".into());
            };
            return Ok(Source::Text(Text { path, ..windows.clone() }));
        }
        Ok(match key {
            "images" => {
                if self.features.is_some() || !wants_target {
                    return Err("`images` has labels: drop `features` and `autoencoder`".into());
                }
                Source::Images {
                    path: self.images.unwrap_or_default(),
                    target: self.target,
                    options: self.image_options.unwrap_or_default(),
                }
            }
            "csv" => Source::Csv {
                path: self.csv.unwrap_or_default(),
                features: self.features.unwrap_or_default(),
                target: target(self.target, "a `target` column")?,
            },
            "npy" => {
                no_names()?;
                let files = self.npy.ok_or("`npy` has no files")?;
                let features =
                    files.features.ok_or("`npy` needs a `features` file (or `inputs` and `targets`)")?;
                Source::Npy { features, target: target(files.target, "a `target` file")? }
            }
            "npz" => Source::Npz {
                path: self.npz.unwrap_or_default(),
                features: one_array(self.features)?,
                target: target(default_y(self.target), "a `target` array")?,
            },
            "safetensors" => Source::Safetensors {
                path: self.safetensors.unwrap_or_default(),
                features: one_array(self.features)?,
                target: target(default_y(self.target), "a `target` tensor")?,
            },
            "idx" => {
                no_names()?;
                let files = self.idx.ok_or("`idx` has no files")?;
                Source::Idx { images: files.images, labels: target(files.labels, "a `labels` file")? }
            }
            _ => {
                no_names()?;
                let s = self.synthetic.ok_or("`synthetic` has no settings")?;
                if s.rows == 0 || s.classes == 0 || s.features.contains(&0) || s.vocab == Some(0) {
                    return Err("`synthetic`: rows, classes, vocab and feature dims must be positive".into());
                }
                let width = count(&s.features).unwrap_or(usize::MAX);
                let sizes = [[s.rows, width], [s.rows, s.classes], [s.vocab.unwrap_or(width), s.classes]];
                if sizes.iter().any(|dims| count(dims).is_none_or(|n| n > MAX_SYNTHETIC)) {
                    return Err(format!("`synthetic` is too large: at most {MAX_SYNTHETIC} values an array"));
                }
                Source::Synthetic(s)
            }
        })
    }
}

/// `name` or `[a, b]`; `4` or `[1, 28, 28]`.
fn some_one_or_many<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    one_or_many(d).map(Some)
}

fn yes() -> bool {
    true
}
