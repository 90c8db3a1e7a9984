//! `wick train SPEC [--config FILE]`: train a spec on its data, as its `train` section (or the
//! configuration file) says; flags override either.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use wick::diag::RenderStyle;
use wick::lower::device::DeviceChoice;
use wick::train::config::source::{read_config, SourceError};
use wick::train::observe::{final_report, Progress, Totals};
use wick::train::run::{train, RunOptions, TrainError, TrainReport};

use super::{EXIT_SPEC, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The spec file; its first input's leading dim is the batch.
    pub spec: String,
    /// A YAML training configuration, used instead of the spec's `train` section.
    #[arg(long)]
    pub config: Option<String>,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many optimizer steps.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// The optimizer's learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    /// Start from these weights (safetensors keyed like a PyTorch `state_dict`) instead of the
    /// configuration's `init`.
    #[arg(long)]
    pub init: Option<String>,
    /// The run folder (checkpoints, metrics log, curves, report); default `runs/<spec name>`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the run folder's checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

pub fn run(args: TrainArgs) -> ExitCode {
    let style = RenderStyle { fancy: std::io::stderr().is_terminal(), width: 100 };
    let (mut config, dir) = match read_config(&args.spec, args.config.as_deref(), style) {
        Ok(c) => c,
        Err(SourceError::Usage(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(SourceError::Invalid(rendered)) => {
            eprint!("{rendered}");
            return ExitCode::from(EXIT_SPEC);
        }
    };
    config.epochs = args.epochs.unwrap_or(config.epochs);
    config.max_steps = args.max_steps.or(config.max_steps);
    config.batch_size = args.batch_size.unwrap_or(config.batch_size);
    config.seed = args.seed.unwrap_or(config.seed);
    config.device = args.device.unwrap_or(config.device);
    if let Some(init) = &args.init {
        // A path typed on the command line is relative to where it was typed.
        let absolute = std::env::current_dir().map(|d| d.join(init)).unwrap_or_else(|_| init.into());
        config.init = Some(absolute.display().to_string());
    }
    if let Some(lr) = args.lr {
        *config.optimizer.lr_mut() = lr;
    }
    let options = RunOptions { resume: args.resume, out: args.out.clone() };
    let progress = match args.format {
        ReportFormat::Text => Progress::stderr(),
        ReportFormat::Json => Progress::quiet(),
    };
    match train(&args.spec, &config, &dir, &options, Box::new(progress)) {
        Ok(report) => {
            match args.format {
                ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default())
                }
                ReportFormat::Text => print_report(&report),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                TrainError::Lower(_) | TrainError::Data(_) => ExitCode::from(EXIT_SPEC),
                _ => ExitCode::from(EXIT_USAGE),
            }
        }
    }
}

fn print_report(report: &TrainReport) {
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let stopped = match report.stopped {
        "early_stopped" => Some("the monitored metric stopped improving".to_string()),
        "max_steps" => Some(format!("reached max_steps ({})", report.steps)),
        "interrupted" => Some("interrupted; resume with --resume".to_string()),
        _ => None,
    };
    let totals = Totals {
        epochs: report.epochs,
        best_epoch: report.best_epoch,
        train_loss: report.train_loss,
        val_loss: report.val_loss,
        val_accuracy: report.val_accuracy,
        samples_per_s: report.samples_per_s,
        stopped,
        checkpoint: Some(report.checkpoint.clone().into()),
        log: Some(report.log.clone().into()),
        plot: Some(report.plot.clone().into()),
    };
    for line in final_report(&report.history, &totals) {
        println!("{line}");
    }
}
