//! Direct 2-D convolution on the CPU for small maps (see [`applies`]): forward, input gradient
//! and weight gradient without im2col's columns matrix, which at 8x8 with 32 channels is nine
//! times the image, filled and read in runs of 6-8 values that do not vectorize.
//!
//! Layout. The image is copied once into a zero-padded channels-last buffer `[N, hp, wp, C]`
//! (`hp x wp` is what the windows read, so padding needs no bounds tests), which the backward
//! keeps for the weight gradient. The weights are packed per tap as panels `[C, J]` of `J`
//! output channels (zeros past the last), so each product is a register tile: `R` pixels times
//! `J` channels of accumulators, fed by one broadcast of a pixel's channel and one row of the
//! panel (`tile`). The input gradient is the same tile on the output gradient (channels last)
//! with panels `[O, J]` of input channels, added into the padded buffer at each tap's pixels;
//! the weight gradient is the same tile again, `R` output channels (the gradient's planes as
//! they come) against a panel `[pixels, J]` of input channels gathered from the padded image
//! per tap, summed over the pixels of each image, one partial sum per thread.
//!
//! The tiles are plain Rust that LLVM vectorizes; [`dispatch`] runs them compiled for AVX-512
//! or AVX2 with FMA where the CPU has them (detected once), else as written.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Device, Result, Shape, Tensor, WithDType};

use super::cpu::{for_float, par_chunks, slice, threads, with_slice, Elem};
use super::im2col::Grid;
use super::weighted::{apply, Grads, Operand, WeightedOp};

/// Pixels in a register tile.
const R: usize = 8;
/// Channels in a register tile (one AVX-512 register of f32).
const J: usize = 16;

/// Whether the direct kernel serves a convolution on `grid` with `groups` from `c` to `o`
/// channels: ungrouped, 8 to 64 input channels, at most 64 output channels, at most 32x32
/// windows. Measured against im2col + gemm (forward and backward, batch 64, 3x3, BENCHMARKS.md):
/// 1.05-4.5x from 8x8 to 32x32 at 32-64 channels; with one input channel the tiles are an
/// eighth full (0.2x), and at 128 channels and more gemm's blocking wins (0.4-0.8x).
pub fn applies(grid: &Grid, groups: usize, c: usize, o: usize) -> bool {
    OPTIMIZED && groups == 1 && (R..=64).contains(&c) && o <= 64 && grid.positions() <= 1024
}

/// Whether wick itself is compiled with optimisations (`debug_assertions` off, as in a release
/// build or a bench). The kernel's loops are only fast once the compiler has turned them into
/// register tiles: unoptimised, a training step of the digits CNN took 10x as long with it as
/// with im2col and the gemm crate (which the dev profile optimises as a dependency). Its own
/// tests call it directly, whatever the build.
const OPTIMIZED: bool = !cfg!(debug_assertions);

/// `conv2d` of `x` `[N, C, H, W]` with `weight` `[O, C, kh, kw]` on `grid`, plus `bias` `[O]`:
/// `[N, O, oh, ow]`. In training (`train`) the padded image is kept for the backward.
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, grid: Grid, train: bool) -> Result<Tensor> {
    apply(x, weight, bias, ConvDirect { grid, kept: train.then(|| Mutex::new(None)) })
}

/// A multiply-add, fused where the code is compiled with FMA (`FUSED`).
pub trait MulAdd: Elem {
    fn mul_add_to<const FUSED: bool>(self, b: Self, acc: Self) -> Self;
}

macro_rules! mul_add_for {
    ($($t:ty),*) => {$(
        impl MulAdd for $t {
            #[inline(always)]
            fn mul_add_to<const FUSED: bool>(self, b: Self, acc: Self) -> Self {
                if FUSED {
                    self.mul_add(b, acc)
                } else {
                    self * b + acc
                }
            }
        }
    )*};
}

mul_add_for!(f32, f64);

/// The sizes of one convolution, in the padded channels-last layout.
#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    c: usize,
    o: usize,
    /// `c` rounded up to `R` (the padded image's pixel stride) and `o` to `J` (the panels).
    c_pad: usize,
    o_pad: usize,
    /// `c` rounded up to `J`: the input gradient's panels.
    c_panels: usize,
    h: usize,
    w: usize,
    hp: usize,
    wp: usize,
    oh: usize,
    ow: usize,
    grid: Grid,
}

