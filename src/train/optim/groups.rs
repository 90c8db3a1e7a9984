//! Parameter groups, as `torch.optim` takes them: each group an optimizer of the same kind over
//! its own parameters, with its own learning rate and weight decay.
//!
//! ```yaml
//! optimizer: { name: adamw, lr: 0.001, weight_decay: 0.01 }
//! param_groups:
//!   - { params: ["**.bias", "**.*norm*"], weight_decay: 0 }   # the AdamW recipe
//!   - { params: [backbone], lr: 0.0001 }                       # a slower backbone
//! ```
//!
//! A parameter joins the first group whose glob covers its key (the globs of `frozen:`); the
//! others stay in the optimizer's own. Schedules scale every group's rate alike: a group keeps
//! the ratio of its rate to the optimizer's, as PyTorch's schedulers scale each group's
//! `initial_lr`.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor};
use serde::Deserialize;

use super::config::OptimizerConfig;
use super::{Optimizer, Param, Slots};
use crate::train::freeze::covers;

/// One `param_groups` entry.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParamGroup {
    /// Globs over parameter keys.
    pub params: Vec<String>,
    pub lr: Option<f64>,
    pub weight_decay: Option<f64>,
}

/// Several optimizers of one kind, each over its group's parameters.
pub struct Grouped {
    /// Each group's optimizer and the ratio of its rate to the base rate; never empty.
    groups: Vec<(Box<dyn Optimizer>, f64)>,
    base_lr: f64,
    params: Vec<Param>,
}

/// The optimizer `config` over `params`, in groups when `groups` has any. A glob that covers
/// no parameter is an error, as in `frozen:` (a typo would silently leave the recipe out).
pub fn build(
    config: &OptimizerConfig,
    params: Vec<Param>,
    groups: &[ParamGroup],
) -> Result<Box<dyn Optimizer>> {
    if groups.is_empty() {
        return config.build(params);
    }
    for (i, group) in groups.iter().enumerate() {
        for glob in &group.params {
            if !params.iter().any(|p| covers(glob, &p.key)) {
                candle_core::bail!("`param_groups[{i}]`: `{glob}` covers no trainable parameter");
            }
        }
    }
    let mut members: Vec<Vec<Param>> = vec![Vec::new(); groups.len() + 1];
    for p in &params {
        let at = groups.iter().position(|g| g.params.iter().any(|glob| covers(glob, &p.key)));
        members[at.unwrap_or(groups.len())].push(p.clone());
    }
    let base_lr = *config.clone().lr_mut();
    let mut built = Vec::new();
    for (group, members) in groups.iter().map(Some).chain([None]).zip(members) {
        if members.is_empty() {
            continue;
        }
        let mut c = config.clone();
        if let Some(g) = group {
            *c.lr_mut() = g.lr.unwrap_or(base_lr);
            if let Some(wd) = g.weight_decay {
                *c.weight_decay_mut() = wd;
            }
        }
        let ratio = if base_lr == 0.0 { 1.0 } else { *c.lr_mut() / base_lr };
        built.push((c.build(members)?, ratio));
    }
    // Without parameters there is no group; the optimizer's own, over none, is what is asked.
    if built.is_empty() {
        return config.build(params);
    }
    Ok(Box::new(Grouped { groups: built, base_lr, params }))
}

impl Optimizer for Grouped {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        for (optimizer, ratio) in &mut self.groups {
            optimizer.set_learning_rate(self.base_lr * *ratio);
            optimizer.step(grads)?;
        }
        Ok(())
    }

    fn lr_mut(&mut self) -> &mut f64 {
        &mut self.base_lr
    }

    /// The first group's slots (there is always one); [`Optimizer::state`] gathers every group's.
    fn slots(&self) -> &Slots {
        self.groups[0].0.slots()
    }

    fn slots_mut(&mut self) -> &mut Slots {
        self.groups[0].0.slots_mut()
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    /// Every group's slots (keyed by parameter, so they do not collide) and the step count.
    fn state(&self) -> BTreeMap<String, Tensor> {
        self.groups.iter().flat_map(|(o, _)| o.state()).collect()
    }

    /// Each group takes its own parameters' slots (and the step count) from `state`.
    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        for (optimizer, _) in &mut self.groups {
            let keys: Vec<String> = optimizer.params().iter().map(|p| format!("{}.", p.key)).collect();
            let own: BTreeMap<String, Tensor> = state
                .iter()
                .filter(|(k, _)| *k == "step" || keys.iter().any(|p| k.starts_with(p.as_str())))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            optimizer.load_state(&own)?;
        }
        Ok(())
    }
}
