//! `wick train SPEC [--config FILE]`: train a spec on its data, as its `train` section (or the
//! configuration file) says; flags override either.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use wick::diag::RenderStyle;
use wick::lower::device::DeviceChoice;
use wick::lower::LowerError;
use wick::train::config::source::{read_config, SourceError};
use wick::train::config::{Overrides, TrainConfig};
use wick::train::data::DataError;
use wick::train::fit::{Cancel, Stop};
use wick::train::kfold::{folds_of, train_folds};
use wick::train::lr_find::RangeTest;
use wick::train::observe::{final_report, folds_report, Progress};
use wick::train::run::{out_dir, train_compiled, RunOptions, TrainError, TrainReport};
use wick::train::session::compile;
use wick::Compiled;

use super::{EXIT_SPEC, EXIT_USAGE};

/// What `train` and `lr-find` both take: the spec, its configuration, the run folder and the
/// report's form.
#[derive(Args, Debug)]
pub struct RunTarget {
    /// The spec file; its first input's leading dim is the batch.
    pub spec: String,
    /// A YAML training configuration, used instead of the spec's `train` section.
    #[arg(long)]
    pub config: Option<String>,
    /// The run folder (checkpoints, metrics log, curves, report, the range test's table and
    /// plot); default `runs/<spec name>`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub run: RunTarget,
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
    /// Continue from the run folder's checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// With --resume: continue even where the settings differ from the checkpoint's (each
    /// change is printed); without it such a resume is refused, as it would not be exact.
    #[arg(long, requires = "resume")]
    pub allow_changes: bool,
    /// Start even when the summary's training-memory estimate exceeds the memory available.
    #[arg(long)]
    pub skip_memory_check: bool,
    /// k-fold cross-validation: train one model per fold (in `fold1`, ... of the run folder)
    /// and report each validation figure's mean and deviation over the folds.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub kfold: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct LrFindArgs {
    #[command(flatten)]
    pub run: RunTarget,
    /// The first rate of the sweep.
    #[arg(long, default_value_t = 1e-7)]
    pub start: f64,
    /// The last rate of the sweep.
    #[arg(long, default_value_t = 10.0)]
    pub end: f64,
    /// Optimizer steps in the sweep.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
}

/// The spec compiled once, and the configuration (its `train` section or the file); or the
/// exit code after saying why there is none.
fn config_for(run: &RunTarget) -> Result<(Compiled, TrainConfig, PathBuf), ExitCode> {
    spec_config(&run.spec, run.config.as_deref())
}

/// [`config_for`] from the spec's path and the `--config` file, if any.
pub(super) fn spec_config(
    spec: &str,
    config: Option<&str>,
) -> Result<(Compiled, TrainConfig, PathBuf), ExitCode> {
    let compiled = compile(spec, None).map_err(fail)?;
    let style = RenderStyle { fancy: std::io::stderr().is_terminal(), width: 100 };
    let (config, dir) = read_config(spec, &compiled, config, style).map_err(source_error)?;
    Ok((compiled, config, dir))
}

