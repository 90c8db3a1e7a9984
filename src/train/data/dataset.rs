//! A data set in memory: features and targets, row-aligned, with the row operations a
//! training loop needs (select, split, standardise, batch). The named form adds further
//! arrays by name, each an input or a target, row-aligned with the rest.

use std::collections::BTreeMap;

use candle_core::{DType, Result, Tensor};

use super::recorded::Standardized;
use crate::lower::params::SplitMix64;

/// Features `[N, ...]` (f32, or i64 token ids) and targets `[N, ...]` (i64 class indices, or
/// f32 values), row-aligned.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub x: Tensor,
    pub y: Tensor,
    /// The named form's arrays past the first input (`x`) and the first target (`y`), by the
    /// name they are fed under.
    pub more: BTreeMap<String, Column>,
}

/// One of a data set's further arrays: what it feeds, and its rows.
#[derive(Clone, Debug)]
pub struct Column {
    pub role: Role,
    pub tensor: Tensor,
}

/// Whether an array feeds a model input or a loss's target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Input,
    Target,
}

impl Dataset {
    /// Every array moved to `device`.
    pub fn to_device(self, device: &candle_core::Device) -> Result<Dataset> {
        let more =
            self.more.into_iter().map(|(n, c)| Ok((n, Column { tensor: c.tensor.to_device(device)?, ..c })));
        Ok(Dataset {
            x: self.x.to_device(device)?,
            y: self.y.to_device(device)?,
            more: more.collect::<Result<_>>()?,
        })
    }

    /// Features and targets alone (the one-array form).
    pub fn new(x: Tensor, y: Tensor) -> Dataset {
        Dataset { x, y, more: BTreeMap::new() }
    }

    /// Every array a batch holds, by name, given the names `x` and `y` are fed under.
    pub fn named<'a>(&'a self, x: &'a str, y: &'a str) -> impl Iterator<Item = (&'a str, Role, &'a Tensor)> {
        [(x, Role::Input, &self.x), (y, Role::Target, &self.y)]
            .into_iter()
            .chain(self.more.iter().map(|(n, c)| (n.as_str(), c.role, &c.tensor)))
    }

    /// Each array mapped by `f` (given its role), rows kept aligned by the caller.
    fn map(&self, mut f: impl FnMut(Role, &Tensor) -> Result<Tensor>) -> Result<Dataset> {
        let more = self
            .more
            .iter()
            .map(|(n, c)| Ok((n.clone(), Column { role: c.role, tensor: f(c.role, &c.tensor)? })))
            .collect::<Result<_>>()?;
        Ok(Dataset { x: f(Role::Input, &self.x)?, y: f(Role::Target, &self.y)?, more })
    }

    pub fn len(&self) -> usize {
        self.y.dim(0).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One example's features shape: `x`'s dims past the first.
    pub fn example_shape(&self) -> &[usize] {
        self.x.dims().get(1..).unwrap_or(&[])
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[u32]) -> Result<Dataset> {
        let idx = Tensor::from_slice(indices, indices.len(), self.x.device())?;
        self.map(|_, t| t.index_select(&idx, 0))
    }

    /// Shuffle with `seed`, then the last `fraction` of rows for validation.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        self.split_order(&shuffled(self.len(), seed), fraction)
    }

    /// The last `fraction` of rows, in file order, for validation.
    pub fn split_in_order(&self, fraction: f64) -> Result<(Dataset, Dataset)> {
        self.split_order(&(0..self.len() as u32).collect::<Vec<_>>(), fraction)
    }

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Result<Dataset> {
        self.select(&(0..n.min(self.len()) as u32).collect::<Vec<_>>())
    }

    /// Fold `index` of `k` of the rows in `order` for validation (rows `index * n / k` up to
    /// `(index + 1) * n / k` of it), the others, in that order, for training.
    pub fn fold(&self, order: &[u32], k: usize, index: usize) -> Result<(Dataset, Dataset)> {
        let n = order.len();
        let (lo, hi) = (index * n / k.max(1), (index + 1) * n / k.max(1));
        let held: Vec<u32> = order[lo.min(n)..hi.min(n)].to_vec();
        let kept: Vec<u32> = order[..lo.min(n)].iter().chain(&order[hi.min(n)..]).copied().collect();
        Ok((self.select(&kept)?, self.select(&held)?))
    }

    fn split_order(&self, order: &[u32], fraction: f64) -> Result<(Dataset, Dataset)> {
        let val = ((self.len() as f64) * fraction).round() as usize;
        let (train, valid) = order.split_at(self.len() - val.min(self.len()));
        Ok((self.select(train)?, self.select(valid)?))
    }

    /// Standardise features with the mean and deviation of `self` (the training split), applied
    /// to each of `others` too, so validation sees the same transform (see [`Standardized`]).
    /// In the named form every float input is standardised by its own statistics; integer
    /// inputs (token ids) and targets are left as they are.
    ///
    /// [`Standardized`]: super::recorded::Standardized
    /// Returns the standardised split and the features' statistics (what the weights record).
    pub fn standardize(&self, others: &mut [&mut Dataset]) -> Result<(Dataset, Option<Standardized>)> {
        let mut out = self.clone();
        let mut features = None;
        if self.x.dtype().is_float() {
            let s = Standardized::of(&self.x)?;
            for o in others.iter_mut() {
                o.x = s.apply(&o.x)?;
            }
            out.x = s.apply(&self.x)?;
            features = Some(s);
        }
        for (name, column) in &self.more {
            if column.role != Role::Input || !column.tensor.dtype().is_float() {
                continue;
            }
            let s = Standardized::of(&column.tensor)?;
            for o in others.iter_mut() {
                if let Some(c) = o.more.get_mut(name) {
                    c.tensor = s.apply(&c.tensor)?;
                }
            }
            if let Some(c) = out.more.get_mut(name) {
                c.tensor = s.apply(&column.tensor)?;
            }
        }
        Ok((out, features))
    }

    /// The least and the greatest feature value (what `rescale` maps from).
    pub fn range(&self) -> Result<(f64, f64)> {
        let flat = self.x.flatten_all()?.to_dtype(candle_core::DType::F64)?;
        Ok((flat.min(0)?.to_scalar::<f64>()?, flat.max(0)?.to_scalar::<f64>()?))
    }

    /// Mini-batches of `size` rows in an order shuffled by `seed` (the last one may be short).
    pub fn batches(&self, size: usize, seed: u64) -> Result<Vec<Dataset>> {
        self.batches_of(&shuffled(self.len(), seed), size)
    }

    /// Mini-batches of `size` rows in file order (`shuffle: false`).
    pub fn batches_in_order(&self, size: usize) -> Result<Vec<Dataset>> {
        self.batches_of(&(0..self.len() as u32).collect::<Vec<_>>(), size)
    }

    fn batches_of(&self, order: &[u32], size: usize) -> Result<Vec<Dataset>> {
        order.chunks(size.max(1)).map(|rows| self.select(rows)).collect()
    }

    /// Float features to `dtype` (the model's); token ids stay integers.
    pub fn to_dtype(&self, dtype: DType) -> Result<Dataset> {
        let x = if self.x.dtype().is_float() { self.x.to_dtype(dtype)? } else { self.x.clone() };
        let more = self.more.iter().map(|(n, c)| {
            let tensor = match c.role == Role::Input && c.tensor.dtype().is_float() {
                true => c.tensor.to_dtype(dtype)?,
                false => c.tensor.clone(),
            };
            Ok((n.clone(), Column { role: c.role, tensor }))
        });
        Ok(Dataset { x, y: self.y.clone(), more: more.collect::<Result<_>>()? })
    }
}

