//! wick's reading of a call's positional arguments against PyTorch's.
//!
//! wick infers a layer's input size (`Linear`'s `in_features`, a transformer layer's
//! `d_model`), so `Linear(200)` gives `out_features`. PyTorch takes that size first, and a call
//! written in its order (`Linear(784, 200)`) would shift every argument. Each callee declares
//! its inferred sizes at PyTorch's positions; wick's reading skips them, PyTorch's fills every
//! slot in order. A call is read PyTorch's way only when wick's reading does not fit, and
//! refused when both fit and the leading value also matches the input: then nothing but the
//! writer can say which was meant.

use super::diagnostics as diag;
use super::value::Value;
use super::Elaborator;
use crate::front::ast::{Arg, Ident};
use crate::front::span::Span;

/// Where an argument's value comes from.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Source {
    Piped,
    /// The argument at this index of the call.
    Given(usize),
}

/// An inferred size: its slot, the slot of the tensor it is read from, and the axis there
/// (negative counts from the end).
#[derive(Clone, Copy)]
pub(super) struct Inferred {
    pub slot: usize,
    pub input: usize,
    pub axis: i64,
}

/// What choosing a reading needs to know of a callee.
pub(super) struct Callee<'c> {
    pub name: &'c str,
    /// Every slot, in PyTorch's order.
    pub names: &'c [&'c str],
    pub inferred: Vec<Inferred>,
    /// The slots a call must fill (inferred sizes never are).
    pub required: Vec<bool>,
    /// Whether a value may go in a slot, without reporting anything.
    pub fits: &'c dyn Fn(&Elaborator<'_>, usize, &Value) -> bool,
}

impl Callee<'_> {
    /// wick's positional order: every slot but the inferred sizes.
    pub fn wick_order(&self) -> Vec<usize> {
        (0..self.names.len()).filter(|s| !self.inferred.iter().any(|i| i.slot == *s)).collect()
    }
}

/// A problem in matching arguments to slots, reported only for the reading that is used.
pub(super) enum Problem<'a> {
    AfterKeyword(Span),
    TooMany(Span),
    UnknownKeyword(&'a Ident),
    GivenTwice(&'a Ident),
}

/// Slots filled when positional arguments go, in turn, to the slots of `order` (a piped input
/// to the first) and keywords to their names (an op's axis by any of its spellings, see
/// `axis_aliases`); modifiers (`frozen`, `tie`) are skipped.
pub(super) fn assign<'a>(
    names: &[&str],
    order: &[usize],
    args: &'a [Arg],
    (piped, callee): (bool, &str),
    span: Span,
) -> (Vec<Option<Source>>, Vec<Problem<'a>>) {
    let mut slots: Vec<Option<Source>> = vec![None; names.len()];
    let mut problems = Vec::new();
    let mut next = 0;
    if piped {
        match order.first() {
            Some(first) => slots[*first] = Some(Source::Piped),
            None => problems.push(Problem::TooMany(span)),
        }
        next = 1;
    }
    let mut seen_keyword = false;
    for (index, arg) in args.iter().enumerate() {
        match &arg.name {
            None if seen_keyword => problems.push(Problem::AfterKeyword(arg.value.span)),
            None => match order.get(next) {
                Some(slot) => {
                    slots[*slot] = Some(Source::Given(index));
                    next += 1;
                }
                None => problems.push(Problem::TooMany(arg.value.span)),
            },
            Some(key) if super::modifiers::is_modifier(&key.name, names) => seen_keyword = true,
            Some(key) => {
                seen_keyword = true;
                match keyword_slot(names, &key.name, callee) {
                    None => problems.push(Problem::UnknownKeyword(key)),
                    Some(i) if slots[i].is_some() => problems.push(Problem::GivenTwice(key)),
                    Some(i) => slots[i] = Some(Source::Given(index)),
                }
            }
        }
    }
    (slots, problems)
}

/// Spellings of one argument, any of which names it where a callee has another: `dim` as
/// PyTorch's `softmax`, `axis` as numpy's `mean`, `dims` as PyTorch's `flip` and `roll`.
const AXIS_SPELLINGS: &[&str] = &["axis", "dim", "dims"];

/// Whether `callee`'s axis may be spelled any of [`AXIS_SPELLINGS`]: an op's may, a block's
/// parameters are named by its writer and only so. (A block named like an op is never called:
/// the op is found first.)
fn axis_aliases(callee: &str) -> bool {
    crate::ops::lookup(callee).is_some()
}

/// The slot a keyword fills: the one of its name, or, for an axis spelled another way than
/// `callee` spells it, the callee's own spelling.
fn keyword_slot(names: &[&str], key: &str, callee: &str) -> Option<usize> {
    names.iter().position(|n| *n == key).or_else(|| {
        if !AXIS_SPELLINGS.contains(&key) || !axis_aliases(callee) {
            return None;
        }
        names.iter().position(|n| AXIS_SPELLINGS.contains(n))
    })
}

