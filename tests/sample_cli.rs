//! `wick sample` run as a user runs it: each file kind's layout, the same samples for the same
//! seed, a VAE's decoder sampled from the VAE's weights, and refusals that are one clear line
//! (exit 2, no panic, no backtrace with RUST_BACKTRACE=1). Each run is bounded (10 s, 2 GB).

#[path = "common/bounded.rs"]
mod bounded;

use std::path::{Path, PathBuf};

use bounded::{run_bounded, Limits, Outcome};

const VAE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/vae.wick");
const DECODER: [&str; 2] = ["--model", "ConvVAEDecoder"];

/// A fresh folder for one test, holding a copy of the VAE spec (the run folder is found next
/// to the working directory, so a test that needs one makes it here).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-sample-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(VAE, dir.join("vae.wick")).unwrap();
    dir
}

/// `wick sample vae.wick --model ConvVAEDecoder ARGS` in `dir`; must not break the contract.
fn sample(dir: &Path, args: &[&str]) -> Outcome {
    let mut all = vec!["sample", "vae.wick"];
    all.extend(DECODER);
    all.extend(args);
    let o = run_bounded(&all, dir, Limits::STRICT);
    if let Some(v) = o.violation(&Limits::STRICT) {
        panic!("wick {}: {v}\n{}", all.join(" "), o.stderr);
    }
    o
}

fn ok(dir: &Path, args: &[&str]) -> Outcome {
    let o = sample(dir, args);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    o
}

/// A refusal of `wick sample vae.wick --model ConvVAEDecoder ARGS`: see [`is_refusal`].
fn refused(dir: &Path, args: &[&str], says: &str) {
    is_refusal(&sample(dir, args), dir, says);
}

/// Exit 2, a message containing `says`, no backtrace, no output file.
fn is_refusal(o: &Outcome, dir: &Path, says: &str) {
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    let errors: Vec<&str> = o.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert!(errors.len() == 1 && o.stderr.contains(says), "{}", o.stderr);
    assert!(!o.stderr.contains("stack backtrace") && !o.stderr.contains("panicked"), "{}", o.stderr);
    assert!(!dir.join("s.npy").exists() && !dir.join("s.png").exists() && !dir.join("s.jpg").exists());
}

