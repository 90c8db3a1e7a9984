//! ResNet-18 three ways: the catalog spec lowered by wick; wick's kernels in straight-line
//! code (torchvision's `resnet.py` written out); and candle-nn's layers.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{batch_norm, conv2d_no_bias, linear as stock_linear, Conv2dConfig, VarBuilder};
use wick::lower::kernels::activation::relu;
use wick::lower::kernels::conv::{conv, ConvGeometry};
use wick::lower::kernels::norm::BatchNorm;
use wick::lower::kernels::pad::PadMode;
use wick::lower::kernels::pool::{adaptive_matrix, max_pool, Axis, Separable, Windows};
use wick::lower::ParamStore;
use wick::ops::linear::linear;

use crate::{buffer, param, stock_vars, Case};

/// (planes, stride of the first block) of the four stages of two basic blocks each.
const STAGES: [(usize, usize); 4] = [(64, 1), (128, 2), (256, 2), (512, 2)];

/// Batch 8 at 3x64x64 for the measurement; batch 2 at 3x32x32 in a smoke run.
pub fn case(full: bool) -> Case {
    let (batch, side) = if full { (8, 64) } else { (2, 32) };
    // The catalog's spec, its image `side` pixels square (`dim H = 224` bound).
    let side_dim = side as i64;
    let bind = vec![("N".into(), batch as i64), ("H".into(), side_dim), ("W".into(), side_dim)];
    let opts = wick::Options { bind, ..Default::default() };
    let model = wick::Model::from_file("specs/resnet18.wick", &opts).expect("resnet18 spec");
    let wick = model.build_seeded(&Device::Cpu, DType::F32, 18).expect("build resnet18");
    let input = Tensor::randn(0f32, 1.0, (batch, 3, side, side), &Device::Cpu).expect("input");
    let direct = Direct::new(wick.params(), side).expect("direct resnet18");
    let stock = Stock::new(stock_vars(wick.params()).expect("weights"), side).expect("candle-nn resnet18");
    Case {
        name: "resnet18".into(),
        wick,
        input,
        direct: Box::new(move |x, train| direct.forward(x, train)),
        stock: Box::new(move |x, train| stock.forward(x, train)),
    }
}

/// The stem's max pool, 3x3 stride 2 padding 1, on a `side` x `side` image, as wick lowers it.
fn stem_pool(side: usize) -> Result<(Windows, Axis)> {
    let axis =
        Axis { input: side, output: (side - 1) / 2 + 1, kernel: 3, stride: 2, padding: 1, dilation: 1 };
    Ok((Windows::new(axis, axis, &Device::Cpu)?, axis))
}

/// A convolution without bias on wick's kernel, and its output side.
struct Conv {
    weight: Tensor,
    geometry: ConvGeometry,
}

impl Conv {
    fn new(p: &ParamStore, path: &str, side: usize, stride: usize, padding: usize) -> (Conv, usize) {
        let weight = param(p, &format!("{path}.weight"));
        let k = weight.dims()[3];
        let out = (side + 2 * padding - k) / stride + 1;
        let geometry = ConvGeometry {
            kernel: vec![k; 2],
            stride: vec![stride; 2],
            padding: vec![(padding, padding); 2],
            dilation: vec![1; 2],
            groups: 1,
            mode: PadMode::Zeros,
            output: vec![out; 2],
        };
        (Conv { weight, geometry }, out)
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        conv(x, &self.weight, None, &self.geometry, train)
    }
}

fn bn(p: &ParamStore, path: &str) -> BatchNorm {
    BatchNorm {
        weight: Some(param(p, &format!("{path}.weight"))),
        bias: Some(param(p, &format!("{path}.bias"))),
        running: Some((
            buffer(p, &format!("{path}.running_mean")),
            buffer(p, &format!("{path}.running_var")),
        )),
        eps: 1e-5,
        momentum: 0.1,
    }
}

struct Block {
    conv1: (Conv, BatchNorm),
    conv2: (Conv, BatchNorm),
    downsample: Option<(Conv, BatchNorm)>,
}

impl Block {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let unit = |(c, bn): &(Conv, BatchNorm), x: &Tensor| bn.forward(&c.forward(x, train)?, train);
        let y = unit(&self.conv2, &relu(&unit(&self.conv1, x)?)?)?;
        let skip = match &self.downsample {
            Some(d) => unit(d, x)?,
            None => x.clone(),
        };
        relu(&y.broadcast_add(&skip)?)
    }
}

/// wick's kernels in straight-line code, on the lowered model's own variables.
struct Direct {
    conv1: Conv,
    bn1: BatchNorm,
    pool: (Windows, Axis),
    blocks: Vec<Block>,
    avgpool: Separable,
    fc: (Tensor, Tensor),
}

