//! What a sweep tries: every combination of listed values (`--grid lr=1e-3,3e-3`), or `n`
//! seeded random draws (`--random 8`) from ranges (`--range lr=1e-4:1e-1:log`), a listed
//! axis then being a choice drawn among its values.

use crate::lower::params::SplitMix64;

/// At most this many runs in one sweep: a typo in a grid (`--grid seed=0,...` pasted from a
/// list of ten thousand) is refused before anything is allocated for it.
pub const MAX_TRIALS: usize = 10_000;

/// One setting of one run: a training key (dotted for nested ones) and its value as text.
pub type Setting = (String, String);

/// `--grid KEY=V1,V2,...`: the values a key takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// `--range KEY=LO:HI[:log][:int]`: an interval a key's values are drawn from.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub key: String,
    pub lo: f64,
    pub hi: f64,
    /// Uniform in the logarithm (rates, decays), not in the value.
    pub log: bool,
    /// Whole numbers (sizes, counts), each from `lo` to `hi` inclusive.
    pub int: bool,
}

/// Everything a sweep varies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Search {
    pub grid: Vec<Axis>,
    pub ranges: Vec<Range>,
    /// `Some(n)`: n random draws instead of the full grid.
    pub random: Option<usize>,
    /// Seeds the random draws.
    pub seed: u64,
}

/// The key a person typed, as the configuration names it: `lr` is the optimizer's rate, as
/// in `wick train --lr`.
pub fn canonical_key(key: &str) -> String {
    match key.trim() {
        "lr" => "optimizer.lr".to_string(),
        key => key.to_string(),
    }
}

fn key_and_rest<'a>(arg: &'a str, form: &str) -> Result<(String, &'a str), String> {
    match arg.split_once('=') {
        Some((key, rest)) if !key.trim().is_empty() && !rest.trim().is_empty() => {
            Ok((canonical_key(key), rest.trim()))
        }
        _ => Err(format!("expected {form}, found `{arg}`")),
    }
}

impl Axis {
    /// Read `KEY=V1,V2,...`.
    pub fn parse(arg: &str) -> Result<Axis, String> {
        let (key, rest) = key_and_rest(arg, "KEY=V1,V2,... (`lr=1e-3,3e-3`)")?;
        let values: Vec<String> = rest.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(format!("`{arg}` has an empty value: expected values separated by commas"));
        }
        Ok(Axis { key, values })
    }
}

impl Range {
    /// Read `KEY=LO:HI`, then `:log` and/or `:int`.
    pub fn parse(arg: &str) -> Result<Range, String> {
        let form = "KEY=LO:HI[:log][:int] (`lr=1e-4:1e-1:log`)";
        let (key, rest) = key_and_rest(arg, form)?;
        let mut parts = rest.split(':').map(str::trim);
        let mut number = |what: &str| -> Result<f64, String> {
            let text = parts.next().unwrap_or_default();
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => {
                    Err(format!("`{arg}`: the {what} bound `{text}` is not a finite number; expected {form}"))
                }
            }
        };
        let (lo, hi) = (number("low")?, number("high")?);
        let (mut log, mut int) = (false, false);
        for flag in parts {
            match flag {
                "log" => log = true,
                "int" => int = true,
                other => return Err(format!("`{arg}`: unknown scale `{other}`; expected `log` or `int`")),
            }
        }
        if lo > hi {
            return Err(format!("`{arg}`: the low bound {lo} is above the high bound {hi}"));
        }
        if log && lo <= 0.0 {
            return Err(format!("`{arg}`: a log range needs a low bound above 0, found {lo}"));
        }
        if int && (lo.fract() != 0.0 || hi.fract() != 0.0 || hi - lo > 1e15) {
            return Err(format!("`{arg}`: an int range needs whole bounds, found {lo} and {hi}"));
        }
        Ok(Range { key, lo, hi, log, int })
    }

    /// One draw, as the text the configuration reads. Rates are rounded to three significant
    /// digits, so the value a run used is the value its row and the best section print.
    fn draw(&self, rng: &mut SplitMix64) -> String {
        let u = rng.unit();
        if self.int {
            // Uniform over the whole numbers lo..=hi (in log space over [lo, hi + 1)).
            let v = if self.log {
                (self.lo.ln() + u * ((self.hi + 1.0).ln() - self.lo.ln())).exp().floor()
            } else {
                (self.lo + u * (self.hi + 1.0 - self.lo)).floor()
            };
            return format!("{}", v.clamp(self.lo, self.hi) as i64);
        }
        let v = if self.log {
            (self.lo.ln() + u * (self.hi.ln() - self.lo.ln())).exp()
        } else {
            self.lo + u * (self.hi - self.lo)
        };
        number_text(v.clamp(self.lo, self.hi))
    }
}

