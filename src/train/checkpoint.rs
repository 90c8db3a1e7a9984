//! Checkpoints. One safetensors file holds a whole resumable state: the weights under
//! `model.<state_dict key>`, the optimizer's tensors under `optimizer.<key>`, and the run state
//! (where the run stands, what determined it, its history) as JSON in the header's metadata.
//!
//! Each namespace is a prefix on every key, so a layer labelled `optimizer` cannot collide with
//! the optimizer's state. A CRC-32 of every tensor's name, dtype, shape and bytes and of the run
//! state is stored beside them: a flipped bit anywhere but the header's padding is refused on
//! load. The file is written through [`super::files::replace`], so a crash or a Ctrl-C at any
//! moment leaves the previous checkpoint whole.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use safetensors::tensor::View;
use serde::{Deserialize, Serialize};

use super::observe::EpochRecord;
use super::program::Tally;
use super::schedule::Plateau;

const MODEL: &str = "model.";
const OPTIMIZER: &str = "optimizer.";
const STATE_KEY: &str = "wick.run_state";
const FORMAT_KEY: &str = "wick.format";
const CHECKSUM_KEY: &str = "wick.crc32";
/// The layout above. Format 1 (no `wick.format`) kept weights unprefixed and had no checksum.
const FORMAT: &str = "2";

/// Where a run stands: between epochs, or inside one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Epochs recorded in `history` (a final partial epoch that `max_steps` cut short counts).
    pub epochs_done: usize,
    pub step: u64,
    /// The base rate schedules start from (reduce-on-plateau lowers it).
    pub base_lr: f64,
    pub plateau: Option<Plateau>,
    /// The best monitored value so far and its epoch (early stopping).
    pub best: Option<(usize, f64)>,
    /// Epochs since the monitored value last improved.
    pub stale_epochs: usize,
    pub history: Vec<EpochRecord>,
    /// Each model's forward-pass count: where its dropout and noise streams stand (a number
    /// in checkpoints of one model written before there could be several).
    #[serde(default, deserialize_with = "one_or_many")]
    pub forward_passes: Vec<u64>,
    /// Set while the run stands inside an epoch (interrupted, `max_steps`, a non-finite loss).
    #[serde(default)]
    pub cursor: Option<Cursor>,
    /// What determined the run (see [`super::resume`]); a resume compares it with its own.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Passes {
        One(u64),
        Many(Vec<u64>),
    }
    Ok(match Passes::deserialize(d)? {
        Passes::One(n) => vec![n],
        Passes::Many(v) => v,
    })
}

/// A position inside an epoch: enough to replay the rest of it exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The epoch in progress, 0-based.
    pub epoch: usize,
    /// Optimizer steps of it already taken.
    pub steps: usize,
    /// Its training loss and metric sums so far.
    pub sums: Tally,
}

/// A checkpoint read back.
pub struct Checkpoint {
    pub weights: HashMap<String, Tensor>,
    pub optimizer: BTreeMap<String, Tensor>,
    pub state: RunState,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write `{path}`: {message}")]
    Write { path: String, message: String },
    #[error("cannot read the checkpoint `{path}`: {message}")]
    Read { path: String, message: String },
}

/// Write `tensors` (and `metadata`) to `path` through a temporary file and a rename; flushed to
/// the disk first when `durable` (see [`super::files::replace_unsynced`] for why not always).
pub fn write_atomic(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: Option<HashMap<String, String>>,
    durable: bool,
) -> Result<(), CheckpointError> {
    let write = |tmp: &Path| {
        safetensors::serialize_to_file(tensors.iter(), metadata, tmp).map_err(std::io::Error::other)
    };
    let written = match durable {
        true => super::files::replace(path, write),
        false => super::files::replace_unsynced(path, write),
    };
    written.map_err(|e| CheckpointError::Write { path: path.display().to_string(), message: e.to_string() })
}

/// Save weights, optimizer state and run state as one checkpoint file, with `recorded` (what
/// the data section learned, as the weights files carry it) in its metadata too.
pub fn save(
    path: &Path,
    weights: BTreeMap<String, Tensor>,
    optimizer: BTreeMap<String, Tensor>,
    state: &RunState,
    recorded: Option<&HashMap<String, String>>,
) -> Result<(), CheckpointError> {
    let mut tensors: BTreeMap<String, Tensor> =
        weights.into_iter().map(|(k, t)| (format!("{MODEL}{k}"), t)).collect();
    tensors.extend(optimizer.into_iter().map(|(k, t)| (format!("{OPTIMIZER}{k}"), t)));
    let json = serde_json::to_string(state)
        .map_err(|e| CheckpointError::Write { path: path.display().to_string(), message: e.to_string() })?;
    let crc = checksum(tensors.iter().map(|(k, t)| (k.as_str(), t)), &json);
    let mut metadata = recorded.cloned().unwrap_or_default();
    metadata.extend([
        (STATE_KEY.to_string(), json),
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (CHECKSUM_KEY.to_string(), format!("{crc:08x}")),
    ]);
    // The checkpoint is what a resume needs: it survives a power loss.
    write_atomic(path, &tensors, Some(metadata), true)
}

