//! The named form of `data:` read: every array `inputs:` and `targets:` name, taken from the
//! one source, converted by the rules of its role (features for an input, class indices or
//! values for a target), and checked to hold one row per example of the first input.

use std::collections::BTreeMap;
use std::path::Path;

use super::config::{Element, Names, Source, Target};
use super::convert::{features, targets, Named};
use super::dataset::{Column, Role};
use super::{csv, npy, safetensors, DataError, Dataset};

/// The arrays `names` maps, from `source` (paths relative to `base`); float inputs as f32 (or
/// as `dtype` says), integer inputs as token ids.
pub(super) fn read(
    source: &Source,
    names: &Names,
    dtype: Option<Element>,
    base: &Path,
) -> Result<Dataset, DataError> {
    let mut inputs = Vec::new();
    let mut first: Option<Named> = None;
    for (name, key) in &names.inputs {
        let (raw, _) = fetch(source, key, base)?;
        let tensor = features(&raw, dtype, None)?;
        if let Some(first) = &first {
            let (rows, want) = (raw.tensor.dim(0)?, first.tensor.dim(0)?);
            if rows != want {
                return Err(DataError::Mismatch(format!(
                    "{} (input `{name}`) has {rows} rows, but {} has {want}: the arrays of `data.inputs` \
                     and `data.targets` hold one row per example",
                    raw.what, first.what
                )));
            }
        }
        first.get_or_insert(raw);
        inputs.push((name.clone(), tensor));
    }
    let Some(first) = first else { return Err(DataError::Config("`inputs` names no array".into())) };
    let mut outputs = Vec::new();
    for (name, key) in &names.targets {
        let (raw, own) = fetch(source, key, base)?;
        let kind = match names.target_dtype {
            Some(Element::F32) => Target::Values,
            Some(Element::I64) => Target::Classes,
            None => own,
        };
        outputs.push((name.clone(), targets(&raw, kind, &first)?));
    }
    let mut inputs = inputs.into_iter();
    let mut outputs = outputs.into_iter();
    let (Some((_, x)), Some((_, y))) = (inputs.next(), outputs.next()) else {
        return Err(DataError::Config("the named form needs an input and a target".into()));
    };
    let column = |role| move |(name, tensor)| (name, Column { role, tensor });
    let more: BTreeMap<String, Column> =
        inputs.map(column(Role::Input)).chain(outputs.map(column(Role::Target))).collect();
    Ok(Dataset { x, y, more })
}

/// The array `key` names in `source` (a column group of a CSV file), and what it is as a target
/// by default: class indices if it holds integers (or is one CSV column), else values.
fn fetch(source: &Source, key: &[String], base: &Path) -> Result<(Named, Target), DataError> {
    let one = || match key {
        [one] => Ok(one.as_str()),
        _ => Err(DataError::Config(format!("{key:?}: one array, not a group, outside CSV"))),
    };
    let by_dtype = |n: Named| {
        let kind = if n.tensor.dtype().is_float() { Target::Values } else { Target::Classes };
        (n, kind)
    };
    match source {
        Source::Csv { path, .. } => {
            let mut raw = csv::read(&base.join(path), key, None, Target::Input, None)?.0.x;
            raw.what = format!("`{path}` column{} {}", if key.len() == 1 { "" } else { "s" }, key.join(", "));
            let kind = if key.len() == 1 { Target::Classes } else { Target::Values };
            Ok((raw, kind))
        }
        Source::Npy { .. } => Ok(by_dtype(npy::read_npy(&base.join(one()?))?)),
        Source::Npz { path, .. } => Ok(by_dtype(npy::read_npz(&base.join(path), one()?)?)),
        Source::Safetensors { path, .. } => {
            let found = safetensors::read(&base.join(path), &[one()?])?.into_iter().next();
            let found =
                found.ok_or_else(|| DataError::Config(format!("`{path}` gave no `{}`", key.join(""))))?;
            Ok(by_dtype(found))
        }
        Source::Idx { .. } | Source::Synthetic(_) | Source::Text(_) | Source::Images { .. } => Err(
            DataError::Config("`inputs` and `targets` name arrays of npz, safetensors, csv or npy".into()),
        ),
    }
}
