//! The training configuration, read from YAML (`wick train SPEC --config FILE`): strict keys,
//! every field with PyTorch's default where it has one.

use serde::Deserialize;

use super::data::DataConfig;
use super::optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, Optimizer, Param, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub data: DataConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    #[serde(default)]
    pub seed: u64,
    /// A folder for `last.safetensors` (weights) and `optimizer.safetensors`, written each
    /// epoch through a temporary file and a rename.
    #[serde(default)]
    pub checkpoint_dir: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "name", rename_all = "lowercase")]
pub enum OptimizerConfig {
    Sgd {
        lr: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        dampening: f64,
        #[serde(default)]
        weight_decay: f64,
        #[serde(default)]
        nesterov: bool,
    },
    Adam {
        #[serde(default = "defaults::adam_lr")]
        lr: f64,
        #[serde(default)]
        weight_decay: f64,
    },
    Adamw {
        #[serde(default = "defaults::adam_lr")]
        lr: f64,
        #[serde(default = "defaults::adamw_decay")]
        weight_decay: f64,
    },
    Rmsprop {
        #[serde(default = "defaults::rmsprop_lr")]
        lr: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        centered: bool,
    },
    Adagrad {
        #[serde(default = "defaults::rmsprop_lr")]
        lr: f64,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam { lr: defaults::adam_lr(), weight_decay: 0.0 }
    }
}

impl OptimizerConfig {
    pub fn lr_mut(&mut self) -> &mut f64 {
        match self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::Adamw { lr, .. }
            | OptimizerConfig::Rmsprop { lr, .. }
            | OptimizerConfig::Adagrad { lr } => lr,
        }
    }

    pub fn build(&self, params: Vec<Param>) -> candle_core::Result<Box<dyn Optimizer>> {
        Ok(match *self {
            OptimizerConfig::Sgd { lr, momentum, dampening, weight_decay, nesterov } => Box::new(Sgd::new(
                params,
                SgdConfig { lr, momentum, dampening, weight_decay, nesterov, maximize: false },
            )?),
            OptimizerConfig::Adam { lr, weight_decay } => {
                Box::new(Adam::new(params, AdamConfig { lr, weight_decay, ..AdamConfig::adam() }))
            }
            OptimizerConfig::Adamw { lr, weight_decay } => {
                Box::new(Adam::new(params, AdamConfig { lr, weight_decay, ..AdamConfig::adamw() }))
            }
            OptimizerConfig::Rmsprop { lr, momentum, centered } => {
                Box::new(RmsProp::new(params, RmsPropConfig { lr, momentum, centered, ..Default::default() }))
            }
            OptimizerConfig::Adagrad { lr } => {
                Box::new(Adagrad::new(params, AdagradConfig { lr, ..Default::default() }))
            }
        })
    }
}

mod defaults {
    pub fn epochs() -> usize {
        10
    }
    pub fn batch_size() -> usize {
        32
    }
    pub fn adam_lr() -> f64 {
        1e-3
    }
    pub fn adamw_decay() -> f64 {
        1e-2
    }
    pub fn rmsprop_lr() -> f64 {
        1e-2
    }
}

impl TrainConfig {
    pub fn from_yaml(text: &str) -> Result<TrainConfig, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }
}
