//! Every error and warning of elaboration, one constructor each, with its stable code.
//!
//! Codes: E01xx syntax and files, E02xx names and calls, E03xx types and shapes,
//! E04xx graph structure and limits; W04xx warnings. The README lists them.

use super::value::Value;
use crate::diag::{did_you_mean, Diagnostic};
use crate::front::ast::{BinOp, Ident, Repeat};
use crate::front::span::Span;
use crate::ir::dim::{Dim, DimError};
use crate::ir::graph::CallSite;
use crate::ir::tensor::{shape_string, DType, TensorType};
use crate::ops::OpError;

fn calls(chain: &[CallSite]) -> Vec<(String, Span, String)> {
    chain.iter().map(|c| (c.block.clone(), c.span, c.path.clone())).collect()
}

fn suggest(d: Diagnostic, name: &str, candidates: &[&str]) -> Diagnostic {
    match did_you_mean(name, candidates.iter().copied()) {
        Some(s) if s != name => d.help(format!("did you mean `{s}`?")),
        _ => d,
    }
}

// ---- E02xx: names and calls ----

pub fn undefined_name(span: Span, name: &str, candidates: &[&str]) -> Diagnostic {
    let d = Diagnostic::error("E0201", format!("undefined name `{name}`"))
        .at(span, "no binding, parameter or dim has this name here");
    let d = suggest(d, name, candidates);
    match name.chars().next() {
        _ if d.help.is_some() => d,
        Some(c) if c.is_uppercase() => d.help(format!("if `{name}` is a dimension, declare it with `dim {name}`")),
        _ => d.help(format!(
            "if `{name}` is a model input, declare it in the model: `input {name}: [N, ...]`; else bind it first (`{name} = ...`)"
        )),
    }
}

pub fn unknown_op(span: Span, name: &str, candidates: &[&str]) -> Diagnostic {
    let d = Diagnostic::error("E0202", format!("unknown op or block `{name}`"))
        .at(span, "no op or block has this name");
    if let Some(line) = super::library::use_line(name) {
        return d.help(format!("`{name}` is a block of the bundled library: `{line}` brings it in"));
    }
    let d = suggest(d, name, candidates);
    if d.help.is_none() {
        return d.help("`wick ops` lists the ops and the functions on numbers; blocks come from this file and its `use` imports");
    }
    d
}

pub fn unknown_keyword(key: &Ident, callee: &str, names: &[&str]) -> Diagnostic {
    let d = Diagnostic::error("E0203", format!("`{callee}` has no argument `{}`", key.name))
        .at(key.span, "unknown keyword");
    let d = suggest(d, &key.name, names);
    if d.help.is_none() {
        return d.help(format!("its arguments are: {}", names.join(", ")));
    }
    d
}

pub fn too_many_args(span: Span, callee: &str, max: usize) -> Diagnostic {
    Diagnostic::error("E0204", format!("too many positional arguments to `{callee}`"))
        .at(span, format!("`{callee}` takes at most {max} (a piped input counts as the first)"))
}

pub fn positional_after_keyword(span: Span) -> Diagnostic {
    Diagnostic::error("E0204", "positional argument after a keyword argument")
        .at(span, "move this before the keyword arguments, or name it")
}

pub fn given_twice(key: &Ident, callee: &str) -> Diagnostic {
    Diagnostic::error("E0205", format!("argument `{}` of `{callee}` given twice", key.name))
        .at(key.span, "already given (by position or by name)")
}

/// A required argument not given; `ty` is what it takes (`int`, `tensor`).
pub fn missing_arg(span: Span, callee: &str, name: &str, ty: &str, signature: &str) -> Diagnostic {
    Diagnostic::error("E0206", format!("missing argument `{name}` of `{callee}` ({ty})"))
        .at(span, format!("`{name}` is required"))
        .help(format!("the signature is {signature}"))
}

pub fn missing_block_arg(span: Span, block: &Ident, param: &Ident) -> Diagnostic {
    Diagnostic::error("E0206", format!("missing argument `{}` of block `{}`", param.name, block.name))
        .at(span, format!("`{}` has no default", param.name))
        .also(param.span, "declared here")
}

