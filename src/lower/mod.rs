//! Lowering: a checked graph becomes a candle computation that runs forward and backward.
//!
//! Each op lowers itself ([`Lower::lower`], beside its [`crate::ops::Op`] in the op's file) from a [`LowerCtx`] that gives the node's
//! path, its input and output shapes (every dim bound), the dtype and device, and its
//! parameters from the model's [`ParamStore`]. The result is a [`Forward`]: the executor
//! ([`Lowered`]) runs those in topological order, passing a [`ForwardCtx`] to every node.
//!
//! candle 0.11 has ops whose gradient is missing or wrong (layer norm, rms norm and
//! `softmax_last_dim` give none; pooling's is wrong where kernel and stride differ; nearest
//! upsampling overwrites accumulated gradients; bilinear has none), so the
//! numerics that need care live in [`kernels`], written on candle-core primitives whose
//! backward is right, and every lowered op has a finite-difference check ([`gradcheck`]).
//!
//! Gradients of gradients (a gradient penalty): [`grad2::differentiable_grads`] keeps the
//! gradients' graph, on a forward pass run with [`Pass`]`{ differentiable: true, .. }`, where
//! the CPU kernels whose backward is hand-written give way to compositions whose backward is
//! differentiable. [`second_order`] lists the op kinds whose second-order gradient is checked
//! and names the layers of a model that are not.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//!
//! let spec = "model M { input x: [2, 4]\n output y = x |> fc: Linear(3) |> Softmax }";
//! let model = wick::Model::from_source("m.wick", spec, &wick::Options::default())?;
//! let net = model.build(&Device::Cpu, DType::F32)?;
//! let y = net.forward(&[Tensor::ones((2, 4), DType::F32, &Device::Cpu)?], true)?;
//! assert_eq!(y[0].dims(), &[2, 3]);
//! let grads = net.backward(&y[0].sum_all()?)?;
//! assert!(grads.get(net.params().get("fc.weight").unwrap().as_tensor()).is_some());
//! # Ok::<(), wick::lower::LowerError>(())
//! ```

pub mod device;
mod draw;
pub mod executor;
pub mod fold;
pub mod grad2;
pub mod gradcheck;
pub mod kernels;
pub mod model;
pub mod params;
pub mod random;
pub mod reuse;
pub mod second_order;

pub mod inspect;
#[cfg(test)]
mod tests;

use candle_core::{DType, Device, Tensor, Var};

use crate::ir::dim::{Bindings, Dim};
use crate::ir::graph::Node;
use crate::ir::tensor::TensorType;
use crate::ops::{Init, ParamKind};

pub use crate::ops::init_scheme::Distribution;
pub use executor::{Lowered, Pass};
pub use model::Model;
pub use params::{LoadReport, ParamStore, WeightsMismatch};
pub use reuse::Reuse;

/// What a forward pass tells each layer beside its inputs.
///
/// A layer's random draws (dropout masks, noise) come from a stream the executor scopes to the
/// model's seed, the layer's path and the pass's number (`random.rs`), so a layer draws through
/// `random::*` without holding the stream itself.
#[derive(Debug)]
pub struct ForwardCtx<'a> {
    /// Training mode: batch statistics, dropout.
    pub train: bool,
    /// The gradients of this pass will themselves be differentiated (a gradient penalty): the
    /// CPU kernels with a hand-written backward, which is not differentiable, give way to their
    /// compositions on candle's primitives.
    pub differentiable: bool,
    /// This layer's state across passes (a key-value cache, a recurrent state), when the caller
    /// keeps one ([`Pass::states`]).
    pub state: Option<&'a mut LayerState>,
}

/// What one layer keeps between passes, by name.
pub type LayerState = std::collections::BTreeMap<String, Tensor>;

/// A lowered node: tensors in, tensors out, told the pass's mode by `ctx`.
pub trait Forward: Send + Sync {
    fn forward(&self, inputs: &[Tensor], ctx: &mut ForwardCtx) -> candle_core::Result<Vec<Tensor>>;

    /// What an inference lowering may fold of this layer ([`fold`]): a convolution or linear
    /// layer takes the per-channel affine map of the batch norm after it into its weights.
    fn fold_role(&self) -> fold::Role<'_> {
        fold::Role::None
    }
}

