//! Checkpoints. One safetensors file holds a whole resumable state: the weights under their
//! `state_dict` keys, the optimizer's tensors under `optimizer.`, and the run state (epoch,
//! step, rate, plateau and early-stopping counters, history) as JSON in the header's metadata.
//! Every file is written to a temporary name and renamed over the old one, so a crash or a
//! Ctrl-C at any moment leaves the previous checkpoint whole.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::observe::EpochRecord;
use super::schedule::Plateau;

const OPTIMIZER: &str = "optimizer.";
const STATE_KEY: &str = "wick.run_state";

/// Where a run stands between epochs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
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
    /// The model's forward-pass count: where its dropout and noise streams stand.
    #[serde(default)]
    pub forward_passes: u64,
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

/// Write `tensors` (and `metadata`) to `path` through a temporary file and a rename.
pub fn write_atomic(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: Option<HashMap<String, String>>,
) -> Result<(), CheckpointError> {
    super::files::replace(path, |tmp| {
        safetensors::serialize_to_file(tensors.iter(), metadata, tmp).map_err(std::io::Error::other)
    })
    .map_err(|e| CheckpointError::Write { path: path.display().to_string(), message: e.to_string() })
}

/// Save weights, optimizer state and run state as one checkpoint file.
pub fn save(
    path: &Path,
    weights: BTreeMap<String, Tensor>,
    optimizer: BTreeMap<String, Tensor>,
    state: &RunState,
) -> Result<(), CheckpointError> {
    let mut tensors = weights;
    tensors.extend(optimizer.into_iter().map(|(k, t)| (format!("{OPTIMIZER}{k}"), t)));
    let json = serde_json::to_string(state)
        .map_err(|e| CheckpointError::Write { path: path.display().to_string(), message: e.to_string() })?;
    write_atomic(path, &tensors, Some(HashMap::from([(STATE_KEY.to_string(), json)])))
}

/// Read a checkpoint written by [`save`].
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint, CheckpointError> {
    let fail = |message: String| CheckpointError::Read { path: path.display().to_string(), message };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| fail(e.to_string()))?;
    let json = meta.metadata().as_ref().and_then(|m| m.get(STATE_KEY)).ok_or_else(|| {
        fail("it holds weights only, not a run state; was it written by `wick train`?".into())
    })?;
    let state: RunState = serde_json::from_str(json).map_err(|e| fail(format!("bad run state: {e}")))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| fail(e.to_string()))?;
    let (mut weights, mut optimizer) = (HashMap::new(), BTreeMap::new());
    for (key, t) in tensors {
        match key.strip_prefix(OPTIMIZER) {
            Some(k) => optimizer.insert(k.to_string(), t),
            None => weights.insert(key, t),
        };
    }
    Ok(Checkpoint { weights, optimizer, state })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_weights_optimizer_and_state() {
        let dir = std::env::temp_dir().join(format!("wick-ckpt-{}", std::process::id()));
        let path = dir.join("checkpoint.safetensors");
        let d = Device::Cpu;
        let w = BTreeMap::from([("fc.weight".to_string(), Tensor::new(&[[1f32, 2.0]], &d).unwrap())]);
        let o =
            BTreeMap::from([("fc.weight.exp_avg".to_string(), Tensor::new(&[[0.5f32, 0.25]], &d).unwrap())]);
        let state =
            RunState { epochs_done: 3, step: 36, base_lr: 0.01, best: Some((2, 0.5)), ..Default::default() };
        save(&path, w, o, &state).unwrap();
        let back = load(&path, &d).unwrap();
        assert_eq!(back.state, state);
        assert_eq!(back.weights["fc.weight"].to_vec2::<f32>().unwrap(), [[1.0, 2.0]]);
        assert_eq!(back.optimizer["fc.weight.exp_avg"].to_vec2::<f32>().unwrap(), [[0.5, 0.25]]);
        assert!(!dir.join(".checkpoint.safetensors.tmp").exists());
        // Weights alone are not a checkpoint.
        let bare = dir.join("weights.safetensors");
        write_atomic(&bare, &BTreeMap::new(), None).unwrap();
        assert!(load(&bare, &d).err().unwrap().to_string().contains("weights only"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
