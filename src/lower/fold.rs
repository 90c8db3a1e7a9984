//! Batch norms folded into the convolution or linear layer before them, for inference.
//!
//! In eval mode a batch norm is a per-channel affine map, `y = x * scale + shift` with
//! `scale = weight / sqrt(running_var + eps)` and `shift = bias - running_mean * scale`. After a
//! layer whose output channel `o` is row `o` of its weight applied to the input plus `bias[o]`
//! (a convolution; a linear layer on `[N, features]`), the pair is that one layer with each
//! weight row scaled by `scale[o]` and the bias `bias * scale + shift`: the batch norm's
//! element-wise passes over the activation (four of candle's, each on the thread pool) are gone,
//! and the bias rides in the producer's own output copy. ResNet-50 has 53 such pairs.
//!
//! [`Lowered::fold_for_inference`](super::Lowered::fold_for_inference) plans the pairs once per
//! build of an inference lowering. The folded weights are made (in f64, then rounded once to
//! the model's dtype) by the first pass that uses them and again after every change the
//! parameter store counts ([`ParamStore::changes`](super::ParamStore::changes): a load, a
//! redraw, a training pass). A pass folds only when it records no autograd graph (`infer`), the
//! batch norm normalises with its running statistics, the pass's gradients are not
//! differentiated again and it reuses no kept outputs; any other pass runs both layers as built,
//! so training never sees a folded weight.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Result, Tensor};

use super::executor::Step;
use super::{Forward, ForwardCtx};

/// What a layer is to the folding ([`Forward::fold_role`]).
pub enum Role<'a> {
    None,
    /// It can take a per-channel affine map of its output into its weights.
    Producer(&'a dyn ChannelProducer),
    /// In eval mode it is a per-channel affine map.
    Affine(&'a dyn ChannelAffine),
}

/// A layer whose output channel `o` (axis 1 of its output) is row `o` of its weight (axis 0)
/// applied to the input, plus `bias[o]`.
pub trait ChannelProducer: Sync {
    fn weight(&self) -> &Tensor;
    fn bias(&self) -> Option<&Tensor>;
    /// The same layer with another weight and bias (of the same shapes).
    fn with(&self, weight: Tensor, bias: Tensor) -> Box<dyn Forward>;
}

/// A layer that in eval mode maps channel `c` (axis 1) of its one input to `x * scale[c] +
/// shift[c]`.
pub trait ChannelAffine: Sync {
    /// `(scale, shift)`, each `[C]`, in f64.
    fn eval_affine(&self) -> Result<(Tensor, Tensor)>;
}

/// A layer `f(x, weight, bias, train)` whose output channel `o` is row `o` of its weight: a
/// convolution, a linear layer whose output is `[N, features]`.
pub fn producer<F>(weight: Tensor, bias: Option<Tensor>, f: F) -> Box<dyn Forward>
where
    F: Fn(&Tensor, &Tensor, Option<&Tensor>, bool) -> Result<Tensor> + Send + Sync + 'static,
{
    Box::new(Rows { weight, bias, f: Arc::new(f) })
}

struct Rows<F> {
    weight: Tensor,
    bias: Option<Tensor>,
    f: Arc<F>,
}

impl<F> Forward for Rows<F>
where
    F: Fn(&Tensor, &Tensor, Option<&Tensor>, bool) -> Result<Tensor> + Send + Sync + 'static,
{
    fn forward(&self, inputs: &[Tensor], ctx: &mut ForwardCtx) -> Result<Vec<Tensor>> {
        match inputs {
            [x] => Ok(vec![(self.f)(x, &self.weight, self.bias.as_ref(), ctx.train)?]),
            _ => candle_core::bail!("expected 1 input, found {}", inputs.len()),
        }
    }

    fn fold_role(&self) -> Role<'_> {
        Role::Producer(self)
    }
}

impl<F> ChannelProducer for Rows<F>
where
    F: Fn(&Tensor, &Tensor, Option<&Tensor>, bool) -> Result<Tensor> + Send + Sync + 'static,
{
    fn weight(&self) -> &Tensor {
        &self.weight
    }

    fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    fn with(&self, weight: Tensor, bias: Tensor) -> Box<dyn Forward> {
        Box::new(Rows { weight, bias: Some(bias), f: Arc::clone(&self.f) })
    }
}