/// `0..n` in a Fisher-Yates order drawn from `seed`: the same on every platform.
pub fn shuffled(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn shuffles_are_seeded_permutations() {
        let a = shuffled(100, 7);
        assert_eq!(a, shuffled(100, 7));
        assert_ne!(a, shuffled(100, 8));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<u32>>());
    }

    fn rows(n: usize) -> Dataset {
        let x = Tensor::arange(0f32, (2 * n) as f32, &Device::Cpu).unwrap().reshape((n, 2)).unwrap();
        Dataset::new(x, Tensor::arange(0i64, n as i64, &Device::Cpu).unwrap())
    }

    #[test]
    fn split_and_batches_cover_every_row_once() {
        let d = rows(150);
        let (train, val) = d.split(0.2, 1).unwrap();
        assert_eq!((train.len(), val.len()), (120, 30));
        let batches = train.batches(32, 3).unwrap();
        assert_eq!(batches.iter().map(Dataset::len).collect::<Vec<_>>(), [32, 32, 32, 24]);
        let mut seen: Vec<i64> = batches.iter().flat_map(|b| b.y.to_vec1::<i64>().unwrap()).collect();
        seen.extend(val.y.to_vec1::<i64>().unwrap());
        seen.sort();
        assert_eq!(seen, (0..150).collect::<Vec<i64>>());
    }

    #[test]
    fn unshuffled_splits_and_batches_keep_file_order() {
        let (train, val) = rows(10).split_in_order(0.3).unwrap();
        assert_eq!(val.y.to_vec1::<i64>().unwrap(), [7, 8, 9]);
        let first = &train.batches_in_order(4).unwrap()[0];
        assert_eq!(first.y.to_vec1::<i64>().unwrap(), [0, 1, 2, 3]);
    }

    #[test]
    fn standardizing_uses_training_statistics_and_spares_constant_features() {
        let x = Tensor::new(&[[1f32, 5.], [3., 5.]], &Device::Cpu).unwrap();
        let train = Dataset::new(x, Tensor::new(&[0i64, 1], &Device::Cpu).unwrap());
        let mut val = Dataset::new(Tensor::new(&[[2f32, 7.]], &Device::Cpu).unwrap(), train.y.clone());
        let (train, _) = train.standardize(&mut [&mut val]).unwrap();
        assert_eq!(train.x.to_vec2::<f32>().unwrap(), [[-1., 0.], [1., 0.]]);
        assert_eq!(val.x.to_vec2::<f32>().unwrap(), [[0., 2.]]);
    }

    #[test]
    fn token_ids_keep_their_dtype() {
        let d = Dataset::new(
            Tensor::new(&[[1i64, 2]], &Device::Cpu).unwrap(),
            Tensor::new(&[0i64], &Device::Cpu).unwrap(),
        );
        assert_eq!(d.to_dtype(DType::F16).unwrap().x.dtype(), DType::I64);
        assert_eq!(d.example_shape(), &[2]);
    }
}