impl Dims {
    fn new(x: &[usize], weight: &[usize], grid: Grid) -> Result<Self> {
        let ([n, c, h, w], [o, wc, kh, kw]) = (x, weight) else {
            candle_core::bail!("conv_direct takes rank-4 input and weight, found {x:?} and {weight:?}")
        };
        let [rows, cols] = grid.0;
        if [*h, *w] != [rows.input, cols.input] || [*kh, *kw] != [rows.kernel, cols.kernel] || wc != c {
            candle_core::bail!("conv_direct: input {x:?} and weight {weight:?} do not fit {grid:?}");
        }
        let extent =
            |a: &super::pool::Axis| (a.output.max(1) - 1) * a.stride + (a.kernel - 1) * a.dilation + 1;
        Ok(Dims {
            n: *n,
            c: *c,
            o: *o,
            c_pad: c.next_multiple_of(R),
            o_pad: o.next_multiple_of(J),
            c_panels: c.next_multiple_of(J),
            h: *h,
            w: *w,
            hp: extent(&rows),
            wp: extent(&cols),
            oh: rows.output,
            ow: cols.output,
            grid,
        })
    }

    fn positions(&self) -> usize {
        self.oh * self.ow
    }

    fn taps(&self) -> usize {
        self.grid.taps()
    }

    /// Tap `t`'s offset in padded pixels from its window's first tap.
    fn offset(&self, t: usize) -> usize {
        let [rows, cols] = self.grid.0;
        t / cols.kernel * rows.dilation * self.wp + t % cols.kernel * cols.dilation
    }

    /// For each image row the windows read, `(y, padded, len)`: image pixels `(y, 0..len)` are
    /// padded pixels `padded..padded + len`. Whole runs, so the copies into and out of the
    /// padded layout take no division per value (those were 5% of a digits step).
    fn row_spans(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let [rows, cols] = self.grid.0;
        let len = self.w.min(self.wp.saturating_sub(cols.padding));
        (0..self.h)
            .map(move |y| (y, (y + rows.padding) * self.wp + cols.padding))
            .take_while(move |&(y, _)| y + rows.padding < self.hp)
            .map(move |(y, padded)| (y, padded, len))
    }

    /// The padded pixel each window's first tap reads, for every window position.
    fn window_bases(&self) -> Vec<usize> {
        let [rows, cols] = self.grid.0;
        let row = |oy: usize| (0..self.ow).map(move |ox| oy * rows.stride * self.wp + ox * cols.stride);
        (0..self.oh).flat_map(row).collect()
    }
}

/// The bases of windows `p0..p0 + R` (the last repeated past the end) and how many are real.
#[inline(always)]
fn block(bases: &[usize], p0: usize) -> ([usize; R], usize) {
    let last = bases.len().saturating_sub(1);
    let mut out = [0; R];
    for (r, b) in out.iter_mut().enumerate() {
        *b = bases.get((p0 + r).min(last)).copied().unwrap_or(0);
    }
    (out, R.min(bases.len().saturating_sub(p0)))
}

/// The `len`-long channel vectors at padded pixels `bases + offset` of `image` (`stride` apart).
/// A loop, not `array::map`: the map's closure was left a call per tap (4% of a digits step).
#[inline(always)]
fn rows_at<'a, T>(
    image: &'a [T],
    bases: &[usize; R],
    offset: usize,
    stride: usize,
    len: usize,
) -> [&'a [T]; R] {
    let mut rows: [&[T]; R] = [&[]; R];
    for (row, base) in rows.iter_mut().zip(bases) {
        *row = &image[(base + offset) * stride..][..len];
    }
    rows
}

/// `acc + a * b`, `J` lanes.
#[inline(always)]
fn lanes<T: MulAdd, const FUSED: bool>(a: T, b: &[T; J], mut acc: [T; J]) -> [T; J] {
    for j in 0..J {
        acc[j] = a.mul_add_to::<FUSED>(b[j], acc[j]);
    }
    acc
}

