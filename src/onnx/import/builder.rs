//! The graph being built: ONNX tensor names to wick tensors, the constants not yet taken as a
//! layer's parameters, and the one way a node goes in ([`Builder::add`]), through
//! [`NodeDraft::infer`] so that wick's ops infer every shape.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::ir::dim::{Bindings, Dim};
use crate::ir::graph::{Graph, NodeDraft, NodeId, Origin, TensorRef};
use crate::ir::tensor::TensorType;
use crate::onnx::export::{Initializer, Weights};
use crate::ops::{self, AttrValue, Attrs, Default};

/// A parameter of a layer being added: the op's name for it and the constant that holds it,
/// transposed first when the file stores it the other way round (`MatMul` by `[in, out]`).
pub struct Param<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub transpose: bool,
}

impl<'a> Param<'a> {
    pub fn new(name: &'a str, source: &'a str) -> Param<'a> {
        Param { name, source, transpose: false }
    }
}

pub struct Builder {
    pub graph: Graph,
    pub bindings: Bindings,
    tensors: HashMap<String, TensorRef>,
    consts: HashMap<String, Initializer>,
    /// Constants taken as a layer's parameter: the key they are kept under in `weights`.
    owned: HashMap<String, String>,
    pub weights: Weights,
    paths: HashSet<String>,
}

impl Builder {
    pub fn new(graph: Graph, consts: HashMap<String, Initializer>) -> Builder {
        let bindings = graph.bindings();
        Builder {
            graph,
            bindings,
            tensors: HashMap::new(),
            consts,
            owned: HashMap::new(),
            weights: Weights::new(),
            paths: HashSet::new(),
        }
    }

    pub fn is_const(&self, name: &str) -> bool {
        self.consts.contains_key(name) || self.owned.contains_key(name)
    }

    /// A constant's values, whether or not a layer has taken it.
    pub fn constant(&self, name: &str) -> Option<&Initializer> {
        self.consts.get(name).or_else(|| self.weights.get(self.owned.get(name)?))
    }

