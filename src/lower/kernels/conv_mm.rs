//! 2-D convolution and transposed convolution on the CPU as candle custom ops with their own
//! backward: im2col/col2im (see `im2col`) around one matrix product per group, candle's
//! `matmul` (gemm, multi-threaded) doing the products.
//!
//! A convolution `y = conv(x, w)` and a transposed one `y = conv_t(x, w)` are adjoint in their
//! image argument, so the four products below serve both ops (`cols` = im2col of the image):
//!
//! | | conv | conv_t |
//! |---|---|---|
//! | forward | `w_g @ cols(x)_g` | `col2im(w_g^T @ x_g)` |
//! | input gradient | `col2im(w_g^T @ dy_g)` | `w_g @ cols(dy)_g` |
//! | weight gradient | `dy_g @ cols(x)_g^T` | `x_g @ cols(dy)_g^T` |
//!
//! with the window side (`dy` of a conv, `x` of a conv_t) channels-first, `[C, N * positions]`,
//! so that every product is one large `[g, m, k] @ [g, k, N * positions]` batched over groups.
//! The bias is added while the forward's result is copied out (or seeds col2im's sums), and
//! its gradient is one sum over the channels-first gradient.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{Context, CpuStorage, Device, Result, Shape, Tensor, WithDType};

use super::cpu::{for_float, slice, with_slice, Elem};
use super::im2col::{col2im, im2col, swap_leading, Cols, Grid, Im2Col};
use super::weighted::{apply, Grads, Operand, WeightedOp};

/// `conv2d` of `x` `[N, C, H, W]` with `weight` `[O, C / groups, kh, kw]` on `grid` (whose
/// image is `H x W`), plus `bias` `[O]`: `[N, O, oh, ow]`. Or, `transposed`, `conv_transpose2d`
/// of `x` `[N, C_in, oh, ow]` with `weight` `[C_in, C_out / groups, kh, kw]`: the adjoint of
/// the convolution on `grid`, `[N, C_out, H, W]`, plus `bias` `[C_out]`.
///
/// In training (`train`) the forward keeps an operand for the backward (the columns of `x`,
/// or `x` channels first); in inference nothing more than the output is kept.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    (grid, groups): (Grid, usize),
    transposed: bool,
    train: bool,
) -> Result<Tensor> {
    let op = ConvMm { grid, groups, transposed, kept: train.then(|| Mutex::new(None)) };
    apply(x, weight, bias, op)
}

struct ConvMm {
    grid: Grid,
    groups: usize,
    transposed: bool,
    /// In training, the forward's operand that the backward needs again: the columns of `x`
    /// (a conv) or `x` channels first (a conv_t), `[g, _, N * positions]`. Taken by the
    /// backward; recomputed if absent.
    kept: Option<Mutex<Option<Tensor>>>,
}

/// The sizes of one call: `image` is the channel count on the grid's image side, `windows`
/// on its window side; `k` is a group's share of the columns' rows.
struct Sizes {
    n: usize,
    image: usize,
    windows: usize,
    k: usize,
}

