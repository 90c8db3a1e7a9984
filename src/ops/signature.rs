//! What an op accepts: its tensor inputs and typed attributes with defaults.
//!
//! The elaborator binds call arguments against a [`Signature`] (so misspelled keywords get a
//! suggestion and wrong types point at the argument); op builders then read the bound
//! [`Attrs`] through typed accessors.

use std::fmt;
use std::sync::Arc;

use crate::ir::dim::{Bindings, Dim};
use crate::ir::tensor::DType;

/// The type an attribute accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrType {
    Int,
    Float,
    Bool,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// An int, or a list of ints (one per spatial axis).
    IntOrList,
    /// A list of ints.
    IntList,
    /// An int, a list of ints, or one of the listed strings (`padding="same"`).
    IntListOrChoice(&'static [&'static str]),
    /// An element type name (`f32`, `i64`, …).
    DType,
    /// A number, or one of the listed strings (`init=1e-6` or `init="normal"`).
    FloatOrChoice(&'static [&'static str]),
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted = |c: &[&str]| c.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(" | ");
        match self {
            AttrType::Int => write!(f, "int"),
            AttrType::Float => write!(f, "float"),
            AttrType::Bool => write!(f, "bool"),
            AttrType::Choice(c) => write!(f, "{}", quoted(c)),
            AttrType::IntOrList => write!(f, "int or [int, ...]"),
            AttrType::IntList => write!(f, "[int, ...]"),
            AttrType::IntListOrChoice(c) => write!(f, "int, [int, ...] or {}", quoted(c)),
            AttrType::DType => write!(f, "dtype"),
            AttrType::FloatOrChoice(c) => write!(f, "float or {}", quoted(c)),
        }
    }
}

/// An attribute's default: `Required` means the call must give it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    Required,
    /// May be left out; the op reads `None`.
    Optional,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'static str),
}

#[derive(Clone, Copy, Debug)]
pub struct AttrSpec {
    pub name: &'static str,
    pub ty: AttrType,
    pub default: Default,
    /// Set for a size PyTorch takes as an argument but wick reads from an input.
    pub inferred: Option<FromInput>,
}

/// Where an inferred size is read: axis `axis` of tensor input `input` (negative counts from
/// the end, so `-1` is a `Linear`'s features whatever the batch axes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FromInput {
    pub input: usize,
    pub axis: i64,
}

/// Shorthand for signature tables.
pub const fn attr(name: &'static str, ty: AttrType, default: Default) -> AttrSpec {
    AttrSpec { name, ty, default, inferred: None }
}

/// A size PyTorch takes positionally (`nn.Linear(in_features, out_features)`) and wick infers
/// from an input, declared at PyTorch's position. wick's positional reading skips it, so
/// `Linear(200)` keeps meaning `out_features=200`; a call in PyTorch's order is read that way
/// only when wick's reading does not fit, and a given value is checked against the input.
pub const fn inferred(name: &'static str, input: usize, axis: i64) -> AttrSpec {
    AttrSpec {
        name,
        ty: AttrType::Int,
        default: Default::Optional,
        inferred: Some(FromInput { input, axis }),
    }
}

/// The tensor inputs of an op.
#[derive(Clone, Copy, Debug)]
pub enum Inputs {
    /// A fixed number of named tensors (`x`, or `a, b`).
    Fixed(&'static [&'static str]),
    /// Named tensors of which the first `required` must be given; the others may be left out
    /// from the end, so the op sees the given ones in order and knows them by their count
    /// (`MultiheadAttention(query)`, `(query, key)`, `(query, key, value)`).
    Trailing { names: &'static [&'static str], required: usize },
    /// One argument holding a list of tensors (`concat(xs)`).
    List(&'static str),
}

impl Inputs {
    pub fn names(&self) -> &[&'static str] {
        match self {
            Inputs::Fixed(names) | Inputs::Trailing { names, .. } => names,
            Inputs::List(name) => std::slice::from_ref(name),
        }
    }

