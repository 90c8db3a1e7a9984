//! `wick sample` on language models, run as a user runs it: `wick train specs/char_lstm.wick`
//! for a few steps, then text of the asked length from a prime, the same text for the same
//! seed, the vocabulary read from the weights; the catalog's GPT-2 with random weights; and
//! refusals that are one clear line. Each run is bounded.

#[path = "common/bounded.rs"]
mod bounded;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bounded::{run_bounded, Limits, Outcome};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LIMITS: Limits = Limits { wall: Duration::from_secs(120), ..Limits::STRICT };

/// A fresh folder holding copies of the char specs and the corpus at the paths their `train`
/// sections name.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-sample-text-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    for sub in ["specs", "data", "std"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for file in [
        "specs/char_lstm.wick",
        "specs/char_gpt.wick",
        "specs/char_llama.wick",
        "data/wick_corpus.txt",
        "std/transformer.wick",
    ] {
        std::fs::copy(Path::new(ROOT).join(file), dir.join(file)).unwrap();
    }
    dir
}

fn wick(dir: &Path, args: &[&str]) -> Outcome {
    let o = run_bounded(args, dir, LIMITS);
    if let Some(v) = o.violation(&LIMITS) {
        panic!("wick {}: {v}\n{}", args.join(" "), o.stderr);
    }
    o
}

fn ok(dir: &Path, args: &[&str]) -> Outcome {
    let o = wick(dir, args);
    assert_eq!(o.code, Some(0), "wick {}: {}", args.join(" "), o.stderr);
    o
}

