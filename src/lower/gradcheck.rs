//! Finite-difference gradient checks: the backward pass of a lowered model against central
//! differences of its forward pass, in f64 on the CPU.
//!
//! The loss is `L = sum over float outputs o of sum(o * probe_o)` with fixed random probes, as
//! in the PyTorch fixtures. Every float input and every trainable parameter is checked, element
//! by element, so shapes should be small (and odd and non-square, to catch transposed axes).

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use super::grad2::differentiable_grads;
use super::params::SplitMix64;
use super::{LowerError, Lowered, Model, Pass};
use crate::Options;

/// The worst disagreement found for one tensor.
#[derive(Clone, Debug)]
pub struct TensorError {
    /// `input.x` or a parameter key.
    pub name: String,
    /// max |analytic - numeric| over the tensor's elements.
    pub max_abs_error: f64,
    /// max |numeric|: errors are judged relative to `1 + scale`.
    pub scale: f64,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub tensors: Vec<TensorError>,
}

impl Report {
    /// Panics (this is a test helper) naming every tensor whose gradient is off by more than
    /// `tol * (1 + max |numeric|)`.
    pub fn assert_within(&self, tol: f64) {
        assert!(!self.tensors.is_empty(), "nothing was checked");
        let bad: Vec<String> = self
            .tensors
            .iter()
            .filter(|t| t.max_abs_error.is_nan() || t.max_abs_error > tol * (1.0 + t.scale))
            .map(|t| format!("{}: error {:.3e} (scale {:.3e})", t.name, t.max_abs_error, t.scale))
            .collect();
        assert!(bad.is_empty(), "gradient check failed:\n  {}", bad.join("\n  "));
    }
}

/// Step of the central differences: small enough that the truncation error (~step^2) is far
/// below the tolerance, large enough that rounding (~1e-16 / step) is too.
const STEP: f64 = 1e-6;

/// Compiles `spec`, builds it in f64 on the CPU and checks it on random inputs.
pub fn check_spec(spec: &str, train: bool) -> Result<Report, LowerError> {
    check_spec_with(spec, train, &[])
}

/// As [`check_spec`], with some inputs given by name (integer ids and masks, which have no
/// gradient to check); the others are random.
pub fn check_spec_with(spec: &str, train: bool, given: &[(&str, Tensor)]) -> Result<Report, LowerError> {
    let (lowered, inputs) = build(spec, given)?;
    check(&lowered, &inputs, train)
}

/// The second-order check of `spec` (see [`check_second_order`]) on random inputs.
pub fn check_second_order_spec(spec: &str, train: bool) -> Result<Report, LowerError> {
    check_second_order_with(spec, train, &[])
}

/// As [`check_second_order_spec`], with some inputs given by name.
pub fn check_second_order_with(
    spec: &str,
    train: bool,
    given: &[(&str, Tensor)],
) -> Result<Report, LowerError> {
    let (lowered, inputs) = build(spec, given)?;
    check_second_order(&lowered, &inputs, train)
}

/// `spec` built in f64 on the CPU, and its inputs: `given` by name, the others random.
fn build(spec: &str, given: &[(&str, Tensor)]) -> Result<(Lowered, Vec<Tensor>), LowerError> {
    let model = Model::from_source("gradcheck.wick", spec, &Options::default())?;
    let lowered = model.build_seeded(&Device::Cpu, DType::F64, 3)?;
    let inputs = inputs_with(&lowered, 11, given)?;
    Ok((lowered, inputs))
}

/// Standard-normal float inputs of the declared shapes (integer inputs are not supported here).
pub fn random_inputs(model: &Lowered, seed: u64) -> Result<Vec<Tensor>, LowerError> {
    inputs_with(model, seed, &[])
}

fn inputs_with(model: &Lowered, seed: u64, given: &[(&str, Tensor)]) -> Result<Vec<Tensor>, LowerError> {
    let mut rng = SplitMix64::new(seed);
    model
        .inputs()
        .iter()
        .map(|d| {
            if let Some((_, t)) = given.iter().find(|(name, _)| *name == d.name) {
                return Ok(t.clone());
            }
            if !d.dtype.is_float() {
                return Err(LowerError::Usage(format!(
                    "input `{}` is not float: give it to `check_spec_with`",
                    d.name
                )));
            }
            let n = d.dims.iter().product();
            let values: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            Ok(Tensor::from_vec(values, d.dims.as_slice(), model.device())?.to_dtype(model.dtype())?)
        })
        .collect()
}

/// Checks the gradients of every float input and trainable parameter of an f64 model.
pub fn check(model: &Lowered, inputs: &[Tensor], train: bool) -> Result<Report, LowerError> {
    let Variables { checked, slots, .. } = variables(model, inputs)?;
    // Input variables are set in place, so the tensors in `slots` always hold their values.
    let forward = || model.forward(&slots, train);
    let outputs = forward()?;
    let probes = probes_for(&outputs, 99)?;
    let grads = model.backward(&loss_of(&outputs, &probes)?)?;
    Ok(compare(&checked, &grads, &|| loss_of(&forward()?, &probes)?.to_scalar::<f64>())?)
}

