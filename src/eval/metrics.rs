//! The figures `wick eval` reports, computed from plain numbers (no tensors): a confusion
//! matrix and what it gives (accuracy, precision, recall, F1, IoU, Dice), regression errors
//! and R², and ROC-AUC. Definitions are scikit-learn's.
//!
//! **Classes absent from both targets and predictions** have no precision, recall or F1: they
//! are reported as `None` and left out of the macro averages, as scikit-learn leaves out labels
//! that appear in neither `y_true` nor `y_pred`. A class that is predicted but never a target
//! (or the reverse) counts, with the undefined ratio taken as 0 (scikit-learn's
//! `zero_division=0`, its default's value).

use serde::Serialize;

/// Counts of (target, predicted) class pairs: row = target, column = prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Confusion {
    pub classes: usize,
    /// `classes x classes`, row-major.
    pub counts: Vec<u64>,
}

/// One class's figures; `None` where the class appears neither as a target nor a prediction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// Intersection over union: `tp / (tp + fp + fn)`.
    pub iou: Option<f64>,
    /// `2 tp / (2 tp + fp + fn)` (equal to F1 for one label per example).
    pub dice: Option<f64>,
    /// How many targets are of this class.
    pub support: u64,
}

/// Unweighted means over the classes that appear.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MacroScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub iou: f64,
    pub dice: f64,
}

impl Confusion {
    pub fn new(classes: usize) -> Confusion {
        Confusion { classes, counts: vec![0; classes * classes] }
    }

    /// One example (or pixel); pairs outside `0..classes` are the caller's error to catch.
    pub fn add(&mut self, target: usize, predicted: usize) {
        if target < self.classes && predicted < self.classes {
            self.counts[target * self.classes + predicted] += 1;
        }
    }

