//! Tensor types: an element type and a symbolic shape.

use std::fmt;

use super::dim::{Bindings, Dim};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DType {
    #[default]
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    Bool,
}

impl DType {
    pub const ALL: [DType; 7] =
        [DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64, DType::I32, DType::Bool];

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::Bool => "bool",
        }
    }

    pub fn parse(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    pub fn size_bytes(self) -> u64 {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of a tensor flowing along an edge.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<Dim>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Vec<Dim>) -> TensorType {
        TensorType { dtype, shape }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// A copy with another shape and the same dtype.
    pub fn with_shape(&self, shape: Vec<Dim>) -> TensorType {
        TensorType { dtype: self.dtype, shape }
    }

    pub fn numel(&self) -> Dim {
        Dim::product(&self.shape)
    }

    /// The shape with bound symbols replaced by their values.
    pub fn bind(&self, bindings: &Bindings) -> TensorType {
        self.with_shape(self.shape.iter().map(|d| d.substitute(bindings)).collect())
    }

    /// Normalise a possibly negative axis (`-1` is the last) against this rank.
    pub fn axis(&self, axis: i64) -> Option<usize> {
        let rank = self.rank() as i64;
        let a = if axis < 0 { axis + rank } else { axis };
        (0..rank).contains(&a).then_some(a as usize)
    }
}

/// `[N, 64, 112, 112]`
pub fn shape_string(shape: &[Dim]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", shape_string(&self.shape))?;
        if self.dtype != DType::F32 {
            write!(f, " of {}", self.dtype)?;
        }
        Ok(())
    }
}
