//! Numeric kernels shared by op lowerings, written on candle-core primitives whose backward
//! is right (index_select, gather, matmul, where_cond, elementwise math), instead of the
//! candle ops whose gradient is missing or wrong in 0.11.

pub mod activation;
pub mod attention;
pub mod batch_norm;
pub mod bias;
pub mod conv;
pub mod conv_composed;
pub mod conv_direct;
pub mod conv_mm;
pub mod cpu;
pub mod fused_attention;
pub mod gate;
pub mod gemm;
pub mod im2col;
pub mod layer_norm;
pub mod linear;
pub mod max_pool;
pub mod norm;
pub mod pad;
pub mod pool;
pub mod resize;
pub mod rnn;
pub mod softmax;
pub mod weighted;
pub mod zip;

use candle_core::{Result, Tensor};

/// A per-channel vector `v` shaped to broadcast against a rank-`rank` `[N, C, ...]`: `[1, C, 1, ...]`.
pub fn per_channel(v: &Tensor, rank: usize) -> Result<Tensor> {
    let mut shape = vec![1; rank.max(2)];
    shape[1] = v.elem_count();
    v.reshape(shape)
}
