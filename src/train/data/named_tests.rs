//! The named form of `data:` (`inputs:` and `targets:`) loaded end to end, and its diagnostics:
//! each names the array, the input or target, what was expected and what was found.

use candle_core::{DType, Device, Tensor};

use super::*;

fn config(yaml: &str) -> DataConfig {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn load_in(dir: &Path, yaml: &str) -> Result<Splits, DataError> {
    load(&config(yaml), dir, 1, &Device::Cpu)
}

/// Every row for training.
fn load_all(dir: &Path, yaml: &str) -> Splits {
    load_with(&config(yaml), dir, 1, &Device::Cpu, false).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn more<'a>(d: &'a Dataset, name: &str) -> &'a Tensor {
    &d.more.get(name).unwrap_or_else(|| panic!("no `{name}` in {:?}", d.more.keys())).tensor
}

/// Ten rows: `a` i64 ids `[10, 2]` (row r: r, r), `b` f32 `[10, 3]` (row r: 10r), `c` class
/// indices `[10]` (r % 3), `d` f32 values `[10, 2]` (r / 2).
fn arrays(dir: &Path) {
    let d = &Device::Cpu;
    let rows = Tensor::arange(0i64, 10, d).unwrap();
    let a = Tensor::stack(&[&rows, &rows], 1).unwrap();
    let b =
        (rows.to_dtype(DType::F32).unwrap().unsqueeze(1).unwrap().repeat((1, 3)).unwrap() * 10.0).unwrap();
    let c = Tensor::new(&[0i64, 1, 2, 0, 1, 2, 0, 1, 2, 0], d).unwrap();
    let dd =
        (rows.to_dtype(DType::F32).unwrap().unsqueeze(1).unwrap().repeat((1, 2)).unwrap() / 2.0).unwrap();
    Tensor::write_npz(&[("a", &a), ("b", &b), ("c", &c), ("d", &dd)], dir.join("m.npz")).unwrap();
}

#[test]
fn named_arrays_load_by_input_and_target_and_stay_row_aligned() {
    let dir = test_dir("named-npz");
    arrays(&dir);
    let yaml = "{npz: m.npz, inputs: {src: a, extra: b}, targets: {cls: c, reg: d}, val_split: 0.3}";
    let s = load_in(&dir, yaml).unwrap();
    let names = config(yaml).named.unwrap();
    // Sorted by name: `extra` is `x`, `cls` is `y`.
    assert_eq!(names.first(), ("extra", "cls"));
    assert_eq!((s.train.len(), s.val.len()), (7, 3));
    for split in [&s.train, &s.val] {
        let ids: Vec<i64> = more(split, "src").to_vec2::<i64>().unwrap().iter().map(|r| r[0]).collect();
        assert_eq!(more(split, "src").dtype(), DType::I64);
        let b: Vec<f32> = split.x.to_vec2::<f32>().unwrap().iter().map(|r| r[0]).collect();
        let c = split.y.to_vec1::<i64>().unwrap();
        let d: Vec<f32> = more(split, "reg").to_vec2::<f32>().unwrap().iter().map(|r| r[1]).collect();
        for (i, r) in ids.iter().enumerate() {
            assert_eq!((b[i], c[i], d[i]), (*r as f32 * 10.0, r % 3, *r as f32 / 2.0), "row {r}");
        }
    }
    // In a batch every array is there under its name.
    let feed = crate::train::batch::Feed { data: &s.train, input: "extra".into(), target: "cls".into() };
    let batch = &feed.batches(4, Some(2)).unwrap()[0];
    assert_eq!(batch.tensors.keys().collect::<Vec<_>>(), ["cls", "extra", "reg", "src"]);
    assert!(batch.tensors.values().all(|t| t.dim(0).unwrap() == 4));
}

