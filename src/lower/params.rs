//! Parameters and buffers of a lowered model: a candle `VarMap` keyed by PyTorch
//! `state_dict` paths, PyTorch's default initialisation from a seed, safetensors in and out.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;

use super::draw::draw;
use crate::ops::init_scheme::Distribution;
use crate::ops::ParamKind;

/// One parameter or buffer.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub kind: ParamKind,
    pub trainable: bool,
    pub var: Var,
}

/// Every tensor of a model, in graph order, one `Var` each (tied parameters share one).
pub struct ParamStore {
    varmap: VarMap,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    /// A tied parameter's own path -> the owner's key it is stored under.
    aliases: BTreeMap<String, String>,
    seed: u64,
    dtype: DType,
    device: Device,
    /// Forward passes run so far: the position of the random streams (dropout, noise). Shared
    /// with every [`share`](Self::share)d store, so models on one store draw from one stream.
    passes: Arc<AtomicU64>,
    /// Counts the changes to the tensors that the store itself makes or is told of (a load, a
    /// redraw, a pass that may precede an optimizer step): what an inference lowering's folded
    /// weights are checked against (`fold.rs`). Shared like `passes`.
    changes: Arc<AtomicU64>,
}

impl fmt::Debug for ParamStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParamStore").field("keys", &self.keys()).field("seed", &self.seed).finish()
    }
}

/// Tensors a weights file lacks, has in excess, or has with another shape.
#[derive(Clone, Debug, Default, PartialEq, thiserror::Error)]
pub struct WeightsMismatch {
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    /// (key, expected shape, found shape)
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl WeightsMismatch {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for WeightsMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the weights do not fit the model:")?;
        for k in &self.missing {
            writeln!(f, "  missing: {k}")?;
        }
        for k in &self.unexpected {
            writeln!(f, "  unexpected: {k}")?;
        }
        for (k, want, got) in &self.mismatched {
            writeln!(f, "  wrong shape: {k}: expected {want:?}, found {got:?}")?;
        }
        Ok(())
    }
}

/// What a partial load did: how many tensors were set, and what did not fit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    pub loaded: usize,
    pub skipped: WeightsMismatch,
}

/// Keys a PyTorch `state_dict` has that carry no model state here.
fn ignored_on_load(key: &str) -> bool {
    key.ends_with(".num_batches_tracked") || key == "num_batches_tracked"
}

impl ParamStore {
    pub fn new(seed: u64, dtype: DType, device: &Device) -> ParamStore {
        ParamStore {
            varmap: VarMap::new(),
            entries: Vec::new(),
            index: HashMap::new(),
            aliases: BTreeMap::new(),
            seed,
            dtype,
            device: device.clone(),
            passes: Default::default(),
            changes: Default::default(),
        }
    }

    /// A second handle on the same tensors and pass counter, for lowering the model again at
    /// another binding: a `Var` is a handle on shared storage, so setting one through either
    /// store (an optimizer step, a batch norm's running statistics, a load) is seen by both.
    pub(crate) fn share(&self) -> ParamStore {
        ParamStore {
            varmap: self.varmap.clone(),
            entries: self.entries.clone(),
            index: self.index.clone(),
            aliases: self.aliases.clone(),
            seed: self.seed,
            dtype: self.dtype,
            device: self.device.clone(),
            passes: Arc::clone(&self.passes),
            changes: Arc::clone(&self.changes),
        }
    }

    /// Forward passes run so far (checkpointed so a resumed run draws the same masks).
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    pub fn set_passes(&self, n: u64) {
        self.passes.store(n, Ordering::Relaxed);
    }

    /// How many times the tensors have changed as far as the store knows; see [`changed`](Self::changed).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Tells the store that tensors were set from outside it (`Var::set` on a parameter of an
    /// inference lowering whose batch norms are folded: [`Lowered::fold_for_inference`]), so
    /// the folded weights are made again. Loads, redraws and training passes count themselves.
    ///
    /// [`Lowered::fold_for_inference`]: super::Lowered::fold_for_inference
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a new pass and return its number.
    pub(crate) fn next_pass(&self) -> u64 {
        self.passes.fetch_add(1, Ordering::Relaxed)
    }

