//! Building: a checked model becomes a [`Lowered`] one, each node lowered once, in an order
//! that lets the executor drop every intermediate after its last consumer.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device};

use super::executor::{InputSlot, Lowered, SlotSize, Step};
use super::{Forward, LowerCtx, LowerError, ParamStore};
use crate::diag::RenderStyle;
use crate::ir::dim::Bindings;
use crate::ir::graph::{Graph, NodeId, TensorRef};
use crate::ir::liveness::Liveness;
use crate::ir::tensor::TensorType;
use crate::{Compiled, Options};

/// A checked model, ready to be built on a device.
#[derive(Debug)]
pub struct Model {
    graph: Graph,
}

impl Model {
    /// Compiles a spec file; any error in the spec is returned with its rendered diagnostics.
    pub fn from_file(path: &str, opts: &Options) -> Result<Model, LowerError> {
        Model::from_compiled(crate::compile_file(path, opts)?)
    }

    /// Compiles spec text held in memory.
    pub fn from_source(name: &str, text: &str, opts: &Options) -> Result<Model, LowerError> {
        Model::from_compiled(crate::compile_source(name, text, opts))
    }

    pub fn from_compiled(c: Compiled) -> Result<Model, LowerError> {
        if c.diagnostics.has_errors() {
            return Err(LowerError::Spec(c.render_diagnostics(RenderStyle { fancy: false, width: 100 })));
        }
        let graph = c.graph.ok_or_else(|| LowerError::Spec("no model was elaborated".into()))?;
        Ok(Model { graph })
    }

    /// Compiles a spec file for these inputs: each dim that stands alone in an input's declared
    /// shape (`N` in `[N, 3, H, W]`) takes the size the given tensor has there, unless
    /// `opts.bind` names it. The spec is compiled again only when that changes a dim, since its
    /// `if`s and asserts are decided with the values it is compiled with.
    pub fn bound_to_inputs(
        path: &str,
        opts: &Options,
        inputs: &HashMap<String, candle_core::Tensor>,
    ) -> Result<Model, LowerError> {
        let model = Model::from_file(path, opts)?;
        let g = &model.graph;
        let bindings = g.bindings();
        let mut bind = opts.bind.clone();
        for (name, id) in &g.inputs {
            let (Some(t), Some(ty)) = (inputs.get(name), g.node(*id).outputs.first()) else { continue };
            if t.rank() != ty.rank() {
                continue;
            }
            for (d, size) in ty.shape.iter().zip(t.dims()) {
                let Some(sym) = d.as_symbol() else { continue };
                if !bind.iter().any(|(n, _)| n == sym) {
                    bind.push((sym.to_string(), *size as i64));
                }
            }
        }
        let changed = bind.iter().any(|(name, value)| bindings.get(name) != Some(value));
        match changed {
            true => Model::from_file(path, &Options { bind, ..opts.clone() }),
            false => Ok(model),
        }
    }

