//! The `optimizer:` section: a name and that optimizer's hyper-parameters, with PyTorch's
//! defaults. `weight_decay` is coupled (added to the gradient, L2) unless `decoupled: true`
//! (AdamW's form, for any optimizer); `adamw` is `adam` with decoupled decay 0.01.

use serde::Deserialize;

use super::{
    Adagrad, AdagradConfig, Adam, AdamConfig, Decoupled, Optimizer, Param, RmsProp, RmsPropConfig, Sgd,
    SgdConfig,
};

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
        nesterov: bool,
        #[serde(default)]
        weight_decay: f64,
        #[serde(default)]
        decoupled: bool,
    },
    Adam {
        #[serde(default = "defaults::adam_lr")]
        lr: f64,
        #[serde(default = "defaults::betas")]
        betas: (f64, f64),
        #[serde(default = "defaults::adam_eps")]
        eps: f64,
        #[serde(default)]
        amsgrad: bool,
        #[serde(default)]
        weight_decay: f64,
        #[serde(default)]
        decoupled: bool,
    },
    Adamw {
        #[serde(default = "defaults::adam_lr")]
        lr: f64,
        #[serde(default = "defaults::betas")]
        betas: (f64, f64),
        #[serde(default = "defaults::adam_eps")]
        eps: f64,
        #[serde(default)]
        amsgrad: bool,
        #[serde(default = "defaults::adamw_decay")]
        weight_decay: f64,
    },
    Rmsprop {
        #[serde(default = "defaults::rmsprop_lr")]
        lr: f64,
        #[serde(default = "defaults::alpha")]
        alpha: f64,
        #[serde(default = "defaults::rmsprop_eps")]
        eps: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        centered: bool,
        #[serde(default)]
        weight_decay: f64,
        #[serde(default)]
        decoupled: bool,
    },
    Adagrad {
        #[serde(default = "defaults::rmsprop_lr")]
        lr: f64,
        #[serde(default)]
        lr_decay: f64,
        #[serde(default = "defaults::adagrad_eps")]
        eps: f64,
        #[serde(default)]
        weight_decay: f64,
        #[serde(default)]
        decoupled: bool,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam {
            lr: defaults::adam_lr(),
            betas: defaults::betas(),
            eps: defaults::adam_eps(),
            amsgrad: false,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

impl OptimizerConfig {
    pub fn lr_mut(&mut self) -> &mut f64 {
        match self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::Adamw { lr, .. }
            | OptimizerConfig::Rmsprop { lr, .. }
            | OptimizerConfig::Adagrad { lr, .. } => lr,
        }
    }

    pub fn weight_decay_mut(&mut self) -> &mut f64 {
        match self {
            OptimizerConfig::Sgd { weight_decay, .. }
            | OptimizerConfig::Adam { weight_decay, .. }
            | OptimizerConfig::Adamw { weight_decay, .. }
            | OptimizerConfig::Rmsprop { weight_decay, .. }
            | OptimizerConfig::Adagrad { weight_decay, .. } => weight_decay,
        }
    }

    /// Tensors of state the optimizer keeps per parameter tensor, each of the parameter's
    /// size (momentum buffers, moments, sums of squares): what training memory adds for it.
    pub fn state_slots(&self) -> u64 {
        match *self {
            OptimizerConfig::Sgd { momentum, .. } => u64::from(momentum != 0.0),
            OptimizerConfig::Adam { amsgrad, .. } | OptimizerConfig::Adamw { amsgrad, .. } => {
                2 + u64::from(amsgrad)
            }
            OptimizerConfig::Rmsprop { momentum, centered, .. } => {
                1 + u64::from(momentum != 0.0) + u64::from(centered)
            }
            OptimizerConfig::Adagrad { .. } => 1,
        }
    }

    pub fn build(&self, params: Vec<Param>) -> candle_core::Result<Box<dyn Optimizer>> {
        // Decoupled decay wraps the rule; the rule itself then sees none.
        let split = |wd: f64, decoupled: bool| if decoupled { (0.0, wd) } else { (wd, 0.0) };
        let (rule, decay): (Box<dyn Optimizer>, f64) = match *self {
            OptimizerConfig::Sgd { lr, momentum, dampening, nesterov, weight_decay, decoupled } => {
                let (weight_decay, decay) = split(weight_decay, decoupled);
                let c = SgdConfig { lr, momentum, dampening, weight_decay, nesterov, maximize: false };
                (Box::new(Sgd::new(params, c)?), decay)
            }
            OptimizerConfig::Adam { lr, betas, eps, amsgrad, weight_decay, decoupled } => {
                let c = AdamConfig {
                    lr,
                    beta1: betas.0,
                    beta2: betas.1,
                    eps,
                    amsgrad,
                    weight_decay,
                    decoupled,
                    maximize: false,
                };
                (Box::new(Adam::new(params, c)), 0.0)
            }
            OptimizerConfig::Adamw { lr, betas, eps, amsgrad, weight_decay } => {
                let c = AdamConfig {
                    lr,
                    beta1: betas.0,
                    beta2: betas.1,
                    eps,
                    amsgrad,
                    weight_decay,
                    ..AdamConfig::adamw()
                };
                (Box::new(Adam::new(params, c)), 0.0)
            }
            OptimizerConfig::Rmsprop { lr, alpha, eps, momentum, centered, weight_decay, decoupled } => {
                let (weight_decay, decay) = split(weight_decay, decoupled);
                let c =
                    RmsPropConfig { lr, alpha, eps, momentum, centered, weight_decay, ..Default::default() };
                (Box::new(RmsProp::new(params, c)), decay)
            }
            OptimizerConfig::Adagrad { lr, lr_decay, eps, weight_decay, decoupled } => {
                let (weight_decay, decay) = split(weight_decay, decoupled);
                let c = AdagradConfig { lr, lr_decay, eps, weight_decay, ..Default::default() };
                (Box::new(Adagrad::new(params, c)), decay)
            }
        };
        Ok(if decay == 0.0 { rule } else { Box::new(Decoupled { inner: rule, weight_decay: decay }) })
    }
}

mod defaults {
    pub fn adam_lr() -> f64 {
        1e-3
    }
    pub fn betas() -> (f64, f64) {
        (0.9, 0.999)
    }
    pub fn adam_eps() -> f64 {
        1e-8
    }
    pub fn adamw_decay() -> f64 {
        1e-2
    }
    pub fn rmsprop_lr() -> f64 {
        1e-2
    }
    pub fn alpha() -> f64 {
        0.99
    }
    pub fn rmsprop_eps() -> f64 {
        1e-8
    }
    pub fn adagrad_eps() -> f64 {
        1e-10
    }
}
