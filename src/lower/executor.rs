//! The executor: runs the lowered nodes in topological order, holding each intermediate only
//! until its last consumer has run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Module, Tensor, Var};

use super::fold::Fold;
use super::reuse::Reuse;
use super::{Forward, ForwardCtx, LayerState, LowerError, ParamStore};

/// One node to run: which slots it reads and writes, and which it frees afterwards.
pub(super) struct Step {
    pub(super) path: String,
    pub(super) kind: &'static str,
    pub(super) layer: Box<dyn Forward>,
    pub(super) inputs: Vec<usize>,
    pub(super) outputs: Vec<usize>,
    /// Slots to drop once this step has run.
    pub(super) free: Vec<usize>,
    /// Runs in eval mode even in a training pass (a frozen batch norm: [`Lowered::hold_in_eval`]).
    pub(super) held: bool,
}

/// The size of the tensor a slot holds, from the bound static types.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SlotSize {
    pub(super) elements: usize,
    /// Float tensors at the model's dtype, ids and masks at their own.
    pub(super) bytes: usize,
}

/// A declared model input.
#[derive(Clone, Debug)]
pub struct InputSlot {
    pub name: String,
    pub(super) slot: usize,
    pub dims: Vec<usize>,
    pub dtype: crate::ir::tensor::DType,
}

/// A model lowered to candle on one device.
pub struct Lowered {
    pub name: String,
    pub(super) steps: Vec<Step>,
    /// The size of the tensor each slot holds (its length is the number of slots).
    pub(super) slots: Vec<SlotSize>,
    pub(super) inputs: Vec<InputSlot>,
    pub(super) outputs: Vec<(String, usize)>,
    pub(super) params: ParamStore,
    pub(super) device: Device,
    pub(super) dtype: DType,
    pub(super) gradients_checked: AtomicBool,
    /// Batch norms folded into their producers for inference, one entry per step; empty until
    /// [`fold_for_inference`](Self::fold_for_inference).
    pub(super) folds: Vec<Option<Fold>>,
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

    /// How many layers a forward pass runs.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// The variables an optimizer should update.
    pub fn trainable_vars(&self) -> Vec<Var> {
        self.params.trainable().into_iter().map(|(_, v)| v.clone()).collect()
    }

    /// Runs the model on inputs given in declaration order; outputs in declaration order. The
    /// autograd graph is recorded, for [`backward`](Self::backward): it keeps every
    /// intermediate that leads to an output alive as long as the output is.
    pub fn forward(&self, inputs: &[Tensor], train: bool) -> candle_core::Result<Vec<Tensor>> {
        self.forward_with(inputs, &mut Pass { train, ..Pass::default() })
    }

    /// [`forward`](Self::forward) as `pass` says: its mode, whether its gradients will be
    /// differentiated again, and the layer states it carries from pass to pass.
    pub fn forward_with(&self, inputs: &[Tensor], pass: &mut Pass) -> candle_core::Result<Vec<Tensor>> {
        self.run(inputs, pass, true, &mut None)
    }

    /// Runs the layers `hold` picks (by path and kind) in eval mode in every pass, training
    /// ones too: a batch norm in a frozen backbone normalises with its running statistics and
    /// leaves them alone, as torchvision fine-tuning puts such layers in `eval()`. Returns the
    /// paths held.
    pub fn hold_in_eval(&mut self, hold: impl Fn(&str, &str) -> bool) -> Vec<String> {
        let mut held = Vec::new();
        for step in &mut self.steps {
            step.held = hold(&step.path, step.kind);
            if step.held {
                held.push(step.path.clone());
            }
        }
        held
    }

    /// [`infer`](Self::infer) as `pass` says: its mode and the layer states it carries from
    /// pass to pass (generation: a recurrent state, a key-value cache).
    pub fn infer_with(&self, inputs: &[Tensor], pass: &mut Pass) -> candle_core::Result<Vec<Tensor>> {
        self.run(inputs, pass, false, &mut None)
    }

    /// Folds each batch norm that follows a convolution or a linear layer (and reads nothing
    /// else) into that layer's weights for the passes that allow it: those of
    /// [`infer`](Self::infer) and [`infer_with`](Self::infer_with) with the batch norm in eval
    /// mode (see `fold.rs`). Call it once on a lowering built for inference (`wick run`, `wick
    /// eval`, `wick sample`); training passes run the layers as built. The folded weights are
    /// made again after a load; after setting a parameter's `Var` directly, call
    /// [`ParamStore::changed`]. Returns how many batch norms are folded.
    pub fn fold_for_inference(&mut self) -> usize {
        self.folds = super::fold::plan(&self.steps, &self.outputs);
        self.folds.iter().flatten().count()
    }