impl<F> Forward for F
where
    F: Fn(&[Tensor], &mut ForwardCtx) -> candle_core::Result<Vec<Tensor>> + Send + Sync,
{
    fn forward(&self, inputs: &[Tensor], ctx: &mut ForwardCtx) -> candle_core::Result<Vec<Tensor>> {
        self(inputs, ctx)
    }
}

/// A one-input, one-output layer from a function of the input and the pass's context.
pub fn unary<F>(f: F) -> Box<dyn Forward>
where
    F: Fn(&Tensor, &mut ForwardCtx) -> candle_core::Result<Tensor> + Send + Sync + 'static,
{
    Box::new(move |xs: &[Tensor], ctx: &mut ForwardCtx| match xs {
        [x] => Ok(vec![f(x, ctx)?]),
        _ => candle_core::bail!("expected 1 input, found {}", xs.len()),
    })
}

/// The backend half of the op contract, implemented in each op's file beside its
/// [`crate::ops::Op`] (the compiler half, which names no candle type). With the `lower` feature
/// every op is also a `Lower` (a supertrait of `Op`), so the lowering gets it from a graph node.
pub trait Lower {
    /// The runnable layer, built once per model: parameters come from `ctx` (which creates
    /// them with the op's PyTorch initialisation), shapes are bound. An op without a lowering
    /// fails the build naming its layer, never at run time.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        Err(ctx.no_lowering())
    }
}

/// Why a model could not be lowered, loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    /// The spec did not compile; the rendered diagnostics.
    #[error("the spec has errors:\n{0}")]
    Spec(String),
    /// A layer could not be lowered (no lowering yet, an unbound dim, a bad shape).
    #[error("cannot lower `{path}` ({kind}): {message}")]
    Layer { path: String, kind: String, message: String },
    #[error(transparent)]
    Weights(#[from] WeightsMismatch),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What an op sees while it lowers itself.
pub struct LowerCtx<'a> {
    pub node: &'a Node,
    /// Input types with every dim bound.
    pub inputs: Vec<TensorType>,
    /// Input types as the graph has them, symbols unbound: which axis holds a symbol, for a
    /// layer that reads that size from its input at run time.
    pub declared_inputs: Vec<TensorType>,
    /// Output types with every dim bound.
    pub outputs: Vec<TensorType>,
    /// The float type parameters and activations are held in.
    pub dtype: DType,
    pub device: &'a Device,
    pub(crate) bindings: &'a Bindings,
    pub(crate) store: &'a mut ParamStore,
}