    /// How many of the inputs a call must give.
    pub fn required(&self) -> usize {
        match self {
            Inputs::Fixed(names) => names.len(),
            Inputs::Trailing { names, required } => (*required).min(names.len()),
            Inputs::List(_) => 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Signature {
    pub inputs: Inputs,
    pub attrs: &'static [AttrSpec],
}

impl Signature {
    /// Every argument name in positional order: the required tensor inputs, the attributes,
    /// then the optional tensor inputs (so `x |> MultiheadAttention(512, 8)` reads as it does
    /// in PyTorch and a key is given by keyword).
    pub fn arg_names(&self) -> Vec<&'static str> {
        let (required, optional) = self.inputs.names().split_at(self.inputs.required());
        required
            .iter()
            .copied()
            .chain(self.attrs.iter().map(|a| a.name))
            .chain(optional.iter().copied())
            .collect()
    }

    /// The positions in [`arg_names`](Self::arg_names) of the inferred sizes, each with where it
    /// is read from.
    pub fn inferred_slots(&self) -> Vec<(usize, FromInput)> {
        let first_attr = self.inputs.required();
        self.attrs
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.inferred.map(|from| (first_attr + i, from)))
            .collect()
    }

    /// Reorders values given in [`arg_names`](Self::arg_names) order to every tensor input
    /// first, then the attributes.
    pub fn inputs_first<T>(&self, mut by_arg: Vec<T>) -> Vec<T> {
        let required = self.inputs.required();
        let optional = self.inputs.names().len() - required;
        if let Some(tail) = by_arg.get_mut(required..) {
            tail.rotate_right(optional.min(tail.len()));
        }
        by_arg
    }

    /// `Conv2d(x, out_channels: int, kernel_size: int or [int, ...], stride: ... = 1)`, in
    /// wick's positional order: the inferred sizes are left out, as a call leaves them out.
    pub fn render(&self, name: &str) -> String {
        let (required, optional) = self.inputs.names().split_at(self.inputs.required());
        let mut parts: Vec<String> = required.iter().map(|s| s.to_string()).collect();
        for a in self.attrs.iter().filter(|a| a.inferred.is_none()) {
            let default = match a.default {
                Default::Required => String::new(),
                Default::Optional => " = none".into(),
                Default::Int(v) => format!(" = {v}"),
                Default::Float(v) => format!(" = {v:?}"),
                Default::Bool(v) => format!(" = {v}"),
                Default::Str(v) => format!(" = \"{v}\""),
            };
            parts.push(format!("{}: {}{}", a.name, a.ty, default));
        }
        parts.extend(optional.iter().map(|s| format!("{s}: tensor = none")));
        format!("{name}({})", parts.join(", "))
    }
}

/// A bound attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Int(Dim),
    Float(f64),
    Bool(bool),
    Str(String),
    List(Vec<AttrValue>),
    None,
}

/// An error in building an op from its attributes, or in inferring its shapes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OpError {
    pub message: String,
    /// The attribute at fault, to point at its argument.
    pub attr: Option<&'static str>,
    /// The input at fault, to point at where it was made.
    pub input: Option<usize>,
    pub help: Option<String>,
}

impl OpError {
    pub fn new(message: impl Into<String>) -> OpError {
        OpError { message: message.into(), ..OpError::default() }
    }

    pub fn attr(mut self, name: &'static str) -> OpError {
        self.attr = Some(name);
        self
    }

    pub fn input(mut self, index: usize) -> OpError {
        self.input = Some(index);
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> OpError {
        self.help = Some(help.into());
        self
    }
}

/// The bound attributes of one call, read by an op's builder.
#[derive(Clone, Debug, Default)]
pub struct Attrs {
    /// By name, each once: a call has a handful, so a list beats a map's 500-byte node.
    values: Vec<(&'static str, AttrValue)>,
    /// The spec's dims with values (`--bind`, examples): an attribute that must be a constant
    /// (`LearnedPositions(L)`'s table size) takes its dims' values, while attributes that may
    /// stay symbolic (a reshape's target) keep their dims.
    dims: Option<Arc<Bindings>>,
}

impl Attrs {
    /// Read constants through the values of `dims`.
    pub fn with_dims(mut self, dims: Arc<Bindings>) -> Attrs {
        // Every attribute is in by now, and the node keeps them for the graph's life.
        self.values.shrink_to_fit();
        self.dims = Some(dims);
        self
    }

    /// The spec's dims with values, when the call was given them.
    pub fn bound_dims(&self) -> Option<Arc<Bindings>> {
        self.dims.clone()
    }

    /// `d`'s value: a constant, or an expression over dims with values.
    fn constant(&self, d: &Dim) -> Option<i64> {
        d.as_const().or_else(|| d.eval(self.dims.as_deref()?))
    }

    /// Why `d` is not a constant, and how to give its dims values.
    fn not_constant(&self, name: &'static str, what: &str, d: &Dim) -> OpError {
        let free: Vec<String> = d
            .symbols()
            .into_iter()
            .filter(|s| self.dims.as_deref().is_none_or(|b| !b.contains_key(s)))
            .collect();
        let error = OpError::new(format!("`{name}` must {what}, found `{d}`")).attr(name);
        match free.first() {
            Some(first) => {
                let binds: Vec<String> = free.iter().map(|s| format!("--bind {s}=16")).collect();
                error.help(format!(
                    "give its dims values: an example where each is declared (`dim {first} = 16`) or `{}`",
                    binds.join(" ")
                ))
            }
            None => error,
        }
    }

    pub fn insert(&mut self, name: &'static str, value: AttrValue) {
        match self.values.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.values.push((name, value)),
        }
    }

    pub fn get(&self, name: &'static str) -> &AttrValue {
        self.values.iter().find(|(n, _)| *n == name).map_or(&AttrValue::None, |(_, v)| v)
    }

    pub fn is_none(&self, name: &'static str) -> bool {
        matches!(self.get(name), AttrValue::None)
    }

    /// A symbolic integer.
    pub fn dim(&self, name: &'static str) -> Result<Dim, OpError> {
        match self.get(name) {
            AttrValue::Int(d) => Ok(d.clone()),
            other => {
                Err(OpError::new(format!("`{name}` must be an int, found {}", describe(other))).attr(name))
            }
        }
    }