/// `v` rounded to three significant digits, written as people write rates: `0.00316`,
/// `3.16e-5` below a thousandth.
pub fn number_text(v: f64) -> String {
    let rounded: f64 = format!("{v:.2e}").parse().unwrap_or(v);
    if rounded != 0.0 && (rounded.abs() < 1e-3 || rounded.abs() >= 1e6) {
        format!("{rounded:e}")
    } else {
        format!("{rounded}")
    }
}

impl Search {
    /// The settings of each run, in order: the grid's combinations (the last axis varying
    /// fastest), or the random draws.
    pub fn trials(&self) -> Result<Vec<Vec<Setting>>, String> {
        let mut keys: Vec<&str> = self.grid.iter().map(|a| a.key.as_str()).collect();
        keys.extend(self.ranges.iter().map(|r| r.key.as_str()));
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].contains(key) {
                return Err(format!("`{key}` is swept twice: give each key one --grid or --range"));
            }
        }
        match self.random {
            None if !self.ranges.is_empty() => Err(
                "--range draws values at random: add --random N (how many runs to draw), or list values with --grid"
                    .into(),
            ),
            None if self.grid.is_empty() => Err("nothing to sweep: give --grid KEY=V1,V2 or --random N with --range".into()),
            None => self.grid_trials(),
            Some(0) => Err("--random needs at least 1 run, found 0".into()),
            Some(n) if n > MAX_TRIALS => Err(format!("--random {n} is more than {MAX_TRIALS} runs")),
            Some(_) if keys.is_empty() => Err("--random N needs something to draw: give --range or --grid".into()),
            Some(n) => Ok(self.random_trials(n)),
        }
    }

    fn grid_trials(&self) -> Result<Vec<Vec<Setting>>, String> {
        let count = self.grid.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
        match count {
            Some(n) if n <= MAX_TRIALS => {}
            _ => return Err(format!("the grid has more than {MAX_TRIALS} combinations")),
        }
        let mut trials: Vec<Vec<Setting>> = vec![Vec::new()];
        for axis in &self.grid {
            trials = trials
                .into_iter()
                .flat_map(|t| {
                    axis.values.iter().map(move |v| {
                        let mut t = t.clone();
                        t.push((axis.key.clone(), v.clone()));
                        t
                    })
                })
                .collect();
        }
        Ok(trials)
    }

    fn random_trials(&self, n: usize) -> Vec<Vec<Setting>> {
        let mut rng = SplitMix64::new(self.seed);
        (0..n)
            .map(|_| {
                let mut t: Vec<Setting> = Vec::new();
                for axis in &self.grid {
                    let pick = (rng.unit() * axis.values.len() as f64) as usize;
                    let value = &axis.values[pick.min(axis.values.len() - 1)];
                    t.push((axis.key.clone(), value.clone()));
                }
                t.extend(self.ranges.iter().map(|r| (r.key.clone(), r.draw(&mut rng))));
                t
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(grid: &[&str], ranges: &[&str], random: Option<usize>, seed: u64) -> Search {
        Search {
            grid: grid.iter().map(|g| Axis::parse(g).unwrap()).collect(),
            ranges: ranges.iter().map(|r| Range::parse(r).unwrap()).collect(),
            random,
            seed,
        }
    }

    #[test]
    fn a_grid_is_every_combination_with_the_last_axis_fastest() {
        let trials = search(&["lr=1e-3,3e-3", "batch_size=32,64"], &[], None, 0).trials().unwrap();
        let flat: Vec<String> = trials
            .iter()
            .map(|t| t.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            flat,
            [
                "optimizer.lr=1e-3 batch_size=32",
                "optimizer.lr=1e-3 batch_size=64",
                "optimizer.lr=3e-3 batch_size=32",
                "optimizer.lr=3e-3 batch_size=64"
            ]
        );
    }

    #[test]
    fn random_draws_repeat_with_their_seed_and_stay_in_their_ranges() {
        let s = |seed| {
            search(&["batch_size=16,32"], &["lr=1e-4:1e-1:log", "l1=0:0.5", "epochs=2:4:int"], Some(50), seed)
        };
        let a = s(7).trials().unwrap();
        assert_eq!(a, s(7).trials().unwrap());
        assert_ne!(a, s(8).trials().unwrap());
        let value = |t: &Vec<Setting>, k: &str| t.iter().find(|(key, _)| key == k).unwrap().1.clone();
        let rates: Vec<f64> = a.iter().map(|t| value(t, "optimizer.lr").parse().unwrap()).collect();
        assert!(rates.iter().all(|r| (1e-4..=1e-1).contains(r)), "{rates:?}");
        // Log-uniform: about a third of the draws in each decade, so some below 1e-3.
        assert!(rates.iter().filter(|r| **r < 1e-3).count() >= 8, "{rates:?}");
        let epochs: Vec<i64> = a.iter().map(|t| value(t, "epochs").parse().unwrap()).collect();
        assert!(
            epochs.iter().all(|e| (2..=4).contains(e)) && (2..=4).all(|e| epochs.contains(&e)),
            "{epochs:?}"
        );
        assert!(a.iter().all(|t| ["16", "32"].contains(&value(t, "batch_size").as_str())));
        assert!(a.iter().all(|t| (0.0..=0.5).contains(&value(t, "l1").parse::<f64>().unwrap())));
    }

    #[test]
    fn drawn_numbers_print_with_three_significant_digits() {
        assert_eq!(number_text(0.003162277), "0.00316");
        assert_eq!(number_text(3.162277e-5), "3.16e-5");
        assert_eq!(number_text(0.25), "0.25");
        assert_eq!(number_text(0.0), "0");
    }

    #[test]
    fn mistyped_axes_and_ranges_say_what_was_expected() {
        let err = |r: Result<Range, String>| r.unwrap_err();
        assert!(err(Range::parse("lr=1e-4")).contains("high bound"), "one bound only");
        assert!(err(Range::parse("lr=0:1:log")).contains("above 0"));
        assert!(err(Range::parse("lr=1:0")).contains("above the high bound"));
        assert!(err(Range::parse("lr=1e-4:1:lg")).contains("expected `log` or `int`"));
        assert!(err(Range::parse("epochs=1.5:3:int")).contains("whole bounds"));
        assert!(Axis::parse("lr").unwrap_err().contains("KEY=V1,V2"));
        assert!(Axis::parse("lr=1,,2").unwrap_err().contains("empty value"));
        let trials = |s: Search| s.trials().unwrap_err();
        assert!(trials(search(&["lr=1", "optimizer.lr=2"], &[], None, 0)).contains("swept twice"));
        assert!(trials(search(&[], &["lr=1e-4:1:log"], None, 0)).contains("--random N"));
        assert!(trials(search(&[], &[], None, 0)).contains("nothing to sweep"));
        let big: Vec<String> = (0..5).map(|i| format!("k{i}={}", ["1"; 10].join(","))).collect();
        let big: Vec<&str> = big.iter().map(String::as_str).collect();
        assert!(trials(search(&big, &[], None, 0)).contains("more than 10000"));
    }
}