/// `producer` with `affine` taken into its weight and bias: the folded layer.
pub fn folded(producer: &dyn ChannelProducer, affine: &dyn ChannelAffine) -> Result<Box<dyn Forward>> {
    let (scale, shift) = affine.eval_affine()?;
    let w = producer.weight();
    let outputs = w.dim(0)?;
    if scale.elem_count() != outputs {
        candle_core::bail!("a batch norm of {} channels after a layer of {outputs}", scale.elem_count());
    }
    let mut rows = vec![1; w.rank()];
    rows[0] = outputs;
    let weight = w.to_dtype(DType::F64)?.broadcast_mul(&scale.reshape(rows)?)?.to_dtype(w.dtype())?;
    let bias = match producer.bias() {
        Some(b) => ((b.to_dtype(DType::F64)? * &scale)? + &shift)?.to_dtype(b.dtype())?,
        None => shift.to_dtype(w.dtype())?,
    };
    Ok(producer.with(weight.detach(), bias.detach()))
}

/// A planned pair: a producer's step holds it, naming the batch norm's step.
pub(super) struct Fold {
    /// The batch norm's step: in a folding pass its output is its input.
    pub(super) norm: usize,
    /// The folded layer and the store's change count it was made at.
    made: Mutex<Option<(u64, Arc<dyn Forward>)>>,
}

impl Fold {
    /// The folded layer of `producer` and `norm` for the store's change count `changes`, made
    /// again when that has moved.
    pub(super) fn layer(
        &self,
        producer: &dyn Forward,
        norm: &dyn Forward,
        changes: u64,
    ) -> Result<Arc<dyn Forward>> {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, layer)) = made.as_ref().filter(|(at, _)| *at == changes) {
            return Ok(Arc::clone(layer));
        }
        let (Role::Producer(p), Role::Affine(a)) = (producer.fold_role(), norm.fold_role()) else {
            candle_core::bail!("a planned fold lost its producer or its batch norm")
        };
        let layer: Arc<dyn Forward> = Arc::from(folded(p, a)?);
        *made = Some((changes, Arc::clone(&layer)));
        Ok(layer)
    }
}

