//! A parameter's first values: its [`Distribution`] drawn from a stream that depends on the
//! model's seed and the parameter's key only, so adding a layer never changes another's start
//! and a run's seed fixes every value.

use super::params::{fnv1a, SplitMix64};
use crate::ops::init_scheme::Distribution;

/// `n` values (a tensor of `shape`) of `init`; `None` when they cannot be allocated (an abort
/// otherwise).
pub(crate) fn draw(init: Distribution, shape: &[usize], n: usize, seed: u64, key: &str) -> Option<Vec<f64>> {
    let mut rng = SplitMix64::new(seed ^ fnv1a(key));
    let mut values = Vec::new();
    values.try_reserve_exact(n).ok()?;
    match init {
        Distribution::Full(v) => values.resize(n, v),
        Distribution::Uniform(bound) => values.extend((0..n).map(|_| (2.0 * rng.unit() - 1.0) * bound)),
        Distribution::Between { low, high } => values.extend((0..n).map(|_| low + (high - low) * rng.unit())),
        Distribution::Normal { mean, std } => values.extend((0..n).map(|_| mean + std * rng.normal())),
        // Bounded so that no interval can hang it: the ops that declare one, and a chosen
        // `trunc_normal` (checked when read), keep at least 0.1% of the mass inside, so a
        // thousand misses in a row do not happen.
        Distribution::TruncNormal { mean, std, low, high } => values.extend((0..n).map(|_| {
            let mut v = mean;
            for _ in 0..1000 {
                v = mean + std * rng.normal();
                if (low..=high).contains(&v) {
                    break;
                }
            }
            v.max(low).min(high)
        })),
        Distribution::Orthogonal { gain } => {
            values.extend((0..n).map(|_| rng.normal()));
            orthogonalize(&mut values, shape, gain)?;
        }
    }
    Some(values)
}

