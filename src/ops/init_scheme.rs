//! Initialisation schemes a person chooses, as `torch.nn.init` names them: per layer
//! (`Conv2d(64, 3, init=kaiming_normal(mode="fan_out", nonlinearity="relu"), bias_init=zeros)`)
//! or by glob in the `train` section (`init_weights: { "**.weight": normal(0, 0.02) }`).
//!
//! A scheme is read once, from a call (`normal(0, 0.02)`, `zeros`), with PyTorch's argument
//! names, order and defaults; its fans come from the tensor's shape when it is drawn, exactly
//! as `torch.nn.init._calculate_fan_in_and_fan_out` computes them.

use std::fmt;

/// `kaiming_*`'s `mode`: which fan keeps the variance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    FanIn,
    FanOut,
}

/// A scheme, with its arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum Scheme {
    XavierUniform { gain: f64 },
    XavierNormal { gain: f64 },
    KaimingUniform { a: f64, mode: FanMode, gain: Gain },
    KaimingNormal { a: f64, mode: FanMode, gain: Gain },
    Normal { mean: f64, std: f64 },
    TruncNormal { mean: f64, std: f64, a: f64, b: f64 },
    Orthogonal { gain: f64 },
    Uniform { a: f64, b: f64 },
    Constant(f64),
    Zeros,
    Ones,
}

/// `torch.nn.init.calculate_gain`'s nonlinearities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gain {
    /// `linear`, `conv*d`, `conv_transpose*d` and `sigmoid`: 1.
    Linear,
    Tanh,
    Relu,
    LeakyRelu,
    Selu,
}

const NONLINEARITIES: &[&str] = &[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
];

/// The scheme names, for errors and suggestions.
pub const SCHEMES: &[&str] = &[
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "normal",
    "trunc_normal",
    "orthogonal",
    "uniform",
    "constant",
    "zeros",
    "ones",
];

/// One argument of a scheme call, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum SchemeArg {
    Num(f64),
    Text(String),
}

impl fmt::Display for SchemeArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemeArg::Num(v) => write!(f, "{v}"),
            SchemeArg::Text(s) => write!(f, "\"{s}\""),
        }
    }
}

impl Gain {
    fn named(name: &str) -> Option<Gain> {
        Some(match name {
            "linear" | "conv1d" | "conv2d" | "conv3d" | "conv_transpose1d" | "conv_transpose2d"
            | "conv_transpose3d" | "sigmoid" => Gain::Linear,
            "tanh" => Gain::Tanh,
            "relu" => Gain::Relu,
            "leaky_relu" => Gain::LeakyRelu,
            "selu" => Gain::Selu,
            _ => return None,
        })
    }

    /// `calculate_gain(nonlinearity, param)`, `param` being kaiming's `a` (the negative slope).
    pub fn value(self, negative_slope: f64) -> f64 {
        match self {
            Gain::Linear => 1.0,
            Gain::Tanh => 5.0 / 3.0,
            Gain::Relu => 2f64.sqrt(),
            Gain::LeakyRelu => (2.0 / (1.0 + negative_slope * negative_slope)).sqrt(),
            Gain::Selu => 0.75,
        }
    }
}

/// `_calculate_fan_in_and_fan_out`: `(dim 1, dim 0)`, each times the receptive field (the
/// product of the dims after the second); an error for fewer than 2 dims, as PyTorch's.
pub fn fans(shape: &[usize]) -> Result<(f64, f64), String> {
    if shape.len() < 2 {
        return Err(format!(
            "fan in and fan out can not be computed for a tensor with fewer than 2 dimensions \
             (shape {shape:?})"
        ));
    }
    let field: f64 = shape[2..].iter().map(|d| *d as f64).product();
    Ok((shape[1] as f64 * field, shape[0] as f64 * field))
}

/// The distribution a tensor's values are drawn from: a declared [`Init`](super::Init) or a
/// chosen [`Scheme`] with the fans bound (the lowering draws it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    Full(f64),
    /// Uniform on `[-bound, bound]`.
    Uniform(f64),
    /// Uniform on `[low, high)`.
    Between {
        low: f64,
        high: f64,
    },
    Normal {
        mean: f64,
        std: f64,
    },
    /// Normal, redrawn until within `[low, high]`.
    TruncNormal {
        mean: f64,
        std: f64,
        low: f64,
        high: f64,
    },
    /// A (semi-)orthogonal matrix of the tensor flattened to `[dim 0, rest]`, times `gain`.
    Orthogonal {
        gain: f64,
    },
}

