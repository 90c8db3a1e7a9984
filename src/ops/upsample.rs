//! `Upsample(scale_factor or size, mode, align_corners)`: resizes the spatial axes of
//! `[N, C, spatial...]` by interpolation, as `nn.Upsample`. No parameters; not counted in MACs.
//!
//! `scale_factor` comes first (PyTorch puts `size` first), so `Upsample(2)` doubles the size.

use super::signature::{attr, AttrType, Default, Inputs};
use super::{expect_rank, AttrValue, Attrs, Cost, Op, OpDef, OpError, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;
#[cfg(feature = "lower")]
use crate::lower::kernels::resize::{Mode, Resize};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

const MODES: &[&str] = &["nearest", "linear", "bilinear", "bicubic", "trilinear"];

pub static UPSAMPLE: OpDef = OpDef {
    name: "Upsample",
    signature: Signature {
        inputs: Inputs::Fixed(&["x"]),
        attrs: &[
            attr("scale_factor", AttrType::Float, Default::Optional),
            attr("size", AttrType::IntOrList, Default::Optional),
            attr("mode", AttrType::Choice(MODES), Default::Str("nearest")),
            attr("align_corners", AttrType::Bool, Default::Optional),
        ],
    },
    build: |a: &Attrs| {
        let target = match (a.is_none("scale_factor"), a.is_none("size")) {
            (false, true) => {
                let s = a.float("scale_factor")?;
                if s.is_nan() || s <= 0.0 {
                    return Err(OpError::new(format!("`scale_factor` must be positive, found {s}"))
                        .attr("scale_factor"));
                }
                Target::Scale(s)
            }
            (true, false) => {
                let sizes = match a.get("size") {
                    AttrValue::List(items) => a.ints("size", items.len())?,
                    _ => vec![a.int("size")?],
                };
                if let Some(v) = sizes.iter().find(|v| **v < 1) {
                    return Err(OpError::new(format!("`size` must be at least 1, found {v}")).attr("size"));
                }
                let per_axis = matches!(a.get("size"), AttrValue::List(_));
                Target::Size { sizes, per_axis }
            }
            (both_absent, _) => {
                let found = if both_absent { "neither" } else { "both" };
                return Err(OpError::new(format!(
                    "give exactly one of `scale_factor` and `size`, found {found}"
                ))
                .attr(if both_absent { "scale_factor" } else { "size" }));
            }
        };
        let mode = a.str("mode").unwrap_or("nearest").to_string();
        let align_corners = if a.is_none("align_corners") { None } else { Some(a.bool("align_corners")?) };
        if mode == "nearest" && align_corners.is_some() {
            return Err(OpError::new(
                "`align_corners` applies to the interpolating modes (linear, bilinear, bicubic, trilinear), found mode \"nearest\"",
            )
            .attr("align_corners"));
        }
        Ok(Box::new(Upsample { target, mode, align_corners }))
    },
};

#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Every spatial size times this factor, rounded down.
    Scale(f64),
    /// One size per spatial axis, or (not `per_axis`) one for all of them.
    Size { sizes: Vec<i64>, per_axis: bool },
}

#[derive(Debug)]
pub struct Upsample {
    pub target: Target,
    pub mode: String,
    pub align_corners: Option<bool>,
}

impl Upsample {
    /// The spatial ranks the mode interpolates over (nearest takes any of them).
    fn spatial_ranks(&self) -> &'static [usize] {
        match self.mode.as_str() {
            "linear" => &[1],
            "bilinear" | "bicubic" => &[2],
            "trilinear" => &[3],
            _ => &[1, 2, 3],
        }
    }
}

/// `floor(size * factor)`, kept symbolic when the factor is a whole number.
fn scaled(size: &Dim, factor: f64) -> Result<Dim, OpError> {
    if factor.fract() == 0.0 && factor <= i64::MAX as f64 {
        return Ok(size.mul(&Dim::konst(factor as i64)));
    }
    match size.as_const() {
        Some(v) => Ok(Dim::konst((v as f64 * factor).floor() as i64)),
        None => Err(OpError::new(format!(
            "cannot scale the symbolic size `{size}` by the fractional factor {factor}"
        ))
        .attr("scale_factor")
        .help("bind the dims it depends on, or give `size`")),
    }
}