    /// An integer known at compile time: a constant, or an expression over dims with values.
    pub fn int(&self, name: &'static str) -> Result<i64, OpError> {
        let d = self.dim(name)?;
        self.constant(&d).ok_or_else(|| self.not_constant(name, "be a constant", &d))
    }

    /// An integer at least `min`.
    pub fn int_at_least(&self, name: &'static str, min: i64) -> Result<i64, OpError> {
        let v = self.int(name)?;
        if v < min {
            return Err(OpError::new(format!("`{name}` must be at least {min}, found {v}")).attr(name));
        }
        Ok(v)
    }

    /// A symbolic integer that, when known, is at least `min` (`num_embeddings`, `embed_dim`).
    pub fn dim_at_least(&self, name: &'static str, min: i64) -> Result<Dim, OpError> {
        let d = self.dim(name)?;
        match d.as_const() {
            Some(v) if v < min => {
                Err(OpError::new(format!("`{name}` must be at least {min}, found {v}")).attr(name))
            }
            _ => Ok(d),
        }
    }

    pub fn opt_int(&self, name: &'static str) -> Result<Option<i64>, OpError> {
        if self.is_none(name) {
            Ok(None)
        } else {
            self.int(name).map(Some)
        }
    }

    pub fn float(&self, name: &'static str) -> Result<f64, OpError> {
        match self.get(name) {
            AttrValue::Float(v) => Ok(*v),
            AttrValue::Int(d) => {
                self.constant(d).map(|v| v as f64).ok_or_else(|| self.not_constant(name, "be a number", d))
            }
            other => {
                Err(OpError::new(format!("`{name}` must be a float, found {}", describe(other))).attr(name))
            }
        }
    }

    pub fn bool(&self, name: &'static str) -> Result<bool, OpError> {
        match self.get(name) {
            AttrValue::Bool(b) => Ok(*b),
            other => {
                Err(OpError::new(format!("`{name}` must be a bool, found {}", describe(other))).attr(name))
            }
        }
    }

    pub fn str(&self, name: &'static str) -> Option<&str> {
        match self.get(name) {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A list of ints, or one int repeated `n` times (`kernel_size=3` means `[3, 3]`).
    pub fn ints(&self, name: &'static str, n: usize) -> Result<Vec<i64>, OpError> {
        match self.get(name) {
            AttrValue::Int(_) => Ok(vec![self.int(name)?; n]),
            AttrValue::List(items) => {
                if items.len() != n {
                    return Err(OpError::new(format!(
                        "`{name}` needs {n} values, one per spatial axis, found {}",
                        items.len()
                    ))
                    .attr(name));
                }
                items
                    .iter()
                    .map(|v| match v {
                        AttrValue::Int(d) => {
                            self.constant(d).ok_or_else(|| self.not_constant(name, "hold constants", d))
                        }
                        other => {
                            Err(OpError::new(format!("`{name}` must hold ints, found {}", describe(other)))
                                .attr(name))
                        }
                    })
                    .collect()
            }
            other => {
                Err(OpError::new(format!("`{name}` must be an int or a list, found {}", describe(other)))
                    .attr(name))
            }
        }
    }

    /// One int or a list of any length, as a list (`axis=1` or `axis=[2, 3]`).
    pub fn int_list(&self, name: &'static str) -> Result<Vec<i64>, OpError> {
        match self.get(name) {
            AttrValue::List(items) => self.ints(name, items.len()),
            _ => Ok(vec![self.int(name)?]),
        }
    }

    /// A list of symbolic ints (a target shape).
    pub fn dims(&self, name: &'static str) -> Result<Vec<Dim>, OpError> {
        match self.get(name) {
            AttrValue::List(items) => items
                .iter()
                .map(|v| match v {
                    AttrValue::Int(d) => Ok(d.clone()),
                    other => Err(OpError::new(format!("`{name}` must hold ints, found {}", describe(other)))
                        .attr(name)),
                })
                .collect(),
            AttrValue::Int(d) => Ok(vec![d.clone()]),
            other => Err(OpError::new(format!("`{name}` must be a list of ints, found {}", describe(other)))
                .attr(name)),
        }
    }

    pub fn dtype(&self, name: &'static str) -> Result<Option<DType>, OpError> {
        match self.get(name) {
            AttrValue::None => Ok(None),
            AttrValue::Str(s) => DType::parse(s)
                .map(Some)
                .ok_or_else(|| OpError::new(format!("`{name}`: unknown dtype `{s}`")).attr(name)),
            other => {
                Err(OpError::new(format!("`{name}` must be a dtype, found {}", describe(other))).attr(name))
            }
        }
    }
}

/// A short description of a value's kind, for messages.
pub fn describe(v: &AttrValue) -> String {
    match v {
        AttrValue::Int(d) => format!("int `{d}`"),
        AttrValue::Float(f) => format!("float `{f}`"),
        AttrValue::Bool(b) => format!("bool `{b}`"),
        AttrValue::Str(s) => format!("string \"{s}\""),
        AttrValue::List(items) => format!("a list of {}", items.len()),
        AttrValue::None => "nothing".into(),
    }
}
