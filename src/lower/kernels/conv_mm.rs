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
use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, Device, Layout, Result, Shape, Storage, Tensor, WithDType,
};

use super::im2col::{col2im, for_float, im2col, slice, swap_leading, Col2Im, Elem, Grid, Im2Col};

/// `conv2d` of `x` `[N, C, H, W]` with `weight` `[O, C / groups, kh, kw]` on `grid` (whose
/// image is `H x W`), plus `bias` `[O]`: `[N, O, oh, ow]`. In training (`train`) the forward
/// keeps its columns for the backward; in inference nothing more than the output is kept.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    grid: Grid,
    groups: usize,
    train: bool,
) -> Result<Tensor> {
    apply(x, weight, bias, ConvMm::new(grid, groups, false, train))
}

/// `conv_transpose2d` of `x` `[N, C_in, oh, ow]` with `weight` `[C_in, C_out / groups, kh, kw]`:
/// the adjoint of the convolution on `grid`, `[N, C_out, H, W]`, plus `bias` `[C_out]`.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    grid: Grid,
    groups: usize,
    train: bool,
) -> Result<Tensor> {
    apply(x, weight, bias, ConvMm::new(grid, groups, true, train))
}

fn apply(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, op: ConvMm) -> Result<Tensor> {
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match bias {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, op),
        None => x.apply_op2(&w, op),
    }
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
    fn new(grid: Grid, groups: usize, transposed: bool, train: bool) -> ConvMm {
        ConvMm { grid, groups, transposed, kept: train.then(|| Mutex::new(None)) }
    }

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
            let cols = w.t()?.matmul(&self.keep(&Tensor::from_vec(x, (g, windows / g, width), cpu)?))?;
            with_slice(&cols, |cols| col2im(cols, n, image, grid, b))
        } else {
            let cols = Tensor::from_vec(im2col(x, n, image, grid), (g, k, width), cpu)?;
            let y = w.matmul(&self.keep(&cols))?;
            with_slice(&y, |y| swap_leading(y, windows, n, grid.positions(), b))
        }
    }

    fn cpu(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let (xd, wd) = (x.1.dims(), w.1.dims());
        let y = for_float!(x.0.dtype(), T => {
            let b = b.map(|(s, l)| slice::<T>(s, l)).transpose()?;
            T::to_cpu_storage_owned(self.forward(slice::<T>(x.0, x.1)?, xd, slice::<T>(w.0, w.1)?, wd, b)?)
        });
        let Sizes { n, image, windows, .. } = self.sizes(xd, wd)?;
        let [rows, cols] = self.grid.0;
        let shape = match self.transposed {
            true => Shape::from((n, image, rows.input, cols.input)),
            false => Shape::from((n, windows, rows.output, cols.output)),
        };
        Ok((y, shape))
    }

    /// The gradients of `x`, `w` and (when `bias`) the bias, each only where it is tracked.
    fn backward(&self, x: &Tensor, w: &Tensor, bias: bool, grad: &Tensor) -> Result<Grads> {
        let Sizes { n, image, windows, k } = self.sizes(x.dims(), w.dims())?;
        let (g, positions) = (self.groups, self.grid.positions());
        let width = n * positions;
        let channels_first = |t: &Tensor| {
            t.reshape((n, windows, positions))?.transpose(0, 1)?.contiguous()?.reshape((
                g,
                windows / g,
                width,
            ))
        };
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
        let cols = || cols.as_ref().expect("columns computed when needed");
        let dw = match w.track_op() {
            true => Some(side.matmul(&cols().t()?)?.reshape(w.shape())?),
            false => None,
        };
        let dx = match (x.track_op(), self.transposed) {
            (false, _) => None,
            (true, true) => {
                let dx = w3.matmul(cols())?.reshape((windows, n, positions))?.transpose(0, 1)?;
                Some(dx.contiguous()?.reshape(x.shape())?)
            }
            (true, false) => {
                let dcols = w3.t()?.matmul(&side)?.reshape((g * k, width))?;
                Some(dcols.apply_op1_no_bwd(&Col2Im(self.grid))?.reshape(x.shape())?)
            }
        };
        let db = match (bias, self.transposed) {
            (false, _) => None,
            (true, true) => Some(grad.reshape((n, image, self.grid.pixels()))?.sum(2)?.sum(0)?),
            (true, false) => Some(side.reshape((windows, width))?.sum(1)?),
        };
        Ok((dx, dw, db))
    }
}

type Grads = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

/// `f` of a contiguous CPU tensor's elements.
fn with_slice<T: Elem, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(s) = &*storage else { candle_core::bail!("conv_mm runs on the CPU") };
    Ok(f(slice::<T>(s, layout)?))
}

impl CustomOp2 for ConvMm {
    fn name(&self) -> &'static str {
        "conv_mm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.cpu((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward(x, w, false, &grad.contiguous()?)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for ConvMm {
    fn name(&self) -> &'static str {
        "conv_mm_bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.cpu((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Grads> {
        let (dx, dw, db) = self.backward(x, w, b.track_op(), &grad.contiguous()?)?;
        Ok((dx, dw, db))
    }
}