#[test]
fn standardizing_touches_float_inputs_only() {
    let dir = test_dir("named-standardize");
    arrays(&dir);
    let s = load_in(&dir, "{npz: m.npz, inputs: {src: a, extra: b}, targets: {reg: d}, standardize: true}")
        .unwrap();
    let mean = |t: &Tensor| t.to_dtype(DType::F64).unwrap().mean_all().unwrap().to_scalar::<f64>().unwrap();
    assert!(mean(&s.train.x).abs() < 1e-6, "the float input is centred");
    assert!(mean(more(&s.train, "src")) > 1.0, "token ids are left alone");
    assert!(mean(&s.train.y) > 1.0, "targets are left alone");
    let e =
        load_in(&dir, "{npz: m.npz, inputs: {src: a}, targets: {reg: d}, standardize: true}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "data: `standardize: true` standardises float inputs; src hold integer ids (i64)"
    );
}

#[test]
fn csv_column_groups_and_npy_files_name_arrays_too() {
    let dir = test_dir("named-csv");
    std::fs::write(dir.join("t.csv"), "p,q,label,x0,x1\n1,2,0,0.5,1\n3,4,1,1.5,2\n5,6,2,2.5,3\n").unwrap();
    let s = load_all(
        &dir,
        "{csv: t.csv, inputs: {pos: [p, q]}, targets: {label: label, box: [x0, x1]}, val_split: 0}",
    );
    assert_eq!(s.train.x.dims(), &[3, 2]);
    // A group of columns is values; one column, class indices. `box` sorts first: it is `y`.
    assert_eq!((s.train.y.dims(), s.train.y.dtype()), (&[3, 2][..], DType::F32));
    assert_eq!(more(&s.train, "label").to_vec1::<i64>().unwrap(), [0, 1, 2]);
    assert_eq!(s.train.len(), 3);
    let d = &Device::Cpu;
    Tensor::new(&[[1f32, 2.], [3., 4.]], d).unwrap().write_npy(dir.join("x.npy")).unwrap();
    Tensor::new(&[1i64, 0], d).unwrap().write_npy(dir.join("y.npy")).unwrap();
    let s = load_all(&dir, "{npy: {inputs: {x: x.npy}, targets: {y: y.npy}}, val_split: 0}");
    assert_eq!((s.train.x.dims(), s.train.y.to_vec1::<i64>().unwrap()), (&[2, 2][..], vec![1, 0]));
}

#[test]
fn missing_keys_and_rows_that_do_not_line_up_are_named() {
    let dir = test_dir("named-errors");
    arrays(&dir);
    let short = Tensor::zeros((9, 2), DType::F32, &Device::Cpu).unwrap();
    let a = Tensor::zeros((10, 2), DType::I64, &Device::Cpu).unwrap();
    Tensor::write_npz(&[("a", &a), ("short", &short)], dir.join("s.npz")).unwrap();
    let e = load_in(&dir, "{npz: m.npz, inputs: {src: zz}, targets: {c: c}}").unwrap_err().to_string();
    assert!(e.contains("m.npz`: no array `zz`; the archive holds a [10, 2] i64, b [10, 3] f32"), "{e}");
    let e = load_in(&dir, "{npz: s.npz, inputs: {src: a, more: short}, targets: {t: a}}")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("array `a` (input `src`) has 10 rows, but")
            && e.contains("array `short` has 9: the arrays"),
        "{e}"
    );
    let e = load_in(&dir, "{npz: s.npz, inputs: {src: a}, targets: {t: short}}").unwrap_err().to_string();
    assert!(
        e.contains("array `a` has 10 examples, but the targets are [9, 2] f32: expected one per example"),
        "{e}"
    );
}

