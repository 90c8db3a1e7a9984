//! The layers whose second-order gradients (a gradient's gradient, as a gradient penalty takes
//! them) are checked, each with the test that checks it, and what a model that needs them
//! cannot have. A kind is listed once a finite-difference check of `d/dθ sum(probe * dL/dx)`
//! passes on it (`tests/second_order.rs`, through `gradcheck::check_second_order`); a layer of
//! any other kind may hand back a gradient without its graph (a silent zero in the penalty's
//! gradient), so training that differentiates gradients refuses it at start, naming it.

use super::kernels::conv::im2col_applies;
use super::Lowered;

/// Op kind -> the test in `tests/second_order.rs` that checks its second-order gradient.
pub const CHECKED: &[(&str, &str)] = &[
    ("Conv1d", "conv1d"),
    ("Conv2d", "conv2d_strides_with_uneven_remainders_padding_dilation_groups"),
    ("ConvTranspose2d", "conv_transpose2d"),
    ("Linear", "linear_and_equal_linear"),
    ("EqualLinear", "linear_and_equal_linear"),
    ("ReLU", "every_activation"),
    ("ReLU6", "every_activation"),
    ("LeakyReLU", "every_activation"),
    ("ELU", "every_activation"),
    ("GELU", "every_activation"),
    ("SiLU", "every_activation"),
    ("Sigmoid", "every_activation"),
    ("Tanh", "every_activation"),
    ("Exp", "every_activation"),
    ("Hardtanh", "every_activation"),
    ("Softplus", "every_activation"),
    ("Softmax", "every_activation"),
    ("LogSoftmax", "every_activation"),
    ("LayerNorm", "layer_group_and_instance_norm"),
    ("GroupNorm", "layer_group_and_instance_norm"),
    ("InstanceNorm2d", "layer_group_and_instance_norm"),
    ("BatchNorm1d", "batch_norm_in_train_and_eval_mode"),
    ("BatchNorm2d", "batch_norm_in_train_and_eval_mode"),
    ("MaxPool2d", "pooling"),
    ("AvgPool2d", "pooling"),
    ("AdaptiveAvgPool2d", "pooling"),
    ("GlobalAvgPool", "pooling"),
    ("Dropout", "dropout_in_eval_flatten_reshape_and_scale"),
    ("Flatten", "dropout_in_eval_flatten_reshape_and_scale"),
    ("reshape", "dropout_in_eval_flatten_reshape_and_scale"),
    ("scale", "dropout_in_eval_flatten_reshape_and_scale"),
    ("concat", "elementwise_and_concat"),
    ("add", "elementwise_and_concat"),
    ("sub", "elementwise_and_concat"),
    ("mul", "elementwise_and_concat"),
    ("div", "elementwise_and_concat"),
    ("Embedding", "embedding_weight"),
    ("Upsample", "upsample"),
    ("mean", "reductions_views_and_other_norms"),
    ("sum", "reductions_views_and_other_norms"),
    ("permute", "reductions_views_and_other_norms"),
    ("transpose", "reductions_views_and_other_norms"),
    ("slice", "reductions_views_and_other_norms"),
    ("Identity", "reductions_views_and_other_norms"),
    ("matmul", "reductions_views_and_other_norms"),
    ("RMSNorm", "reductions_views_and_other_norms"),
    ("PixelNorm", "reductions_views_and_other_norms"),
    ("EqualConv2d", "stylegan_discriminator_ops"),
    ("MinibatchStd", "stylegan_discriminator_ops"),
    ("Bias", "stylegan_discriminator_ops"),
    ("ModulatedConv2d", "stylegan_generator_ops"),
    ("ConstantInput", "stylegan_generator_ops"),
    ("sqrt", "issue_12_ops"),
    ("pow", "issue_12_ops"),
    ("clamp", "issue_12_ops"),
    ("Hardswish", "issue_12_ops"),
    ("Hardsigmoid", "issue_12_ops"),
    ("var", "issue_12_ops"),
    ("std", "issue_12_ops"),
    ("roll", "issue_12_ops"),
    ("pad", "issue_12_ops"),
    ("flip", "issue_12_ops"),
    ("expand", "issue_12_ops"),
    ("cumsum", "issue_12_ops"),
    ("LayerNorm2d", "issue_12_ops"),
    ("Parameter", "issue_12_ops"),
    ("StochasticDepth", "issue_12_ops"),
    ("where", "issue_12_ops"),
    ("MultiheadAttention", "attention_and_rotary_positions"),
    ("ScaledDotProductAttention", "attention_and_rotary_positions"),
    ("RotaryEmbedding", "attention_and_rotary_positions"),
    ("ShiftedWindowAttention", "swin_ops"),
    ("patch_merging_pad", "swin_ops"),
];

