//! Training: optimizers (and, as they land, losses, schedules, data and the loop).

pub mod config;
pub mod data;
pub mod fit;
pub mod loss;
pub mod observe;
pub mod optim;
pub mod run;
pub mod schedule;