#[test]
fn each_array_is_checked_against_its_model_input() {
    let dir = test_dir("named-fit");
    arrays(&dir);
    let spec = "dim N = 4\nmodel Two {\n input src: [N, 2] of i64\n input extra: [N, 3]\n \
                output y = extra |> Linear(3)\n}";
    let net = crate::Model::from_source("two.wick", spec, &crate::Options::default())
        .unwrap()
        .build(&Device::Cpu, DType::F32)
        .unwrap();
    let check = |yaml: &str| {
        let c = config(yaml);
        let s = load(&c, &dir, 1, &Device::Cpu).unwrap();
        check_named(&s.train, c.named.as_ref().unwrap(), "Two", net.inputs()).map_err(|e| e.to_string())
    };
    check("{npz: m.npz, inputs: {src: a, extra: b}, targets: {c: c}}").unwrap();
    let e = check("{npz: m.npz, inputs: {src: b, extra: b}, targets: {c: c}}").unwrap_err();
    assert_eq!(
        e,
        "the examples of `b` (`data.inputs.src`) are [3] (f32) but the spec's input `src` takes [N, 2] \
         (i64): each example holds 3 values and the input takes 2: check the data's features or the \
         spec's input; the input takes integer ids: set `data.dtype: i64`"
    );
    let e = check("{npz: m.npz, inputs: {src: a, extra: d}, targets: {c: c}}").unwrap_err();
    assert!(e.starts_with("the examples of `d` (`data.inputs.extra`) are [2] (f32) but the spec's input `extra` takes [N, 3]"), "{e}");
    let e = check("{npz: m.npz, inputs: {src: a}, targets: {c: c}}").unwrap_err();
    assert_eq!(e, "the spec's input `extra` has no array: add it to `data.inputs` (which names `src`)");
    let e = check("{npz: m.npz, inputs: {src: a, extra: b, typo: b}, targets: {c: c}}").unwrap_err();
    assert_eq!(
        e,
        "`data.inputs` names `typo`, which is not an input of `Two` (its inputs are `src`, `extra`)"
    );
}

#[test]
fn named_configurations_that_cannot_work_are_refused_when_read() {
    let cases = [
        (
            "{npz: d.npz, inputs: {x: a}, targets: {y: b}, shape: [2]}",
            "`shape` belongs to the one-array form",
        ),
        (
            "{npz: d.npz, features: a, inputs: {x: a}, targets: {y: b}}",
            "`features` belongs to the one-array form",
        ),
        ("{npz: d.npz, inputs: {x: a}}", "the named form needs at least one entry in `targets`"),
        ("{npz: d.npz, inputs: {x: a}, targets: {x: b}}", "`x` is both an input and a target"),
        (
            "{npz: d.npz, inputs: {x: [a, b]}, targets: {y: c}}",
            "`inputs.x` names 2 arrays; a `npz` array feeds one",
        ),
        ("{idx: {images: i}, inputs: {x: a}, targets: {y: b}}", "`idx` has none"),
        (
            "{npz: d.npz, inputs: {x: a}, targets: {y: b}, val: {csv: v.csv}}",
            "`val` names another `npz` file",
        ),
        (
            "{npy: {inputs: {x: a.npy}, targets: {y: b.npy}}, val: {npy: {features: c.npy}}}",
            "`npy` takes `val_split`",
        ),
    ];
    for (yaml, expected) in cases {
        #[derive(Debug, serde::Deserialize)]
        struct Train {
            #[serde(rename = "data")]
            _data: DataConfig,
        }
        let e = serde_yaml::from_str::<Train>(&format!("data: {yaml}")).expect_err(yaml).to_string();
        assert!(e.contains(expected), "{yaml}: {e}");
    }
}

#[test]
fn a_nan_in_any_named_array_is_refused_naming_it() {
    let dir = test_dir("named-nan");
    let d = &Device::Cpu;
    let ids = Tensor::new(&[[1i64], [2]], d).unwrap();
    let b = Tensor::new(&[[1f32], [f32::NAN]], d).unwrap();
    Tensor::write_npz(
        &[("a", &ids), ("b", &b), ("c", &Tensor::new(&[0i64, 1], d).unwrap())],
        dir.join("n.npz"),
    )
    .unwrap();
    let s = load_all(&dir, "{npz: n.npz, inputs: {src: a, w: b}, targets: {c: c}, shuffle: false}");
    let e = crate::train::session::check_finite(&s).unwrap_err().to_string();
    assert!(e.ends_with("row 1 of the training split (counted from 0, in split order) has a NaN or an infinity in its array `w`"), "{e}");
}
