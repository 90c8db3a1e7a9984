//! A GAN trained and sampled as a user does it, through the real binary: `wick train` on the
//! digits DCGAN writes each model's weights, the checkpoint, the log with both models'
//! figures, the curves and a sample grid per epoch; `wick sample` then draws from the
//! generator the spec's train section names, mapped back to the data's 0..16 scale by the
//! `rescale` the weights record.

#[path = "common/bounded.rs"]
mod bounded;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bounded::{run_bounded, Limits};
use candle_core::{Device, Tensor};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Room for a debug-build epoch of the DCGAN on a loaded machine.
const TRAINING: Limits =
    Limits { cpu: Duration::from_secs(240), wall: Duration::from_secs(600), ..Limits::STRICT };

/// What `wick ARGS` printed (standard output, then error) once it succeeded within `limits`.
fn wick(args: &[&str], dir: &Path, limits: Limits) -> String {
    let o = run_bounded(args, dir, limits);
    if let Some(v) = o.violation(&limits) {
        panic!("wick {}: {v}\n{}", args.join(" "), o.stderr);
    }
    assert_eq!(o.code, Some(0), "wick {}: {}", args.join(" "), o.stderr);
    format!("{}{}", o.stdout, o.stderr)
}

fn npy_values(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header_len..].chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn a_dcgan_trains_from_its_spec_and_samples_in_the_datas_scale() {
    let dir = std::env::temp_dir().join(format!("wick-gan-cli-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!("{ROOT}/specs/dcgan_digits.wick");
    let out = dir.join("run");
    let out_arg = out.to_str().unwrap();
    let report = wick(&["train", &spec, "--epochs", "1", "--out", out_arg], &dir, TRAINING);
    assert!(report.contains("Generator.safetensors") && report.contains("d_loss"), "{report}");
    for file in ["Generator.safetensors", "Discriminator.safetensors", "checkpoint.safetensors", "curves.svg"]
    {
        assert!(out.join(file).is_file(), "{file}: {report}");
    }
    let grid = std::fs::read(out.join("samples/epoch_001.png")).unwrap();
    assert_eq!(&grid[..8], b"\x89PNG\r\n\x1a\n");
    let log = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let header = log.lines().next().unwrap();
    for column in ["d_loss", "g_loss", "d_real", "d_fake"] {
        assert!(header.split(',').any(|c| c == column), "{column} in {header}");
    }

    let weights = out.join("Generator.safetensors");
    let scaled = dir.join("scaled.npy");
    let said = wick(
        &["sample", &spec, "--weights", weights.to_str().unwrap(), "-n", "8", "-o", scaled.to_str().unwrap()],
        &dir,
        Limits::STRICT,
    );
    assert!(said.contains("model Generator") && said.contains("[-1, 1] -> [0, 16]"), "{said}");
    // The same tensors without the metadata: the generator's own tanh scale.
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let bare = dir.join("bare.safetensors");
    candle_core::safetensors::save(&tensors.into_iter().collect::<HashMap<String, Tensor>>(), &bare).unwrap();
    let raw = dir.join("raw.npy");
    let said = wick(
        &["sample", &spec, "--weights", bare.to_str().unwrap(), "-n", "8", "-o", raw.to_str().unwrap()],
        &dir,
        Limits::STRICT,
    );
    assert!(!said.contains("mapped back"), "{said}");
    let (scaled, raw) = (npy_values(&scaled), npy_values(&raw));
    assert_eq!(scaled.len(), 8 * 64);
    assert!(raw.iter().all(|v| (-1.0..=1.0).contains(v)));
    for (s, r) in scaled.iter().zip(&raw) {
        assert!((s - (r + 1.0) * 8.0).abs() < 1e-4, "{s} vs {r}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The players may live in files of their own: `spec:` names the file of a model, relative to
/// the spec that trains them, and `wick sample` on that spec finds the generator there.
#[test]
fn a_gan_whose_generator_is_in_another_file_trains_and_samples() {
    let dir = std::env::temp_dir().join(format!("wick-gan-two-files-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(dir.join("nets")).unwrap();
    std::fs::write(
        dir.join("nets/gen.wick"),
        "dim N = 8\nmodel Maker {\n    input z: [N, 3]\n    x = z |> fc: Linear(5) |> Tanh\n    output x: [N, 5]\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("critic.wick"),
        "dim N = 8\nmodel Judge {\n    input x: [N, 5]\n    s = x |> fc: Linear(1)\n    output s: [N, 1]\n}\n\
         train {\n    data: { synthetic: { rows: 32, features: 5 }, val_split: 0 }\n    batch_size: 8\n    \
         epochs: 2\n    gan: {\n        generator: { model: Maker, spec: \"nets/gen.wick\" },\n        \
         discriminator: { model: Judge },\n        loss: { name: hinge }\n    }\n}\n",
    )
    .unwrap();
    let report = wick(&["train", "critic.wick"], &dir, TRAINING);
    assert!(report.contains("Maker.safetensors") && report.contains("Judge.safetensors"), "{report}");
    assert!(report.contains("no sample grids") && !dir.join("runs/critic/samples").exists(), "{report}");
    let said = wick(&["sample", "critic.wick", "-n", "4", "-o", "s.npy"], &dir, Limits::STRICT);
    assert!(said.contains("model Maker: weights from runs/critic/Maker.safetensors"), "{said}");
    let values = npy_values(&dir.join("s.npy"));
    assert_eq!(values.len(), 4 * 5);
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)), "no rescale: tanh's own range");
    std::fs::remove_dir_all(&dir).ok();
}
