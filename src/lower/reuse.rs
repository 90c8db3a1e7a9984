//! Layers whose every input is held fixed from pass to pass compute the same outputs each
//! time: an encoder's, while its decoder writes a token a pass. A [`Reuse`] in the
//! [`Pass`](super::Pass) keeps their outputs from the first pass and hands them to the next,
//! so a step of generation runs only the layers that see the new token.
//!
//! Which layers are fixed follows from the inputs named fixed: a layer is fixed when it has
//! inputs and each comes from a fixed model input or a fixed layer. A layer without inputs
//! runs every pass (it may draw, or count passes).

use candle_core::Tensor;

use super::executor::{InputSlot, Step};

/// What a sequence of passes keeps of the layers that see only fixed inputs.
#[derive(Clone, Debug, Default)]
pub struct Reuse {
    /// The model inputs given the same tensor in every pass, by name.
    fixed_inputs: Vec<String>,
    /// Per layer, once the first pass has run: its outputs when it is fixed.
    kept: Option<Vec<Option<Vec<Tensor>>>>,
}

impl Reuse {
    /// Reuse for passes that give each input named here the same tensor every time.
    pub fn of_inputs(fixed_inputs: &[&str]) -> Reuse {
        Reuse { fixed_inputs: fixed_inputs.iter().map(|s| s.to_string()).collect(), kept: None }
    }

    /// The outputs layer `step` gave in an earlier pass, when it is fixed.
    pub(super) fn outputs_of(&self, step: usize) -> Option<&[Tensor]> {
        self.kept.as_ref()?.get(step)?.as_deref()
    }

    /// Whether the first pass is done: the outputs of fixed layers are kept from then on.
    pub(super) fn filled(&self) -> bool {
        self.kept.is_some()
    }

    /// After the first pass: the outputs of its fixed layers, by layer (`None` for the others).
    pub(super) fn fill(&mut self, kept: Vec<Option<Vec<Tensor>>>) {
        self.kept = Some(kept);
    }

    /// Which layers see only fixed inputs, in step order.
    pub(super) fn fixed_steps(&self, inputs: &[InputSlot], steps: &[Step], slots: usize) -> Vec<bool> {
        let mut fixed_slot = vec![false; slots];
        for input in inputs.iter().filter(|i| self.fixed_inputs.contains(&i.name)) {
            fixed_slot[input.slot] = true;
        }
        steps
            .iter()
            .map(|step| {
                let fixed = !step.inputs.is_empty() && step.inputs.iter().all(|s| fixed_slot[*s]);
                for s in &step.outputs {
                    fixed_slot[*s] = fixed;
                }
                fixed
            })
            .collect()
    }
}