/// `acc[r][j] + a[r] * b[j]`: one step of a register tile. The rows are written out, not a
/// loop over `r`: LLVM vectorizes a loop over the 8 rows with gathers and scatters (stride
/// `J`), where each row's `J` lanes are one vector.
#[inline(always)]
fn outer<T: MulAdd, const FUSED: bool>(a: [T; R], b: &[T; J], acc: [[T; J]; R]) -> [[T; J]; R] {
    let [c0, c1, c2, c3, c4, c5, c6, c7] = acc;
    [
        lanes::<T, FUSED>(a[0], b, c0),
        lanes::<T, FUSED>(a[1], b, c1),
        lanes::<T, FUSED>(a[2], b, c2),
        lanes::<T, FUSED>(a[3], b, c3),
        lanes::<T, FUSED>(a[4], b, c4),
        lanes::<T, FUSED>(a[5], b, c5),
        lanes::<T, FUSED>(a[6], b, c6),
        lanes::<T, FUSED>(a[7], b, c7),
    ]
}

/// `acc[r][j] + sum over k of rows[r][k] * panel[k][j]`: `R` pixels' channel vectors against
/// a panel of `J` columns. The accumulators are taken and returned by value so that they stay
/// in registers (a borrowed array is kept in memory, a gather and scatter a step).
#[inline(always)]
fn tile<T: MulAdd, const FUSED: bool>(rows: [&[T]; R], panel: &[T], mut acc: [[T; J]; R]) -> [[T; J]; R] {
    let len = panel.len() / J;
    // Each row cut to exactly `len` and `k` drawn from `0..len`, so that indexing by `k` needs
    // no bounds check (`array::map` here was left a call, and with it 8 checks a step).
    let [r0, r1, r2, r3, r4, r5, r6, r7] = rows;
    let [r0, r1, r2, r3, r4, r5, r6, r7] =
        [&r0[..len], &r1[..len], &r2[..len], &r3[..len], &r4[..len], &r5[..len], &r6[..len], &r7[..len]];
    for (k, line) in (0..len).zip(panel.chunks_exact(J)) {
        let Ok(line) = <&[T; J]>::try_from(line) else { continue };
        acc = outer::<T, FUSED>([r0[k], r1[k], r2[k], r3[k], r4[k], r5[k], r6[k], r7[k]], line, acc);
    }
    acc
}

/// What the forward's tasks read: the padded image, the packed weights `[tap, O / J, C, J]`
/// and the bias.
struct Forward<'a, T> {
    d: Dims,
    bases: &'a [usize],
    image: &'a [T],
    panels: &'a [T],
    bias: Option<&'a [T]>,
}

/// One image's output `[O, oh * ow]`.
#[inline(always)]
fn forward_image<T: MulAdd, const FUSED: bool>(f: &Forward<'_, T>, n: usize, out: &mut [T]) {
    let d = &f.d;
    let positions = d.positions();
    let image = &f.image[n * d.hp * d.wp * d.c_pad..][..d.hp * d.wp * d.c_pad];
    let zero = T::from_f64(0.0);
    for p0 in (0..positions).step_by(R) {
        let (bases, real) = block(f.bases, p0);
        for ob in 0..d.o_pad / J {
            let mut acc = [[zero; J]; R];
            for t in 0..d.taps() {
                let rows = rows_at(image, &bases, d.offset(t), d.c_pad, d.c);
                let panel = &f.panels[(t * d.o_pad / J + ob) * d.c * J..][..d.c * J];
                acc = tile::<T, FUSED>(rows, panel, acc);
            }
            for (j, o) in (ob * J..d.o.min(ob * J + J)).enumerate() {
                let b = f.bias.map_or(zero, |b| b[o]);
                for (r, y) in out[o * positions + p0..][..real].iter_mut().enumerate() {
                    *y = acc[r][j] + b;
                }
            }
        }
    }
}

/// What the input gradient's tasks read: the output gradient channels last `[N, oh * ow,
/// o_pad]` and the packed weights `[tap, c_panels / J, O, J]`.
struct InputGrad<'a, T> {
    d: Dims,
    bases: &'a [usize],
    grad: &'a [T],
    panels: &'a [T],
}

