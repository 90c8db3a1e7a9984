//! Values during elaboration: compile-time scalars, lists, and tensors in the graph.

use crate::front::span::Span;
use crate::ir::dim::Dim;
use crate::ir::graph::TensorRef;
use crate::ir::tensor::TensorType;

/// A tensor produced by some node, with its type and where it was made.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorVal {
    pub tensor: TensorRef,
    pub ty: TensorType,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(Dim),
    Float(f64),
    Bool(bool),
    Str(String),
    Tensor(TensorVal),
    List(Vec<Value>),
    /// An op or block to apply later (a parameter of type `op`): its index among the
    /// elaborator's op values, and its name for messages.
    Op {
        id: usize,
        name: String,
    },
    None,
    /// An error was reported already; anything built from this is skipped silently.
    Poison,
}

impl Value {
    /// A short description for messages: "int `64`", "tensor [N, 64, 56, 56]".
    pub fn describe(&self) -> String {
        match self {
            Value::Int(d) => format!("int `{d}`"),
            // `{:?}` keeps the point: `2.0`, not an int-looking `2`.
            Value::Float(f) => format!("float `{f:?}`"),
            Value::Bool(b) => format!("bool `{b}`"),
            Value::Str(s) => format!("string \"{s}\""),
            Value::Tensor(t) => format!("tensor {}", t.ty),
            Value::List(items) => {
                format!("a list of {} item{}", items.len(), if items.len() == 1 { "" } else { "s" })
            }
            Value::Op { name, .. } => format!("op `{name}`"),
            Value::None => "nothing".into(),
            Value::Poison => "an erroneous value".into(),
        }
    }

    /// The value as written into an interpolated message.
    pub fn display(&self) -> String {
        match self {
            Value::Int(d) => d.to_string(),
            Value::Float(f) => format!("{f}"),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => s.clone(),
            Value::Tensor(t) => t.ty.to_string(),
            Value::List(items) => {
                format!("[{}]", items.iter().map(Value::display).collect::<Vec<_>>().join(", "))
            }
            Value::Op { name, .. } => name.clone(),
            Value::None => "none".into(),
            Value::Poison => "?".into(),
        }
    }

    pub fn is_poison(&self) -> bool {
        match self {
            Value::Poison => true,
            Value::List(items) => items.iter().any(Value::is_poison),
            _ => false,
        }
    }

    /// The node that made this tensor (the first one's, for an op's several outputs).
    pub fn node(&self) -> Option<crate::ir::graph::NodeId> {
        match self {
            Value::Tensor(t) => Some(t.tensor.node),
            Value::List(items) => items.first().and_then(Value::node),
            _ => None,
        }
    }
}