impl Direct {
    fn new(p: &ParamStore, side: usize) -> Result<Direct> {
        let (conv1, side) = Conv::new(p, "conv1", side, 2, 3);
        let pool = stem_pool(side)?;
        let (mut side, mut cin, mut blocks) = (pool.1.output, 64, Vec::new());
        for (s, (planes, stride)) in STAGES.into_iter().enumerate() {
            for b in 0..2 {
                let (path, stride) = (format!("layer{}.{b}", s + 1), if b == 0 { stride } else { 1 });
                let (c1, out) = Conv::new(p, &format!("{path}.conv1"), side, stride, 1);
                let (c2, _) = Conv::new(p, &format!("{path}.conv2"), out, 1, 1);
                let downsample = (stride != 1 || cin != planes).then(|| {
                    let (c, _) = Conv::new(p, &format!("{path}.downsample.0"), side, stride, 0);
                    (c, bn(p, &format!("{path}.downsample.1")))
                });
                let conv1 = (c1, bn(p, &format!("{path}.bn1")));
                blocks.push(Block { conv1, conv2: (c2, bn(p, &format!("{path}.bn2"))), downsample });
                (side, cin) = (out, planes);
            }
        }
        let bins = adaptive_matrix(side, 1);
        let avgpool =
            Separable::new(bins.clone(), (1, side), bins, (1, side), None, DType::F32, &Device::Cpu)?;
        let fc = (param(p, "fc.weight"), param(p, "fc.bias"));
        Ok(Direct { conv1, bn1: bn(p, "bn1"), pool, blocks, avgpool, fc })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let stem = relu(&self.bn1.forward(&self.conv1.forward(x, train)?, train)?)?;
        let (index, axis) = &self.pool;
        let mut x = max_pool(&stem, index, *axis, *axis)?;
        drop(stem);
        for block in &self.blocks {
            x = block.forward(&x, train)?;
        }
        let x = self.avgpool.apply(&x)?;
        let x = x.reshape((x.dim(0)?, x.elem_count() / x.dim(0)?))?;
        linear(&x, &self.fc.0, Some(&self.fc.1))
    }
}

struct StockBlock {
    conv1: (candle_nn::Conv2d, candle_nn::BatchNorm),
    conv2: (candle_nn::Conv2d, candle_nn::BatchNorm),
    downsample: Option<(candle_nn::Conv2d, candle_nn::BatchNorm)>,
}

type StockUnit = (candle_nn::Conv2d, candle_nn::BatchNorm);

fn stock_unit(
    vb: &VarBuilder,
    path: &str,
    bn: &str,
    (cin, cout, k): (usize, usize, usize),
    cfg: Conv2dConfig,
) -> Result<StockUnit> {
    Ok((conv2d_no_bias(cin, cout, k, cfg, vb.pp(path))?, batch_norm(cout, 1e-5, vb.pp(bn))?))
}

impl StockBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let unit = |(c, bn): &StockUnit, x: &Tensor| x.apply(c)?.apply_t(bn, train);
        let y = unit(&self.conv2, &unit(&self.conv1, x)?.relu()?)?;
        let skip = match &self.downsample {
            Some(d) => unit(d, x)?,
            None => x.clone(),
        };
        (y + skip)?.relu()
    }
}

/// candle-nn's layers on copies of the weights.
struct Stock {
    stem: StockUnit,
    blocks: Vec<StockBlock>,
    fc: candle_nn::Linear,
    /// wick's max pool, for training: candle 0.11 has no max-pool backward for kernel != stride.
    pool: (Windows, Axis),
}

impl Stock {
    fn new(vb: VarBuilder, side: usize) -> Result<Stock> {
        let cfg = |stride: usize, padding: usize| Conv2dConfig { stride, padding, ..Default::default() };
        let stem = stock_unit(&vb, "conv1", "bn1", (3, 64, 7), cfg(2, 3))?;
        let (mut cin, mut blocks) = (64, Vec::new());
        for (s, (planes, stride)) in STAGES.into_iter().enumerate() {
            for b in 0..2 {
                let (path, stride) = (format!("layer{}.{b}", s + 1), if b == 0 { stride } else { 1 });
                let at = |name: &str| format!("{path}.{name}");
                let conv1 = stock_unit(&vb, &at("conv1"), &at("bn1"), (cin, planes, 3), cfg(stride, 1))?;
                let conv2 = stock_unit(&vb, &at("conv2"), &at("bn2"), (planes, planes, 3), cfg(1, 1))?;
                let downsample = match stride != 1 || cin != planes {
                    true => Some(stock_unit(
                        &vb,
                        &at("downsample.0"),
                        &at("downsample.1"),
                        (cin, planes, 1),
                        cfg(stride, 0),
                    )?),
                    false => None,
                };
                blocks.push(StockBlock { conv1, conv2, downsample });
                cin = planes;
            }
        }
        let fc = stock_linear(512, 1000, vb.pp("fc"))?;
        Ok(Stock { stem, blocks, fc, pool: stem_pool((side - 1) / 2 + 1)? })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (conv1, bn1) = &self.stem;
        let x = x.apply(conv1)?.apply_t(bn1, train)?.relu()?;
        let mut x = match train {
            true => max_pool(&x, &self.pool.0, self.pool.1, self.pool.1)?,
            // candle's max pool does not pad; zeros do as well as -inf after a ReLU.
            false => x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?.max_pool2d_with_stride(3, 2)?,
        };
        for block in &self.blocks {
            x = block.forward(&x, train)?;
        }
        x.mean((2, 3))?.apply(&self.fc)
    }
}