/// Checks the gradients of gradients of an f64 model: with `L` the loss of [`check`] and `x`
/// its float inputs, `P = sum over x of sum(probe_x * dL/dx)`. The analytic `dP/dθ` and `dP/dx`
/// come from an ordinary backward of `P`, whose `dL/dx` came from [`differentiable_grads`] on
/// a [`Pass`] with `differentiable` set; the numeric ones from central differences of `P`,
/// where `P` at each perturbed point is computed with first-order gradients (the ones
/// [`check`] checks), through the kernels that ordinary training runs.
pub fn check_second_order(model: &Lowered, inputs: &[Tensor], train: bool) -> Result<Report, LowerError> {
    second_order(model, inputs, Pass { train, differentiable: true, ..Pass::default() })
}

/// [`check_second_order`] with the analytic side run as `pass` says.
fn second_order(model: &Lowered, inputs: &[Tensor], mut pass: Pass) -> Result<Report, LowerError> {
    let Variables { checked, slots, inputs: xs } = variables(model, inputs)?;
    let train = pass.train;
    let outputs = model.forward_with(&slots, &mut pass)?;
    let probes = probes_for(&outputs, 99)?;
    let input_probes = probes_for(&xs, 77)?;
    let penalty = |grads: &GradStore| -> candle_core::Result<Tensor> {
        let mut total = Tensor::zeros((), DType::F64, &Device::Cpu)?;
        for (x, probe) in xs.iter().zip(&input_probes) {
            if let Some(g) = grads.get(x) {
                total = (total + (g * probe)?.sum_all()?)?;
            }
        }
        Ok(total)
    };
    let analytic = penalty(&differentiable_grads(&loss_of(&outputs, &probes)?)?)?.backward()?;
    let first_order = || -> candle_core::Result<f64> {
        let grads = loss_of(&model.forward(&slots, train)?, &probes)?.backward()?;
        penalty(&grads)?.to_scalar::<f64>()
    };
    Ok(compare(&checked, &analytic, &first_order)?)
}

/// What the checks vary: every float input (as a variable) and trainable parameter, by name.
struct Variables {
    checked: Vec<(String, Var)>,
    /// The model's inputs in order, the float ones being the variables' tensors.
    slots: Vec<Tensor>,
    /// The float inputs' tensors.
    inputs: Vec<Tensor>,
}

fn variables(model: &Lowered, inputs: &[Tensor]) -> Result<Variables, LowerError> {
    if model.dtype() != DType::F64 {
        return Err(LowerError::Usage("gradient checks need an f64 model".into()));
    }
    let mut vars = Variables { checked: Vec::new(), slots: Vec::new(), inputs: Vec::new() };
    for (d, x) in model.inputs().iter().zip(inputs) {
        if x.dtype().is_float() {
            let v = Var::from_tensor(x)?;
            vars.checked.push((format!("input.{}", d.name), v.clone()));
            vars.inputs.push(v.as_tensor().clone());
            vars.slots.push(v.as_tensor().clone());
        } else {
            vars.slots.push(x.clone());
        }
    }
    for (key, v) in model.params().trainable() {
        vars.checked.push((key.to_string(), v.clone()));
    }
    Ok(vars)
}

/// Checks `forward`'s gradients with respect to `vars`, for functions outside a model (and to
/// test this checker itself).
pub fn check_fn(
    vars: &[(String, Var)],
    forward: impl Fn() -> candle_core::Result<Vec<Tensor>>,
) -> candle_core::Result<Report> {
    let outputs = forward()?;
    let probes = probes_for(&outputs, 99)?;
    let loss = loss_of(&outputs, &probes)?;
    compare(vars, &loss.backward()?, &|| loss_of(&forward()?, &probes)?.to_scalar::<f64>())
}

/// Fixed standard-normal probes (drawn from `seed`), one per output.
fn probes_for(outputs: &[Tensor], seed: u64) -> candle_core::Result<Vec<Tensor>> {
    let mut rng = SplitMix64::new(seed);
    outputs
        .iter()
        .map(|o| {
            let values: Vec<f64> = (0..o.elem_count()).map(|_| rng.normal()).collect();
            Tensor::from_vec(values, o.dims(), o.device())
        })
        .collect()
}

fn loss_of(outputs: &[Tensor], probes: &[Tensor]) -> candle_core::Result<Tensor> {
    let mut total = Tensor::zeros((), DType::F64, &Device::Cpu)?;
    for (o, p) in outputs.iter().zip(probes) {
        if o.dtype().is_float() {
            total = (total + (o * p)?.sum_all()?)?;
        }
    }
    Ok(total)
}

