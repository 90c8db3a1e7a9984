//! `wick sample SPEC -o FILE`: a generator's outputs for seeded latent draws, as arrays or a
//! PNG grid; `wick sample SPEC --prime TEXT --length N`: a language model's text;
//! `wick sample SPEC --source TEXT --start ID [--beam K]`: an encoder-decoder's output sequence.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use wick::lower::device::{self, DeviceChoice};
use wick::sample::{self, Choice, Format, Request, SampleError, TextRequest, TranslateRequest, Weights};

use super::{SpecArgs, EXIT_SPEC, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct SampleArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Weights (.safetensors); default: the spec's run folder, `runs/<spec name>/<Model>.safetensors`
    /// or else `runs/<spec name>/weights.safetensors`.
    #[arg(long, conflicts_with = "random_weights")]
    pub weights: Option<PathBuf>,
    /// Sample the untrained model (initialised from --seed) instead of loading weights.
    #[arg(long)]
    pub random_weights: bool,
    /// How many samples.
    #[arg(short = 'n', long = "count", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub count: u32,
    /// The class to draw, for a conditional generator (its integer input).
    #[arg(long)]
    pub label: Option<i64>,
    /// Seed of the latent draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// For a PNG: the values drawn black and white (default: the data's range when the weights
    /// record a `rescale`, else tanh's -1,1; 0,1 after a sigmoid).
    #[arg(long, value_parser = parse_range, allow_hyphen_values = true)]
    pub range: Option<(f32, f32)>,
    /// Where to write: .npy (one output), .safetensors (keyed by output name) or .png (a grid of
    /// [n, 1 or 3, h, w] images). Not for text, which goes to stdout.
    #[arg(short = 'o', long = "output", required_unless_present_any = ["prime", "length", "source"])]
    pub output: Option<PathBuf>,
    /// Text: what a language model continues (token ids separated by spaces when its weights
    /// carry no vocabulary).
    #[arg(long, conflicts_with = "output")]
    pub prime: Option<String>,
    /// Seq2seq: the source sequence an encoder-decoder model decodes (token ids separated by
    /// spaces when its weights carry no vocabulary).
    #[arg(long, conflicts_with_all = ["output", "prime"], requires = "start")]
    pub source: Option<String>,
    /// Seq2seq: the token the decoder's input starts with.
    #[arg(long)]
    pub start: Option<u32>,
    /// Seq2seq: the token that ends a sequence.
    #[arg(long)]
    pub end: Option<u32>,
    /// Seq2seq: beam search keeping K hypotheses; 1 is greedy decoding.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub beam: u32,
    /// Seq2seq: the model's source input (default: its first input).
    #[arg(long, requires = "decoder_input")]
    pub source_input: Option<String>,
    /// Seq2seq: the model's decoder input (default: its second input).
    #[arg(long, requires = "source_input")]
    pub decoder_input: Option<String>,
    /// Text: how many tokens to generate.
    #[arg(long, conflicts_with = "output", value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub length: Option<u32>,
    /// Text: the softmax temperature of the draws; 0 picks the most likely token (greedy).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Text: draw among the K most likely tokens only.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Text: draw among the most likely tokens whose probabilities first reach P.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Text: run the whole prefix again for every token instead of carrying each layer's state
    /// (recurrent state, key-value cache); slower, for comparison.
    #[arg(long)]
    pub no_cache: bool,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

fn parse_range(s: &str) -> Result<(f32, f32), String> {
    let (lo, hi) = s.split_once(',').ok_or_else(|| format!("expected LOW,HIGH, found `{s}`"))?;
    let number = |v: &str| v.trim().parse::<f32>().map_err(|_| format!("`{v}` is not a number"));
    let (lo, hi) = (number(lo)?, number(hi)?);
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(format!("expected finite LOW < HIGH, found {lo}, {hi}"));
    }
    Ok((lo, hi))
}

pub fn run(args: SampleArgs) -> ExitCode {
    let result = match (&args.output, &args.source) {
        (Some(_), _) => sample_to_file(&args),
        (None, Some(_)) => decode_source(&args),
        (None, None) => sample_text(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.to_string().trim_end());
            ExitCode::from(if matches!(e, SampleError::Spec(_)) { EXIT_SPEC } else { EXIT_USAGE })
        }
    }
}

/// The device asked for, with its note on stderr.
fn device_of(args: &SampleArgs) -> Result<candle_core::Device, SampleError> {
    let (device, note) = device::select(args.device).map_err(SampleError::Usage)?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    Ok(device)
}

/// Which weights the model ran with, on stderr.
fn say_weights(model: &str, weights: Option<&std::path::Path>, seed: u64) {
    match weights {
        Some(path) => eprintln!("model {model}: weights from {}", path.display()),
        None => eprintln!("model {model}: untrained, initialised from seed {seed}"),
    }
}

