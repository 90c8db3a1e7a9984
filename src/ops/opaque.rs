//! An operator wick has no op for (an ONNX node read from a file): its output types are what
//! the file declares, and it has no cost rule, so the summary lists it as uncounted rather
//! than counting it as zero. Not callable from a spec, as `input` is not.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use super::{Cost, Op, OpError};
use crate::ir::tensor::TensorType;

#[derive(Debug)]
pub struct Opaque {
    /// The operator's name in its file (`NonMaxSuppression`).
    pub op_type: String,
    /// The declared output types; `None` when the file gives none, which fails the node.
    pub outputs: Option<Vec<TensorType>>,
}

impl Op for Opaque {
    fn infer(&self, _inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        self.outputs.clone().ok_or_else(|| {
            OpError::new(format!(
                "wick has no op for `{}` and the file declares no type for its output",
                self.op_type
            ))
            .help("give the file value_info for this node's outputs (onnx.shape_inference.infer_shapes)")
        })
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Uncounted
    }
}

/// Runs only once someone writes the operator; until then lowering names the layer.
#[cfg(feature = "lower")]
impl crate::lower::Lower for Opaque {}

/// Most distinct operator names kept as node kinds; past them a node's kind is `opaque`.
const MAX_KINDS: usize = 1024;

/// The node kind of an opaque operator: its own name (so the summary's uncounted list says
/// which operators), held for the program's life; a file cannot make this grow past
/// [`MAX_KINDS`] names.
pub fn kind(op_type: &str) -> &'static str {
    static KINDS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut kinds = match KINDS.get_or_init(|| Mutex::new(HashSet::new())).lock() {
        Ok(k) => k,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(k) = kinds.get(op_type) {
        return k;
    }
    if kinds.len() >= MAX_KINDS || op_type.len() > 64 {
        return "opaque";
    }
    let k: &'static str = Box::leak(op_type.to_string().into_boxed_str());
    kinds.insert(k);
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::f32;

    #[test]
    fn declared_types_pass_through_uncounted_and_a_missing_one_is_an_error() {
        let op = Opaque { op_type: "TopK".into(), outputs: Some(vec![f32(&[2, 3])]) };
        assert_eq!(op.infer(&[f32(&[2, 9])]).unwrap(), vec![f32(&[2, 3])]);
        assert_eq!(op.cost(&[], &[]), Cost::Uncounted);
        let unknown = Opaque { op_type: "TopK".into(), outputs: None };
        assert!(unknown.infer(&[]).unwrap_err().message.contains("`TopK`"));
        assert_eq!(kind("TopK"), "TopK");
        assert!(std::ptr::eq(kind("TopK"), kind("TopK")));
    }
}