/// Central differences of `objective` in every element of every variable, against `grads`.
fn compare(
    vars: &[(String, Var)],
    grads: &GradStore,
    objective: &dyn Fn() -> candle_core::Result<f64>,
) -> candle_core::Result<Report> {
    let mut report = Report::default();
    for (name, var) in vars {
        let analytic = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all()?.to_vec1::<f64>()?,
            None => vec![0.0; var.elem_count()],
        };
        let original = var.as_tensor().flatten_all()?.to_vec1::<f64>()?;
        let mut values = original.clone();
        let (mut max_abs_error, mut scale) = (0.0f64, 0.0f64);
        for i in 0..values.len() {
            let mut loss_at = |delta: f64| -> candle_core::Result<f64> {
                values[i] = original[i] + delta;
                var.set(&Tensor::from_vec(values.clone(), var.dims(), var.device())?)?;
                objective()
            };
            let numeric = (loss_at(STEP)? - loss_at(-STEP)?) / (2.0 * STEP);
            values[i] = original[i];
            let error = (numeric - analytic[i]).abs();
            max_abs_error = if error.is_nan() { f64::INFINITY } else { max_abs_error.max(error) };
            scale = scale.max(numeric.abs());
        }
        var.set(&Tensor::from_vec(original, var.dims(), var.device())?)?;
        report.tensors.push(TensorError { name: name.clone(), max_abs_error, scale });
    }
    Ok(report)
}

/// The outputs of `spec` built in f64 on the CPU (seed 3, as the checks), on `inputs`: an op's
/// forward values, to compare with PyTorch's.
#[cfg(test)]
pub fn run_spec(spec: &str, inputs: &[Tensor], train: bool) -> Vec<Tensor> {
    let model = Model::from_source("run.wick", spec, &Options::default()).expect("the spec compiles");
    let lowered = model.build_seeded(&Device::Cpu, DType::F64, 3).expect("the spec lowers");
    lowered.forward(inputs, train).expect("the forward pass runs")
}

/// A test variable of `shape` (f64, CPU) holding `sin(step * i + phase)` over its elements in
/// order: no pattern a transposed or swapped axis could keep.
#[cfg(test)]
pub fn wave(shape: &[usize], step: f64, phase: f64) -> Var {
    let n: usize = shape.iter().product();
    let t = Tensor::arange(0.0f64, n as f64, &Device::Cpu)
        .and_then(|t| t.affine(step, phase)?.sin()?.reshape(shape));
    Var::from_tensor(&t.expect("a small f64 tensor on the CPU")).expect("a variable")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(shape: &[usize], seed: u64) -> Var {
        let mut rng = SplitMix64::new(seed);
        let values: Vec<f64> = (0..shape.iter().product()).map(|_| rng.normal()).collect();
        Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap()).unwrap()
    }

    #[test]
    fn second_order_check_catches_the_first_order_kernels() {
        let spec = "model M { input x: [2, 3, 5, 4]\n output y = x |> c: Conv2d(4, 3, stride=2) |> Tanh\n \
                    output z = x |> Flatten |> fc: Linear(3) |> Softmax }";
        let (model, inputs) = build(spec, &[]).unwrap();
        check_second_order(&model, &inputs, true).unwrap().assert_within(1e-6);
        // The same pass on the kernels with a hand-written backward: the gradients come back
        // (partly) detached, and the check says so.
        let first_order = second_order(&model, &inputs, Pass { train: true, ..Pass::default() }).unwrap();
        let worst = first_order.tensors.iter().map(|t| t.max_abs_error / (1.0 + t.scale)).fold(0.0, f64::max);
        assert!(worst > 1e-2, "{first_order:?}");
    }

    #[test]
    fn passes_a_right_gradient_and_catches_candles_wrong_conv_ones() {
        let (x, w) = (var(&[2, 4, 9], 1), var(&[6, 2, 3], 2));
        let vars = [("x".to_string(), x.clone()), ("w".to_string(), w.clone())];
        let good = check_fn(&vars, || {
            Ok(vec![x.as_tensor().broadcast_mul(&w.as_tensor().sum_all()?.exp()?)?.tanh()?])
        });
        good.unwrap().assert_within(1e-6);
        // candle 0.11's conv1d backward is wrong for a strided, grouped convolution.
        let bad = check_fn(&vars, || Ok(vec![x.as_tensor().conv1d(w.as_tensor(), 1, 2, 1, 2)?])).unwrap();
        let worst =
            |r: &Report| r.tensors.iter().map(|t| t.max_abs_error / (1.0 + t.scale)).fold(0.0, f64::max);
        assert!(worst(&bad) > 1e-2, "{bad:?}");
        // And its conv2d backward when the axes leave different remainders (7 + 2 - 3 and 6 + 2 - 3).
        let (x, w) = (var(&[1, 2, 7, 6], 3), var(&[3, 2, 3, 3], 4));
        let vars = [("x".to_string(), x.clone())];
        // (It fails outright here; with the axes swapped it may give a wrong gradient instead.)
        match check_fn(&vars, || Ok(vec![x.as_tensor().conv2d(w.as_tensor(), 1, 2, 1, 1)?])) {
            Ok(bad) => assert!(worst(&bad) > 1e-2, "{bad:?}"),
            Err(e) => assert!(e.to_string().contains("shape mismatch"), "{e}"),
        }
    }
}
