//! The values a body writes, one slot each: a layer's attributes and keywords, or a block
//! call's arguments; and which ops are written infix or as pipe stages.

use std::collections::HashMap;

use super::render;
use super::WriteError;
use crate::ir::graph::{Graph, NodeId};
use crate::ops::{self, AttrValue, Init, Inputs};

/// The type of a value a block may take as a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum SlotType {
    Int,
    Float,
    Bool,
    Str,
    IntList,
    FloatList,
    /// Anything else (`none`, mixed lists): written as it is, never a parameter.
    Fixed,
}

impl SlotType {
    fn of(v: &AttrValue) -> SlotType {
        match v {
            AttrValue::Int(_) => SlotType::Int,
            AttrValue::Float(_) => SlotType::Float,
            AttrValue::Bool(_) => SlotType::Bool,
            AttrValue::Str(_) => SlotType::Str,
            AttrValue::List(items) if items.iter().all(|i| matches!(i, AttrValue::Int(_))) => {
                SlotType::IntList
            }
            AttrValue::List(items) if items.iter().all(|i| matches!(i, AttrValue::Float(_))) => {
                SlotType::FloatList
            }
            _ => SlotType::Fixed,
        }
    }

    /// The type as a block parameter declares it.
    pub fn declared(self) -> &'static str {
        match self {
            SlotType::Int => "int",
            SlotType::Float => "float",
            SlotType::Bool => "bool",
            SlotType::Str => "string",
            SlotType::IntList => "[int]",
            SlotType::FloatList => "[float]",
            SlotType::Fixed => "",
        }
    }
}

/// One value a scope's body writes: an attribute of one of its layers, a `frozen` or `tie`
/// keyword, or an argument of a block it calls.
#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub text: String,
    pub ty: SlotType,
    /// The attribute's or parameter's name (`out_channels`, `frozen`).
    pub name: String,
    /// The layer's segment, to tell two layers' `out_channels` apart.
    pub owner: String,
    /// The text of the value the call may leave out.
    pub default: Option<String>,
    /// Written by position (an op's required attributes, a block's arguments).
    pub positional: bool,
}

/// The ops written as `a + b` rather than called.
pub(super) fn infix(kind: &str) -> Option<&'static str> {
    match kind {
        "add" => Some("+"),
        "sub" => Some("-"),
        "mul" => Some("*"),
        "div" => Some("/"),
        _ => None,
    }
}

/// Whether a layer can be a stage of a pipe (its first input fed by `|>`).
pub(super) fn pipes(graph: &Graph, id: NodeId) -> bool {
    let node = graph.node(id);
    let list = ops::lookup(node.kind).is_some_and(|d| matches!(d.signature.inputs, Inputs::List(_)));
    infix(node.kind).is_none() && !list && !graph.inputs_of(id).is_empty()
}

/// The slots of one layer: its signature's attributes (sizes read from the input left out),
/// then `frozen` and `tie`.
pub(super) fn node_slots(
    graph: &Graph,
    id: NodeId,
    segment: &str,
    tree_paths: &HashMap<String, String>,
) -> Result<Vec<Slot>, WriteError> {
    let node = graph.node(id);
    let Some(def) = ops::lookup(node.kind) else {
        return Err(WriteError::UnknownOp { layer: node.path.clone(), op: node.kind.to_string() });
    };
    let mut slots = Vec::new();
    for spec in def.signature.attrs.iter().filter(|a| a.inferred.is_none()) {
        let collapsed = spatial_int(spec, node.attrs.get(spec.name));
        let v = collapsed.as_ref().unwrap_or_else(|| node.attrs.get(spec.name));
        let default = render::default(spec.default);
        // An attribute a graph builder left out has its default (an importer need not fill
        // them in), so it is left out here too.
        let text = match (v, &default) {
            (AttrValue::None, Some(d)) => d.clone(),
            _ => render::value(v).map_err(|why| WriteError::Unwritable {
                layer: node.path.clone(),
                attr: spec.name.to_string(),
                why: format!("{why:?}"),
            })?,
        };
        slots.push(Slot {
            text,
            ty: SlotType::of(v),
            name: spec.name.to_string(),
            owner: segment.to_string(),
            default,
            positional: spec.default == ops::Default::Required,
        });
    }
    let flag = |name: &str, text: String, ty: SlotType, default: &str| Slot {
        text,
        ty,
        name: name.to_string(),
        owner: segment.to_string(),
        default: Some(default.to_string()),
        positional: false,
    };
    slots.push(flag("frozen", node.frozen.to_string(), SlotType::Bool, "false"));
    // `init=` and `bias_init=`, where the spec chose a scheme (ops with an `init` attribute of
    // their own, `Parameter`, keep theirs among the attributes).
    if def.signature.attrs.iter().all(|a| a.name != "init") {
        for (name, bias) in [("init", false), ("bias_init", true)] {
            let chosen = node.params.iter().find_map(|p| match &p.init {
                Init::Chosen(scheme) if p.kind == ops::ParamKind::Weight && ops::is_bias(&p.name) == bias => {
                    Some(render::string(&scheme.to_string()))
                }
                _ => None,
            });
            slots.push(flag(name, chosen.unwrap_or_else(|| "none".into()), SlotType::Str, "none"));
        }
    }
    // Every tied parameter of a layer names the same owner layer.
    let owner = node.tied.first().map(|(name, owner)| {
        let layer = if name.is_empty() {
            owner.as_str()
        } else {
            owner.strip_suffix(&format!(".{name}")).unwrap_or(owner)
        };
        tree_paths.get(layer).cloned().unwrap_or_else(|| layer.to_string())
    });
    let tie = owner.map_or("none".to_string(), |o| render::string(&o));
    slots.push(flag("tie", tie, SlotType::Str, "none"));
    Ok(slots)
}

/// The attributes whose one int means that int along every spatial axis (`kernel_size=3` is
/// `[3, 3]` to a 2-D op): others that take an int or a list (`normalized_shape`, `axis`,
/// `split_size_or_sections`) mean something else by the two.
const SPATIAL: &[&str] =
    &["kernel_size", "stride", "padding", "dilation", "output_padding", "output_size", "size"];

/// A spatial attribute's list of equal ints (`[3, 3]`, as an importer reads ONNX's per-axis
/// values) as the one int a person writes.
fn spatial_int(spec: &ops::AttrSpec, v: &AttrValue) -> Option<AttrValue> {
    let int_or_list = matches!(spec.ty, ops::AttrType::IntOrList | ops::AttrType::IntListOrChoice(_));
    if !int_or_list || !SPATIAL.contains(&spec.name) {
        return None;
    }
    let AttrValue::List(items) = v else { return None };
    let first = items.first()?;
    (matches!(first, AttrValue::Int(_)) && items.iter().all(|i| i == first)).then(|| first.clone())
}
