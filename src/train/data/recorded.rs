//! What the `data:` section learned from the training split, recorded in the metadata of every
//! weights file and checkpoint a run writes, so that `wick run`, `wick eval` and `wick sample`
//! give the model its inputs as training did: the standardisation's per-feature mean and
//! deviation (`wick.standardize`), the `rescale` map (`wick.rescale`, see [`Rescaled`]) and
//! the class names of string labels (`wick.classes`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Result, Tensor};
use serde::{Deserialize, Serialize};

use super::rescaled::Rescaled;
use super::text::Vocabulary;
use super::DataError;

/// `standardize: true`: each feature (each value of one example) minus the training split's
/// mean, over its deviation (1 where that is ~0: a constant feature is only centred).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardized {
    /// One example's shape: the features' dims past the first.
    pub shape: Vec<usize>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// The metadata key of [`Standardized`], its value JSON.
pub const STANDARDIZE_KEY: &str = "wick.standardize";
/// The metadata key of the class names (a JSON list, index order).
pub const CLASSES_KEY: &str = "wick.classes";

impl Standardized {
    /// The statistics of `x` (`[N, ...]` floats, the training split's features).
    pub fn of(x: &Tensor) -> Result<Standardized> {
        let mean = x.mean_keepdim(0)?;
        let std = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?.sqrt()?;
        let std = std.lt(1e-6)?.where_cond(&std.ones_like()?, &std)?;
        let values = |t: &Tensor| -> Result<Vec<f64>> { t.flatten_all()?.to_dtype(DType::F64)?.to_vec1() };
        Ok(Standardized {
            shape: x.dims().get(1..).unwrap_or(&[]).to_vec(),
            mean: values(&mean)?,
            std: values(&std)?,
        })
    }

    /// `x` (`[N, ...shape]` floats) standardised.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let example = x.dims().get(1..).unwrap_or(&[]);
        if example != self.shape.as_slice() {
            candle_core::bail!(
                "the recorded standardisation is for examples of shape {:?}, found {:?}",
                self.shape,
                example
            );
        }
        let mut dims = vec![1];
        dims.extend(&self.shape);
        let stat = |v: &[f64]| Tensor::new(v, x.device())?.to_dtype(x.dtype())?.reshape(dims.as_slice());
        x.broadcast_sub(&stat(&self.mean)?)?.broadcast_div(&stat(&self.std)?)
    }

    /// Read back; `None` unless the lengths fit the shape and every value is finite (the
    /// deviations positive).
    fn from_json(text: &str) -> Option<Standardized> {
        let s: Standardized = serde_json::from_str(text).ok()?;
        let n = s.shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d))?;
        let sane = s.mean.len() == n
            && s.std.len() == n
            && s.mean.iter().all(|v| v.is_finite())
            && s.std.iter().all(|v| v.is_finite() && *v > 0.0);
        sane.then_some(s)
    }
}

/// Everything a run recorded about its data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    pub standardized: Option<Standardized>,
    pub rescaled: Option<Rescaled>,
    /// The names of the classes, by index (string labels, sorted).
    pub classes: Option<Vec<String>>,
    /// A text source's tokens (`wick.vocabulary`), for sampling to encode and decode.
    pub vocabulary: Option<Vocabulary>,
}

impl Recorded {
    pub fn is_empty(&self) -> bool {
        *self == Recorded::default()
    }

    /// The metadata entries a weights file carries it in.
    pub fn metadata(&self) -> HashMap<String, String> {
        let mut m = self.rescaled.map(|r| r.metadata()).unwrap_or_default();
        if let Some(s) = &self.standardized {
            m.insert(STANDARDIZE_KEY.into(), serde_json::json!(s).to_string());
        }
        if let Some(c) = &self.classes {
            m.insert(CLASSES_KEY.into(), serde_json::json!(c).to_string());
        }
        m.extend(self.vocabulary.iter().flat_map(Vocabulary::metadata));
        m
    }

    /// Read back from a weights file's metadata; an entry that does not parse is ignored.
    pub fn from_metadata(m: &HashMap<String, String>) -> Recorded {
        Recorded {
            standardized: m.get(STANDARDIZE_KEY).and_then(|t| Standardized::from_json(t)),
            rescaled: Rescaled::from_metadata(m),
            classes: m.get(CLASSES_KEY).and_then(|t| serde_json::from_str(t).ok()),
            vocabulary: Vocabulary::from_metadata(m).ok().flatten(),
        }
    }

    /// What the weights file at `path` records.
    pub fn read(path: &Path) -> std::result::Result<Recorded, DataError> {
        Ok(Recorded::from_metadata(&super::read_safetensors_metadata(path)?))
    }

    /// Raw features as training gave them to the model: standardised, or rescaled. Integer
    /// features (token ids) pass unchanged.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        if !x.dtype().is_float() {
            return Ok(x.clone());
        }
        let x = match &self.standardized {
            Some(s) => s.apply(x)?,
            None => x.clone(),
        };
        match &self.rescaled {
            Some(r) => r.apply(&x),
            None => Ok(x),
        }
    }

    /// A line saying what [`apply`](Self::apply) does, for the person running the model.
    pub fn describe(&self) -> Option<String> {
        let what = match (&self.standardized, &self.rescaled) {
            (Some(s), _) => format!(
                "standardised with the training split's mean and deviation ({} features)",
                s.mean.len()
            ),
            (None, Some(r)) => format!("rescaled from [{}, {}] to [{}, {}]", r.min, r.max, r.lo, r.hi),
            (None, None) => return None,
        };
        Some(format!("inputs {what}, as recorded in the weights (--raw: as given)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn standardising_uses_the_recorded_statistics_and_round_trips_through_metadata() {
        let x = Tensor::new(&[[1f32, 5.], [3., 5.]], &Device::Cpu).unwrap();
        let s = Standardized::of(&x).unwrap();
        assert_eq!(
            (s.mean.clone(), s.std.clone(), s.shape.clone()),
            (vec![2.0, 5.0], vec![1.0, 1.0], vec![2])
        );
        let recorded = Recorded {
            standardized: Some(s),
            classes: Some(vec!["A".into(), "B".into()]),
            ..Default::default()
        };
        let back = Recorded::from_metadata(&recorded.metadata());
        assert_eq!(back, recorded);
        let val = Tensor::new(&[[2f32, 7.]], &Device::Cpu).unwrap();
        assert_eq!(back.apply(&val).unwrap().to_vec2::<f32>().unwrap(), [[0., 2.]]);
        let ids = Tensor::new(&[[2i64, 7]], &Device::Cpu).unwrap();
        assert_eq!(back.apply(&ids).unwrap().to_vec2::<i64>().unwrap(), [[2, 7]]);
        let e = back.apply(&Tensor::zeros((1, 3), DType::F32, &Device::Cpu).unwrap()).unwrap_err();
        assert!(e.to_string().contains("shape [2], found [3]"), "{e}");
    }

    #[test]
    fn entries_that_do_not_fit_are_ignored() {
        for bad in [
            r#"{"shape":[2],"mean":[1],"std":[1,1]}"#,
            r#"{"shape":[1],"mean":[1],"std":[0]}"#,
            r#"{"shape":[1],"mean":[1e999],"std":[1]}"#,
            "[1, 2]",
        ] {
            let m = HashMap::from([(STANDARDIZE_KEY.to_string(), bad.to_string())]);
            assert_eq!(Recorded::from_metadata(&m), Recorded::default(), "{bad}");
        }
    }
}
