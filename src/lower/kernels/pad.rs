//! Padding of one axis in PyTorch's four modes; every mode but zeros is one `index_select`,
//! whose backward (`index_add`) sums the gradient of repeated elements correctly.

use candle_core::{Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    Zeros,
    Reflect,
    Replicate,
    Circular,
}

impl PadMode {
    pub fn parse(name: &str) -> Option<PadMode> {
        match name {
            "zeros" => Some(PadMode::Zeros),
            "reflect" => Some(PadMode::Reflect),
            "replicate" => Some(PadMode::Replicate),
            "circular" => Some(PadMode::Circular),
            _ => None,
        }
    }
}

/// Pads `axis` of `x` with `left` and `right` elements.
pub fn pad(x: &Tensor, axis: usize, left: usize, right: usize, mode: PadMode) -> Result<Tensor> {
    if left == 0 && right == 0 {
        return Ok(x.clone());
    }
    if mode == PadMode::Zeros {
        return x.pad_with_zeros(axis, left, right);
    }
    let len = x.dim(axis)?;
    let index = source_index(len, left, right, mode)?;
    let index = Tensor::from_vec(index, left + len + right, x.device())?;
    x.index_select(&index, axis)
}

/// For each padded position, the input position it copies.
fn source_index(len: usize, left: usize, right: usize, mode: PadMode) -> Result<Vec<u32>> {
    let n = len as i64;
    if mode == PadMode::Reflect && (left as i64 >= n || right as i64 >= n) {
        candle_core::bail!("reflect padding {left}/{right} must be smaller than the axis size {len}");
    }
    if mode == PadMode::Circular && (left > len || right > len) {
        candle_core::bail!("circular padding {left}/{right} must be at most the axis size {len}");
    }
    let map = |i: i64| -> i64 {
        match mode {
            PadMode::Replicate | PadMode::Zeros => i.clamp(0, n - 1),
            PadMode::Reflect if i < 0 => -i,
            PadMode::Reflect if i >= n => 2 * (n - 1) - i,
            PadMode::Reflect => i,
            PadMode::Circular => i.rem_euclid(n),
        }
    };
    Ok((-(left as i64)..n + right as i64).map(|i| map(i) as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_copy_the_right_elements() {
        assert_eq!(source_index(4, 2, 2, PadMode::Reflect).unwrap(), vec![2, 1, 0, 1, 2, 3, 2, 1]);
        assert_eq!(source_index(4, 2, 1, PadMode::Replicate).unwrap(), vec![0, 0, 0, 1, 2, 3, 3]);
        assert_eq!(source_index(3, 1, 2, PadMode::Circular).unwrap(), vec![2, 0, 1, 2, 0, 1]);
        assert!(source_index(2, 2, 0, PadMode::Reflect).is_err());
    }
}
