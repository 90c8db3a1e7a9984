//! `wick train SPEC --config FILE`: train a spec on a data set, as the configuration says.

use std::path::Path;
use std::process::ExitCode;

use candle_core::Device;
use clap::{Args, ValueEnum};

use wick::train::config::TrainConfig;
use wick::train::run::{train, TrainError};

use super::{EXIT_SPEC, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The spec file; its first input's leading dim is the batch.
    pub spec: String,
    /// The training configuration (YAML): data, optimizer, epochs, batch size, seed, checkpoints.
    #[arg(long)]
    pub config: String,
    /// Override the configuration's epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override the optimizer's learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override the configuration's batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Override the configuration's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

pub fn run(args: TrainArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", args.config);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut config = match TrainConfig::from_yaml(&text) {
        Ok(c) => c,
        Err(e) => {
            let at = e.location().map_or(String::new(), |l| format!(":{}:{}", l.line(), l.column()));
            eprintln!("error: {}{at}: {e}", args.config);
            return ExitCode::from(EXIT_SPEC);
        }
    };
    config.epochs = args.epochs.unwrap_or(config.epochs);
    config.batch_size = args.batch_size.unwrap_or(config.batch_size);
    config.seed = args.seed.unwrap_or(config.seed);
    if let Some(lr) = args.lr {
        *config.optimizer.lr_mut() = lr;
    }
    let dir = Path::new(&args.config).parent().unwrap_or(Path::new("."));
    match train(&args.spec, &config, dir, &Device::Cpu) {
        Ok(report) => {
            match args.format {
                ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default())
                }
                ReportFormat::Text => {
                    println!("epoch  lr        train_loss  val_loss  val_accuracy");
                    for e in &report.history {
                        println!(
                            "{:>5}  {:<8.2e}  {:>10.4}  {:>8.4}  {:>12.4}",
                            e.epoch, e.lr, e.train_loss, e.val_loss, e.val_accuracy
                        );
                    }
                    println!(
                        "best epoch {} (lowest validation loss); {:.0} samples/s; {} rows left out for whole batches",
                        report.best_epoch, report.samples_per_s, report.dropped_rows
                    );
                }
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