/// The kinds checked through the CPU's differentiable convolution (`conv_composed`), which
/// runs on the CPU in f32 and f64 only: elsewhere they lower to candle's conv ops, whose
/// second-order gradient is not checked.
const ON_IM2COL: &[&str] = &["Conv1d", "Conv2d", "ConvTranspose2d", "EqualConv2d", "ModulatedConv2d"];

/// Whether layers of `kind` have a checked second-order gradient.
pub fn supports(kind: &str) -> bool {
    CHECKED.iter().any(|(k, _)| *k == kind)
}

impl Lowered {
    /// (path, kind) of every layer whose second-order gradient is not checked: what training
    /// that differentiates this model's gradients (a gradient penalty) must refuse at start.
    pub fn second_order_blockers(&self) -> Vec<(String, String)> {
        let im2col = im2col_applies(&self.device, self.dtype);
        self.steps
            .iter()
            .filter(|s| !supports(s.kind) || (!im2col && ON_IM2COL.contains(&s.kind)))
            .map(|s| (s.path.clone(), s.kind.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    fn blockers(spec: &str, dtype: DType) -> Vec<(String, String)> {
        let model = crate::Model::from_source("m.wick", spec, &crate::Options::default()).unwrap();
        model.build(&Device::Cpu, dtype).unwrap().second_order_blockers()
    }

    const CRITIC: &str = "model D { input x: [3, 1, 8, 8]\n \
        output y = x |> conv1: Conv2d(8, 3, stride=2, padding=1) |> LeakyReLU(0.2) \
        |> conv2: Conv2d(16, 3, stride=2, padding=1) |> norm: LayerNorm([16, 2, 2], bias=false) \
        |> LeakyReLU(0.2) |> Flatten |> fc: Linear(1, bias=false) }";

    #[test]
    fn a_layer_without_a_checked_second_order_gradient_is_named() {
        let spec = "model M { input x: [4, 2, 8]\n out, h, c = x |> rnn: LSTM(16)\n \
                    output y = out |> head: [pos: SinusoidalPositions, Flatten, fc: Linear(3)] }";
        let found = blockers(spec, DType::F32);
        let kinds: Vec<&str> = found.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(kinds, ["LSTM", "SinusoidalPositions"], "{found:?}");
        assert_eq!(found[0].0, "rnn");
        assert_eq!(found[1].0, "head.pos");
    }

    #[test]
    fn the_wgan_gp_critic_has_none_where_convolutions_run_on_im2col() {
        assert_eq!(blockers(CRITIC, DType::F32), Vec::<(String, String)>::new());
        // In half precision the convolutions lower to candle's conv ops.
        let found = blockers(CRITIC, DType::BF16);
        assert_eq!(found, [("conv1".to_string(), "Conv2d".to_string()), ("conv2".into(), "Conv2d".into())]);
    }

    #[test]
    fn every_listed_test_exists() {
        let tests = include_str!("../../tests/second_order.rs");
        for (kind, test) in CHECKED {
            assert!(tests.contains(&format!("fn {test}()")), "{kind}: no test `{test}`");
        }
    }
}
