//! Symbolic dimensions: integer polynomials over named dims, with floor division by constants.
//!
//! A [`Dim`] is kept in a canonical form (sorted monomials, no zero coefficients) so equal
//! expressions compare equal: `h + h == 2*h`, `(2*h + 1) / 2 == h`. Arithmetic saturates
//! instead of overflowing; [`Dim::is_saturated`] lets callers report it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// An indivisible factor of a monomial.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Atom {
    Sym(Arc<str>),
    /// `floor(expr / divisor)` with `divisor > 1`, where `expr` is not a multiple of it.
    FloorDiv(Box<Dim>, i64),
}

/// A product of atoms with exponents, sorted.
type Monomial = Vec<(Atom, u32)>;

/// (monomial, coefficient) pairs, sorted by monomial, each once, no coefficient zero; the
/// empty monomial is the constant term.
type Terms = [(Monomial, i64)];

/// A symbolic integer.
///
/// Most dims are constants, and every tensor type holds several: a constant is held inline
/// (copying one allocates nothing), a polynomial behind an `Arc` (copying one is a count).
/// Equality, order, hashing and printing are those of the terms, whichever way they are held.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Dim(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Const(i64),
    /// Terms with at least one symbol: never a constant alone, so each dim has one form.
    Poly(Arc<Terms>),
}

/// Most terms a symbolic expression keeps: squaring a sum doubles its degree, so a few lines
/// could otherwise build a polynomial of millions of terms. Past it the result is saturated,
/// which callers report as an overflow.
const MAX_TERMS: usize = 256;

/// Values given to symbols when numbers are needed.
pub type Bindings = BTreeMap<String, i64>;

/// Why a division could not be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimError {
    DivisionByZero,
    /// Division by something that is not a known positive constant.
    SymbolicDivisor(Dim),
}

impl Default for Dim {
    fn default() -> Dim {
        Dim::zero()
    }
}

impl Dim {
    pub fn konst(value: i64) -> Dim {
        Dim(Repr::Const(value))
    }