impl ConvMm {
    fn keep(&self, t: &Tensor) -> Tensor {
        if let Some(kept) = &self.kept {
            *kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.clone());
        }
        t.clone()
    }

    fn take_kept(&self) -> Option<Tensor> {
        self.kept.as_ref().and_then(|k| k.lock().unwrap_or_else(|e| e.into_inner()).take())
    }

    /// Checks the shapes of `x` and `w` against the grid and the groups.
    fn sizes(&self, x: &[usize], w: &[usize]) -> Result<Sizes> {
        let ([n, c, h, wd], [w0, w1, kh, kw]) = (x, w) else {
            candle_core::bail!("conv_mm takes rank-4 input and weight, found {x:?} and {w:?}")
        };
        let [rows, cols] = self.grid.0;
        let (g, (n, c, w0, w1)) = (self.groups, (*n, *c, *w0, *w1));
        let expect = if self.transposed { [rows.output, cols.output] } else { [rows.input, cols.input] };
        let (image, windows) = if self.transposed { (w1 * g, c) } else { (c, w0) };
        let ok = [*h, *wd] == expect
            && [*kh, *kw] == [rows.kernel, cols.kernel]
            && c % g == 0
            && w0 % g == 0
            && if self.transposed { w0 == c } else { w1 * g == c };
        if !ok {
            candle_core::bail!(
                "conv_mm: input {x:?} and weight {w:?} do not fit {:?}, groups {g}",
                self.grid
            );
        }
        Ok(Sizes { n, image, windows, k: image / g * self.grid.taps() })
    }

    fn forward<T: Elem>(
        &self,
        x: &[T],
        xd: &[usize],
        w: &[T],
        wd: &[usize],
        b: Option<&[T]>,
    ) -> Result<Vec<T>> {
        let (g, grid, cpu) = (self.groups, &self.grid, &Device::Cpu);
        let Sizes { n, image, windows, k } = self.sizes(xd, wd)?;
        let width = n * grid.positions();
        let w = Tensor::from_slice(w, (g, windows / g, k), cpu)?;
        if self.transposed {
            let x = swap_leading(x, n, windows, grid.positions(), None);
            self.scatter(&w, &self.keep(&Tensor::from_vec(x, (g, windows / g, width), cpu)?), n, image, b)
        } else {
            let cols = Tensor::from_vec(im2col(x, n, image, grid), (g, k, width), cpu)?;
            let y = w.matmul(&self.keep(&cols))?;
            with_slice(&y, |y| swap_leading(y, windows, n, grid.positions(), b))
        }
    }

    fn convolve(
        &self,
        x: Operand<'_>,
        w: Operand<'_>,
        b: Option<Operand<'_>>,
    ) -> Result<(CpuStorage, Shape)> {
        let (xd, wd) = (x.1.dims(), w.1.dims());
        let Sizes { n, image, windows, .. } = self.sizes(xd, wd)?;
        let out_channels = if self.transposed { image } else { windows };
        if let Some((_, l)) = b.filter(|(_, l)| l.shape().elem_count() != out_channels) {
            candle_core::bail!("conv_mm: bias {:?} for {out_channels} output channels", l.shape());
        }
        let y = for_float!(x.0.dtype(), T => {
            let b = b.map(|(s, l)| slice::<T>(s, l)).transpose()?;
            T::to_cpu_storage_owned(self.forward(slice::<T>(x.0, x.1)?, xd, slice::<T>(w.0, w.1)?, wd, b)?)
        });
        let [rows, cols] = self.grid.0;
        let shape = match self.transposed {
            true => Shape::from((n, image, rows.input, cols.input)),
            false => Shape::from((n, windows, rows.output, cols.output)),
        };
        Ok((y, shape))
    }

    /// `col2im(w_g^T @ a_g)` for `w` `[g, m, k]` and `a` `[g, m, N * positions]`: a conv's
    /// input gradient, a conv_t's output. With one channel a group on both sides (depthwise),
    /// col2im forms the product itself instead of a matrix product filling `[C * taps, width]`.
    fn scatter<T: Elem>(
        &self,
        w: &Tensor,
        a: &Tensor,
        n: usize,
        image: usize,
        b: Option<&[T]>,
    ) -> Result<Vec<T>> {
        let grid = &self.grid;
        if w.dim(1)? == 1 && w.dim(2)? == grid.taps() {
            let weights = w.contiguous()?;
            with_slice(&weights, |weights| {
                with_slice(a, |rows| col2im(Cols::Depthwise { rows, weights }, n, image, grid, b))
            })?
        } else {
            let cols = w.t()?.matmul(a)?;
            with_slice(&cols, |cols| col2im(Cols::Matrix(cols), n, image, grid, b))
        }
    }

    /// The gradients of `x`, `w` and (when `bias`) the bias, each only where it is tracked.
    fn gradients(&self, x: &Tensor, w: &Tensor, bias: bool, grad: &Tensor) -> Result<Grads> {
        let Sizes { n, image, windows, k } = self.sizes(x.dims(), w.dims())?;
        let (g, positions) = (self.groups, self.grid.positions());
        let width = n * positions;
        let channels_first = |t: &Tensor| swapped(t, n, windows, positions)?.reshape((g, windows / g, width));
        let w3 = w.reshape((g, windows / g, k))?;
        let im2col = |t: &Tensor| t.apply_op1_no_bwd(&Im2Col(self.grid))?.reshape((g, k, width));
        // The window side channels first, and (where a product needs them) the image side as
        // columns; the forward kept one of them.
        let kept = self.take_kept();
        let needs_cols = w.track_op() || (self.transposed && x.track_op());
        let (side, cols) = match (self.transposed, kept) {
            (true, kept) => {
                let side = kept.map_or_else(|| channels_first(x), Ok)?;
                (side, if needs_cols { Some(im2col(grad)?) } else { None })
            }
            (false, Some(cols)) => (channels_first(grad)?, Some(cols)),
            (false, None) => (channels_first(grad)?, if needs_cols { Some(im2col(x)?) } else { None }),
        };
        let cols = || cols.as_ref().context("conv_mm: columns not computed");
        let dw = match w.track_op() {
            true => Some(side.matmul(&cols()?.t()?)?.reshape(w.shape())?),
            false => None,
        };
        let dx = match (x.track_op(), self.transposed) {
            (false, _) => None,
            (true, true) => Some(swapped(&w3.matmul(cols()?)?, windows, n, positions)?.reshape(x.shape())?),
            (true, false) => Some(for_float!(side.dtype(), T => {
                Tensor::from_vec(self.scatter::<T>(&w3, &side, n, image, None)?, x.shape(), x.device())?
            })),
        };
        let db = match (bias, self.transposed) {
            (false, _) => None,
            (true, true) => Some(grad.reshape((n, image, self.grid.pixels()))?.sum(2)?.sum(0)?),
            (true, false) => Some(side.reshape((windows, width))?.sum(1)?),
        };
        Ok((dx, dw, db))
    }
}

