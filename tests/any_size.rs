//! The catalog's image specs at other input sizes: `H` and `W` are dims with the reference's
//! size as their example, so `--bind H=160,W=192` (or `wick run` with a 160 x 192 image)
//! gives the model at that size, with torchvision's figures; rules on them (ViT's patch,
//! U-Net's four halvings) are errors at compile time that name the rule.

mod common;
use common::wick;

use wick::report::DimValue;

/// torchvision 0.29 (PyTorch 2.15) at sizes other than 224 x 224, `weights=None`, input
/// `[1, 3, h, w]`: parameters and MACs (FlopCounterMode's FLOPs / 2, with gradients on, as
/// the reference table was computed: without them nn.MultiheadAttention takes a fused path
/// that the counter misses). `scripts/any_size_macs.py` prints these rows. torchvision's ViT
/// is square; for 160 x 320 the script gives it a [1, 201, 768] positions table and its own
/// patch embedding without the size check (it reproduces torchvision's own figures at 384).
const AT_OTHER_SIZES: &[(&str, i64, i64, u64, i64)] = &[
    // (spec, h, w, params, MACs)
    ("resnet18", 160, 192, 11_689_512, 1_110_855_680),
    ("resnet18", 40, 56, 11_689_512, 103_494_656),
    ("mobilenet_v2", 160, 192, 3_504_872, 184_643_840),
    ("mobilenet_v2", 40, 56, 3_504_872, 19_266_544),
    ("vit_b_16", 160, 320, 86_570_728, 17_935_269_888),
    // torchvision's own vit_b_16(image_size=384).
    ("vit_b_16", 384, 384, 86_859_496, 55_484_350_464),
    ("resnet50", 160, 192, 25_557_032, 2_504_376_320),
    ("alexnet", 160, 192, 61_100_840, 447_125_696),
    ("vgg16", 160, 192, 138_357_544, 9_519_529_984),
    ("googlenet", 160, 192, 6_624_904, 917_770_240),
    ("mobilenet_v3_large", 160, 192, 5_483_032, 134_163_200),
];

fn bound(h: i64, w: i64) -> wick::Options {
    wick::Options { bind: vec![("H".into(), h), ("W".into(), w)], ..Default::default() }
}

#[test]
fn image_specs_at_other_sizes_have_torchvisions_figures() {
    for &(spec, h, w, params, macs) in AT_OTHER_SIZES {
        let path = format!("specs/{spec}.wick");
        let c = wick::compile_file(&path, &bound(h, w)).expect("readable");
        assert!(!c.diagnostics.has_errors(), "{spec} at {h}x{w}: {:?}", c.diagnostics);
        let s = c.summary(None).expect("summary");
        let shape = |v: &[i64]| v.iter().map(|d| DimValue::Int(*d)).collect::<Vec<_>>();
        assert_eq!(s.inputs[0].shape, shape(&[1, 3, h, w]), "{spec} at {h}x{w}: input");
        assert_eq!(s.outputs[0].shape, shape(&[1, 1000]), "{spec} at {h}x{w}: output");
        assert_eq!(s.total_params, params, "{spec} at {h}x{w}: params");
        assert_eq!(s.macs, DimValue::Int(macs), "{spec} at {h}x{w}: MACs");
    }
}

/// ViT's MACs in closed form, `L = (h/16)(w/16) + 1` tokens of 768: the patch embedding, and
/// per layer the four 768 x 768 projections, QK^T and AV, and the 3072-wide MLP; then the head.
#[test]
fn vit_macs_follow_the_closed_form_at_any_multiple_of_the_patch() {
    for (h, w) in [(224, 224), (160, 320), (48, 96), (384, 384)] {
        let patches = (h / 16) * (w / 16);
        let l = patches + 1;
        let d = 768;
        let layer = 4 * l * d * d + 2 * l * l * d + 2 * l * d * 3072;
        let expected = patches * d * 3 * 16 * 16 + 12 * layer + d * 1000;
        let s = wick::compile_file("specs/vit_b_16.wick", &bound(h, w)).expect("readable").summary(None);
        assert_eq!(s.expect("summary").macs, DimValue::Int(expected), "{h}x{w}");
    }
}

#[test]
fn the_reference_size_stays_the_default() {
    let s = wick::compile_file("specs/unet_milesial.wick", &wick::Options::default())
        .expect("readable")
        .summary(None)
        .expect("summary");
    let out: Vec<DimValue> = [1, 2, 224, 224].map(DimValue::Int).to_vec();
    assert_eq!(s.outputs[0].shape, out);
    // Every conv of a U-Net scales with the area: 160 x 192 costs 30,720 / 50,176 of 224 x 224.
    let s = wick::compile_file("specs/unet_milesial.wick", &bound(160, 192)).expect("readable");
    let s = s.summary(None).expect("summary");
    assert_eq!(s.macs, DimValue::Int(36_881_367_040 / 50_176 * 30_720));
    let out: Vec<DimValue> = [1, 2, 160, 192].map(DimValue::Int).to_vec();
    assert_eq!(s.outputs[0].shape, out);
}