/// Read a checkpoint written by [`save`], refusing one whose checksum does not match.
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint, CheckpointError> {
    let fail = |message: String| CheckpointError::Read { path: path.display().to_string(), message };
    let bytes = super::files::read_regular(path).map_err(|e| fail(e.to_string()))?;
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| fail(format!("not a safetensors file ({e})")))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| fail(e.to_string()))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let json = meta.get(STATE_KEY).ok_or_else(|| {
        fail("it holds weights only, not a run state; was it written by `wick train`?".into())
    })?;
    let format = meta.get(FORMAT_KEY).map_or("1", String::as_str);
    if format != "1" && format != FORMAT {
        return Err(fail(format!("it is in checkpoint format {format}; this wick reads formats 1 and 2")));
    }
    let mut views = file.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    if format == FORMAT {
        let crc = checksum(views.iter().map(|(k, v)| (k.as_str(), v)), json);
        let stored = meta.get(CHECKSUM_KEY).map_or("none", String::as_str);
        if stored != format!("{crc:08x}") {
            return Err(fail(format!(
                "it is damaged: its contents have checksum {crc:08x}, its header says {stored}; \
                 resume from an intact copy or start the run again"
            )));
        }
    }
    let state: RunState = serde_json::from_str(json).map_err(|e| fail(format!("bad run state: {e}")))?;
    let (mut weights, mut optimizer) = (HashMap::new(), BTreeMap::new());
    for (key, view) in views {
        // From the views the checksum read: the file is parsed once.
        let t = candle_core::safetensors::Load::load(&view, device).map_err(|e| fail(e.to_string()))?;
        if let Some(k) = key.strip_prefix(OPTIMIZER) {
            optimizer.insert(k.to_string(), t);
        } else if format == FORMAT {
            let k = key.strip_prefix(MODEL).ok_or_else(|| fail(format!("unexpected tensor `{key}`")))?;
            weights.insert(k.to_string(), t);
        } else {
            weights.insert(key, t);
        }
    }
    Ok(Checkpoint { weights, optimizer, state })
}

/// CRC-32 of each tensor's key, dtype, shape and bytes, in the order given, then of `state`.
fn checksum<'a, V: View>(tensors: impl Iterator<Item = (&'a str, V)>, state: &str) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    for (key, view) in tensors {
        crc.update(key.as_bytes());
        crc.update(format!("{:?}", view.dtype()).as_bytes());
        for d in view.shape() {
            crc.update(&(*d as u64).to_le_bytes());
        }
        crc.update(&view.data());
    }
    crc.update(state.as_bytes());
    crc.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("wick-ckpt-{name}-{}", std::process::id()))
    }

    fn sample(path: &Path) -> RunState {
        let d = Device::Cpu;
        // A layer labelled `optimizer` must not collide with the optimizer's namespace.
        let w = BTreeMap::from([
            ("fc.weight".to_string(), Tensor::new(&[[1f32, 2.0]], &d).unwrap()),
            ("optimizer.weight".to_string(), Tensor::new(&[3f32], &d).unwrap()),
        ]);
        let o =
            BTreeMap::from([("fc.weight.exp_avg".to_string(), Tensor::new(&[[0.5f32, 0.25]], &d).unwrap())]);
        let state =
            RunState { epochs_done: 3, step: 36, base_lr: 0.01, best: Some((2, 0.5)), ..Default::default() };
        save(path, w, o, &state, None).unwrap();
        state
    }

    #[test]
    fn a_checkpoint_round_trips_weights_optimizer_and_state() {
        let dir = dir("round");
        let path = dir.join("checkpoint.safetensors");
        let d = Device::Cpu;
        let state = sample(&path);
        let back = load(&path, &d).unwrap();
        assert_eq!(back.state, state);
        assert_eq!(back.weights["fc.weight"].to_vec2::<f32>().unwrap(), [[1.0, 2.0]]);
        assert_eq!(back.weights["optimizer.weight"].to_vec1::<f32>().unwrap(), [3.0]);
        assert_eq!(back.weights.len(), 2);
        assert_eq!(back.optimizer["fc.weight.exp_avg"].to_vec2::<f32>().unwrap(), [[0.5, 0.25]]);
        assert_eq!(back.optimizer.len(), 1);
        // Weights alone are not a checkpoint.
        let bare = dir.join("weights.safetensors");
        write_atomic(&bare, &BTreeMap::new(), None, false).unwrap();
        assert!(load(&bare, &d).err().unwrap().to_string().contains("weights only"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn every_flipped_bit_of_the_payload_is_refused() {
        let dir = dir("flip");
        let path = dir.join("checkpoint.safetensors");
        sample(&path);
        let good = std::fs::read(&path).unwrap();
        let header = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        // Every bit of the tensor data, and a bit inside the run state's JSON.
        let state_at = good.windows(11).position(|w| w == b"epochs_done").unwrap();
        let positions = (header..good.len()).chain([state_at + 2]);
        for at in positions {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                std::fs::write(&path, &bad).unwrap();
                let err = match load(&path, &Device::Cpu) {
                    Ok(_) => panic!("a flip of bit {bit} at byte {at} was accepted"),
                    Err(e) => e.to_string(),
                };
                assert!(err.contains("cannot read the checkpoint"), "{err}");
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
