//! Max pooling on the CPU as one op with its own backward, over a prepared window index (see
//! `pool::window_index`). Written on candle's primitives it gathers every window into a
//! `k`-times larger tensor, and its backward is an `index_add` into zeros: 18% of the small
//! CNN's training step went to that `index_add` alone.
//!
//! Each output takes the first maximum of its window, as PyTorch does; the backward sends
//! the output's gradient to that one input cell, found again from the input.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};

use super::cpu::{for_float, par_chunks, slice, with_slice, Elem};

/// Max pooling of `x` `[..., H, W]` to `[..., out_h, out_w]`: `index` holds, per output cell
/// and kernel tap, the flattened input cell it reads, or `H * W` where it reads padding.
pub fn max_pool_windows(x: &Tensor, index: Arc<[u32]>, out_hw: (usize, usize)) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool { index, out_hw })
}

struct MaxPool {
    index: Arc<[u32]>,
    out_hw: (usize, usize),
}

impl MaxPool {
    fn sizes(&self, dims: &[usize]) -> Result<(usize, usize, usize)> {
        let [.., h, w] = dims else { candle_core::bail!("max_pool takes [..., H, W], found {dims:?}") };
        let outputs = self.out_hw.0 * self.out_hw.1;
        if outputs == 0 || !self.index.len().is_multiple_of(outputs) {
            candle_core::bail!("max_pool: a window index of {} for {outputs} outputs", self.index.len());
        }
        Ok((h * w, outputs, self.index.len() / outputs))
    }

    /// The input cell holding each output's first maximum in `plane`.
    fn argmax<'a, T: Elem>(&'a self, plane: &'a [T], taps: usize) -> impl Iterator<Item = usize> + 'a {
        self.index.chunks_exact(taps).map(move |window| {
            let mut best = None::<usize>;
            for &cell in window {
                let cell = cell as usize;
                if cell < plane.len() && best.is_none_or(|b| plane[cell] > plane[b]) {
                    best = Some(cell);
                }
            }
            best.unwrap_or(usize::MAX)
        })
    }

    fn forward<T: Elem>(&self, x: &[T], cells: usize, outputs: usize, taps: usize) -> Vec<T> {
        let mut y = vec![T::from_f64(f64::NEG_INFINITY); x.len() / cells * outputs];
        par_chunks(&mut y, outputs, |p, out| {
            let plane = &x[p * cells..(p + 1) * cells];
            for (o, cell) in out.iter_mut().zip(self.argmax(plane, taps)) {
                if let Some(v) = plane.get(cell) {
                    *o = *v;
                }
            }
        });
        y
    }

    fn backward<T: Elem>(&self, x: &[T], g: &[T], cells: usize, outputs: usize, taps: usize) -> Vec<T> {
        let mut dx = vec![T::from_f64(0.0); x.len()];
        par_chunks(&mut dx, cells, |p, d| {
            let plane = &x[p * cells..(p + 1) * cells];
            for (g, cell) in g[p * outputs..(p + 1) * outputs].iter().zip(self.argmax(plane, taps)) {
                if let Some(d) = d.get_mut(cell) {
                    *d += *g;
                }
            }
        });
        dx
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max_pool"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (cells, outputs, taps) = self.sizes(l.dims())?;
        let y = for_float!(s.dtype(), T => T::to_cpu_storage_owned(self.forward(slice::<T>(s, l)?, cells, outputs, taps)));
        let mut shape = l.dims()[..l.dims().len() - 2].to_vec();
        shape.extend([self.out_hw.0, self.out_hw.1]);
        Ok((y, Shape::from(shape)))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (cells, outputs, taps) = self.sizes(x.dims())?;
        let grad = grad.contiguous()?;
        let dx = for_float!(x.dtype(), T => {
            let dx = with_slice(x, |x: &[T]| {
                with_slice(&grad, |g: &[T]| self.backward(x, g, cells, outputs, taps))
            })??;
            Tensor::from_vec(dx, x.shape(), x.device())?
        });
        Ok(Some(dx))
    }
}
