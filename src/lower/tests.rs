//! The executor and parameter store end to end: freeing, ties, frozen layers, the gradient
//! check after the first backward pass, weights on disk, candle's `Module`, build errors.

use candle_core::{DType, Device, Module, Tensor};

use super::*;
use crate::ir::graph::Node;
use crate::ops::{Cost, Op, OpError, ParamDecl};
use crate::{Model, Options};

fn build(spec: &str) -> Lowered {
    let model = Model::from_source("t.wick", spec, &Options::default()).unwrap();
    model.build(&Device::Cpu, DType::F32).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn a_long_chain_holds_a_constant_number_of_intermediates() {
    let chain = |n: usize| {
        let layers: Vec<&str> = (0..n).map(|_| "Tanh").collect();
        build(&format!("model M {{ input x: [2, 100]\n output y = x |> {} }}", layers.join(" |> ")))
    };
    // The tensor being read and the one being written: 400 elements however long.
    assert_eq!(chain(3).peak_live_elements(), 400);
    assert_eq!(chain(40).peak_live_elements(), 400);
    let y = chain(40).forward(&[Tensor::ones((2, 100), DType::F32, &Device::Cpu).unwrap()], false).unwrap();
    assert_eq!(y[0].dims(), &[2, 100]);
}

#[test]
fn a_branch_is_kept_until_its_last_consumer() {
    let m = build(
        "model M { input x: [1, 10]\n a = x |> Tanh\n b = a |> Sigmoid |> Tanh |> Tanh\n output y = a + b }",
    );
    // `a` waits for the add while the chain reads one tensor and writes the next.
    assert_eq!(m.peak_live_elements(), 30);
    let x = Tensor::new(&[[0.5f32; 10]], &Device::Cpu).unwrap();
    let a = 0.5f32.tanh();
    let expected = a + (1.0 / (1.0 + (-a).exp())).tanh().tanh();
    assert!((values(&m.forward(&[x], false).unwrap()[0])[3] - expected).abs() < 1e-6);
}

#[test]
fn live_bytes_count_ids_at_their_width_and_floats_at_the_model_dtype() {
    let spec = "model M { input ids: [2, 3] of i64\n output y = ids |> Embedding(10, 4) }";
    let model = Model::from_source("t.wick", spec, &Options::default()).unwrap();
    // While the lookup runs: 6 ids of 8 bytes and the 24-element output.
    for (dtype, bytes) in [(DType::F32, 6 * 8 + 24 * 4), (DType::F64, 6 * 8 + 24 * 8)] {
        let m = model.build(&Device::Cpu, dtype).unwrap();
        assert_eq!((m.peak_live_elements(), m.peak_live_bytes()), (30, bytes), "{dtype:?}");
    }
}

#[test]
fn infer_gives_forward_values_without_the_graph() {
    let m = build("model M { input x: [2, 4]\n output y = x |> fc: Linear(3) |> Tanh |> BatchNorm1d }");
    let x = Tensor::new(&[[0.5f32, -1.0, 2.0, 0.0], [1.0, 0.25, -0.5, 3.0]], &Device::Cpu).unwrap();
    let recorded = m.forward(std::slice::from_ref(&x), false).unwrap().remove(0);
    let detached = m.infer(std::slice::from_ref(&x), false).unwrap().remove(0);
    assert_eq!(values(&recorded), values(&detached));
    let weight = m.params().get("fc.weight").unwrap().as_tensor();
    assert!(recorded.sum_all().unwrap().backward().unwrap().get(weight).is_some());
    assert!(detached.sum_all().unwrap().backward().unwrap().get(weight).is_none());
}

#[test]
fn tied_layers_share_one_variable_and_frozen_ones_are_not_trained() {
    let m = build(
        "model M { input x: [2, 4]\n h = x |> enc: Linear(4, bias=false) |> Tanh\n \
         output y = h |> dec: Linear(4, bias=false, tie=\"enc\") |> head: Linear(3, frozen=true) }",
    );
    let keys: Vec<&str> = m.params().trainable().iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, vec!["enc.weight"]);
    assert_eq!(m.params().keys(), vec!["enc.weight", "head.weight", "head.bias"]);
    let (enc, dec) = (m.params().get("enc.weight").unwrap(), m.params().get("dec.weight").unwrap());
    assert_eq!(enc.as_tensor().id(), dec.as_tensor().id());
    // The shared tensor gets the gradient of both uses.
    let x = Tensor::ones((2, 4), DType::F32, &Device::Cpu).unwrap();
    let y = m.forward(&[x], true).unwrap().remove(0);
    let grads = m.backward(&y.sum_all().unwrap()).unwrap();
    assert!(grads.get(enc.as_tensor()).is_some());
}

