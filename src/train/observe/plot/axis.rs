//! A chart axis: a range rounded out to whole ticks of 1, 2 or 5 times a power of ten, or a
//! logarithmic range with a tick per decade, and the tick labels.

#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub ticks: Vec<f64>,
    /// Decimals the tick labels need (linear axes).
    decimals: usize,
}

/// The nicest step of 1, 2 or 5 times a power of ten at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    let residual = raw / magnitude;
    let nice = if residual <= 1.0 {
        1.0
    } else if residual <= 2.0 {
        2.0
    } else if residual <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// `10^e`, correctly rounded (`powi` can be off in the last bit for negative `e`).
fn decade(e: i32) -> f64 {
    format!("1e{e}").parse().unwrap_or(f64::NAN)
}

fn decimals_for(step: f64) -> usize {
    (-step.log10().floor()).clamp(0.0, 12.0) as usize
}

impl Axis {
    /// A y axis over `values` (non-finite ones ignored), logarithmic when `allow_log` and the
    /// positive values span more than two decades.
    pub fn fit(values: impl IntoIterator<Item = f64>, allow_log: bool) -> Axis {
        let (lo, hi) = values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo > hi {
            return Axis::linear(0.0, 1.0);
        }
        if allow_log && lo > 0.0 && hi / lo > 100.0 {
            return Axis::log(lo, hi);
        }
        Axis::linear(lo, hi)
    }

    /// `lo..hi` widened to whole ticks, about five of them.
    pub fn linear(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo - pad, hi + pad)
        };
        let step = nice_step((hi - lo) / 5.0);
        let (first, last) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
        let ticks = (first..=last).map(|i| i as f64 * step).collect();
        Axis {
            lo: first as f64 * step,
            hi: last as f64 * step,
            log: false,
            ticks,
            decimals: decimals_for(step),
        }
    }

    /// The x axis of a run: epochs `0..=epochs`, whole-number ticks.
    pub fn epochs(epochs: usize) -> Axis {
        let hi = epochs.max(1) as f64;
        let step = nice_step(hi / 6.0).max(1.0);
        let ticks = (0..=(hi / step).floor() as i64).map(|i| i as f64 * step).collect();
        Axis { lo: 0.0, hi, log: false, ticks, decimals: 0 }
    }

    /// Whole decades around `lo..hi` (both positive), a tick on each (every other one past
    /// eight decades).
    pub fn log(lo: f64, hi: f64) -> Axis {
        let first = lo.log10().floor() as i32;
        let last = (hi.log10().ceil() as i32).max(first + 1);
        let every = ((last - first) as usize).div_ceil(8).max(1);
        let ticks = (first..=last).step_by(every).map(decade).collect();
        Axis { lo: decade(first), hi: decade(last), log: true, ticks, decimals: 0 }
    }

    /// Where `v` falls, 0 at `lo` and 1 at `hi`.
    pub fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    pub fn label(&self, v: f64) -> String {
        if self.log {
            let e = v.log10().round() as i32;
            return match e {
                0..=4 => format!("{}", 10i64.pow(e as u32)),
                -3..=-1 => format!("{:.*}", (-e) as usize, v),
                _ => format!("1e{e}"),
            };
        }
        let big = self.lo.abs().max(self.hi.abs());
        if big >= 1e6 || (self.decimals > 5 && v != 0.0) {
            format!("{v:.1e}")
        } else {
            format!("{v:.*}", self.decimals)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(0.01), 0.01);
    }

    #[test]
    fn a_linear_axis_rounds_out_to_whole_ticks() {
        let a = Axis::linear(0.23, 0.97);
        assert_eq!((a.lo, a.hi), (0.2, 1.0));
        let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
        assert_eq!(labels, ["0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert!((a.frac(0.6) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_flat_or_empty_range_still_has_room() {
        let flat = Axis::linear(2.0, 2.0);
        assert!(flat.lo < 2.0 && flat.hi > 2.0);
        let none = Axis::fit([f64::NAN, f64::INFINITY], true);
        assert_eq!((none.lo, none.hi), (0.0, 1.0));
    }

    #[test]
    fn losses_over_three_decades_get_a_log_axis() {
        let a = Axis::fit([2.3, 0.5, 0.004, f64::NAN], true);
        assert!(a.log);
        assert_eq!((a.lo, a.hi), (0.001, 10.0));
        let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
        assert_eq!(labels, ["0.001", "0.01", "0.1", "1", "10"]);
        assert!((a.frac(0.1) - 0.5).abs() < 1e-12);
        assert!(!Axis::fit([2.3, 0.5], true).log);
        assert!(!Axis::fit([2.3, 0.001], false).log);
    }

    #[test]
    fn epoch_ticks_are_whole_numbers_within_the_run() {
        assert_eq!(Axis::epochs(1).ticks, [0.0, 1.0]);
        assert_eq!(Axis::epochs(7).ticks, [0.0, 2.0, 4.0, 6.0]);
        assert_eq!(Axis::epochs(100).ticks.last(), Some(&100.0));
    }
}