    /// This model with dims bound to other values (`[("N", 32)]`: the batch a run trains at),
    /// without elaborating the spec again: as with [`build_sharing`](Self::build_sharing), its
    /// `if`s and asserts keep the decisions made with the values it was compiled with.
    pub fn rebound(mut self, bind: &[(String, i64)]) -> Result<Model, LowerError> {
        let bindings = bindings_with(&self.graph, bind)?;
        for d in &mut self.graph.dims {
            d.value = bindings.get(&d.name).copied().or(d.value);
        }
        Ok(self)
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Lowers every layer with PyTorch's default initialisation from seed 0.
    pub fn build(&self, device: &Device, dtype: DType) -> Result<Lowered, LowerError> {
        self.build_seeded(device, dtype, 0)
    }

    /// Lowers every layer; parameters are drawn from `seed` (each from its own stream).
    pub fn build_seeded(&self, device: &Device, dtype: DType, seed: u64) -> Result<Lowered, LowerError> {
        if !dtype.is_float() {
            return Err(LowerError::Usage(format!("a model runs in a float dtype, found {dtype:?}")));
        }
        self.lower(ParamStore::new(seed, dtype, device), &self.graph.bindings(), device, dtype)
    }

    /// Lowers this model again with some dims bound to other values (`[("N", 3)]`: the same
    /// network for batches of 3), on the very parameters and buffers of `built`, a model this
    /// one built: an optimizer step, a load or a batch norm's running statistics through either
    /// is seen by the other, and their forward passes are counted as one sequence, so dropout
    /// draws one stream across both. Dims not named keep the values `built` has.
    ///
    /// Elaboration decided the spec's `if`s with the values it was compiled with; a binding
    /// that changes a parameter's shape is refused, as is a model with a parameter `built`
    /// lacks.
    pub fn build_sharing(&self, built: &Lowered, bind: &[(String, i64)]) -> Result<Lowered, LowerError> {
        let g = &self.graph;
        let bindings = bindings_with(g, bind)?;
        let store = built.params.share();
        if let Some((path, ..)) = g.parameters().into_iter().find(|(path, ..)| store.get(path).is_none()) {
            return Err(LowerError::Usage(format!(
                "`{path}` of model {} is not a parameter of `{}`: share parameters with a model this one built",
                g.name, built.name
            )));
        }
        self.lower(store, &bindings, &built.device, built.dtype)
    }

    /// Every needed node lowered under `bindings`, its parameters taken from (or added to)
    /// `store`.
    fn lower(
        &self,
        mut store: ParamStore,
        bindings: &Bindings,
        device: &Device,
        dtype: DType,
    ) -> Result<Lowered, LowerError> {
        let g = &self.graph;
        super::params::check_room(new_values(g, bindings, &store), dtype)?;
        let liveness = Liveness::of(g);
        // Owners before the layers tied to them, so a shared tensor starts as its owner's init.
        let (plain, tied): (Vec<NodeId>, Vec<NodeId>) = g
            .order
            .iter()
            .copied()
            .filter(|id| g.node(*id).kind != "input")
            .partition(|id| g.node(*id).tied.is_empty());
        let mut layers: HashMap<NodeId, Box<dyn Forward>> = HashMap::new();
        for id in plain.into_iter().chain(tied) {
            let node = g.node(id);
            let declared_inputs: Vec<TensorType> =
                g.inputs_of(id).iter().map(|t| g.tensor_type(*t).cloned().unwrap_or_default()).collect();
            let inputs = declared_inputs.iter().map(|ty| ty.bind(bindings)).collect();
            let outputs = node.outputs.iter().map(|t| t.bind(bindings)).collect();
            let mut ctx = LowerCtx {
                node,
                inputs,
                declared_inputs,
                outputs,
                dtype,
                device,
                bindings,
                store: &mut store,
            };
            let layer = node.op.lower(&mut ctx)?;
            layers.insert(id, layer);
        }

        let mut slots: HashMap<TensorRef, usize> = HashMap::new();
        let mut slot_of = |t: TensorRef| {
            let next = slots.len();
            *slots.entry(t).or_insert(next)
        };
        let mut inputs = Vec::new();
        for (name, id) in &g.inputs {
            let node = g.node(*id);
            let ty = node.outputs.first().cloned().unwrap_or_default().bind(bindings);
            let dims = ty
                .shape
                .iter()
                .map(|d| d.eval(bindings).map(|v| v as usize))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    LowerError::Usage(format!(
                        "input `{name}` has unbound dims {ty}: bind them when compiling"
                    ))
                })?;
            inputs.push(InputSlot {
                name: name.clone(),
                slot: slot_of(TensorRef { node: *id, port: 0 }),
                dims,
                dtype: ty.dtype,
            });
        }
        let mut steps = Vec::new();
        // The summary's schedule: each step frees what nothing reads after it.
        for (id, frees) in liveness.order.iter().zip(&liveness.frees) {
            let Some(layer) = layers.remove(id) else { continue };
            let node = g.node(*id);
            let ins = g.inputs_of(*id).into_iter().map(&mut slot_of).collect();
            let outs =
                (0..node.outputs.len() as u16).map(|port| slot_of(TensorRef { node: *id, port })).collect();
            let free = frees.iter().map(|t| slot_of(*t)).collect();
            steps.push(Step {
                path: node.path.clone(),
                kind: node.kind,
                layer,
                inputs: ins,
                outputs: outs,
                free,
                held: false,
            });
        }
        let outputs: Vec<(String, usize)> = g.outputs.iter().map(|(n, t)| (n.clone(), slot_of(*t))).collect();
        let mut slot_sizes = vec![SlotSize::default(); slots.len()];
        for (t, slot) in &slots {
            if let Some(ty) = g.tensor_type(*t) {
                let elements = ty.bind(bindings).numel().as_const().unwrap_or(0) as usize;
                let width =
                    if ty.dtype.is_float() { dtype.size_in_bytes() } else { ty.dtype.size_bytes() as usize };
                slot_sizes[*slot] = SlotSize { elements, bytes: elements * width };
            }
        }
        Ok(Lowered {
            name: g.name.clone(),
            slots: slot_sizes,
            steps,
            inputs,
            outputs,
            params: store,
            device: device.clone(),
            dtype,
            gradients_checked: AtomicBool::new(false),
            folds: Vec::new(),
        })
    }
}