impl Op for Upsample {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let ranks: Vec<usize> = self.spatial_ranks().iter().map(|r| r + 2).collect();
        let layout = format!("[N, C, spatial...] for mode \"{}\"", self.mode);
        expect_rank(inputs, 0, &ranks, &layout)?;
        let x = &inputs[0];
        let spatial = x.rank() - 2;
        let mut shape = x.shape[..2].to_vec();
        match &self.target {
            Target::Scale(f) => {
                for d in &x.shape[2..] {
                    shape.push(scaled(d, *f)?);
                }
            }
            Target::Size { sizes, per_axis: false } => {
                shape.extend(sizes.iter().cycle().take(spatial).map(|v| Dim::konst(*v)));
            }
            Target::Size { sizes, per_axis: true } => {
                if sizes.len() != spatial {
                    return Err(OpError::new(format!(
                        "`size` needs {spatial} values, one per spatial axis of {x}, found {}",
                        sizes.len()
                    ))
                    .attr("size"));
                }
                shape.extend(sizes.iter().map(|v| Dim::konst(*v)));
            }
        }
        Ok(vec![x.with_shape(shape)])
    }

    /// Interpolation weights, not multiply-accumulates of a layer: not counted.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Upsample {
    /// Each spatial axis resized on its own with PyTorch's source indices ([`Resize`]).
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let (input, output) = (ctx.input_dims(0)?, ctx.output_dims(0)?);
        let align_corners = self.align_corners.unwrap_or(false);
        let mode = match self.mode.as_str() {
            "nearest" => Mode::Nearest,
            "bicubic" => Mode::Cubic { align_corners },
            _ => Mode::Linear { align_corners },
        };
        let factor = match self.target {
            Target::Scale(f) => Some(f),
            Target::Size { .. } => None,
        };
        let axes: Vec<(usize, usize, usize)> = (2..input.len()).map(|a| (a, input[a], output[a])).collect();
        let resize = Resize::new(mode, &axes, factor, ctx.dtype, ctx.device)?;
        Ok(unary(move |x, _| resize.apply(x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, err, f32, int, ints, macs, out_shape};

    fn mode(m: &str) -> (&'static str, AttrValue) {
        ("mode", AttrValue::Str(m.into()))
    }

    #[test]
    fn scales_symbolically_by_whole_factors() {
        let op = build(&UPSAMPLE, &[("scale_factor", int(2))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[1, 64, 7, 7])]), vec![1, 64, 14, 14]);
        assert_eq!(macs(&*op, &[f32(&[1, 64, 7, 7])]), 0);
        let x = TensorType::new(DType::F32, vec![Dim::sym("N"), 8.into(), Dim::sym("H"), Dim::sym("W")]);
        let out = op.infer(&[x]).unwrap();
        assert_eq!(out[0].shape[2], Dim::sym("H").mul(&Dim::konst(2)));
    }

    #[test]
    fn fractional_factors_round_down_and_need_constants() {
        let a = [
            ("scale_factor", AttrValue::Float(1.5)),
            mode("bilinear"),
            ("align_corners", AttrValue::Bool(false)),
        ];
        let op = build(&UPSAMPLE, &a).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[1, 3, 7, 10])]), vec![1, 3, 10, 15]);
        let x = TensorType::new(DType::F32, vec![1.into(), 3.into(), Dim::sym("H"), 8.into()]);
        let e = err(op.infer(&[x]));
        assert!(e.message.contains("symbolic size `H`") && e.help.is_some(), "{}", e.message);
        assert!(err(op.infer(&[f32(&[1, 3, 8])])).message.contains("rank-4"));
    }

    #[test]
    fn takes_sizes_per_axis() {
        let op = build(&UPSAMPLE, &[("size", ints(&[32, 48]))]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 3, 7, 7])]), vec![2, 3, 32, 48]);
        let op = build(&UPSAMPLE, &[("size", int(16)), mode("linear")]).unwrap();
        assert_eq!(out_shape(&*op, &[f32(&[2, 3, 7])]), vec![2, 3, 16]);
        let op = build(&UPSAMPLE, &[("size", ints(&[32, 48]))]).unwrap();
        assert!(err(op.infer(&[f32(&[2, 3, 4, 4, 4])])).message.contains("needs 3 values"));
        assert_eq!(err(build(&UPSAMPLE, &[("size", ints(&[8, 0]))])).attr, Some("size"));
    }

    #[test]
    fn refuses_ambiguous_or_inconsistent_attributes() {
        assert!(err(build(&UPSAMPLE, &[])).message.contains("found neither"));
        let e = err(build(&UPSAMPLE, &[("scale_factor", int(2)), ("size", int(8))]));
        assert_eq!((e.attr, e.message.contains("found both")), (Some("size"), true));
        let e = err(build(&UPSAMPLE, &[("scale_factor", int(2)), ("align_corners", AttrValue::Bool(true))]));
        assert_eq!(e.attr, Some("align_corners"));
        assert!(build(&UPSAMPLE, &[("scale_factor", AttrValue::Float(-1.0))]).is_err());
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_every_mode_on_odd_sizes() {
        let spec = "model M { input x: [2, 3, 5, 4]\n input s: [1, 2, 5]\n input v: [1, 1, 3, 2, 3]\n \
                    output a = x |> Upsample(2)\n \
                    output b = x |> Upsample(size=[7, 3])\n \
                    output c = x |> Upsample(1.5, mode=\"bilinear\")\n \
                    output d = x |> Upsample(size=[3, 7], mode=\"bilinear\", align_corners=true)\n \
                    output e = x |> Upsample(2, mode=\"bicubic\")\n \
                    output f = s |> Upsample(size=8, mode=\"linear\", align_corners=true)\n \
                    output g = v |> Upsample(2, mode=\"trilinear\") }";
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }
}