impl Scheme {
    /// Read `name(args)`: arguments by position in PyTorch's order, or by name, each scheme's
    /// defaults PyTorch's.
    pub fn from_call(name: &str, args: &[(Option<String>, SchemeArg)]) -> Result<Scheme, String> {
        let params: &[(&str, Option<Default>)] = match name {
            "xavier_uniform" | "xavier_normal" | "orthogonal" => &[("gain", Some(Default::Num(1.0)))],
            "kaiming_uniform" | "kaiming_normal" => &[
                ("a", Some(Default::Num(0.0))),
                ("mode", Some(Default::Text("fan_in"))),
                ("nonlinearity", Some(Default::Text("leaky_relu"))),
            ],
            "normal" => &[("mean", Some(Default::Num(0.0))), ("std", Some(Default::Num(1.0)))],
            "trunc_normal" => &[
                ("mean", Some(Default::Num(0.0))),
                ("std", Some(Default::Num(1.0))),
                ("a", Some(Default::Num(-2.0))),
                ("b", Some(Default::Num(2.0))),
            ],
            "uniform" => &[("a", Some(Default::Num(0.0))), ("b", Some(Default::Num(1.0)))],
            "constant" => &[("val", None)],
            "zeros" | "ones" => &[],
            _ => {
                let close = crate::diag::did_you_mean(name, SCHEMES.iter().copied())
                    .map_or(String::new(), |c| format!("did you mean `{c}`? "));
                return Err(format!(
                    "unknown initialisation `{name}`; {close}the schemes are {}",
                    SCHEMES.join(", ")
                ));
            }
        };
        let bound = bind(name, params, args)?;
        let num = |i: usize| match &bound[i] {
            SchemeArg::Num(v) => Ok(*v),
            other => Err(format!("`{name}`: `{}` is a number, found {other}", params[i].0)),
        };
        let text = |i: usize| match &bound[i] {
            SchemeArg::Text(s) => Ok(s.clone()),
            other => Err(format!("`{name}`: `{}` is a name, found {other}", params[i].0)),
        };
        let scheme = match name {
            "xavier_uniform" => Scheme::XavierUniform { gain: num(0)? },
            "xavier_normal" => Scheme::XavierNormal { gain: num(0)? },
            "orthogonal" => Scheme::Orthogonal { gain: num(0)? },
            "kaiming_uniform" | "kaiming_normal" => {
                let mode = match text(1)?.as_str() {
                    "fan_in" => FanMode::FanIn,
                    "fan_out" => FanMode::FanOut,
                    other => {
                        return Err(format!(
                            "`{name}`: `mode` is \"fan_in\" or \"fan_out\", found \"{other}\""
                        ))
                    }
                };
                let nonlinearity = text(2)?;
                let gain = Gain::named(&nonlinearity).ok_or_else(|| {
                    format!(
                        "`{name}`: unsupported nonlinearity \"{nonlinearity}\"; calculate_gain knows {}",
                        NONLINEARITIES.join(", ")
                    )
                })?;
                let a = num(0)?;
                if name == "kaiming_uniform" {
                    Scheme::KaimingUniform { a, mode, gain }
                } else {
                    Scheme::KaimingNormal { a, mode, gain }
                }
            }
            "normal" => Scheme::Normal { mean: num(0)?, std: num(1)? },
            "trunc_normal" => Scheme::TruncNormal { mean: num(0)?, std: num(1)?, a: num(2)?, b: num(3)? },
            "uniform" => Scheme::Uniform { a: num(0)?, b: num(1)? },
            "constant" => Scheme::Constant(num(0)?),
            "zeros" => Scheme::Zeros,
            _ => Scheme::Ones,
        };
        scheme.check()?;
        Ok(scheme)
    }