pub fn wrong_type(span: Span, expected: &str, found: &Value) -> Diagnostic {
    let d = Diagnostic::error("E0207", format!("expected {expected}, found {}", found.describe()))
        .at(span, format!("expected {expected}"));
    if expected.contains("int") && matches!(found, Value::Float(_)) {
        return d.help(
            "a float becomes an int through `round(x)`, `floor(x)`, `ceil(x)` or `int(x)` (toward zero)",
        );
    }
    d
}

/// `round(1e300)`: no int holds the result.
pub fn float_out_of_range(span: Span, function: &str, x: f64) -> Diagnostic {
    Diagnostic::error("E0207", format!("`{function}` of {x:?} is not an int wick can hold"))
        .at(span, "not a finite number within 64-bit integers")
}

pub fn not_indexable(span: Span, found: &Value) -> Diagnostic {
    Diagnostic::error("E0218", format!("only a list can be indexed, found {}", found.describe()))
        .at(span, "not a list")
}

pub fn index_out_of_range(span: Span, index: i64, len: usize) -> Diagnostic {
    let valid = match len {
        0 => "the list is empty".to_string(),
        1 => "the only index is 0 (or -1 from the end)".to_string(),
        n => format!("valid indices are 0..{} (or -{n}..-1 from the end)", n - 1),
    };
    Diagnostic::error("E0218", format!("index {index} is out of range for a list of {len} items"))
        .at(span, "out of range")
        .note(valid)
}

/// A statement that is a value (a number, a list, a name...) whose value nothing takes: most
/// often the continuation of the line above, which a new line ended.
pub fn unused_value(span: Span) -> Diagnostic {
    Diagnostic::error("E0219", "this value is never used")
        .at(span, "a statement of its own")
        .help("bind it (`name = ...`), or if it belongs to the line above, join them: `ks[1]` indexes, while `ks` and `[1]` on two lines are two statements")
}

pub fn bad_repeat_name(span: Span, name: &str) -> Diagnostic {
    bad_segment(span, name, "a repeat's `as`")
        .help("name each repetition with letters, digits, `_` or `-`, as `as \"layer{i}\"`")
}

/// A quoted label (`"block1-0": ...`) that is not one path segment.
pub fn bad_label(span: Span, name: &str) -> Diagnostic {
    bad_segment(span, name, "a label").help("quote any text without a `.`: `\"block1-0\": Conv2d(...)`")
}

fn bad_segment(span: Span, name: &str, whose: &str) -> Diagnostic {
    let (found, why) = match name {
        "" => ("an empty name".to_string(), "its layers' keys would have an empty segment (`f.1..weight`)"),
        _ => (
            format!("`{name}`"),
            "a `.` would make one name two path segments, and a key both a tensor and a prefix",
        ),
    };
    Diagnostic::error("E0220", format!("{whose} names one path segment, found {found}"))
        .at(span, "not a path segment")
        .note(why)
}

/// A size wick infers, given (by keyword, or first in PyTorch's order) with another value.
pub fn inferred_mismatch(
    span: Span,
    callee: &str,
    name: &str,
    given: &Dim,
    actual: &Dim,
    input: Span,
) -> Diagnostic {
    Diagnostic::error(
        "E0221",
        format!("`{name}` of `{callee}` is given as {given}, but its input has {actual}"),
    )
    .at(span, format!("`{name}` = {given}"))
    .also(input, format!("the input, where `{name}` is {actual}"))
    .help(format!(
        "wick reads `{name}` from the input: leave it out, or feed `{callee}` an input of size {given}"
    ))
}

/// A call whose positional arguments fit both wick's order (the inferred size left out) and
/// PyTorch's (it first), with the leading value equal to the input's size.
pub fn ambiguous_reading(span: Span, callee: &str, wick: &str, pytorch: &str) -> Diagnostic {
    Diagnostic::error("E0222", format!("`{callee}` reads two ways: wick's order and PyTorch's"))
        .at(span, "both orders fit these arguments and this input")
        .help(format!(
            "say which by keyword: wick's order is `{callee}({wick})`, PyTorch's is `{callee}({pytorch})`"
        ))
}