fn weights_of(args: &SampleArgs) -> Weights {
    match (&args.weights, args.random_weights) {
        (Some(path), _) => Weights::File(path.clone()),
        (None, true) => Weights::Random,
        (None, false) => Weights::RunFolder,
    }
}

/// The prime and its continuation on stdout; where the weights came from and the speed on
/// stderr.
fn sample_text(args: &SampleArgs) -> Result<(), SampleError> {
    let greedy = args.temperature == 0.0;
    let choice = Choice {
        temperature: args.temperature,
        top_k: args.top_k.filter(|_| !greedy),
        top_p: args.top_p.filter(|_| !greedy),
    };
    let request = TextRequest {
        spec: args.spec.spec.clone(),
        options: args.spec.options(),
        weights: weights_of(args),
        device: device_of(args)?,
        seed: args.seed,
        prime: args.prime.clone().unwrap_or_default(),
        length: args.length.map_or(100, |n| n as usize),
        choice,
        cache: !args.no_cache,
    };
    let text = sample::generate_text(&request)?;
    say_weights(&text.model, text.weights.as_deref(), args.seed);
    println!("{}", text.text);
    let how = if text.cached { "each layer's state carried" } else { "the prefix run again each token" };
    eprintln!(
        "{} tokens after a prime of {} in {:.3} s: {:.1} tokens/s ({how})",
        text.generated.len(),
        text.prime_tokens,
        text.seconds,
        text.generated.len() as f64 / text.seconds.max(1e-9)
    );
    Ok(())
}

/// The best sequence on stdout (with `--beam K`, the K best with their log-probabilities);
/// where the weights came from and the speed on stderr.
fn decode_source(args: &SampleArgs) -> Result<(), SampleError> {
    let request = TranslateRequest {
        spec: args.spec.spec.clone(),
        options: args.spec.options(),
        weights: weights_of(args),
        device: device_of(args)?,
        seed: args.seed,
        source: args.source.clone().unwrap_or_default(),
        inputs: args.source_input.clone().zip(args.decoder_input.clone()),
        start: args.start.unwrap_or_default(),
        end: args.end,
        length: args.length.map_or(100, |n| n as usize),
        beam: args.beam as usize,
        cache: !args.no_cache,
    };
    let found = sample::translate(&request)?;
    say_weights(&found.model, found.weights.as_deref(), args.seed);
    for (text, scored) in found.hypotheses.iter().take(1) {
        println!("{text}");
        eprintln!(
            "log-probability {:.4}{}",
            scored.score,
            if scored.finished { "" } else { " (no end token)" }
        );
    }
    for (text, scored) in found.hypotheses.iter().skip(1) {
        eprintln!("  also {:.4}: {text}", scored.score);
    }
    let how =
        if found.cached { "the decoder's states carried" } else { "the whole model run again each token" };
    let search = if request.beam == 1 { "greedy".to_string() } else { format!("beam {}", request.beam) };
    eprintln!("{search} in {:.3} s ({how})", found.seconds);
    Ok(())
}

fn sample_to_file(args: &SampleArgs) -> Result<(), SampleError> {
    let output = args.output.clone().unwrap_or_default();
    Format::of(&output)?;
    let device = device_of(args)?;
    let weights = weights_of(args);
    let request = Request {
        spec: args.spec.spec.clone(),
        options: args.spec.options(),
        n: args.count as usize,
        seed: args.seed,
        weights,
        device,
        label: args.label,
    };
    let samples = sample::generate(&request)?;
    say_weights(&samples.model, samples.weights.as_deref(), args.seed);
    if !samples.unused.is_empty() {
        eprintln!(
            "note: {} tensors of the file belong to no layer of {} (not loaded)",
            samples.unused.len(),
            samples.model
        );
    }
    // Samples in the data's scale are drawn over the data's range.
    let range = match (args.range, samples.rescaled) {
        (Some(range), _) => range,
        (None, Some(r)) => (r.min as f32, r.max as f32),
        (None, None) => (-1.0, 1.0),
    };
    if let Some(r) = samples.rescaled {
        eprintln!(
            "values mapped back to the data's scale: [{}, {}] -> [{}, {}] (the run's `rescale`, recorded in the weights)",
            r.lo, r.hi, r.min, r.max
        );
    }
    sample::write(&output, &samples.outputs, range)?;
    let shapes: Vec<String> = samples.outputs.iter().map(|(k, t)| format!("{k} {:?}", t.dims())).collect();
    eprintln!("wrote {} to {}", shapes.join(", "), output.display());
    Ok(())
}
