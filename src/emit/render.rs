//! Spec text for values and names: dims, attribute values, labels, fresh identifiers.

use std::collections::HashSet;

use crate::front::is_word;
use crate::ir::dim::Dim;
use crate::ops::{AttrValue, Default};

/// Why a value has no spec text.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Unwritable {
    /// A float that is not finite (`inf`, `NaN`): the language has no literal for it.
    Float(f64),
    /// A dim with a power (`h^2`): the language writes products, not powers.
    Power(String),
}

/// The words the grammar reserves (`keyword` in `grammar/wick.pest`): never a binding name.
pub(super) const KEYWORDS: &[&str] = &[
    "use", "dim", "block", "model", "input", "output", "return", "assert", "if", "else", "repeat", "in",
    "as", "of", "true", "false", "none", "train",
];

/// A dim as an expression the language reads back to the same dim (`/` rounds down there too).
pub(super) fn dim(d: &Dim) -> Result<String, Unwritable> {
    let text = d.to_string();
    if text.contains('^') {
        return Err(Unwritable::Power(text));
    }
    Ok(text)
}

/// A float literal that reads back to the same bits: Rust's shortest round-trip form, which
/// always has a `.` or an exponent, so it never reads as an int.
pub(super) fn float(f: f64) -> Result<String, Unwritable> {
    if !f.is_finite() {
        return Err(Unwritable::Float(f));
    }
    let text = format!("{f:?}");
    // `1e-5` is a float to the grammar; `-0.0` keeps its sign through unary minus.
    Ok(text)
}

/// A string literal, quoted, with `"` and `\` escaped and control characters spelled out.
pub(super) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An attribute value as the language writes it.
pub(super) fn value(v: &AttrValue) -> Result<String, Unwritable> {
    Ok(match v {
        AttrValue::Int(d) => dim(d)?,
        AttrValue::Float(f) => float(*f)?,
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Str(s) => string(s),
        AttrValue::List(items) => {
            let items: Result<Vec<String>, Unwritable> = items.iter().map(value).collect();
            format!("[{}]", items?.join(", "))
        }
        AttrValue::None => "none".to_string(),
    })
}

/// A signature default as the text its value would have, to leave defaults out.
pub(super) fn default(d: Default) -> Option<String> {
    match d {
        Default::Required => None,
        Default::Optional => Some("none".into()),
        Default::Int(v) => Some(v.to_string()),
        Default::Float(v) => float(v).ok(),
        Default::Bool(v) => Some(v.to_string()),
        Default::Str(v) => Some(string(v)),
    }
}

/// A path segment as a label: a bare word or number where the grammar reads one, else quoted.
pub(super) fn label(segment: &str) -> String {
    if is_word(segment) || (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())) {
        segment.to_string()
    } else {
        string(segment)
    }
}

/// Fresh identifiers for one scope: each distinct from the reserved words, the ops, the
/// functions, the dims and every name taken before.
#[derive(Clone, Debug, Default)]
pub(super) struct Names {
    taken: HashSet<String>,
}

impl Names {
    pub fn new(reserved: impl IntoIterator<Item = String>) -> Names {
        Names { taken: reserved.into_iter().collect() }
    }

    fn free(&self, name: &str) -> bool {
        is_word(name)
            && !self.taken.contains(name)
            && !KEYWORDS.contains(&name)
            && crate::ops::lookup(name).is_none()
            && crate::elab::functions::lookup(name).is_none()
    }

    /// `wanted` made an identifier and unique (`bn1`, `bn1_2`, ...), and taken.
    pub fn fresh(&mut self, wanted: &str) -> String {
        let mut base: String =
            wanted.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        if !base.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            base = format!("t{base}");
        }
        let mut name = base.clone();
        let mut n = 2;
        while !self.free(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_the_language_reads_them() {
        assert_eq!(float(1e-5).unwrap(), "1e-5");
        assert_eq!(float(0.1).unwrap(), "0.1");
        assert_eq!(float(2.0).unwrap(), "2.0");
        assert!(float(f64::NAN).is_err());
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        let list = AttrValue::List(vec![AttrValue::Int(Dim::konst(1)), AttrValue::Int(Dim::sym("N"))]);
        assert_eq!(value(&list).unwrap(), "[1, N]");
        assert!(dim(&Dim::sym("h").mul(&Dim::sym("h"))).is_err());
    }

    #[test]
    fn labels_are_bare_words_or_numbers_else_quoted() {
        assert_eq!(label("conv1"), "conv1");
        assert_eq!(label("12"), "12");
        assert_eq!(label("block1-0"), "\"block1-0\"");
    }

    #[test]
    fn fresh_names_avoid_keywords_ops_and_taken_names() {
        let mut names = Names::new(["N".to_string()]);
        assert_eq!(names.fresh("x"), "x");
        assert_eq!(names.fresh("x"), "x_2");
        assert_eq!(names.fresh("N"), "N_2");
        assert_eq!(names.fresh("if"), "if_2");
        assert_eq!(names.fresh("add"), "add_2");
        assert_eq!(names.fresh("0"), "t0");
        assert_eq!(names.fresh("input.1"), "input_1");
    }
}