/// A string that is not one of an attribute's choices; `or_number` when a number is accepted too.
pub fn bad_choice(span: Span, name: &str, found: &str, choices: &[&str], or_number: bool) -> Diagnostic {
    let list: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    let number = if or_number { "a number or " } else { "" };
    let d = Diagnostic::error(
        "E0207",
        format!("`{name}` must be {number}one of {}, found \"{found}\"", list.join(", ")),
    )
    .at(span, "not an accepted value");
    suggest(d, found, choices)
}

pub fn bad_attr(span: Span, kind: &str, e: &OpError, chain: &[CallSite]) -> Diagnostic {
    let mut d = Diagnostic::error("E0208", format!("invalid argument to {kind}: {}", e.message))
        .at(span, "invalid value")
        .called_from(calls(chain));
    if let Some(h) = &e.help {
        d = d.help(h.clone());
    }
    d
}

pub fn tie_on_block(span: Span) -> Diagnostic {
    Diagnostic::error("E0215", "`tie` applies to a layer, not to a block call")
        .at(span, "this call makes a block")
        .help("put `tie=\"...\"` on the layer inside the block whose parameters are shared")
}

/// `init=` or `bias_init=` that names no scheme, gives it wrong arguments, or does not fit a
/// parameter's shape.
pub fn bad_init(span: Span, message: &str) -> Diagnostic {
    Diagnostic::error("E0225", format!("initialisation: {message}")).at(span, "this initialisation").help(
        "the schemes are torch.nn.init's: xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal, \
         normal, trunc_normal, orthogonal, uniform, constant, zeros, ones",
    )
}

/// A scheme that reads fans chosen for a 1-d parameter (a block's `init=` reaching a norm).
pub fn init_needs_fans(span: Span, message: &str) -> Diagnostic {
    Diagnostic::error("E0225", format!("initialisation: {message}")).at(span, "this initialisation").help(
        "a 1-d parameter (a norm's weight, a bias) takes a scheme without fans (`ones`, \
         `normal(1, 0.02)`): give its layer its own `init=` or `bias_init=`, which wins over the block's",
    )
}

pub fn unknown_tie_target(span: Span, target: &str, layers: &[&str]) -> Diagnostic {
    let d = Diagnostic::error("E0216", format!("`tie` names `{target}`, which is no layer of this model"))
        .at(span, "no layer has this path");
    let d = suggest(d, target, layers);
    if d.help.is_none() {
        return d.help("name the owning layer by its full dotted path, as the summary shows it");
    }
    d
}

pub fn bad_tie(span: Span, layer: &str, target: &str, problems: &[String]) -> Diagnostic {
    let mut d = Diagnostic::error("E0217", format!("`{layer}` cannot share the parameters of `{target}`"))
        .at(span, "tied here");
    for p in problems {
        d = d.note(p.clone());
    }
    d.help("a tied layer must have parameters of the same names and shapes as its owner")
}

pub fn duplicate_definition(name: &Ident, prev: Span) -> Diagnostic {
    Diagnostic::error("E0209", format!("`{}` is defined twice", name.name))
        .at(name.span, "defined again here")
        .also(prev, "first defined here")
}

pub fn shadows_op(name: &Ident) -> Diagnostic {
    Diagnostic::error("E0209", format!("block `{}` has the name of a built-in op", name.name))
        .at(name.span, "rename this block")
}

pub fn conflicting_dim(name: &Ident, prev: Span) -> Diagnostic {
    Diagnostic::error("E0209", format!("dim `{}` is declared twice with different examples", name.name))
        .at(name.span, "declared again here")
        .also(prev, "first declared here")
}

pub fn duplicate_path(span: Span, path: &str, prev: Span) -> Diagnostic {
    Diagnostic::error("E0210", format!("two layers with parameters at path `{path}`"))
        .at(span, "this layer")
        .also(prev, "has the same path as this one")
        .help("give one of them another label; parameter paths must be unique")
}

pub fn duplicate_io(name: &Ident, what: &str) -> Diagnostic {
    Diagnostic::error("E0210", format!("{what} `{}` is declared twice", name.name))
        .at(name.span, "declared again")
}