impl LowerCtx<'_> {
    pub fn path(&self) -> &str {
        &self.node.path
    }

    /// An error about this layer.
    pub fn error(&self, message: impl Into<String>) -> LowerError {
        LowerError::Layer {
            path: self.node.path.clone(),
            kind: self.node.kind.to_string(),
            message: message.into(),
        }
    }

    /// The error of an op without a lowering.
    pub fn no_lowering(&self) -> LowerError {
        self.error(format!("op {} has no lowering yet", self.node.kind))
    }

    /// The model's seed, for layers that draw random numbers at run time.
    pub fn seed(&self) -> u64 {
        self.store.seed()
    }

    /// A dim's value under the model's bindings.
    pub fn dim(&self, d: &Dim) -> Result<usize, LowerError> {
        match d.eval(self.bindings) {
            Some(v) if v >= 0 => Ok(v as usize),
            Some(v) => Err(self.error(format!("dim `{d}` is negative ({v})"))),
            None => Err(self.error(format!(
                "dim `{d}` has no value: bind its symbols ({}) when compiling, e.g. --bind {}=1",
                d.symbols().join(", "),
                d.symbols().first().map(String::as_str).unwrap_or("N")
            ))),
        }
    }

    /// The bound shape of input `i`.
    pub fn input_dims(&self, i: usize) -> Result<Vec<usize>, LowerError> {
        let t = self.inputs.get(i).ok_or_else(|| self.error(format!("missing input {i}")))?;
        self.dims(&t.shape)
    }

    /// The bound shape of output `i`.
    pub fn output_dims(&self, i: usize) -> Result<Vec<usize>, LowerError> {
        let t = self.outputs.get(i).ok_or_else(|| self.error(format!("missing output {i}")))?;
        self.dims(&t.shape)
    }

    pub fn dims(&self, shape: &[Dim]) -> Result<Vec<usize>, LowerError> {
        shape.iter().map(|d| self.dim(d)).collect()
    }

    /// A learned parameter declared by the op's `params`, created as its declaration's `init`
    /// says unless it exists (a tied parameter resolves to its owner's tensor).
    pub fn weight(&mut self, name: &str) -> Result<Tensor, LowerError> {
        Ok(self.var(name, ParamKind::Weight)?.as_tensor().clone())
    }

    /// A buffer (running statistics): a variable the layer updates itself, never trained.
    pub fn buffer(&mut self, name: &str) -> Result<Var, LowerError> {
        self.var(name, ParamKind::Buffer)
    }

    /// An index buffer the op computed (`values`, Swin's `relative_position_index`): int64,
    /// never trained, and kept as it is when it exists (set by a load).
    pub fn index_buffer(&mut self, name: &str, values: Vec<i64>) -> Result<Tensor, LowerError> {
        let decl = self.node.params.iter().find(|p| p.name == name && p.kind == ParamKind::Index);
        let decl =
            decl.ok_or_else(|| self.error(format!("the op declares no index buffer named `{name}`")))?;
        let shape = self.dims(&decl.shape)?;
        let key = decl.path_under(&self.node.path);
        let var =
            self.store.get_or_insert_index(&key, &shape, values).map_err(|e| self.error(e.to_string()))?;
        Ok(var.as_tensor().clone())
    }

    fn var(&mut self, name: &str, kind: ParamKind) -> Result<Var, LowerError> {
        let decl = self.node.params.iter().find(|p| p.name == name && p.kind == kind).ok_or_else(|| {
            self.error(format!(
                "the op declares no {} named `{name}`",
                if kind == ParamKind::Weight { "parameter" } else { "buffer" }
            ))
        })?;
        let shape = self.dims(&decl.shape)?;
        let draw = self.draw(&decl.init, &shape)?;
        let own = decl.path_under(&self.node.path);
        // A tied parameter names the owner's full key (`wte.weight`).
        let key = match self.node.tied_to(name) {
            Some(owner_key) => {
                self.store.alias(&own, owner_key);
                owner_key.to_string()
            }
            None => own,
        };
        let trainable = kind == ParamKind::Weight && !self.node.frozen;
        self.store.get_or_init(&key, &shape, kind, trainable, draw).map_err(|e| self.error(e.to_string()))
    }

    /// A declared initialisation with its fans bound (a chosen scheme's from `shape`).
    fn draw(&self, init: &Init, shape: &[usize]) -> Result<Distribution, LowerError> {
        let fans = |a: &Dim, b: &Dim| Ok::<_, LowerError>((self.dim(a)? + self.dim(b)?) as f64);
        Ok(match init {
            Init::Zeros => Distribution::Full(0.0),
            Init::Ones => Distribution::Full(1.0),
            Init::Full(v) => Distribution::Full(*v),
            Init::Normal { mean, std } => Distribution::Normal { mean: *mean, std: *std },
            Init::TruncNormal { mean, std, low, high } => {
                Distribution::TruncNormal { mean: *mean, std: *std, low: *low, high: *high }
            }
            Init::UniformFan(fan) => Distribution::Uniform(1.0 / (self.dim(fan)? as f64).sqrt()),
            Init::XavierUniform { fan_in, fan_out } => {
                Distribution::Uniform((6.0 / fans(fan_in, fan_out)?).sqrt())
            }
            Init::XavierNormal { fan_in, fan_out } => {
                Distribution::Normal { mean: 0.0, std: (2.0 / fans(fan_in, fan_out)?).sqrt() }
            }
            Init::Computed => return Err(self.error("computed values are given by the op, not drawn")),
            Init::Chosen(scheme) => scheme.distribution(shape).map_err(|e| self.error(e))?,
        })
    }
}