/// `t` `[a, b, len]` (in any shape with that many elements) as `[b, a, len]`.
fn swapped(t: &Tensor, a: usize, b: usize, len: usize) -> Result<Tensor> {
    let t = t.contiguous()?;
    for_float!(t.dtype(), T => {
        let swapped = with_slice(&t, |t: &[T]| swap_leading(t, a, b, len, None))?;
        Tensor::from_vec(swapped, (b, a, len), t.device())
    })
}

impl WeightedOp for ConvMm {
    fn name(&self) -> &'static str {
        "conv_mm"
    }

    fn cpu(&self, x: Operand<'_>, w: Operand<'_>, bias: Option<Operand<'_>>) -> Result<(CpuStorage, Shape)> {
        self.convolve(x, w, bias)
    }

    fn backward(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, grad: &Tensor) -> Result<Grads> {
        self.gradients(x, w, bias.is_some_and(Tensor::track_op), grad)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use candle_core::{DType, Var};

    use super::*;
    use crate::lower::gradcheck::check_fn;
    use crate::lower::kernels::pool::Axis;

    /// Values in [-2, 2] that follow no pattern a transposed axis could keep: `2 sin(1.7 i + seed)`.
    pub(crate) fn var(shape: &[usize], seed: u64) -> Var {
        let n: usize = shape.iter().product();
        let t = Tensor::arange(0u32, n as u32, &Device::Cpu).and_then(|t| t.to_dtype(DType::F64));
        let t = t.and_then(|t| t.affine(1.7, seed as f64)?.sin()?.affine(2.0, 0.0)?.reshape(shape));
        Var::from_tensor(&t.unwrap()).unwrap()
    }

    /// An axis of `input` pixels; the window count follows from the padding on both sides.
    pub(crate) fn axis(
        input: usize,
        kernel: usize,
        stride: usize,
        padding: (usize, usize),
        dilation: usize,
    ) -> Axis {
        let output = (input + padding.0 + padding.1 - dilation * (kernel - 1) - 1) / stride + 1;
        Axis { input, output, kernel, stride, padding: padding.0, dilation }
    }

    /// Gradchecks the conv on `grid` (batch `n`, `c` -> `o` channels) and the transposed conv
    /// on the same grid (`o` -> `c`), with and without bias, in training (operand kept for the
    /// backward) and not (recomputed).
    fn gradcheck(grid: Grid, n: usize, c: usize, o: usize, groups: usize) {
        let ([rows, cols], taps) = (grid.0, [grid.0[0].kernel, grid.0[1].kernel]);
        let image = var(&[n, c, rows.input, cols.input], 1);
        let windows = var(&[n, o, rows.output, cols.output], 2);
        let w = var(&[o, c / groups, taps[0], taps[1]], 3);
        let (b_o, b_c) = (var(&[o], 4), var(&[c], 5));
        for train in [true, false] {
            let named =
                |v: &[(&str, &Var)]| v.iter().map(|(k, v)| (k.to_string(), (*v).clone())).collect::<Vec<_>>();
            let report = check_fn(&named(&[("x", &image), ("w", &w), ("b", &b_o)]), || {
                let with_bias = conv2d(
                    image.as_tensor(),
                    w.as_tensor(),
                    Some(b_o.as_tensor()),
                    (grid, groups),
                    false,
                    train,
                )?;
                Ok(vec![
                    with_bias,
                    conv2d(image.as_tensor(), w.as_tensor(), None, (grid, groups), false, train)?,
                ])
            });
            report.unwrap().assert_within(1e-6);
            let report = check_fn(&named(&[("x", &windows), ("w", &w), ("b", &b_c)]), || {
                let (x, w) = (windows.as_tensor(), w.as_tensor());
                let with_bias = conv2d(x, w, Some(b_c.as_tensor()), (grid, groups), true, train)?;
                Ok(vec![with_bias, conv2d(x, w, None, (grid, groups), true, train)?])
            });
            report.unwrap().assert_within(1e-6);
        }
    }

    #[test]
    fn gradcheck_strides_with_uneven_remainders_per_axis() {
        // Rows: 7 + 2 - 3 = 6, stride 2, remainder 0; columns: 6 - 2 - 1 = 3, stride 3, remainder 0
        // from a different start; both axes differ in stride and dilation.
        gradcheck(Grid([axis(7, 3, 2, (1, 1), 1), axis(6, 2, 3, (0, 0), 2)]), 2, 3, 5, 1);
        // Remainder 1 on the rows, 0 on the columns.
        gradcheck(Grid([axis(8, 3, 2, (1, 1), 1), axis(5, 3, 2, (1, 1), 1)]), 1, 2, 3, 1);
    }

    #[test]
    fn gradcheck_dilation_groups_depthwise_and_uneven_padding() {
        gradcheck(Grid([axis(7, 3, 1, (2, 2), 2), axis(6, 3, 2, (2, 2), 2)]), 2, 4, 6, 2);
        // Depthwise (col2im forms the product), and with a channel multiplier of 2 (a matmul).
        gradcheck(Grid([axis(5, 3, 1, (1, 1), 1), axis(6, 3, 2, (1, 1), 2)]), 2, 3, 3, 3);
        gradcheck(Grid([axis(5, 3, 1, (1, 1), 1), axis(6, 3, 2, (1, 1), 1)]), 2, 3, 6, 3);
        // "same" for an even kernel: one row before, two after.
        gradcheck(Grid([axis(5, 4, 1, (1, 2), 1), axis(3, 1, 1, (0, 0), 1)]), 2, 2, 3, 1);
    }

    #[test]
    fn forward_equals_candles_conv_ops() {
        // candle's forwards are right (its backwards are what is wrong), so they are a reference.
        let grid = Grid([axis(9, 3, 2, (1, 1), 2), axis(8, 3, 2, (1, 1), 2)]);
        let x = var(&[2, 4, 9, 8], 6).as_tensor().clone();
        let w = var(&[6, 2, 3, 3], 7).as_tensor().clone();
        let ours = conv2d(&x, &w, None, (grid, 2), false, false).unwrap();
        let theirs = x.conv2d(&w, 1, 2, 2, 2).unwrap();
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
        };
        assert_eq!(ours.dims(), theirs.dims());
        assert!(diff(&ours, &theirs) < 1e-12);
        // The transposed conv onto an 8 x 6 image (output_padding 1: 7 x 5 would map alike).
        let y = var(&[2, 4, 4, 3], 8).as_tensor().clone();
        let wt = var(&[4, 3, 3, 3], 9).as_tensor().clone();
        let grid = Grid([axis(8, 3, 2, (1, 1), 1), axis(6, 3, 2, (1, 1), 1)]);
        let ours = conv2d(&y, &wt, None, (grid, 1), true, false).unwrap();
        let theirs = y.conv_transpose2d(&wt, 1, 1, 2, 1).unwrap();
        assert_eq!(ours.dims(), theirs.dims());
        assert!(diff(&ours, &theirs) < 1e-12);
        // f32 runs the same kernels.
        let (y, wt) = (y.to_dtype(DType::F32).unwrap(), wt.to_dtype(DType::F32).unwrap());
        let ours32 = conv2d(&y, &wt, None, (grid, 1), true, false);
        assert!(diff(&ours32.unwrap().to_dtype(DType::F64).unwrap(), &theirs) < 1e-4);
    }
}
