//! im2col and col2im on the CPU: a 2-D convolution's windows unrolled into the columns of a
//! matrix, so that the convolution, its input gradient and its weight gradient are each one
//! matrix product per group (see `conv_mm`).
//!
//! Layout. The image is `[N, C, H, W]`; the columns matrix is `[C * kh * kw, N * oh * ow]`:
//! row `(c, ki, kj)` (channel-major, so a group's rows are contiguous), column `(n, oi, oj)`.
//! Putting the batch in the columns makes each group's product one large matrix product,
//! with no sum over the batch afterwards. Zero padding is implicit: taps that fall outside
//! the image read zero (im2col) or are dropped (col2im), so no padded copy is made.
//!
//! The loops run on rayon's pool, each thread on its own contiguous part of the output.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};

use super::cpu::{for_float, par_chunks, slice, Elem};
use super::pool::Axis;

/// Where a convolution's windows lie on its image (the conv's input, the transposed conv's
/// output): rows, then columns. `output` counts window positions; `padding` is the zero
/// padding before the first pixel (after the last it is implied by `output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid(pub [Axis; 2]);

impl Grid {
    pub fn pixels(&self) -> usize {
        self.0[0].input * self.0[1].input
    }
    pub fn positions(&self) -> usize {
        self.0[0].output * self.0[1].output
    }
    pub fn taps(&self) -> usize {
        self.0[0].kernel * self.0[1].kernel
    }
}

/// The window positions `lo..hi` along `a` whose tap `t` reads inside the image, and the
/// pixel the first of them reads. (`p * stride + t * dilation - padding` for position `p`.)
fn span(a: &Axis, t: usize) -> (usize, usize, usize) {
    let offset = t * a.dilation;
    let lo = a.padding.saturating_sub(offset).div_ceil(a.stride).min(a.output);
    // The last readable pixel is input - 1: positions up to (input - 1 + padding - offset) / stride.
    let hi = match (a.input + a.padding).checked_sub(offset + 1) {
        Some(last) => (last / a.stride + 1).min(a.output),
        None => 0,
    };
    let hi = hi.max(lo);
    (lo, hi, (lo * a.stride + offset).saturating_sub(a.padding))
}

/// `image` `[batch, channels, H, W]` to columns `[channels * taps, batch * positions]`.
pub fn im2col<T: Elem>(image: &[T], batch: usize, channels: usize, g: &Grid) -> Vec<T> {
    let (pixels, positions, taps) = (g.pixels(), g.positions(), g.taps());
    let [rows, cols] = g.0;
    let mut out = vec![T::zero(); channels * taps * batch * positions];
    // One channel's rows are contiguous: each task fills whole channels.
    par_chunks(&mut out, taps * batch * positions, |c, block| {
        for (tap, line) in block.chunks_exact_mut(batch * positions).enumerate() {
            let (r_lo, r_hi, r_first) = span(&rows, tap / cols.kernel);
            let (c_lo, c_hi, c_first) = span(&cols, tap % cols.kernel);
            for n in 0..batch {
                let plane = &image[(n * channels + c) * pixels..][..pixels];
                let dst = &mut line[n * positions..][..positions];
                for (i, oi) in (r_lo..r_hi).enumerate() {
                    let src = &plane[(r_first + i * rows.stride) * cols.input..][..cols.input];
                    let dst = &mut dst[oi * cols.output..][c_lo..c_hi];
                    if cols.stride == 1 {
                        dst.copy_from_slice(&src[c_first..c_first + dst.len()]);
                    } else {
                        for (j, d) in dst.iter_mut().enumerate() {
                            *d = src[c_first + j * cols.stride];
                        }
                    }
                }
            }
        }
    });
    out
}

/// What [`col2im`] sums.
pub enum Cols<'a, T> {
    /// The columns matrix `[channels * taps, batch * positions]`.
    Matrix(&'a [T]),
    /// A depthwise product, formed on the fly: row `(c, tap)` is `weights[c * taps + tap]`
    /// times row `c` of `rows`, `[channels, batch * positions]`.
    Depthwise { rows: &'a [T], weights: &'a [T] },
}

