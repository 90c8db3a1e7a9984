//! Training: the configuration, data, losses and metrics, optimizers, schedules, the loop,
//! checkpoints and what a person sees while it runs.

pub mod augment;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod files;
pub mod fit;
pub mod folder;
pub mod freeze;
pub mod gan;
pub mod grads;
pub mod init_weights;
pub mod kfold;
pub mod loss;
pub mod losses;
pub mod lr_find;
pub mod nets;
pub mod objective;
pub mod observe;
pub mod optim;
pub mod program;
pub mod resume;
pub mod run;
pub mod schedule;
pub mod session;
pub mod supervised;
pub mod sweep;

#[cfg(test)]
mod frozen_bn_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod tests;
