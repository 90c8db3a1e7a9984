//! How a parameter starts: PyTorch's default initialisation for its layer, declared once by
//! the op's `params` (what the lowering draws, and what a summary or an exporter shows), with
//! the fans as dims so the compiler half states it without binding them.

use std::fmt;

use super::init_scheme::Scheme;
use crate::ir::dim::Dim;

#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    /// Every value the same (StyleGAN's `bias_init`).
    Full(f64),
    Normal {
        mean: f64,
        std: f64,
    },
    /// `trunc_normal_`: `N(mean, std)` redrawn until within `[low, high]` (absolute bounds, as
    /// PyTorch's `a` and `b`; the op declaring it makes sure the interval is not a sliver).
    TruncNormal {
        mean: f64,
        std: f64,
        low: f64,
        high: f64,
    },
    /// `U(-1/sqrt(fan), 1/sqrt(fan))`: `kaiming_uniform(a=sqrt(5))` of a linear or convolution
    /// weight and the bound PyTorch gives its bias (fan = fan-in); a recurrent layer's every
    /// tensor (fan = hidden size).
    UniformFan(Dim),
    /// `xavier_uniform`: `U(-b, b)`, `b = sqrt(6 / (fan_in + fan_out))`.
    XavierUniform {
        fan_in: Dim,
        fan_out: Dim,
    },
    /// `xavier_normal`: `N(0, sqrt(2 / (fan_in + fan_out)))`.
    XavierNormal {
        fan_in: Dim,
        fan_out: Dim,
    },
    /// Values the op computes from its configuration, not drawn (an index table).
    Computed,
    /// A scheme the spec chose for this parameter (`init=`, `bias_init=`), its fans read from
    /// the parameter's shape when drawn.
    Chosen(Scheme),
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::Zeros => write!(f, "zeros"),
            Init::Ones => write!(f, "ones"),
            Init::Full(v) => write!(f, "full({v})"),
            Init::Normal { mean, std } => write!(f, "normal({mean}, {std})"),
            Init::TruncNormal { mean, std, low, high } => {
                write!(f, "trunc_normal({mean}, {std}, a={low}, b={high})")
            }
            Init::UniformFan(fan) => write!(f, "U(-1/sqrt({fan}), 1/sqrt({fan}))"),
            Init::XavierUniform { fan_in, fan_out } => {
                write!(f, "xavier_uniform(fan_in={fan_in}, fan_out={fan_out})")
            }
            Init::XavierNormal { fan_in, fan_out } => {
                write!(f, "xavier_normal(fan_in={fan_in}, fan_out={fan_out})")
            }
            Init::Computed => write!(f, "computed"),
            Init::Chosen(scheme) => write!(f, "{scheme}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_rule_with_its_fans() {
        let fan = Dim::sym("C").mul(&9.into());
        assert_eq!(Init::UniformFan(fan).to_string(), "U(-1/sqrt(9*C), 1/sqrt(9*C))");
        let xavier = Init::XavierUniform { fan_in: 512.into(), fan_out: 1536.into() };
        assert_eq!(xavier.to_string(), "xavier_uniform(fan_in=512, fan_out=1536)");
        assert_eq!(Init::Normal { mean: 0.0, std: 0.02 }.to_string(), "normal(0, 0.02)");
    }
}
