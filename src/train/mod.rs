//! Training: optimizers (and, as they land, losses, schedules, data and the loop).

pub mod loss;
pub mod optim;
pub mod schedule;