/// One image's padded input gradient `[hp * wp, c_panels]`, zeroed.
#[inline(always)]
fn input_grad_image<T: MulAdd, const FUSED: bool>(g: &InputGrad<'_, T>, n: usize, out: &mut [T]) {
    let d = &g.d;
    let grad = &g.grad[n * d.positions() * d.o_pad..][..d.positions() * d.o_pad];
    let zero = T::from_f64(0.0);
    for p0 in (0..d.positions()).step_by(R) {
        let (bases, real) = block(g.bases, p0);
        let mut windows = [0; R];
        for (r, p) in windows.iter_mut().enumerate() {
            *p = (p0 + r).min(d.positions() - 1);
        }
        let rows = rows_at(grad, &windows, 0, d.o_pad, d.o);
        for cb in 0..d.c_panels / J {
            for t in 0..d.taps() {
                let panel = &g.panels[(t * d.c_panels / J + cb) * d.o * J..][..d.o * J];
                let acc = tile::<T, FUSED>(rows, panel, [[zero; J]; R]);
                for (base, acc) in bases.iter().zip(&acc).take(real) {
                    let dst = &mut out[(base + d.offset(t)) * d.c_panels + cb * J..][..J];
                    dst.iter_mut().zip(acc).for_each(|(d, a)| *d += *a);
                }
            }
        }
    }
}

/// What the weight gradient's tasks read: the padded image, the output gradient as it comes
/// (`[N, O, positions]`), and which images each partial sum covers.
struct WeightGrad<'a, T> {
    d: Dims,
    bases: &'a [usize],
    image: &'a [T],
    grad: &'a [T],
    per_part: usize,
}

/// The weight gradient `[tap, o_rows / R, c_panels / J, R, J]` of images `part * per_part..`,
/// added into `out`: per tap and block of `J` input channels, the image's channel vectors at
/// the windows' pixels gathered into a panel `[positions, J]`, then one forward [`tile`] per
/// `R` output channels, whose rows are the gradient's planes as they come (`k` the pixel).
/// A loop of its own over the pixels kept its 8 accumulators in memory, stored every pixel
/// (`perf annotate`: half of what was a third of a digits step); the gather costs one vector
/// a pixel against the `O / R` tiles' `O` multiply-adds.
#[inline(always)]
fn weight_grad_part<T: MulAdd, const FUSED: bool>(g: &WeightGrad<'_, T>, part: usize, out: &mut [T]) {
    let d = &g.d;
    let (pixels, positions) = (d.hp * d.wp * d.c_pad, d.positions());
    let zero = T::from_f64(0.0);
    // Rows for output channels past the last one.
    let zeros = vec![zero; positions];
    let mut panel = vec![zero; positions * J];
    let (o_blocks, c_blocks) = (d.o.div_ceil(R), d.c_panels / J);
    for n in part * g.per_part..d.n.min((part + 1) * g.per_part) {
        let image = &g.image[n * pixels..][..pixels];
        let grad = &g.grad[n * d.o * positions..][..d.o * positions];
        for t in 0..d.taps() {
            for cb in 0..c_blocks {
                let width = J.min(d.c - cb * J);
                for (line, base) in panel.chunks_exact_mut(J).zip(g.bases) {
                    let (head, tail) = line.split_at_mut(width);
                    head.copy_from_slice(&image[(base + d.offset(t)) * d.c_pad + cb * J..][..width]);
                    tail.fill(zero);
                }
                for ob in 0..o_blocks {
                    let mut rows = [&zeros[..]; R];
                    for (r, row) in rows.iter_mut().enumerate().take(d.o - ob * R) {
                        *row = &grad[(ob * R + r) * positions..][..positions];
                    }
                    let acc = tile::<T, FUSED>(rows, &panel, [[zero; J]; R]);
                    add_tile(&mut out[((t * o_blocks + ob) * c_blocks + cb) * R * J..][..R * J], &acc);
                }
            }
        }
    }
}

