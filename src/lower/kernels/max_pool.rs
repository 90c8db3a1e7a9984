//! Max pooling on the CPU as one op with its own backward, over a prepared window index (see
//! `pool::window_index`). Written on candle's primitives it gathers every window into a
//! `k`-times larger tensor, and its backward is an `index_add` into zeros: 18% of the small
//! CNN's training step went to that `index_add` alone.
//!
//! Each output takes the first maximum of its window, as PyTorch does (or a NaN, which PyTorch
//! lets through too); the backward sends the output's gradient to that one input cell, which
//! the forward keeps.

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};

use super::cpu::{for_float, par_chunks, slice, with_slice, Elem};

/// Max pooling of `x` `[..., H, W]` to `[..., out_h, out_w]`: `index` holds, per output cell
/// and kernel tap, the flattened input cell it reads, or `H * W` where it reads padding.
pub fn max_pool_windows(x: &Tensor, index: Arc<[u32]>, out_hw: (usize, usize)) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool { index, out_hw, kept: Mutex::new(None) })
}

struct MaxPool {
    index: Arc<[u32]>,
    out_hw: (usize, usize),
    /// The forward's argmax, taken by the backward (recomputed if absent).
    kept: Mutex<Option<Vec<u32>>>,
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

    /// Each output's value and the input cell it came from: the window's first maximum, or
    /// its first NaN (PyTorch lets NaN through, so a diverging run shows it).
    fn forward<T: Elem>(&self, x: &[T], cells: usize, outputs: usize, taps: usize) -> (Vec<T>, Vec<u32>) {
        let planes = x.len() / cells;
        let mut y = vec![T::from_f64(f64::NEG_INFINITY); planes * outputs];
        let mut argmax = vec![u32::MAX; planes * outputs];
        par_chunks(&mut argmax, outputs, |p, arg| {
            let plane = &x[p * cells..(p + 1) * cells];
            for (window, arg) in self.index.chunks_exact(taps).zip(arg.iter_mut()) {
                // The first cell inside the plane starts the search (padding reads nothing).
                let mut cells = window.iter().copied().filter(|&cell| (cell as usize) < plane.len());
                let Some(mut at) = cells.next() else { continue };
                for cell in cells {
                    // Only the cell is selected, and the best value read again through it: a
                    // select of the value LLVM turns into a branch, which goes either way at
                    // random on real data (18-24% of the small CNN's training step, most of
                    // it mispredictions). Each window's reads are its own chain, so windows
                    // overlap.
                    let (v, best) = (plane[cell as usize], plane[at as usize]);
                    let take = !best.is_nan() & ((v > best) | v.is_nan());
                    at = if take { cell } else { at };
                }
                *arg = at;
            }
        });
        for (p, (arg, out)) in argmax.chunks_exact(outputs).zip(y.chunks_exact_mut(outputs)).enumerate() {
            let plane = &x[p * cells..(p + 1) * cells];
            for (a, o) in arg.iter().zip(out) {
                if let Some(v) = plane.get(*a as usize) {
                    *o = *v;
                }
            }
        }
        (y, argmax)
    }

    /// The output's gradient sent to the cell each output came from.
    fn backward<T: Elem>(argmax: &[u32], g: &[T], planes: usize, cells: usize) -> Vec<T> {
        let mut dx = vec![T::from_f64(0.0); planes * cells];
        let outputs = argmax.len() / planes.max(1);
        for (p, d) in dx.chunks_exact_mut(cells).enumerate() {
            for (a, g) in argmax[p * outputs..(p + 1) * outputs].iter().zip(&g[p * outputs..]) {
                if let Some(d) = d.get_mut(*a as usize) {
                    *d += *g;
                }
            }
        }
        dx
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max_pool"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (cells, outputs, taps) = self.sizes(l.dims())?;
        let y = for_float!(s.dtype(), T => {
            let (y, argmax) = self.forward(slice::<T>(s, l)?, cells, outputs, taps);
            *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(argmax);
            T::to_cpu_storage_owned(y)
        });
        let mut shape = l.dims()[..l.dims().len() - 2].to_vec();
        shape.extend([self.out_hw.0, self.out_hw.1]);
        Ok((y, Shape::from(shape)))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (cells, outputs, taps) = self.sizes(x.dims())?;
        let grad = grad.contiguous()?;
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).take();
        let dx = for_float!(x.dtype(), T => {
            let argmax = match kept {
                Some(a) => a,
                None => with_slice(x, |x: &[T]| self.forward(x, cells, outputs, taps).1)?,
            };
            let dx = with_slice(&grad, |g: &[T]| Self::backward(&argmax, g, x.elem_count() / cells, cells))?;
            Tensor::from_vec(dx, x.shape(), x.device())?
        });
        Ok(Some(dx))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn nan_wins_its_window_and_takes_the_gradient() {
        // One 2 x 2 plane, one window over all of it.
        let x = Var::new(&[[[[1.0f64, f64::NAN], [3.0, 2.0]]]], &Device::Cpu).unwrap();
        let y = max_pool_windows(x.as_tensor(), Arc::from([0u32, 1, 2, 3]), (1, 1)).unwrap();
        assert!(y.flatten_all().unwrap().to_vec1::<f64>().unwrap()[0].is_nan());
        let g = y.sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap().flatten_all().unwrap();
        assert_eq!(g.to_vec1::<f64>().unwrap(), vec![0.0, 1.0, 0.0, 0.0]);
    }
}
