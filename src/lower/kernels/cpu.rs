//! What the CPU custom ops share: the float types they run on, their operands as slices, and
//! the test that says whether a tensor can take the custom path (elsewhere, on CUDA or in
//! half precision, the lowering keeps to candle's primitives).

use std::sync::{Mutex, OnceLock};

use candle_core::{CpuStorage, DType, Layout, Result, Storage, Tensor, WithDType};

/// The float types the CPU kernels run on, with the math they use past `+ - * /`.
pub trait Elem: WithDType {
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
    fn is_nan(self) -> bool;
}

impl Elem for f32 {
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Elem for f64 {
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

thread_local! {
    /// Set while a pass whose gradients will be differentiated again runs (see [`composed_if`]).
    static COMPOSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with the custom kernels stood down when `composed`: their hand-written backward
/// passes give first-order gradients only, so a pass whose gradients are differentiated again
/// (a gradient penalty) takes the compositions on candle's primitives instead. The executor
/// scopes each layer of such a pass; the kernels, called deep inside a layer, read the scope.
pub fn composed_if<R>(composed: bool, f: impl FnOnce() -> R) -> R {
    let outer = COMPOSED.with(|c| c.replace(composed));
    let result = f();
    COMPOSED.with(|c| c.set(outer));
    result
}

/// Whether the custom kernels take `t`: on the CPU, in f32 or f64, outside a pass that asked
/// for differentiable gradients.
pub fn on_cpu_float(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64) && !composing()
}

/// Whether the current layer runs in a pass that asked for differentiable gradients (see
/// [`composed_if`]).
pub fn composing() -> bool {
    COMPOSED.with(|c| c.get())
}

/// The elements of a contiguous operand.
pub fn slice<'a, T: Elem>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<T>()?[start..end]),
        None => candle_core::bail!("the CPU kernels need contiguous tensors"),
    }
}

/// `f` of a contiguous CPU tensor's elements.
pub fn with_slice<T: Elem, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(s) = &*storage else {
        candle_core::bail!("a CPU kernel was given a tensor on {:?}", t.device())
    };
    Ok(f(slice::<T>(s, layout)?))
}

/// Runs `$body` with `$t` the Rust type of `$dtype` (f32 or f64).
macro_rules! for_float {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $t = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $t = f64;
                $body
            }
            d => candle_core::bail!("the CPU kernels run on f32 and f64, found {d:?}"),
        }
    };
}
pub(crate) use for_float;

/// A kernel of an input, a per-channel weight and a bias (batch norm, layer norm) whose
/// backward runs on slices; `rows` is the input's first dim.
pub trait AffineBackward {
    /// `(dx, dw, db)` for the gradient `g` of the output.
    fn backward<T: Elem>(&self, x: &[T], w: &[T], g: &[T], rows: usize) -> (Vec<T>, Vec<T>, Vec<T>);
}

/// `CustomOp3::bwd` of an [`AffineBackward`] kernel: each gradient where autograd tracks its
/// operand.
pub fn affine_bwd(
    op: &impl AffineBackward,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    grad: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let grad = grad.contiguous()?;
    let rows = x.dim(0)?;
    let (dx, dw, db) = for_float!(x.dtype(), T => {
        let (dx, dw, db) = with_slice(x, |x: &[T]| {
            with_slice(w, |w: &[T]| with_slice(&grad, |g: &[T]| op.backward(x, w, g, rows)))
        })???;
        (
            Tensor::from_vec(dx, x.shape(), x.device())?,
            Tensor::from_vec(dw, w.shape(), w.device())?,
            Tensor::from_vec(db, b.shape(), b.device())?,
        )
    });
    Ok((x.track_op().then_some(dx), w.track_op().then_some(dw), b.track_op().then_some(db)))
}

/// Below this many elements a loop is not worth a thread.
const PARALLEL_MIN: usize = 1 << 15;

/// Runs `f(index, chunk)` on every `chunk`-long piece of `out`, a block of pieces per thread
/// of rayon's pool (the one candle's matrix products run on, so the threads are warm).
pub fn par_chunks<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if chunk == 0 || out.is_empty() {
        return;
    }
    let count = out.len().div_ceil(chunk);
    let threads = if out.len() < PARALLEL_MIN { 1 } else { threads().min(count) };
    let per = count.div_ceil(threads);
    // Each block is locked by its one thread only: the locks just hand out the `&mut`s.
    let blocks: Vec<Mutex<&mut [T]>> = out.chunks_mut(per * chunk).map(Mutex::new).collect();
    candle_core::cpu::kernels::par_for_each(blocks.len(), |t| {
        let mut block = blocks[t].lock().unwrap_or_else(|e| e.into_inner());
        block.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(t * per + i, c));
    });
}

/// The threads the CPU kernels use: candle's count, read once. candle's `get_num_threads`
/// reads /proc/cpuinfo on every call unless `RAYON_NUM_THREADS` is set (see
/// [`fix_thread_count`]).
pub fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(candle_core::utils::get_num_threads)
}

/// Sets `RAYON_NUM_THREADS` to candle's own default when it is unset, so that candle's matrix
/// products stop reading /proc/cpuinfo for their thread count on every call (about 10% of a
/// small MLP's training step). The count is unchanged. Call it first thing in `main`, while
/// the process has one thread: it writes the environment.
pub fn fix_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", threads().to_string());
    }
}