pub fn label_without_input(label: &Ident) -> Diagnostic {
    Diagnostic::error("E0211", format!("label `{}` names nothing that makes a layer", label.name))
        .at(label.span, "a label goes before a layer, as in `x |> fc: Linear(10)`")
}

pub fn value_as_layer(span: Span, name: &str) -> Diagnostic {
    Diagnostic::error("E0211", format!("`{name}` is a value, not a layer"))
        .at(span, "expected an op or block after `|>`")
        .help(format!("to combine tensors use an op, e.g. `concat([x, {name}])` or `x + {name}`"))
}

pub fn layer_as_value(span: Span, name: &str) -> Diagnostic {
    Diagnostic::error("E0211", format!("`{name}` is a layer, not a value"))
        .at(span, "needs an input")
        .help(format!("feed it a tensor: `x |> {name}` or `{name}(x)`"))
}

pub fn expected_layer(span: Span, found: &str) -> Diagnostic {
    Diagnostic::error("E0211", format!("expected a layer after `|>`, found {found}")).at(span, "not a layer")
}

pub fn repeat_without_input(span: Span, _r: &Repeat) -> Diagnostic {
    Diagnostic::error("E0211", "`repeat` needs an input")
        .at(span, "use it after `|>`: `x |> repeat 3 { ... }`")
}

pub fn model_called(span: Span, model: &Ident) -> Diagnostic {
    Diagnostic::error("E0211", format!("`{}` is a model and cannot be called", model.name))
        .at(span, "only blocks and ops can be called")
        .also(model.span, "defined as a model here")
}

pub fn misplaced(span: Span, what: &str, allowed_in: &str) -> Diagnostic {
    Diagnostic::error("E0212", format!("{what} is only allowed in {allowed_in}")).at(span, "not allowed here")
}

pub fn no_return(block: &Ident) -> Diagnostic {
    Diagnostic::error("E0212", format!("block `{}` ends without `return`", block.name))
        .at(block.span, "add `return <tensor>` at the end of its body")
}

/// A layer with several outputs (an LSTM's output, h_n, c_n) piped on as if it had one.
pub fn several_outputs(span: Span, found: &Value) -> Diagnostic {
    wrong_type(span, "a tensor", found).help(
        "a layer with several outputs gives a list: unpack it first (`out, h, c = x |> LSTM(...)`), \
         then pipe the one you need",
    )
}

pub fn destructure(span: Span, n: usize, found: &Value) -> Diagnostic {
    Diagnostic::error("E0207", format!("cannot unpack {} into {n} names", found.describe()))
        .at(span, format!("expected {n} values"))
}

pub fn unknown_model(name: &str, models: &[&str]) -> Diagnostic {
    let d = Diagnostic::error("E0213", format!("no model named `{name}`"));
    let d = suggest(d, name, models);
    d.note(format!(
        "models in the spec: {}",
        if models.is_empty() { "none".into() } else { models.join(", ") }
    ))
}

/// `file_start`: the start of the root file, which a model must be defined in.
pub fn no_model(file_start: Span) -> Diagnostic {
    Diagnostic::error("E0213", "the spec defines no model")
        .at(file_start, "this file defines no `model`")
        .help("add `model Name { input x: [...] ... output y }`")
}

pub fn model_param_without_default(name: &Ident) -> Diagnostic {
    Diagnostic::error("E0213", format!("model parameter `{}` needs a default", name.name))
        .at(name.span, "a model is built from its defaults")
}

pub fn model_without_outputs(name: &Ident) -> Diagnostic {
    Diagnostic::error("E0213", format!("model `{}` has no outputs", name.name))
        .at(name.span, "add `output <name>` to its body")
}

pub fn unknown_bind(name: &str, known: &[&str]) -> Diagnostic {
    let d = Diagnostic::error("E0214", format!("`--bind {name}=...` names no dim of the spec"));
    let d = suggest(d, name, known);
    d.note(format!("dims declared: {}", if known.is_empty() { "none".into() } else { known.join(", ") }))
}

pub fn unknown_dtype(id: &Ident) -> Diagnostic {
    let names: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
    let d = Diagnostic::error("E0207", format!("unknown dtype `{}`", id.name)).at(id.span, "not a dtype");
    suggest(d, &id.name, &names).note(format!("dtypes: {}", names.join(", ")))
}

