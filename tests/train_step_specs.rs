//! The recurrent and generative catalog specs train: after one training-mode forward pass
//! (inter-layer and head dropout on, fresh reparameterisation noise) and one backward pass,
//! every trainable parameter has a finite gradient. `Lowered::backward` itself fails when a
//! parameter has none, which is how candle's silent gaps would show.

use candle_core::{DType, Device, Tensor};
use wick::{Model, Options};

fn train_step(path: &str, bind: &[(&str, i64)]) {
    let opts =
        Options { bind: bind.iter().map(|(d, v)| (d.to_string(), *v)).collect(), ..Options::default() };
    let model = Model::from_file(path, &opts).unwrap();
    let net = model.build_seeded(&Device::Cpu, DType::F32, 5).unwrap();
    let inputs: Vec<Tensor> = net
        .inputs()
        .iter()
        .map(|d| Tensor::randn(0f32, 1.0, d.dims.as_slice(), &Device::Cpu).unwrap())
        .collect();
    let outputs = net.forward(&inputs, true).unwrap();
    let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu).unwrap();
    for y in &outputs {
        loss = (loss + y.sqr().unwrap().mean_all().unwrap()).unwrap();
    }
    let grads = net.backward(&loss).unwrap();
    for (key, var) in net.params().trainable() {
        let g = grads.get(var.as_tensor()).unwrap();
        let total = g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(total.is_finite(), "{path}: {key} has a gradient of {total}");
    }
}

#[test]
fn char_rnn_lstm() {
    train_step("specs/char_rnn_lstm.wick", &[("N", 3), ("T", 7)]);
}

#[test]
fn gru_seq2seq() {
    train_step("specs/gru_seq2seq.wick", &[("S", 5), ("T", 4)]);
}

#[test]
fn stylegan_mapping() {
    train_step("specs/stylegan_mapping.wick", &[("N", 2)]);
}

#[test]
fn vae() {
    train_step("specs/vae.wick", &[("N", 2)]);
}
