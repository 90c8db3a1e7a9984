//! Evaluation: a trained model's loss and the metrics that fit its task, on a split of its data
//! (`wick eval`, and a run's `test` split after training).
//!
//! - [`metrics`]: the figures from plain numbers (confusion matrix, F1, IoU, R², ROC-AUC).
//! - `run` (the `lower` feature): the model run over a data set, its outputs gathered into the
//!   figures that fit its loss.
//! - `spec` (`lower`): `wick eval SPEC`: the weights, the data and its recorded preprocessing.
//! - [`render`]: the report as text; `picture`: the confusion matrix as a PNG.

pub mod metrics;
#[cfg(feature = "lower")]
pub mod picture;
pub mod render;
#[cfg(feature = "lower")]
mod run;
#[cfg(feature = "lower")]
pub mod spec;

#[cfg(feature = "lower")]
pub use run::{evaluate, Evaluated};

use serde::Serialize;

use metrics::{ClassScores, Confusion, MacroScores, RegressionScores};

/// The schema name of `wick eval --format json`.
pub const SCHEMA: &str = "wick.eval/1";

/// What one output's figures are about, from the loss that reads it and its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// One class per example (cross-entropy or NLL on `[N, C]`, or per position of a sequence).
    Classification,
    /// One class per pixel (cross-entropy on `[N, C, H, W, ...]`).
    Segmentation,
    /// Binary cross-entropy or focal loss: a score per value, positive above the threshold.
    Binary,
    /// MSE, L1 or smooth L1 against values.
    Regression,
    /// A loss with no metric of its own (a VAE's): the loss only.
    LossOnly,
}

/// A class's figures under its name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassRow {
    pub name: String,
    #[serde(flatten)]
    pub scores: ClassScores,
}

/// The top-k accuracy and its k.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TopK {
    pub k: usize,
    pub accuracy: f64,
}

/// The figures of one output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputScores {
    pub output: String,
    pub task: Task,
    /// The mean of this output's own loss, when the spec gives a loss per output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// The fraction of examples (pixels, for segmentation) classified right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<TopK>,
    /// Unweighted means over the classes that appear (see [`metrics`]).
    #[serde(rename = "macro", skip_serializing_if = "Option::is_none")]
    pub macro_scores: Option<MacroScores>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Confusion>,
    /// Binary tasks (and two-class classification): the positive class's score ranks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regression: Option<RegressionScores>,
    /// Targets outside the output's classes (an ignore index such as -100): not counted.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped_targets: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A whole evaluation, as `wick eval --format json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub model: String,
    /// The weights file read.
    pub weights: String,
    /// Which data: `test split`, `validation split`, or a file.
    pub data: String,
    pub examples: usize,
    /// The mean loss over the examples (as training's validation loss is).
    pub loss: f64,
    /// Whether the inputs were given the preprocessing the weights record.
    pub preprocessed: bool,
    pub outputs: Vec<OutputScores>,
}
