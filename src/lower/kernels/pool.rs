//! 2-D pooling with padding, dilation and ceil_mode, and adaptive average pooling.
//!
//! candle's pooling backward is wrong when kernel != stride and refuses sizes that the kernel
//! does not divide. Here max pooling reads every window through one index (padding reads a
//! -inf cell) and picks the first maximum, so the gradient goes to one element per window, as
//! in PyTorch: on the CPU in one op (`max_pool`), elsewhere with `index_select` and `gather`. Average pooling is separable in every PyTorch mode (the
//! divisor is a product of a row count and a column count), so it is two matrix products.

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor, D};

use super::cpu::on_cpu_float;
use super::max_pool::max_pool_windows;

/// One spatial axis of a sliding window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    pub input: usize,
    pub output: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl Axis {
    /// Start of window `i` in input coordinates (may be negative: in the padding).
    fn start(&self, i: usize) -> i64 {
        (i * self.stride) as i64 - self.padding as i64
    }
}

/// For each output cell (row-major) and each kernel cell (row-major), the flattened input
/// position it reads, or `h * w` (one past the end) where it reads padding.
pub fn window_index(rows: Axis, cols: Axis) -> Vec<u32> {
    let fill = (rows.input * cols.input) as u32;
    let mut index = Vec::with_capacity(rows.output * cols.output * rows.kernel * cols.kernel);
    for oi in 0..rows.output {
        for oj in 0..cols.output {
            for ki in 0..rows.kernel {
                let r = rows.start(oi) + (ki * rows.dilation) as i64;
                for kj in 0..cols.kernel {
                    let c = cols.start(oj) + (kj * cols.dilation) as i64;
                    let inside = (0..rows.input as i64).contains(&r) && (0..cols.input as i64).contains(&c);
                    index.push(if inside { (r as usize * cols.input + c as usize) as u32 } else { fill });
                }
            }
        }
    }
    index
}

/// A [`window_index`] prepared once for a layer: as a slice for the CPU op, as a tensor on
/// the layer's device for the gathered composition.
pub struct Windows {
    cells: Arc<[u32]>,
    tensor: Tensor,
}

impl Windows {
    pub fn new(rows: Axis, cols: Axis, device: &Device) -> Result<Windows> {
        let cells: Arc<[u32]> = window_index(rows, cols).into();
        let tensor = Tensor::from_slice(&cells, cells.len(), device)?;
        Ok(Windows { cells, tensor })
    }
}

/// Max pooling over the last two axes of `x` through its layer's [`Windows`].
pub fn max_pool(x: &Tensor, windows: &Windows, rows: Axis, cols: Axis) -> Result<Tensor> {
    if on_cpu_float(x) {
        return max_pool_windows(x, Arc::clone(&windows.cells), (rows.output, cols.output));
    }
    max_pool_gathered(x, &windows.tensor, rows, cols)
}

/// [`max_pool`] on candle's primitives, for devices and dtypes the CPU op does not take.
fn max_pool_gathered(x: &Tensor, index: &Tensor, rows: Axis, cols: Axis) -> Result<Tensor> {
    let dims = x.dims();
    let lead = &dims[..dims.len() - 2];
    let batch: usize = lead.iter().product();
    let flat = x.reshape((batch, rows.input * cols.input))?;
    let fill = Tensor::full(f64::NEG_INFINITY, (batch, 1), x.device())?.to_dtype(x.dtype())?;
    let flat = Tensor::cat(&[&flat, &fill], 1)?;
    let k = rows.kernel * cols.kernel;
    let windows = flat.index_select(index, 1)?.reshape((batch, rows.output * cols.output, k))?;
    // argmax keeps the first maximum; selecting it sends the gradient there only. A select
    // and a sum, not `gather`: candle's backward of gather's backward (scatter_add) fails on
    // its shapes, and a gradient penalty differentiates this twice.
    let first_max = windows.argmax_keepdim(D::Minus1)?;
    let taps = Tensor::arange(0u32, k as u32, x.device())?.reshape((1, 1, k))?;
    let chosen = taps.broadcast_eq(&first_max)?;
    let out = chosen.where_cond(&windows, &windows.zeros_like()?)?.sum(D::Minus1)?;
    let mut shape = lead.to_vec();
    shape.extend([rows.output, cols.output]);
    out.reshape(shape)
}

/// How an average window counts its cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divisor {
    /// Cells of the window inside input + padding (PyTorch's count_include_pad=True).
    IncludePad,
    /// Cells of the window inside the input.
    ExcludePad,
    /// A fixed count; the per-axis factors are then 1.
    Override,
}

/// The `[output, input]` averaging matrix of one axis: row `i` holds `1 / factor` over window
/// `i`'s input cells.
pub fn average_matrix(a: Axis, divisor: Divisor) -> Vec<f64> {
    let mut m = vec![0.0; a.output * a.input];
    for i in 0..a.output {
        let start = a.start(i);
        let end = (start + ((a.kernel - 1) * a.dilation + 1) as i64).min((a.input + a.padding) as i64);
        let (lo, hi) = (start.max(0), end.min(a.input as i64));
        let factor = match divisor {
            Divisor::IncludePad => (end - start) as f64,
            Divisor::ExcludePad => (hi - lo) as f64,
            Divisor::Override => 1.0,
        };
        for r in lo..hi {
            m[i * a.input + r as usize] = 1.0 / factor;
        }
    }
    m
}

