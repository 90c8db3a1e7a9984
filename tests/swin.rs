//! Swin-T (`specs/swin_t.wick`) against torchvision's swin_t: its state_dict keys and shapes,
//! the relative position index buffers among them, and its output shape and MACs at input
//! sizes other than 224x224 (non-square, padded windows, odd maps before merging).

use std::collections::BTreeMap;

use wick::ops::ParamKind;
use wick::report::DimValue;
use wick::{compile_file, Options};

fn bound(h: i64, w: i64) -> Options {
    Options { bind: vec![("H".into(), h), ("W".into(), w)], ..Options::default() }
}

#[test]
fn parameter_paths_are_torchvisions_state_dict_keys() {
    let expected: Vec<(String, Vec<i64>)> = include_str!("fixtures/swin_t_state_dict_keys.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, shape) = l.split_once(' ').expect("key and shape");
            (key.to_string(), shape.split(',').map(|d| d.parse().expect("int")).collect())
        })
        .collect();
    let c = compile_file("specs/swin_t.wick", &Options::default()).expect("readable");
    let graph = c.graph.expect("graph");
    let bindings = graph.bindings();
    let ours: Vec<(String, Vec<i64>, ParamKind)> = graph
        .parameters()
        .into_iter()
        .map(|(path, shape, kind)| {
            (path, shape.iter().map(|d| d.eval(&bindings).expect("bound")).collect(), kind)
        })
        .collect();
    assert_eq!(ours.len(), 185);
    // Same keys with the same shapes. The order is the forward pass's, which differs from the
    // state_dict's only in patch merging (torchvision declares `reduction` before `norm`).
    let keys: BTreeMap<String, Vec<i64>> = ours.iter().map(|(k, s, _)| (k.clone(), s.clone())).collect();
    assert_eq!(keys, expected.into_iter().collect::<BTreeMap<_, _>>());
    // The twelve index buffers are int64 tables, neither parameters nor running statistics.
    let index: Vec<&str> =
        ours.iter().filter(|(_, _, kind)| *kind == ParamKind::Index).map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(index.len(), 12);
    assert!(index.iter().all(|k| k.ends_with(".attn.relative_position_index")), "{index:?}");
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