// ---- E03xx: types, shapes, values ----

pub fn shape_error(
    span: Span,
    kind: &str,
    path: &str,
    e: &OpError,
    input: Option<(Span, TensorType)>,
    chain: &[CallSite],
) -> Diagnostic {
    // An unlabelled layer's path is its op's name (`concat`); saying it twice adds nothing.
    let layer = if path.eq_ignore_ascii_case(kind) { kind.to_string() } else { format!("{kind} `{path}`") };
    let mut d = Diagnostic::error("E0301", format!("shape error in {layer}: {}", e.message))
        .at(span, format!("in this {kind}"))
        .called_from(calls(chain));
    if let Some((s, ty)) = input {
        d = d.also(s, format!("this has shape {ty}"));
    }
    if let Some(h) = &e.help {
        d = d.help(h.clone());
    }
    d
}

pub fn type_mismatch_kind(at: Span, declared: Span, what: &str, found: &Value) -> Diagnostic {
    Diagnostic::error("E0302", format!("{what}: type mismatch, found {}", found.describe()))
        .at(at, "this value")
        .also(declared, "declared type")
}

pub fn dtype_mismatch(at: Span, declared: Span, what: &str, want: DType, got: DType) -> Diagnostic {
    Diagnostic::error("E0302", format!("{what}: expected dtype {want}, found {got}"))
        .at(at, format!("this is {got}"))
        .also(declared, format!("declared {want}"))
}

pub fn rank_mismatch(at: Span, declared: Span, what: &str, rank: usize, found: &TensorType) -> Diagnostic {
    Diagnostic::error(
        "E0302",
        format!("{what}: expected a rank-{rank} tensor, found {found} (rank {})", found.rank()),
    )
    .at(at, format!("has shape {found}"))
    .also(declared, format!("declared with {rank} dims"))
}

pub fn shape_mismatch(
    at: Span,
    declared: Span,
    what: &str,
    found: &TensorType,
    mismatches: &[(usize, Dim, Dim)],
    chain: &[CallSite],
) -> Diagnostic {
    let axes: Vec<String> =
        mismatches.iter().map(|(axis, want, got)| format!("axis {axis} is {got}, expected {want}")).collect();
    Diagnostic::error(
        "E0302",
        format!("{what}: shape {} does not match the declared type", shape_string(&found.shape)),
    )
    .at(at, axes.join("; "))
    .also(declared, "declared here")
    .called_from(calls(chain))
}

pub fn expected_tensor_type(span: Span) -> Diagnostic {
    Diagnostic::error("E0302", "an input needs a tensor type").at(span, "expected `[dims]`")
}

/// A failed `assert`: the caret on the condition, and the message (interpolated, with its
/// span) as the rule that was broken.
pub fn assert_failed(cond: Span, message: Option<(String, Span)>, chain: &[CallSite]) -> Diagnostic {
    let d = match message {
        Some((m, span)) => Diagnostic::error("E0303", format!("assertion failed: {m}"))
            .at(cond, "this is false")
            .also(span, "the rule"),
        None => Diagnostic::error("E0303", "assertion failed").at(cond, "this is false"),
    };
    d.called_from(calls(chain))
}

pub fn undecidable(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error("E0304", format!("cannot decide `{what}` at compile time"))
        .at(span, "depends on a dim that has no value")
        .help("give the dim an example (`dim T = 128`) or bind it (`--bind T=128`)")
}

pub fn unbound(span: Span, d: &Dim, what: &str) -> Diagnostic {
    let syms = d.symbols();
    let names = syms.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
    let first = syms.first().cloned().unwrap_or_else(|| "N".into());
    Diagnostic::error("E0305", format!("{what} depends on unbound dim {names}"))
        .at(span, format!("`{d}` has no value"))
        .help(format!("give it an example (`dim {first} = ...`) or bind it (`--bind {first}=...`)"))
}

pub fn not_constant(span: Span, d: &Dim) -> Diagnostic {
    unbound(span, d, "this value")
}

