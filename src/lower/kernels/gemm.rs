//! Matrix products on slices with the `gemm` crate candle's CPU matmul uses, for the custom
//! ops that hold their operands as slices: strided views instead of transposed copies, and an
//! accumulating destination (a bias already in place). Bounds are checked here, so the one
//! `unsafe` call below reads and writes only inside the given slices.

use super::cpu::Elem;

/// A `rows x cols` matrix in `data`: element `(i, j)` at `i * row_stride + j * col_stride`.
#[derive(Clone, Copy)]
pub struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a, T> Mat<'a, T> {
    /// Row-major and contiguous.
    pub fn rows(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose, as a view.
    pub fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst = a @ b` (`accumulate`: `dst += a @ b`) with `dst` row-major `a.rows x b.cols`.
pub fn matmul_into<T: Elem>(
    dst: &mut [T],
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    accumulate: bool,
) -> candle_core::Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || dst.len() != m * n || !a.fits() || !b.fits() {
        candle_core::bail!(
            "matmul_into: [{m}, {k}] @ [{}, {n}] into {} elements, or a view out of bounds",
            b.rows,
            dst.len()
        );
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst.fill(T::from_f64(0.0));
        }
        return Ok(());
    }
    let threads = super::cpu::threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the checks above keep every index gemm forms inside `dst`, `a.data` and `b.data`:
    // dst is m x n row-major; a's and b's largest offsets were checked by `fits`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            T::from_f64(1.0),
            T::from_f64(1.0),
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_views_and_accumulation_match_the_definition() {
        // a: 3 x 5, b: 5 x 2 stored transposed (2 x 5 row-major).
        let a: Vec<f64> = (0..15).map(|i| (i as f64 * 0.7).sin()).collect();
        let bt: Vec<f64> = (0..10).map(|i| (i as f64 * 1.3).cos()).collect();
        let mut dst = vec![1.0; 6];
        matmul_into(&mut dst, Mat::rows(&a, 3, 5), Mat::rows(&bt, 2, 5).t(), true).unwrap();
        for i in 0..3 {
            for j in 0..2 {
                let want: f64 = 1.0 + (0..5).map(|k| a[i * 5 + k] * bt[j * 5 + k]).sum::<f64>();
                assert!((dst[i * 2 + j] - want).abs() < 1e-12);
            }
        }
        let short = Mat { data: &a[..14], ..Mat::rows(&a, 3, 5) };
        assert!(matmul_into(&mut dst, short, Mat::rows(&bt, 2, 5).t(), false).is_err());
    }
}