#[test]
fn a_trained_char_lstm_writes_text_of_the_asked_length_the_same_for_the_same_seed() {
    let dir = scratch("lstm");
    ok(&dir, &["train", "specs/char_lstm.wick", "--max-steps", "3"]);
    let sample = |seed: &str, extra: &[&str]| {
        let mut args =
            vec!["sample", "specs/char_lstm.wick", "--prime", "model ", "--length", "50", "--seed", seed];
        args.extend(extra);
        ok(&dir, &args)
    };
    let o = sample("4", &[]);
    assert!(o.stderr.contains("weights from runs/char_lstm/weights.safetensors"), "{}", o.stderr);
    assert!(
        o.stderr.contains("50 tokens after a prime of 6") && o.stderr.contains("tokens/s"),
        "{}",
        o.stderr
    );
    let text = o.stdout.strip_suffix('\n').unwrap();
    assert!(text.starts_with("model "), "{text:?}");
    assert_eq!(text.chars().count(), 56, "{text:?}");
    assert_eq!(sample("4", &[]).stdout, o.stdout);
    assert_ne!(sample("5", &[]).stdout, o.stdout);
    // The recurrent state carried step by step writes what re-running the prefix writes.
    let greedy = sample("0", &["--temperature", "0"]).stdout;
    assert_eq!(sample("0", &["--temperature", "0", "--no-cache"]).stdout, greedy);
    let cut = sample("4", &["--top-k", "3", "--top-p", "0.9"]).stdout;
    assert_eq!(cut.trim_end_matches('\n').chars().count(), 56);

    // A character the corpus never had is refused, naming it.
    let o = wick(&dir, &["sample", "specs/char_lstm.wick", "--prime", "model é", "--length", "5"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains("--prime: 1:7: the character 'é' is not in the vocabulary of 89"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("panicked"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A causal transformer trained for two steps writes the same text through its key-value cache
/// as through the whole prefix run again for every token.
fn samples_through_its_cache_as_through_the_whole_prefix(spec: &str) {
    let dir = scratch(spec.trim_start_matches("specs/").trim_end_matches(".wick"));
    ok(&dir, &["train", spec, "--max-steps", "2"]);
    let sample = |extra: &[&str]| {
        let mut args = vec!["sample", spec, "--prime", "model ", "--length", "30", "--temperature", "0"];
        args.extend(extra);
        ok(&dir, &args).stdout
    };
    let cached = sample(&[]);
    assert_eq!(cached.trim_end_matches('\n').chars().count(), 36, "{cached:?}");
    assert_eq!(sample(&["--no-cache"]), cached);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_char_gpt_samples_through_its_key_value_cache_as_through_the_whole_prefix() {
    samples_through_its_cache_as_through_the_whole_prefix("specs/char_gpt.wick");
}

/// The Llama's rotary positions continue from the cached ones, its grouped-query attention keeps
/// the rotated keys.
#[test]
fn a_char_llama_samples_through_its_key_value_cache_as_through_the_whole_prefix() {
    samples_through_its_cache_as_through_the_whole_prefix("specs/char_llama.wick");
}

/// The catalog's GPT-2 small runs with random weights: without a vocabulary the prime and the
/// output are token ids.
#[test]
fn gpt2_small_with_random_weights_runs() {
    let dir = scratch("gpt2");
    let spec = format!("{ROOT}/specs/gpt2_small.wick");
    let limits = Limits { rss_bytes: 4 << 30, address_space_bytes: 16 << 30, ..LIMITS };
    let args = [
        "sample",
        spec.as_str(),
        "--random-weights",
        "--prime",
        "464 2746",
        "--length",
        "3",
        "--top-k",
        "50",
    ];
    let o = run_bounded(&args, &dir, limits);
    assert!(o.violation(&limits).is_none(), "{}", o.stderr);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let ids: Vec<u32> = o.stdout.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert_eq!(ids.len(), 5, "{}", o.stdout);
    assert_eq!(ids[..2], [464, 2746]);
    assert!(ids.iter().all(|id| *id < 50257));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn models_that_are_not_language_models_are_refused_in_one_line() {
    let dir = scratch("refusals");
    let vae = format!("{ROOT}/specs/vae.wick");
    let o = wick(&dir, &["sample", &vae, "--random-weights", "--prime", "1", "--length", "3"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains("cannot generate text") && o.stderr.contains("token ids [N, T] of i64"),
        "{}",
        o.stderr
    );
    let o = wick(&dir, &["sample", "specs/char_lstm.wick", "--prime", "model ", "--length", "3"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("train the spec first"), "{}", o.stderr);
    let o =
        wick(&dir, &["sample", "specs/char_lstm.wick", "--random-weights", "--prime", "1", "--top-p", "1.5"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("--top-p must be in (0, 1], found 1.5"), "{}", o.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sources_that_an_encoder_decoder_cannot_take_are_refused_in_one_line() {
    let dir = scratch("seq2seq-refusals");
    let gru = format!("{ROOT}/specs/gru_seq2seq.wick");
    let decode = |extra: &[&str]| {
        let mut args = vec!["sample", &gru, "--random-weights", "--length", "4"];
        args.extend_from_slice(extra);
        let o = wick(&dir, &args);
        assert_eq!(o.code, Some(2), "{}", o.stderr);
        o.stderr
    };
    let one_line = |said: String| {
        assert_eq!(said.trim_end().lines().count(), 1, "{said}");
        said
    };
    // One-hot rows [S, N, 80]: a token past the 80 classes, a word, no start token.
    assert!(decode(&["--source", "1 2 300", "--start", "0"])
        .contains("token 300 is outside input `src`'s 80 classes"));
    assert!(
        decode(&["--source", "one", "--start", "0"]).contains("--source: the weights carry no vocabulary")
    );
    assert!(decode(&["--source", "1 2"]).contains("--start"));
    let named = one_line(decode(&[
        "--source",
        "1",
        "--start",
        "0",
        "--source-input",
        "src",
        "--decoder-input",
        "dec",
    ]));
    assert!(named.contains("no input `dec`; its inputs: src, tgt"), "{named}");
    // A language model has one input.
    let o =
        wick(&dir, &["sample", "specs/char_lstm.wick", "--random-weights", "--source", "1", "--start", "0"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("has 1 inputs: an encoder-decoder takes a source"), "{}", o.stderr);
    // The random-weights GRU decodes: `--beam 3` prints one line of 4 ids.
    let o = ok(
        &dir,
        &[
            "sample",
            &gru,
            "--random-weights",
            "--source",
            "5 6 7",
            "--start",
            "0",
            "--beam",
            "3",
            "--length",
            "4",
        ],
    );
    assert_eq!(o.stdout.split_whitespace().count(), 4, "{}", o.stdout);
    std::fs::remove_dir_all(&dir).ok();
}
