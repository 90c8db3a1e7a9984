//! Data for training: tables read from CSV into tensors, seeded shuffling, a train/validation
//! split and mini-batches.

use std::path::Path;

use candle_core::{DType, Device, Result, Tensor};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A CSV file with a header row; relative paths are relative to the config file.
    pub csv: String,
    pub target: String,
    #[serde(default = "default_val_split")]
    pub val_split: f64,
    /// Standardise features with the training split's mean and deviation.
    #[serde(default)]
    pub standardize: bool,
}

fn default_val_split() -> f64 {
    0.2
}

/// The training and validation splits a [`DataConfig`] describes.
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
}

/// Read the data `config` names (relative paths from `base`), split it with `seed`, and
/// standardise it if asked.
pub fn load(
    config: &DataConfig,
    base: &Path,
    seed: u64,
    device: &Device,
) -> std::result::Result<Splits, DataError> {
    let data = Dataset::from_csv(&base.join(&config.csv), &config.target, device)?;
    let (train, mut val) = data.split(config.val_split, seed)?;
    let train = if config.standardize { train.standardize(&mut [&mut val])? } else { train };
    Ok(Splits { train, val })
}

/// Features `[N, F]` (f32) and integer targets `[N]` (i64), row-aligned.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub x: Tensor,
    pub y: Tensor,
}

/// Why a data file could not be read; names the file, the line and the column.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Format { path: String, line: usize, message: String },
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

impl Dataset {
    /// A CSV file with a header row: every column but `target` is a feature; `target` holds
    /// class indices.
    pub fn from_csv(path: &Path, target: &str, device: &Device) -> std::result::Result<Dataset, DataError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| DataError::Io { path: shown.clone(), source })?;
        let format = |line: usize, message: String| DataError::Format { path: shown.clone(), line, message };
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) =
            lines.next().ok_or_else(|| format(1, "the file is empty; expected a header row".into()))?;
        let columns: Vec<&str> = header.split(',').map(str::trim).collect();
        let target_col = columns.iter().position(|c| *c == target).ok_or_else(|| {
            format(1, format!("no column `{target}`; the columns are {}", columns.join(", ")))
        })?;
        let (mut features, mut labels) = (Vec::new(), Vec::new());
        for (i, line) in lines {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != columns.len() {
                return Err(format(
                    i + 1,
                    format!("expected {} columns, found {}", columns.len(), cells.len()),
                ));
            }
            for (c, cell) in cells.iter().enumerate() {
                let bad = || format(i + 1, format!("column `{}`: `{cell}` is not a number", columns[c]));
                if c == target_col {
                    labels.push(cell.parse::<i64>().map_err(|_| bad())?);
                } else {
                    features.push(cell.parse::<f32>().map_err(|_| bad())?);
                }
            }
        }
        let n = labels.len();
        let x = Tensor::from_vec(features, (n, columns.len() - 1), device)?;
        Ok(Dataset { x, y: Tensor::from_vec(labels, n, device)? })
    }

    pub fn len(&self) -> usize {
        self.y.dim(0).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[u32]) -> Result<Dataset> {
        let idx = Tensor::from_slice(indices, indices.len(), self.x.device())?;
        Ok(Dataset { x: self.x.index_select(&idx, 0)?, y: self.y.index_select(&idx, 0)? })
    }

    /// Shuffle with `seed`, then the last `fraction` of rows for validation.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        let order = shuffled(self.len(), seed);
        let val = ((self.len() as f64) * fraction).round() as usize;
        let (train, valid) = order.split_at(self.len() - val.min(self.len()));
        Ok((self.select(train)?, self.select(valid)?))
    }

    /// Standardise features with the mean and deviation of `self` (the training split), applied
    /// to each of `others` too, so validation sees the same transform.
    pub fn standardize(&self, others: &mut [&mut Dataset]) -> Result<Dataset> {
        let mean = self.x.mean_keepdim(0)?;
        let std = (self.x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?.sqrt()? + 1e-8)?;
        for o in others.iter_mut() {
            o.x = o.x.broadcast_sub(&mean)?.broadcast_div(&std)?;
        }
        Ok(Dataset { x: self.x.broadcast_sub(&mean)?.broadcast_div(&std)?, y: self.y.clone() })
    }

    /// Mini-batches of `size` rows in an order shuffled by `seed` (the last one may be short).
    pub fn batches(&self, size: usize, seed: u64) -> Result<Vec<Dataset>> {
        shuffled(self.len(), seed).chunks(size.max(1)).map(|rows| self.select(rows)).collect()
    }

    pub fn to_dtype(&self, dtype: DType) -> Result<Dataset> {
        Ok(Dataset { x: self.x.to_dtype(dtype)?, y: self.y.clone() })
    }
}

/// `0..n` in a Fisher-Yates order from a SplitMix64 stream: the same on every platform.
pub fn shuffled(n: usize, seed: u64) -> Vec<u32> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iris() -> Dataset {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv"));
        Dataset::from_csv(path, "species", &Device::Cpu).expect("iris")
    }

    #[test]
    fn iris_reads_as_150_rows_of_4_features_and_3_classes() {
        let d = iris();
        assert_eq!(d.x.dims(), &[150, 4]);
        let y: Vec<i64> = d.y.to_vec1().unwrap();
        assert_eq!((0..3).map(|c| y.iter().filter(|v| **v == c).count()).collect::<Vec<_>>(), [50, 50, 50]);
        let first: Vec<f32> = d.x.get(0).unwrap().to_vec1().unwrap();
        assert_eq!(first, [5.1, 3.5, 1.4, 0.2]);
    }

    #[test]
    fn shuffles_are_seeded_permutations() {
        let a = shuffled(100, 7);
        assert_eq!(a, shuffled(100, 7));
        assert_ne!(a, shuffled(100, 8));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<u32>>());
    }

    #[test]
    fn split_and_batches_cover_every_row_once() {
        let d = iris();
        let (train, val) = d.split(0.2, 1).unwrap();
        assert_eq!((train.len(), val.len()), (120, 30));
        let batches = train.batches(32, 3).unwrap();
        assert_eq!(batches.iter().map(Dataset::len).collect::<Vec<_>>(), [32, 32, 32, 24]);
    }

    #[test]
    fn bad_files_name_the_line_and_column() {
        let dir = std::env::temp_dir().join(format!("wick-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.csv");
        std::fs::write(&path, "a,b,label\n1,2,0\n3,x,1\n").unwrap();
        let e = Dataset::from_csv(&path, "label", &Device::Cpu).unwrap_err().to_string();
        assert!(e.ends_with("bad.csv:3: column `b`: `x` is not a number"), "{e}");
        let e = Dataset::from_csv(&path, "class", &Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("no column `class`; the columns are a, b, label"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
