//! `wick sample SPEC -o FILE`: a generator's outputs for seeded latent draws, as arrays or a
//! PNG grid; `wick sample SPEC --prime TEXT --length N`: a language model's text.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use wick::lower::device::{self, DeviceChoice};
use wick::sample::{self, Choice, Format, Request, SampleError, TextRequest, Weights};

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
    #[arg(short = 'o', long = "output", required_unless_present_any = ["prime", "length"])]
    pub output: Option<PathBuf>,
    /// Text: what a language model continues (token ids separated by spaces when its weights
    /// carry no vocabulary).
    #[arg(long, conflicts_with = "output")]
    pub prime: Option<String>,
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
    let result = match args.output {
        Some(_) => sample_to_file(&args),
        None => sample_text(&args),
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
    match &text.weights {
        Some(path) => eprintln!("model {}: weights from {}", text.model, path.display()),
        None => eprintln!("model {}: untrained, initialised from seed {}", text.model, args.seed),
    }
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
    match &samples.weights {
        Some(path) => eprintln!("model {}: weights from {}", samples.model, path.display()),
        None => eprintln!("model {}: untrained, initialised from seed {}", samples.model, args.seed),
    }
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