/// One reading of a call: each positional (non-tensor) argument with the slot it fills.
fn spelled(
    callee: &Callee,
    slots: &[Option<Source>],
    args: &[Arg],
    values: &[Option<(Value, Span)>],
) -> String {
    let parts: Vec<String> = slots
        .iter()
        .enumerate()
        .filter_map(|(slot, src)| match src {
            Some(Source::Given(i)) if args[*i].name.is_none() => match values.get(*i) {
                Some(Some((Value::Tensor(_), _))) => None,
                Some(Some((v, _))) => Some(format!("{}={}", callee.names[slot], literal(v))),
                _ => None,
            },
            _ => None,
        })
        .collect();
    parts.join(", ")
}

/// A value as a spec writes it, so a suggested spelling can be pasted back: strings quoted,
/// floats with their point (`1.0`, which `display` shows as `1`).
fn literal(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("\"{s}\""),
        Value::Float(f) => format!("{f:?}"),
        other => other.display(),
    }
}

impl<'a> Elaborator<'a> {
    /// The order positional arguments fill slots in: wick's, or PyTorch's where only that one
    /// fits. `None` when both fit and the call was refused as ambiguous.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn choose_reading(
        &mut self,
        callee: &Callee,
        args: &'a [Arg],
        piped: &Option<Value>,
        values: &mut [Option<(Value, Span)>],
        env: usize,
        prefix: &str,
        span: Span,
    ) -> Option<Vec<usize>> {
        let wick = callee.wick_order();
        if callee.inferred.is_empty() {
            return Some(wick);
        }
        let torch: Vec<usize> = (0..callee.names.len()).collect();
        let (wick_slots, wick_problems) =
            assign(callee.names, &wick, args, (piped.is_some(), callee.name), span);
        let (torch_slots, torch_problems) =
            assign(callee.names, &torch, args, (piped.is_some(), callee.name), span);
        if wick_slots == torch_slots || !torch_problems.is_empty() {
            return Some(wick);
        }
        // Positional arguments only: keywords land alike in both readings.
        for (i, arg) in args.iter().enumerate() {
            if arg.name.is_none() && values[i].is_none() {
                values[i] = Some((self.eval(&arg.value, env, prefix), arg.value.span));
            }
        }
        if values.iter().flatten().any(|(v, _)| v.is_poison()) {
            return Some(wick);
        }
        if !self.reading_fits(callee, &torch_slots, args, values) {
            return Some(wick);
        }
        // Too many arguments for wick's order is arity speaking for PyTorch's; a keyword that
        // collides with a positional one is reported in wick's terms, as before.
        if wick_problems.iter().any(|p| !matches!(p, Problem::TooMany(_))) {
            return Some(wick);
        }
        if !wick_problems.is_empty() || !self.reading_fits(callee, &wick_slots, args, values) {
            return Some(torch);
        }
        let leading_matches = callee.inferred.iter().all(|inf| match torch_slots[inf.slot] {
            Some(Source::Given(i)) => {
                let given = values[i].as_ref().map(|(v, _)| v);
                let input = self.slot_value(torch_slots[inf.input], piped, values);
                match (given, input.and_then(|t| self.size_at(&t, inf.axis))) {
                    (Some(Value::Int(g)), Some(actual)) => self.dims_equal(g, &actual),
                    _ => false,
                }
            }
            _ => true,
        });
        if !leading_matches {
            // PyTorch's reading contradicts the input: wick's is the only one that holds.
            return Some(wick);
        }
        let wick_text = spelled(callee, &wick_slots, args, values);
        let torch_text = spelled(callee, &torch_slots, args, values);
        self.report(diag::ambiguous_reading(span, callee.name, &wick_text, &torch_text));
        None
    }

    /// Whether every positional argument fits its slot and every required slot is filled.
    fn reading_fits(
        &self,
        callee: &Callee,
        slots: &[Option<Source>],
        args: &[Arg],
        values: &[Option<(Value, Span)>],
    ) -> bool {
        slots.iter().enumerate().all(|(slot, src)| match src {
            None => !callee.required[slot],
            Some(Source::Given(i)) if args[*i].name.is_none() => {
                values[*i].as_ref().is_some_and(|(v, _)| (callee.fits)(self, slot, v))
            }
            Some(_) => true,
        })
    }

    fn slot_value(
        &self,
        src: Option<Source>,
        piped: &Option<Value>,
        values: &[Option<(Value, Span)>],
    ) -> Option<Value> {
        match src? {
            Source::Piped => piped.clone(),
            Source::Given(i) => values.get(i)?.as_ref().map(|(v, _)| v.clone()),
        }
    }

    /// The size of a tensor value at `axis` (negative from the end).
    pub(super) fn size_at(&self, v: &Value, axis: i64) -> Option<crate::ir::dim::Dim> {
        let Value::Tensor(t) = v else { return None };
        let rank = t.ty.shape.len() as i64;
        let index = if axis < 0 { rank + axis } else { axis };
        usize::try_from(index).ok().and_then(|i| t.ty.shape.get(i).cloned())
    }
}
