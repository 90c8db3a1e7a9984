//! Second-order gradient checks (gradients of gradients, as a gradient penalty takes them) for
//! every op a critic or discriminator may contain, on odd, non-square shapes, in f64 on the
//! CPU. `P = sum(probe * dL/dx)` over the float inputs; its analytic gradient (through the
//! differentiable pass) against central differences of `P` computed with first-order gradients
//! (see `wick::lower::gradcheck::check_second_order`).
//!
//! A linear layer's input gradient does not depend on its input, so each is followed by a
//! nonlinearity: then `dP/dx` runs through the layer's backward, and checks that it is
//! differentiable too. `wick::lower::second_order` lists these tests per op kind.

use candle_core::{Device, Tensor};
use wick::lower::gradcheck::{check_second_order_spec, check_second_order_with, Report};

const TOLERANCE: f64 = 1e-6;

/// One model with an output per body, each reading `x` of `shape`.
fn spec(shape: &str, bodies: &[&str]) -> String {
    let outputs: Vec<String> =
        bodies.iter().enumerate().map(|(i, b)| format!("output y{i} = x |> {b}")).collect();
    format!("model M {{ input x: {shape}\n {} }}", outputs.join("\n "))
}

fn check(shape: &str, bodies: &[&str], train: bool) -> Report {
    let report = check_second_order_spec(&spec(shape, bodies), train).unwrap();
    report.assert_within(TOLERANCE);
    print_worst(&report);
    report
}

/// The worst relative error, for the record (`cargo test -- --nocapture`).
fn print_worst(report: &Report) {
    let worst = report.tensors.iter().map(|t| t.max_abs_error / (1.0 + t.scale)).fold(0.0, f64::max);
    println!("worst relative error {worst:.2e} over {} tensors", report.tensors.len());
}

#[test]
fn conv1d() {
    check(
        "[2, 4, 9]",
        &["c: Conv1d(6, 3, stride=2, padding=1, groups=2) |> Tanh", "d: Conv1d(3, 2, dilation=2) |> Tanh"],
        true,
    );
}

#[test]
fn conv2d_strides_with_uneven_remainders_padding_dilation_groups() {
    check(
        "[2, 4, 7, 6]",
        &[
            // 7 + 2 - 3 = 6 and 6 + 2 - 3 = 5 leave remainders 0 and 1 under stride 2.
            "c: Conv2d(3, 3, stride=2, padding=1) |> Tanh",
            "d: Conv2d(5, [3, 2], stride=[2, 3], dilation=[1, 2], padding=[1, 0]) |> Tanh",
            "e: Conv2d(6, 3, groups=2, dilation=2, padding=2, bias=false) |> Tanh",
            "f: Conv2d(4, 3, stride=2, padding=1, groups=4) |> Tanh",
            "g: Conv2d(2, 4, padding=\"same\", padding_mode=\"reflect\") |> Tanh",
        ],
        true,
    );
}

#[test]
fn conv_transpose2d() {
    check(
        "[2, 4, 3, 5]",
        &[
            "d: ConvTranspose2d(3, 4, stride=2, padding=1, bias=false) |> Tanh",
            "e: ConvTranspose2d(6, 3, stride=2, padding=1, output_padding=1, groups=2) |> Tanh",
            "f: ConvTranspose2d(3, [3, 2], stride=[2, 3], padding=[1, 0], output_padding=[1, 2]) |> Tanh",
        ],
        true,
    );
}

#[test]
fn linear_and_equal_linear() {
    check(
        "[3, 5]",
        &[
            "fc: Linear(4) |> Tanh",
            "eq: EqualLinear(4, lr_mul=0.1, bias_init=0.5) |> Tanh",
            "nb: EqualLinear(2, bias=false) |> Sigmoid",
        ],
        true,
    );
}

#[test]
fn every_activation() {
    check(
        "[3, 7]",
        &[
            "ReLU",
            "ReLU6",
            "LeakyReLU(0.2)",
            "ELU(alpha=0.7)",
            "GELU",
            "GELU(approximate=\"tanh\")",
            "SiLU",
            "Sigmoid",
            "Tanh",
            "Exp",
            "Hardtanh(-0.5, 0.8)",
            "Softplus(beta=2.0, threshold=1.5)",
            "Softmax(0)",
            "LogSoftmax",
        ],
        true,
    );
}

#[test]
fn layer_group_and_instance_norm() {
    check("[2, 3, 5]", &["ln: LayerNorm", "l2: LayerNorm([3, 5], eps=0.1, bias=false)"], true);
    check(
        "[2, 6, 3, 5]",
        &[
            "gn: GroupNorm(3)",
            "GroupNorm(2, affine=false, eps=0.1)",
            "inorm: InstanceNorm2d(affine=true)",
            "InstanceNorm2d",
        ],
        true,
    );
}

