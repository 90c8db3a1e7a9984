//! `ShiftedWindowAttention(window, shift, num_heads)`: torchvision's module of that name (Swin
//! Transformer's W-MSA / SW-MSA) on a channels-last map `[B, H, W, C]`: the map is padded with
//! zeros at the bottom and right to whole windows, rolled by `-shift` on both axes, cut into
//! `window x window` windows; each window attends within itself (`qkv` Linear, heads of
//! `C / num_heads`, scores scaled by `head_dim^-0.5` plus a learned relative position bias and,
//! when shifted, -100 between tokens that came from different regions of the map); `proj`
//! Linear; then the windows are put back, the roll undone and the padding cut off.
//!
//! One op rather than a composition of reshapes, a matmul and a softmax, for two reasons:
//! torchvision decides the padding and the shift (0 on an axis whose padded size the window
//! covers, as in Swin-T's last stage at 224) from the map's size, which only the lowering knows
//! when H and W are symbolic; and the module holds its six tensors at one path, with
//! torchvision's keys: `qkv.weight`, `qkv.bias`, `proj.weight`, `proj.bias`,
//! `relative_position_bias_table [(2w-1)^2, heads]` and the int64 buffer
//! `relative_position_index [w^4]` (an [`ParamKind::Index`](super::ParamKind::Index), not
//! counted as a parameter or a running statistic).

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_float, expect_rank, Attrs, Cost, Init, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

pub static SHIFTED_WINDOW_ATTENTION: OpDef = OpDef {
    name: "ShiftedWindowAttention",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("window", AttrType::Int, Default::Required),
            attr("shift", AttrType::Int, Default::Int(0)),
            attr("num_heads", AttrType::Int, Default::Required),
            attr("qkv_bias", AttrType::Bool, Default::Bool(true)),
            attr("proj_bias", AttrType::Bool, Default::Bool(true)),
            attr("attention_dropout", AttrType::Float, Default::Float(0.0)),
            attr("dropout", AttrType::Float, Default::Float(0.0)),
        ],
    },
    build: |a: &Attrs| {
        let window = a.int_at_least("window", 1)?;
        let shift = a.int_at_least("shift", 0)?;
        if shift >= window {
            return Err(OpError::new(format!(
                "`shift` must be less than the window {window}, found {shift}"
            ))
            .attr("shift"));
        }
        let probability = |name: &'static str| {
            let p = a.float(name)?;
            if (0.0..1.0).contains(&p) {
                Ok(p)
            } else {
                Err(OpError::new(format!("`{name}` must be in [0, 1), found {p}")).attr(name))
            }
        };
        // Bounded so that the index table (w^4 entries) is never an unbounded allocation.
        if window > 32 {
            return Err(OpError::new(format!("`window` must be at most 32, found {window}")).attr("window"));
        }
        Ok(Box::new(ShiftedWindowAttention {
            window,
            shift,
            num_heads: a.int_at_least("num_heads", 1)?,
            qkv_bias: a.bool("qkv_bias")?,
            proj_bias: a.bool("proj_bias")?,
            attention_dropout: probability("attention_dropout")?,
            dropout: probability("dropout")?,
        }))
    },
};

#[derive(Debug)]
pub struct ShiftedWindowAttention {
    pub window: i64,
    pub shift: i64,
    pub num_heads: i64,
    pub qkv_bias: bool,
    pub proj_bias: bool,
    pub attention_dropout: f64,
    pub dropout: f64,
}

impl ShiftedWindowAttention {
    /// Windows over the whole batch, `B * cdiv(H, w) * cdiv(W, w)`, and the channels.
    fn windows_and_channels(&self, x: &TensorType) -> Option<(Dim, Dim)> {
        let w = Dim::konst(self.window);
        let rows = x.shape[1].ceil_div(&w).ok()?;
        let cols = x.shape[2].ceil_div(&w).ok()?;
        Some((x.shape[0].mul(&rows).mul(&cols), x.shape[3].clone()))
    }
}