/// The adjoint of [`im2col`]: columns summed back into an image `[batch, channels, H, W]`
/// whose every plane starts from `bias[channel]` (or 0).
pub fn col2im<T: Elem>(src: Cols<T>, batch: usize, channels: usize, g: &Grid, bias: Option<&[T]>) -> Vec<T> {
    let (pixels, positions, taps) = (g.pixels(), g.positions(), g.taps());
    let [rows, cols] = g.0;
    let width = batch * positions;
    // Where each tap's windows lie, worked out once for all planes.
    let row_spans: Vec<_> = (0..rows.kernel).map(|ki| span(&rows, ki)).collect();
    let col_spans: Vec<_> = (0..cols.kernel).map(|kj| span(&cols, kj)).collect();
    let mut out = vec![T::zero(); batch * channels * pixels];
    // Each task owns whole planes (n, c), so the sums need no synchronisation.
    par_chunks(&mut out, pixels, |plane_index, plane| {
        let (n, c) = (plane_index / channels, plane_index % channels);
        if let Some(b) = bias {
            plane.fill(b[c]);
        }
        for (ki, &(r_lo, r_hi, r_first)) in row_spans.iter().enumerate() {
            for (kj, &(c_lo, c_hi, c_first)) in col_spans.iter().enumerate() {
                let tap = c * taps + ki * cols.kernel + kj;
                let (line, scale) = match src {
                    Cols::Matrix(m) => (&m[tap * width..], None),
                    Cols::Depthwise { rows, weights } => (&rows[c * width..], Some(weights[tap])),
                };
                let line = &line[n * positions..][..positions];
                for (i, oi) in (r_lo..r_hi).enumerate() {
                    let dst = &mut plane[(r_first + i * rows.stride) * cols.input..][..cols.input];
                    let src = &line[oi * cols.output..][c_lo..c_hi];
                    match (cols.stride, scale) {
                        (1, None) => {
                            let dst = &mut dst[c_first..c_first + src.len()];
                            dst.iter_mut().zip(src).for_each(|(d, s)| *d += *s);
                        }
                        (1, Some(scale)) => {
                            let dst = &mut dst[c_first..c_first + src.len()];
                            dst.iter_mut().zip(src).for_each(|(d, s)| *d += *s * scale);
                        }
                        (stride, scale) => {
                            let scale = scale.unwrap_or(T::one());
                            for (j, s) in src.iter().enumerate() {
                                dst[c_first + j * stride] += *s * scale;
                            }
                        }
                    }
                }
            }
        }
    });
    out
}

/// `[a, b, len]` to `[b, a, len]`, adding `bias[i]` to every element of row `i` of `a`.
pub fn swap_leading<T: Elem>(x: &[T], a: usize, b: usize, len: usize, bias: Option<&[T]>) -> Vec<T> {
    let mut out = vec![T::zero(); a * b * len];
    par_chunks(&mut out, a * len, |j, block| {
        for (i, dst) in block.chunks_exact_mut(len).enumerate() {
            let src = &x[(i * b + j) * len..][..len];
            match bias {
                Some(bias) => dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s + bias[i]),
                None => dst.copy_from_slice(src),
            }
        }
    });
    out
}

/// [`im2col`] as a candle op on `[N, C, H, W]`. Its backward is [`Col2Im`], whose backward is
/// this op again (they are adjoint), so a composition on them is right to every order: the
/// convolutions of a pass whose gradients are differentiated again (see `conv::composed`).
/// `conv_mm` applies it without a backward, having its own.
pub struct Im2Col(pub Grid);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c) = match l.dims() {
            [n, c, ..] => (*n, *c),
            _ => candle_core::bail!("im2col takes [N, C, H, W], found {:?}", l.shape()),
        };
        if l.shape().elem_count() != n * c * self.0.pixels() {
            candle_core::bail!("im2col: input {:?} does not match {:?}", l.shape(), self.0);
        }
        let out =
            for_float!(s.dtype(), T => T::to_cpu_storage_owned(im2col(slice::<T>(s, l)?, n, c, &self.0)));
        Ok((out, Shape::from((c * self.0.taps(), n * self.0.positions()))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        grad.contiguous()?.apply_op1(Col2Im(self.0)).map(Some)
    }
}

/// [`col2im`] as a candle op: columns `[C * taps, N * positions]` to an image `[N, C, H, W]`.
/// Its backward is [`Im2Col`].
pub struct Col2Im(pub Grid);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let (rows, cols) = match l.dims() {
            [r, c] if r % g.taps() == 0 && c % g.positions() == 0 => (*r, *c),
            _ => candle_core::bail!("col2im: columns {:?} do not match {:?}", l.shape(), g),
        };
        let (c, n) = (rows / g.taps(), cols / g.positions());
        let out = for_float!(s.dtype(), T => {
            T::to_cpu_storage_owned(col2im(Cols::Matrix(slice::<T>(s, l)?), n, c, g, None))
        });
        Ok((out, Shape::from((n, c, g.0[0].input, g.0[1].input))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        grad.contiguous()?.apply_op1(Im2Col(self.0)).map(Some)
    }
}