    /// Read a scheme written as text (`"normal(0, 0.02)"`, `zeros`, `kaiming_normal(mode=fan_out)`):
    /// the YAML surface and the `train` section's values.
    pub fn parse(text: &str) -> Result<Scheme, String> {
        let text = text.trim();
        let (name, rest) = match text.split_once('(') {
            None => (text, None),
            Some((name, rest)) => {
                let inner = rest.trim_end().strip_suffix(')').ok_or_else(|| {
                    format!("`{text}`: an initialisation is `name` or `name(arguments)`; the `)` is missing")
                })?;
                (name.trim(), Some(inner))
            }
        };
        let mut args = Vec::new();
        for piece in rest.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = match piece.split_once('=') {
                Some((k, v)) => (Some(k.trim().to_string()), v.trim()),
                None => (None, piece),
            };
            let value = match value.parse::<f64>() {
                Ok(v) => SchemeArg::Num(v),
                Err(_) => SchemeArg::Text(value.trim_matches('"').to_string()),
            };
            args.push((key, value));
        }
        Scheme::from_call(name, &args)
    }

    /// Arguments that make no distribution: a negative or non-finite spread, an empty interval.
    fn check(&self) -> Result<(), String> {
        let finite = |what: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!("{self}: `{what}` must be finite, found {v}"))
            }
        };
        match *self {
            Scheme::XavierUniform { gain } | Scheme::XavierNormal { gain } | Scheme::Orthogonal { gain } => {
                finite("gain", gain)
            }
            Scheme::KaimingUniform { a, .. } | Scheme::KaimingNormal { a, .. } => finite("a", a),
            Scheme::Normal { mean, std } => {
                finite("mean", mean)?;
                finite("std", std)?;
                if std < 0.0 {
                    return Err(format!("{self}: `std` must be 0 or more, found {std}"));
                }
                Ok(())
            }
            Scheme::TruncNormal { mean, std, a, b } => {
                for (what, v) in [("mean", mean), ("std", std), ("a", a), ("b", b)] {
                    finite(what, v)?;
                }
                if std <= 0.0 || a >= b {
                    return Err(format!("{self}: needs `std` above 0 and `a` below `b`"));
                }
                // Drawn by rejection: an interval holding almost none of the mass would spin.
                let mass = normal_cdf((b - mean) / std) - normal_cdf((a - mean) / std);
                if mass < 1e-3 {
                    return Err(format!(
                        "{self}: [a, b] holds {mass:.1e} of N(mean, std)'s mass; wick draws by \
                         rejection and needs at least 0.001 of it"
                    ));
                }
                Ok(())
            }
            Scheme::Uniform { a, b } => {
                finite("a", a)?;
                finite("b", b)?;
                if a > b {
                    return Err(format!("{self}: `a` must not be above `b`"));
                }
                Ok(())
            }
            Scheme::Constant(v) => finite("val", v),
            Scheme::Zeros | Scheme::Ones => Ok(()),
        }
    }

    /// Whether the scheme reads the tensor's fans (or its matrix shape), so a 1-d tensor is
    /// an error.
    pub fn needs_two_dims(&self) -> bool {
        matches!(
            self,
            Scheme::XavierUniform { .. }
                | Scheme::XavierNormal { .. }
                | Scheme::KaimingUniform { .. }
                | Scheme::KaimingNormal { .. }
                | Scheme::Orthogonal { .. }
        )
    }

    /// The distribution for a tensor of `shape`, as `torch.nn.init` computes it.
    pub fn distribution(&self, shape: &[usize]) -> Result<Distribution, String> {
        if matches!(self, Scheme::Orthogonal { .. }) && shape.len() < 2 {
            return Err(format!(
                "{self}: only tensors with 2 or more dimensions are supported (shape {shape:?})"
            ));
        }
        let with_fans = |f: &dyn Fn(f64, f64) -> f64| fans(shape).map(|(i, o)| f(i, o));
        Ok(match *self {
            Scheme::XavierUniform { gain } => {
                let bound = with_fans(&|i, o| gain * (6.0 / (i + o)).sqrt()).map_err(|e| self.failed(e))?;
                Distribution::Uniform(bound)
            }
            Scheme::XavierNormal { gain } => {
                let std = with_fans(&|i, o| gain * (2.0 / (i + o)).sqrt()).map_err(|e| self.failed(e))?;
                Distribution::Normal { mean: 0.0, std }
            }
            Scheme::KaimingUniform { a, mode, gain } | Scheme::KaimingNormal { a, mode, gain } => {
                let (fan_in, fan_out) = fans(shape).map_err(|e| self.failed(e))?;
                let fan = if mode == FanMode::FanIn { fan_in } else { fan_out };
                let std = gain.value(a) / fan.sqrt();
                if matches!(self, Scheme::KaimingUniform { .. }) {
                    Distribution::Uniform(3f64.sqrt() * std)
                } else {
                    Distribution::Normal { mean: 0.0, std }
                }
            }
            Scheme::Normal { mean, std } => Distribution::Normal { mean, std },
            Scheme::TruncNormal { mean, std, a, b } => {
                Distribution::TruncNormal { mean, std, low: a, high: b }
            }
            Scheme::Orthogonal { gain } => Distribution::Orthogonal { gain },
            Scheme::Uniform { a, b } => Distribution::Between { low: a, high: b },
            Scheme::Constant(v) => Distribution::Full(v),
            Scheme::Zeros => Distribution::Full(0.0),
            Scheme::Ones => Distribution::Full(1.0),
        })
    }

    fn failed(&self, why: String) -> String {
        format!("{self}: {why}")
    }
}

