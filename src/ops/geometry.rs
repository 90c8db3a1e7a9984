//! Sliding-window arithmetic shared by convolution, transposed convolution and pooling.
//!
//! Output sizes follow PyTorch's `conv_output_size` / `pooling_output_shape` exactly, over
//! symbolic dims, so a spec with `H` unbound still gets `(H + 1) / 2` rather than a guess.

use std::cmp::Ordering;

use std::sync::Arc;

use super::{divide_exactly, Attrs, OpError, Quotient};
use crate::ir::dim::{Bindings, Dim, DimError};

/// How a window pads its input.
#[derive(Clone, Debug, PartialEq)]
pub enum Padding {
    /// The same amount on both sides of each axis.
    Explicit(Vec<i64>),
    /// Output size equals input size (stride 1 only, as in PyTorch).
    Same,
    /// No padding.
    Valid,
}

/// A window over `n` spatial axes: one entry per axis in each list.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub kernel: Vec<i64>,
    pub stride: Vec<i64>,
    pub padding: Padding,
    pub dilation: Vec<i64>,
    pub ceil_mode: bool,
    /// The spec's dims with values: an input too small for the window at those values (an
    /// image of `H = 62` through AlexNet's pools) is refused, as PyTorch refuses it.
    pub dims: Option<Arc<Bindings>>,
}

impl Window {
    /// Reads `kernel_size`, `stride`, `padding`, `dilation` and `ceil_mode` for `n` axes.
    ///
    /// An attribute the op does not declare reads as absent and takes PyTorch's meaning of
    /// absence: stride = kernel (pooling), padding 0, dilation 1, floor mode.
    pub fn from_attrs(a: &Attrs, n: usize) -> Result<Window, OpError> {
        let kernel = in_range("kernel_size", a.ints("kernel_size", n)?, 1)?;
        let stride = match a.is_none("stride") {
            true => kernel.clone(),
            false => in_range("stride", a.ints("stride", n)?, 1)?,
        };
        let dilation = match a.is_none("dilation") {
            true => vec![1; n],
            false => in_range("dilation", a.ints("dilation", n)?, 1)?,
        };
        let padding = match a.str("padding") {
            Some("same") => Padding::Same,
            Some("valid") => Padding::Valid,
            Some(other) => {
                return Err(OpError::new(format!(
                    "`padding` must be ints, \"same\" or \"valid\", found \"{other}\""
                ))
                .attr("padding"))
            }
            None if a.is_none("padding") => Padding::Explicit(vec![0; n]),
            None => Padding::Explicit(in_range("padding", a.ints("padding", n)?, 0)?),
        };
        if padding == Padding::Same && stride.iter().any(|s| *s != 1) {
            return Err(OpError::new(format!("padding=\"same\" needs stride 1, found stride {stride:?}"))
                .attr("padding")
                .help("PyTorch does not support \"same\" padding for strided convolutions; give explicit padding"));
        }
        let ceil_mode = !a.is_none("ceil_mode") && a.bool("ceil_mode")?;
        Ok(Window { kernel, stride, padding, dilation, ceil_mode, dims: a.bound_dims() })
    }

    /// Padding on each side of axis `i`; `None` for "same".
    fn pad(&self, i: usize) -> Option<i64> {
        match &self.padding {
            Padding::Explicit(p) => Some(p.get(i).copied().unwrap_or(0)),
            Padding::Same => None,
            Padding::Valid => Some(0),
        }
    }

    /// Padding per axis as ints ("same" and "valid" have no single number: 0 for "valid").
    pub fn explicit_padding(&self) -> Option<Vec<i64>> {
        (0..self.kernel.len()).map(|i| self.pad(i)).collect()
    }

    /// Kernel elements per output position (per channel pair); saturated past `i64`, which the
    /// MAC count then reports.
    pub fn kernel_volume(&self) -> i64 {
        self.kernel.iter().fold(1i64, |v, k| v.saturating_mul(*k))
    }

    /// Conv/pool output sizes of the spatial axes `input`.
    pub fn out_sizes(&self, input: &[Dim]) -> Result<Vec<Dim>, OpError> {
        self.check_axes(input)?;
        input.iter().enumerate().map(|(i, x)| self.out_size(i, x)).collect()
    }

    fn out_size(&self, i: usize, input: &Dim) -> Result<Dim, OpError> {
        let (k, s, d) = (self.kernel[i], self.stride[i], self.dilation[i]);
        let Some(p) = self.pad(i) else { return Ok(input.clone()) };
        let numer = input.add(&Dim::konst(2 * p - d * (k - 1) - 1));
        let stride = Dim::konst(s);
        let out = if !self.ceil_mode {
            numer.floor_div(&stride).map_err(dim_error)?.add(&Dim::one())
        } else {
            let out = numer.ceil_div(&stride).map_err(dim_error)?.add(&Dim::one());
            // PyTorch drops the last window when it would start inside the right padding.
            let last_start = out.sub(&Dim::one()).mul(&stride);
            match last_start.compare(&input.add(&Dim::konst(p))) {
                Some(Ordering::Less) => out,
                Some(_) => out.sub(&Dim::one()),
                // ceil(numer/s)*s <= numer + s - 1, which is below input + p whenever this holds.
                None if p + s <= d * (k - 1) + 1 => out,
                None => {
                    return Err(OpError::new(format!(
                        "ceil_mode output size of spatial axis {i} (input {input}, kernel {k}, stride {s}, \
                         padding {p}) depends on the value of `{input}`"
                    ))
                    .input(0)
                    .help("bind the dims it depends on, e.g. `--bind H=224`"))
                }
            }
        };
        self.check_positive(i, input, &out)?;
        Ok(out)
    }

