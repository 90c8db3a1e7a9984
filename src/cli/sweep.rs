//! `wick sweep SPEC --grid KEY=V1,V2 ... | --random N --range KEY=LO:HI[:log]`: one training
//! run per setting, each in its own folder, then the runs ranked by the monitored figure.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use wick::diag::RenderStyle;
use wick::train::config::source::read_config_value;
use wick::train::fit::Cancel;
use wick::train::observe::{Observer, Progress};
use wick::train::run::{out_dir, RunOptions};
use wick::train::session::compile;
use wick::train::sweep::settings::Surface;
use wick::train::sweep::{run_sweep, shown, trials, Axis, Range, Row, Search, SweepOptions, Trial};

use super::train::{fail, install_interrupt_handler, source_error, ReportFormat};
use super::EXIT_USAGE;

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The spec file, with a `train` section (or --config).
    pub spec: String,
    /// A YAML training configuration, used instead of the spec's `train` section.
    #[arg(long)]
    pub config: Option<String>,
    /// The values a training key takes: `--grid lr=1e-3,3e-3 --grid batch_size=32,64` runs
    /// every combination. Keys are the `train` section's (`optimizer.momentum`,
    /// `schedule.warmup`); `lr` is `optimizer.lr`.
    #[arg(long, value_name = "KEY=V1,V2,...", value_parser = Axis::parse)]
    pub grid: Vec<Axis>,
    /// Draw this many configurations at random instead of the grid: each --range drawn from
    /// its interval, each --grid key one of its values.
    #[arg(long, value_name = "N")]
    pub random: Option<usize>,
    /// An interval for --random: `lr=1e-4:1e-1:log` (log-uniform), `l1=0:1e-3` (uniform),
    /// `epochs=5:20:int` (whole numbers).
    #[arg(long, value_name = "KEY=LO:HI[:log][:int]", value_parser = Range::parse)]
    pub range: Vec<Range>,
    /// Seeds the random draws (a run's own seed is its `seed` key).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A setting every run gets: `--set epochs=5`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub fixed: Vec<(String, String)>,
    /// Runs trained at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// The sweep's folder (a run folder per run, `results.md`, `results.json`); default
    /// `sweep` in the spec's run folder (`runs/<spec name>/sweep`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start even when the training-memory estimate exceeds the memory available.
    #[arg(long)]
    pub skip_memory_check: bool,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((wick::train::sweep::search::canonical_key(k), v.trim().to_string()))
        }
        _ => Err(format!("expected KEY=VALUE (`epochs=5`), found `{s}`")),
    }
}

pub fn run(args: SweepArgs) -> ExitCode {
    let compiled = match compile(&args.spec, None) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let style = RenderStyle { fancy: std::io::stderr().is_terminal(), width: 100 };
    let (config, value, dir) = match read_config_value(&args.spec, &compiled, args.config.as_deref(), style) {
        Ok(read) => read,
        Err(e) => return source_error(e),
    };
    let search =
        Search { grid: args.grid.clone(), ranges: args.range.clone(), random: args.random, seed: args.seed };
    let trials = match trials(&value, &args.fixed, &search) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let out = match &args.out {
        Some(out) => out.clone(),
        None => match out_dir(&args.spec, &config, &dir, &RunOptions::default()) {
            Ok(run) => run.join("sweep"),
            Err(e) => return fail(e),
        },
    };
    let options = SweepOptions {
        out: out.clone(),
        jobs: usize::from(args.jobs),
        run: RunOptions {
            skip_memory_check: args.skip_memory_check,
            cancel: Cancel::default(),
            ..Default::default()
        },
    };
    install_interrupt_handler(options.run.cancel.clone());
    let text = args.format == ReportFormat::Text;
    let (count, jobs) = (trials.len(), options.jobs);
    if text {
        eprintln!("{count} runs in `{}`, {jobs} at a time", out.display());
    }
    // One run at a time draws its progress; several at once would garble each other's bars.
    let observer = |trial: &Trial| -> Box<dyn Observer> {
        if text && jobs == 1 {
            eprintln!("run {}/{count}: {}", trial.index, shown(&trial.settings));
            Box::new(Progress::stderr())
        } else {
            Box::new(Progress::quiet())
        }
    };
    let done = |row: &Row| {
        if text {
            match &row.result {
                Ok(_) if jobs == 1 => {}
                Ok(r) => eprintln!(
                    "run {}/{count} done ({} epochs): {}",
                    row.index,
                    r.epochs,
                    shown(&row.settings)
                ),
                Err(e) => eprintln!("run {}/{count} failed: {e}", row.index),
            }
        }
    };
    let report = run_sweep(&args.spec, &trials, &dir, &options, &observer, &done);
    let surface = match (&args.config, args.spec.ends_with(".wick")) {
        (Some(_), _) => Surface::ConfigFile,
        (None, true) => Surface::Wick,
        (None, false) => Surface::YamlSpec,
    };
    let best = report.best_section(&trials, surface);
    let written = report.write(&out, best.as_deref());
    match args.format {
        ReportFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&report.json(best.as_deref())).unwrap_or_default())
        }
        ReportFormat::Text => {
            println!("Ranked by {} (its best epoch in each run):\n", report.monitor);
            print!("{}", report.markdown());
            match &best {
                Some(section) => println!("\nThe best run's configuration:\n\n{section}"),
                None => println!("\nNo run measured {}.", report.monitor),
            }
            if report.rows.len() < report.planned {
                println!("Stopped after {} of {} runs.", report.rows.len(), report.planned);
            }
            if let Ok((md, json)) = &written {
                println!("Results  {}\n         {}", md.display(), json.display());
            }
        }
    }
    if let Err(e) = written {
        eprintln!("error: cannot write the results in `{}`: {e}", out.display());
        return ExitCode::from(EXIT_USAGE);
    }
    if options.run.cancel.requested() {
        ExitCode::from(130)
    } else if report.failed() == report.rows.len() {
        eprintln!("error: every run failed");
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}
