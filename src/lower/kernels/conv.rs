//! Convolutions: on the CPU in f32/f64 as im2col + matrix products with their own backward
//! (`conv_mm`: any geometry per axis, and a backward about twice the forward, where candle's
//! costs about four times); elsewhere (CUDA) on candle's conv ops, arranged so their backward
//! is right, as follows.
//!
//! candle 0.11's conv2d backward computes one `output_padding` from the height and uses it
//! for the width too, so a strided conv whose axes leave different remainders gets a wrong
//! input gradient. Where that could happen (or the padding is not zeros, or differs per side),
//! padding is applied here and the input cut to the extent the windows read, so the remainder
//! is 0 on every axis; otherwise candle pads, which saves a copy of the input.

use candle_core::{DType, Device, Result, Tensor};

use super::cpu::composing;
use super::im2col::Grid;
use super::pad::{pad, PadMode};
use super::pool::Axis;
use super::{conv_composed, conv_direct, conv_mm};

/// Geometry of a convolution over `n` spatial axes, one entry per axis.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvGeometry {
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    /// (before, after) per axis: PyTorch's "same" pads unevenly for even kernels.
    pub padding: Vec<(usize, usize)>,
    pub dilation: Vec<usize>,
    pub groups: usize,
    pub mode: PadMode,
    /// Output sizes, as shape inference computed them.
    pub output: Vec<usize>,
}

impl ConvGeometry {
    /// One stride and one dilation for every axis: what candle's conv ops take.
    pub fn uniform(&self) -> Option<(usize, usize)> {
        let (s, d) = (*self.stride.first()?, *self.dilation.first()?);
        (self.stride.iter().all(|v| *v == s) && self.dilation.iter().all(|v| *v == d)).then_some((s, d))
    }

    /// The padding candle's conv can apply itself: zeros, the same on every side, and the same
    /// remainder on every axis (so its backward is right). Otherwise `prepare` pads.
    fn native_padding(&self, input: &[usize]) -> Option<usize> {
        let p = self.padding.first()?.0;
        let remainder =
            |i: usize| (input[i] + 2 * p - self.dilation[i] * (self.kernel[i] - 1) - 1) % self.stride[i];
        let same = self.padding.iter().all(|q| *q == (p, p))
            && (0..self.kernel.len()).all(|i| remainder(i) == remainder(0));
        (self.kernel.len() == 2 && self.mode == PadMode::Zeros && same).then_some(p)
    }

    /// Pads the spatial axes (from axis 2) in the layer's mode.
    fn padded(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for (i, (before, after)) in self.padding.iter().enumerate() {
            x = pad(&x, i + 2, *before, *after, self.mode)?;
        }
        Ok(x)
    }

    /// Pads the spatial axes and cuts each to what the windows read.
    fn prepare(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.padded(x)?;
        for i in 0..self.padding.len() {
            let axis = i + 2;
            let used = (self.output[i] - 1) * self.stride[i] + (self.kernel[i] - 1) * self.dilation[i] + 1;
            if used < x.dim(axis)? {
                x = x.narrow(axis, 0, used)?;
            }
        }
        Ok(x)
    }

    /// The im2col grid of windows `windows` on an image `image` (a 1-D convolution is one of
    /// height 1); `padded` when the padding is already in the image.
    fn grid(&self, image: &[usize], windows: &[usize], padded: bool) -> Grid {
        let axis = |i: usize| Axis {
            input: image[i],
            output: windows[i],
            kernel: self.kernel[i],
            stride: self.stride[i],
            padding: if padded { 0 } else { self.padding[i].0 },
            dilation: self.dilation[i],
        };
        let unit = Axis { input: 1, output: 1, kernel: 1, stride: 1, padding: 0, dilation: 1 };
        match self.kernel.len() {
            1 => Grid([unit, axis(0)]),
            _ => Grid([axis(0), axis(1)]),
        }
    }
}

/// Whether convolutions on `device` in `dtype` run as im2col + matrix products (`conv_mm`),
/// which take any stride, dilation and padding per axis. Elsewhere candle's conv ops run.
pub fn im2col_applies(device: &Device, dtype: DType) -> bool {
    device.is_cpu() && matches!(dtype, DType::F32 | DType::F64)
}

