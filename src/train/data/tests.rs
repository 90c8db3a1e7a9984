//! `data:` sections as a person writes them, loaded end to end from each kind of source.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn config(yaml: &str) -> DataConfig {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn config_error(yaml: &str) -> String {
    /// As the training configuration embeds it.
    #[derive(Debug, serde::Deserialize)]
    struct Train {
        #[serde(rename = "data")]
        _data: DataConfig,
    }
    serde_yaml::from_str::<Train>(yaml).expect_err(yaml).to_string()
}

fn load_in(dir: &Path, yaml: &str) -> Result<Splits, DataError> {
    load(&config(yaml), dir, 1, &Device::Cpu)
}

#[test]
fn iris_splits_and_standardizes() {
    let s = load_in(Path::new(REPO), "{csv: data/iris.csv, target: species, standardize: true}").unwrap();
    assert_eq!((s.train.len(), s.val.len()), (120, 30));
    let mean: Vec<f32> = s.train.x.mean(0).unwrap().to_vec1().unwrap();
    assert!(mean.iter().all(|m| m.abs() < 1e-5), "{mean:?}");
    let none = load_in(Path::new(REPO), "{csv: data/iris.csv, target: species, val_split: 0}").unwrap();
    assert_eq!((none.train.len(), none.val.len()), (150, 0));
    let tiny = load_in(Path::new(REPO), "{csv: data/iris.csv, target: species, val_split: 0.001}");
    let e = tiny.unwrap_err().to_string();
    assert!(
        e.starts_with("data: no validation examples (150 for training)") && e.contains("`val_split: 0`"),
        "{e}"
    );
}

#[test]
fn digits_load_as_one_channel_8x8_images() {
    let s = load_in(
        Path::new(REPO),
        "{csv: data/digits8x8.csv, target: digit, shape: [1, 8, 8], val_split: 0.1}",
    )
    .unwrap();
    assert_eq!(s.train.x.dims(), &[1617, 1, 8, 8]);
    assert_eq!(s.val.x.dims(), &[180, 1, 8, 8]);
    assert_eq!((s.train.x.dtype(), s.train.y.dtype()), (DType::F32, DType::I64));
}

#[test]
fn npy_files_load_with_a_separate_validation_pair() {
    let dir = test_dir("load-npy");
    let tokens = Tensor::new(&[[1i32, 2, 3], [4, 5, 6], [7, 8, 9]], &Device::Cpu).unwrap();
    tokens.write_npy(dir.join("x.npy")).unwrap();
    Tensor::new(&[[0f64], [1.], [1.]], &Device::Cpu).unwrap().write_npy(dir.join("y.npy")).unwrap();
    let s = load_in(
        &dir,
        "{npy: {features: x.npy, target: y.npy}, val: {npy: {features: x.npy, target: y.npy}}}",
    )
    .unwrap();
    assert_eq!((s.train.x.dims(), s.train.x.dtype()), (&[3, 3][..], DType::I64));
    assert_eq!(s.val.y.to_vec1::<i64>().unwrap(), [0, 1, 1]);
}

#[test]
fn npz_validation_takes_other_arrays_of_the_same_archive() {
    let dir = test_dir("load-npz");
    let x = Tensor::new(&[[0u8, 255], [255, 0]], &Device::Cpu).unwrap();
    let y = Tensor::new(&[0u8, 1], &Device::Cpu).unwrap();
    Tensor::write_npz(&[("x_train", &x), ("y_train", &y), ("x_test", &x), ("y_test", &y)], dir.join("m.npz"))
        .unwrap();
    let yaml = "{npz: m.npz, features: x_train, target: y_train, val: {features: x_test, target: y_test}}";
    let s = load_in(&dir, yaml).unwrap();
    assert_eq!(s.val.x.to_vec2::<f32>().unwrap(), [[0., 1.], [1., 0.]]);
    assert_eq!(s.train.y.to_vec1::<i64>().unwrap(), [0, 1]);
}

