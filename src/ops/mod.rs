//! The op library: one file per op (or per family of stateless ops), one registry line each.
//!
//! Each op declares the four duties of the op contract: its [`Signature`], shape and dtype
//! inference ([`Op::infer`]), its parameters and buffers ([`Op::params`]) and its cost
//! ([`Op::cost`]). With the `lower` feature, the same file lowers the op to candle
//! (`crate::lower::Lower`), with a gradient check in its tests; [`Op`] itself names no candle
//! type, so the compiler half builds without the backend.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;

pub mod signature;

pub mod activation;
pub mod adaptive_pool;
pub mod attention;
pub mod batchnorm;
pub mod bias;
pub mod class_token;
pub mod concat;
pub mod constant_input;
pub mod conv;
pub mod conv_transpose;
pub mod cumsum;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod equal_conv;
pub mod equal_linear;
pub mod expand;
pub mod flatten;
pub mod flip;
pub mod geometry;
pub mod identity;
pub mod init;
pub mod init_scheme;
pub mod input;
pub mod layernorm;
pub mod layernorm2d;
pub mod linear;
pub mod matmul;
pub mod minibatch_std;
pub mod modulated_conv;
pub mod noise_injection;
pub mod norm;
pub mod opaque;
pub mod pad;
pub mod parameter;
pub mod patch_merging_pad;
pub mod permute;
pub mod pointwise;
pub mod pool;
pub mod positions;
pub mod randn_like;
pub mod reduce;
pub mod reshape;
pub mod rnn;
pub mod roll;
pub mod scale;
pub mod sequence;
pub mod shifted_window_attention;
pub mod slice;
pub mod split;
pub mod stochastic_depth;
pub mod upsample;
pub mod variance;
pub mod where_mask;
pub mod zeros_like;
// Llama (issue 13).
pub mod rotary;
pub mod scaled_dot_product_attention;

pub use init::Init;
pub use signature::{AttrSpec, AttrType, AttrValue, Attrs, Default, Inputs, OpError, Signature};

/// Whether a tensor of an op is learned or carried state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Learned by gradient descent (unless the layer is frozen).
    Weight,
    /// State that is saved but not learned (BatchNorm running statistics).
    Buffer,
    /// A constant int64 table the op computes from its configuration, saved and loaded under
    /// its key as PyTorch keeps it (Swin's `relative_position_index`); neither learned nor a
    /// running statistic, so counted in neither figure.
    Index,
}

/// One parameter or buffer of an op instance, named as PyTorch names it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// The last segment of its path (`weight`, or per layer for recurrent ones:
    /// `weight_hh_l1_reverse`), or empty for a bare `nn.Parameter` that a module holds
    /// directly, whose path is the layer's own (torchvision ViT's `class_token`).
    pub name: Cow<'static, str>,
    pub shape: Vec<Dim>,
    pub kind: ParamKind,
    /// How it starts: the one statement of it, which the lowering draws from.
    pub init: Init,
}

impl ParamDecl {
    pub fn weight(name: impl Into<Cow<'static, str>>, shape: Vec<Dim>, init: Init) -> ParamDecl {
        ParamDecl { name: name.into(), shape, kind: ParamKind::Weight, init }
    }

    pub fn buffer(name: impl Into<Cow<'static, str>>, shape: Vec<Dim>, init: Init) -> ParamDecl {
        ParamDecl { name: name.into(), shape, kind: ParamKind::Buffer, init }
    }

    pub fn index(name: impl Into<Cow<'static, str>>, shape: Vec<Dim>) -> ParamDecl {
        ParamDecl { name: name.into(), shape, kind: ParamKind::Index, init: Init::Computed }
    }

    /// Its full dotted path when the layer holding it is at `layer`.
    pub fn path_under(&self, layer: &str) -> String {
        match (layer.is_empty(), self.name.is_empty()) {
            (_, true) => layer.to_string(),
            (true, false) => self.name.to_string(),
            (false, false) => format!("{layer}.{}", self.name),
        }
    }
}

/// Whether parameter `name` is a bias (`bias`, `in_proj_bias`, `bias_ih_l0`): `bias_init`'s,
/// where every other learned parameter is `init`'s.
pub fn is_bias(name: &str) -> bool {
    name.starts_with("bias") || name.ends_with("bias")
}