/// PyTorch `conv1d`/`conv2d`: `x` is `[N, C, L]` or `[N, C, H, W]`, `weight` PyTorch's layout.
/// `train` keeps what the backward needs (see `conv_mm`).
pub fn conv(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeometry,
    train: bool,
) -> Result<Tensor> {
    if im2col_applies(x.device(), x.dtype()) && (1..=2).contains(&g.kernel.len()) {
        // Zero padding is left to im2col, which reads zeros outside the image without a copy.
        let zeros = g.mode == PadMode::Zeros;
        let x = if zeros { x.clone() } else { g.padded(x)? };
        let grid = g.grid(&x.dims()[2..], &g.output, !zeros);
        return match g.kernel.len() {
            1 => on_grid(&x.unsqueeze(2)?, &weight.unsqueeze(2)?, bias, (grid, g.groups), false, train)?
                .squeeze(2),
            _ => on_grid(&x, weight, bias, (grid, g.groups), false, train),
        };
    }
    let Some((stride, dilation)) = g.uniform() else {
        candle_core::bail!(
            "different strides or dilations per axis ({:?}, {:?}) are lowered on the CPU only",
            g.stride,
            g.dilation
        )
    };
    let (x, padding) = match g.native_padding(&x.dims()[2..]) {
        Some(p) => (x.clone(), p),
        None => (g.prepare(x)?, 0),
    };
    let y = match g.kernel.len() {
        // As a conv2d of height 1: candle's conv1d backward gets the input gradient wrong.
        1 => x.unsqueeze(2)?.conv2d(&weight.unsqueeze(2)?, 0, stride, dilation, g.groups)?.squeeze(2)?,
        2 => x.conv2d(weight, padding, stride, dilation, g.groups)?,
        n => candle_core::bail!("convolutions over {n} spatial axes are not lowered"),
    };
    add_bias(y, bias)
}

/// PyTorch `conv_transpose2d` with `output_padding`; `weight` is `[C_in, C_out / groups, kH, kW]`.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeometry,
    output_padding: &[usize],
    train: bool,
) -> Result<Tensor> {
    if im2col_applies(x.device(), x.dtype()) {
        // The output size (with its output_padding) is `g.output`; the windows are x's pixels.
        let grid = g.grid(&g.output, &x.dims()[2..], false);
        return on_grid(x, weight, bias, (grid, g.groups), true, train);
    }
    let (Some((stride, dilation)), [p0, p1], [o0, o1]) = (g.uniform(), g.padding.as_slice(), output_padding)
    else {
        candle_core::bail!(
            "transposed convolutions need one stride, dilation, padding and output_padding for both axes"
        )
    };
    if p0 != p1 || p0.0 != p0.1 || o0 != o1 {
        candle_core::bail!("transposed convolutions with different padding per axis are not lowered yet");
    }
    let (padding, out_pad) = (p0.0, *o0);
    let y = if g.groups == 1 {
        x.conv_transpose2d(weight, padding, out_pad, stride, dilation)?
    } else {
        // candle has no groups here: each group is its own transposed conv.
        let xs = x.chunk(g.groups, 1)?;
        let ws = weight.chunk(g.groups, 0)?;
        let ys = xs
            .iter()
            .zip(&ws)
            .map(|(x, w)| x.conv_transpose2d(w, padding, out_pad, stride, dilation))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&ys, 1)?
    };
    add_bias(y, bias)
}

/// The convolution on `grid`: direct on small maps (`conv_direct`), else `conv_mm`'s im2col;
/// or in a pass whose gradients are differentiated again, the composition whose backward is
/// differentiable too (`conv_composed`).
fn on_grid(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    layout: (Grid, usize),
    transposed: bool,
    train: bool,
) -> Result<Tensor> {
    let (grid, groups) = layout;
    let direct = !transposed && conv_direct::applies(&grid, groups, x.dim(1)?, weight.dim(0)?);
    match (composing(), direct) {
        (true, _) => conv_composed::conv2d(x, weight, bias, layout, transposed),
        (false, true) => conv_direct::conv2d(x, weight, bias, grid, train),
        (false, false) => conv_mm::conv2d(x, weight, bias, layout, transposed, train),
    }
}

fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) => y.broadcast_add(&super::per_channel(b, y.rank())?),
        None => Ok(y),
    }
}