    /// The existing variable under `key`, or a new one drawn from `init`. The draw depends only
    /// on the seed and the key, so adding a layer never changes another layer's start.
    pub fn get_or_init(
        &mut self,
        key: &str,
        shape: &[usize],
        kind: ParamKind,
        trainable: bool,
        init: Distribution,
    ) -> candle_core::Result<Var> {
        if let Some(e) = self.index.get(key).map(|i| &self.entries[*i]) {
            if e.var.dims() != shape {
                candle_core::bail!("`{key}` exists with shape {:?}, needed {shape:?}", e.var.dims());
            }
            return Ok(e.var.clone());
        }
        let n = shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
        let values = n.and_then(|n| draw(init, shape, n, self.seed, key)).ok_or_else(|| {
            candle_core::Error::msg(format!("cannot allocate `{key}` of shape {shape:?}: out of memory"))
        })?;
        let t = Tensor::from_vec(values, shape, &self.device)?.to_dtype(self.dtype)?;
        let var = Var::from_tensor(&t)?;
        self.varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::msg("poisoned VarMap"))?
            .insert(key.to_string(), var.clone());
        self.index.insert(key.to_string(), self.entries.len());
        self.entries.push(Entry { key: key.to_string(), kind, trainable, var: var.clone() });
        Ok(var)
    }

    /// Sets the existing variable `key` to fresh values of `init`, drawn from the seed and key's
    /// stream as a first initialisation is (a run's `init_weights:`).
    pub fn redraw(&self, key: &str, init: Distribution) -> candle_core::Result<()> {
        let e = self
            .index
            .get(key)
            .map(|i| &self.entries[*i])
            .ok_or_else(|| candle_core::Error::msg(format!("no parameter `{key}`")))?;
        let shape = e.var.dims().to_vec();
        let values = draw(init, &shape, e.var.elem_count(), self.seed, key).ok_or_else(|| {
            candle_core::Error::msg(format!("cannot allocate `{key}` of shape {shape:?}: out of memory"))
        })?;
        self.changed();
        e.var.set(&Tensor::from_vec(values, shape.as_slice(), &self.device)?.to_dtype(self.dtype)?)
    }

    /// The existing int64 variable under `key`, or a new one holding `values` (an index table
    /// the op computed, [`ParamKind::Index`]): never trained.
    pub fn get_or_insert_index(
        &mut self,
        key: &str,
        shape: &[usize],
        values: Vec<i64>,
    ) -> candle_core::Result<Var> {
        if let Some(e) = self.index.get(key).map(|i| &self.entries[*i]) {
            if e.var.dims() != shape {
                candle_core::bail!("`{key}` exists with shape {:?}, needed {shape:?}", e.var.dims());
            }
            return Ok(e.var.clone());
        }
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, &self.device)?)?;
        self.index.insert(key.to_string(), self.entries.len());
        self.entries.push(Entry {
            key: key.to_string(),
            kind: ParamKind::Index,
            trainable: false,
            var: var.clone(),
        });
        Ok(var)
    }

    /// The seed parameters are drawn from (random layers draw from it too).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Records that `own` (a tied parameter's path) is stored under `owner`.
    pub fn alias(&mut self, own: &str, owner: &str) {
        self.aliases.insert(own.to_string(), owner.to_string());
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.key.as_str()).collect()
    }

    pub fn get(&self, key: &str) -> Option<&Var> {
        let key = self.aliases.get(key).map_or(key, String::as_str);
        self.index.get(key).map(|i| &self.entries[*i].var)
    }

    /// The variables an optimizer updates: learned and not frozen.
    pub fn trainable(&self) -> Vec<(&str, &Var)> {
        self.entries.iter().filter(|e| e.trainable).map(|e| (e.key.as_str(), &e.var)).collect()
    }

    /// The candle `VarMap` holding every tensor (for candle-nn optimizers and tools).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Every tensor under its `state_dict` key (tied tensors once, under the owner's key).
    pub fn state_dict(&self) -> BTreeMap<String, Tensor> {
        self.entries.iter().map(|e| (e.key.clone(), e.var.as_detached_tensor())).collect()
    }

    /// Writes every tensor to a safetensors file, replacing `path` whole (or failing, leaving it
    /// as it was).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), super::LowerError> {
        let path = path.as_ref();
        let tensors: HashMap<String, Tensor> = self.state_dict().into_iter().collect();
        crate::train::files::replace_file(path, |tmp| {
            candle_core::safetensors::save(&tensors, tmp).map_err(std::io::Error::other)
        })
        .map_err(|e| super::LowerError::Usage(format!("cannot write `{}`: {e}", path.display())))
    }

    /// Loads a safetensors file keyed like a PyTorch `state_dict`, read by the data readers'
    /// checked reader: a regular file whose header agrees with its size.
    pub fn load(&self, path: impl AsRef<Path>, allow_partial: bool) -> Result<LoadReport, super::LowerError> {
        let path = path.as_ref();
        let tensors = crate::train::data::read_safetensors(path)
            .map_err(|e| super::LowerError::Usage(format!("weights: {e}")))?;
        let in_file = |what: &dyn std::fmt::Display| format!("`{}`: {what}", path.display());
        self.load_map(&tensors, allow_partial).map_err(|e| match e {
            super::LowerError::Weights(w) => super::LowerError::Usage(in_file(&w)),
            super::LowerError::Usage(m) => super::LowerError::Usage(in_file(&m)),
            other => other,
        })
    }

    /// Sets every tensor from `tensors`. Missing, unexpected or mis-shaped tensors are an error
    /// listing all of them, unless `allow_partial`: then what fits is loaded and the rest reported.
    pub fn load_map(
        &self,
        tensors: &HashMap<String, Tensor>,
        allow_partial: bool,
    ) -> Result<LoadReport, super::LowerError> {
        let mut report = LoadReport::default();
        let mut fits = Vec::new();
        for e in &self.entries {
            match tensors.get(&e.key) {
                None => report.skipped.missing.push(e.key.clone()),
                Some(t) if t.dims() != e.var.dims() => {
                    report.skipped.mismatched.push((e.key.clone(), e.var.dims().to_vec(), t.dims().to_vec()))
                }
                Some(t) => fits.push((&e.var, t)),
            }
        }
        for (key, t) in tensors {
            if self.index.contains_key(key) || ignored_on_load(key) {
                continue;
            }
            // A tied parameter saved under its own name too (as PyTorch does) must agree in shape.
            match self.aliases.get(key).and_then(|owner| self.get(owner)) {
                Some(v) if v.dims() == t.dims() => {}
                Some(v) => {
                    report.skipped.mismatched.push((key.clone(), v.dims().to_vec(), t.dims().to_vec()))
                }
                None => report.skipped.unexpected.push(key.clone()),
            }
        }
        report.skipped.missing.sort();
        report.skipped.unexpected.sort();
        report.skipped.mismatched.sort();
        if !allow_partial && !report.skipped.is_empty() {
            return Err(report.skipped.into());
        }
        // Accepting a partial load is not accepting none: that would run on random weights.
        if fits.is_empty() && !self.entries.is_empty() {
            let message = format!(
                "nothing to load: none of the model's {} tensors is in the file with its shape; {}",
                self.entries.len(),
                report.skipped
            );
            return Err(super::LowerError::Usage(message.trim_end().to_string()));
        }
        self.changed();
        for (var, t) in fits {
            // Each keeps its own dtype: the model's float type, or int64 for an index table.
            var.set(&t.to_dtype(var.dtype())?.to_device(&self.device)?)?;
            report.loaded += 1;
        }
        Ok(report)
    }
}

