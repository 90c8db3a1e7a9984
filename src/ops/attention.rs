//! `MultiheadAttention`: scaled dot-product attention over `num_heads` heads with input and
//! output projections, PyTorch's `nn.MultiheadAttention` layout and defaults.
//!
//! Inputs are PyTorch's `forward(query, key, value, key_padding_mask)`, left out from the end:
//! `MultiheadAttention(x, ...)` (or `x |> MultiheadAttention(...)`) is self-attention,
//! `(query, kv)` attends to `kv` as key and value, `(query, key, value)` names all three, and a
//! fourth input is the key padding mask (`[N, S]`, bool or float; it changes no count). The
//! attention weights PyTorch can also return are not an output: transformer layers call it
//! with `need_weights=False`. `causal` records the mask of a decoder for the lowering.

#[cfg(feature = "lower")]
use candle_core::Tensor;

use super::divide_exactly;
use super::sequence::{expect_float, SeqAxes};
use super::signature::{attr, AttrType, Default, Inputs};
use super::Init;
use super::{expect_dim, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Quotient, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, DType, TensorType};
#[cfg(feature = "lower")]
use crate::lower::kernels::attention::{causal_bias, Attention, Core, InProj};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

pub static MULTIHEAD_ATTENTION: OpDef = OpDef {
    name: "MultiheadAttention",
    signature: Signature {
        inputs: Inputs::Trailing { names: &["query", "key", "value", "key_padding_mask"], required: 1 },
        attrs: &[
            attr("embed_dim", AttrType::Int, Default::Required),
            attr("num_heads", AttrType::Int, Default::Required),
            attr("dropout", AttrType::Float, Default::Float(0.0)),
            attr("bias", AttrType::Bool, Default::Bool(true)),
            attr("add_bias_kv", AttrType::Bool, Default::Bool(false)),
            attr("add_zero_attn", AttrType::Bool, Default::Bool(false)),
            attr("kdim", AttrType::Int, Default::Optional),
            attr("vdim", AttrType::Int, Default::Optional),
            attr("batch_first", AttrType::Bool, Default::Bool(false)),
            attr("causal", AttrType::Bool, Default::Bool(false)),
        ],
    },
    build: |a: &Attrs| Ok(Box::new(MultiheadAttention::from_attrs(a)?)),
};

#[derive(Debug)]
pub struct MultiheadAttention {
    pub embed_dim: Dim,
    pub num_heads: i64,
    pub kdim: Dim,
    pub vdim: Dim,
    pub dropout: f64,
    pub bias: bool,
    pub add_bias_kv: bool,
    pub add_zero_attn: bool,
    pub batch_first: bool,
    pub causal: bool,
}

impl MultiheadAttention {
    fn from_attrs(a: &Attrs) -> Result<MultiheadAttention, OpError> {
        let embed_dim = a.dim_at_least("embed_dim", 1)?;
        let num_heads = a.int_at_least("num_heads", 1)?;
        if let Quotient::Remainder(r) = divide_exactly(&embed_dim, num_heads) {
            return Err(OpError::new(format!(
                "`embed_dim` {embed_dim} must be divisible by `num_heads` {num_heads}, found remainder {r}"
            ))
            .attr("num_heads"));
        }
        let dropout = a.float("dropout")?;
        if !(0.0..=1.0).contains(&dropout) {
            return Err(OpError::new(format!(
                "`dropout` is a probability and must be in [0, 1], found {dropout}"
            ))
            .attr("dropout"));
        }
        let or_embed = |name| -> Result<Dim, OpError> {
            if a.is_none(name) {
                Ok(embed_dim.clone())
            } else {
                a.dim_at_least(name, 1)
            }
        };
        Ok(MultiheadAttention {
            kdim: or_embed("kdim")?,
            vdim: or_embed("vdim")?,
            embed_dim,
            num_heads,
            dropout,
            bias: a.bool("bias")?,
            add_bias_kv: a.bool("add_bias_kv")?,
            add_zero_attn: a.bool("add_zero_attn")?,
            batch_first: a.bool("batch_first")?,
            causal: a.bool("causal")?,
        })
    }