/// A parameter's default in a scheme's signature.
#[derive(Clone, Copy)]
enum Default {
    Num(f64),
    Text(&'static str),
}

/// `args` bound to `params` (position, then name), defaults filled in.
fn bind(
    name: &str,
    params: &[(&str, Option<Default>)],
    args: &[(Option<String>, SchemeArg)],
) -> Result<Vec<SchemeArg>, String> {
    let names: Vec<&str> = params.iter().map(|(n, _)| *n).collect();
    let mut bound: Vec<Option<SchemeArg>> = vec![None; params.len()];
    for (i, (key, value)) in args.iter().enumerate() {
        let at = match key {
            None if i < params.len() => i,
            None => {
                return Err(format!(
                    "`{name}` takes at most {} arguments ({}), found {}",
                    params.len(),
                    names.join(", "),
                    args.len()
                ))
            }
            Some(k) => names.iter().position(|n| n == k).ok_or_else(|| {
                let accepted = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                format!("`{name}` has no argument `{k}`; it takes {accepted}")
            })?,
        };
        if bound[at].replace(value.clone()).is_some() {
            return Err(format!("`{name}`: `{}` is given twice", names[at]));
        }
    }
    bound
        .into_iter()
        .zip(params)
        .map(|(given, (param, default))| match (given, default) {
            (Some(v), _) => Ok(v),
            (None, Some(Default::Num(v))) => Ok(SchemeArg::Num(*v)),
            (None, Some(Default::Text(s))) => Ok(SchemeArg::Text(s.to_string())),
            (None, None) => Err(format!("`{name}` needs `{param}`")),
        })
        .collect()
}

/// The standard normal's CDF, through erfc (Numerical Recipes' Chebyshev fit, relative error
/// below 1.2e-7): enough to tell a usable truncation interval from a sliver.
fn normal_cdf(x: f64) -> f64 {
    let z = (x / 2f64.sqrt()).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = |m: &FanMode| if *m == FanMode::FanIn { "fan_in" } else { "fan_out" };
        let gain = |g: &Gain| match g {
            Gain::Linear => "linear",
            Gain::Tanh => "tanh",
            Gain::Relu => "relu",
            Gain::LeakyRelu => "leaky_relu",
            Gain::Selu => "selu",
        };
        match self {
            Scheme::XavierUniform { gain } => write!(f, "xavier_uniform(gain={gain})"),
            Scheme::XavierNormal { gain } => write!(f, "xavier_normal(gain={gain})"),
            Scheme::KaimingUniform { a, mode: m, gain: g } => {
                write!(f, "kaiming_uniform(a={a}, mode=\"{}\", nonlinearity=\"{}\")", mode(m), gain(g))
            }
            Scheme::KaimingNormal { a, mode: m, gain: g } => {
                write!(f, "kaiming_normal(a={a}, mode=\"{}\", nonlinearity=\"{}\")", mode(m), gain(g))
            }
            Scheme::Normal { mean, std } => write!(f, "normal({mean}, {std})"),
            Scheme::TruncNormal { mean, std, a, b } => write!(f, "trunc_normal({mean}, {std}, a={a}, b={b})"),
            Scheme::Orthogonal { gain } => write!(f, "orthogonal(gain={gain})"),
            Scheme::Uniform { a, b } => write!(f, "uniform({a}, {b})"),
            Scheme::Constant(v) => write!(f, "constant({v})"),
            Scheme::Zeros => write!(f, "zeros"),
            Scheme::Ones => write!(f, "ones"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pytorch_arguments_by_position_and_name_with_its_defaults() {
        assert_eq!(Scheme::parse("normal(0, 0.02)").unwrap(), Scheme::Normal { mean: 0.0, std: 0.02 });
        assert_eq!(Scheme::parse("normal(std=0.5)").unwrap(), Scheme::Normal { mean: 0.0, std: 0.5 });
        assert_eq!(Scheme::parse(" zeros ").unwrap(), Scheme::Zeros);
        let k = Scheme::parse("kaiming_normal(mode=\"fan_out\", nonlinearity=relu)").unwrap();
        assert_eq!(k, Scheme::KaimingNormal { a: 0.0, mode: FanMode::FanOut, gain: Gain::Relu });
        let default = Scheme::parse("kaiming_uniform").unwrap();
        assert_eq!(default, Scheme::KaimingUniform { a: 0.0, mode: FanMode::FanIn, gain: Gain::LeakyRelu });
        assert_eq!(
            Scheme::parse("trunc_normal(std=0.02)").unwrap(),
            Scheme::TruncNormal { mean: 0.0, std: 0.02, a: -2.0, b: 2.0 }
        );
        assert_eq!(Scheme::parse("constant(0.1)").unwrap(), Scheme::Constant(0.1));
    }

    #[test]
    fn refuses_what_pytorch_refuses_and_names_the_problem() {
        let e = |t: &str| Scheme::parse(t).unwrap_err();
        assert!(e("kaiming_normall").contains("did you mean `kaiming_normal`?"), "{}", e("kaiming_normall"));
        assert!(e("normal(sd=1)").contains("`normal` has no argument `sd`; it takes mean, std"));
        assert!(e("kaiming_normal(mode=fan)").contains("`mode` is \"fan_in\" or \"fan_out\""));
        assert!(e("kaiming_normal(nonlinearity=gelu)").contains("unsupported nonlinearity \"gelu\""));
        assert!(e("constant").contains("`constant` needs `val`"));
        assert!(e("normal(0, -1)").contains("`std` must be 0 or more"));
        assert!(e("zeros(1)").contains("at most 0 arguments"));
        assert!(e("normal(0, 1, 2)").contains("at most 2 arguments"));
        assert!(e("normal(mean=1, mean=2)").contains("given twice"));
        assert!(e("trunc_normal(0, 1, 8, 9)").contains("mass"), "{}", e("trunc_normal(0, 1, 8, 9)"));
        assert!(e("normal(0, 0.02").contains("the `)` is missing"));
        // Fans on a 1-d tensor, as PyTorch's `_calculate_fan_in_and_fan_out` refuses.
        let k = Scheme::parse("kaiming_uniform").unwrap();
        let err = k.distribution(&[64]).unwrap_err();
        assert!(err.contains("fewer than 2 dimensions"), "{err}");
        assert!(Scheme::Orthogonal { gain: 1.0 }.distribution(&[5]).is_err());
        assert!(Scheme::Zeros.distribution(&[5]).is_ok());
    }

    #[test]
    fn fans_and_gains_are_pytorchs() {
        // Conv2d(16 -> 32, 3x3): weight [32, 16, 3, 3].
        assert_eq!(fans(&[32, 16, 3, 3]).unwrap(), (144.0, 288.0));
        assert_eq!(fans(&[10, 20]).unwrap(), (20.0, 10.0));
        // calculate_gain's table.
        assert_eq!(Gain::named("conv_transpose2d").unwrap().value(0.0), 1.0);
        assert_eq!(Gain::Tanh.value(0.0), 5.0 / 3.0);
        assert_eq!(Gain::Relu.value(0.0), 2f64.sqrt());
        assert!((Gain::LeakyRelu.value(0.2) - (2.0 / 1.04f64).sqrt()).abs() < 1e-15);
        assert_eq!(Gain::Selu.value(0.0), 0.75);
        // kaiming_normal(mode="fan_out", nonlinearity="relu") on that conv: std sqrt(2 / 288).
        let k = Scheme::parse("kaiming_normal(mode=fan_out, nonlinearity=relu)").unwrap();
        assert_eq!(
            k.distribution(&[32, 16, 3, 3]).unwrap(),
            Distribution::Normal { mean: 0.0, std: 2f64.sqrt() / 288f64.sqrt() }
        );
    }

    #[test]
    fn normal_cdf_is_accurate_enough_to_judge_an_interval() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975_002_1).abs() < 1e-6);
        assert!((normal_cdf(-2.0) - 0.022_750_13).abs() < 1e-7);
    }
}
