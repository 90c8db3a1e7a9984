//! A model input: a source node with a declared type.

use super::{Cost, Op, OpError};
use crate::ir::dim::Dim;
use crate::ir::tensor::TensorType;

#[derive(Debug)]
pub struct Input {
    pub ty: TensorType,
}

impl Op for Input {
    fn infer(&self, _inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        Ok(vec![self.ty.clone()])
    }

    fn cost(&self, _: &[TensorType], _: &[TensorType]) -> Cost {
        Cost::Macs(Dim::zero())
    }
}

/// Never lowered: the executor feeds a model input's tensor to its consumers.
#[cfg(feature = "lower")]
impl crate::lower::Lower for Input {}
