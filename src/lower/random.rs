//! Randomness in a forward pass (dropout masks, `randn_like` noise), fixed by the model's
//! seed, the layer's path and the number of forward passes so far. The same seed gives the
//! same masks; a checkpoint that records the pass count lets a resumed run draw exactly what
//! an uninterrupted one would have.
//!
//! The executor opens a stream for each step it runs ([`scoped`]); the kernels draw from
//! whatever stream is open on their thread, so they need no handle passed down to them.

use std::cell::RefCell;

use candle_core::{DType, Device, Result, Tensor};

use super::kernels::cpu::par_chunks;
use super::params::{fnv1a, SplitMix64};

thread_local! {
    static STREAM: RefCell<Option<SplitMix64>> = const { RefCell::new(None) };
}

/// Run `f` with the stream of layer `path` in pass `pass` of a model seeded `seed`.
pub(crate) fn scoped<R>(seed: u64, path: &str, pass: u64, f: impl FnOnce() -> R) -> R {
    let start = seed ^ fnv1a(path).rotate_left(17) ^ pass.wrapping_mul(0xd1b5_4a32_d192_ed03);
    let outer = STREAM.with(|s| s.replace(Some(SplitMix64::new(start))));
    let result = f();
    STREAM.with(|s| *s.borrow_mut() = outer);
    result
}

/// `n` draws of `draw` from the open stream (a fixed default stream outside any pass, so
/// kernels called directly, as in tests, are reproducible too).
fn values<T>(n: usize, mut draw: impl FnMut(&mut SplitMix64) -> T) -> Vec<T> {
    STREAM.with(|s| {
        let mut s = s.borrow_mut();
        let rng = s.get_or_insert_with(|| SplitMix64::new(0));
        (0..n).map(|_| draw(rng)).collect()
    })
}

/// Uniform on [0, 1), of `dims`.
pub fn uniform(dims: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    let n = dims.iter().product();
    Tensor::from_vec(values(n, SplitMix64::unit), dims, device)?.to_dtype(dtype)
}

/// Standard normal, of `dims`.
pub fn normal(dims: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    let n = dims.iter().product();
    Tensor::from_vec(values(n, SplitMix64::normal), dims, device)?.to_dtype(dtype)
}

/// Dropout's multiplier of `dims`: `1 / (1 - p)` where a unit is kept (a uniform draw at or
/// above `p`), 0 where it is dropped. Drawn straight into the dtype, without a uniform tensor.
pub fn keep_mask(dims: &[usize], p: f64, dtype: DType, device: &Device) -> Result<Tensor> {
    let n = dims.iter().product();
    let scale = 1.0 / (1.0 - p);
    // `unit() >= p` on the draw's top 53 bits as an integer: `unit` is those bits over 2^53,
    // exactly, so the test is the same; the float conversion is gone.
    let threshold = if p.is_nan() { u64::MAX } else { (p * (1u64 << 53) as f64).ceil() as u64 };
    let kept = move |bits: u64| bits >> 11 >= threshold;
    match dtype {
        DType::F64 => Tensor::from_vec(draws(n, |b| if kept(b) { scale } else { 0.0 }), dims, device),
        _ => {
            let scale = scale as f32;
            Tensor::from_vec(draws(n, |b| if kept(b) { scale } else { 0.0 }), dims, device)?.to_dtype(dtype)
        }
    }
}

/// `f` of each of the next `n` raw draws of the open stream, computed on all threads (a
/// dropout mask was 5% of the encoder's training step on one thread): the values and the
/// stream's state afterwards are those of `n` draws in turn.
fn draws<T: Copy + Default + Send>(n: usize, f: impl Fn(u64) -> T + Sync) -> Vec<T> {
    const CHUNK: usize = 4096;
    STREAM.with(|s| {
        let mut s = s.borrow_mut();
        let rng = s.get_or_insert_with(|| SplitMix64::new(0));
        let start = *rng;
        let mut out = vec![T::default(); n];
        par_chunks(&mut out, CHUNK, |c, chunk| {
            let first = (c * CHUNK) as u64;
            chunk.iter_mut().zip(first..).for_each(|(v, k)| *v = f(start.ahead(k)));
        });
        rng.skip(n as u64);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(seed: u64, path: &str, pass: u64) -> Vec<f64> {
        scoped(seed, path, pass, || uniform(&[4], DType::F64, &Device::Cpu).unwrap().to_vec1().unwrap())
    }

    #[test]
    fn keep_mask_is_the_sequential_stream_drawn_in_parallel() {
        // Past the size at which the draws split across threads, in both dtypes; the stream
        // goes on from where n draws in turn leave it.
        let (n, p) = (70_007, 0.3);
        for dtype in [DType::F64, DType::F32] {
            let (mask, next) = scoped(5, "drop", 2, || {
                let m = keep_mask(&[7, n / 7], p, dtype, &Device::Cpu).unwrap();
                (m.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap(), draw_one())
            });
            let (want, want_next) = scoped(5, "drop", 2, || {
                let scale = 1.0 / (1.0 - p);
                let want = values(n, |rng| if rng.unit() >= p { scale } else { 0.0 });
                let want: Vec<f64> = match dtype {
                    DType::F32 => want.iter().map(|v| *v as f32 as f64).collect(),
                    _ => want,
                };
                (want, draw_one())
            });
            assert_eq!(mask, want);
            assert_eq!(next, want_next);
            let dropped = mask.iter().filter(|v| **v == 0.0).count() as f64 / n as f64;
            assert!((dropped - p).abs() < 0.01, "{dropped}");
        }
    }

    fn draw_one() -> f64 {
        uniform(&[1], DType::F64, &Device::Cpu).unwrap().to_vec1::<f64>().unwrap()[0]
    }

    #[test]
    fn a_stream_depends_on_seed_path_and_pass_only() {
        assert_eq!(draw(1, "drop", 3), draw(1, "drop", 3));
        assert_ne!(draw(1, "drop", 3), draw(1, "drop", 4));
        assert_ne!(draw(1, "drop", 3), draw(1, "drop2", 3));
        assert_ne!(draw(1, "drop", 3), draw(2, "drop", 3));
        // Draws within one step continue the stream rather than repeat it.
        let (a, b) = scoped(1, "drop", 3, || {
            let d = || uniform(&[4], DType::F64, &Device::Cpu).unwrap().to_vec1::<f64>().unwrap();
            (d(), d())
        });
        assert_eq!(a, draw(1, "drop", 3));
        assert_ne!(a, b);
    }
}
