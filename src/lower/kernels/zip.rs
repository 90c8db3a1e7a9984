//! Element-wise arithmetic of two tensors of one shape in inference, on rayon's pool (the
//! threads candle's matrix products run on). candle runs its element-wise ops on a second pool
//! of its own, where the calling thread spins at a barrier until that pool's worker has
//! finished: with the matrix products' threads on the same cores, ResNet-50's 16 residual adds
//! spent a fifth of an inference pass in that spin (`perf record`, batch 1). Passes that record
//! a gradient keep candle's ops, whose backward they need.

use candle_core::{DType, Result, Tensor, WithDType};

use super::cpu::{for_float, on_cpu_float, par_chunks, with_slice, Elem};

/// Which arithmetic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Zip {
    Add,
    Sub,
    Mul,
    Div,
}

impl Zip {
    fn apply<T: Elem>(self, a: T, b: T) -> T {
        match self {
            Zip::Add => a + b,
            Zip::Sub => a - b,
            Zip::Mul => a * b,
            Zip::Div => a / b,
        }
    }
}

/// Elements each thread's piece of the output holds at least.
const PIECE: usize = 1 << 14;

/// `a op b` when this kernel takes them: on the CPU in f32 or f64, one shape and dtype, both
/// contiguous and neither tracked by autograd (an inference pass). `None` otherwise.
pub fn zip_untracked(a: &Tensor, b: &Tensor, op: Zip) -> Option<Result<Tensor>> {
    let fits = on_cpu_float(a)
        && a.dtype() == b.dtype()
        && a.dims() == b.dims()
        && a.device().same_device(b.device())
        && !a.track_op()
        && !b.track_op()
        && a.is_contiguous()
        && b.is_contiguous();
    fits.then(|| zip(a, b, op))
}

/// `f` of each element of `x` (`f32` and `f64` versions), under the same terms as
/// [`zip_untracked`]: an inference pass's activation in one pass on rayon's pool.
pub fn map_untracked(
    x: &Tensor,
    f32_fn: impl Fn(f32) -> f32 + Sync,
    f64_fn: impl Fn(f64) -> f64 + Sync,
) -> Option<Result<Tensor>> {
    if !(on_cpu_float(x) && !x.track_op() && x.is_contiguous()) {
        return None;
    }
    let y = match x.dtype() {
        DType::F32 => with_slice(x, |v: &[f32]| map(v, &f32_fn))
            .and_then(|y| Tensor::from_vec(y, x.shape(), x.device())),
        _ => with_slice(x, |v: &[f64]| map(v, &f64_fn))
            .and_then(|y| Tensor::from_vec(y, x.shape(), x.device())),
    };
    Some(y)
}

fn map<T: Elem>(x: &[T], f: &(impl Fn(T) -> T + Sync)) -> Vec<T> {
    let mut y = vec![<T as WithDType>::from_f64(0.0); x.len()];
    par_chunks(&mut y, PIECE, |i, out| {
        for (y, x) in out.iter_mut().zip(&x[i * PIECE..]) {
            *y = f(*x);
        }
    });
    y
}

fn zip(a: &Tensor, b: &Tensor, op: Zip) -> Result<Tensor> {
    for_float!(a.dtype(), T => {
        let y = with_slice(a, |a: &[T]| {
            with_slice(b, |b: &[T]| {
                let mut y = vec![<T as WithDType>::from_f64(0.0); a.len()];
                par_chunks(&mut y, PIECE, |i, out| {
                    let at = i * PIECE;
                    for ((y, a), b) in out.iter_mut().zip(&a[at..]).zip(&b[at..]) {
                        *y = op.apply(*a, *b);
                    }
                });
                y
            })
        })??;
        Tensor::from_vec(y, a.shape(), a.device())
    })
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;

    #[test]
    fn equals_candles_ops_and_leaves_tracked_operands_to_them() {
        let n = 3 * PIECE + 17;
        let a = Tensor::randn(0f32, 1.0, (n,), &Device::Cpu).unwrap();
        let b = (Tensor::randn(0f32, 1.0, (n,), &Device::Cpu).unwrap().abs().unwrap() + 0.5).unwrap();
        for (op, want) in
            [(Zip::Add, a.add(&b)), (Zip::Sub, a.sub(&b)), (Zip::Mul, a.mul(&b)), (Zip::Div, a.div(&b))]
        {
            let got = zip_untracked(&a, &b, op).unwrap().unwrap();
            let gap = (got - want.unwrap()).unwrap().abs().unwrap().max(0).unwrap();
            assert_eq!(gap.to_scalar::<f32>().unwrap(), 0.0, "{op:?}");
        }
        let tracked = Var::from_tensor(&a).unwrap();
        assert!(zip_untracked(tracked.as_tensor(), &b, Zip::Add).is_none());
        assert!(zip_untracked(&a, &b.to_dtype(DType::F64).unwrap(), Zip::Add).is_none());
        assert!(zip_untracked(&a.reshape((1, n)).unwrap(), &b, Zip::Add).is_none());
    }
}
