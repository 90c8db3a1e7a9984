//! Numbers as a person reads them in the progress lines and the final report: fractions named
//! `*accuracy` as percentages, rates with thousands separators, durations in h/m/s.

use super::Metrics;
use crate::report::thousands;

/// One figure: accuracies as `91.23%`, other values with four decimals (or in scientific
/// notation when that would hide them).
pub fn figure(name: &str, v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if name.ends_with("accuracy") {
        return format!("{:.2}%", 100.0 * v);
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e5).contains(&a) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// `loss 0.4123  accuracy 91.23%`; `-` when there are none.
pub fn figures(m: &Metrics) -> String {
    if m.0.is_empty() {
        return "-".into();
    }
    figure_items(m).join("  ")
}

/// Each figure as `name value`.
pub fn figure_items(m: &Metrics) -> Vec<String> {
    m.0.iter().map(|(n, v)| format!("{n} {}", figure(n, *v))).collect()
}

/// A learning rate: `1.0e-3`.
pub fn lr(v: f64) -> String {
    format!("{v:.1e}")
}

/// Samples per second: `1,234` (one decimal below 100).
pub fn rate(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        "?".into()
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        thousands(v.round() as u64)
    }
}

/// `4.2s`, `2m05s`, `1h02m`.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let whole = s.round() as u64;
    if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracies_are_percentages_and_losses_keep_four_decimals() {
        assert_eq!(figure("accuracy", 0.91234), "91.23%");
        assert_eq!(figure("top5_accuracy", 1.0), "100.00%");
        assert_eq!(figure("loss", 0.41234), "0.4123");
        assert_eq!(figure("loss", 2.5e-5), "2.500e-5");
        assert_eq!(figure("loss", f64::NAN), "NaN");
        assert_eq!(figure("loss", f64::INFINITY), "inf");
    }

    #[test]
    fn rates_durations_and_rates_of_learning_read_naturally() {
        assert_eq!(rate(12345.6), "12,346");
        assert_eq!(rate(42.26), "42.3");
        assert_eq!(rate(f64::NAN), "?");
        assert_eq!(seconds(4.23), "4.2s");
        assert_eq!(seconds(125.0), "2m05s");
        assert_eq!(seconds(3720.0), "1h02m");
        assert_eq!(lr(0.001), "1.0e-3");
    }

    #[test]
    fn figures_join_names_and_values() {
        let m = Metrics(vec![("loss".into(), 0.5), ("accuracy".into(), 0.25)]);
        assert_eq!(figures(&m), "loss 0.5000  accuracy 25.00%");
        assert_eq!(figures(&Metrics::default()), "-");
    }
}