    /// A fresh state for each layer, for a [`Pass`] that carries them.
    pub fn new_states(&self) -> Vec<LayerState> {
        vec![LayerState::new(); self.steps.len()]
    }

    /// Runs the model for its values only, as [`forward`](Self::forward) without the autograd
    /// graph (PyTorch's `no_grad`): each layer's outputs are detached, so every intermediate is
    /// freed after its last consumer and inference holds about
    /// [`peak_live_bytes`](Self::peak_live_bytes). `train` still selects batch statistics and
    /// dropout.
    pub fn infer(&self, inputs: &[Tensor], train: bool) -> candle_core::Result<Vec<Tensor>> {
        self.run(inputs, &mut Pass { train, ..Pass::default() }, false, &mut None)
    }

    /// The schedule; `record` keeps the autograd graph, otherwise each step's outputs are
    /// detached (the graph of a parameterised layer would hold its inputs, and theirs, ...).
    /// `watch`, when given, sees each step's outputs as they are made (and the layers run as
    /// built, unfolded); returning false stops the pass early (with no outputs).
    pub(super) fn run(
        &self,
        inputs: &[Tensor],
        pass: &mut Pass,
        record: bool,
        watch: &mut Option<Watch<'_>>,
    ) -> candle_core::Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            candle_core::bail!(
                "model {} takes {} inputs, found {}",
                self.name,
                self.inputs.len(),
                inputs.len()
            );
        }
        let mut values: Vec<Option<Tensor>> = vec![None; self.slots.len()];
        for (decl, x) in self.inputs.iter().zip(inputs) {
            values[decl.slot] = Some(self.admit(decl, x)?);
        }
        if pass.states.as_ref().is_some_and(|s| s.len() != self.steps.len()) {
            candle_core::bail!("the pass carries states for another model (see Lowered::new_states)");
        }
        let number = self.params.next_pass();
        if record || pass.train {
            // It may be followed by an optimizer step, or move running statistics.
            self.params.changed();
        }
        let folding = !self.folds.is_empty()
            && !record
            && !pass.differentiable
            && pass.reuse.is_none()
            && watch.is_none();
        // The batch norms whose map a producer took this pass: their output is their input.
        let mut folded_away = vec![false; if folding { self.steps.len() } else { 0 }];
        // The first pass of a reuse sequence keeps the fixed layers' outputs; later ones read them.
        let mut first_of_reuse = match &pass.reuse {
            Some(r) if !r.filled() => Some((
                r.fixed_steps(&self.inputs, &self.steps, self.slots.len()),
                vec![None; self.steps.len()],
            )),
            _ => None,
        };
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(kept) = pass.reuse.as_ref().and_then(|r| r.outputs_of(i)) {
                for (slot, y) in step.outputs.iter().zip(kept) {
                    values[*slot] = Some(y.clone());
                }
                for slot in &step.free {
                    values[*slot] = None;
                }
                continue;
            }
            if folded_away.get(i) == Some(&true) {
                if let ([x], [y]) = (step.inputs.as_slice(), step.outputs.as_slice()) {
                    values[*y] = values[*x].clone();
                }
                for slot in &step.free {
                    values[*slot] = None;
                }
                continue;
            }
            let xs = step
                .inputs
                .iter()
                .map(|s| {
                    values[*s].clone().ok_or_else(|| {
                        candle_core::Error::msg(format!("`{}`: input was dropped early", step.path))
                    })
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let mut ctx = ForwardCtx {
                train: pass.train && !step.held,
                differentiable: pass.differentiable,
                // A fixed layer runs once: it has no state to carry.
                state: match &first_of_reuse {
                    Some((fixed, _)) if fixed[i] => None,
                    _ => pass.states.as_mut().and_then(|s| s.get_mut(i)),
                },
            };
            // The batch norm's mode decides: a held one normalises with running statistics.
            let fold = match folding {
                true => self.folds[i].as_ref().filter(|f| !pass.train || self.steps[f.norm].held),
                false => None,
            };
            let folded = match fold {
                Some(f) => {
                    folded_away[f.norm] = true;
                    Some(f.layer(&*step.layer, &*self.steps[f.norm].layer, self.params.changes())?)
                }
                None => None,
            };
            let layer = folded.as_deref().unwrap_or(&*step.layer);
            let ys = super::random::scoped(self.params.seed(), &step.path, number, || {
                super::kernels::cpu::composed_if(ctx.differentiable, || layer.forward(&xs, &mut ctx))
            })
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
            if let Some((_, kept)) = first_of_reuse.as_mut().filter(|(fixed, _)| fixed[i]) {
                kept[i] = Some(ys.iter().map(Tensor::detach).collect());
            }
            let go_on = watch.as_mut().is_none_or(|w| w(step, &ys));
            for (slot, y) in step.outputs.iter().zip(ys) {
                values[*slot] = Some(if record { y } else { y.detach() });
            }
            if !go_on {
                return Ok(Vec::new());
            }
            for slot in &step.free {
                values[*slot] = None;
            }
        }
        if let (Some(reuse), Some((_, kept))) = (pass.reuse.as_mut(), first_of_reuse) {
            reuse.fill(kept);
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

    /// [`infer`](Self::infer) on named inputs; outputs by name.
    pub fn infer_named(
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
        let outs = self.infer(&ordered, train)?;
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
        self.peak_live(|s| s.elements)
    }

    /// [`peak_live_elements`](Self::peak_live_elements) in bytes: the static lower bound of an
    /// inference pass's activation memory, parameters not included. Temporaries inside a layer
    /// (im2col columns, attention scores) are not slots and come on top; a layer whose output
    /// is a view of its input (a reshape, dropout in eval) is counted twice.
    pub fn peak_live_bytes(&self) -> usize {
        self.peak_live(|s| s.bytes)
    }

    /// The largest sum of `size` over the slots live at once while the schedule runs.
    fn peak_live(&self, size: impl Fn(&SlotSize) -> usize) -> usize {
        let mut live: HashSet<usize> = self.inputs.iter().map(|d| d.slot).collect();
        let total = |live: &HashSet<usize>| live.iter().map(|s| size(&self.slots[*s])).sum::<usize>();
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
        let all: Vec<&str> = self.output_names();
        self.backward_from(loss, &all)
    }

    /// [`backward`](Self::backward) for a loss computed from the outputs `outputs`: the check
    /// covers the trainable parameters those outputs depend on, so an output without a loss
    /// (and a head that only it reads) is not required to receive gradients.
    pub fn backward_from(&self, loss: &Tensor, outputs: &[&str]) -> Result<GradStore, LowerError> {
        let grads = loss.backward()?;
        if !self.gradients_checked.swap(true, Ordering::Relaxed) {
            let reached = self.layers_reaching(outputs);
            let missing: Vec<String> = self
                .missing_gradients(&grads)
                .into_iter()
                .filter(|key| {
                    reached
                        .iter()
                        .any(|path| key.strip_prefix(path.as_str()).is_some_and(|r| r.starts_with('.')))
                })
                .collect();
            if !missing.is_empty() {
                return Err(LowerError::Usage(format!(
                    "after the first backward pass these trainable parameters have no gradient: {}",
                    missing.join(", ")
                )));
            }
        }
        Ok(grads)
    }

    /// The paths of the layers the outputs `outputs` are computed from: the schedule walked
    /// back from their slots.
    pub fn layers_reaching(&self, outputs: &[&str]) -> HashSet<String> {
        let mut needed: HashSet<usize> =
            self.outputs.iter().filter(|(n, _)| outputs.contains(&n.as_str())).map(|(_, s)| *s).collect();
        let mut paths = HashSet::new();
        for step in self.steps.iter().rev() {
            if step.outputs.iter().any(|s| needed.contains(s)) {
                needed.extend(&step.inputs);
                paths.insert(step.path.clone());
            }
        }
        paths
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
        self.params.save(path)
    }

    pub fn load_weights(
        &self,
        path: impl AsRef<std::path::Path>,
        allow_partial: bool,
    ) -> Result<super::LoadReport, LowerError> {
        self.params.load(path, allow_partial)
    }
}

/// What sees each step's outputs in [`Lowered::run`]; false stops the pass.
pub(super) type Watch<'a> = &'a mut dyn FnMut(&Step, &[Tensor]) -> bool;

/// How one pass runs, beyond its inputs.
#[derive(Clone, Debug, Default)]
pub struct Pass {
    /// Training mode: batch statistics, dropout.
    pub train: bool,
    /// The pass's gradients will be differentiated again (see [`ForwardCtx::differentiable`]).
    pub differentiable: bool,
    /// One state per layer, carried from pass to pass (from [`Lowered::new_states`]).
    pub states: Option<Vec<LayerState>>,
    /// The outputs of layers that see only inputs held fixed from pass to pass, computed once.
    pub reuse: Option<Reuse>,
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
