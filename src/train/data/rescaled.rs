//! What `rescale: [lo, hi]` did to the features: the training split's range `[min, max]`
//! mapped linearly onto `[lo, hi]`. A run records it in the metadata of the weights it writes,
//! so that what a generator makes can be mapped back to the data's own scale (`wick sample`).

use std::collections::HashMap;

use candle_core::{Result, Tensor};

/// The linear map `rescale` applied: `[min, max]` (the training split's) onto `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rescaled {
    pub lo: f64,
    pub hi: f64,
    pub min: f64,
    pub max: f64,
}

/// The weights files' metadata key, its value `[lo, hi, min, max]` as JSON.
pub const METADATA_KEY: &str = "wick.rescale";

impl Rescaled {
    /// The factor of the map: 1 for constant data, which is only shifted.
    fn scale(&self) -> f64 {
        if self.max > self.min {
            (self.hi - self.lo) / (self.max - self.min)
        } else {
            1.0
        }
    }

    /// Data values to the model's scale.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let scale = self.scale();
        x.affine(scale, self.lo - self.min * scale)
    }

    /// The model's values back to the data's scale.
    pub fn undo(&self, x: &Tensor) -> Result<Tensor> {
        let scale = self.scale();
        x.affine(1.0 / scale, self.min - self.lo / scale)
    }

    /// The metadata entry a weights file carries it in.
    pub fn metadata(&self) -> HashMap<String, String> {
        let value = serde_json::json!([self.lo, self.hi, self.min, self.max]).to_string();
        HashMap::from([(METADATA_KEY.to_string(), value)])
    }

    /// Read back from a weights file's metadata; `None` when absent or not four finite numbers
    /// with `lo < hi` and `min <= max` (a file written elsewhere, or edited).
    pub fn from_metadata(metadata: &HashMap<String, String>) -> Option<Rescaled> {
        let values: Vec<f64> = serde_json::from_str(metadata.get(METADATA_KEY)?).ok()?;
        let [lo, hi, min, max] = values.as_slice() else { return None };
        let sane = values.iter().all(|v| v.is_finite()) && lo < hi && min <= max;
        sane.then_some(Rescaled { lo: *lo, hi: *hi, min: *min, max: *max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn undo_inverts_apply_and_the_metadata_round_trips() {
        let r = Rescaled { lo: -1.0, hi: 1.0, min: 0.0, max: 16.0 };
        let x = Tensor::new(&[0.0f64, 4.0, 16.0], &Device::Cpu).unwrap();
        let mapped = r.apply(&x).unwrap();
        assert_eq!(mapped.to_vec1::<f64>().unwrap(), [-1.0, -0.5, 1.0]);
        assert_eq!(r.undo(&mapped).unwrap().to_vec1::<f64>().unwrap(), [0.0, 4.0, 16.0]);
        assert_eq!(Rescaled::from_metadata(&r.metadata()), Some(r));
        let constant = Rescaled { lo: 0.0, hi: 1.0, min: 3.0, max: 3.0 };
        let c = constant.apply(&x).unwrap();
        assert_eq!(constant.undo(&c).unwrap().to_vec1::<f64>().unwrap(), [0.0, 4.0, 16.0]);
    }

    #[test]
    fn metadata_that_is_not_a_sane_map_is_ignored() {
        for value in
            ["", "[1, 2, 3]", "[1, -1, 0, 16]", "[-1, 1, 5, 4]", "[\"a\", 1, 0, 1]", "[-1, 1, 0, 1e999]"]
        {
            let m = HashMap::from([(METADATA_KEY.to_string(), value.to_string())]);
            assert_eq!(Rescaled::from_metadata(&m), None, "{value}");
        }
        assert_eq!(Rescaled::from_metadata(&HashMap::new()), None);
    }
}
