use super::*;

/// splitmix64's uniforms in [0, 1) (wick's own generator): the same stream as the Python
/// that computed scipy's figure below (scripts/fid_scipy.py).
fn uniforms(seed: u64) -> impl Iterator<Item = f64> {
    let mut rng = crate::lower::params::SplitMix64::new(seed);
    std::iter::repeat_with(move || rng.unit())
}

/// Correlated features: each is a weighted running sum of a row's uniforms (squared and
/// shifted for the second set, so the two sets differ in mean and covariance).
fn features(seed: u64, rows: usize, dim: usize, square: bool) -> Vec<Vec<f64>> {
    let mut u = uniforms(seed);
    (0..rows)
        .map(|_| {
            let row: Vec<f64> = u.by_ref().take(dim).collect();
            (0..dim)
                .map(|j| {
                    let sum: f64 = (0..=j)
                        .map(|k| if square { row[k] * row[k] } else { row[k] } / (j - k + 1) as f64)
                        .sum();
                    sum + if square { 0.25 } else { 0.0 }
                })
                .collect()
        })
        .collect()
}

fn stats(rows: &[Vec<f64>]) -> Statistics {
    Statistics::of_rows(rows).unwrap()
}

#[test]
fn the_distance_matches_scipy_sqrtm_on_the_same_features() {
    let (a, b) = (features(1, 200, 16, false), features(2, 200, 16, true));
    assert!((a[0][0] - 0.566_561_58).abs() < 1e-8 && (b[0][2] - 1.001_899_12).abs() < 1e-8);
    let (sa, sb) = (stats(&a), stats(&b));
    // numpy's np.cov(a, rowvar=False)[3, 5] and a.mean(0)[7].
    assert!((sa.covariance[3 * 16 + 5] - 0.034_503_560_335_501_57).abs() < 1e-15);
    assert!((sa.mean[7] - 1.335_570_634_923_754_2).abs() < 1e-14);
    // scipy 1.17.1: |m1 - m2|^2 + tr(s1) + tr(s2) - 2 tr(sqrtm(s1 @ s2).real).
    let scipy = 0.593_762_551_367_911_2;
    let ours = frechet_distance(&sa, &sb).unwrap();
    let relative = (ours - scipy).abs() / scipy;
    eprintln!("ours {ours:.16} scipy {scipy:.16} relative difference {relative:.2e}");
    assert!(relative < 1e-9, "{ours} against scipy's {scipy}: {relative:.2e}");
    let back = frechet_distance(&sb, &sa).unwrap();
    assert!((back - ours).abs() < 1e-12, "the distance is symmetric: {back} and {ours}");
}

#[test]
fn identical_statistics_are_at_distance_zero() {
    let a = stats(&features(3, 200, 16, false));
    let d = frechet_distance(&a, &a).unwrap();
    assert!(d.abs() < 1e-12, "{d}");
}

#[test]
fn diagonal_covariances_give_the_closed_form() {
    // With diagonal S1, S2: sum_i (sqrt(s1_i) - sqrt(s2_i))^2 plus the means' distance.
    let n = 4;
    let diag = |v: &[f64]| {
        let mut c = vec![0.0; n * n];
        v.iter().enumerate().for_each(|(i, x)| c[i * n + i] = *x);
        c
    };
    let a = Statistics { mean: vec![0.0, 1.0, 2.0, 3.0], covariance: diag(&[1.0, 4.0, 9.0, 0.0]), rows: 9 };
    let b = Statistics { mean: vec![1.0, 1.0, 2.0, 1.0], covariance: diag(&[4.0, 4.0, 1.0, 2.0]), rows: 9 };
    let want = 1.0 + 4.0 + (1.0 - 2.0f64).powi(2) + 0.0 + (3.0 - 1.0f64).powi(2) + 2.0;
    let got = frechet_distance(&a, &b).unwrap();
    assert!((got - want).abs() < 1e-12, "{got} against {want}");
}

#[test]
fn rank_deficient_covariances_give_a_finite_distance() {
    // 5 samples of 16 features: covariances of rank 4 at most, their product singular.
    let (a, b) = (features(4, 5, 16, false), features(5, 5, 16, true));
    let (sa, sb) = (stats(&a), stats(&b));
    let d = frechet_distance(&sa, &sb).unwrap();
    assert!(d.is_finite() && d > 0.0, "{d}");
    let same = frechet_distance(&sa, &sa).unwrap();
    assert!(same.is_finite() && same.abs() < 1e-12, "{same}");
    // Constant features: zero covariance, the distance is the means' alone.
    let flat = |v: f64| stats(&[vec![v; 3], vec![v; 3]]);
    let d = frechet_distance(&flat(1.0), &flat(3.0)).unwrap();
    assert_eq!(d, 12.0);
}

#[test]
fn the_eigen_decomposition_rebuilds_the_matrix() {
    let s = stats(&features(6, 40, 8, true)).covariance;
    let (values, vectors) = symmetric_eigen(&s, 8);
    for i in 0..8 {
        for j in 0..8 {
            let rebuilt: f64 = (0..8).map(|k| vectors[i * 8 + k] * values[k] * vectors[j * 8 + k]).sum();
            assert!((rebuilt - s[i * 8 + j]).abs() < 1e-14, "({i}, {j}): {rebuilt} vs {}", s[i * 8 + j]);
        }
    }
}

#[test]
fn too_few_or_ragged_rows_are_refused() {
    let one = Statistics::of_rows(&[vec![1.0, 2.0]]).unwrap_err();
    assert!(one.contains("at least 2"), "{one}");
    let ragged = Statistics::of_rows(&[vec![1.0, 2.0], vec![1.0]]).unwrap_err();
    assert!(ragged.contains("row 1 has 1 values"), "{ragged}");
    let a = stats(&[vec![1.0, 2.0], vec![2.0, 1.0]]);
    let b = stats(&[vec![1.0], vec![2.0]]);
    assert!(frechet_distance(&a, &b).is_err());
}