#[test]
fn a_parameter_without_gradient_fails_the_first_backward_pass() {
    let m =
        build("model M { input x: [2, 3]\n output y = x |> a: Linear(2)\n output z = x |> b: Linear(2) }");
    let x = Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap();
    let outs = m.forward(std::slice::from_ref(&x), true).unwrap();
    let err = m.backward(&outs[0].sum_all().unwrap()).unwrap_err().to_string();
    assert!(err.contains("b.weight, b.bias") && !err.contains("a.weight"), "{err}");
    // Checked once: later passes are not slowed down.
    let outs = m.forward(&[x], true).unwrap();
    assert!(m.backward(&outs[0].sum_all().unwrap()).is_ok());
}

#[test]
fn weights_round_trip_through_safetensors_and_seeds_differ() {
    let spec = "model M { input x: [2, 3]\n output y = x |> fc: Linear(5) |> bn: BatchNorm1d }";
    let model = Model::from_source("t.wick", spec, &Options::default()).unwrap();
    let a = model.build_seeded(&Device::Cpu, DType::F32, 1).unwrap();
    let b = model.build_seeded(&Device::Cpu, DType::F32, 2).unwrap();
    let w = |m: &Lowered| values(m.params().get("fc.weight").unwrap().as_tensor());
    assert_ne!(w(&a), w(&b));
    // PyTorch's Linear default: U(-1/sqrt(in), 1/sqrt(in)).
    assert!(w(&a).iter().all(|v| v.abs() <= 1.0 / 3f32.sqrt()));
    let path = std::env::temp_dir().join(format!("wick-roundtrip-{}.safetensors", std::process::id()));
    a.save_weights(&path).unwrap();
    let report = b.load_weights(&path, false).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(report.loaded, 6);
    assert_eq!(w(&a), w(&b));
}

#[test]
fn a_model_built_for_another_batch_shares_every_tensor_and_the_pass_count() {
    let spec =
        "dim N = 4\nmodel M { input x: [N, 3]\n output y = x |> fc: Linear(5) |> bn: BatchNorm1d |> Tanh }";
    let model = Model::from_source("t.wick", spec, &Options::default()).unwrap();
    let four = model.build_seeded(&Device::Cpu, DType::F32, 3).unwrap();
    let three = model.build_sharing(&four, &[("N".into(), 3)]).unwrap();
    assert_eq!(three.inputs()[0].dims, [3, 3]);
    let x = Tensor::arange(0f32, 12.0, &Device::Cpu).unwrap().reshape((4, 3)).unwrap();
    let first_three = x.narrow(0, 0, 3).unwrap();
    let rows = |m: &Lowered, x: &Tensor| m.infer(std::slice::from_ref(x), false).unwrap().remove(0);
    let close = |a: &Tensor, b: &Tensor| {
        values(a).iter().zip(values(b)).all(|(p, q)| (p - q).abs() < 1e-6) && a.dims() == b.dims()
    };
    assert!(close(&rows(&three, &first_three), &rows(&four, &x).narrow(0, 0, 3).unwrap()));
    // A weight set through one model is the other's, and so are its outputs.
    let before = rows(&four, &x);
    let w = Tensor::full(0.5f32, (5, 3), &Device::Cpu).unwrap();
    three.params().get("fc.weight").unwrap().set(&w).unwrap();
    assert_eq!(values(four.params().get("fc.weight").unwrap().as_tensor()), values(&w));
    assert!(!close(&rows(&four, &x), &before));
    assert!(close(&rows(&three, &first_three), &rows(&four, &x).narrow(0, 0, 3).unwrap()));
    // Training through the small model moves the running statistics the big one evaluates with.
    let mean = || values(four.params().get("bn.running_mean").unwrap().as_tensor());
    assert!(mean().iter().all(|v| *v == 0.0));
    let passes = four.params().passes();
    three.forward(std::slice::from_ref(&first_three), true).unwrap();
    assert!(mean().iter().any(|v| *v != 0.0));
    assert_eq!(four.params().passes(), passes + 1);

    let err =
        |bind: (&str, i64)| model.build_sharing(&four, &[(bind.0.into(), bind.1)]).unwrap_err().to_string();
    assert!(err(("B", 3)).contains("`B` names no dim of model M (its dims: N)"), "{}", err(("B", 3)));
    assert!(err(("N", 0)).contains("at least 1"), "{}", err(("N", 0)));
    let wider = "dim N = 4\nmodel M { input x: [N, 3]\n output y = x |> fc: Linear(5) |> head: Linear(2) }";
    let wider = Model::from_source("t.wick", wider, &Options::default()).unwrap();
    let err = wider.build_sharing(&four, &[]).unwrap_err().to_string();
    assert!(err.contains("`head.weight` of model M is not a parameter of `M`"), "{err}");
}