/// `dst[r * J + j] += acc[r][j]`, the rows written out as in [`outer`]: as a loop over the
/// rows, LLVM vectorized the adds across them with gathers and scatters (half the weight
/// gradient's samples), where each row's `J` adds are one vector.
#[inline(always)]
fn add_tile<T: Elem>(dst: &mut [T], acc: &[[T; J]; R]) {
    fn add_row<T: Elem>(dst: &mut [T], row: &[T; J]) {
        dst.iter_mut().zip(row).for_each(|(d, a)| *d += *a);
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    add_row(dst, a0);
    add_row(&mut dst[J..], a1);
    add_row(&mut dst[2 * J..], a2);
    add_row(&mut dst[3 * J..], a3);
    add_row(&mut dst[4 * J..], a4);
    add_row(&mut dst[5 * J..], a5);
    add_row(&mut dst[6 * J..], a6);
    add_row(&mut dst[7 * J..], a7);
}

/// The instruction sets the tiles are compiled for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
    Plain,
}

fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Plain
    })
}

/// `$name(task, i, out)` running `$body` compiled for the CPU's instruction set.
macro_rules! dispatch {
    ($name:ident, $body:ident, $task:ident) => {
        fn $name<T: MulAdd>(task: &$task<'_, T>, i: usize, out: &mut [T]) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                fn avx512<T: MulAdd>(task: &$task<'_, T>, i: usize, out: &mut [T]) {
                    $body::<T, true>(task, i, out)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<T: MulAdd>(task: &$task<'_, T>, i: usize, out: &mut [T]) {
                    $body::<T, true>(task, i, out)
                }
                match isa() {
                    // SAFETY: `isa` found these features on this CPU.
                    Isa::Avx512 => return unsafe { avx512(task, i, out) },
                    // SAFETY: as above.
                    Isa::Avx2 => return unsafe { avx2(task, i, out) },
                    Isa::Plain => {}
                }
            }
            $body::<T, false>(task, i, out)
        }
    };
}

dispatch!(forward_task, forward_image, Forward);
dispatch!(input_grad_task, input_grad_image, InputGrad);
dispatch!(weight_grad_task, weight_grad_part, WeightGrad);

/// `x` `[N, C, H, W]` into the zero-padded channels-last `[N, hp, wp, c_pad]`.
fn pad_channels_last<T: Elem>(x: &[T], d: &Dims) -> Vec<T> {
    let mut out = vec![T::from_f64(0.0); d.n * d.hp * d.wp * d.c_pad];
    par_chunks(&mut out, d.hp * d.wp * d.c_pad, |n, image| {
        for c in 0..d.c {
            let plane = &x[(n * d.c + c) * d.h * d.w..][..d.h * d.w];
            for (y, at, len) in d.row_spans() {
                let dst = image[at * d.c_pad + c..].iter_mut().step_by(d.c_pad);
                dst.zip(&plane[y * d.w..][..len]).for_each(|(p, v)| *p = *v);
            }
        }
    });
    out
}

/// The output gradient `[N, O, positions]` channels last, `[N, positions, o_pad]`.
fn grad_channels_last<T: Elem>(grad: &[T], d: &Dims) -> Vec<T> {
    let positions = d.positions();
    let mut out = vec![T::from_f64(0.0); d.n * positions * d.o_pad];
    par_chunks(&mut out, positions * d.o_pad, |n, image| {
        for o in 0..d.o {
            for (p, v) in grad[(n * d.o + o) * positions..][..positions].iter().enumerate() {
                image[p * d.o_pad + o] = *v;
            }
        }
    });
    out
}

/// Weight `[O, C, kh, kw]` as panels `[tap, across / J, along, J]`, where `across` is the
/// panels' side (output channels for the forward, input channels for the input gradient).
fn panels<T: Elem>(w: &[T], d: &Dims, forward: bool) -> Vec<T> {
    let (along, across) = if forward { (d.c, d.o) } else { (d.o, d.c) };
    let blocks = across.div_ceil(J);
    let mut out = vec![T::from_f64(0.0); d.taps() * blocks * along * J];
    for o in 0..d.o {
        for c in 0..d.c {
            for t in 0..d.taps() {
                let (k, a) = if forward { (c, o) } else { (o, c) };
                out[((t * blocks + a / J) * along + k) * J + a % J] = w[(o * d.c + c) * d.taps() + t];
            }
        }
    }
    out
}

