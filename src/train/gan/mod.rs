//! Adversarial training: a generator and a discriminator (or critic), each a model of the
//! spec with its own optimizer, trained against each other by one [`program::Adversarial`] in
//! the same loop, checkpoints and run folder as supervised training.
//!
//! - [`config`]: the `gan:` section (players, loss, tricks);
//! - [`loss`]: BCE, least squares, Wasserstein (clipped or penalised), DRAGAN, hinge;
//! - [`draws`]: latent batches and every other random draw, replayable;
//! - [`ema`]: the generator's moving average;
//! - [`fid`]: the Frechet distance between generated and real images' features;
//! - [`program`]: one iteration of the game.

pub mod config;
pub mod draws;
pub mod ema;
pub mod fid;
pub mod loss;
pub mod program;
pub mod session;

#[cfg(test)]
mod fixture_tests;

pub use config::GanConfig;
pub use program::{Adversarial, Player};
