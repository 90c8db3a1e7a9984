//! Nearest, (bi/tri)linear and bicubic resizing as PyTorch's `interpolate` computes them.
//!
//! candle's nearest upsampling overwrites gradients that should accumulate and its bilinear
//! has no backward. Every mode here is separable, so each spatial axis is resized on its own:
//! nearest by `index_select` (whose backward accumulates), the interpolating modes by a
//! product with an `[output, input]` weight matrix built from PyTorch's source-index formulas.

use candle_core::{DType, Device, Result, Tensor};

/// How one axis is resized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Nearest,
    Linear { align_corners: bool },
    Cubic { align_corners: bool },
}

/// PyTorch's `compute_scales_value`: the inverse of a given scale factor, else in / out, in
/// single precision as PyTorch's kernels compute it.
fn inverse_scale(input: usize, output: usize, factor: Option<f64>) -> f32 {
    match factor {
        Some(f) if f > 0.0 => (1.0 / f) as f32,
        _ => input as f32 / output as f32,
    }
}

/// PyTorch's `area_pixel_compute_scale`.
fn pixel_scale(input: usize, output: usize, align_corners: bool, factor: Option<f64>) -> f32 {
    match (align_corners, output > 1) {
        (true, true) => (input - 1) as f32 / (output - 1) as f32,
        (true, false) => 0.0,
        (false, _) => inverse_scale(input, output, factor),
    }
}

/// PyTorch's `area_pixel_compute_source_index`: clamped at 0 except for cubic.
fn source(scale: f32, dst: usize, align_corners: bool, cubic: bool) -> f32 {
    if align_corners {
        return scale * dst as f32;
    }
    let src = scale * (dst as f32 + 0.5) - 0.5;
    if !cubic && src < 0.0 {
        0.0
    } else {
        src
    }
}

/// For nearest: the input index each output index reads.
pub fn nearest_index(input: usize, output: usize, factor: Option<f64>) -> Vec<u32> {
    let scale = inverse_scale(input, output, factor);
    (0..output)
        .map(|i| match () {
            _ if output == input => i,
            _ if output == 2 * input => i / 2,
            _ => ((i as f32 * scale).floor() as usize).min(input - 1),
        } as u32)
        .collect()
}

/// The `[output, input]` interpolation matrix of one axis, row-major.
pub fn weight_matrix(mode: Mode, input: usize, output: usize, factor: Option<f64>) -> Vec<f64> {
    let mut m = vec![0.0; output * input];
    match mode {
        Mode::Nearest => {
            for (i, j) in nearest_index(input, output, factor).into_iter().enumerate() {
                m[i * input + j as usize] = 1.0;
            }
        }
        Mode::Linear { align_corners } => {
            let scale = pixel_scale(input, output, align_corners, factor);
            for i in 0..output {
                let src = source(scale, i, align_corners, false);
                let lo = (src.floor() as usize).min(input - 1);
                let lambda = f64::from(src - lo as f32).clamp(0.0, 1.0);
                let hi = if lo + 1 < input { lo + 1 } else { lo };
                m[i * input + lo] += 1.0 - lambda;
                m[i * input + hi] += lambda;
            }
        }
        Mode::Cubic { align_corners } => {
            let scale = pixel_scale(input, output, align_corners, factor);
            for i in 0..output {
                let src = source(scale, i, align_corners, true);
                let floor = src.floor();
                let weights = cubic_weights(f64::from(src - floor));
                for (k, w) in weights.iter().enumerate() {
                    let j = (floor as i64 - 1 + k as i64).clamp(0, input as i64 - 1) as usize;
                    m[i * input + j] += w;
                }
            }
        }
    }
    m
}

/// Keys' cubic convolution weights with PyTorch's A = -0.75, for the four input cells around
/// a source position `t` past the cell at its floor.
fn cubic_weights(t: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// One axis's resize, ready on a device.
#[derive(Clone, Debug)]
enum AxisResize {
    Gather(Tensor),
    Matrix(Tensor),
}

/// A resize of some axes of a tensor, each axis on its own.
#[derive(Clone, Debug)]
pub struct Resize {
    axes: Vec<(usize, AxisResize)>,
}

impl Resize {
    /// `axes` holds (axis, input size, output size); `factor` is the scale factor the user
    /// gave, if any (PyTorch then uses its inverse, not in / out).
    pub fn new(
        mode: Mode,
        axes: &[(usize, usize, usize)],
        factor: Option<f64>,
        dtype: DType,
        device: &Device,
    ) -> Result<Resize> {
        let mut out = Vec::new();
        for &(axis, input, output) in axes {
            let resize = if mode == Mode::Nearest {
                if input == output {
                    // PyTorch reads index i for output i then.
                    continue;
                }
                AxisResize::Gather(Tensor::from_vec(nearest_index(input, output, factor), output, device)?)
            } else {
                let m = weight_matrix(mode, input, output, factor);
                AxisResize::Matrix(Tensor::from_vec(m, (output, input), device)?.to_dtype(dtype)?)
            };
            out.push((axis, resize));
        }
        Ok(Resize { axes: out })
    }

    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for (axis, resize) in &self.axes {
            y = match resize {
                AxisResize::Gather(index) => y.contiguous()?.index_select(index, *axis)?,
                AxisResize::Matrix(m) => along(&y, m, *axis)?,
            };
        }
        Ok(y)
    }
}

/// `m` (`[out, in]`) applied along `axis` of `x`.
fn along(x: &Tensor, m: &Tensor, axis: usize) -> Result<Tensor> {
    let dims = x.dims();
    let (before, after): (usize, usize) = (dims[..axis].iter().product(), dims[axis + 1..].iter().product());
    let mut shape = dims.to_vec();
    shape[axis] = m.dim(0)?;
    let y = if after == 1 {
        x.reshape((before, dims[axis]))?.matmul(&m.t()?)?
    } else {
        m.broadcast_matmul(&x.reshape((before, dims[axis], after))?)?
    };
    y.reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_indices_follow_pytorch() {
        // 1.5x of 4 is 6: floor(i / 1.5) with the given factor.
        assert_eq!(nearest_index(4, 6, Some(1.5)), vec![0, 0, 1, 2, 2, 3]);
        assert_eq!(nearest_index(5, 2, None), vec![0, 2]);
        // Half-pixel centres, clamped at 0: row 0 reads cell 0 only, row 1 a quarter of cell 1.
        let m = weight_matrix(Mode::Linear { align_corners: false }, 2, 4, Some(2.0));
        assert_eq!(m, vec![1.0, 0.0, 0.75, 0.25, 0.25, 0.75, 0.0, 1.0]);
        let m = weight_matrix(Mode::Linear { align_corners: true }, 3, 5, Some(2.0));
        assert_eq!(&m[3..6], &[0.5, 0.5, 0.0]);
        // Cubic weights sum to 1 and interpolate exactly at the cells.
        let w = cubic_weights(0.3);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
    }
}
