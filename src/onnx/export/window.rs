//! Swin's ops as compositions, in torchvision's steps. `ShiftedWindowAttention`: the map padded
//! to whole windows (`Pad`), rolled (`Slice`/`Concat`), cut into windows (`Reshape`,
//! `Transpose`), attention within each window with the relative position bias gathered from
//! its table by the index buffer (`Gather`) and, when shifted, the region mask (a constant),
//! then the windows put back, the roll undone and the padding cut off. `patch_merging_pad`:
//! an odd map padded, and the four step-2 slices of each 2x2 patch concatenated.

use super::movement::roll_axis;
use super::tensor::slice_axes;
use super::{int, ints, Mapped, NodeCtx};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
use crate::ops::shifted_window_attention::{effective_shift, region_mask};

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        "ShiftedWindowAttention" => shifted_window_attention,
        "patch_merging_pad" => patch_merging_pad,
        _ => return None,
    })
}

/// The padding, the shift and the mask follow the map's size, so H, W and C must be bound;
/// the batch may stay symbolic (every reshape infers it). The scores are
/// `[B, windows, heads, n, n]`, so that the mask `[1, windows, 1, n, n]` broadcasts over the
/// batch and the heads; the projections are `Gemm`s on the tokens `[B windows n, C]`.
fn shifted_window_attention(c: &mut NodeCtx) -> Mapped {
    let a = &c.node.attrs;
    let attr = |name| a.int(name).map_err(|e| e.message);
    let (win, shift, heads) = (attr("window")?, attr("shift")?, attr("num_heads")?);
    let flag = |name| a.bool(name).map_err(|e| e.message);
    let (qkv_bias, proj_bias) = (flag("qkv_bias")?, flag("proj_bias")?);
    let x_ty = c.input_type(0)?.clone();
    let size = [c.bound(&x_ty.shape[1], "the map's height")?, c.bound(&x_ty.shape[2], "the map's width")?];
    let ch = c.bound(&x_ty.shape[3], "the channel count")?;
    let padded = size.map(|s| (s + win - 1) / win * win);
    let shifts = padded.map(|p| effective_shift(win as usize, shift as usize, p as usize) as i64);
    let (rows, cols, n, d) = (padded[0] / win, padded[1] / win, win * win, ch / heads);
    let windows = rows * cols;

    let mut x = c.input(0)?;
    if padded != size {
        let pads = c.const_i64(&[0, 0, 0, 0, 0, padded[0] - size[0], padded[1] - size[1], 0]);
        x = c.op("Pad", &[&x, &pads], vec![]);
        let mut ty = x_ty.clone();
        (ty.shape[1], ty.shape[2]) = (padded[0].into(), padded[1].into());
        c.declare(&x, &ty);
    }
    for axis in [1, 2] {
        x = roll_axis(c, &x, axis, -shifts[axis - 1], padded[axis - 1]);
    }
    let to = c.const_i64(&[-1, rows, win, cols, win, ch]);
    x = c.op("Reshape", &[&x, &to], vec![]);
    x = c.op("Transpose", &[&x], vec![ints("perm", &[0, 1, 3, 2, 4, 5])]);
    let tokens = c.const_i64(&[-1, ch]);
    x = c.op("Reshape", &[&x, &tokens], vec![]);

    // [B windows n, 3C] split into q, k and v, each to [B, windows, heads, n, d] (the keys
    // to [.., d, n]).
    let qkv = project(c, &x, "qkv", qkv_bias)?;
    let sizes = c.const_i64(&[ch, ch, ch]);
    let parts = c.op_n("Split", &[&qkv, &sizes], vec![int("axis", -1)], 3);
    let mut heads_of = |part: &str, perm: &[i64]| {
        let to = c.const_i64(&[-1, windows, n, heads, d]);
        let split = c.op("Reshape", &[part, &to], vec![]);
        c.op("Transpose", &[&split], vec![ints("perm", perm)])
    };
    let q = heads_of(&parts[0], &[0, 1, 3, 2, 4]);
    let k_t = heads_of(&parts[1], &[0, 1, 3, 4, 2]);
    let v = heads_of(&parts[2], &[0, 1, 3, 2, 4]);
    let scale = c.scalar((d as f64).powf(-0.5));
    let q = c.op("Mul", &[&q, &scale], vec![]);
    let scores = c.op("MatMul", &[&q, &k_t], vec![]);

    // The bias from the table [(2w-1)^2, heads] by the index [n^2], as [1, 1, heads, n, n]:
    // of the scores' rank, which wick's importer needs to read the sum back.
    let (table, index) = (c.weight("relative_position_bias_table")?, c.weight("relative_position_index")?);
    let bias = c.op("Gather", &[&table, &index], vec![int("axis", 0)]);
    c.declare(&bias, &TensorType::new(x_ty.dtype, vec![(n * n).into(), heads.into()]));
    let to = c.const_i64(&[1, 1, n, n, heads]);
    let bias = c.op("Reshape", &[&bias, &to], vec![]);
    let mut bias = c.op("Transpose", &[&bias], vec![ints("perm", &[0, 1, 4, 2, 3])]);
    let shifts = shifts.map(|s| s as usize);
    if let Some(mask) = region_mask(win as usize, shifts, padded.map(|p| p as usize)) {
        if mask.is_empty() {
            return Err(format!("cannot allocate the shifted-window mask of a {padded:?} map"));
        }
        let mask = c.const_f32(&[1, windows, 1, n, n], mask);
        bias = c.op("Add", &[&bias, &mask], vec![]);
    }
    let scores = c.op("Add", &[&scores, &bias], vec![]);
    let weights = c.op("Softmax", &[&scores], vec![int("axis", -1)]);
    let y = c.op("MatMul", &[&weights, &v], vec![]);
    let y = c.op("Transpose", &[&y], vec![ints("perm", &[0, 1, 3, 2, 4])]);
    let y = c.op("Reshape", &[&y, &tokens], vec![]);
    let y = project(c, &y, "proj", proj_bias)?;

    let to = c.const_i64(&[-1, rows, cols, win, win, ch]);
    let y = c.op("Reshape", &[&y, &to], vec![]);
    let y = c.op("Transpose", &[&y], vec![ints("perm", &[0, 1, 3, 2, 4, 5])]);
    let to = c.const_i64(&[-1, padded[0], padded[1], ch]);
    let mut y = c.op("Reshape", &[&y, &to], vec![]);
    for axis in [1, 2] {
        y = roll_axis(c, &y, axis, shifts[axis - 1] as i64, padded[axis - 1]);
    }
    // One axis a slice, as wick's importer reads slices.
    for axis in [1, 2] {
        if padded[axis - 1] != size[axis - 1] {
            y = slice_axes(c, &y, &[axis as i64], &[0], &[size[axis - 1]], &[1]);
        }
    }
    Ok(vec![y])
}

