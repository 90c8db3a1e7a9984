//! Seeded draws for augmentation: a SplitMix64 stream keyed by a list of numbers (seed,
//! epoch, row), with the distributions the augmentations need.

use crate::lower::params::SplitMix64;

pub(super) struct Draw(SplitMix64);

impl Draw {
    /// A stream determined by `key` alone: each part is folded in through the mixer, so
    /// neighbouring keys (row 7 and row 8) give unrelated streams.
    pub fn keyed(key: &[u64]) -> Draw {
        let mut state = 0x5eed_a06e_u64;
        for part in key {
            state = SplitMix64::new(state ^ part.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64();
        }
        Draw(SplitMix64::new(state))
    }

    /// Uniform on [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0.unit()
    }

    /// Uniform on [lo, hi).
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Uniform on `0..=n`.
    pub fn upto(&mut self, n: usize) -> usize {
        (self.0.next_u64() % (n as u64 + 1)) as usize
    }

    pub fn normal(&mut self) -> f64 {
        self.0.normal()
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang; below shape 1 through Gamma(shape + 1).
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = 1.0 - self.unit();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Beta(alpha, alpha): mixup's and CutMix's mixing weight.
    pub fn beta(&mut self, alpha: f64) -> f64 {
        let (a, b) = (self.gamma(alpha), self.gamma(alpha));
        if a + b > 0.0 {
            a / (a + b)
        } else {
            0.5
        }
    }
}