/// Say why no configuration could be read; the exit code that says it.
pub(super) fn source_error(e: SourceError) -> ExitCode {
    match e {
        SourceError::Usage(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        SourceError::Invalid(rendered) => {
            eprint!("{rendered}");
            ExitCode::from(EXIT_SPEC)
        }
    }
}

pub(super) fn fail(e: TrainError) -> ExitCode {
    eprintln!("error: {e}");
    let cause = match &e {
        TrainError::Stopped { cause, .. } => cause.as_ref(),
        e => e,
    };
    // 1 for what the spec or the configuration says (the data not fitting the model is a
    // configuration's doing); 2 for files that cannot be read and everything at run time.
    match cause {
        TrainError::Lower(LowerError::Spec(_))
        | TrainError::Data(DataError::Config(_) | DataError::Mismatch(_)) => ExitCode::from(EXIT_SPEC),
        _ => ExitCode::from(EXIT_USAGE),
    }
}

pub fn lr_find(args: LrFindArgs) -> ExitCode {
    // lr-find's library entry compiles the spec itself.
    let (_, config, dir) = match config_for(&args.run) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let options = RunOptions { out: args.run.out.clone(), ..Default::default() };
    let out = match out_dir(&args.run.spec, &config, &dir, &options) {
        Ok(out) => out,
        Err(e) => return fail(e),
    };
    let test = RangeTest { start: args.start, end: args.end, steps: args.steps };
    match wick::train::lr_find::lr_find(&args.run.spec, &config, &dir, &test, &out) {
        Ok(report) => {
            match args.run.format {
                ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default())
                }
                ReportFormat::Text => {
                    let ended = if report.diverged { "the loss diverged" } else { "the sweep ended" };
                    let last = report.points.last().map_or(0.0, |p| p.lr);
                    println!("{} steps up to lr {last:.2e}, where {ended}", report.points.len());
                    match report.suggested {
                        Some(lr) => println!(
                            "Suggested learning rate: {lr:.2e} (halfway down the loss's longest descent)"
                        ),
                        None => {
                            println!("No suggestion: the loss never fell; try a wider sweep (--start, --end)")
                        }
                    }
                    println!("Curve  {}\nTable  {}", report.plot, report.csv);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn run(args: TrainArgs) -> ExitCode {
    let (compiled, mut config, dir) = match config_for(&args.run) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let overrides = Overrides {
        epochs: args.epochs,
        max_steps: args.max_steps,
        lr: args.lr,
        batch_size: args.batch_size,
        seed: args.seed,
        device: args.device,
        init: args.init.clone(),
        kfold: args.kfold.map(|k| k as usize),
    };
    if let Err(e) = config.apply(&overrides) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let options = RunOptions {
        resume: args.resume,
        allow_changes: args.allow_changes,
        out: args.run.out.clone(),
        skip_memory_check: args.skip_memory_check,
        cancel: Cancel::default(),
    };
    let progress = match args.run.format {
        ReportFormat::Text => Progress::stderr(),
        ReportFormat::Json => Progress::quiet(),
    };
    install_interrupt_handler(options.cancel.clone());
    if let Some(k) = folds_of(&config) {
        return train_each_fold(&args, &config, &dir, &options, k);
    }
    match train_compiled(&args.run.spec, compiled, &config, &dir, &options, Box::new(progress)) {
        Ok(report) => {
            match args.run.format {
                ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default())
                }
                ReportFormat::Text => print_report(&report),
            }
            // As a shell reports a process ended by SIGINT, so scripts can tell.
            if report.stopped == Stop::Interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(e),
    }
}

/// `--kfold k` (or `val: {kfold: k}`): a run per fold, then the figures over the folds.
fn train_each_fold(
    args: &TrainArgs,
    config: &TrainConfig,
    dir: &std::path::Path,
    options: &RunOptions,
    k: usize,
) -> ExitCode {
    let text = args.run.format == ReportFormat::Text;
    let progress = |index: usize| -> Box<dyn wick::train::observe::Observer> {
        if text {
            eprintln!("fold {}/{k}", index + 1);
            Box::new(Progress::stderr())
        } else {
            Box::new(Progress::quiet())
        }
    };
    match train_folds(&args.run.spec, config, dir, options, progress) {
        Ok(report) => {
            match args.run.format {
                ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default())
                }
                ReportFormat::Text => folds_report(&report).iter().for_each(|line| println!("{line}")),
            }
            let interrupted = report.folds.last().is_some_and(|r| r.stopped == Stop::Interrupted);
            if interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(e),
    }
}

/// Ctrl-C stops the loop after the step in flight; a second one ends the process at once.
pub(super) fn install_interrupt_handler(cancel: Cancel) {
    let _ = ctrlc::set_handler(move || {
        if cancel.request() {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after this step; the last checkpoint is kept");
    });
}

fn print_report(report: &TrainReport) {
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    for line in final_report(report) {
        println!("{line}");
    }
}