/// The layer's Linear `name` (`qkv`, `proj`) on the tokens `[T, C]`: one `Gemm`, which wick's
/// importer reads back as a Linear.
fn project(c: &mut NodeCtx, x: &str, name: &str, bias: bool) -> Result<String, String> {
    let mut inputs = vec![x.to_string(), c.weight(&format!("{name}.weight"))?];
    if bias {
        inputs.push(c.weight(&format!("{name}.bias"))?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    Ok(c.op("Gemm", &refs, vec![int("transB", 1)]))
}

/// torchvision's `_patch_merging_pad` as torch.onnx writes it: H and W padded by their sizes
/// mod 2 (constants when bound, from `Shape` when symbolic), then `x[..., i::2, j::2, :]` for
/// (i, j) = (0, 0), (1, 0), (0, 1), (1, 1) concatenated along the channels (one axis a slice,
/// as wick's importer reads slices).
fn patch_merging_pad(c: &mut NodeCtx) -> Mapped {
    let x_ty = c.input_type(0)?.clone();
    let rank = x_ty.rank();
    let (h, w) = (rank - 3, rank - 2);
    let mut x = c.input(0)?;
    let bound = [&x_ty.shape[h], &x_ty.shape[w]].map(|d| c.bound(d, "a map size").ok());
    let pads = if let [Some(hs), Some(ws)] = bound {
        let mut pads = vec![0i64; 2 * rank];
        (pads[rank + h], pads[rank + w]) = (hs % 2, ws % 2);
        (pads != vec![0; 2 * rank]).then(|| c.const_i64(&pads))
    } else {
        let shape = c.op("Shape", &[&x], vec![]);
        let sizes = slice_axes(c, &shape, &[0], &[h as i64], &[w as i64 + 1], &[1]);
        let two = c.const_i64(&[2]);
        let odd = c.op("Mod", &[&sizes, &two], vec![]);
        let (before, after) = (c.const_i64(&vec![0; rank + h]), c.const_i64(&[0]));
        Some(c.op("Concat", &[&before, &odd, &after], vec![int("axis", 0)]))
    };
    if let Some(pads) = pads {
        x = c.op("Pad", &[&x, &pads], vec![]);
        let mut ty = x_ty.clone();
        let even =
            |d: &Dim| d.ceil_div(&2.into()).map(|half| half.mul(&2.into())).map_err(|e| format!("{e:?}"));
        (ty.shape[h], ty.shape[w]) = (even(&x_ty.shape[h])?, even(&x_ty.shape[w])?);
        c.declare(&x, &ty);
    }
    let rows = [0, 1].map(|i| slice_axes(c, &x, &[h as i64], &[i], &[i64::MAX], &[2]));
    let mut pieces = Vec::new();
    for (i, j) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        pieces.push(slice_axes(c, &rows[i], &[w as i64], &[j], &[i64::MAX], &[2]));
    }
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    Ok(vec![c.op("Concat", &refs, vec![int("axis", -1)])])
}
