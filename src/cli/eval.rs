//! `wick eval SPEC [--weights W] [--data FILE]`: a trained model's loss and metrics on its
//! test (else validation) split or a file, as text or JSON, and the confusion matrix as a PNG.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use wick::eval::{picture, render, spec};
use wick::lower::device::{self, DeviceChoice};
use wick::train::run::TrainError;

use super::train::{fail, spec_config, ReportFormat};
use super::EXIT_USAGE;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The spec file; its `train` section (or --config) says what the data is and how it is read.
    pub spec: String,
    /// A YAML training configuration, used instead of the spec's `train` section.
    #[arg(long)]
    pub config: Option<String>,
    /// Weights (.safetensors); default: `runs/<spec name>/<Model>.safetensors`, else
    /// `runs/<spec name>/weights.safetensors`.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Evaluate on this file (CSV, .npz or .safetensors, read with the data section's columns
    /// or arrays, shape and dtype) instead of the spec's test or validation split.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Give the inputs as read, without the preprocessing (standardisation, rescale) the
    /// weights record.
    #[arg(long)]
    pub raw: bool,
    /// Also draw the confusion matrix to this PNG file.
    #[arg(long)]
    pub confusion: Option<PathBuf>,
    /// Rows a forward pass; default: the training configuration's batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

pub fn run(args: EvalArgs) -> ExitCode {
    let (compiled, config, config_dir) = match spec_config(&args.spec, args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (device, note) = match device::select(args.device) {
        Ok(d) => d,
        Err(e) => return fail(TrainError::Usage(e)),
    };
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let model = compiled.graph.as_ref().map(|g| g.name.clone()).unwrap_or_default();
    let weights = match &args.weights {
        Some(w) => w.clone(),
        None => match wick::train::folder::default_weights(&args.spec, &model) {
            Ok(found) => found,
            Err(looked) => {
                eprintln!("error: {looked}; train the spec first, or pass --weights FILE");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    eprintln!("model {model}: weights from {}", weights.display());
    let request = spec::Request {
        compiled,
        config,
        config_dir,
        weights,
        data: args.data.clone(),
        raw: args.raw,
        batch_size: args.batch_size,
        device,
    };
    let (report, notes) = match spec::run(request) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    for note in notes {
        eprintln!("note: {note}");
    }
    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
        ReportFormat::Text => print!("{}", render::text(&report)),
    }
    if let Some(path) = &args.confusion {
        let Some(confusion) = report.outputs.iter().find_map(|o| o.confusion.as_ref()) else {
            eprintln!("error: --confusion: the model's output has no classes, so no confusion matrix");
            return ExitCode::from(EXIT_USAGE);
        };
        let written = picture::confusion_png(confusion).map_err(|e| e.to_string()).and_then(|png| {
            wick::train::files::replace_file(path, |tmp| std::fs::write(tmp, &png)).map_err(|e| e.to_string())
        });
        if let Err(e) = written {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            return ExitCode::from(EXIT_USAGE);
        }
        eprintln!("wrote the confusion matrix to {}", path.display());
    }
    ExitCode::SUCCESS
}
