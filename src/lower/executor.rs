//! The executor: lowers every node once, then runs them in topological order, holding each
//! intermediate only until its last consumer has run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Module, Tensor, Var};

use super::{Forward, LowerCtx, LowerError, ParamStore};
use crate::diag::RenderStyle;
use crate::ir::graph::{Graph, NodeId, TensorRef};
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
        let g = &self.graph;
        let bindings = g.bindings();
        let mut store = ParamStore::new(seed, dtype, device);
        let needed = needed_nodes(g);
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
            let inputs: Vec<TensorType> = g
                .inputs_of(id)
                .iter()
                .map(|t| g.tensor_type(*t).map(|ty| ty.bind(&bindings)).unwrap_or_default())
                .collect();
            let outputs = node.outputs.iter().map(|t| t.bind(&bindings)).collect();
            let mut ctx =
                LowerCtx { node, inputs, outputs, dtype, device, bindings: &bindings, store: &mut store };
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
            let ty = node.outputs.first().cloned().unwrap_or_default().bind(&bindings);
            let dims = ty
                .shape
                .iter()
                .map(|d| d.eval(&bindings).map(|v| v as usize))
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
        for id in g.order.iter().filter(|id| needed.contains(*id)) {
            let Some(layer) = layers.remove(id) else { continue };
            let node = g.node(*id);
            let ins = g.inputs_of(*id).into_iter().map(&mut slot_of).collect();
            let outs =
                (0..node.outputs.len() as u16).map(|port| slot_of(TensorRef { node: *id, port })).collect();
            steps.push(Step {
                path: node.path.clone(),
                kind: node.kind,
                layer,
                inputs: ins,
                outputs: outs,
                free: Vec::new(),
            });
        }
        let outputs: Vec<(String, usize)> = g.outputs.iter().map(|(n, t)| (n.clone(), slot_of(*t))).collect();
        schedule_frees(&mut steps, &outputs);
        let mut slot_elements = vec![0; slots.len()];
        for (t, slot) in &slots {
            if let Some(ty) = g.tensor_type(*t) {
                slot_elements[*slot] = ty.bind(&bindings).numel().as_const().unwrap_or(0) as usize;
            }
        }
        Ok(Lowered {
            name: g.name.clone(),
            slot_elements,
            steps,
            inputs,
            outputs,
            params: store,
            device: device.clone(),
            dtype,
            gradients_checked: AtomicBool::new(false),
        })
    }
}

/// Nodes some output depends on; the rest need not run.
fn needed_nodes(g: &Graph) -> HashSet<NodeId> {
    let mut needed = HashSet::new();
    let mut stack: Vec<NodeId> = g.outputs.iter().map(|(_, t)| t.node).collect();
    while let Some(id) = stack.pop() {
        if needed.insert(id) {
            stack.extend(g.inputs_of(id).iter().map(|t| t.node));
        }
    }
    needed
}

/// After each step, the slots nobody reads again (model outputs are kept to the end).
fn schedule_frees(steps: &mut [Step], outputs: &[(String, usize)]) {
    let kept: HashSet<usize> = outputs.iter().map(|(_, s)| *s).collect();
    let mut last_use: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, step) in steps.iter().enumerate() {
        for s in step.inputs.iter().chain(&step.outputs) {
            last_use.insert(*s, i);
        }
    }
    for (slot, i) in last_use {
        if !kept.contains(&slot) {
            steps[i].free.push(slot);
        }
    }
}

struct Step {
    path: String,
    kind: &'static str,
    layer: Box<dyn Forward>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    /// Slots to drop once this step has run.
    free: Vec<usize>,
}

/// A declared model input.
#[derive(Clone, Debug)]
pub struct InputSlot {
    pub name: String,
    slot: usize,
    pub dims: Vec<usize>,
    pub dtype: crate::ir::tensor::DType,
}

/// A model lowered to candle on one device.
pub struct Lowered {
    pub name: String,
    steps: Vec<Step>,
    /// Elements of the tensor each slot holds (its length is the number of slots).
    slot_elements: Vec<usize>,
    inputs: Vec<InputSlot>,
    outputs: Vec<(String, usize)>,
    params: ParamStore,
    device: Device,
    dtype: DType,
    gradients_checked: AtomicBool,
}

impl std::fmt::Debug for Lowered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lowered")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("outputs", &self.output_names())
            .field("steps", &self.steps.len())
            .field("params", &self.params)
            .finish()
    }
}

impl Lowered {
    pub fn inputs(&self) -> &[InputSlot] {
        &self.inputs
    }