/// The compute cost of one op instance.
#[derive(Clone, Debug, PartialEq)]
pub enum Cost {
    /// Multiply-accumulates under the summary's convention (zero for ops it does not count).
    Macs(Dim),
    /// The op has no cost rule: shown as uncounted, never as 0.
    Uncounted,
}

/// What an op is besides its [`Op`] half: with the `lower` feature, its lowering
/// ([`crate::lower::Lower`], in the op's own file); without it, nothing.
#[cfg(feature = "lower")]
pub use crate::lower::Lower as Backend;
/// What an op is besides its [`Op`] half: without the `lower` feature, nothing.
#[cfg(not(feature = "lower"))]
pub trait Backend {}
#[cfg(not(feature = "lower"))]
impl<T: ?Sized> Backend for T {}

/// An op instance with its attributes resolved.
pub trait Op: fmt::Debug + Send + Sync + Backend {
    /// Output types from input types, or what was expected and what was found.
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError>;

    /// Parameters and buffers, given the input types `infer` accepted.
    fn params(&self, _inputs: &[TensorType]) -> Vec<ParamDecl> {
        Vec::new()
    }

    /// Cost of one forward pass, given the types `infer` accepted and returned.
    fn cost(&self, inputs: &[TensorType], outputs: &[TensorType]) -> Cost;

    /// Where this op's cost rule departs from the usual convention, a line for the summary.
    fn cost_note(&self) -> Option<&'static str> {
        None
    }
}

/// A registered op: its name, signature and how to build an instance from bound attributes.
pub struct OpDef {
    pub name: &'static str,
    pub signature: Signature,
    pub build: fn(&Attrs) -> Result<Box<dyn Op>, OpError>,
}

impl fmt::Debug for OpDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpDef({})", self.name)
    }
}

/// Every op, one line each.
static OPS: &[&OpDef] = &[
    &linear::LINEAR,
    &conv::CONV1D,
    &conv::CONV2D,
    &conv_transpose::CONV_TRANSPOSE2D,
    &pool::MAX_POOL2D,
    &pool::AVG_POOL2D,
    &adaptive_pool::ADAPTIVE_AVG_POOL2D,
    &adaptive_pool::GLOBAL_AVG_POOL,
    &batchnorm::BATCH_NORM1D,
    &batchnorm::BATCH_NORM2D,
    &layernorm::LAYER_NORM,
    &layernorm2d::LAYER_NORM2D,
    &dropout::DROPOUT,
    &stochastic_depth::STOCHASTIC_DEPTH,
    &flatten::FLATTEN,
    &reshape::RESHAPE,
    &permute::PERMUTE,
    &permute::TRANSPOSE,
    &activation::RELU,
    &activation::RELU6,
    &activation::LEAKY_RELU,
    &activation::ELU,
    &activation::GELU,
    &activation::SILU,
    &activation::SIGMOID,
    &activation::TANH,
    &activation::EXP,
    &activation::HARDTANH,
    &activation::HARDSWISH,
    &activation::HARDSIGMOID,
    &activation::SOFTPLUS,
    &activation::SOFTMAX,
    &activation::LOG_SOFTMAX,
    &elementwise::ADD,
    &elementwise::SUB,
    &elementwise::MUL,
    &elementwise::DIV,
    &concat::CONCAT,
    &identity::IDENTITY,
    &embedding::EMBEDDING,
    &positions::SINUSOIDAL_POSITIONS,
    &positions::LEARNED_POSITIONS,
    &positions::POSITION_PARAMETER,
    &class_token::CLASS_TOKEN,
    &class_token::SELECT_TOKEN,
    &attention::MULTIHEAD_ATTENTION,
    &matmul::MATMUL,
    &zeros_like::ZEROS_LIKE,
    &rnn::LSTM,
    &rnn::GRU,
    &rnn::RNN,
    &norm::GROUP_NORM,
    &norm::INSTANCE_NORM2D,
    &norm::RMS_NORM,
    &norm::PIXEL_NORM,
    &equal_linear::EQUAL_LINEAR,
    &equal_conv::EQUAL_CONV2D,
    &modulated_conv::MODULATED_CONV2D,
    &noise_injection::NOISE_INJECTION,
    &minibatch_std::MINIBATCH_STD,
    &constant_input::CONSTANT_INPUT,
    &bias::BIAS,
    &upsample::UPSAMPLE,
    &split::SPLIT,
    &split::CHUNK,
    &slice::SLICE,
    &reduce::MEAN,
    &reduce::SUM,
    &scale::SCALE,
    &randn_like::RANDN_LIKE,
    &pointwise::SQRT,
    &pointwise::POW,
    &pointwise::CLAMP,
    &variance::VAR,
    &variance::STD,
    &roll::ROLL,
    &pad::PAD,
    &where_mask::WHERE,
    &expand::EXPAND,
    &flip::FLIP,
    &cumsum::CUMSUM,
    &parameter::PARAMETER,
    &rotary::ROTARY_EMBEDDING,
    &scaled_dot_product_attention::SCALED_DOT_PRODUCT_ATTENTION,
    &shifted_window_attention::SHIFTED_WINDOW_ATTENTION,
    &patch_merging_pad::PATCH_MERGING_PAD,
];

