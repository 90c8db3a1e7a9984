//! An evaluation as text: the loss, then per output its figures, the per-class table and the
//! confusion matrix (rows: targets, columns: predictions).

use std::fmt::Write;

use super::metrics::Confusion;
use super::{OutputScores, Report, Task};

/// The whole report.
pub fn text(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "model {}: {} examples ({})", report.model, report.examples, report.data);
    let _ = writeln!(s, "loss      {:.4}", report.loss);
    for output in &report.outputs {
        s.push('\n');
        s.push_str(&output_text(output));
    }
    s
}

fn output_text(o: &OutputScores) -> String {
    let mut s = String::new();
    let task = match o.task {
        Task::Classification => "classification",
        Task::Segmentation => "segmentation",
        Task::Binary => "binary",
        Task::Regression => "regression",
        Task::LossOnly => "loss only",
    };
    let _ = writeln!(s, "output {} ({task})", o.output);
    let line = |s: &mut String, name: &str, v: f64| {
        let _ = writeln!(s, "  {name:<18}{v:.4}");
    };
    if let Some(l) = o.loss {
        line(&mut s, "loss", l);
    }
    if let Some(a) = o.accuracy {
        line(&mut s, if o.task == Task::Segmentation { "pixel accuracy" } else { "accuracy" }, a);
    }
    if let Some(t) = o.top_k {
        line(&mut s, &format!("top-{} accuracy", t.k), t.accuracy);
    }
    if let Some(m) = o.macro_scores {
        if o.task == Task::Segmentation {
            line(&mut s, "mean IoU", m.iou);
            line(&mut s, "mean Dice", m.dice);
        } else {
            line(&mut s, "macro precision", m.precision);
            line(&mut s, "macro recall", m.recall);
            line(&mut s, "macro F1", m.f1);
        }
    }
    if let Some(auc) = o.roc_auc {
        line(&mut s, "ROC-AUC", auc);
    }
    if let Some(r) = o.regression {
        line(&mut s, "MSE", r.mse);
        line(&mut s, "MAE", r.mae);
        match r.r2 {
            Some(r2) => line(&mut s, "R²", r2),
            None => s.push_str("  R²                undefined (constant targets)\n"),
        }
    }
    if o.skipped_targets > 0 {
        let _ = writeln!(
            s,
            "  ({} targets outside the classes or at the loss's ignore_index were not counted)",
            o.skipped_targets
        );
    }
    if !o.classes.is_empty() {
        let width = o.classes.iter().map(|c| c.name.chars().count()).max().unwrap_or(0).max(5);
        let extra = if o.task == Task::Segmentation { "  IoU     Dice" } else { "" };
        let _ = writeln!(s, "\n  {:<width$}  precision  recall  F1      support{extra}", "class");
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        for c in &o.classes {
            let mut row = format!(
                "  {:<width$}  {:<9}  {:<6}  {:<6}  {:<7}",
                c.name,
                f(c.scores.precision),
                f(c.scores.recall),
                f(c.scores.f1),
                c.scores.support
            );
            if o.task == Task::Segmentation {
                let _ = write!(row, "  {:<6}  {}", f(c.scores.iou), f(c.scores.dice));
            }
            s.push_str(row.trim_end());
            s.push('\n');
        }
        if o.classes.iter().any(|c| c.scores.f1.is_none()) {
            s.push_str(
                "  (-: the class is neither a target nor a prediction; left out of the macro means)\n",
            );
        }
    }
    if let Some(c) = &o.confusion {
        let names: Vec<&str> = o.classes.iter().map(|c| c.name.as_str()).collect();
        s.push_str("\n  confusion matrix (rows: target, columns: predicted)\n");
        s.push_str(&confusion_text(c, &names));
    }
    s
}

/// The matrix with a header row and column of class names, each column as wide as it needs.
pub fn confusion_text(c: &Confusion, names: &[&str]) -> String {
    let name = |i: usize| names.get(i).map_or(i.to_string(), |n| n.to_string());
    let label_width = (0..c.classes).map(|i| name(i).chars().count()).max().unwrap_or(1);
    let widths: Vec<usize> = (0..c.classes)
        .map(|p| {
            let widest = (0..c.classes).map(|t| c.count(t, p).to_string().len()).max().unwrap_or(1);
            widest.max(name(p).chars().count())
        })
        .collect();
    let mut s = format!("  {:<label_width$}", "");
    for (p, w) in widths.iter().enumerate() {
        let _ = write!(s, "  {:>w$}", name(p));
    }
    s.push('\n');
    for t in 0..c.classes {
        let _ = write!(s, "  {:<label_width$}", name(t));
        for (p, w) in widths.iter().enumerate() {
            let _ = write!(s, "  {:>w$}", c.count(t, p));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confusion_matrix_lines_up_under_its_class_names() {
        let mut c = Confusion::new(2);
        for _ in 0..12 {
            c.add(0, 0);
        }
        c.add(1, 0);
        c.add(1, 1);
        let text = confusion_text(&c, &["cat", "dog"]);
        assert_eq!(text, "       cat  dog\n  cat   12    0\n  dog    1    1\n");
    }
}