    /// The terms, as sorted pairs (a constant's borrowed when zero, built otherwise: the
    /// arithmetic below takes its constant cases first).
    fn terms(&self) -> Cow<'_, Terms> {
        match &self.0 {
            Repr::Const(0) => Cow::Borrowed(&[]),
            Repr::Const(c) => Cow::Owned(vec![(Vec::new(), *c)]),
            Repr::Poly(terms) => Cow::Borrowed(terms),
        }
    }

    /// A dim from sorted terms without zeros, in its one form.
    fn from_sorted(terms: Vec<(Monomial, i64)>) -> Dim {
        match terms.as_slice() {
            [] => Dim::zero(),
            [(mono, c)] if mono.is_empty() => Dim::konst(*c),
            _ => Dim(Repr::Poly(terms.into())),
        }
    }

    /// A dim from terms in any order, like ones summed and zeros dropped.
    fn from_terms(mut terms: Vec<(Monomial, i64)>) -> Dim {
        terms.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Monomial, i64)> = Vec::with_capacity(terms.len());
        for (mono, coef) in terms {
            match out.last_mut() {
                Some(last) if last.0 == mono => last.1 = last.1.saturating_add(coef),
                _ => out.push((mono, coef)),
            }
        }
        out.retain(|(_, c)| *c != 0);
        Dim::from_sorted(out)
    }

    pub fn zero() -> Dim {
        Dim::konst(0)
    }

    pub fn one() -> Dim {
        Dim::konst(1)
    }

    pub fn sym(name: &str) -> Dim {
        Dim::atom(Atom::Sym(Arc::from(name)))
    }

    fn atom(atom: Atom) -> Dim {
        Dim(Repr::Poly(Arc::from(vec![(vec![(atom, 1)], 1)])))
    }

    /// The value if the expression has no symbols.
    pub fn as_const(&self) -> Option<i64> {
        match self.0 {
            Repr::Const(c) => Some(c),
            Repr::Poly(_) => None,
        }
    }

    /// The symbol's name if the expression is one symbol alone with coefficient 1 (`h`, not
    /// `2*h` or `h + 1`): a dim a tensor's size can bind.
    pub fn as_symbol(&self) -> Option<&str> {
        let Repr::Poly(terms) = &self.0 else { return None };
        match &terms[..] {
            [(mono, 1)] => match mono.as_slice() {
                [(Atom::Sym(name), 1)] => Some(name),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the expression is one symbol (`h`), printed without parentheses.
    fn is_single_symbol(&self) -> bool {
        self.as_symbol().is_some()
    }

    /// Whether some arithmetic hit the limits of `i64`.
    pub fn is_saturated(&self) -> bool {
        let saturated = |c: i64| c == i64::MAX || c == i64::MIN;
        // A constant answers without its list of terms (which would be allocated).
        match &self.0 {
            Repr::Const(c) => saturated(*c),
            Repr::Poly(terms) => terms.iter().any(|(_, c)| saturated(*c)),
        }
    }

    /// The names of the symbols the expression depends on.
    pub fn symbols(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_symbols(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_symbols(&self, out: &mut Vec<String>) {
        for (mono, _) in self.terms().iter() {
            for (atom, _) in mono {
                match atom {
                    Atom::Sym(s) => out.push(s.to_string()),
                    Atom::FloorDiv(d, _) => d.collect_symbols(out),
                }
            }
        }
    }

    /// Replace the bound symbols by their values; symbols without a value stay.
    pub fn substitute(&self, bindings: &Bindings) -> Dim {
        let Repr::Poly(terms) = &self.0 else { return self.clone() };
        if let Some(v) = self.as_symbol().and_then(|s| bindings.get(s)) {
            return Dim::konst(*v);
        }
        let mut out = Dim::zero();
        for (mono, coef) in terms.iter() {
            let mut term = Dim::konst(*coef);
            for (atom, exp) in mono {
                let factor = match atom {
                    Atom::Sym(s) => bindings.get(&**s).map_or_else(|| Dim::sym(s), |v| Dim::konst(*v)),
                    Atom::FloorDiv(d, k) => {
                        d.substitute(bindings).floor_div(&Dim::konst(*k)).unwrap_or_else(|_| Dim::zero())
                    }
                };
                // Powers by squaring: exponents double through nested blocks (`h*h`).
                let (mut base, mut e) = (factor, *exp);
                while e > 0 {
                    if e & 1 == 1 {
                        term = term.mul(&base);
                    }
                    e >>= 1;
                    if e > 0 {
                        base = base.mul(&base);
                    }
                }
            }
            out = out.add(&term);
        }
        out
    }

    /// The value under `bindings`, if every symbol is bound.
    pub fn eval(&self, bindings: &Bindings) -> Option<i64> {
        match self.0 {
            Repr::Const(c) => Some(c),
            Repr::Poly(_) => self.substitute(bindings).as_const(),
        }
    }

    /// Equal as expressions, or equal under the dims' values: `H / 8` and `2*(H / 16)` at
    /// `H = 224` (a rule such as `assert H % 16 == 0` is what makes them one).
    pub fn equal_under(&self, other: &Dim, bindings: &Bindings) -> bool {
        self == other || matches!((self.eval(bindings), other.eval(bindings)), (Some(a), Some(b)) if a == b)
    }

    pub fn add(&self, other: &Dim) -> Dim {
        match (&self.0, &other.0) {
            (Repr::Const(a), Repr::Const(b)) => return Dim::konst(a.saturating_add(*b)),
            (Repr::Const(0), _) => return other.clone(),
            (_, Repr::Const(0)) => return self.clone(),
            _ => {}
        }
        // Both are sorted: merge them.
        let (a, b) = (self.terms(), other.terms());
        let mut terms = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => {
                    terms.push(a[i].clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    terms.push(b[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let coef = a[i].1.saturating_add(b[j].1);
                    if coef != 0 {
                        terms.push((a[i].0.clone(), coef));
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        terms.extend_from_slice(&a[i..]);
        terms.extend_from_slice(&b[j..]);
        Dim::from_sorted(terms)
    }

    pub fn neg(&self) -> Dim {
        match &self.0 {
            Repr::Const(c) => Dim::konst(c.saturating_neg()),
            Repr::Poly(terms) => {
                Dim(Repr::Poly(terms.iter().map(|(m, c)| (m.clone(), c.saturating_neg())).collect()))
            }
        }
    }

    pub fn sub(&self, other: &Dim) -> Dim {
        self.add(&other.neg())
    }

    pub fn mul(&self, other: &Dim) -> Dim {
        match (&self.0, &other.0) {
            (Repr::Const(a), Repr::Const(b)) => return Dim::konst(a.saturating_mul(*b)),
            (Repr::Const(0), _) | (_, Repr::Const(0)) => return Dim::zero(),
            (Repr::Const(1), _) => return other.clone(),
            (_, Repr::Const(1)) => return self.clone(),
            // A constant scales each coefficient; none becomes zero, so the form holds.
            (Repr::Const(k), Repr::Poly(terms)) | (Repr::Poly(terms), Repr::Const(k)) => {
                return Dim(Repr::Poly(
                    terms.iter().map(|(m, c)| (m.clone(), c.saturating_mul(*k))).collect(),
                ))
            }
            (Repr::Poly(_), Repr::Poly(_)) => {}
        }
        let (a, b) = (self.terms(), other.terms());
        if a.len().saturating_mul(b.len()) > MAX_TERMS {
            return Dim::konst(i64::MAX);
        }
        let mut terms = Vec::with_capacity(a.len() * b.len());
        for (m1, c1) in a.iter() {
            for (m2, c2) in b.iter() {
                let mut mono: BTreeMap<Atom, u32> = m1.iter().cloned().collect();
                for (atom, exp) in m2 {
                    let e = mono.entry(atom.clone()).or_insert(0);
                    *e = e.saturating_add(*exp);
                }
                terms.push((mono.into_iter().collect(), c1.saturating_mul(*c2)));
            }
        }
        Dim::from_terms(terms)
    }

    /// Floor division (rounding towards negative infinity) by a positive constant.
    pub fn floor_div(&self, divisor: &Dim) -> Result<Dim, DimError> {
        let d = match divisor.as_const() {
            Some(0) => return Err(DimError::DivisionByZero),
            Some(d) if d > 0 => d,
            _ => return Err(DimError::SymbolicDivisor(divisor.clone())),
        };
        if d == 1 {
            return Ok(self.clone());
        }
        if let Some(v) = self.as_const() {
            return Ok(Dim::konst(v.div_euclid(d)));
        }
        // Split self = d*q + r, with r holding the terms d does not divide.
        let mut quotient = Dim::zero();
        let mut rest = Dim::zero();
        for (mono, coef) in self.terms().iter() {
            let single = |c: i64| Dim::from_terms(vec![(mono.clone(), c)]);
            if mono.is_empty() {
                // The constant goes wholly into the quotient where it can; the rest stays.
                quotient = quotient.add(&single(coef.div_euclid(d)));
                rest = rest.add(&single(coef.rem_euclid(d)));
            } else if coef % d == 0 {
                quotient = quotient.add(&single(coef / d));
            } else {
                rest = rest.add(&single(*coef));
            }
        }
        if rest.as_const().is_some() {
            // 0 <= rest < d here, so floor(rest / d) == 0.
            return Ok(quotient);
        }
        // floor(floor(a / b) / c) == floor(a / (b * c))
        if let [(mono, 1)] = &rest.terms()[..] {
            if let [(Atom::FloorDiv(inner, b), 1)] = mono.as_slice() {
                return Ok(quotient.add(&Dim::atom(Atom::FloorDiv(inner.clone(), b.saturating_mul(d)))));
            }
        }
        Ok(quotient.add(&Dim::atom(Atom::FloorDiv(Box::new(rest), d))))
    }

    /// Ceiling division by a positive constant: `cdiv(a, b) == (a + b - 1) / b`.
    pub fn ceil_div(&self, divisor: &Dim) -> Result<Dim, DimError> {
        self.add(divisor).sub(&Dim::one()).floor_div(divisor)
    }

    /// Remainder of floor division: `a % b == a - b * (a / b)`.
    pub fn rem(&self, divisor: &Dim) -> Result<Dim, DimError> {
        Ok(self.sub(&divisor.mul(&self.floor_div(divisor)?)))
    }

    /// The product of a list of dims.
    pub fn product<'a>(dims: impl IntoIterator<Item = &'a Dim>) -> Dim {
        dims.into_iter().fold(Dim::one(), |acc, d| acc.mul(d))
    }

    /// `Some(ordering)` when `self - other` is a constant.
    pub fn compare(&self, other: &Dim) -> Option<std::cmp::Ordering> {
        self.sub(other).as_const().map(|v| v.cmp(&0))
    }
}

/// Ordered as the sorted terms are, as when a dim was its list of terms.
impl Ord for Dim {
    fn cmp(&self, other: &Dim) -> std::cmp::Ordering {
        match (&self.0, &other.0) {
            (Repr::Const(a), Repr::Const(b)) => match (*a == 0, *b == 0) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                (false, false) => a.cmp(b),
            },
            _ => self.terms().cmp(&other.terms()),
        }
    }
}

impl PartialOrd for Dim {
    fn partial_cmp(&self, other: &Dim) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// As when a dim was its list of terms: `Dim { terms: [([], 64)] }`.
impl fmt::Debug for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dim").field("terms", &&*self.terms()).finish()
    }
}

impl From<i64> for Dim {
    fn from(v: i64) -> Dim {
        Dim::konst(v)
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Sym(s) => write!(f, "{s}"),
            Atom::FloorDiv(d, k) if d.is_single_symbol() => write!(f, "{d} / {k}"),
            Atom::FloorDiv(d, k) => write!(f, "({d}) / {k}"),
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = match self.0 {
            Repr::Const(c) => return write!(f, "{c}"),
            Repr::Poly(_) => self.terms(),
        };
        // Highest-degree terms first, the constant last, as people write them.
        let mut terms: Vec<_> = all.iter().collect();
        terms.sort_by_key(|(m, _)| std::cmp::Reverse(m.iter().map(|(_, e)| *e).sum::<u32>()));
        for (i, (mono, coef)) in terms.into_iter().enumerate() {
            let coef = *coef;
            let magnitude = coef.unsigned_abs();
            if i == 0 {
                if coef < 0 {
                    write!(f, "-")?;
                }
            } else {
                write!(f, " {} ", if coef < 0 { "-" } else { "+" })?;
            }
            let mut factors: Vec<String> = Vec::new();
            if magnitude != 1 || mono.is_empty() {
                factors.push(magnitude.to_string());
            }
            for (atom, exp) in mono {
                let text = match atom {
                    Atom::FloorDiv(..) if mono.len() > 1 || magnitude != 1 => format!("({atom})"),
                    _ => atom.to_string(),
                };
                factors.push(if *exp == 1 { text } else { format!("{text}^{exp}") });
            }
            write!(f, "{}", factors.join("*"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Dim {
        Dim::sym("h")
    }

    #[test]
    fn sizes_equal_under_the_bindings_are_equal() {
        let at = |v: i64| Bindings::from([("h".to_string(), v)]);
        let (eighth, twice_sixteenth) =
            (h().floor_div(&8.into()).unwrap(), h().floor_div(&16.into()).unwrap().mul(&2.into()));
        assert_ne!(eighth, twice_sixteenth);
        assert!(eighth.equal_under(&twice_sixteenth, &at(224)));
        assert!(!eighth.equal_under(&twice_sixteenth, &at(200)), "25 vs 24");
        assert!(!eighth.equal_under(&twice_sixteenth, &Bindings::new()), "undecided is not equal");
        assert!(h().equal_under(&h(), &Bindings::new()));
    }

    #[test]
    fn constants_and_polynomials_order_and_print_as_their_terms() {
        // A dim was its sorted list of terms: zero is the empty list, a constant one term
        // with the empty monomial, which sorts before any monomial with a symbol.
        let mut dims = [h(), Dim::konst(3), Dim::zero(), Dim::konst(-2), h().add(&1.into())];
        dims.sort();
        let printed: Vec<String> = dims.iter().map(Dim::to_string).collect();
        assert_eq!(printed, ["0", "-2", "h + 1", "3", "h"]);
        assert_eq!(format!("{:?}", Dim::konst(64)), "Dim { terms: [([], 64)] }");
        assert_eq!(format!("{:?}", Dim::zero()), "Dim { terms: [] }");
        assert_eq!(h().sub(&h()).add(&4.into()), Dim::konst(4), "a polynomial that cancels is a constant");
        assert_eq!(h().mul(&3.into()).as_const(), None);
        assert_eq!(Dim::konst(i64::MIN).to_string(), i64::MIN.to_string());
    }

    #[test]
    fn sums_collect_like_terms() {
        assert_eq!(h().add(&h()), h().mul(&Dim::konst(2)));
        assert_eq!(h().sub(&h()), Dim::zero());
        assert_eq!(h().add(&Dim::konst(3)).to_string(), "h + 3");
    }

    #[test]
    fn exact_division_cancels() {
        let two_h_plus_one = h().mul(&2.into()).add(&1.into());
        assert_eq!(two_h_plus_one.floor_div(&2.into()).unwrap(), h());
        assert_eq!(h().mul(&4.into()).floor_div(&2.into()).unwrap(), h().mul(&2.into()));
    }

    #[test]
    fn inexact_division_stays_symbolic_and_evaluates() {
        let half = h().floor_div(&2.into()).unwrap();
        assert_eq!(half.to_string(), "h / 2");
        let mut b = Bindings::new();
        b.insert("h".into(), 7);
        assert_eq!(half.eval(&b), Some(3));
        // floor(floor(h/2)/3) == floor(h/6)
        assert_eq!(half.floor_div(&3.into()).unwrap(), h().floor_div(&6.into()).unwrap());
    }

    #[test]
    fn conv_output_size_of_a_symbolic_input() {
        // (h + 2*3 - 7) / 2 + 1 for a 7x7 stride-2 conv with padding 3
        let out = h().add(&6.into()).sub(&7.into()).floor_div(&2.into()).unwrap().add(&1.into());
        let mut b = Bindings::new();
        b.insert("h".into(), 224);
        assert_eq!(out.eval(&b), Some(112));
        assert_eq!(out.to_string(), "(h + 1) / 2");
    }

    #[test]
    fn ceil_div_and_rem() {
        assert_eq!(Dim::konst(7).ceil_div(&2.into()).unwrap(), Dim::konst(4));
        assert_eq!(Dim::konst(-7).floor_div(&2.into()).unwrap(), Dim::konst(-4));
        assert_eq!(Dim::konst(7).rem(&3.into()).unwrap(), Dim::konst(1));
        assert_eq!(h().mul(&4.into()).rem(&2.into()).unwrap(), Dim::zero());
        assert_eq!(h().floor_div(&0.into()), Err(DimError::DivisionByZero));
        assert!(matches!(h().floor_div(&h()), Err(DimError::SymbolicDivisor(_))));
    }

    #[test]
    fn products_and_powers_print_readably() {
        let n = Dim::sym("N");
        let t = Dim::sym("T");
        let d = n.mul(&t).mul(&t).mul(&768.into());
        assert_eq!(d.to_string(), "768*N*T^2");
        assert_eq!(n.neg().add(&1.into()).to_string(), "-N + 1");
    }

    #[test]
    fn comparison_is_decided_only_when_the_difference_is_constant() {
        assert_eq!(h().add(&1.into()).compare(&h()), Some(std::cmp::Ordering::Greater));
        assert_eq!(h().compare(&Dim::sym("w")), None);
    }

    #[test]
    fn overflow_saturates_and_is_reported() {
        let big = Dim::konst(i64::MAX / 2);
        assert!(big.mul(&4.into()).is_saturated());
        assert!(!big.is_saturated());
    }

    #[test]
    fn a_product_with_too_many_terms_saturates() {
        // (h + w + 1)^8 has 45 terms; squaring it multiplies 2,025 pairs, past the cap.
        let mut d = h().add(&Dim::sym("w")).add(&1.into());
        for _ in 0..3 {
            d = d.mul(&d);
        }
        assert!(!d.is_saturated());
        assert!(d.mul(&d).is_saturated());
    }
}