#[test]
fn batch_norm_in_train_and_eval_mode() {
    for train in [true, false] {
        check("[3, 4, 5, 2]", &["bn: BatchNorm2d |> Tanh"], train);
        check("[6, 3]", &["b1: BatchNorm1d(eps=0.01) |> Tanh"], train);
    }
}

#[test]
fn pooling() {
    check(
        "[2, 3, 10, 7]",
        &[
            "MaxPool2d(3, stride=2, padding=1) |> Tanh",
            "MaxPool2d([3, 2], stride=[2, 1], ceil_mode=true, dilation=[1, 2]) |> Tanh",
            "AvgPool2d(3, stride=2, padding=1) |> Tanh",
            "AvgPool2d(3, stride=2, padding=1, count_include_pad=false, ceil_mode=true) |> Tanh",
            "AdaptiveAvgPool2d([4, 3]) |> Tanh",
            "GlobalAvgPool |> Tanh",
        ],
        true,
    );
}

#[test]
fn dropout_in_eval_flatten_reshape_and_scale() {
    check(
        "[2, 3, 4, 5]",
        &["Dropout(0.4) |> Tanh", "Flatten |> Tanh", "reshape([2, 4, -1]) |> Tanh", "scale(-0.7) |> Tanh"],
        false,
    );
}

#[test]
fn elementwise_and_concat() {
    let spec = "model M { input a: [2, 3, 4]\n input b: [2, 1, 4]\n input c: [1, 3, 1]\n \
                output s = Tanh(a + b)\n output d = Tanh(c - a)\n output m = a * b * c\n \
                output q = a / Sigmoid(c)\n output k = Tanh(concat([a, Sigmoid(a)], axis=-1)) }";
    let report = check_second_order_spec(spec, true).unwrap();
    report.assert_within(TOLERANCE);
    print_worst(&report);
}

#[test]
fn upsample() {
    let spec = "model M { input x: [2, 3, 5, 4]\n input s: [1, 2, 5]\n input v: [1, 1, 3, 2, 3]\n \
                output a = x |> Upsample(2) |> Tanh\n \
                output b = x |> Upsample(size=[7, 3]) |> Tanh\n \
                output c = x |> Upsample(1.5, mode=\"bilinear\") |> Tanh\n \
                output d = x |> Upsample(size=[3, 7], mode=\"bilinear\", align_corners=true) |> Tanh\n \
                output e = x |> Upsample(2, mode=\"bicubic\") |> Tanh\n \
                output f = s |> Upsample(size=8, mode=\"linear\", align_corners=true) |> Tanh\n \
                output g = v |> Upsample(2, mode=\"trilinear\") |> Tanh }";
    let report = check_second_order_spec(spec, false).unwrap();
    report.assert_within(TOLERANCE);
    print_worst(&report);
}

#[test]
fn embedding_weight() {
    // The label's embedding scales the image: dP/d(weight) runs through the embedding's backward.
    let spec = "model M { input ids: [2, 3] of i64\n input x: [2, 3, 5]\n \
                output y = Tanh(x * (ids |> emb: Embedding(7, 5))) }";
    let ids = Tensor::new(&[[1i64, 4, 1], [6, 0, 4]], &Device::Cpu).unwrap();
    let report = check_second_order_with(spec, true, &[("ids", ids)]).unwrap();
    report.assert_within(TOLERANCE);
    assert!(report.tensors.iter().any(|t| t.name == "emb.weight" && t.scale > 0.0), "{report:?}");
    print_worst(&report);
}

/// The WGAN-GP fixture's critic (`tests/fixtures/gan_wgan_gp`): conv, leaky relu, conv,
/// LayerNorm([16, 2, 2], no bias), leaky relu, flatten, Linear without bias.
#[test]
fn wgan_gp_critic() {
    let spec = "model Critic { input x: [3, 1, 8, 8]\n \
                output y = x |> conv1: Conv2d(8, 3, stride=2, padding=1) |> LeakyReLU(0.2) \
                |> conv2: Conv2d(16, 3, stride=2, padding=1) |> norm: LayerNorm([16, 2, 2], bias=false) \
                |> LeakyReLU(0.2) |> Flatten |> fc: Linear(1, bias=false) }";
    for train in [true, false] {
        let report = check_second_order_spec(spec, train).unwrap();
        report.assert_within(TOLERANCE);
        // Every parameter has a second-order gradient (the penalty's share of the critic's).
        for t in &report.tensors {
            assert!(t.scale > 0.0, "{} gets no gradient from the penalty", t.name);
        }
        print_worst(&report);
    }
}