struct ConvDirect {
    grid: Grid,
    /// In training, the forward's padded image, which the backward takes (or recomputes).
    kept: Option<Mutex<Option<Tensor>>>,
}

impl ConvDirect {
    fn forward<T: MulAdd>(&self, x: &[T], w: &[T], b: Option<&[T]>, d: &Dims) -> Result<Vec<T>> {
        let image = pad_channels_last(x, d);
        let panels = panels(w, d, true);
        let mut out = vec![T::from_f64(0.0); d.n * d.o * d.positions()];
        let bases = d.window_bases();
        let task = Forward { d: *d, bases: &bases, image: &image, panels: &panels, bias: b };
        par_chunks(&mut out, d.o * d.positions(), |n, y| forward_task(&task, n, y));
        if let Some(kept) = &self.kept {
            let shape = (d.n, d.hp, d.wp, d.c_pad);
            *kept.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Tensor::from_vec(image, shape, &Device::Cpu)?);
        }
        Ok(out)
    }

    fn gradients<T: MulAdd>(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
        d: &Dims,
    ) -> Result<(Vec<T>, Vec<T>)> {
        let grad = grad.contiguous()?;
        let dx = match x.track_op() {
            true => {
                let grad = with_slice(&grad, |g: &[T]| grad_channels_last(g, d))?;
                with_slice(&w.contiguous()?, |w: &[T]| self.input_grad(&grad, w, d))?
            }
            false => Vec::new(),
        };
        let dw = match w.track_op() {
            true => {
                let kept =
                    self.kept.as_ref().and_then(|k| k.lock().unwrap_or_else(|e| e.into_inner()).take());
                let image = match kept {
                    Some(image) => image,
                    None => {
                        let image = with_slice(&x.contiguous()?, |x: &[T]| pad_channels_last(x, d))?;
                        Tensor::from_vec(image, (d.n, d.hp, d.wp, d.c_pad), &Device::Cpu)?
                    }
                };
                let image = image.contiguous()?;
                with_slice(&image, |image: &[T]| with_slice(&grad, |g: &[T]| weight_grad(image, g, d)))??
            }
            false => Vec::new(),
        };
        Ok((dx, dw))
    }

    fn input_grad<T: MulAdd>(&self, grad: &[T], w: &[T], d: &Dims) -> Vec<T> {
        let panels = panels(w, d, false);
        let padded_len = d.hp * d.wp * d.c_panels;
        let mut padded = vec![T::from_f64(0.0); d.n * padded_len];
        let bases = d.window_bases();
        let task = InputGrad { d: *d, bases: &bases, grad, panels: &panels };
        par_chunks(&mut padded, padded_len, |n, dx| input_grad_task(&task, n, dx));
        // Back to [N, C, H, W], dropping the padding.
        let mut dx = vec![T::from_f64(0.0); d.n * d.c * d.h * d.w];
        par_chunks(&mut dx, d.h * d.w, |plane, dst| {
            let (n, c) = (plane / d.c, plane % d.c);
            let image = &padded[n * padded_len + c..];
            for (y, at, len) in d.row_spans() {
                let src = image[at * d.c_panels..].iter().step_by(d.c_panels);
                dst[y * d.w..][..len].iter_mut().zip(src).for_each(|(v, p)| *v = *p);
            }
        });
        dx
    }
}

/// The weight gradient `[O, C, kh, kw]`: one partial sum per thread over its images, then
/// summed and unpacked from tiles.
fn weight_grad<T: MulAdd>(image: &[T], grad: &[T], d: &Dims) -> Vec<T> {
    let (o_blocks, c_blocks) = (d.o.div_ceil(R), d.c_panels / J);
    let tiles = d.taps() * o_blocks * R * c_blocks * J;
    let parts = threads().clamp(1, d.n);
    let bases = d.window_bases();
    let task = WeightGrad { d: *d, bases: &bases, image, grad, per_part: d.n.div_ceil(parts) };
    let partials: Vec<Mutex<Vec<T>>> =
        (0..parts).map(|_| Mutex::new(vec![T::from_f64(0.0); tiles])).collect();
    candle_core::cpu::kernels::par_for_each(parts, |part| {
        let mut sum = partials[part].lock().unwrap_or_else(|e| e.into_inner());
        weight_grad_task(&task, part, &mut sum);
    });
    let mut partials = partials.into_iter().map(|p| p.into_inner().unwrap_or_else(|e| e.into_inner()));
    let mut total = partials.next().unwrap_or_default();
    for part in partials {
        total.iter_mut().zip(&part).for_each(|(t, p)| *t += *p);
    }
    let mut dw = vec![T::from_f64(0.0); d.o * d.c * d.taps()];
    for o in 0..d.o {
        for c in 0..d.c {
            for t in 0..d.taps() {
                let tile = (t * o_blocks + o / R) * c_blocks + c / J;
                dw[(o * d.c + c) * d.taps() + t] = total[(tile * R + o % R) * J + c % J];
            }
        }
    }
    dw
}