    /// Query, key and value, the latter two defaulting as the inputs are left out.
    fn qkv<'t>(&self, inputs: &'t [TensorType]) -> Option<[&'t TensorType; 3]> {
        let q = inputs.first()?;
        let k = inputs.get(1).unwrap_or(q);
        Some([q, k, inputs.get(2).unwrap_or(k)])
    }

    /// PyTorch packs the three projections into one `in_proj_weight` when they all map `E -> E`.
    fn packed(&self) -> bool {
        self.kdim == self.embed_dim && self.vdim == self.embed_dim
    }

    fn check_mask(&self, mask: &TensorType, key: &TensorType, axes: &SeqAxes) -> Result<(), OpError> {
        let mut expected = vec![axes.len(key)];
        if axes.batch.is_some() {
            expected.insert(0, axes.batch(key));
        }
        if mask.shape != expected || !(mask.dtype == DType::Bool || mask.dtype.is_float()) {
            return Err(OpError::new(format!(
                "key_padding_mask: expected a bool or float mask of shape {} (batch, key length), found {mask}",
                shape_string(&expected)
            ))
            .input(3));
        }
        Ok(())
    }
}

impl Op for MultiheadAttention {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let Some([q, k, v]) = self.qkv(inputs) else {
            return Err(OpError::new("expected a query tensor, found no input"));
        };
        let axes = SeqAxes::of(inputs, 0, self.batch_first)?;
        for (i, (t, dim, what)) in [
            (q, &self.embed_dim, "query features (embed_dim)"),
            (k, &self.kdim, "key features (kdim)"),
            (v, &self.vdim, "value features (vdim)"),
        ]
        .into_iter()
        .enumerate()
        .take(inputs.len().min(3))
        {
            expect_float(t, i)?;
            if t.rank() != q.rank() {
                return Err(OpError::new(format!(
                    "query and {} must have the same layout, found shapes {} and {}",
                    ["query", "key", "value"][i],
                    shape_string(&q.shape),
                    shape_string(&t.shape)
                ))
                .input(i));
            }
            expect_dim(&axes.features(t), dim, what, i)?;
        }
        if inputs.len() > 1 {
            expect_dim(&axes.batch(k), &axes.batch(q), "key batch (the query's)", 1)?;
        }
        if inputs.len() > 2 {
            expect_dim(&axes.len(v), &axes.len(k), "value length (the key's)", 2)?;
            expect_dim(&axes.batch(v), &axes.batch(q), "value batch (the query's)", 2)?;
        }
        if let Some(mask) = inputs.get(3) {
            self.check_mask(mask, k, &axes)?;
        }
        Ok(vec![q.clone()])
    }

    fn params(&self, _: &[TensorType]) -> Vec<ParamDecl> {
        let e = &self.embed_dim;
        // A `[rows, cols]` weight, xavier-uniform (fan_in = cols, fan_out = rows).
        let xavier = |name: &'static str, rows: Dim, cols: &Dim| {
            let init = Init::XavierUniform { fan_in: cols.clone(), fan_out: rows.clone() };
            ParamDecl::weight(name, vec![rows, cols.clone()], init)
        };
        let mut p = if self.packed() {
            vec![xavier("in_proj_weight", e.mul(&3.into()), e)]
        } else {
            vec![
                xavier("q_proj_weight", e.clone(), e),
                xavier("k_proj_weight", e.clone(), &self.kdim),
                xavier("v_proj_weight", e.clone(), &self.vdim),
            ]
        };
        if self.bias {
            p.push(ParamDecl::weight("in_proj_bias", vec![e.mul(&3.into())], Init::Zeros));
        }
        if self.add_bias_kv {
            // fan_in = fan_out = E for a [1, 1, E] tensor.
            let init = Init::XavierNormal { fan_in: e.clone(), fan_out: e.clone() };
            for name in ["bias_k", "bias_v"] {
                p.push(ParamDecl::weight(name, vec![Dim::one(), Dim::one(), e.clone()], init.clone()));
            }
        }
        // As an nn.Linear: kaiming_uniform(a=sqrt(5)).
        p.push(ParamDecl::weight("out_proj.weight", vec![e.clone(), e.clone()], Init::UniformFan(e.clone())));
        if self.bias {
            p.push(ParamDecl::weight("out_proj.bias", vec![e.clone()], Init::Zeros));
        }
        p
    }

    /// Per batch element: projections `L*E*E` (query), `S*kdim*E` (key), `S*vdim*E` (value),
    /// `L*E*E` (output), and the core `L*S*E` for `Q K^T` plus `L*S*E` for `A V`, over every
    /// key position (a causal mask is applied to the scores, not skipped); biases excluded.
    fn cost(&self, inputs: &[TensorType], _: &[TensorType]) -> Cost {
        let (Some([q, k, _]), Ok(axes)) = (self.qkv(inputs), SeqAxes::of(inputs, 0, self.batch_first)) else {
            return Cost::Uncounted;
        };
        let e = &self.embed_dim;
        let (l, s) = (axes.len(q), axes.len(k));
        let extra = i64::from(self.add_bias_kv) + i64::from(self.add_zero_attn);
        let projections = l.mul(e).mul(e).mul(&2.into()).add(&s.mul(&self.kdim.add(&self.vdim)).mul(e));
        let core = l.mul(&s.add(&extra.into())).mul(e).mul(&2.into());
        Cost::Macs(axes.batch(q).mul(&projections.add(&core)))
    }
}