/// `wick check SPEC --bind ...`: its exit code and standard error.
fn check(spec: &str, bind: &str) -> (Option<i32>, String) {
    let o = wick(&["check", spec, "--bind", bind]);
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_size_that_breaks_a_rule_is_refused_at_compile_time_naming_the_rule() {
    let cases = [
        (
            "specs/vit_b_16.wick",
            "H=200,W=320",
            "the image height 200 must be a multiple of the patch size 16",
            "specs/vit_b_16.wick:20:12",
        ),
        (
            "specs/vit_b_16.wick",
            "H=160,W=328",
            "the image width 328 must be a multiple of the patch size 16",
            "specs/vit_b_16.wick:21:12",
        ),
        (
            "specs/unet_milesial.wick",
            "H=100,W=192",
            "the image's sides (100 x 192) must be multiples of 16",
            "specs/unet_milesial.wick:22:12",
        ),
        (
            "specs/conv_autoencoder.wick",
            "H=66,W=64",
            "the image's sides (66 x 64) must be multiples of 4",
            "specs/conv_autoencoder.wick:15:12",
        ),
        (
            "specs/conv_autoencoder.yaml",
            "H=66,W=64",
            "the image's sides (66 x 64) must be multiples of 4",
            "specs/conv_autoencoder.yaml:13:18",
        ),
    ];
    for (spec, bind, rule, at) in cases {
        let (code, err) = check(spec, bind);
        assert_eq!(code, Some(1), "{spec} {bind}: {err}");
        assert!(err.contains(&format!("assertion failed: {rule}")), "{spec} {bind}: {err}");
        assert!(err.contains(at), "{spec} {bind}: {err}");
        // The model stops at its broken rule: no shape errors follow from it.
        assert!(err.contains("1 error"), "{spec} {bind}: {err}");
    }
}

#[test]
fn an_input_too_small_for_a_window_is_refused_at_that_layer() {
    let (code, err) = check("specs/alexnet.wick", "H=62,W=62");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("shape error in MaxPool2d `features.12`"), "{err}");
    assert!(err.contains("(H + 1) / 16 - 1 = 2 on spatial axis 0"), "{err}");
    assert!(err.contains("the output size would be 0"), "{err}");
    // One pixel more is AlexNet's smallest input, as torchvision's.
    assert_eq!(check("specs/alexnet.wick", "H=63,W=63").0, Some(0));
}

/// `wick run` binds `H` and `W` (and `N`) from the input file, as torchvision's model takes
/// any size: ResNet-18 on two 40 x 56 images gives two rows of logits. A ViT given an image
/// its patches do not tile is refused before any weight is read, naming the rule.
#[cfg(feature = "lower")]
#[test]
fn run_binds_the_image_size_from_the_input_file() {
    use candle_core::{DType, Device, Tensor};

    let dir = std::env::temp_dir().join(format!("wick-any-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (weights, input, output) = (dir.join("r18.safetensors"), dir.join("x.npy"), dir.join("y.npy"));
    let o = wick(&["compile", "specs/resnet18.wick", "-o", weights.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x = Tensor::randn(0f32, 1.0, (2, 3, 40, 56), &Device::Cpu).expect("input");
    x.write_npy(&input).expect("write input");
    let o = wick(&[
        "run",
        "specs/resnet18.wick",
        "--weights",
        weights.to_str().expect("utf-8"),
        "--input",
        &format!("x={}", input.display()),
        "--output",
        output.to_str().expect("utf-8"),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let y = Tensor::read_npy(&output).expect("output");
    assert_eq!(y.dims(), [2, 1000]);
    assert_eq!(y.dtype(), DType::F32);

    let odd = dir.join("odd.npy");
    Tensor::zeros((1, 3, 200, 320), DType::F32, &Device::Cpu).expect("zeros").write_npy(&odd).expect("write");
    let o = wick(&[
        "run",
        "specs/vit_b_16.wick",
        "--weights",
        "no-such-weights.safetensors",
        "--raw",
        "--input",
        &format!("x={}", odd.display()),
        "--output",
        output.to_str().expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the image height 200 must be a multiple of the patch size 16"), "{err}");
    assert!(err.contains("vit_b_16.wick:20:12"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