/// One entry per step: the fold a producer's step starts. A pair is folded when the producer's
/// one output is read by the batch norm alone and is no model output.
pub(super) fn plan(steps: &[Step], outputs: &[(String, usize)]) -> Vec<Option<Fold>> {
    let mut readers = std::collections::HashMap::<usize, usize>::new();
    for s in steps.iter().flat_map(|s| &s.inputs).chain(outputs.iter().map(|(_, s)| s)) {
        *readers.entry(*s).or_default() += 1;
    }
    let mut folds: Vec<Option<Fold>> = steps.iter().map(|_| None).collect();
    for (norm, step) in steps.iter().enumerate() {
        let (Role::Affine(_), [slot]) = (step.layer.fold_role(), step.inputs.as_slice()) else { continue };
        if readers.get(slot) != Some(&1) {
            continue;
        }
        let producer = steps[..norm].iter().position(|p| p.outputs == [*slot]);
        if let Some(p) = producer.filter(|p| matches!(steps[*p].layer.fold_role(), Role::Producer(_))) {
            folds[p] = Some(Fold { norm, made: Mutex::new(None) });
        }
    }
    folds
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    /// `max |a - b| / max |b|`: the difference relative to the output's scale.
    fn max_relative(a: &Tensor, b: &Tensor) -> f64 {
        let (a, b) = (
            a.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap(),
            b.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap(),
        );
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
    }

    /// Running statistics and affine parameters away from 0 and 1, so that a fold that dropped
    /// or misplaced any of them would show.
    fn perturb_norms(net: &crate::Lowered) {
        for e in net.params().entries() {
            let Some(kind) = ["running_mean", "running_var", "bn1.weight", "bn2.weight", "bias"]
                .iter()
                .position(|k| e.key.ends_with(k) && (e.key.contains("bn") || e.key.contains("downsample.1")))
            else {
                continue;
            };
            let n = e.var.elem_count();
            let wave: Vec<f32> = (0..n).map(|i| ((i * 7 + kind * 3) % 11) as f32 / 11.0).collect();
            let values: Vec<f32> = match kind {
                0 => wave.iter().map(|v| v - 0.5).collect(),
                1 => wave.iter().map(|v| 0.5 + v).collect(),
                _ => wave.iter().map(|v| 0.75 + 0.5 * v).collect(),
            };
            e.var.set(&Tensor::from_vec(values, e.var.dims(), &Device::Cpu).unwrap()).unwrap();
        }
        net.params().changed();
    }

    #[test]
    fn folded_resnet18_equals_the_unfolded_one_within_f32_rounding() {
        let bind = [("N", 2), ("H", 40), ("W", 36)].map(|(d, v)| (d.to_string(), v)).to_vec();
        let opts = crate::Options { bind, ..Default::default() };
        let model = crate::Model::from_file("specs/resnet18.wick", &opts).unwrap();
        let plain = model.build_seeded(&Device::Cpu, DType::F32, 3).unwrap();
        let mut folded = model.build_sharing(&plain, &[]).unwrap();
        assert_eq!(folded.fold_for_inference(), 20, "every batch norm of resnet18 follows a conv");
        perturb_norms(&plain);
        let x = Tensor::randn(0f32, 1.0, (2, 3, 40, 36), &Device::Cpu).unwrap();
        let want = plain.infer(std::slice::from_ref(&x), false).unwrap().remove(0);
        let got = folded.infer(std::slice::from_ref(&x), false).unwrap().remove(0);
        let rel = max_relative(&got, &want);
        // Measured 4.9e-7: f32 rounding, the products summed in another order.
        assert!(rel < 1e-5, "max relative difference {rel:e}");
        assert!(rel > 0.0, "the folded pass ran the unfolded layers");
    }

    #[test]
    fn a_load_refolds_and_training_runs_the_layers_as_built() {
        let spec = "model M { input x: [3, 2, 5, 4]\n input v: [4, 6]\n \
                    output y = x |> c: Conv2d(3, 3, padding=1) |> bn: BatchNorm2d |> ReLU\n \
                    output z = v |> fc: Linear(5, bias=false) |> b1: BatchNorm1d }";
        let model = crate::Model::from_source("f.wick", spec, &crate::Options::default()).unwrap();
        let plain = model.build_seeded(&Device::Cpu, DType::F32, 1).unwrap();
        let mut folded = model.build_sharing(&plain, &[]).unwrap();
        assert_eq!(folded.fold_for_inference(), 2);
        let x = Tensor::randn(0f32, 1.0, (3, 2, 5, 4), &Device::Cpu).unwrap();
        let v = Tensor::randn(0f32, 1.0, (4, 6), &Device::Cpu).unwrap();
        let xs = [x, v];
        let close = |train: bool, record: bool| {
            let run = |m: &crate::Lowered| match record {
                true => m.forward(&xs, train).unwrap(),
                false => m.infer(&xs, train).unwrap(),
            };
            let (want, got) = (run(&plain), run(&folded));
            want.iter().zip(&got).map(|(w, g)| max_relative(g, w)).fold(0.0, f64::max)
        };
        assert!(close(false, false) < 1e-5);
        // A training pass moves the running statistics; the next inference folds them anew.
        assert_eq!(close(true, false), 0.0, "training must run the layers as built");
        assert!(close(false, false) < 1e-5);
        // A load changes the weights under the fold.
        let mut saved = plain.params().state_dict();
        for (k, t) in saved.iter_mut() {
            // Fresh tensors: a `Var` cannot be set to its own storage.
            *t = match k.ends_with("running_var") || k.ends_with("weight") {
                true => (t.abs().unwrap() + 0.5).unwrap(),
                false => (&*t * 0.5).unwrap(),
            };
        }
        let saved = saved.into_iter().collect();
        plain.params().load_map(&saved, false).unwrap();
        assert!(close(false, false) < 1e-5);
        assert_eq!(close(false, true), 0.0, "a recorded pass must run the layers as built");
    }
}