    /// Transposed-conv output sizes: `(in-1)*s - 2p + d*(k-1) + output_padding + 1`.
    pub fn transposed_out_sizes(&self, input: &[Dim], output_padding: &[i64]) -> Result<Vec<Dim>, OpError> {
        self.check_axes(input)?;
        let mut out = Vec::with_capacity(input.len());
        for (i, x) in input.iter().enumerate() {
            let (k, s, d) = (self.kernel[i], self.stride[i], self.dilation[i]);
            let p = self.pad(i).unwrap_or(0);
            let op = output_padding.get(i).copied().unwrap_or(0);
            let size = x.sub(&Dim::one()).mul(&Dim::konst(s)).add(&Dim::konst(d * (k - 1) + op + 1 - 2 * p));
            self.check_positive(i, x, &size)?;
            out.push(size);
        }
        Ok(out)
    }

    /// Every list indexed by `i` above has one entry per axis; checked once here.
    fn check_axes(&self, input: &[Dim]) -> Result<(), OpError> {
        let n = self.kernel.len();
        if input.len() != n || self.stride.len() != n || self.dilation.len() != n {
            return Err(OpError::new(format!("expected {n} spatial axes, found {}", input.len())).input(0));
        }
        Ok(())
    }

    fn check_positive(&self, i: usize, input: &Dim, out: &Dim) -> Result<(), OpError> {
        let value = |d: &Dim| d.as_const().or_else(|| d.eval(self.dims.as_deref()?));
        let input = match (input.as_const(), value(input)) {
            (None, Some(v)) => format!("{input} = {v}"),
            _ => input.to_string(),
        };
        match value(out) {
            Some(v) if v < 1 => Err(OpError::new(format!(
                "input size {input} on spatial axis {i} is too small for kernel {} (dilation {}, padding {}): \
                 the output size would be {v}",
                self.kernel[i],
                self.dilation[i],
                self.pad(i).unwrap_or(0)
            ))
            .input(0)),
            _ => Ok(()),
        }
    }
}

/// PyTorch: output padding must be smaller than either stride or dilation on each axis.
pub fn check_output_padding(w: &Window, output_padding: &[i64]) -> Result<(), OpError> {
    for (i, op) in output_padding.iter().enumerate() {
        let (s, d) = (w.stride.get(i).copied().unwrap_or(1), w.dilation.get(i).copied().unwrap_or(1));
        if *op < 0 || (*op >= s && *op >= d) {
            return Err(OpError::new(format!(
                "output_padding must be at least 0 and smaller than stride or dilation: \
                 axis {i} has output_padding {op}, stride {s}, dilation {d}"
            ))
            .attr("output_padding"));
        }
    }
    Ok(())
}

/// `channels / groups`, or an error naming `what` (`in_channels`, `out_channels`).
pub fn per_group(channels: &Dim, groups: i64, what: &str) -> Result<Dim, OpError> {
    match divide_exactly(channels, groups) {
        Quotient::Exact(q) => Ok(q),
        Quotient::Remainder(_) => Err(OpError::new(format!(
            "{what} must be divisible by groups: {channels} is not divisible by {groups}"
        ))
        .attr("groups")),
        Quotient::Unknown => Err(OpError::new(format!(
            "{what} must be divisible by groups: cannot tell whether {channels} is divisible by {groups}"
        ))
        .attr("groups")
        .help("bind the dims it depends on")),
    }
}

/// Checks every value of a per-axis attribute is at least `min`.
/// Largest kernel size, stride, dilation or padding on an axis: far past any real window, and
/// small enough that the output-size arithmetic (`2 * p - d * (k - 1) - 1`) cannot overflow.
const MAX_EXTENT: i64 = 1 << 24;

fn in_range(name: &'static str, values: Vec<i64>, min: i64) -> Result<Vec<i64>, OpError> {
    if values.iter().any(|v| *v < min) {
        return Err(OpError::new(format!("`{name}` must be at least {min} on every axis, found {values:?}"))
            .attr(name));
    }
    if values.iter().any(|v| *v > MAX_EXTENT) {
        return Err(OpError::new(format!(
            "`{name}` may be at most {MAX_EXTENT} on every axis, found {values:?}"
        ))
        .attr(name));
    }
    Ok(values)
}