/// Look an op up by name.
pub fn lookup(name: &str) -> Option<&'static OpDef> {
    static BY_NAME: OnceLock<HashMap<&'static str, &'static OpDef>> = OnceLock::new();
    BY_NAME.get_or_init(|| OPS.iter().map(|d| (d.name, *d)).collect()).get(name).copied()
}

/// All registered ops, in registry order.
pub fn all() -> &'static [&'static OpDef] {
    OPS
}

/// Every op's signature, one per line, sorted by name: what `wick ops` prints.
pub fn listing() -> String {
    let mut defs: Vec<&OpDef> = all().to_vec();
    defs.sort_by_key(|d| d.name.to_lowercase());
    defs.iter().map(|d| format!("{}\n", d.signature.render(d.name))).collect()
}

/// The input op that model inputs become (not callable from a spec).
pub fn input_op(ty: TensorType) -> Box<dyn Op> {
    Box::new(input::Input { ty })
}

/// Checks that an op got the number of inputs and the ranks it needs.
pub fn expect_rank(inputs: &[TensorType], index: usize, ranks: &[usize], what: &str) -> Result<(), OpError> {
    let Some(t) = inputs.get(index) else {
        return Err(OpError::new(format!("missing input {index}")));
    };
    if ranks.contains(&t.rank()) {
        return Ok(());
    }
    let expected: Vec<String> = ranks.iter().map(|r| r.to_string()).collect();
    Err(OpError::new(format!(
        "expected a rank-{} input ({what}), found rank {} with shape {}",
        expected.join(" or rank-"),
        t.rank(),
        crate::ir::tensor::shape_string(&t.shape)
    ))
    .input(index))
}

/// Checks that input `index` holds floats: token ids reaching a float op mean a missing
/// embedding or one-hot step, not a cast to make.
pub fn expect_float(inputs: &[TensorType], index: usize, op: &str) -> Result<(), OpError> {
    match inputs.get(index) {
        Some(t) if t.dtype.is_float() => Ok(()),
        Some(t) => Err(OpError::new(format!(
            "{op} expects a float tensor, found dtype {} (shape {})",
            t.dtype,
            crate::ir::tensor::shape_string(&t.shape)
        ))
        .input(index)),
        None => Err(OpError::new(format!("missing input {index}"))),
    }
}

/// Checks that a dim equals what a layer was built for (e.g. `in_features`).
pub fn expect_dim(found: &Dim, expected: &Dim, what: &str, index: usize) -> Result<(), OpError> {
    if found == expected {
        Ok(())
    } else {
        Err(OpError::new(format!("{what}: expected {expected}, found {found}")).input(index))
    }
}

/// Normalises an axis attribute (`-1` is the last) against input `x`, or says why not.
pub fn expect_axis(x: &TensorType, value: i64, name: &'static str) -> Result<usize, OpError> {
    x.axis(value).ok_or_else(|| {
        OpError::new(format!(
            "`{name}` {value} is out of range for a rank-{} input of shape {}",
            x.rank(),
            crate::ir::tensor::shape_string(&x.shape)
        ))
        .attr(name)
    })
}