impl Op for ShiftedWindowAttention {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        expect_rank(inputs, 0, &[4], "a channels-last map [B, H, W, C]")?;
        expect_float(inputs, 0, "ShiftedWindowAttention")?;
        let x = &inputs[0];
        if let Some(r) = x.shape[3].as_const().map(|c| c % self.num_heads).filter(|r| *r != 0) {
            return Err(OpError::new(format!(
                "the channels {} must be divisible by `num_heads` {}, found remainder {r}",
                x.shape[3], self.num_heads
            ))
            .input(0));
        }
        Ok(vec![x.clone()])
    }

    /// As torchvision's module, standalone: `nn.Linear` projections, a trunc-normal (std 0.02)
    /// table; the index computed.
    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let Some(c) = inputs.first().and_then(|x| x.shape.get(3)).cloned() else { return Vec::new() };
        let linear = |name: &'static str, rows: Dim, bias: bool| {
            let mut p = vec![ParamDecl::weight(
                format!("{name}.weight"),
                vec![rows.clone(), c.clone()],
                Init::UniformFan(c.clone()),
            )];
            if bias {
                p.push(ParamDecl::weight(format!("{name}.bias"), vec![rows], Init::UniformFan(c.clone())));
            }
            p
        };
        // In state_dict order: the module's own parameter and buffer, then its Linears.
        let (w, span) = (self.window, 2 * self.window - 1);
        let table = Init::TruncNormal { mean: 0.0, std: 0.02, low: -2.0, high: 2.0 };
        let mut p = vec![
            ParamDecl::weight(
                "relative_position_bias_table",
                vec![Dim::konst(span * span), Dim::konst(self.num_heads)],
                table,
            ),
            ParamDecl::index("relative_position_index", vec![Dim::konst(w * w * w * w)]),
        ];
        p.extend(linear("qkv", c.mul(&3.into()), self.qkv_bias));
        p.extend(linear("proj", c.clone(), self.proj_bias));
        p
    }

    /// Over every (padded) window of `n = w^2` tokens: `qkv` `n*C*3C`, `proj` `n*C*C`, and the
    /// core `n*n*C` for `Q K^T` plus `n*n*C` for `A V` (heads x head_dim = C); biases excluded.
    fn cost(&self, inputs: &[TensorType], _: &[TensorType]) -> Cost {
        let Some((windows, c)) = inputs.first().and_then(|x| self.windows_and_channels(x)) else {
            return Cost::Uncounted;
        };
        let n = Dim::konst(self.window * self.window);
        let per_window = n.mul(&c).mul(&c.mul(&4.into()).add(&n.mul(&2.into())));
        Cost::Macs(windows.mul(&per_window))
    }
}

/// torchvision's `relative_position_index` for a `w x w` window: for tokens `i` and `j` (row
/// major), `(dy + w - 1) * (2w - 1) + (dx + w - 1)` with `(dy, dx)` = position of `i` minus `j`.
pub fn relative_position_index(w: i64) -> Vec<i64> {
    let n = w * w;
    let mut index = Vec::with_capacity((n * n) as usize);
    for i in 0..n {
        for j in 0..n {
            let (dy, dx) = (i / w - j / w, i % w - j % w);
            index.push((dy + w - 1) * (2 * w - 1) + dx + w - 1);
        }
    }
    index
}

/// The shift torchvision applies on an axis of padded size `padded`: none when one window
/// covers it.
pub fn effective_shift(window: usize, shift: usize, padded: usize) -> usize {
    if window >= padded {
        0
    } else {
        shift
    }
}

/// The region of each position along one axis of padded size `padded` after the roll:
/// torchvision's slices `[0, -w)`, `[-w, -s)`, `[-s, end)`; one region when not shifted.
fn regions(window: usize, shift: usize, padded: usize) -> Vec<usize> {
    (0..padded)
        .map(|i| match shift {
            0 => 0,
            _ if i < padded - window => 0,
            _ if i < padded - shift => 1,
            _ => 2,
        })
        .collect()
}

/// The additive mask `[windows, n, n]` (window-major, row-major tokens): -100 between tokens of
/// different regions, 0 within one; `None` when neither axis is shifted, and an empty mask when
/// it cannot be allocated (the caller reports that).
pub fn region_mask(window: usize, shifts: [usize; 2], padded: [usize; 2]) -> Option<Vec<f32>> {
    if shifts == [0, 0] {
        return None;
    }
    let n = window * window;
    let mut mask = Vec::new();
    if padded[0]
        .checked_mul(padded[1])
        .and_then(|p| p.checked_mul(n))
        .is_none_or(|len| mask.try_reserve_exact(len).is_err())
    {
        return Some(mask);
    }
    let (rows, cols) = (regions(window, shifts[0], padded[0]), regions(window, shifts[1], padded[1]));
    for wy in 0..padded[0] / window {
        for wx in 0..padded[1] / window {
            let region = |t: usize| rows[wy * window + t / window] * 3 + cols[wx * window + t % window];
            for i in 0..n {
                mask.extend((0..n).map(|j| if region(i) == region(j) { 0.0 } else { -100.0 }));
            }
        }
    }
    Some(mask)
}

#[cfg(feature = "lower")]
mod lowering {
    use candle_core::Tensor;

    use super::*;
    use crate::lower::kernels::activation::dropout;
    use crate::lower::kernels::linear::linear;
    use crate::lower::kernels::softmax::softmax;
    use crate::ops::roll::roll;

    type Result<T> = candle_core::Result<T>;

