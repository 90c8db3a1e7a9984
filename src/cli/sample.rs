//! `wick sample SPEC -o FILE`: a generator's outputs for seeded latent draws, as arrays or a
//! PNG grid.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use wick::lower::device::{self, DeviceChoice};
use wick::sample::{self, Format, Request, SampleError, Weights};

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
    /// [n, 1 or 3, h, w] images).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
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
    match sample_to_file(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.to_string().trim_end());
            ExitCode::from(if matches!(e, SampleError::Spec(_)) { EXIT_SPEC } else { EXIT_USAGE })
        }
    }
}

fn sample_to_file(args: &SampleArgs) -> Result<(), SampleError> {
    Format::of(&args.output)?;
    let (device, note) = device::select(args.device).map_err(SampleError::Usage)?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let weights = match (&args.weights, args.random_weights) {
        (Some(path), _) => Weights::File(path.clone()),
        (None, true) => Weights::Random,
        (None, false) => Weights::RunFolder,
    };
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
    sample::write(&args.output, &samples.outputs, range)?;
    let shapes: Vec<String> = samples.outputs.iter().map(|(k, t)| format!("{k} {:?}", t.dims())).collect();
    eprintln!("wrote {} to {}", shapes.join(", "), args.output.display());
    Ok(())
}
