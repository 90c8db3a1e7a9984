//! Functions on compile-time values, as channel widths and layer tables are computed: `cdiv`,
//! `min` and `max` on ints (dims, symbolic where they cannot be evaluated); `round`, `floor`,
//! `ceil` and `int` from a float to an int (RegNet's `round(0.25 * w)`, torchvision's
//! `_make_divisible`: `int(v + d / 2) / d * d`); `len` and `enumerate` of a list.

use super::diagnostics as diag;
use super::value::Value;
use super::Elaborator;
use crate::front::ast::Arg;
use crate::front::span::Span;
use crate::ir::dim::Dim;

/// A function a spec may call on numbers.
pub struct Function {
    pub name: &'static str,
    /// Its parameters' names, in order.
    pub params: &'static [&'static str],
    /// What each parameter takes.
    pub takes: &'static str,
    /// How `wick ops` shows it.
    pub signature: &'static str,
    pub doc: &'static str,
}

pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "cdiv",
        takes: "int",
        params: &["a", "b"],
        signature: "cdiv(a: int, b: int) -> int",
        doc: "a / b rounded up",
    },
    Function {
        name: "min",
        takes: "int",
        params: &["a", "b"],
        signature: "min(a: int, b: int) -> int",
        doc: "the lesser",
    },
    Function {
        name: "max",
        takes: "int",
        params: &["a", "b"],
        signature: "max(a: int, b: int) -> int",
        doc: "the greater",
    },
    Function {
        name: "round",
        takes: "float",
        params: &["x"],
        signature: "round(x: float) -> int",
        doc: "the nearest int, halves to the even one (Python's round: round(2.5) = 2)",
    },
    Function {
        name: "floor",
        takes: "float",
        params: &["x"],
        signature: "floor(x: float) -> int",
        doc: "rounded down",
    },
    Function {
        name: "ceil",
        takes: "float",
        params: &["x"],
        signature: "ceil(x: float) -> int",
        doc: "rounded up",
    },
    Function {
        name: "int",
        takes: "float",
        params: &["x"],
        signature: "int(x: float) -> int",
        doc: "rounded toward zero (Python's int: int(-2.5) = -2)",
    },
    Function {
        name: "len",
        takes: "list",
        params: &["items"],
        signature: "len(items: list) -> int",
        doc: "the number of items",
    },
    Function {
        name: "enumerate",
        takes: "list",
        params: &["items"],
        signature: "enumerate(items: list) -> list",
        doc: "[[0, items[0]], [1, items[1]], ...]: `repeat i, c in enumerate(cfg)`",
    },
];

/// The function named `name`.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The functions, one per line: the second part of what `wick ops` prints.
pub fn listing() -> String {
    let width = FUNCTIONS.iter().map(|f| f.signature.len()).max().unwrap_or(0);
    FUNCTIONS.iter().map(|f| format!("{:width$}  {}\n", f.signature, f.doc)).collect()
}

/// A float rounded by `name`'s rule, when it is a finite number an int can hold.
fn to_int(name: &str, x: f64) -> Option<i64> {
    let r = match name {
        "round" => x.round_ties_even(),
        "floor" => x.floor(),
        "ceil" => x.ceil(),
        _ => x.trunc(),
    };
    // i64::MAX as f64 rounds up to 2^63, which does not fit: the bound is exclusive.
    (r.is_finite() && r >= i64::MIN as f64 && r < i64::MAX as f64).then_some(r as i64)
}

impl<'a> Elaborator<'a> {
    /// Call the function `f`; reports and returns poison on a bad argument.
    pub(super) fn call_function(
        &mut self,
        f: &'static Function,
        name_span: Span,
        args: &'a [Arg],
        env: usize,
        prefix: &str,
        span: Span,
    ) -> Value {
        let order: Vec<usize> = (0..f.params.len()).collect();
        let Some(slots) = self.match_args(f.name, f.params, &order, args, false, name_span) else {
            return Value::Poison;
        };
        let mut values = vec![None; args.len()];
        let mut found = Vec::new();
        for (slot, param) in slots.iter().zip(f.params) {
            let Some(src) = *slot else {
                self.report(diag::missing_arg(span, f.name, param, f.takes, f.signature));
                return Value::Poison;
            };
            match self.arg_value(src, args, &mut values, &None, env, prefix, span) {
                (Value::Poison, _) => return Value::Poison,
                found_value => found.push(found_value),
            }
        }
        match (f.name, found.as_slice()) {
            ("len" | "enumerate", [(Value::List(items), _)]) if f.name == "len" => {
                Value::Int(Dim::konst(items.len() as i64))
            }
            ("len" | "enumerate", [(Value::List(items), _)]) => Value::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Value::List(vec![Value::Int(Dim::konst(i as i64)), v.clone()]))
                    .collect(),
            ),
            ("len" | "enumerate", [(other, at)]) => {
                self.report(diag::wrong_type(*at, "a list", other));
                Value::Poison
            }
            (_, [(x, at)]) => self.rounded(f.name, x, *at),
            (_, [(Value::Int(a), _), (Value::Int(b), _)]) => self.on_ints(f.name, a, b, span),
            (_, pair) => {
                let (bad, at) = pair.iter().find(|(v, _)| !matches!(v, Value::Int(_))).unwrap_or(&pair[0]);
                self.report(diag::wrong_type(*at, "an int", bad));
                Value::Poison
            }
        }
    }

    /// `round`, `floor`, `ceil` or `int` of `x`; an int is already one (and may be symbolic).
    fn rounded(&mut self, name: &str, x: &Value, at: Span) -> Value {
        match x {
            Value::Int(d) => Value::Int(d.clone()),
            Value::Float(v) => match to_int(name, *v) {
                Some(i) => Value::Int(Dim::konst(i)),
                None => {
                    self.report(diag::float_out_of_range(at, name, *v));
                    Value::Poison
                }
            },
            other => {
                self.report(diag::wrong_type(at, "a number", other));
                Value::Poison
            }
        }
    }

    fn on_ints(&mut self, name: &str, a: &Dim, b: &Dim, span: Span) -> Value {
        if name == "cdiv" {
            return match a.ceil_div(b) {
                Ok(d) => Value::Int(d),
                Err(e) => {
                    self.report(diag::division(span, &e));
                    Value::Poison
                }
            };
        }
        match a.compare(b).or_else(|| self.decide(&a.sub(b)).map(|v| v.cmp(&0))) {
            Some(ord) => {
                let a_wins = (name == "max") == (ord == std::cmp::Ordering::Greater);
                Value::Int(if a_wins { a.clone() } else { b.clone() })
            }
            None => {
                self.report(diag::undecidable(span, &format!("{name}({a}, {b})")));
                Value::Poison
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::to_int;

    #[test]
    fn rounding_follows_python() {
        assert_eq!(to_int("round", 2.5), Some(2));
        assert_eq!(to_int("round", 3.5), Some(4));
        assert_eq!(to_int("round", -2.5), Some(-2));
        assert_eq!(to_int("round", 2.6), Some(3));
        assert_eq!(to_int("floor", -2.5), Some(-3));
        assert_eq!(to_int("ceil", 2.1), Some(3));
        assert_eq!(to_int("int", -2.7), Some(-2));
        assert_eq!(to_int("int", 2.7), Some(2));
        assert_eq!(to_int("int", f64::NAN), None);
        assert_eq!(to_int("round", 1e300), None);
        assert_eq!(to_int("floor", 9.3e18), None);
    }
}