pub fn division(span: Span, e: &DimError) -> Diagnostic {
    match e {
        DimError::DivisionByZero => Diagnostic::error("E0306", "division by zero").at(span, "this is 0"),
        DimError::SymbolicDivisor(d) => {
            Diagnostic::error("E0306", format!("cannot divide by the symbolic `{d}`"))
                .at(span, "divisors must be constants")
        }
    }
}

pub fn overflow(span: Span) -> Diagnostic {
    Diagnostic::error("E0306", "integer overflow")
        .at(span, "the result does not fit in 64 bits, or has too many symbolic terms to keep")
}

pub fn bad_operands(span: Span, op: BinOp, l: &Value, r: &Value) -> Diagnostic {
    Diagnostic::error(
        "E0207",
        format!("cannot apply `{}` to {} and {}", op.symbol(), l.describe(), r.describe()),
    )
    .at(span, "unsupported operands")
}

// ---- E04xx: structure and limits ----

pub fn cycle(span: Span, name: &str, binder: Option<Span>) -> Diagnostic {
    let d = Diagnostic::error("E0401", format!("cycle: `{name}` depends on itself"))
        .at(span, format!("`{name}` is needed here while it is being computed"));
    match binder {
        Some(b) if b != span => d.also(b, format!("`{name}` is defined here")),
        _ => d,
    }
    .help("a model is a DAG: break the loop")
}

pub fn size_cap(span: Span, count: Option<i64>, max: usize) -> Diagnostic {
    let msg = match count {
        Some(n) => format!("`repeat` of {n} would exceed the limit of {max} layers"),
        None => format!("the model exceeds the limit of {max} layers and groups"),
    };
    Diagnostic::error("E0402", msg).at(span, "too large").help("this cap keeps a typo from exhausting memory")
}

pub fn work_budget(span: Span, what: &str, max: u64) -> Diagnostic {
    Diagnostic::error("E0402", format!("elaboration took more than {max} steps, in this {what}"))
        .at(span, "this builds too much")
        .help("a `repeat` count or a block that calls itself grows the work; this budget keeps a typo from running without end")
}

pub fn recursion(span: Span, block: &str, depth: usize) -> Diagnostic {
    Diagnostic::error("E0402", format!("block calls nested {depth} deep, at `{block}`"))
        .at(span, "does a block call itself?")
}

pub fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::error("E0402", "expression nested too deeply")
        .at(span, "here")
        .help("split it into named steps")
}

pub fn negative_repeat(span: Span, start: i64, end: i64) -> Diagnostic {
    Diagnostic::error("E0306", format!("empty or reversed range {start}..{end}"))
        .at(span, "end is before start")
}

/// `act(x, 0.1)` where `act` was given as `LeakyReLU(0.2)`: which arguments would count.
pub fn op_value_called_with_arguments(span: Span, name: &str, written: Span) -> Diagnostic {
    Diagnostic::error("E0223", format!("this op value (`{name}`) has its arguments already"))
        .at(span, "called with more")
        .also(written, "its arguments are given here")
        .help("apply it as a layer: `x |> act`")
}

/// A block that returns an op value (`return act`): ops are applied, not passed back.
pub fn op_value_returned(span: Span) -> Diagnostic {
    Diagnostic::error("E0223", "a block returns an op value")
        .at(span, "this call")
        .help("apply the op inside the block (`x |> act`) and return the tensor")
}

/// `scale: op` where `scale` is an op: a stage `|> scale` would call the op.
pub fn op_param_named_like_op(name: &Ident) -> Diagnostic {
    Diagnostic::error(
        "E0223",
        format!("a parameter of type `op` is named `{}`, as an op or block is", name.name),
    )
    .at(name.span, "an op or block of this name")
    .note(format!("`x |> {}` calls the op or block, never the parameter", name.name))
    .help(format!("rename it: `{}_act`, `{}_layer`", name.name, name.name))
}

/// `...stage` where no sequence numbers layers: outside a list or a parenthesised chain.
pub fn misplaced_spread(span: Span) -> Diagnostic {
    Diagnostic::error("E0224", "`...` splices layers into a sequence, and there is none here")
        .at(span, "not an item of a list or a parenthesised chain, nor a block call")
        .help("write it as an item, `features: [Conv2d(64, 3), ...VGGStage(64, 2)]`, or inline a block: `x |> ...Stage(64)`")
}