/// PyTorch's adaptive bins: bin `i` of `n` over length `l` covers `[floor(i*l/n), ceil((i+1)*l/n))`.
pub fn adaptive_matrix(input: usize, output: usize) -> Vec<f64> {
    let mut m = vec![0.0; output * input];
    for i in 0..output {
        let (lo, hi) = (i * input / output, ((i + 1) * input).div_ceil(output));
        for r in lo..hi {
            m[i * input + r] = 1.0 / (hi - lo) as f64;
        }
    }
    m
}

/// Row and column matrices of a separable average, ready on a device.
#[derive(Clone, Debug)]
pub struct Separable {
    rows: Tensor,
    /// Transposed: `[input, output]`.
    cols_t: Tensor,
    scale: Option<f64>,
}

impl Separable {
    /// `rows` is `[oh, h]`, `cols` is `[ow, w]`, both row-major.
    pub fn new(
        rows: Vec<f64>,
        (oh, h): (usize, usize),
        cols: Vec<f64>,
        (ow, w): (usize, usize),
        scale: Option<f64>,
        dtype: DType,
        device: &Device,
    ) -> Result<Separable> {
        let rows = Tensor::from_vec(rows, (oh, h), device)?.to_dtype(dtype)?;
        let cols_t = Tensor::from_vec(cols, (ow, w), device)?.t()?.contiguous()?.to_dtype(dtype)?;
        Ok(Separable { rows, cols_t, scale })
    }

    /// Averages the last two axes of `x`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.rows.broadcast_matmul(&x.broadcast_matmul(&self.cols_t)?)?;
        match self.scale {
            Some(s) => y.affine(s, 0.0),
            None => Ok(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(input: usize, output: usize, kernel: usize, stride: usize, padding: usize) -> Axis {
        Axis { input, output, kernel, stride, padding, dilation: 1 }
    }

    #[test]
    fn padding_reads_the_fill_cell() {
        // 1 x 3 input, kernel 1 x 2, stride 2, padding 1 on the columns: windows (-1, 0), (1, 2).
        let index = window_index(axis(1, 1, 1, 1, 0), axis(3, 2, 2, 2, 1));
        assert_eq!(index, vec![3, 0, 1, 2]);
    }

    #[test]
    fn average_divisors_follow_pytorch() {
        // Length 4, kernel 3, stride 2, padding 1: windows [-1, 2) and [1, 4).
        let a = axis(4, 2, 3, 2, 1);
        let incl = average_matrix(a, Divisor::IncludePad);
        assert_eq!(&incl[..4], &[1.0 / 3.0, 1.0 / 3.0, 0.0, 0.0]);
        let excl = average_matrix(a, Divisor::ExcludePad);
        assert_eq!(&excl[..4], &[0.5, 0.5, 0.0, 0.0]);
        // ceil_mode: the third window [4, 7) runs past input + padding and is clipped there.
        let ceil = average_matrix(axis(6, 3, 3, 2, 0), Divisor::IncludePad);
        assert_eq!(&ceil[12..], &[0.0, 0.0, 0.0, 0.0, 0.5, 0.5]);
        assert_eq!(adaptive_matrix(7, 3), {
            let t = 1.0 / 3.0;
            vec![t, t, t, 0., 0., 0., 0., 0., 0., t, t, t, 0., 0., 0., 0., 0., 0., t, t, t]
        });
    }

    #[test]
    fn the_cpu_op_matches_the_gathered_composition_in_values_and_gradients() {
        // 7 x 6 input, kernel 3 x 2, stride 2 x 3, padding 1 x 1, dilation 1 x 2, ceil rows.
        let (rows, cols) = (axis(7, 4, 3, 2, 1), Axis { dilation: 2, ..axis(6, 2, 2, 3, 1) });
        let x = Tensor::arange(0.0f64, 2.0 * 3.0 * 42.0, &Device::Cpu).unwrap();
        let x = candle_core::Var::from_tensor(
            &x.affine(2.3, 0.1).unwrap().sin().unwrap().reshape((2, 3, 7, 6)).unwrap(),
        )
        .unwrap();
        let windows = Windows::new(rows, cols, &Device::Cpu).unwrap();
        let run = |f: &dyn Fn(&Tensor) -> Result<Tensor>| {
            let y = f(x.as_tensor()).unwrap();
            let probe = y.affine(1.0, 0.0).unwrap().cos().unwrap().detach();
            let g = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            (
                y.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            )
        };
        let fused = run(&|x| max_pool(x, &windows, rows, cols));
        let composed = run(&|x| max_pool_gathered(x, &windows.tensor, rows, cols));
        assert_eq!(fused.0.len(), 2 * 3 * 4 * 2);
        assert_eq!(fused, composed);
    }
}
