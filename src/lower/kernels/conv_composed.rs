//! Convolutions whose gradients are themselves differentiable, for a pass whose gradients are
//! differentiated again (a gradient penalty): candle matrix products around the [`Im2Col`] and
//! [`Col2Im`] ops, each the other's backward, so every order of gradient is right. `conv_mm`,
//! whose backward is hand-written (and first-order only), serves every other pass: its backward
//! reuses the forward's columns and records no graph of itself.
//!
//! The products are the forward row of `conv_mm`'s table: `w_g @ cols(x)_g` for a conv and
//! `col2im(w_g^T @ x_g)` for a transposed conv, with `x` channels first.

use candle_core::{Result, Tensor};

use super::im2col::{Col2Im, Grid, Im2Col};

/// As `conv_mm::conv2d` (same operands, grid and result), on differentiable ops.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    (grid, groups): (Grid, usize),
    transposed: bool,
) -> Result<Tensor> {
    let (n, c, _, _) = x.dims4()?;
    let w0 = weight.dim(0)?;
    let [rows, cols] = grid.0;
    let y = if transposed {
        // x is the window side: [C_in, N * positions] per group, against w [C_in, C_out / g, taps].
        // A group's share of the columns' rows: C_out / g output channels times the taps.
        let k = weight.elem_count() / w0;
        let x_cf = x.transpose(0, 1)?.reshape((groups, c / groups, n * grid.positions()))?;
        let w = weight.reshape((groups, w0 / groups, k))?;
        let columns = w.t()?.matmul(&x_cf)?.reshape((groups * k, n * grid.positions()))?;
        columns.contiguous()?.apply_op1(Col2Im(grid))?
    } else {
        let k = c / groups * grid.taps();
        let columns = x.contiguous()?.apply_op1(Im2Col(grid))?.reshape((groups, k, n * grid.positions()))?;
        let w = weight.reshape((groups, w0 / groups, k))?;
        let y = w.matmul(&columns)?.reshape((w0, n, rows.output, cols.output))?;
        y.transpose(0, 1)?.contiguous()?
    };
    match bias {
        Some(b) => y.broadcast_add(&super::per_channel(b, y.rank())?),
        None => Ok(y),
    }
}