/// `torch.nn.init.orthogonal_` on normal draws: the tensor as a `[dim 0, rest]` matrix, its
/// QR factor Q (transposed first when it has fewer rows than columns) with the signs that make
/// R's diagonal positive, times `gain`. Modified Gram-Schmidt gives that Q directly: its R has
/// a positive diagonal by construction.
fn orthogonalize(values: &mut [f64], shape: &[usize], gain: f64) -> Option<()> {
    let rows = *shape.first()?;
    if rows == 0 || values.is_empty() {
        return Some(());
    }
    let cols = values.len() / rows;
    // Work on the columns of the tall orientation, each stored contiguously.
    let (tall, wide) = if rows >= cols { (rows, cols) } else { (cols, rows) };
    let mut columns: Vec<Vec<f64>> = (0..wide)
        .map(|j| {
            (0..tall)
                .map(|i| if rows >= cols { values[i * cols + j] } else { values[j * cols + i] })
                .collect()
        })
        .collect();
    for j in 0..wide {
        let (done, rest) = columns.split_at_mut(j);
        let column = &mut rest[0];
        for q in done.iter() {
            let dot: f64 = q.iter().zip(column.iter()).map(|(a, b)| a * b).sum();
            column.iter_mut().zip(q).for_each(|(c, q)| *c -= dot * q);
        }
        let norm = column.iter().map(|c| c * c).sum::<f64>().sqrt();
        if norm > 0.0 {
            column.iter_mut().for_each(|c| *c /= norm);
        }
    }
    for (j, column) in columns.iter().enumerate() {
        for (i, q) in column.iter().enumerate() {
            let at = if rows >= cols { i * cols + j } else { j * cols + i };
            values[at] = gain * q;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::init_scheme::Scheme;

    /// `a`ᵀ`a` of a `rows x cols` row-major matrix, or `a a`ᵀ when it is wide: the Gram matrix
    /// of its smaller side.
    fn gram(a: &[f64], rows: usize, cols: usize) -> Vec<Vec<f64>> {
        let at = |i: usize, j: usize| a[i * cols + j];
        if rows >= cols {
            (0..cols)
                .map(|p| (0..cols).map(|q| (0..rows).map(|i| at(i, p) * at(i, q)).sum()).collect())
                .collect()
        } else {
            (0..rows)
                .map(|p| (0..rows).map(|q| (0..cols).map(|j| at(p, j) * at(q, j)).sum()).collect())
                .collect()
        }
    }

    #[test]
    fn orthogonal_gives_gain_squared_identity_on_the_smaller_side() {
        // Tall, wide and square; a conv weight [8, 3, 2, 2] is flattened to 8 x 12 (wide).
        for (shape, gain) in
            [(vec![50, 7], 1.0), (vec![7, 50], 2.0), (vec![30, 30], 0.5), (vec![8, 3, 2, 2], 1.5)]
        {
            let n: usize = shape.iter().product();
            let w = draw(Distribution::Orthogonal { gain }, &shape, n, 3, "w").unwrap();
            let (rows, cols) = (shape[0], n / shape[0]);
            for (p, row) in gram(&w, rows, cols).iter().enumerate() {
                for (q, v) in row.iter().enumerate() {
                    let want = if p == q { gain * gain } else { 0.0 };
                    assert!((v - want).abs() < 1e-9, "{shape:?}: [{p}][{q}] = {v}, want {want}");
                }
            }
        }
    }

    /// Mean, standard deviation, least and greatest of `scheme` drawn for a tensor of `shape`.
    fn moments(scheme: &str, shape: &[usize]) -> (f64, f64, f64, f64) {
        let dist = Scheme::parse(scheme).unwrap().distribution(shape).unwrap();
        let n: usize = shape.iter().product();
        let v = draw(dist, shape, n, 11, "layer.weight").unwrap();
        let mean = v.iter().sum::<f64>() / n as f64;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        (mean, std, lo, hi)
    }

    /// `scheme` on `shape` has mean `mean` and standard deviation `std` within 1.5% of `std`
    /// (each over at least 100,000 draws, the standard error is under 0.4%), and stays within
    /// `bounds` when it has them.
    fn check(scheme: &str, shape: &[usize], mean: f64, std: f64, bounds: Option<(f64, f64)>) {
        let (m, s, lo, hi) = moments(scheme, shape);
        assert!((m - mean).abs() < 0.015 * std, "{scheme}: mean {m}, want {mean}");
        assert!((s - std).abs() < 0.015 * std, "{scheme}: std {s}, want {std}");
        if let Some((low, high)) = bounds {
            assert!(lo >= low && hi <= high, "{scheme}: [{lo}, {hi}] outside [{low}, {high}]");
            // A uniform fills its interval: the extremes come within 0.1% of its ends.
            assert!(lo - low < 1e-3 * (high - low) || !scheme.contains("uniform"), "{scheme}: least {lo}");
            assert!(
                high - hi < 1e-3 * (high - low) || !scheme.contains("uniform"),
                "{scheme}: greatest {hi}"
            );
        }
    }

    // Each expected figure is PyTorch's formula (`torch.nn.init`) worked by hand for the shape.

    #[test]
    fn xavier_uniform_has_bound_gain_sqrt_6_over_fan_sum() {
        // fan_in 200, fan_out 300: b = 2 sqrt(6 / 500); a uniform's std is b / sqrt(3).
        let b = 2.0 * (6.0f64 / 500.0).sqrt();
        check("xavier_uniform(gain=2)", &[300, 200], 0.0, b / 3f64.sqrt(), Some((-b, b)));
    }

    #[test]
    fn xavier_normal_has_std_gain_sqrt_2_over_fan_sum() {
        // Conv [64, 32, 3, 3]: fan_in 288, fan_out 576.
        check("xavier_normal", &[64, 32, 3, 3], 0.0, (2.0f64 / 864.0).sqrt(), None);
    }

    #[test]
    fn kaiming_uniform_uses_leaky_relus_gain_and_fan_in() {
        // a = 0.2: gain sqrt(2 / 1.04); fan_in 64 * 9 = 576.
        let std = (2.0f64 / 1.04).sqrt() / 24.0;
        let b = 3f64.sqrt() * std;
        check("kaiming_uniform(0.2)", &[128, 64, 3, 3], 0.0, std, Some((-b, b)));
    }

    #[test]
    fn kaiming_normal_fan_out_relu_has_std_sqrt_2_over_fan_out() {
        // fan_out 64 * 9 = 576, as torchvision's ResNet initialises its convolutions.
        check(
            "kaiming_normal(mode=\"fan_out\", nonlinearity=\"relu\")",
            &[64, 32, 3, 3],
            0.0,
            2f64.sqrt() / 24.0,
            None,
        );
        // tanh's gain is 5/3; fan_in 400.
        check("kaiming_normal(nonlinearity=tanh)", &[300, 400], 0.0, 5.0 / 3.0 / 20.0, None);
    }

    #[test]
    fn normal_has_its_mean_and_std() {
        check("normal(0.5, 2)", &[400, 300], 0.5, 2.0, None);
    }

    #[test]
    fn trunc_normal_has_the_truncated_moments_and_bounds() {
        // N(0.1, 0.5) cut to [-0.4, 1.1], i.e. the standard normal's [-1, 2]: mean
        // 0.1 + 0.5 (phi(-1) - phi(2)) / Z, std 0.5 sqrt(1 + (-phi(-1) - 2 phi(2)) / Z - m^2).
        check(
            "trunc_normal(0.1, 0.5, -0.4, 1.1)",
            &[400, 300],
            0.214_818_59,
            0.360_472_79,
            Some((-0.4, 1.1)),
        );
    }

    #[test]
    fn uniform_fills_a_b() {
        check("uniform(-3, 5)", &[400, 300], 1.0, 8.0 / 12f64.sqrt(), Some((-3.0, 5.0)));
    }

    #[test]
    fn constant_zeros_and_ones_are_every_value() {
        for (scheme, v) in [("constant(0.3)", 0.3), ("zeros", 0.0), ("ones", 1.0)] {
            assert_eq!(moments(scheme, &[7]), (v, 0.0, v, v), "{scheme}");
        }
    }

    #[test]
    fn a_chosen_draw_depends_on_the_seed_and_key() {
        let dist = Scheme::parse("normal").unwrap().distribution(&[5, 5]).unwrap();
        let d = |seed, key| draw(dist, &[5, 5], 25, seed, key).unwrap();
        assert_eq!(d(1, "a.weight"), d(1, "a.weight"));
        assert_ne!(d(1, "a.weight"), d(2, "a.weight"));
        assert_ne!(d(1, "a.weight"), d(1, "b.weight"));
    }
}