/// The graph's bindings with `bind` over them; a name that is no dim of the graph, or a value
/// below 1, is refused.
fn bindings_with(g: &Graph, bind: &[(String, i64)]) -> Result<Bindings, LowerError> {
    let mut bindings = g.bindings();
    for (name, value) in bind {
        if !g.dims.iter().any(|d| &d.name == name) {
            let known: Vec<&str> = g.dims.iter().map(|d| d.name.as_str()).collect();
            return Err(LowerError::Usage(format!(
                "`{name}` names no dim of model {} (its dims: {})",
                g.name,
                known.join(", ")
            )));
        }
        if *value < 1 {
            return Err(LowerError::Usage(format!("dims must be at least 1, found {name} = {value}")));
        }
        bindings.insert(name.clone(), *value);
    }
    Ok(bindings)
}

/// Values of the parameters and buffers `store` lacks, at `bindings` (unbound ones count
/// nothing: lowering refuses them); `None` past 2^64.
fn new_values(g: &Graph, bindings: &Bindings, store: &ParamStore) -> Option<u64> {
    let mut total = 0u64;
    for id in &g.order {
        let node = g.node(*id);
        for p in &node.params {
            if node.tied_to(&p.name).is_some() || store.get(&p.path_under(&node.path)).is_some() {
                continue;
            }
            let n = crate::check::elements(&p.shape, bindings).ok()?.unwrap_or(0);
            total = total.checked_add(n)?;
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, IndexOp, Tensor};

    use super::Model;

    /// A GPT-like decoder whose sequence length `L` reaches learned and sinusoidal positions,
    /// causal attention and reshapes that name it (`[N, L, 2, -1]`) or a product of it.
    const TINY_GPT: &str = "use \"std/transformer.wick\"\ndim N = 1\ndim L = 8\n\
        model TinyGPT {\n input ids: [N, L] of i64\n \
        h = ids |> wte: Embedding(11, 8) |> wpe: LearnedPositions(16) |> SinusoidalPositions(16) \
        |> blocks: TransformerEncoder(2, 2, 16, dropout=0.0, batch_first=true, norm_first=true, causal=true)\n \
        heads = reshape(h, [N, L, 2, -1])\n rows = reshape(heads, [N * L, -1])\n \
        output logits = reshape(rows, [1, -1, 8]) |> lm_head: Linear(11) }";

    #[test]
    fn a_model_lowered_once_serves_shorter_and_longer_sequences_causally() {
        let model = Model::from_source("tiny_gpt.wick", TINY_GPT, &crate::Options::default()).unwrap();
        let mut net = model.build_seeded(&Device::Cpu, DType::F64, 7).unwrap();
        let ids: Vec<i64> = (0..12).map(|i| (i * 7 + 3) % 11).collect();
        let ids = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let mut logits = |len: usize| -> candle_core::Result<Vec<Vec<f64>>> {
            // Stands in for an executor that admits any length where the input's dim is a
            // symbol: today's checks inputs against the lowered shape.
            net.inputs[0].dims = vec![1, len];
            let y = net.forward(&[ids.i((.., ..len))?], false)?;
            Ok(y[0].to_vec3::<f64>()?.remove(0))
        };
        let (short, lowered, long) = (logits(5).unwrap(), logits(8).unwrap(), logits(12).unwrap());
        assert_eq!((short.len(), lowered.len(), long.len()), (5, 8, 12));
        for (t, row) in long.iter().enumerate() {
            for (other, name) in [(&short, "5"), (&lowered, "8")] {
                let Some(earlier) = other.get(t) else { continue };
                let gap = row.iter().zip(earlier).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(gap < 1e-10, "position {t}: the {name}-token run differs by {gap}");
            }
        }
        let ids = Tensor::zeros((1, 17), DType::I64, &Device::Cpu).unwrap();
        net.inputs[0].dims = vec![1, 17];
        let err = net.forward(&[ids], false).unwrap_err().to_string();
        assert!(err.contains("17 exceeds the 16 positions"), "{err}");
    }
}