#[test]
fn module_runs_single_io_models_in_eval_mode() {
    let m = build("model M { input x: [2, 3]\n output y = x |> Dropout(0.9) |> Softmax }");
    let x = Tensor::new(&[[1f32, 2., 3.], [0., 0., 0.]], &Device::Cpu).unwrap();
    let y = values(&Module::forward(&m, &x).unwrap());
    assert!((y[3] - 1.0 / 3.0).abs() < 1e-6 && (y[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    let two = build("model M { input x: [2, 3]\n output y = x |> Tanh\n output z = x |> ReLU }");
    assert!(Module::forward(&two, &x).unwrap_err().to_string().contains("one input and one output"));
    let err = m.forward(&[Tensor::ones((3, 3), DType::F32, &Device::Cpu).unwrap()], false).unwrap_err();
    assert!(err.to_string().contains("input `x` must have shape [2, 3], found [3, 3]"), "{err}");
}

#[test]
fn spec_errors_and_unbound_dims_are_reported_not_panicked() {
    let err = Model::from_source(
        "t.wick",
        "model M { input x: [2, 3]\n output y = x |> Lineer(2) }",
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(err, LowerError::Spec(ref text) if text.contains("Lineer")), "{err}");
    let opts = Options { symbolic: true, ..Options::default() };
    let model = Model::from_source(
        "t.wick",
        "dim N = 4\n model M { input x: [N, 3]\n output y = x |> fc: Linear(2) }",
        &opts,
    )
    .unwrap();
    let err = model.build(&Device::Cpu, DType::F32).unwrap_err().to_string();
    assert!(err.contains("unbound") || err.contains("no value"), "{err}");
    assert!(model.build(&Device::Cpu, DType::U32).is_err());
}

/// An op registered by no one, with no lowering of its own.
#[derive(Debug)]
struct Unlowered;

impl super::Lower for Unlowered {}

impl Op for Unlowered {
    fn infer(
        &self,
        inputs: &[crate::ir::tensor::TensorType],
    ) -> Result<Vec<crate::ir::tensor::TensorType>, OpError> {
        Ok(inputs.to_vec())
    }

    fn cost(&self, _: &[crate::ir::tensor::TensorType], _: &[crate::ir::tensor::TensorType]) -> Cost {
        Cost::Uncounted
    }
}

#[test]
fn an_op_without_lowering_fails_the_build_naming_its_layer() {
    let node = Node {
        kind: "Mystery",
        op: Box::new(Unlowered),
        attrs: Default::default(),
        path: "stage.mystery".into(),
        outputs: Vec::new(),
        params: vec![ParamDecl::weight("weight", vec![], crate::ops::Init::Ones)],
        frozen: false,
        tied: Vec::new(),
    };
    let bindings = Default::default();
    let mut store = ParamStore::new(0, DType::F32, &Device::Cpu);
    let mut ctx = LowerCtx {
        node: &node,
        inputs: Vec::new(),
        declared_inputs: Vec::new(),
        outputs: Vec::new(),
        dtype: DType::F32,
        device: &Device::Cpu,
        bindings: &bindings,
        store: &mut store,
    };
    let err = node.op.lower(&mut ctx).err().unwrap().to_string();
    assert_eq!(err, "cannot lower `stage.mystery` (Mystery): op Mystery has no lowering yet");
    let err = ctx.weight("bias").unwrap_err().to_string();
    assert!(err.contains("declares no parameter named `bias`"), "{err}");
}

#[test]
fn a_differentiable_pass_takes_the_compositions_and_gives_the_kernels_values() {
    // Every layer here has a CPU kernel with a hand-written backward.
    let spec = "model M { input x: [3, 2, 5, 7]\n \
                output y = x |> MaxPool2d(2, stride=1) |> Flatten |> Linear(6) |> ReLU \
                |> LayerNorm(6) |> Dropout(0.3) |> Softmax(dim=1) }";
    let net = build(spec);
    let x = Tensor::randn(0f32, 1.0, (3, 2, 5, 7), &Device::Cpu).unwrap();
    let fused = net.forward(std::slice::from_ref(&x), false).unwrap().remove(0);
    let mut pass = Pass { differentiable: true, ..Pass::default() };
    let composed = net.forward_with(&[x], &mut pass).unwrap().remove(0);
    let gap = (fused - composed).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(gap < 1e-6, "{gap}");
    // Inside the scope the kernels stand down; it ends with the pass.
    let t = Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap();
    assert!(!kernels::cpu::composed_if(true, || kernels::cpu::on_cpu_float(&t)));
    assert!(kernels::cpu::on_cpu_float(&t));
}

#[test]
fn a_pass_carries_one_state_per_layer_and_refuses_another_models() {
    let net = build("model M { input x: [2, 3]\n output y = x |> Linear(4) |> Tanh }");
    let x = Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap();
    let mut pass = Pass { states: Some(net.new_states()), ..Pass::default() };
    net.forward_with(std::slice::from_ref(&x), &mut pass).unwrap();
    assert_eq!(pass.states.as_ref().map(Vec::len), Some(2));
    let mut wrong = Pass { states: Some(vec![LayerState::new(); 5]), ..Pass::default() };
    let e = net.forward_with(&[x], &mut wrong).unwrap_err().to_string();
    assert!(e.contains("states for another model"), "{e}");
}