/// The fixture's first critic step, replayed on its weights and draws: the gradient penalty
/// `10 * mean((||dD(x_hat)/dx_hat|| - 1)^2)` and its gradient with respect to the critic's
/// parameters (what `grad_gp.d.*` stores, and what a first-order trainer gets wrong) match
/// PyTorch's within the fixture's tolerance.
#[test]
fn wgan_gp_fixture_penalty_and_its_gradient_match_pytorch() {
    use candle_core::{DType, Var};
    use wick::lower::grad2::differentiable_grads;
    use wick::lower::Pass;

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gan_wgan_gp.safetensors");
    let stored = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let tensor =
        |key: &str| stored.get(key).unwrap_or_else(|| panic!("no {key}")).to_dtype(DType::F64).unwrap();
    let build = |spec: &str, prefix: &str| {
        let model = wick::Model::from_source("gan.wick", spec, &wick::Options::default()).unwrap();
        let lowered = model.build(&Device::Cpu, DType::F64).unwrap();
        for key in lowered.params().keys() {
            lowered.params().get(key).unwrap().set(&tensor(&format!("{prefix}.{key}"))).unwrap();
        }
        lowered
    };
    let generator = build(
        "model G { input z: [5, 4]\n output x = z |> fc1: Linear(32) |> ReLU |> fc2: Linear(64) |> Tanh \
         |> reshape([5, 1, 8, 8]) }",
        "g",
    );
    let critic = build(
        "model D { input x: [5, 1, 8, 8]\n \
         output y = x |> conv1: Conv2d(8, 3, stride=2, padding=1) |> LeakyReLU(0.2) \
         |> conv2: Conv2d(16, 3, stride=2, padding=1) |> norm: LayerNorm([16, 2, 2], bias=false) \
         |> LeakyReLU(0.2) |> Flatten |> fc: Linear(1, bias=false) }",
        "d",
    );
    let fake = generator.infer(&[tensor("iter0.critic0.z")], true).unwrap().remove(0);
    let (real, eps) = (tensor("iter0.critic0.real"), tensor("iter0.critic0.eps"));
    let mixed =
        (real.broadcast_mul(&eps).unwrap() + fake.broadcast_mul(&(1.0 - &eps).unwrap()).unwrap()).unwrap();
    let x_hat = Var::from_tensor(&mixed).unwrap();
    let mut pass = Pass { train: true, differentiable: true, ..Pass::default() };
    let scores = critic.forward_with(&[x_hat.as_tensor().clone()], &mut pass).unwrap().remove(0);
    let grads = differentiable_grads(&scores.sum_all().unwrap()).unwrap();
    let g = grads.get(x_hat.as_tensor()).unwrap();
    let norms = g.sqr().unwrap().flatten_from(1).unwrap().sum(1).unwrap().sqrt().unwrap();
    let gp = ((norms - 1.0).unwrap().sqr().unwrap().mean_all().unwrap() * 10.0).unwrap();
    let expected_gp = tensor("losses.gp").flatten_all().unwrap().to_vec1::<f64>().unwrap()[0];
    let got_gp = gp.to_scalar::<f64>().unwrap();
    assert!(
        (got_gp - expected_gp).abs() <= 1e-4 * expected_gp.abs().max(1.0),
        "gp {got_gp} vs {expected_gp}"
    );
    let second = gp.backward().unwrap();
    for key in critic.params().keys() {
        let got = second.get(critic.params().get(key).unwrap().as_tensor()).unwrap();
        let expected = tensor(&format!("grad_gp.d.{key}"));
        let max = |t: &Tensor| t.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        let (error, scale) = (max(&(got - &expected).unwrap()), max(&expected));
        println!("{key}: max error {error:.2e}, max |gradient| {scale:.2e}");
        assert!(scale > 0.0 && error <= 1e-4 * (1.0 + scale), "{key}: error {error:.3e} (scale {scale:.3e})");
    }
}

#[test]
fn reductions_views_and_other_norms() {
    let spec = "model M { input x: [3, 4, 5]\n \
                output a = Tanh(mean(x, [0, 2], keepdim=true))\n output b = Tanh(sum(x, -1))\n \
                output c = Tanh(permute(x, [2, 0, 1]))\n output d = Tanh(transpose(x, 0, -1))\n \
                output e = Tanh(slice(x, 1, start=1, end=-1, step=2))\n output f = x |> Identity |> Tanh\n \
                output g = matmul(x, Tanh(transpose(x, 1, 2)))\n \
                output r = x |> rms: RMSNorm\n output p = x |> PixelNorm }";
    let report = check_second_order_spec(spec, true).unwrap();
    report.assert_within(TOLERANCE);
    print_worst(&report);
}