    /// An integer constant's values (shapes, axes, sizes).
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        match self.constant(name)? {
            Initializer::I64 { data, .. } => Some(data.clone()),
            Initializer::F32 { .. } => None,
        }
    }

    /// A one-element constant's value.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        match self.constant(name)? {
            Initializer::F32 { data, .. } if data.len() == 1 => Some(super::as_written(data[0])),
            Initializer::I64 { data, .. } if data.len() == 1 => Some(data[0] as f64),
            _ => None,
        }
    }

    pub fn set(&mut self, name: &str, t: TensorRef) {
        self.tensors.insert(name.to_string(), t);
    }

    /// The wick tensor an ONNX tensor name was read as, if any.
    pub fn get(&self, name: &str) -> Option<TensorRef> {
        self.tensors.get(name).copied()
    }

    pub fn ty(&self, t: TensorRef) -> TensorType {
        self.graph.tensor_type(t).cloned().unwrap_or_default()
    }

    /// The wick tensor of an ONNX tensor; a float constant read as a tensor becomes a
    /// `Parameter` layer holding it (under its own name, so its key is the constant's).
    pub fn tensor(&mut self, name: &str) -> Result<TensorRef, String> {
        if let Some(t) = self.tensors.get(name) {
            return Ok(*t);
        }
        let Some(value) = self.constant(name) else {
            return Err(format!("tensor `{name}` is not made before it is read"));
        };
        if matches!(value, Initializer::I64 { .. }) {
            return Err(format!("integer constant `{name}` read as a tensor has no wick op"));
        }
        let shape = value.dims().iter().map(|d| AttrValue::Int(Dim::konst(*d))).collect();
        let id = self.add(
            "Parameter",
            vec![("shape", AttrValue::List(shape))],
            vec![],
            name,
            &[Param::new("", name)],
        )?;
        let t = TensorRef { node: id, port: 0 };
        self.set(name, t);
        Ok(t)
    }

    /// Adds op `kind` built from `given` (over its signature's defaults) on `inputs`, at
    /// `path` (or at the path its first weight's name gives, `conv1` for `conv1.weight`),
    /// its parameters taken from the named constants and checked against the shapes the op
    /// declares. Nothing is added when the op refuses its attributes or inputs, or a
    /// parameter is missing or of another shape: the error says which.
    pub fn add(
        &mut self,
        kind: &str,
        given: Vec<(&'static str, AttrValue)>,
        inputs: Vec<TensorRef>,
        path: &str,
        params: &[Param],
    ) -> Result<NodeId, String> {
        let def = ops::lookup(kind).ok_or_else(|| format!("wick has no op `{kind}`"))?;
        let mut attrs = Attrs::default();
        for spec in def.signature.attrs {
            let value = match given.iter().find(|(n, _)| *n == spec.name) {
                Some((_, v)) => v.clone(),
                None => match spec.default {
                    Default::Required | Default::Optional => AttrValue::None,
                    Default::Int(v) => AttrValue::Int(Dim::konst(v)),
                    Default::Float(v) => AttrValue::Float(v),
                    Default::Bool(v) => AttrValue::Bool(v),
                    Default::Str(v) => AttrValue::Str(v.to_string()),
                },
            };
            attrs.insert(spec.name, value);
        }
        let attrs = attrs.with_dims(Arc::new(self.bindings.clone()));
        let op = (def.build)(&attrs).map_err(|e| format!("{kind}: {}", e.message))?;
        let typed = inputs.iter().map(|t| (*t, self.ty(*t))).collect();
        let path = self.layer_path(path, params);
        let (mut draft, error) = NodeDraft::infer(def.name, op, attrs, path.clone(), typed);
        if let Some(e) = error {
            return Err(format!("{kind}: {}", e.message));
        }
        let mut moves = Vec::new();
        for decl in &draft.node.params {
            let p = params
                .iter()
                .find(|p| p.name == decl.name)
                .ok_or_else(|| format!("{kind}: no constant holds its `{}`", decl.name))?;
            let value = self.constant(p.source).ok_or_else(|| format!("`{}` is not a constant", p.source))?;
            if p.transpose && self.owned.contains_key(p.source) {
                // Taking it again transposed would copy it, once per layer that reads it.
                return Err(format!("`{}` is already another layer's weight", p.source));
            }
            let mut dims = value.dims().to_vec();
            if p.transpose {
                dims.reverse();
            }
            let expected: Option<Vec<i64>> = decl.shape.iter().map(|d| d.eval(&self.bindings)).collect();
            if expected.as_deref() != Some(dims.as_slice()) {
                return Err(format!(
                    "{kind}: `{}` is {dims:?} in the file, the op needs {}",
                    p.source,
                    crate::ir::tensor::shape_string(&decl.shape)
                ));
            }
            moves.push((decl.name.clone(), decl.path_under(&path), p.source.to_string(), p.transpose));
        }
        for (name, key, source, transpose) in moves {
            if let Some(owner) = self.owned.get(&source).filter(|_| !transpose) {
                if *owner != key {
                    draft.node.tied.push((name, owner.clone()));
                }
                continue;
            }
            let Some(mut value) = self.consts.remove(&source).or_else(|| self.constant(&source).cloned())
            else {
                continue;
            };
            if transpose {
                value = transposed(value);
            }
            self.weights.insert(key.clone(), value);
            self.owned.entry(source).or_insert(key);
        }
        self.paths.insert(path);
        Ok(self.graph.add(draft, Origin::default()))
    }

    /// The layer's path: its first weight's owner when that constant is named like a
    /// `state_dict` key of this parameter and not yet taken, else `path`; made unique.
    fn layer_path(&self, path: &str, params: &[Param]) -> String {
        let from_weight = params.first().and_then(|p| {
            if self.owned.contains_key(p.source) {
                return None;
            }
            if p.name.is_empty() {
                return Some(p.source.to_string());
            }
            p.source.strip_suffix(&format!(".{}", p.name)).filter(|s| !s.is_empty()).map(str::to_string)
        });
        let base = from_weight.unwrap_or_else(|| path.to_string());
        let mut unique = base.clone();
        let mut k = 1;
        while self.paths.contains(&unique) {
            unique = format!("{base}_{k}");
            k += 1;
        }
        unique
    }

    /// A model input of type `ty`.
    pub fn input(&mut self, name: &str, ty: TensorType) -> NodeId {
        let (draft, _) =
            NodeDraft::infer("input", ops::input_op(ty), Attrs::default(), name.to_string(), vec![]);
        let id = self.graph.add(draft, Origin::default());
        self.graph.inputs.push((name.to_string(), id));
        self.set(name, TensorRef { node: id, port: 0 });
        id
    }

    /// A node wick has no op for: its outputs typed as the file declares them, uncounted.
    pub fn opaque(
        &mut self,
        op_type: &str,
        path: &str,
        inputs: Vec<TensorRef>,
        outputs: Option<Vec<TensorType>>,
    ) -> (NodeId, Option<String>) {
        let op = Box::new(ops::opaque::Opaque { op_type: op_type.to_string(), outputs });
        let typed = inputs.iter().map(|t| (*t, self.ty(*t))).collect();
        let path = self.layer_path(path, &[]);
        let (draft, error) =
            NodeDraft::infer(ops::opaque::kind(op_type), op, Attrs::default(), path.clone(), typed);
        self.paths.insert(path);
        (self.graph.add(draft, Origin::default()), error.map(|e| e.message))
    }
}

/// A matrix's transpose (a `[in, out]` weight as `Linear`'s `[out, in]`).
fn transposed(value: Initializer) -> Initializer {
    match value {
        Initializer::F32 { dims, data } if dims.len() == 2 => {
            let (r, c) = (dims[0] as usize, dims[1] as usize);
            let t = (0..r * c).map(|k| data[(k % r) * c + k / r]).collect();
            Initializer::F32 { dims: vec![dims[1], dims[0]], data: t }
        }
        other => other,
    }
}

/// An integer attribute value.
pub fn int(v: i64) -> AttrValue {
    AttrValue::Int(Dim::konst(v))
}

/// A list-of-integers attribute value.
pub fn int_list(vs: &[i64]) -> AttrValue {
    AttrValue::List(vs.iter().map(|v| int(*v)).collect())
}
