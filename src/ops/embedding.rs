//! `Embedding(num_embeddings, embedding_dim, padding_idx=none)`: a learned table looked up by
//! integer ids, PyTorch layout.

#[cfg(feature = "lower")]
use candle_core::Tensor;

use super::signature::{attr, AttrType, Default, Inputs};
use super::Init;
use super::{Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{DType, TensorType};
#[cfg(feature = "lower")]
use crate::lower::{unary, Forward, Lower, LowerCtx, LowerError};

pub static EMBEDDING: OpDef = OpDef {
    name: "Embedding",
    signature: Signature {
        inputs: Inputs::Fixed(&["ids"]),
        attrs: &[
            attr("num_embeddings", AttrType::Int, Default::Required),
            attr("embedding_dim", AttrType::Int, Default::Required),
            // Kept for the lowering (that row starts at zero and gets no gradient); counts as usual.
            attr("padding_idx", AttrType::Int, Default::Optional),
        ],
    },
    build: |a: &Attrs| {
        let num_embeddings = a.dim_at_least("num_embeddings", 1)?;
        let embedding_dim = a.dim_at_least("embedding_dim", 1)?;
        let padding_idx = a.opt_int("padding_idx")?;
        if let (Some(p), Some(n)) = (padding_idx, num_embeddings.as_const()) {
            if !(-n..n).contains(&p) {
                return Err(OpError::new(format!(
                    "`padding_idx` must be within the table, in [-{n}, {n}), found {p}"
                ))
                .attr("padding_idx"));
            }
        }
        Ok(Box::new(Embedding { num_embeddings, embedding_dim, padding_idx }))
    },
};

#[derive(Debug)]
pub struct Embedding {
    pub num_embeddings: Dim,
    pub embedding_dim: Dim,
    pub padding_idx: Option<i64>,
}

/// Refuses anything but integer ids: a float tensor reaching an embedding is a wiring mistake.
pub fn expect_ids(x: &TensorType, index: usize) -> Result<(), OpError> {
    if matches!(x.dtype, DType::I64 | DType::I32) {
        return Ok(());
    }
    Err(OpError::new(format!("expected integer ids (i64 or i32), found a {} tensor {x}", x.dtype))
        .input(index)
        .help("declare the input as token ids, e.g. `input ids: [N, T] of i64`"))
}

impl Op for Embedding {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let ids = &inputs[0];
        expect_ids(ids, 0)?;
        let mut shape = ids.shape.clone();
        shape.push(self.embedding_dim.clone());
        Ok(vec![TensorType::new(DType::F32, shape)])
    }

    fn params(&self, _: &[TensorType]) -> Vec<ParamDecl> {
        vec![ParamDecl::weight(
            "weight",
            vec![self.num_embeddings.clone(), self.embedding_dim.clone()],
            Init::Normal { mean: 0.0, std: 1.0 },
        )]
    }

    /// A gather: no multiply-accumulates.
    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

#[cfg(feature = "lower")]
impl Lower for Embedding {
    /// A row lookup (`index_select`, whose backward sums the gradients of repeated ids).
    /// PyTorch starts the `padding_idx` row at zero and never gives it a gradient: its lookups
    /// are detached.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let rows = ctx.dim(&self.num_embeddings)?;
        let weight = ctx.weight("weight")?;
        let pad = self.padding_idx.map(|p| if p < 0 { p + rows as i64 } else { p } as usize);
        if let Some(p) = pad {
            let key = self.params(&ctx.inputs)[0].path_under(ctx.path());
            if let Some(var) = ctx.store.get(&key) {
                let zeroed = var
                    .as_tensor()
                    .slice_assign(&[p..p + 1, 0..weight.dim(1)?], &weight.narrow(0, p, 1)?.zeros_like()?)?;
                var.set(&zeroed)?;
            }
        }
        Ok(unary(move |ids, _| lookup(&weight, ids, pad)))
    }
}