fn dim_error(e: DimError) -> OpError {
    OpError::new(format!("window arithmetic failed: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::dim::Bindings;
    use crate::ops::testing::{int, ints};
    use crate::ops::AttrValue;

    fn window(pairs: &[(&'static str, AttrValue)]) -> Result<Window, OpError> {
        let mut a = Attrs::default();
        for (k, v) in pairs {
            a.insert(k, v.clone());
        }
        Window::from_attrs(&a, 1)
    }

    fn pool(k: i64, s: i64, p: i64, ceil: bool, input: i64) -> i64 {
        let w = window(&[
            ("kernel_size", int(k)),
            ("stride", int(s)),
            ("padding", int(p)),
            ("ceil_mode", AttrValue::Bool(ceil)),
        ])
        .unwrap();
        w.out_sizes(&[Dim::konst(input)]).unwrap()[0].as_const().unwrap()
    }

    #[test]
    fn a_symbolic_input_too_small_at_the_bound_dims_is_refused() {
        let pairs = [("kernel_size", int(3)), ("stride", int(2))];
        let mut a = Attrs::default();
        for (k, v) in pairs {
            a.insert(k, v);
        }
        let at = |v: i64| Arc::new(Bindings::from([("H".to_string(), v)]));
        let h = Dim::sym("H");
        let w = Window::from_attrs(&a.clone().with_dims(at(2)), 1).unwrap();
        let e = w.out_sizes(std::slice::from_ref(&h)).unwrap_err();
        assert!(
            e.message.contains("input size H = 2 on spatial axis 0 is too small for kernel 3"),
            "{}",
            e.message
        );
        assert!(e.message.contains("the output size would be 0"), "{}", e.message);
        let w = Window::from_attrs(&a.clone().with_dims(at(3)), 1).unwrap();
        assert_eq!(w.out_sizes(std::slice::from_ref(&h)).unwrap()[0].to_string(), "(H + 1) / 2 - 1");
        // Without values the size stays symbolic and is not judged.
        assert!(Window::from_attrs(&a, 1).unwrap().out_sizes(&[h]).is_ok());
    }

    #[test]
    fn ceil_mode_drops_a_window_that_starts_in_the_padding() {
        assert_eq!(pool(3, 2, 0, true, 113), 56);
        assert_eq!(pool(3, 2, 0, false, 113), 56);
        assert_eq!(pool(3, 3, 1, false, 6), 2);
        assert_eq!(pool(3, 3, 1, true, 6), 3);
        // ceil gives 4 windows, but the 4th would start at 6 >= 5 + 1.
        assert_eq!(pool(2, 2, 1, true, 5), 3);
    }

    #[test]
    fn symbolic_ceil_mode_is_exact_when_provable_and_refused_otherwise() {
        let w = window(&[("kernel_size", int(3)), ("stride", int(2)), ("ceil_mode", AttrValue::Bool(true))]);
        let out = w.unwrap().out_sizes(&[Dim::sym("h")]).unwrap();
        let mut b = Bindings::new();
        for (h, expected) in [(57, 28), (112, 56), (113, 56)] {
            b.insert("h".into(), h);
            assert_eq!(out[0].eval(&b), Some(expected));
        }
        let w = window(&[("kernel_size", int(2)), ("padding", int(1)), ("ceil_mode", AttrValue::Bool(true))]);
        let e = w.unwrap().out_sizes(&[Dim::sym("h")]).unwrap_err();
        assert!(e.help.unwrap().contains("bind"));
    }

    #[test]
    fn rejects_bad_values_and_too_small_inputs() {
        assert_eq!(window(&[("kernel_size", int(0))]).unwrap_err().attr, Some("kernel_size"));
        assert_eq!(
            window(&[("kernel_size", int(3)), ("padding", int(-1))]).unwrap_err().attr,
            Some("padding")
        );
        let w = window(&[("kernel_size", int(7))]).unwrap();
        let e = w.out_sizes(&[Dim::konst(5)]).unwrap_err();
        assert!(e.message.contains("input size 5") && e.message.contains("kernel 7"), "{}", e.message);
        let same = [("kernel_size", int(3)), ("stride", int(2)), ("padding", AttrValue::Str("same".into()))];
        assert_eq!(window(&same).unwrap_err().attr, Some("padding"));
    }

    #[test]
    fn transposed_sizes_and_output_padding() {
        let w = window(&[("kernel_size", ints(&[3])), ("stride", int(2)), ("padding", int(1))]).unwrap();
        assert_eq!(w.transposed_out_sizes(&[Dim::konst(16)], &[1]).unwrap(), vec![Dim::konst(32)]);
        assert!(check_output_padding(&w, &[1]).is_ok());
        assert!(check_output_padding(&w, &[2]).is_err());
    }

    #[test]
    fn groups_must_divide_channels() {
        assert_eq!(per_group(&Dim::konst(64), 4, "in_channels").unwrap(), Dim::konst(16));
        let e = per_group(&Dim::konst(30), 4, "in_channels").unwrap_err();
        assert!(e.message.contains("30 is not divisible by 4"));
        assert!(per_group(&Dim::sym("C"), 2, "in_channels").is_err());
    }
}