#[test]
fn stylegan_discriminator_ops() {
    check(
        "[6, 3, 7, 5]",
        &[
            "c: EqualConv2d(4, 3, stride=2, padding=1) |> LeakyReLU(0.2)",
            "d: EqualConv2d(2, 1, bias=false) |> Tanh",
            "MinibatchStd(3) |> Tanh",
            "MinibatchStd(2) |> e: EqualConv2d(2, 3, padding=1) |> b: Bias |> Tanh",
        ],
        true,
    );
}

/// The generator's layers, should a penalty (path length, or R1 through a generator) reach
/// them: the style's modulation and demodulation, the learned constant.
#[test]
fn stylegan_generator_ops() {
    let spec = "model M { input x: [2, 3, 5, 4]\n input w: [2, 6]\n \
                output y = x |> m: ModulatedConv2d(w, 4, 3) |> Tanh\n \
                output z = x |> rgb: ModulatedConv2d(w, 2, 1, demodulate=false) |> Tanh\n \
                output c = w |> k: ConstantInput(2, size=3) |> n: ModulatedConv2d(w, 2, 3) |> Tanh }";
    let report = check_second_order_spec(spec, true).unwrap();
    report.assert_within(TOLERANCE);
    print_worst(&report);
}

#[test]
fn issue_12_ops() {
    // Each after or before a Tanh, so that the gradient depends on the input through the op.
    let spec = "model M { input x: [3, 4, 5]\n \
                output a = x |> Exp |> sqrt |> Tanh\n output b = Tanh(pow(x, 3.0))\n \
                output c = Tanh(clamp(x, -0.4, 0.6) * x)\n output d = x |> scale(4.0) |> Hardswish |> Tanh\n \
                output e = Tanh(x * Hardsigmoid(scale(x, 4.0)))\n output f = Tanh(var(x, [0, 2], keepdim=true))\n \
                output g = std(Tanh(x), -1)\n output h = Tanh(roll(x, [2, -1], [2, 0]))\n \
                output i = Tanh(pad(x, [2, 1, 1, 0], \"reflect\"))\n output j = Tanh(pad(x, [1, 1], value=0.5))\n \
                output k = Tanh(flip(x, [0, 2]))\n output l = Tanh(expand(slice(x, 1, end=1), [2, 3, 4, 5]))\n \
                output m = Tanh(cumsum(x, 1))\n output n = x |> ln: LayerNorm2d |> Tanh\n \
                pp = p: Parameter([1, 4, 1], init=\"normal\")\n output o = Tanh(x * pp)\n \
                output q = x |> StochasticDepth(1.0) |> Tanh }";
    let report = check_second_order_spec(spec, true).unwrap();
    report.assert_within(TOLERANCE);
    print_worst(&report);
    // In eval, where its draw does not move between the points the check compares.
    let eval = "model M { input x: [3, 4, 5]\n output y = x |> StochasticDepth(0.3) |> Tanh }";
    check_second_order_spec(eval, false).unwrap().assert_within(TOLERANCE);
    let masked =
        "model M { input m: [3, 1, 5] of bool\n input x: [3, 4, 5]\n output y = Tanh(where(m, x, Tanh(x))) }";
    let m = Tensor::new(&[[[1u8, 0, 1, 1, 0]], [[0, 0, 1, 0, 1]], [[1, 1, 0, 0, 0]]], &Device::Cpu).unwrap();
    check_second_order_with(masked, true, &[("m", m)]).unwrap().assert_within(TOLERANCE);
}

/// The attention core (scores, masks, softmax, weighted values) under both attention ops, with
/// grouped-query heads and an additive mask, and rotary positions: should a penalty reach a
/// transformer critic.
#[test]
fn attention_and_rotary_positions() {
    let spec = "model M { input x: [2, 4, 3, 4]\n input k: [2, 2, 5, 4]\n input b: [3, 5]\n \
                output a = Tanh(ScaledDotProductAttention(Tanh(x), k, Tanh(k), attn_mask=b, causal=true, scale=0.8))\n \
                output r = x |> RotaryEmbedding(theta=100.0) |> Tanh\n \
                output m = reshape(x, [2, 12, 4]) |> sa: MultiheadAttention(4, 2, batch_first=true, causal=true) \
                |> Tanh }";
    let report = check_second_order_spec(spec, true).unwrap();
    report.assert_within(TOLERANCE);
    print_worst(&report);
}

#[test]
fn swin_ops() {
    // A 5x7 map: window 3 pads it to 6x9 and shifts both axes (the region mask); window 5 pads
    // it to 5x10 and shifts only along W. Train mode with no dropout: the same math.
    check(
        "[2, 5, 7, 6]",
        &[
            "s: ShiftedWindowAttention(3, shift=1, num_heads=2) |> Tanh",
            "t: ShiftedWindowAttention(5, shift=2, num_heads=3, qkv_bias=false) |> Tanh",
            "patch_merging_pad |> Tanh",
        ],
        true,
    );
}
