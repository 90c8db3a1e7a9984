//! Swin-T (`specs/swin_t.wick`) against torchvision's swin_t at input sizes other than 224x224
//! (non-square, padded windows, odd maps before merging): output shape and MACs. Its keys are
//! checked in `reference.rs`. And the int64 index buffers: saved, loaded, never trained.

use wick::report::DimValue;
use wick::{compile_file, Options};

fn bound(h: i64, w: i64) -> Options {
    Options { bind: vec![("H".into(), h), ("W".into(), w)], ..Options::default() }
}

#[test]
fn other_input_sizes_give_torchvisions_output_and_macs() {
    // torchvision.models.swin_t().eval() on 1x3xHxW under FlopCounterMode, FLOPs / 2: 224x448
    // (non-square, whole windows), 256x320 (maps of 64x80 ... 8x10 padded to whole 7x7 windows)
    // and 100x150 (25x37 after the patches: odd maps padded before each merging).
    let cases = [
        (224, 224, 4_490_566_656),
        (224, 448, 8_980_365_312),
        (256, 320, 8_484_919_296),
        (100, 150, 1_847_887_872),
    ];
    for (h, w, macs) in cases {
        let c = compile_file("specs/swin_t.wick", &bound(h, w)).expect("readable");
        assert!(!c.diagnostics.has_errors(), "{h}x{w}: {:?}", c.diagnostics);
        let s = c.summary(None).expect("summary");
        assert_eq!(s.macs, DimValue::Int(macs), "{h}x{w}: MACs");
        assert_eq!(s.outputs[0].shape, vec![DimValue::Int(1), DimValue::Int(1000)], "{h}x{w}");
        assert_eq!(
            (s.total_params, s.buffers),
            (28_288_354, 0),
            "{h}x{w}: parameters do not depend on the size"
        );
    }
}

#[test]
fn the_index_buffers_are_saved_as_int64_and_loaded_under_their_keys() {
    use candle_core::{DType, Device};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let model = wick::Model::from_file(&format!("{dir}/swin_blocks.wick"), &Options::default()).unwrap();
    let lowered = model.build(&Device::Cpu, DType::F32).unwrap();
    let path = std::env::temp_dir().join(format!("wick-swin-{}.safetensors", std::process::id()));
    lowered.params().save(&path).unwrap();
    let saved = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    std::fs::remove_file(&path).ok();
    // The values wick computes are torchvision's buffer, as the fixture stores it.
    let fixture =
        candle_core::safetensors::load(format!("{dir}/swin_blocks.safetensors"), &Device::Cpu).unwrap();
    for key in ["0.attn.relative_position_index", "1.attn.relative_position_index"] {
        assert_eq!(saved[key].dtype(), DType::I64, "{key}");
        assert_eq!(saved[key].to_vec1::<i64>().unwrap(), fixture[key].to_vec1::<i64>().unwrap(), "{key}");
    }
    // Not trained: the optimizer's variables are the float parameters only.
    let trainable: Vec<&str> = lowered.params().trainable().into_iter().map(|(k, _)| k).collect();
    assert_eq!(trainable.len(), 26);
    assert!(trainable.iter().all(|k| !k.ends_with("relative_position_index")));
    // A file saved by wick loads back whole, index buffers included.
    let report = lowered.params().load_map(&saved.into_iter().collect(), false).unwrap();
    assert_eq!(report.loaded, 28);
}