#[test]
fn npy_holds_n_decoded_images_as_little_endian_f32() {
    let dir = scratch("npy");
    ok(&dir, &["--random-weights", "-n", "5", "-o", "s.npy"]);
    let bytes = std::fs::read(dir.join("s.npy")).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header: String =
        std::str::from_utf8(&bytes[10..10 + header_len]).unwrap().chars().filter(|c| *c != ' ').collect();
    assert!(header.contains("'descr':'<f4'") && header.contains("'shape':(5,1,28,28"), "{header}");
    assert_eq!(bytes.len(), 10 + header_len + 5 * 28 * 28 * 4);
    // The decoder ends in a sigmoid.
    let values: Vec<f32> =
        bytes[10 + header_len..].chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn png_is_a_grid_as_square_as_n_allows() {
    let dir = scratch("png");
    ok(&dir, &["--random-weights", "-n", "5", "--range", "0,1", "-o", "s.png"]);
    let bytes = std::fs::read(dir.join("s.png")).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let side = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    // 5 tiles of 28 x 28: 3 columns, 2 rows, 1-pixel borders between.
    assert_eq!((side(16), side(20)), (3 * 28 + 2, 2 * 28 + 1));
    assert_eq!(bytes[25], 0, "gray");
    assert!(bytes.ends_with(b"IEND\xae\x42\x60\x82"));
}

#[test]
fn the_same_seed_gives_the_same_samples() {
    let dir = scratch("seed");
    let file = |name: &str| std::fs::read(dir.join(name)).unwrap();
    ok(&dir, &["--random-weights", "-n", "4", "--seed", "9", "-o", "a.npy"]);
    ok(&dir, &["--random-weights", "-n", "4", "--seed", "9", "-o", "b.npy"]);
    ok(&dir, &["--random-weights", "-n", "4", "--seed", "10", "-o", "c.npy"]);
    assert_eq!(file("a.npy"), file("b.npy"));
    assert_ne!(file("a.npy"), file("c.npy"));
}

#[test]
fn the_decoder_samples_with_a_vae_s_weights_from_the_run_folder() {
    let dir = scratch("weights");
    // A ConvVAE's weights (its encoder too), initialised from seed 7, where training leaves them.
    std::fs::create_dir_all(dir.join("runs/vae")).unwrap();
    let o = run_bounded(
        &["compile", "vae.wick", "-o", "runs/vae/weights.safetensors", "--seed", "7"],
        &dir,
        Limits::STRICT,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let from_run = ok(&dir, &["-n", "3", "--seed", "3", "-o", "run.npy"]);
    assert!(from_run.stderr.contains("weights from runs/vae/weights.safetensors"), "{}", from_run.stderr);
    assert!(
        from_run.stderr.contains("not loaded"),
        "the encoder's tensors are left out: {}",
        from_run.stderr
    );
    ok(&dir, &["-n", "3", "--seed", "3", "--weights", "runs/vae/weights.safetensors", "-o", "given.npy"]);
    // Untrained, the decoder is initialised from the sampling seed: other weights, other samples.
    ok(&dir, &["-n", "3", "--seed", "3", "--random-weights", "-o", "init3.npy"]);
    // The weights of seed 3 loaded from a file give the untrained decoder's samples exactly.
    let o =
        run_bounded(&["compile", "vae.wick", "-o", "vae3.safetensors", "--seed", "3"], &dir, Limits::STRICT);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    ok(&dir, &["-n", "3", "--seed", "3", "--weights", "vae3.safetensors", "-o", "loaded3.npy"]);
    let file = |name: &str| std::fs::read(dir.join(name)).unwrap();
    assert_eq!(file("run.npy"), file("given.npy"));
    assert_ne!(file("run.npy"), file("init3.npy"));
    assert_eq!(file("loaded3.npy"), file("init3.npy"));
    // A file named after the model wins over the run's weights.
    std::fs::copy(dir.join("runs/vae/weights.safetensors"), dir.join("runs/vae/ConvVAEDecoder.safetensors"))
        .unwrap();
    let named = ok(&dir, &["-n", "3", "-o", "named.npy"]);
    assert!(named.stderr.contains("weights from runs/vae/ConvVAEDecoder.safetensors"), "{}", named.stderr);
}

#[test]
fn mistakes_are_one_message_and_exit_2() {
    let dir = scratch("errors");
    refused(&dir, &["-o", "s.npy"], "no weights for model ConvVAEDecoder");
    refused(&dir, &["--random-weights", "-o", "s.jpg"], "name a .npy, .safetensors or .png file");
    let o = run_bounded(&["sample", "vae.wick", "--model", "Decoder", "-o", "s.npy"], &dir, Limits::STRICT);
    is_refusal(&o, &dir, "no model named `Decoder`");
    refused(&dir, &["--weights", "missing.safetensors", "-o", "s.npy"], "missing.safetensors");
    // The full VAE has three outputs: a PNG holds one.
    let o = run_bounded(&["sample", "vae.wick", "--random-weights", "-o", "s.png"], &dir, Limits::STRICT);
    is_refusal(&o, &dir, "3 outputs (logvar, mu, recon)");
    // Weights that lack the decoder's tensors are refused, naming what is missing.
    std::fs::write(
        dir.join("tiny.wick"),
        "dim N = 1\nmodel T {\n input x: [N, 2]\n output y = x |> fc_dec: Linear(3)\n}\n",
    )
    .unwrap();
    let o = run_bounded(&["compile", "tiny.wick", "-o", "tiny.safetensors"], &dir, Limits::STRICT);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    refused(&dir, &["--weights", "tiny.safetensors", "-o", "s.npy"], "missing: decoder.1.weight");
}
