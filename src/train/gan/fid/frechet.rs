//! The Frechet distance between two Gaussians fitted to feature vectors (Heusel et al. 2017's
//! FID when the features are a classifier's):
//!
//! `|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2))`.
//!
//! `S1 S2` is not symmetric, but it is similar to `sqrt(S1) S2 sqrt(S1)`, which is symmetric
//! and positive semi-definite: the trace of its square root is the sum of the square roots of
//! that matrix's eigenvalues. Both square roots therefore come from symmetric eigen
//! decompositions, which Jacobi rotations give to about machine precision relative to the
//! matrix's norm; no general (Schur) matrix square root and no complex parts to discard, and
//! a rank-deficient covariance (fewer samples than features) only gives zero eigenvalues.

/// The mean and the unbiased covariance (numpy's `np.cov(x, rowvar=False)`) of feature rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Statistics {
    pub mean: Vec<f64>,
    /// Row-major, `dim x dim`.
    pub covariance: Vec<f64>,
    pub rows: usize,
}

impl Statistics {
    /// The statistics of `rows` (each of the same length); at least two, as the unbiased
    /// covariance divides by `rows - 1`.
    pub fn of_rows(rows: &[Vec<f64>]) -> Result<Statistics, String> {
        let n = rows.len();
        if n < 2 {
            return Err(format!("a covariance needs at least 2 feature rows, found {n}"));
        }
        let dim = rows[0].len();
        if let Some(bad) = rows.iter().position(|r| r.len() != dim) {
            return Err(format!("feature row {bad} has {} values and row 0 has {dim}", rows[bad].len()));
        }
        let mut mean = vec![0.0; dim];
        for r in rows {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut covariance = vec![0.0; dim * dim];
        let mut centred = vec![0.0; dim];
        for r in rows {
            for ((c, v), m) in centred.iter_mut().zip(r).zip(&mean) {
                *c = v - m;
            }
            for i in 0..dim {
                for j in i..dim {
                    covariance[i * dim + j] += centred[i] * centred[j];
                }
            }
        }
        for i in 0..dim {
            for j in i..dim {
                let v = covariance[i * dim + j] / (n - 1) as f64;
                covariance[i * dim + j] = v;
                covariance[j * dim + i] = v;
            }
        }
        Ok(Statistics { mean, covariance, rows: n })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }
}

/// One side's statistics with its covariance's square root, ready to be measured against
/// many others (a run's real images, against each epoch's samples).
#[derive(Clone, Debug)]
pub struct Reference {
    pub statistics: Statistics,
    root: Vec<f64>,
}

impl Reference {
    pub fn new(statistics: Statistics) -> Reference {
        let root = sqrt_psd(&statistics.covariance, statistics.dim());
        Reference { statistics, root }
    }

    /// The Frechet distance between the Gaussians this and `other` describe (see the module
    /// docs).
    pub fn distance(&self, other: &Statistics) -> Result<f64, String> {
        let (a, n) = (&self.statistics, self.statistics.dim());
        if other.dim() != n {
            return Err(format!("features of {n} values against features of {}", other.dim()));
        }
        let mean_term: f64 = a.mean.iter().zip(&other.mean).map(|(x, y)| (x - y) * (x - y)).sum();
        let trace = |s: &[f64]| (0..n).map(|i| s[i * n + i]).sum::<f64>();
        let inner = multiply(&multiply(&self.root, &other.covariance, n), &self.root, n);
        let cross: f64 = roots(&symmetric_eigenvalues(&symmetrised(&inner, n), n)).iter().sum();
        Ok(mean_term + trace(&a.covariance) + trace(&other.covariance) - 2.0 * cross)
    }
}

/// The Frechet distance between the Gaussians `a` and `b` describe.
pub fn frechet_distance(a: &Statistics, b: &Statistics) -> Result<f64, String> {
    Reference::new(a.clone()).distance(b)
}

/// The symmetric positive semi-definite square root of the symmetric positive semi-definite
/// `s` (`n x n`).
fn sqrt_psd(s: &[f64], n: usize) -> Vec<f64> {
    let (values, vectors) = symmetric_eigen(s, n);
    let roots = roots(&values);
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (0..n).map(|k| vectors[i * n + k] * roots[k] * vectors[j * n + k]).sum();
        }
    }
    out
}