#[cfg(feature = "lower")]
impl Lower for MultiheadAttention {
    /// PyTorch's `_reset_parameters`: xavier-uniform projections, zero biases, xavier-normal
    /// `bias_k`/`bias_v`; `out_proj.weight` as an `nn.Linear`.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let in_proj = if self.packed() {
            InProj::Packed(ctx.weight("in_proj_weight")?)
        } else {
            InProj::Separate([
                ctx.weight("q_proj_weight")?,
                ctx.weight("k_proj_weight")?,
                ctx.weight("v_proj_weight")?,
            ])
        };
        let in_bias = if self.bias { Some(ctx.weight("in_proj_bias")?) } else { None };
        let bias_kv =
            if self.add_bias_kv { Some((ctx.weight("bias_k")?, ctx.weight("bias_v")?)) } else { None };
        let out_weight = ctx.weight("out_proj.weight")?;
        let out_bias = if self.bias { Some(ctx.weight("out_proj.bias")?) } else { None };
        let axes = SeqAxes::of(&ctx.inputs, 0, self.batch_first).map_err(|e| ctx.error(e.message))?;
        let key = &ctx.inputs[ctx.inputs.len().min(2) - 1];
        let (l, s) = (ctx.dim(&axes.len(&ctx.inputs[0]))?, ctx.dim(&axes.len(key))?);
        let extra_keys = usize::from(self.add_bias_kv) + usize::from(self.add_zero_attn);
        let causal = match self.causal {
            true => Some(causal_bias(l, s, extra_keys, ctx.dtype, ctx.device)?),
            false => None,
        };
        let head_dim = ctx.dim(&self.embed_dim)? / self.num_heads as usize;
        let attention = Attention {
            heads: self.num_heads as usize,
            in_proj,
            in_bias,
            bias_kv,
            zero_attn: self.add_zero_attn,
            out_weight,
            out_bias,
            core: Core { scale: 1.0 / (head_dim as f64).sqrt(), dropout: self.dropout, causal, extra_keys },
        };
        Ok(Box::new(move |xs: &[Tensor], ctx: &mut ForwardCtx| {
            let q = axes.to_batch_first(&xs[0])?;
            // Key and value that are the query's own tensor make self-attention (one product
            // for the packed projections), however they were passed.
            let kv_inputs = &xs[1..xs.len().min(3)];
            let kv = match kv_inputs {
                _ if kv_inputs.iter().all(|t| t.id() == xs[0].id()) => None,
                [kv] => Some((axes.to_batch_first(kv)?, axes.to_batch_first(kv)?)),
                [k, v, ..] => Some((axes.to_batch_first(k)?, axes.to_batch_first(v)?)),
                [] => None,
            };
            let mask = match xs.get(3) {
                Some(m) if axes.batch.is_none() => Some(m.unsqueeze(0)?),
                m => m.cloned(),
            };
            let kv = kv.as_ref().map(|(k, v)| (k, v));
            // Self-attention in a pass that carries layer states keeps a key-value cache.
            let cache = if kv.is_none() { ctx.state.as_deref_mut() } else { None };
            let y = attention.forward_cached(&q, kv, mask.as_ref(), ctx.train, cache)?;
            Ok(vec![axes.from_batch_first(&y)?])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    fn mha(extra: &[(&str, AttrValue)]) -> Box<dyn Op> {
        build(&MULTIHEAD_ATTENTION, &[&[("embed_dim", int(512)), ("num_heads", int(8))], extra].concat())
            .unwrap()
    }

    #[test]
    fn self_attention_of_nn_transformer() {
        let op = mha(&[]);
        let src = [f32(&[10, 32, 512])];
        assert_eq!(out_shape(&*op, &src), vec![10, 32, 512]);
        let names: Vec<_> = op.params(&src).iter().map(|p| p.name.to_string()).collect();
        assert_eq!(names, ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]);
        assert_eq!(count(&*op, &src, ParamKind::Weight), 4 * 512 * 512 + 4 * 512);
        // 32 * (4 * 10 * 512^2 + 2 * 10 * 10 * 512)
        assert_eq!(macs(&*op, &src), 32 * (4 * 10 * 262_144 + 102_400));
    }

    #[test]
    fn cross_attention_counts_key_projections_over_the_key_length() {
        let op = mha(&[]);
        let (tgt, memory) = (f32(&[20, 32, 512]), f32(&[10, 32, 512]));
        assert_eq!(out_shape(&*op, &[tgt.clone(), memory.clone()]), vec![20, 32, 512]);
        // q and out over 20 positions, k and v over 10; core 2 * 20 * 10 * 512.
        let expected = 32 * ((2 * 20 + 2 * 10) * 262_144 + 2 * 20 * 10 * 512);
        assert_eq!(macs(&*op, &[tgt.clone(), memory.clone()]), expected);
        assert_eq!(macs(&*op, &[tgt.clone(), memory.clone(), memory.clone()]), expected);
        let mask = TensorType::new(DType::Bool, vec![32.into(), 10.into()]);
        assert!(op.infer(&[tgt.clone(), memory.clone(), memory.clone(), mask]).is_ok());
        let bad = TensorType::new(DType::Bool, vec![32.into(), 20.into()]);
        let e = err(op.infer(&[tgt, memory.clone(), memory, bad]));
        assert_eq!(e.input, Some(3));
        assert!(e.message.contains("shape [32, 10]") && e.message.contains("[32, 20]"), "{}", e.message);
    }

    #[test]
    fn separate_projections_when_key_and_value_dims_differ() {
        let op = mha(&[("kdim", int(256)), ("vdim", int(128)), ("batch_first", AttrValue::Bool(true))]);
        let inputs = [f32(&[2, 7, 512]), f32(&[2, 9, 256]), f32(&[2, 9, 128])];
        assert_eq!(out_shape(&*op, &inputs), vec![2, 7, 512]);
        let shapes: Vec<_> =
            op.params(&inputs).into_iter().map(|p| (p.name.into_owned(), p.shape)).take(3).collect();
        assert_eq!(shapes[1], ("k_proj_weight".to_string(), vec![512.into(), 256.into()]));
        assert_eq!(shapes[2], ("v_proj_weight".to_string(), vec![512.into(), 128.into()]));
        let expected = 2 * (2 * 7 * 512 * 512 + 9 * (256 + 128) * 512 + 2 * 7 * 9 * 512);
        assert_eq!(macs(&*op, &inputs), expected);
        let e = err(op.infer(&[f32(&[2, 7, 512]), f32(&[2, 9, 512]), f32(&[2, 9, 128])]));
        assert!(e.message.contains("key features (kdim): expected 256, found 512"), "{}", e.message);
    }

    #[test]
    fn bias_kv_and_zero_attention_lengthen_the_keys() {
        let plain = mha(&[("bias", AttrValue::Bool(false))]);
        let x = [f32(&[5, 1, 512])];
        assert_eq!(count(&*plain, &x, ParamKind::Weight), 4 * 512 * 512);
        let op = mha(&[("add_bias_kv", AttrValue::Bool(true)), ("add_zero_attn", AttrValue::Bool(true))]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 4 * 512 * 512 + 4 * 512 + 2 * 512);
        assert_eq!(macs(&*op, &x) - macs(&*plain, &x), 2 * 5 * 2 * 512);
    }

    /// Parameter paths, MACs and error codes of a small spec.
    fn compile(body: &str) -> (Vec<String>, Option<i64>, Vec<String>) {
        let spec =
            format!("dim N = 2\nmodel M {{\n input x: [N, 7, 64]\n input m: [N, 5, 64]\n {body}\n}}\n");
        let c = crate::compile_source("m.wick", &spec, &crate::Options::default());
        let codes = c.diagnostics.items.iter().map(|d| format!("{} {}", d.code, d.message)).collect();
        let paths =
            c.graph.as_ref().map(|g| g.parameters().into_iter().map(|p| p.0).collect()).unwrap_or_default();
        let macs = c.summary(None).ok().and_then(|s| match s.macs {
            crate::report::DimValue::Int(v) => Some(v),
            _ => None,
        });
        (paths, macs, codes)
    }

    #[test]
    fn a_call_leaves_key_value_and_mask_out_from_the_end() {
        let (paths, macs, errors) = compile(
            "a = x |> sa: MultiheadAttention(64, 4, batch_first=true)\n \
             b = a |> ca: MultiheadAttention(64, 4, key=m, batch_first=true)\n output b",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(paths[..2], ["sa.in_proj_weight", "sa.in_proj_bias"]);
        assert_eq!(paths[4], "ca.in_proj_weight");
        // self: 2 * (4*7*64^2 + 2*7*7*64); cross: 2 * ((2*7 + 2*5)*64^2 + 2*7*5*64)
        assert_eq!(macs, Some(2 * (4 * 7 * 4096 + 2 * 49 * 64) + 2 * (24 * 4096 + 2 * 35 * 64)));
        let (_, _, errors) = compile(
            "input k: [N, 5] of bool\n \
             a = x |> MultiheadAttention(64, 4, key_padding_mask=k, batch_first=true)\n output a",
        );
        assert!(errors.iter().any(|e| e.starts_with("E0206") && e.contains("`key`")), "{errors:?}");
        let names = MULTIHEAD_ATTENTION.signature.arg_names();
        assert_eq!((names[0], names[1], names[names.len() - 3]), ("query", "embed_dim", "key"));
    }

    #[test]
    fn refuses_bad_heads_dims_and_layouts() {
        let e = err(build(&MULTIHEAD_ATTENTION, &[("embed_dim", int(512)), ("num_heads", int(7))]));
        assert_eq!(e.attr, Some("num_heads"));
        assert!(e.message.contains("divisible by `num_heads` 7"), "{}", e.message);
        let op = mha(&[]);
        let e = err(op.infer(&[f32(&[10, 32, 256])]));
        assert!(e.message.contains("query features (embed_dim): expected 512, found 256"), "{}", e.message);
        let e = err(op.infer(&[f32(&[10, 32, 512]), f32(&[10, 16, 512])]));
        assert!(e.message.contains("key batch"), "{}", e.message);
        let e = err(op.infer(&[f32(&[10, 32, 512]), f32(&[10, 512])]));
        assert!(e.message.contains("same layout"), "{}", e.message);
        let e = err(build(
            &MULTIHEAD_ATTENTION,
            &[("embed_dim", int(8)), ("num_heads", int(2)), ("dropout", AttrValue::Float(1.5))],
        ));
        assert_eq!(e.attr, Some("dropout"));
    }

    #[cfg(feature = "lower")]
    fn mask(rows: &[&[u8]]) -> candle_core::Tensor {
        let flat: Vec<u8> = rows.concat();
        let dims: &[usize] = if rows.len() == 1 { &[flat.len()] } else { &[rows.len(), rows[0].len()] };
        candle_core::Tensor::from_vec(flat, dims, &candle_core::Device::Cpu).unwrap()
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_self_attention_causal_and_padded() {
        use crate::lower::gradcheck::check_spec_with;
        // Packed, batch-first, causal, with a padding mask: L = 5, E = 6, 3 heads of 2.
        let spec = "model M { input x: [2, 5, 6]\n input m: [2, 5] of bool\n \
                    output y = x |> sa: MultiheadAttention(6, 3, key=x, value=x, key_padding_mask=m, \
                    batch_first=true, causal=true) }";
        let m = mask(&[&[0, 0, 0, 0, 0], &[0, 0, 1, 0, 1]]);
        check_spec_with(spec, true, &[("m", m)]).unwrap().assert_within(1e-6);
        // Sequence-first self-attention, one projection for all three.
        let spec = "model M { input x: [5, 3, 6]\n output y = x |> sa: MultiheadAttention(6, 2) }";
        check_spec_with(spec, true, &[]).unwrap().assert_within(1e-6);
        // Unbatched [L, E], causal, with a [S] mask.
        let spec = "model M { input x: [5, 4]\n input m: [5] of bool\n \
                    output y = x |> sa: MultiheadAttention(4, 2, key=x, value=x, key_padding_mask=m, \
                    causal=true) }";
        check_spec_with(spec, true, &[("m", mask(&[&[0, 1, 0, 0, 1]]))]).unwrap().assert_within(1e-6);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_cross_attention_separate_projections_bias_kv_zero_attn() {
        use crate::lower::gradcheck::check_spec;
        // Sequence-first cross-attention: 3 queries over 5 keys.
        let spec = "model M { input q: [3, 2, 6]\n input mem: [5, 2, 6]\n \
                    output y = q |> ca: MultiheadAttention(6, 3, key=mem) }";
        check_spec(spec, true).unwrap().assert_within(1e-6);
        // kdim 4 and vdim 7 (separate weights), bias_k/bias_v, a zero key, an additive float
        // mask (whose gradient is checked too).
        let spec = "model M { input q: [2, 3, 6]\n input k: [2, 5, 4]\n input v: [2, 5, 7]\n \
                    input m: [2, 5]\n output y = q |> ca: MultiheadAttention(6, 2, key=k, value=v, \
                    key_padding_mask=m, kdim=4, vdim=7, add_bias_kv=true, add_zero_attn=true, \
                    batch_first=true) }";
        check_spec(spec, true).unwrap().assert_within(1e-6);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn dropout_acts_on_the_attention_weights_in_training_only() {
        use candle_core::{DType, Device, Tensor};
        // p = 1 drops every weight: the output is out_proj.bias alone.
        let spec = "model M { input x: [2, 3, 4]\n \
                    output y = x |> sa: MultiheadAttention(4, 2, dropout=1.0, batch_first=true) }";
        let model = crate::Model::from_source("d.wick", spec, &crate::Options::default()).unwrap();
        let net = model.build(&Device::Cpu, DType::F64).unwrap();
        let bias = Tensor::new(&[0.5f64, -1.0, 2.0, 3.0], &Device::Cpu).unwrap();
        net.params().get("sa.out_proj.bias").unwrap().set(&bias).unwrap();
        let x = Tensor::randn(0f64, 1.0, (2, 3, 4), &Device::Cpu).unwrap();
        let y = net.forward(std::slice::from_ref(&x), true).unwrap().remove(0);
        let expected = bias.broadcast_as((2, 3, 4)).unwrap();
        let diff = (y - &expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        assert_eq!(diff, 0.0);
        let y = net.forward(&[x], false).unwrap().remove(0);
        let diff = (y - expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(diff > 1e-3);
    }
}