    pub fn output_names(&self) -> Vec<&str> {
        self.outputs.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// The variables an optimizer should update.
    pub fn trainable_vars(&self) -> Vec<Var> {
        self.params.trainable().into_iter().map(|(_, v)| v.clone()).collect()
    }

    /// Runs the model on inputs given in declaration order; outputs in declaration order.
    pub fn forward(&self, inputs: &[Tensor], train: bool) -> candle_core::Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            candle_core::bail!(
                "model {} takes {} inputs, found {}",
                self.name,
                self.inputs.len(),
                inputs.len()
            );
        }
        let mut values: Vec<Option<Tensor>> = vec![None; self.slot_elements.len()];
        for (decl, x) in self.inputs.iter().zip(inputs) {
            values[decl.slot] = Some(self.admit(decl, x)?);
        }
        for step in &self.steps {
            let xs = step
                .inputs
                .iter()
                .map(|s| {
                    values[*s].clone().ok_or_else(|| {
                        candle_core::Error::msg(format!("`{}`: input was dropped early", step.path))
                    })
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let ys = step
                .layer
                .forward(&xs, train)
                .map_err(|e| e.context(format!("in `{}` ({})", step.path, step.kind)))?;
            if ys.len() != step.outputs.len() {
                candle_core::bail!(
                    "`{}` ({}) gave {} outputs, expected {}",
                    step.path,
                    step.kind,
                    ys.len(),
                    step.outputs.len()
                );
            }
            for (slot, y) in step.outputs.iter().zip(ys) {
                values[*slot] = Some(y);
            }
            for slot in &step.free {
                values[*slot] = None;
            }
        }
        self.outputs
            .iter()
            .map(|(name, s)| {
                values[*s]
                    .clone()
                    .ok_or_else(|| candle_core::Error::msg(format!("output `{name}` was not computed")))
            })
            .collect()
    }

    /// Runs the model on named inputs; outputs by name.
    pub fn forward_named(
        &self,
        inputs: &HashMap<String, Tensor>,
        train: bool,
    ) -> candle_core::Result<BTreeMap<String, Tensor>> {
        let ordered = self
            .inputs
            .iter()
            .map(|d| {
                inputs
                    .get(&d.name)
                    .cloned()
                    .ok_or_else(|| candle_core::Error::msg(format!("no tensor for input `{}`", d.name)))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let outs = self.forward(&ordered, train)?;
        Ok(self.outputs.iter().map(|(n, _)| n.clone()).zip(outs).collect())
    }

    /// Checks an input's shape and brings float inputs to the model's dtype and device.
    fn admit(&self, decl: &InputSlot, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.dims() != decl.dims.as_slice() {
            candle_core::bail!("input `{}` must have shape {:?}, found {:?}", decl.name, decl.dims, x.dims());
        }
        let x = x.to_device(&self.device)?;
        match (decl.dtype.is_float(), x.dtype().is_float()) {
            (true, true) => x.to_dtype(self.dtype),
            (true, false) => {
                candle_core::bail!("input `{}` must be a float tensor, found {:?}", decl.name, x.dtype())
            }
            (false, true) => {
                candle_core::bail!("input `{}` must be an integer tensor, found {:?}", decl.name, x.dtype())
            }
            (false, false) => Ok(x),
        }
    }

    /// The most tensor elements the forward pass holds at once (inputs, intermediates not yet
    /// consumed, outputs), from the schedule: what freeing after the last consumer achieves.
    pub fn peak_live_elements(&self) -> usize {
        let mut live: HashSet<usize> = self.inputs.iter().map(|d| d.slot).collect();
        let total = |live: &HashSet<usize>| live.iter().map(|s| self.slot_elements[*s]).sum::<usize>();
        let mut peak = total(&live);
        for step in &self.steps {
            live.extend(&step.outputs);
            peak = peak.max(total(&live));
            for s in &step.free {
                live.remove(s);
            }
        }
        peak
    }

    /// `loss.backward()`, and after the first one a check that every trainable parameter got
    /// a gradient: candle drops gradients silently where an op has no backward.
    pub fn backward(&self, loss: &Tensor) -> Result<GradStore, LowerError> {
        let grads = loss.backward()?;
        if !self.gradients_checked.swap(true, Ordering::Relaxed) {
            let missing = self.missing_gradients(&grads);
            if !missing.is_empty() {
                return Err(LowerError::Usage(format!(
                    "after the first backward pass these trainable parameters have no gradient: {}",
                    missing.join(", ")
                )));
            }
        }
        Ok(grads)
    }

    /// Trainable parameters without a gradient in `grads`.
    pub fn missing_gradients(&self, grads: &GradStore) -> Vec<String> {
        self.params
            .trainable()
            .into_iter()
            .filter(|(_, v)| grads.get(v.as_tensor()).is_none())
            .map(|(k, _)| k.to_string())
            .collect()
    }

    pub fn save_weights(&self, path: impl AsRef<std::path::Path>) -> Result<(), LowerError> {
        Ok(self.params.save(path)?)
    }

    pub fn load_weights(
        &self,
        path: impl AsRef<std::path::Path>,
        allow_partial: bool,
    ) -> Result<super::LoadReport, LowerError> {
        self.params.load(path, allow_partial)
    }
}

/// candle's `Module` for single-input, single-output models, in eval mode.
impl Module for Lowered {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        if self.inputs.len() != 1 || self.outputs.len() != 1 {
            candle_core::bail!(
                "Module::forward needs one input and one output; model {} has {} and {}: use Lowered::forward",
                self.name,
                self.inputs.len(),
                self.outputs.len()
            );
        }
        let mut ys = Lowered::forward(self, std::slice::from_ref(xs), false)?;
        ys.pop().ok_or_else(|| candle_core::Error::msg("no output"))
    }
}