    pub fn count(&self, target: usize, predicted: usize) -> u64 {
        self.counts[target * self.classes + predicted]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The fraction on the diagonal (pixel accuracy, for segmentation); 0 when empty.
    pub fn accuracy(&self) -> f64 {
        let right: u64 = (0..self.classes).map(|c| self.count(c, c)).sum();
        ratio(right, self.total()).unwrap_or(0.0)
    }

    pub fn class_scores(&self, class: usize) -> ClassScores {
        let tp = self.count(class, class);
        let support: u64 = (0..self.classes).map(|p| self.count(class, p)).sum();
        let predicted: u64 = (0..self.classes).map(|t| self.count(t, class)).sum();
        let (fp, fn_) = (predicted - tp, support - tp);
        if support == 0 && predicted == 0 {
            return ClassScores { precision: None, recall: None, f1: None, iou: None, dice: None, support };
        }
        let precision = ratio(tp, predicted).unwrap_or(0.0);
        let recall = ratio(tp, support).unwrap_or(0.0);
        let f1 = ratio(2 * tp, 2 * tp + fp + fn_).unwrap_or(0.0);
        ClassScores {
            precision: Some(precision),
            recall: Some(recall),
            f1: Some(f1),
            iou: ratio(tp, tp + fp + fn_),
            dice: Some(f1),
            support,
        }
    }

    pub fn per_class(&self) -> Vec<ClassScores> {
        (0..self.classes).map(|c| self.class_scores(c)).collect()
    }

    /// Means over the classes that appear (see the module's note); zeros when none does.
    pub fn macro_scores(&self) -> MacroScores {
        let present: Vec<ClassScores> = self.per_class().into_iter().filter(|s| s.f1.is_some()).collect();
        let mean = |f: fn(&ClassScores) -> Option<f64>| {
            let n = present.len().max(1) as f64;
            present.iter().filter_map(f).sum::<f64>() / n
        };
        MacroScores {
            precision: mean(|s| s.precision),
            recall: mean(|s| s.recall),
            f1: mean(|s| s.f1),
            iou: mean(|s| s.iou),
            dice: mean(|s| s.dice),
        }
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Whether `target` is among the `k` highest of `scores`: ties are resolved in the target's
/// favour (it is in when fewer than `k` scores are strictly higher), as PyTorch's `topk`
/// accuracy usually is and scikit-learn's `top_k_accuracy_score` does.
pub fn in_top_k(scores: &[f32], target: usize, k: usize) -> bool {
    let Some(&own) = scores.get(target) else { return false };
    scores.iter().filter(|s| **s > own).count() < k
}

/// The class of the highest score (the first of equal ones, as `argmax` picks).
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best
}

/// Regression errors over rows of `columns` values each: MSE and MAE over every value, R² per
/// column averaged (scikit-learn's `r2_score`, `multioutput="uniform_average"`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Regression {
    values: u64,
    squared: f64,
    absolute: f64,
    /// Per column: rows, sum of targets, sum of squared targets, sum of squared errors.
    columns: Vec<[f64; 4]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RegressionScores {
    pub mse: f64,
    pub mae: f64,
    /// `None` when every column's targets are constant (R² is undefined).
    pub r2: Option<f64>,
}

impl Regression {
    pub fn new(columns: usize) -> Regression {
        Regression { columns: vec![[0.0; 4]; columns.max(1)], ..Default::default() }
    }

    /// One row's predictions and targets, `columns` values each.
    pub fn add(&mut self, predicted: &[f32], target: &[f32]) {
        for (i, (p, t)) in predicted.iter().zip(target).enumerate() {
            let (p, t) = (*p as f64, *t as f64);
            let e = p - t;
            self.values += 1;
            self.squared += e * e;
            self.absolute += e.abs();
            let n = self.columns.len();
            let c = &mut self.columns[i % n];
            c[0] += 1.0;
            c[1] += t;
            c[2] += t * t;
            c[3] += e * e;
        }
    }

    pub fn scores(&self) -> RegressionScores {
        let n = self.values.max(1) as f64;
        let per_column: Vec<f64> = self
            .columns
            .iter()
            .filter_map(|[rows, sum, sum_sq, residual]| {
                let total = sum_sq - sum * sum / rows.max(1.0);
                (*rows > 0.0 && total > 1e-12 * sum_sq.max(1.0)).then(|| 1.0 - residual / total)
            })
            .collect();
        let r2 = (!per_column.is_empty()).then(|| per_column.iter().sum::<f64>() / per_column.len() as f64);
        RegressionScores { mse: self.squared / n, mae: self.absolute / n, r2 }
    }
}

/// The area under the ROC curve of `scores` (higher: more likely positive) against binary
/// `labels`: the probability that a random positive scores above a random negative, ties
/// counting half (the Mann-Whitney statistic, equal to scikit-learn's `roc_auc_score`).
/// `None` when one of the two classes is missing.
pub fn roc_auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f32, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // The ranks (from 1) of the positives, tied runs sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    /// targets 0 0 1 1 2 2 2, predictions 0 1 1 1 2 0 2, and class 3 never seen.
    fn example() -> Confusion {
        let mut c = Confusion::new(4);
        for (t, p) in [(0, 0), (0, 1), (1, 1), (1, 1), (2, 2), (2, 0), (2, 2)] {
            c.add(t, p);
        }
        c
    }

    #[test]
    fn per_class_and_macro_scores_match_hand_computed_values() {
        let c = example();
        assert_eq!(c.count(2, 0), 1);
        close(c.accuracy(), 5.0 / 7.0);
        // class 0: tp 1, predicted 2, support 2; class 1: tp 2, predicted 3, support 2;
        // class 2: tp 2, predicted 2, support 3.
        let s = c.per_class();
        close(s[0].precision.unwrap(), 0.5);
        close(s[0].recall.unwrap(), 0.5);
        close(s[0].f1.unwrap(), 0.5);
        close(s[1].precision.unwrap(), 2.0 / 3.0);
        close(s[1].recall.unwrap(), 1.0);
        close(s[1].f1.unwrap(), 0.8);
        close(s[2].precision.unwrap(), 1.0);
        close(s[2].recall.unwrap(), 2.0 / 3.0);
        close(s[2].f1.unwrap(), 0.8);
        close(s[1].iou.unwrap(), 2.0 / 3.0);
        close(s[2].iou.unwrap(), 2.0 / 3.0);
        close(s[0].iou.unwrap(), 1.0 / 3.0);
        assert_eq!((s[0].support, s[1].support, s[2].support), (2, 2, 3));
        // Class 3 is in neither: no figures, and out of the means (sklearn's macro precision,
        // recall and F1: 0.7222, 0.7222, 0.7).
        assert_eq!(s[3].f1, None);
        let m = c.macro_scores();
        close(m.f1, (0.5 + 0.8 + 0.8) / 3.0);
        close(m.precision, (0.5 + 2.0 / 3.0 + 1.0) / 3.0);
        close(m.recall, (0.5 + 1.0 + 2.0 / 3.0) / 3.0);
        close(m.iou, (1.0 / 3.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0);
    }

    #[test]
    fn a_class_predicted_but_never_a_target_counts_with_zero_recall_and_f1() {
        let mut c = Confusion::new(2);
        c.add(0, 1);
        c.add(0, 0);
        let s = c.per_class();
        assert_eq!((s[1].precision, s[1].recall, s[1].f1), (Some(0.0), Some(0.0), Some(0.0)));
        close(c.macro_scores().f1, (2.0 / 3.0 + 0.0) / 2.0);
        assert_eq!(Confusion::new(3).macro_scores().f1, 0.0);
    }

    #[test]
    fn top_k_counts_ties_for_the_target_and_argmax_takes_the_first() {
        let scores = [0.1, 0.5, 0.5, 0.2];
        assert!(!in_top_k(&scores, 3, 2) && in_top_k(&scores, 3, 3));
        assert!(in_top_k(&scores, 2, 1), "tied with the best");
        assert!(!in_top_k(&scores, 9, 4), "a target outside the scores is a miss");
        assert_eq!(argmax(&scores), 1);
    }

    #[test]
    fn regression_errors_and_r2_match_hand_computed_values() {
        let mut r = Regression::new(1);
        // targets 1 2 3 4 (mean 2.5, total 5), predictions 1.5 2 2 5: errors .5 0 -1 1.
        for (p, t) in [(1.5, 1.0), (2.0, 2.0), (2.0, 3.0), (5.0, 4.0)] {
            r.add(&[p], &[t]);
        }
        let s = r.scores();
        close(s.mse, 2.25 / 4.0);
        close(s.mae, 2.5 / 4.0);
        close(s.r2.unwrap(), 1.0 - 2.25 / 5.0);
        // Two columns: R² is the mean of each column's.
        let mut two = Regression::new(2);
        two.add(&[1.0, 0.0], &[1.0, 1.0]);
        two.add(&[2.0, 0.0], &[2.0, 3.0]);
        // column 0 perfect (1), column 1: residual 1 + 9 = 10, total 2 -> 1 - 5 = -4.
        close(two.scores().r2.unwrap(), (1.0 + -4.0) / 2.0);
        let mut constant = Regression::new(1);
        constant.add(&[1.0], &[3.0]);
        constant.add(&[1.0], &[3.0]);
        assert_eq!(constant.scores().r2, None);
    }

    #[test]
    fn roc_auc_is_the_mann_whitney_statistic_with_ties_half() {
        // sklearn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        close(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap(), 0.75);
        close(roc_auc(&[0.5, 0.5], &[false, true]).unwrap(), 0.5);
        close(roc_auc(&[0.2, 0.9, 0.1], &[false, true, false]).unwrap(), 1.0);
        assert_eq!(roc_auc(&[0.2, 0.9], &[true, true]), None);
    }
}