/// The square roots of a positive semi-definite matrix's eigenvalues. Those within rounding
/// of zero (`n` epsilons of the largest: what a singular covariance's zero eigenvalues come
/// out as, of either sign) are taken as zero: the square root would magnify their noise of
/// 1e-16 into 1e-8 each.
fn roots(eigenvalues: &[f64]) -> Vec<f64> {
    let largest = eigenvalues.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let noise = eigenvalues.len() as f64 * f64::EPSILON * largest;
    eigenvalues.iter().map(|l| if *l > noise { l.sqrt() } else { 0.0 }).collect()
}

fn multiply(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                out[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    out
}

/// `(m + m^T) / 2`: a product that is symmetric in exact arithmetic, made so in floating point.
fn symmetrised(m: &[f64], n: usize) -> Vec<f64> {
    let mut out = m.to_vec();
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (m[i * n + j] + m[j * n + i]);
            out[i * n + j] = v;
            out[j * n + i] = v;
        }
    }
    out
}

/// The eigenvalues of the symmetric `s` (`n x n`, row-major) and its eigenvectors (column `k`
/// of the returned row-major matrix belongs to value `k`), by cyclic Jacobi rotations.
pub fn symmetric_eigen(s: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    let values = jacobi(s, n, Some(&mut v));
    (values, v)
}

/// The eigenvalues alone: a third less work than [`symmetric_eigen`].
pub fn symmetric_eigenvalues(s: &[f64], n: usize) -> Vec<f64> {
    jacobi(s, n, None)
}

/// The diagonal `s` is rotated to, its rotations accumulated into `vectors` when given.
fn jacobi(s: &[f64], n: usize, mut vectors: Option<&mut [f64]>) -> Vec<f64> {
    let mut a = s.to_vec();
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    // Jacobi converges quadratically once the off-diagonal is small: about ten sweeps for a
    // 64 x 64 covariance; the cap only guards against a matrix of NaNs.
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |j| *j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum::<f64>()
            .sqrt();
        // Done once the off-diagonal is negligible; a NaN ends it too.
        if off <= f64::EPSILON * 1e-3 * norm || off.is_nan() {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                rotate(&mut a, vectors.as_deref_mut(), n, p, q);
            }
        }
    }
    (0..n).map(|i| a[i * n + i]).collect()
}

/// The Jacobi rotation in the plane `(p, q)` that zeroes `a[p][q]`, applied to `a` on both
/// sides and to the eigenvectors `v` on the right. (Updating rows and columns in one loop, as
/// symmetry allows, measured slower: its column writes are strided.)
fn rotate(a: &mut [f64], v: Option<&mut [f64]>, n: usize, p: usize, q: usize) {
    let apq = a[p * n + q];
    if apq == 0.0 {
        return;
    }
    let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
    // The smaller root of t^2 + 2 theta t - 1 = 0: the rotation by at most 45 degrees, stable.
    let t = theta.signum() / (theta.abs() + theta.hypot(1.0));
    let c = 1.0 / (t * t + 1.0).sqrt();
    let s = t * c;
    let turn = |m: &mut [f64], x: usize, y: usize| {
        let (mx, my) = (m[x], m[y]);
        m[x] = c * mx - s * my;
        m[y] = s * mx + c * my;
    };
    for k in 0..n {
        turn(a, k * n + p, k * n + q);
    }
    for k in 0..n {
        turn(a, p * n + k, q * n + k);
    }
    if let Some(v) = v {
        for k in 0..n {
            turn(v, k * n + p, k * n + q);
        }
    }
    // Zero in exact arithmetic: set so, or rounding would keep the sweeps going.
    a[p * n + q] = 0.0;
    a[q * n + p] = 0.0;
}

#[cfg(test)]
#[path = "frechet_tests.rs"]
mod tests;