/// Refuse to draw `values` new parameter values in `dtype` when they cannot fit in the memory
/// available, before any is allocated: the count and the bytes they need, against what is free.
pub(crate) fn check_room(values: Option<u64>, dtype: DType) -> Result<(), super::LowerError> {
    let bytes = values.and_then(|v| v.checked_mul(dtype.size_in_bytes() as u64));
    let available = available_memory();
    if bytes.is_some_and(|b| available.is_none_or(|a| b <= a)) {
        return Ok(());
    }
    let count = values.map_or("more than 2^64".to_string(), crate::report::thousands);
    let need = bytes.map_or("more than 16 EiB".to_string(), gib);
    let free = available.map_or(String::new(), |a| format!("; {} is available", gib(a)));
    Err(super::LowerError::Usage(format!(
        "the model has {count} parameter values, which need {need} as {dtype:?}{free}"
    )))
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// Memory the system can give without swapping (Linux's `MemAvailable`); `None` where unknown.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

pub(crate) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A small, fast, well-mixed generator: enough for initialisation, and reproducible anywhere.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 53 random bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> ParamStore {
        let mut s = ParamStore::new(7, DType::F32, &Device::Cpu);
        s.get_or_init("fc.weight", &[3, 2], ParamKind::Weight, true, Distribution::Uniform(0.5)).unwrap();
        s.get_or_init("bn.running_var", &[3], ParamKind::Buffer, false, Distribution::Full(1.0)).unwrap();
        s
    }

    #[test]
    fn init_is_seeded_per_key_and_within_bounds() {
        let a = store().get("fc.weight").unwrap().to_vec2::<f32>().unwrap();
        let b = store().get("fc.weight").unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(a, b);
        assert!(a.iter().flatten().all(|v| v.abs() <= 0.5));
        assert!(a.iter().flatten().any(|v| *v != a[0][0]));
        let normal = draw(Distribution::Normal { mean: 1.0, std: 2.0 }, &[20_000], 20_000, 1, "k").unwrap();
        let mean = normal.iter().sum::<f64>() / 20_000.0;
        let var = normal.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 20_000.0;
        assert!((mean - 1.0).abs() < 0.05 && (var.sqrt() - 2.0).abs() < 0.05, "{mean} {var}");
    }

    #[test]
    fn strict_load_lists_every_problem_and_partial_load_reports_them() {
        let s = store();
        let mut file = HashMap::new();
        file.insert("fc.weight".to_string(), Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap());
        file.insert("fc.bias".to_string(), Tensor::ones(3, DType::F32, &Device::Cpu).unwrap());
        file.insert("bn.num_batches_tracked".to_string(), Tensor::new(0i64, &Device::Cpu).unwrap());
        let err = s.load_map(&file, false).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("missing: bn.running_var"), "{text}");
        assert!(text.contains("unexpected: fc.bias"), "{text}");
        assert!(text.contains("wrong shape: fc.weight: expected [3, 2], found [2, 3]"), "{text}");
        assert!(!text.contains("num_batches_tracked"));

        file.insert("bn.running_var".to_string(), Tensor::new(&[2f32, 3., 4.], &Device::Cpu).unwrap());
        let report = s.load_map(&file, true).unwrap();
        assert_eq!(report.loaded, 1);
        assert_eq!(report.skipped.unexpected, vec!["fc.bias".to_string()]);
        assert_eq!(s.get("bn.running_var").unwrap().to_vec1::<f32>().unwrap(), vec![2., 3., 4.]);

        // Partial, but nothing fits: an error, not a model left at its random start.
        file.remove("bn.running_var");
        let text = s.load_map(&file, true).unwrap_err().to_string();
        assert!(text.starts_with("nothing to load: none of the model's 2 tensors"), "{text}");
    }
}
