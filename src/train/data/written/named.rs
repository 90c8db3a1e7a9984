//! The named form of `data:` (`inputs:`, `targets:`), checked into a [`DataConfig`]: its own
//! sources and refusals, apart from the one-array form's.

use std::collections::BTreeMap;

use super::{test_split, NpyFiles, OneOrMany, RawData, RawSource, Written};
use crate::train::data::config::{DataConfig, Element, Names, Source, Target, Validation};

impl NpyFiles {
    pub(super) fn named(&self) -> bool {
        self.inputs.is_some() || self.targets.is_some()
    }
}

/// The named form: `inputs:` and `targets:` map model inputs and targets to arrays of one
/// `npz`, `safetensors` or `csv` source (CSV: a column or a group of columns), or `npy:` maps
/// them to files. Keys of the one-array form and the settings that act on one array
/// (`shape`, `rescale`, `autoencoder`) are refused, naming what to do instead.
pub(super) fn named(raw: RawData) -> Result<DataConfig, String> {
    let refused = [
        ("features", raw.features.is_some()),
        ("target", raw.target.is_some()),
        ("shape", raw.shape.is_some()),
        ("rescale", raw.rescale.is_some()),
        ("autoencoder", raw.autoencoder),
    ];
    if let Some((key, _)) = refused.iter().find(|(_, given)| *given) {
        return Err(format!(
            "`{key}` belongs to the one-array form; with `inputs` and `targets` name every array there \
             (reshape in the spec where an input needs another shape)"
        ));
    }
    // `features` and `target` were refused above: the source is the file alone.
    let source = raw.source();
    let key = match source.given().as_slice() {
        [key] => *key,
        [] => return Err(format!("no data source: give one of {NAMED_SOURCES}")),
        many => return Err(format!("give one data source, found {}", many.join(" and "))),
    };
    let (inputs, targets) = match (key, source.npy.clone()) {
        ("npy", Some(files)) => {
            if raw.inputs.is_some()
                || raw.targets.is_some()
                || files.features.is_some()
                || files.target.is_some()
            {
                return Err("with `npy`, name a file per input and target inside it: \
                            `npy: {inputs: {x: x.npy}, targets: {y: y.npy}}`"
                    .into());
            }
            let files_of = |m: Option<BTreeMap<String, String>>| -> Written {
                m.unwrap_or_default().into_iter().map(|(k, v)| (k, OneOrMany::One(v))).collect()
            };
            (files_of(files.inputs), files_of(files.targets))
        }
        ("npz" | "safetensors" | "csv", _) => {
            (raw.inputs.unwrap_or_default(), raw.targets.unwrap_or_default())
        }
        _ => return Err(format!("`inputs` and `targets` name arrays of {NAMED_SOURCES}; `{key}` has none")),
    };
    let list = |written: Written, what: &str| -> Result<Vec<(String, Vec<String>)>, String> {
        if written.is_empty() {
            return Err(format!("the named form needs at least one entry in `{what}`"));
        }
        written
            .into_iter()
            .map(|(name, arrays)| {
                let arrays = arrays.names();
                match (key, arrays.len()) {
                    (_, 0) => Err(format!("`{what}.{name}` names no array")),
                    ("csv", _) | (_, 1) => Ok((name, arrays)),
                    _ => Err(format!(
                        "`{what}.{name}` names {} arrays; a `{key}` array feeds one input or target \
                         (column groups are for CSV)",
                        arrays.len()
                    )),
                }
            })
            .collect()
    };
    let names = Names {
        inputs: list(inputs, "inputs")?,
        targets: list(targets, "targets")?,
        target_dtype: raw.target_dtype,
    };
    if let Some(both) = names.inputs.iter().find(|(n, _)| names.targets.iter().any(|(t, _)| t == n)) {
        return Err(format!("`{}` is both an input and a target: a batch holds one tensor a name", both.0));
    }
    let first = |list: &[(String, Vec<String>)]| list.first().map(|(_, a)| a.clone()).unwrap_or_default();
    let at_first = |mut s: Source| {
        match &mut s {
            Source::Csv { features, .. } => *features = first(&names.inputs),
            Source::Npy { features, target }
            | Source::Npz { features, target, .. }
            | Source::Safetensors { features, target, .. } => {
                *features = first(&names.inputs).concat();
                *target = Some(first(&names.targets).concat());
            }
            Source::Idx { .. } | Source::Synthetic(_) | Source::Text(_) | Source::Images { .. } => {}
        }
        s
    };
    let path = |p: Option<String>| p.unwrap_or_default();
    let one = |s: &RawSource| -> Result<Source, String> {
        Ok(at_first(match s.given().as_slice() {
            ["csv"] => Source::Csv { path: path(s.csv.clone()), features: vec![], target: None },
            ["npz"] => Source::Npz { path: path(s.npz.clone()), features: String::new(), target: None },
            ["safetensors"] => Source::Safetensors {
                path: path(s.safetensors.clone()),
                features: String::new(),
                target: None,
            },
            ["npy"] => Source::Npy { features: String::new(), target: None },
            _ => return Err(format!("give one of {NAMED_SOURCES}, the kind of the training source")),
        }))
    };
    let train = one(&source)?;
    let val = match (raw.val, raw.val_split) {
        (Some(_), Some(_)) => return Err("give `val_split` or `val`, not both".into()),
        (Some(v), None) => match v.folds()? {
            Some(folds) => folds,
            None => {
                if v.features.is_some() || v.target.is_some() || key == "npy" || v.given() != source.given() {
                    return Err(format!(
                        "in `val`: with `inputs` and `targets`, `val` names another `{key}` file whose \
                         arrays are named as the training ones{}",
                        if key == "npy" { " (`npy` takes `val_split`)" } else { "" }
                    ));
                }
                Validation::Source(one(&v)?)
            }
        },
        (None, Some(f)) if !(0.0..1.0).contains(&f) => {
            return Err(format!("`val_split` is the validation fraction, in [0, 1); found {f}"))
        }
        (None, f) => Validation::Split(f.unwrap_or(0.2)),
    };
    let test = match (raw.test, raw.test_split) {
        (Some(_), _) => {
            return Err("with `inputs` and `targets`, hold examples out with `test_split` (a `test` file is not read in this form yet)".into())
        }
        (None, f) => f.map(test_split).transpose()?,
    };
    let target = match raw.target_dtype {
        Some(Element::F32) => Target::Values,
        _ => Target::Classes,
    };
    Ok(DataConfig {
        source: train,
        val,
        test,
        shape: None,
        dtype: raw.dtype,
        target,
        standardize: raw.standardize,
        rescale: None,
        shuffle: raw.shuffle,
        named: Some(names),
        limit: super::limit(raw.limit)?,
        augment: raw.augment.clone().map(|a| a.checked()).transpose().map_err(|e| format!("augment: {e}"))?,
    })
}

const NAMED_SOURCES: &str = "npz, safetensors, csv or npy";