/// Rows of `weight` at `ids` (any shape, integer), with the rows of `pad` detached.
#[cfg(feature = "lower")]
fn lookup(weight: &Tensor, ids: &Tensor, pad: Option<usize>) -> candle_core::Result<Tensor> {
    let ids = match ids.dtype() {
        candle_core::DType::U8 | candle_core::DType::U32 | candle_core::DType::I64 => ids.clone(),
        _ => ids.to_dtype(candle_core::DType::I64)?,
    };
    let flat = ids.flatten_all()?;
    let mut rows = weight.index_select(&flat, 0)?;
    if let Some(p) = pad {
        let is_pad = flat.eq(p as f64)?.unsqueeze(1)?.broadcast_as(rows.shape())?;
        rows = is_pad.where_cond(&rows.detach(), &rows)?;
    }
    let mut shape = ids.dims().to_vec();
    shape.push(weight.dim(1)?);
    rows.reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{build, count, err, f32, int, macs, out_shape};
    use crate::ops::ParamKind;

    fn ids(shape: &[i64]) -> TensorType {
        TensorType::new(DType::I64, shape.iter().map(|d| Dim::konst(*d)).collect())
    }

    #[test]
    fn bert_word_embeddings() {
        let op = build(&EMBEDDING, &[("num_embeddings", int(30522)), ("embedding_dim", int(768))]).unwrap();
        let x = [ids(&[1, 512])];
        assert_eq!(out_shape(&*op, &x), vec![1, 512, 768]);
        assert_eq!(op.infer(&x).unwrap()[0].dtype, DType::F32);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 30522 * 768);
        assert_eq!(macs(&*op, &x), 0);
        let i32_ids = TensorType::new(DType::I32, vec![Dim::sym("N")]);
        let out = op.infer(&[i32_ids]).unwrap();
        assert_eq!(out[0].shape, vec![Dim::sym("N"), 768.into()]);
    }

    #[test]
    fn refuses_float_input() {
        let op = build(&EMBEDDING, &[("num_embeddings", int(10)), ("embedding_dim", int(4))]).unwrap();
        let e = err(op.infer(&[f32(&[2, 5])]));
        assert_eq!(e.input, Some(0));
        assert!(e.message.contains("integer ids") && e.message.contains("f32"), "{}", e.message);
    }

    #[test]
    fn checks_padding_idx_and_sizes() {
        let a = |p: i64| [("num_embeddings", int(10)), ("embedding_dim", int(4)), ("padding_idx", int(p))];
        assert!(build(&EMBEDDING, &a(-10)).is_ok());
        let e = err(build(&EMBEDDING, &a(10)));
        assert_eq!(e.attr, Some("padding_idx"));
        assert!(e.message.contains("[-10, 10)") && e.message.contains("found 10"), "{}", e.message);
        let e = err(build(&EMBEDDING, &[("num_embeddings", int(0)), ("embedding_dim", int(4))]));
        assert!(e.message.contains("`num_embeddings` must be at least 1, found 0"), "{}", e.message);
    }

    #[cfg(feature = "lower")]
    fn id_tensor(rows: &[[i64; 3]; 2]) -> Tensor {
        Tensor::new(rows, &candle_core::Device::Cpu).unwrap()
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_with_repeated_ids() {
        let spec = "model M { input ids: [2, 3] of i64\n output y = ids |> emb: Embedding(7, 5) }";
        let given = [("ids", id_tensor(&[[1, 4, 1], [6, 0, 4]]))];
        crate::lower::gradcheck::check_spec_with(spec, true, &given).unwrap().assert_within(1e-6);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn padding_row_starts_at_zero_and_gets_no_gradient() {
        use candle_core::{DType, Device};
        let grad_of = |padding: &str| {
            let spec = format!(
                "model M {{ input ids: [2, 3] of i64\n output y = ids |> emb: Embedding(7, 5{padding}) }}"
            );
            let model = crate::Model::from_source("e.wick", &spec, &crate::Options::default()).unwrap();
            let net = model.build(&Device::Cpu, DType::F64).unwrap();
            let w = net.params().get("emb.weight").unwrap().clone();
            let start = w.as_tensor().to_vec2::<f64>().unwrap();
            let y = net.forward(&[id_tensor(&[[1, 4, 1], [6, 0, 4]])], true).unwrap().remove(0);
            assert_eq!(y.to_vec3::<f64>().unwrap()[0][1], start[4]);
            let probe = Tensor::arange(0.0f64, 30.0, &Device::Cpu).unwrap().reshape((2, 3, 5)).unwrap();
            let g = net.backward(&(y * probe).unwrap().sum_all().unwrap()).unwrap();
            (start, g.get(w.as_tensor()).unwrap().to_vec2::<f64>().unwrap())
        };
        let (_, plain) = grad_of("");
        let (start, padded) = grad_of(", padding_idx=-3");
        assert_eq!(start[4], vec![0.0; 5]);
        let zero = vec![0.0; 5];
        for (row, (p, g)) in plain.iter().zip(&padded).enumerate() {
            assert_eq!(g, if row == 4 { &zero } else { p }, "row {row}");
        }
        // Id 1 is looked up twice: its gradient is the sum of two probe rows.
        assert_eq!(plain[1][0], 0.0 + 10.0);
    }
}
