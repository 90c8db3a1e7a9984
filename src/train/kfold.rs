//! k-fold cross-validation: `val: {kfold: k}` (or `wick train --kfold k`) trains one model per
//! fold, each validated on its fold of the shuffled examples and trained on the others, each in
//! its own run folder (`fold1`, ... under the run's), and reports every final validation figure
//! over the folds: the mean and the standard deviation.
//!
//! The deviation is the population one (numpy's `std`, `ddof=0`), as scikit-learn's
//! `cross_val_score(...).std()` reports it. The folds are equal to within a row: fold i holds
//! rows `i * n / k` up to `(i + 1) * n / k` of the shuffled order, so every example is validated
//! once.

use std::path::Path;

use serde::Serialize;

use super::config::TrainConfig;
use super::data::Validation;
use super::fit::Stop;
use super::observe::Observer;
use super::run::{out_dir, train, RunOptions, TrainError, TrainReport};

/// What k-fold training reports.
#[derive(Clone, Debug, Serialize)]
pub struct FoldsReport {
    pub k: usize,
    /// Each fold's run, in order (fewer than k when one was interrupted).
    pub folds: Vec<TrainReport>,
    /// Each final validation figure over the folds.
    pub figures: Vec<FigureSpread>,
}

/// One figure over the folds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FigureSpread {
    pub name: String,
    pub mean: f64,
    pub std: f64,
    /// Each fold's value, in order.
    pub values: Vec<f64>,
}

/// The folds `config` asks for: `Some(k)` under `val: {kfold: k}`.
pub fn folds_of(config: &TrainConfig) -> Option<usize> {
    match config.data.val {
        Validation::Fold { k, .. } => Some(k),
        _ => None,
    }
}

/// Trains `spec` once per fold of `config`'s data, fold i in `<run folder>/fold<i + 1>`;
/// `progress(i)` watches fold i. A run stopped by Ctrl-C ends the folds there.
pub fn train_folds(
    spec: &str,
    config: &TrainConfig,
    config_dir: &Path,
    options: &RunOptions,
    mut progress: impl FnMut(usize) -> Box<dyn Observer>,
) -> Result<FoldsReport, TrainError> {
    let Some(k) = folds_of(config) else {
        return Err(TrainError::Usage("k-fold training needs `val: {kfold: k}` in `data`".into()));
    };
    if config.gan.is_some() {
        return Err(TrainError::Usage("a GAN has no validation to fold: remove `kfold`".into()));
    }
    let base = out_dir(spec, config, config_dir, options)?;
    let mut folds = Vec::with_capacity(k);
    for index in 0..k {
        let mut fold = config.clone();
        fold.data.val = Validation::Fold { k, index };
        let options = RunOptions { out: Some(base.join(format!("fold{}", index + 1))), ..options.clone() };
        let report = train(spec, &fold, config_dir, &options, progress(index))?;
        let stopped = report.stopped == Stop::Interrupted;
        folds.push(report);
        if stopped {
            break;
        }
    }
    let figures = spread(&folds);
    Ok(FoldsReport { k, folds, figures })
}

/// Each figure of the folds' last validation, in the first fold's order.
fn spread(folds: &[TrainReport]) -> Vec<FigureSpread> {
    let last_val = |r: &TrainReport| r.history.last().map(|e| e.val.clone()).unwrap_or_default();
    let names: Vec<String> =
        folds.first().map(|r| last_val(r).0.into_iter().map(|(n, _)| n).collect()).unwrap_or_default();
    names
        .into_iter()
        .map(|name| {
            let values: Vec<f64> = folds.iter().map(|r| last_val(r).get(&name).unwrap_or(f64::NAN)).collect();
            let n = values.len().max(1) as f64;
            let mean = values.iter().sum::<f64>() / n;
            let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            FigureSpread { name, mean, std, values }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_the_mean_and_the_population_deviation() {
        let fold = |loss: f64, accuracy: f64| {
            let (_, mut history) = crate::train::observe::fixture::run(1, 1);
            history[0].val =
                crate::train::observe::Metrics(vec![("loss".into(), loss), ("accuracy".into(), accuracy)]);
            TrainReport { history, ..crate::train::observe::fixture::report() }
        };
        let figures = spread(&[fold(1.0, 0.5), fold(3.0, 0.7), fold(2.0, 0.9)]);
        assert_eq!(figures[0].name, "loss");
        assert_eq!((figures[0].mean, figures[0].values.clone()), (2.0, vec![1.0, 3.0, 2.0]));
        // numpy.std([1, 3, 2]) = sqrt(2/3); of [0.5, 0.7, 0.9]: sqrt(0.08/3).
        assert!((figures[0].std - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!(
            (figures[1].mean - 0.7).abs() < 1e-12 && (figures[1].std - (0.08f64 / 3.0).sqrt()).abs() < 1e-12
        );
    }
}