impl WeightedOp for ConvDirect {
    fn name(&self) -> &'static str {
        "conv_direct"
    }

    fn cpu(&self, x: Operand<'_>, w: Operand<'_>, b: Option<Operand<'_>>) -> Result<(CpuStorage, Shape)> {
        let d = Dims::new(x.1.dims(), w.1.dims(), self.grid)?;
        if let Some((_, l)) = b.filter(|(_, l)| l.shape().elem_count() != d.o) {
            candle_core::bail!("conv_direct: bias {:?} for {} output channels", l.shape(), d.o);
        }
        let y = for_float!(x.0.dtype(), T => {
            let b = b.map(|(s, l)| slice::<T>(s, l)).transpose()?;
            T::to_cpu_storage_owned(self.forward(slice::<T>(x.0, x.1)?, slice::<T>(w.0, w.1)?, b, &d)?)
        });
        Ok((y, Shape::from((d.n, d.o, d.oh, d.ow))))
    }

    fn backward(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, grad: &Tensor) -> Result<Grads> {
        let d = Dims::new(x.dims(), w.dims(), self.grid)?;
        let (dx, dw) = for_float!(grad.dtype(), T => {
            let (dx, dw) = self.gradients::<T>(x, w, grad, &d)?;
            let dx = x.track_op().then(|| Tensor::from_vec(dx, x.shape(), x.device())).transpose()?;
            let dw = w.track_op().then(|| Tensor::from_vec(dw, w.shape(), w.device())).transpose()?;
            (dx, dw)
        });
        let db = match bias.filter(|b| b.track_op()) {
            Some(_) => Some(grad.reshape((d.n, d.o, d.positions()))?.sum(2)?.sum(0)?),
            None => None,
        };
        Ok((dx, dw, db))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Var};

    use super::*;
    use crate::lower::gradcheck::check_fn;
    use crate::lower::kernels::conv_mm::tests::{axis, var};

    /// Gradchecks the direct conv on `grid` (batch `n`, `c` -> `o` channels), with and without
    /// bias, in training (padded image kept for the backward) and not (recomputed).
    fn gradcheck(grid: Grid, n: usize, c: usize, o: usize) {
        let [rows, cols] = grid.0;
        let x = var(&[n, c, rows.input, cols.input], 1);
        let w = var(&[o, c, rows.kernel, cols.kernel], 3);
        let b = var(&[o], 4);
        let named = [("x", &x), ("w", &w), ("b", &b)].map(|(k, v)| (k.to_string(), v.clone()));
        for train in [true, false] {
            let report = check_fn(&named, || {
                let (xt, wt) = (x.as_tensor(), w.as_tensor());
                Ok(vec![
                    conv2d(xt, wt, Some(b.as_tensor()), grid, train)?,
                    conv2d(xt, wt, None, grid, train)?,
                ])
            });
            report.unwrap().assert_within(1e-6);
        }
    }

    #[test]
    fn gradcheck_padding_strides_and_odd_channels() {
        // 3x3, padding 1, stride 1 on a 7 x 5 map: 35 positions, 4 tiles of 8 and a tail of 3.
        gradcheck(Grid([axis(7, 3, 1, (1, 1), 1), axis(5, 3, 1, (1, 1), 1)]), 2, 3, 5);
        // Stride 2 with remainder 0 on the rows and 1 on the columns; batch 1; 9 input channels
        // (two tiles of R = 8) and 17 output channels (two panels of J = 16).
        gradcheck(Grid([axis(7, 3, 2, (1, 1), 1), axis(6, 3, 2, (1, 1), 1)]), 1, 9, 17);
        // 17 input channels: two gathered panels of J = 16 in the weight gradient, the second
        // one lane wide; 9 output channels, two tiles of R = 8 rows. A 1 x 3 kernel on 4 x 3
        // keeps the finite differences few.
        gradcheck(Grid([axis(4, 1, 1, (0, 0), 1), axis(3, 3, 1, (1, 1), 1)]), 2, 17, 9);
        // One input channel (the stem of a CNN on images; `applies` leaves it to im2col, but
        // the kernel must still be right), stride 2 on a 5 x 6 map.
        gradcheck(Grid([axis(5, 3, 2, (1, 1), 1), axis(6, 3, 2, (1, 1), 1)]), 3, 1, 4);
    }

    #[test]
    fn gradcheck_dilation_uneven_kernels_and_padding() {
        // Dilation 2 on the rows, stride 3 on the columns, a 3 x 2 kernel.
        gradcheck(Grid([axis(7, 3, 1, (2, 2), 2), axis(8, 2, 3, (0, 0), 1)]), 2, 2, 3);
        // "same" for an even kernel: one row before, two after; a 1-D conv as height 1.
        gradcheck(Grid([axis(5, 4, 1, (1, 2), 1), axis(3, 1, 1, (0, 0), 1)]), 2, 2, 3);
        gradcheck(Grid([axis(1, 1, 1, (0, 0), 1), axis(9, 3, 2, (1, 1), 1)]), 3, 4, 2);
    }

    #[test]
    fn equals_the_im2col_convolution_in_f32_on_the_benchmarks_shapes() {
        // The digits network's 32 -> 32 conv and its strided 32 -> 64 one, forward and both
        // gradients against conv_mm (gradchecked in f64 itself), in f32: the path training takes.
        for (stride, o) in [(1, 32), (2, 64)] {
            let out = (8 + 2 - 3) / stride + 1;
            let grid = Grid([axis(8, 3, stride, (1, 1), 1), axis(8, 3, stride, (1, 1), 1)]);
            let single = |v: Var| Var::from_tensor(&v.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
            let (x, w, b) =
                (single(var(&[3, 32, 8, 8], 1)), single(var(&[o, 32, 3, 3], 2)), single(var(&[o], 3)));
            let probe = var(&[3, o, out, out], 4).as_tensor().to_dtype(DType::F32).unwrap();
            let run = |direct: bool| {
                let (xt, wt, bt) = (x.as_tensor(), w.as_tensor(), Some(b.as_tensor()));
                let y = match direct {
                    true => conv2d(xt, wt, bt, grid, true).unwrap(),
                    false => super::super::conv_mm::conv2d(xt, wt, bt, (grid, 1), false, true).unwrap(),
                };
                let grads = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                let grad = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
                [y, grad(&x), grad(&w), grad(&b)]
            };
            for (ours, theirs) in run(true).iter().zip(&run(false)) {
                let scale = theirs.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                let diff =
                    (ours - theirs).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert_eq!(ours.dims(), theirs.dims());
                assert!(diff <= 1e-5 * (1.0 + scale), "off by {diff} at scale {scale}");
            }
        }
    }

    #[test]
    fn shapes_that_do_not_fit_the_grid_are_errors() {
        let grid = Grid([axis(5, 3, 1, (1, 1), 1), axis(5, 3, 1, (1, 1), 1)]);
        let x = var(&[1, 2, 5, 5], 1);
        assert!(conv2d(x.as_tensor(), var(&[3, 4, 3, 3], 2).as_tensor(), None, grid, false).is_err());
        assert!(conv2d(
            x.as_tensor(),
            var(&[3, 2, 3, 3], 2).as_tensor(),
            Some(var(&[2], 3).as_tensor()),
            grid,
            false
        )
        .is_err());
        assert!(conv2d(
            var(&[1, 2, 6, 5], 1).as_tensor(),
            var(&[3, 2, 3, 3], 2).as_tensor(),
            None,
            grid,
            false
        )
        .is_err());
    }
}