/// The outcome of dividing a symbolic dim by a constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Quotient {
    /// The division is exact for every value of the symbols.
    Exact(Dim),
    /// The division provably leaves this remainder.
    Remainder(i64),
    /// Exactness depends on the symbols' values (`h / 2`), or the divisor is not positive.
    Unknown,
}

/// `n / by` when it is exact: used for `groups` and for reshape's `-1`.
pub fn divide_exactly(n: &Dim, by: i64) -> Quotient {
    let by = Dim::konst(by);
    match (n.floor_div(&by), n.rem(&by)) {
        (Ok(q), Ok(r)) => match r.as_const() {
            Some(0) => Quotient::Exact(q),
            Some(r) => Quotient::Remainder(r),
            None => Quotient::Unknown,
        },
        _ => Quotient::Unknown,
    }
}

/// Helpers for op unit tests: build from the signature's defaults, read back numbers.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::ir::tensor::DType;

    /// Builds `def` as the elaborator would: `given` attributes over the signature's defaults.
    pub fn build(def: &OpDef, given: &[(&str, AttrValue)]) -> Result<Box<dyn Op>, OpError> {
        for (name, _) in given {
            assert!(def.signature.attrs.iter().any(|s| s.name == *name), "{} has no attr `{name}`", def.name);
        }
        let mut attrs = Attrs::default();
        for spec in def.signature.attrs {
            let value = match (given.iter().find(|(n, _)| *n == spec.name), spec.default) {
                (Some((_, v)), _) => v.clone(),
                (None, Default::Int(v)) => AttrValue::Int(Dim::konst(v)),
                (None, Default::Float(v)) => AttrValue::Float(v),
                (None, Default::Bool(v)) => AttrValue::Bool(v),
                (None, Default::Str(v)) => AttrValue::Str(v.into()),
                (None, Default::Required | Default::Optional) => AttrValue::None,
            };
            attrs.insert(spec.name, value);
        }
        (def.build)(&attrs)
    }

    pub fn int(v: i64) -> AttrValue {
        AttrValue::Int(Dim::konst(v))
    }

    pub fn ints(vs: &[i64]) -> AttrValue {
        AttrValue::List(vs.iter().map(|v| int(*v)).collect())
    }

    /// An f32 tensor of constant shape.
    pub fn f32(shape: &[i64]) -> TensorType {
        TensorType::new(DType::F32, shape.iter().map(|d| Dim::konst(*d)).collect())
    }

    /// The constant shape of a tensor (panics on symbols).
    pub fn dims(t: &TensorType) -> Vec<i64> {
        t.shape.iter().map(|d| d.as_const().expect("constant dim")).collect()
    }

    /// Infers and returns the single output's constant shape.
    pub fn out_shape(op: &dyn Op, inputs: &[TensorType]) -> Vec<i64> {
        let out = op.infer(inputs).expect("infer");
        dims(&out[0])
    }

    /// Total elements of weights and buffers of the given kind.
    pub fn count(op: &dyn Op, inputs: &[TensorType], kind: ParamKind) -> i64 {
        op.params(inputs)
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| Dim::product(&p.shape).as_const().expect("constant param"))
            .sum()
    }

    /// The MACs of one forward pass, inferring the outputs first.
    pub fn macs(op: &dyn Op, inputs: &[TensorType]) -> i64 {
        let out = op.infer(inputs).expect("infer");
        match op.cost(inputs, &out) {
            Cost::Macs(d) => d.as_const().expect("constant MACs"),
            Cost::Uncounted => panic!("uncounted"),
        }
    }

    /// The error message of a failed build or inference.
    pub fn err<T: std::fmt::Debug>(r: Result<T, OpError>) -> OpError {
        r.expect_err("expected an error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_has_every_op_once_in_name_order() {
        let text = listing();
        let names: Vec<&str> = text.lines().map(|l| l.split('(').next().unwrap_or_default()).collect();
        assert_eq!(names.len(), all().len());
        assert!(names.windows(2).all(|w| w[0].to_lowercase() < w[1].to_lowercase()), "{names:?}");
        assert!(text.contains("Linear(x, out_features: int, bias: bool = true)\n"), "{text}");
    }
}