    /// Sizes fixed by the binding, and the tensors the op holds.
    struct Windows {
        heads: usize,
        window: usize,
        size: [usize; 2],
        padded: [usize; 2],
        shifts: [usize; 2],
        qkv: (Tensor, Option<Tensor>),
        proj: (Tensor, Option<Tensor>),
        table: Tensor,
        index: Tensor,
        mask: Option<Tensor>,
        attention_dropout: f64,
        dropout: f64,
    }

    impl Windows {
        fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
            let (b, _, _, c) = x.dims4()?;
            let (w, [ph, pw], n) = (self.window, self.padded, self.window * self.window);
            let (heads, d) = (self.heads, c / self.heads);
            let x = x.pad_with_zeros(1, 0, ph - self.size[0])?.pad_with_zeros(2, 0, pw - self.size[1])?;
            let x = roll(&roll(&x, -(self.shifts[0] as i64), 1)?, -(self.shifts[1] as i64), 2)?;
            let windows = (ph / w) * (pw / w);
            let x = x.reshape((b, ph / w, w, pw / w, w, c))?.permute((0, 1, 3, 2, 4, 5))?.reshape((
                b * windows,
                n,
                c,
            ))?;
            let qkv = linear(&x, &self.qkv.0, self.qkv.1.as_ref())?
                .reshape((b * windows, n, 3, heads, d))?
                .permute((2, 0, 3, 1, 4))?;
            let part = |i: usize| qkv.get(i)?.contiguous();
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let scores = q.affine((d as f64).powf(-0.5), 0.0)?.matmul(&k.t()?.contiguous()?)?;
            let bias = self.table.index_select(&self.index, 0)?.reshape((n, n, heads))?.permute((2, 0, 1))?;
            let mut scores = scores.broadcast_add(&bias.unsqueeze(0)?)?;
            if let Some(mask) = &self.mask {
                scores = scores
                    .reshape((b, windows, heads, n, n))?
                    .broadcast_add(&mask.reshape((1, windows, 1, n, n))?)?
                    .reshape((b * windows, heads, n, n))?;
            }
            let mut weights = softmax(&scores, 3)?;
            if train && self.attention_dropout > 0.0 {
                weights = dropout(&weights, self.attention_dropout)?;
            }
            let y = weights.matmul(&v)?.transpose(1, 2)?.reshape((b * windows, n, c))?;
            let mut y = linear(&y, &self.proj.0, self.proj.1.as_ref())?;
            if train && self.dropout > 0.0 {
                y = dropout(&y, self.dropout)?;
            }
            let y = y
                .reshape((b, ph / w, pw / w, w, w, c))?
                .permute((0, 1, 3, 2, 4, 5))?
                .reshape((b, ph, pw, c))?;
            let y = roll(&roll(&y, self.shifts[0] as i64, 1)?, self.shifts[1] as i64, 2)?;
            y.narrow(1, 0, self.size[0])?.narrow(2, 0, self.size[1])?.contiguous()
        }
    }

    impl Lower for ShiftedWindowAttention {
        fn lower(&self, ctx: &mut LowerCtx) -> std::result::Result<Box<dyn Forward>, LowerError> {
            let dims = ctx.input_dims(0)?;
            let (window, shift) = (self.window as usize, self.shift as usize);
            let size = [dims[1], dims[2]];
            let padded = size.map(|s| s.div_ceil(window) * window);
            let shifts = padded.map(|p| effective_shift(window, shift, p));
            let n = window * window;
            let mask = match region_mask(window, shifts, padded) {
                Some(m) if m.is_empty() => {
                    return Err(
                        ctx.error(format!("cannot allocate the shifted-window mask of a {padded:?} map"))
                    );
                }
                Some(m) => {
                    let windows = m.len() / (n * n);
                    Some(Tensor::from_vec(m, (windows, n, n), ctx.device)?.to_dtype(ctx.dtype)?)
                }
                None => None,
            };
            let bias = |ctx: &mut LowerCtx, name: &str, on: bool| on.then(|| ctx.weight(name)).transpose();
            let windows = Windows {
                heads: self.num_heads as usize,
                window,
                size,
                padded,
                shifts,
                qkv: (ctx.weight("qkv.weight")?, bias(ctx, "qkv.bias", self.qkv_bias)?),
                proj: (ctx.weight("proj.weight")?, bias(ctx, "proj.bias", self.proj_bias)?),
                table: ctx.weight("relative_position_bias_table")?,
                index: ctx.index_buffer("relative_position_index", relative_position_index(self.window))?,
                mask,
                attention_dropout: self.attention_dropout,
                dropout: self.dropout,
            };
            Ok(Box::new(move |xs: &[Tensor], ctx: &mut ForwardCtx| {
                Ok(vec![windows.forward(&xs[0], ctx.train)?])
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    fn swin(window: i64, shift: i64, heads: i64) -> Box<dyn Op> {
        build(
            &SHIFTED_WINDOW_ATTENTION,
            &[("window", int(window)), ("shift", int(shift)), ("num_heads", int(heads))],
        )
        .unwrap()
    }

    #[test]
    fn swin_t_first_stage_keys_counts_and_macs() {
        let op = swin(7, 3, 3);
        let x = [f32(&[1, 56, 56, 96])];
        assert_eq!(out_shape(&*op, &x), vec![1, 56, 56, 96]);
        let names: Vec<_> = op.params(&x).iter().map(|p| (p.name.to_string(), p.kind)).collect();
        let weight = |s: &str| (s.to_string(), ParamKind::Weight);
        assert_eq!(
            names,
            [
                weight("relative_position_bias_table"),
                ("relative_position_index".to_string(), ParamKind::Index),
                weight("qkv.weight"),
                weight("qkv.bias"),
                weight("proj.weight"),
                weight("proj.bias"),
            ]
        );
        // torchvision: 96*288 + 288 + 96*96 + 96 + 169*3.
        assert_eq!(count(&*op, &x, ParamKind::Weight), 27_648 + 288 + 9_216 + 96 + 507);
        assert_eq!(count(&*op, &x, ParamKind::Index), 2_401);
        // 64 windows of 49 tokens: 49*96*(4*96) + 2*49*49*96 each.
        assert_eq!(macs(&*op, &x), 64 * (49 * 96 * 384 + 2 * 49 * 49 * 96));
        // A 9x10 map is padded to 14x14: four windows.
        assert_eq!(macs(&*op, &[f32(&[1, 9, 10, 96])]), 4 * (49 * 96 * 384 + 2 * 49 * 49 * 96));
    }

    #[test]
    fn refuses_bad_windows_heads_and_ranks() {
        let e = err(build(
            &SHIFTED_WINDOW_ATTENTION,
            &[("window", int(4)), ("shift", int(4)), ("num_heads", int(2))],
        ));
        assert_eq!(e.attr, Some("shift"));
        let e = err(swin(4, 2, 3).infer(&[f32(&[1, 8, 8, 8])]));
        assert!(e.message.contains("divisible by `num_heads` 3"), "{}", e.message);
        let e = err(swin(4, 2, 2).infer(&[f32(&[8, 8, 8])]));
        assert!(e.message.contains("rank-4"), "{}", e.message);
        let p = [("window", int(4)), ("num_heads", int(2)), ("dropout", AttrValue::Float(1.0))];
        assert_eq!(err(build(&SHIFTED_WINDOW_ATTENTION, &p)).attr, Some("dropout"));
    }

    #[test]
    fn the_index_is_torchvisions() {
        // torchvision, window 2: relative_position_index.tolist().
        let expected = [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4];
        assert_eq!(relative_position_index(2), expected);
        let index = relative_position_index(7);
        assert_eq!((index.len(), index[0], index[48], *index.iter().max().unwrap()), (2401, 84, 0, 168));
    }

    #[test]
    fn the_mask_separates_regions_and_the_shift_follows_the_padded_size() {
        assert_eq!(effective_shift(7, 3, 7), 0);
        assert_eq!(effective_shift(7, 3, 14), 3);
        assert!(region_mask(4, [0, 0], [8, 8]).is_none());
        // 8x8 map, window 4, shift 2: window 0 is one region; window 3 (bottom right) has four.
        let mask = region_mask(4, [2, 2], [8, 8]).unwrap();
        assert_eq!(mask.len(), 4 * 16 * 16);
        assert!(mask[..256].iter().all(|v| *v == 0.0));
        let last = &mask[3 * 256..];
        // Token 0 (row 0, col 0) and token 2 (row 0, col 2) lie in different column regions.
        assert_eq!((last[0], last[2], last[1]), (0.0, -100.0, 0.0));
        // Only the column axis shifted: rows never separate tokens.
        let cols_only = region_mask(4, [0, 2], [4, 8]).unwrap();
        assert_eq!((cols_only[256 + 4], cols_only[256 + 2]), (0.0, -100.0));
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_shifted_padded_and_plain_on_odd_maps() {
        // A 5x7 map: padded to 6x8 by window 2 and to 6x9 by window 3, both shifted on both
        // axes; padded to 5x10 by window 5, shifted only along W (one window covers H).
        let spec = "model M { input x: [2, 5, 7, 6]\n \
                    output a = x |> s: ShiftedWindowAttention(2, shift=1, num_heads=3)\n \
                    output b = x |> t: ShiftedWindowAttention(3, shift=1, num_heads=2, proj_bias=false)\n \
                    output c = x |> u: ShiftedWindowAttention(5, shift=2, num_heads=1) }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
