//! A 4-layer transformer encoder three ways: `encoder.wick` lowered by wick; wick's kernels in
//! straight-line code (`nn.TransformerEncoderLayer`'s forward written out); and candle-nn's
//! layers with a hand-written attention.

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::ops::{dropout as stock_dropout, layer_norm_slow, softmax, softmax_last_dim};
use candle_nn::{layer_norm as stock_layer_norm, linear as stock_linear, LayerNorm, Linear, VarBuilder};
use wick::lower::kernels::activation::{dropout, relu};
use wick::lower::kernels::attention::{Attention, Core, InProj};
use wick::lower::kernels::norm::layer_norm;
use wick::lower::ParamStore;
use wick::ops::linear::linear;

use crate::{param, stock_vars, Case};

const LAYERS: usize = 4;
const D_MODEL: usize = 256;
const HEADS: usize = 4;
const FF: usize = 1024;
/// The layers' dropout (PyTorch's default), in training only.
const P: f64 = 0.1;
const EPS: f64 = 1e-5;

/// Batch 8 of 128 tokens for the measurement; batch 2 of 8 in a smoke run.
pub fn case(full: bool) -> Case {
    let (batch, tokens) = if full { (8, 128) } else { (2, 8) };
    let path = "benches/executor/encoder.wick";
    let opts = wick::Options {
        bind: vec![("N".into(), batch as i64), ("T".into(), tokens as i64)],
        ..Default::default()
    };
    let model = wick::Model::from_file(path, &opts).expect("encoder spec");
    let wick = model.build_seeded(&Device::Cpu, DType::F32, 4).expect("build encoder");
    let input = Tensor::randn(0f32, 1.0, (batch, tokens, D_MODEL), &Device::Cpu).expect("input");
    let direct: Vec<Layer> = (0..LAYERS).map(|i| Layer::new(wick.params(), i)).collect();
    let vb = stock_vars(wick.params()).expect("weights");
    let stock =
        (0..LAYERS).map(|i| StockLayer::new(&vb, i)).collect::<Result<Vec<_>>>().expect("candle-nn encoder");
    Case {
        name: "transformer encoder".into(),
        wick,
        input,
        direct: Box::new(move |x, train| direct.iter().try_fold(x.clone(), |x, l| l.forward(&x, train))),
        stock: Box::new(move |x, train| stock.iter().try_fold(x.clone(), |x, l| l.forward(&x, train))),
    }
}

fn prefix(i: usize) -> String {
    format!("encoder.layers.{i}")
}

/// Dropout as wick's Dropout layer lowers it.
fn dropout_layer(x: &Tensor, train: bool) -> Result<Tensor> {
    if train {
        dropout(x, P)
    } else {
        Ok(x.clone())
    }
}

/// One post-norm layer on wick's kernels, on the lowered model's own variables.
struct Layer {
    attention: Attention,
    norm1: [Tensor; 2],
    linear1: [Tensor; 2],
    linear2: [Tensor; 2],
    norm2: [Tensor; 2],
}

impl Layer {
    fn new(p: &ParamStore, i: usize) -> Layer {
        let at = |name: &str| param(p, &format!("{}.{name}", prefix(i)));
        let pair = |name: &str| [at(&format!("{name}.weight")), at(&format!("{name}.bias"))];
        let attention = Attention {
            heads: HEADS,
            in_proj: InProj::Packed(at("self_attn.in_proj_weight")),
            in_bias: Some(at("self_attn.in_proj_bias")),
            bias_kv: None,
            zero_attn: false,
            out_weight: at("self_attn.out_proj.weight"),
            out_bias: Some(at("self_attn.out_proj.bias")),
            core: Core {
                scale: 1.0 / ((D_MODEL / HEADS) as f64).sqrt(),
                dropout: P,
                causal: None,
                extra_keys: 0,
            },
        };
        Layer {
            attention,
            norm1: pair("norm1"),
            linear1: pair("linear1"),
            linear2: pair("linear2"),
            norm2: pair("norm2"),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let norm = |x: &Tensor, [w, b]: &[Tensor; 2]| layer_norm(x, 1, Some(w), Some(b), EPS);
        let attended = dropout_layer(&self.attention.forward(x, None, None, train)?, train)?;
        let h = norm(&x.broadcast_add(&attended)?, &self.norm1)?;
        let [w1, b1] = &self.linear1;
        let [w2, b2] = &self.linear2;
        let fed = dropout_layer(&relu(&linear(&h, w1, Some(b1))?)?, train)?;
        let fed = dropout_layer(&linear(&fed, w2, Some(b2))?, train)?;
        norm(&h.broadcast_add(&fed)?, &self.norm2)
    }
}

/// One layer on candle-nn's linear and layer norm, with the attention a candle user writes.
struct StockLayer {
    in_proj: Linear,
    out_proj: Linear,
    linear1: Linear,
    linear2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
}

impl StockLayer {
    fn new(vb: &VarBuilder, i: usize) -> Result<StockLayer> {
        let vb = vb.pp(prefix(i));
        // nn.MultiheadAttention's packed projection is a Linear under other names.
        let in_proj = Linear::new(
            vb.get((3 * D_MODEL, D_MODEL), "self_attn.in_proj_weight")?,
            Some(vb.get(3 * D_MODEL, "self_attn.in_proj_bias")?),
        );
        Ok(StockLayer {
            in_proj,
            out_proj: stock_linear(D_MODEL, D_MODEL, vb.pp("self_attn.out_proj"))?,
            linear1: stock_linear(D_MODEL, FF, vb.pp("linear1"))?,
            linear2: stock_linear(FF, D_MODEL, vb.pp("linear2"))?,
            norm1: stock_layer_norm(D_MODEL, EPS, vb.pp("norm1"))?,
            norm2: stock_layer_norm(D_MODEL, EPS, vb.pp("norm2"))?,
        })
    }

    fn attention(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (n, t, e) = x.dims3()?;
        let d = e / HEADS;
        let qkv = x.apply(&self.in_proj)?;
        let heads =
            |i: usize| qkv.narrow(2, i * e, e)?.reshape((n, t, HEADS, d))?.transpose(1, 2)?.contiguous();
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?;
        // candle-nn's fused softmax has no backward: training takes the generic one.
        let weights = match train {
            true => stock_dropout(&softmax(&scores, D::Minus1)?, P as f32)?,
            false => softmax_last_dim(&scores)?,
        };
        weights.matmul(&v)?.transpose(1, 2)?.reshape((n, t, e))?.apply(&self.out_proj)
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        // candle-nn's fused layer norm has no backward: training takes its unfused one.
        let norm = |x: &Tensor, ln: &LayerNorm| match (train, ln.bias()) {
            (true, Some(b)) => layer_norm_slow(x, ln.weight(), b, EPS as f32),
            _ => x.apply(ln),
        };
        let drop = |x: Tensor| if train { stock_dropout(&x, P as f32) } else { Ok(x) };
        let h = norm(&(x + drop(self.attention(x, train)?)?)?, &self.norm1)?;
        let fed = drop(h.apply(&self.linear1)?.relu()?)?;
        let fed = drop(fed.apply(&self.linear2)?)?;
        norm(&(h + fed)?, &self.norm2)
    }
}
