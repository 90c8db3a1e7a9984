//! Randomness in a forward pass (dropout masks, `randn_like` noise), fixed by the model's
//! seed, the layer's path and the number of forward passes so far. The same seed gives the
//! same masks; a checkpoint that records the pass count lets a resumed run draw exactly what
//! an uninterrupted one would have.
//!
//! The executor opens a stream for each step it runs ([`scoped`]); the kernels draw from
//! whatever stream is open on their thread, so they need no handle passed down to them.

use std::cell::RefCell;

use candle_core::{DType, Device, Result, Tensor};

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
    let keep = move |rng: &mut SplitMix64| if rng.unit() >= p { scale } else { 0.0 };
    match dtype {
        DType::F64 => Tensor::from_vec(values(n, keep), dims, device),
        _ => Tensor::from_vec(values(n, |rng| keep(rng) as f32), dims, device)?.to_dtype(dtype),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(seed: u64, path: &str, pass: u64) -> Vec<f64> {
        scoped(seed, path, pass, || uniform(&[4], DType::F64, &Device::Cpu).unwrap().to_vec1().unwrap())
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