#[test]
fn safetensors_default_to_x_and_y_and_autoencoders_target_their_input() {
    let dir = test_dir("load-safetensors");
    let tensors = HashMap::from([
        ("x".to_string(), Tensor::new(&[[1f32, 3.], [3., 5.], [5., 7.], [7., 9.]], &Device::Cpu).unwrap()),
        ("y".to_string(), Tensor::new(&[0.5f32, 1., 1.5, 2.], &Device::Cpu).unwrap()),
    ]);
    candle_core::safetensors::save(&tensors, dir.join("d.safetensors")).unwrap();
    let s = load_in(&dir, "{safetensors: d.safetensors, target_dtype: f32, val_split: 0.25}").unwrap();
    assert_eq!((s.train.len(), s.val.len(), s.val.y.dtype()), (3, 1, DType::F32));
    let s = load_in(&dir, "{safetensors: d.safetensors, autoencoder: true, standardize: true}").unwrap();
    assert_eq!(s.train.x.to_vec2::<f32>().unwrap(), s.train.y.to_vec2::<f32>().unwrap());
}

#[test]
fn idx_files_load_as_scaled_images() {
    let dir = test_dir("load-idx");
    let idx = |dims: &[u32], values: &[u8]| {
        let mut out = vec![0, 0, 0x08, dims.len() as u8];
        dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
        out.extend(values);
        out
    };
    std::fs::write(dir.join("img"), idx(&[5, 1, 2], &[0, 255, 51, 0, 0, 0, 0, 0, 0, 0])).unwrap();
    std::fs::write(dir.join("lab"), idx(&[5], &[1, 2, 3, 4, 5])).unwrap();
    let s = load_in(&dir, "{idx: {images: img, labels: lab}, shuffle: false}").unwrap();
    assert_eq!(s.train.x.dims(), &[4, 1, 1, 2]);
    assert_eq!(s.train.x.get(1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(), [0.2, 0.]);
    assert_eq!(s.val.y.to_vec1::<i64>().unwrap(), [5]);
}

#[test]
fn synthetic_data_is_the_same_for_the_same_seed() {
    let yaml = "{synthetic: {rows: 64, features: [1, 4, 4], classes: 4, seed: 3}}";
    let a = load_in(Path::new("."), yaml).unwrap();
    let b = load_in(Path::new("."), yaml).unwrap();
    assert_eq!(a.train.x.dims(), &[51, 1, 4, 4]);
    assert_eq!(a.val.y.to_vec1::<i64>().unwrap(), b.val.y.to_vec1::<i64>().unwrap());
    let tokens = load_in(Path::new("."), "{synthetic: {rows: 10, features: 16, vocab: 100}}").unwrap();
    assert_eq!((tokens.train.x.dims(), tokens.train.x.dtype()), (&[8, 16][..], DType::I64));
}

#[test]
fn configurations_that_cannot_work_are_refused_when_read() {
    let cases = [
        (
            "{target: y}",
            "no data source: give one of csv, npy, npz, safetensors, idx, synthetic, text or images",
        ),
        ("{csv: a.csv, npz: b.npz, target: y}", "give one data source, found csv and npz"),
        ("{csv: a.csv}", "`csv` needs a `target` column (or `autoencoder: true`)"),
        (
            "{csv: a.csv, target: y, val_split: 1.5}",
            "`val_split` is the validation fraction, in [0, 1); found 1.5",
        ),
        ("{csv: a.csv, target: y, val_split: 0.1, val: {csv: b.csv}}", "give `val_split` or `val`, not both"),
        ("{npz: d.npz, features: [a, b]}", "`features` names one array of the `npz` file, found 2"),
        ("{npy: {features: x.npy}, target: y}", "`npy` takes no names"),
        (
            "{idx: {images: i, labels: l}, autoencoder: true}",
            "takes the features as targets; drop the target `l`",
        ),
        ("{csv: a.csv, target: y, val: {}}", "data: in `val`: it names no data"),
        ("{csv: a.csv, taget: y}", "unknown field `taget`, expected one of"),
        ("{synthetic: {rows: 0, features: 4}}", "must be positive"),
        ("{synthetic: {rows: 100000, features: [1000, 1000]}}", "`synthetic` is too large"),
        ("{csv: a.csv, target: y, shape: [0, 4]}", "`shape` dims must be positive"),
        ("{csv: a.csv, target: y, channels: 1}", "`channels` belongs to an `images` source"),
        ("{images: d, channels: 2}", "`channels` is 1 (grayscale) or 3 (RGB), found 2"),
        ("{images: d, mean: [0.5, 0.5]}", "`mean` has one value or one per channel (3), found 2"),
        ("{images: d, std: 0}", "`std` values must be positive"),
        ("{images: d, size: [8, 0]}", "`size` is `[h, w]` or one side, positive"),
        ("{images: d, augment: {hflip: 2}}", "augment: `hflip` is a probability, in [0, 1]; found 2"),
        ("{images: d, augment: {flip: 0.5}}", "unknown field `flip`"),
    ];
    let e = config_error("data:\n  csv: a.csv\n  taget: y\n");
    assert!(
        e.starts_with("data: unknown field `taget`, expected one of `csv`") && e.ends_with("line 3 column 3"),
        "{e}"
    );
    for (yaml, expected) in cases {
        let e = config_error(&format!("data: {yaml}"));
        assert!(e.contains(expected), "{yaml}: {e}");
    }
}

#[test]
fn files_that_do_not_fit_the_configuration_are_named() {
    let dir = test_dir("load-errors");
    std::fs::write(dir.join("t.csv"), "a,b,label\n1,2,0\n3,4,1\n").unwrap();
    let e = load_in(&dir, "{csv: t.csv, target: label, shape: [3]}").unwrap_err().to_string();
    assert!(e.ends_with("t.csv`: `shape: [3]` holds 3 values, but each example has 2 (shape [2])"), "{e}");
    let e =
        load_in(&dir, "{csv: t.csv, target: label, dtype: i64, standardize: true}").unwrap_err().to_string();
    assert_eq!(e, "data: `standardize: true` needs float features; these are integer ids (i64)");
    std::fs::write(dir.join("v.csv"), "a,label\n1,0\n").unwrap();
    let e = load_in(&dir, "{csv: t.csv, target: label, val: {csv: v.csv}}").unwrap_err().to_string();
    assert_eq!(e, "the validation examples are [1] (f32) but the training examples are [2] (f32)");
    let e = load_in(&dir, "{csv: missing.csv, target: label}").unwrap_err().to_string();
    assert!(e.starts_with("cannot read `") && e.contains("missing.csv"), "{e}");
}

/// The shipped corpus: windows of next-token ids, the last tenth held out in order, the
/// vocabulary its 89 characters, written into the run's metadata.
#[test]
fn text_windows_the_corpus_and_keeps_its_vocabulary() {
    let s = load_in(Path::new(REPO), "{text: data/wick_corpus.txt, seq_len: 64, stride: 64, val_split: 0.1}")
        .unwrap();
    // 70,740 characters: (70,740 - 65) / 64 + 1 = 1,105 windows; 110.5 rounds to 111 held out.
    assert_eq!((s.train.len(), s.val.len()), (994, 111));
    assert_eq!(s.train.x.dims(), &[994, 64]);
    assert_eq!((s.train.x.dtype(), s.train.y.dtype()), (DType::I64, DType::I64));
    // Targets are the inputs one token on, within a window and across the stride.
    let (x, y) = (s.train.x.to_vec2::<i64>().unwrap(), s.train.y.to_vec2::<i64>().unwrap());
    assert_eq!(x[0][1..], y[0][..63]);
    assert_eq!(y[0][63], x[1][0]);
    // In order: the validation windows follow the last training one.
    assert_eq!(s.val.x.to_vec2::<i64>().unwrap()[0][0], y[993][63]);
    let vocabulary = s.recorded.vocabulary.as_ref().unwrap();
    assert_eq!(vocabulary.len(), 89);
    assert_eq!(vocabulary.decode(&[x[0][0] as u32]).unwrap(), "#");
    let metadata = s.recorded.metadata();
    assert_eq!(text::Vocabulary::from_metadata(&metadata).unwrap().as_ref(), Some(vocabulary));
}

#[test]
fn text_settings_are_checked() {
    let cases = [
        ("data: {text: a.txt}", "`text` needs `seq_len`"),
        ("data: {text: a.txt, seq_len: 0}", "`seq_len` must be in 1..="),
        ("data: {text: a.txt, seq_len: 8, stride: 0}", "`stride` must be at least 1"),
        ("data: {text: a.txt, seq_len: 8, standardize: true}", "`standardize` does not apply to `text`"),
        ("data: {csv: a.csv, target: y, seq_len: 8}", "belong to a `text` source"),
        ("data: {text: a.txt, csv: a.csv, seq_len: 8}", "give one data source, found csv and text"),
        ("data: {csv: a.csv, target: y, val: {text: b.txt}}", "needs a `text` training source"),
    ];
    for (yaml, says) in cases {
        let e = config_error(yaml);
        assert!(e.contains(says), "{yaml}: {e}");
    }
    let c = config("{text: a.txt, seq_len: 8, val: {text: b.txt}}");
    let Validation::Source(Source::Text(t)) = c.val else { panic!("{:?}", c.val) };
    assert_eq!((t.path.as_str(), t.seq_len, t.stride), ("b.txt", 8, 8));
}

#[test]
fn a_validation_text_uses_the_training_vocabulary() {
    let dir = test_dir("text-val");
    std::fs::write(dir.join("a.txt"), "abc\nabc\nabc\n").unwrap();
    std::fs::write(dir.join("b.txt"), "cab\nabz").unwrap();
    let e = load_in(&dir, "{text: a.txt, seq_len: 3, val: {text: b.txt}}").unwrap_err().to_string();
    assert!(e.contains("b.txt`: 2:3: the character 'z' is not in the vocabulary of 4"), "{e}");
    let e = load_in(&dir, "{text: a.txt, seq_len: 12}").unwrap_err().to_string();
    assert!(e.contains("12 tokens: a window of `seq_len: 12` and its next token need 13"), "{e}");
}

#[test]
fn k_folds_validate_every_example_once() {
    let mut c = config("{csv: data/iris.csv, target: species, val: {kfold: 3}}");
    assert_eq!(c.val, Validation::Fold { k: 3, index: 0 });
    let all = load_in(Path::new(REPO), "{csv: data/iris.csv, target: species, val_split: 0}").unwrap();
    let total = all.train.x.sum_all().unwrap().to_scalar::<f32>().unwrap();
    let mut held = 0.0;
    for index in 0..3 {
        c.val = Validation::Fold { k: 3, index };
        let s = load(&c, Path::new(REPO), 1, &Device::Cpu).unwrap();
        assert_eq!((s.train.len(), s.val.len()), (100, 50));
        held += s.val.x.sum_all().unwrap().to_scalar::<f32>().unwrap();
    }
    assert!((held - total).abs() < 1e-3 * total, "the folds hold {held}, the data {total}");
    for bad in ["{kfold: 1}", "{kfold: 3, csv: other.csv}"] {
        let e = config_error(&format!("data: {{csv: data/iris.csv, target: species, val: {bad}}}"));
        assert!(e.contains("kfold"), "{bad}: {e}");
    }
}

#[test]
fn a_limit_keeps_the_first_training_examples_and_the_whole_validation() {
    let s = load_in(Path::new(REPO), "{csv: data/iris.csv, target: species, limit: 16}").unwrap();
    assert_eq!((s.train.len(), s.val.len()), (16, 30));
    let all = load_in(Path::new(REPO), "{csv: data/iris.csv, target: species}").unwrap();
    let first: Vec<f32> = all.train.x.get(0).unwrap().to_vec1().unwrap();
    assert_eq!(s.train.x.get(0).unwrap().to_vec1::<f32>().unwrap(), first);
    assert!(config_error("data: {csv: data/iris.csv, target: species, limit: 0}").contains("`limit`"));
}

#[test]
fn an_image_folder_loads_with_its_class_names_recorded() {
    let yaml = "{images: data/digits_png, channels: 1, val_split: 0.2}";
    let s = load_in(Path::new(REPO), yaml).unwrap();
    assert_eq!((s.train.len(), s.val.len()), (400, 100));
    assert_eq!(s.train.example_shape(), &[1, 8, 8]);
    let classes: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    assert_eq!(s.recorded.classes.as_deref(), Some(&classes[..]));
    // The first PNG is row 0 of the digits CSV, its 0..16 values scaled to bytes and back.
    let one = config("{images: data/digits_png, channels: 1}");
    let d = read_source(&one.source, &one, Path::new(REPO), None).unwrap();
    let first: Vec<f32> = d.x.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let csv = Dataset::from_csv(&Path::new(REPO).join("data/digits8x8.csv"), "digit", &Device::Cpu).unwrap();
    let row: Vec<f32> = csv.x.get(0).unwrap().to_vec1().unwrap();
    assert!(first.iter().zip(&row).all(|(p, v)| (p - v / 16.0).abs() < 1.0 / 255.0), "{first:?} vs {row:?}");
}

#[test]
fn a_compressed_npz_reads_as_an_uncompressed_one() {
    // np.savez_compressed(x=arange(12, float32).reshape(3, 4), y=[0, 1, 2] int64)
    let yaml = "{npz: tests/fixtures/compressed.npz, val_split: 0.0}";
    let d = read_source(&config(yaml).source, &config(yaml), Path::new(REPO), None).unwrap();
    assert_eq!(d.x.to_vec2::<f32>().unwrap()[2], [8., 9., 10., 11.]);
    assert_eq!(d.y.to_vec1::<i64>().unwrap(), [0, 1, 2]);
}
