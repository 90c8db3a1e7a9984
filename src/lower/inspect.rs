//! Looking inside a forward pass: which layer first produced a NaN or an infinity, so a
//! diverging run can say where it went wrong.

use candle_core::{DType, Tensor};

use crate::Lowered;

impl Lowered {
    /// The path and op of the first step (in execution order) with a non-finite value in one
    /// of its outputs, or `None` when every output is finite.
    pub fn first_non_finite(
        &self,
        inputs: &[Tensor],
        train: bool,
    ) -> candle_core::Result<Option<(String, String)>> {
        let mut found = None;
        let mut failure = None;
        let mut watch = |step: &super::executor::Step, ys: &[Tensor]| {
            for y in ys.iter().filter(|y| y.dtype().is_float()) {
                match all_finite(y) {
                    Ok(true) => {}
                    Ok(false) => {
                        found = Some((step.path.clone(), step.kind.to_string()));
                        return false;
                    }
                    Err(e) => {
                        failure = Some(e);
                        return false;
                    }
                }
            }
            true
        };
        self.run(inputs, &mut super::Pass { train, ..Default::default() }, false, &mut Some(&mut watch))?;
        match failure {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }
}

/// Whether every element of `t` is finite (integer tensors always are).
pub fn all_finite(t: &Tensor) -> candle_core::Result<bool> {
    // 0 * x is 0 for finite x and NaN for NaN and both infinities.
    let probe = (t.to_dtype(DType::F64)? * 0.0)?.sum_all()?.to_scalar::<f64>()?;
    Ok(probe == 0.0)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use crate::{Model, Options};

    #[test]
    fn names_the_first_layer_whose_output_is_not_finite() {
        // exp overflows f32 past 88: `e` breaks, and `fc2` after it only inherits.
        let spec = "model M { input x: [2, 3]\n output y = x |> fc1: Linear(4) |> e: Exp |> fc2: Linear(2) }";
        let net = Model::from_source("m.wick", spec, &Options::default())
            .unwrap()
            .build_seeded(&Device::Cpu, candle_core::DType::F32, 0)
            .unwrap();
        let x = candle_core::Tensor::new(&[[1e6f32, -1e6, 1e6], [-1e6, 1e6, -1e6]], &Device::Cpu).unwrap();
        assert_eq!(net.first_non_finite(&[x], false).unwrap(), Some(("e".into(), "Exp".into())));
        let zeros = candle_core::Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(net.first_non_finite(&[zeros], false).unwrap(), None);
    }
}
