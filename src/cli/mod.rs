//! Command-line arguments, one clap struct per subcommand, turned into library calls.

// The CLI's `print!`, `println!`, `eprint!` and `eprintln!`. std's panic when the stream is
// gone (`wick ... | head -1`, `> /dev/full`: Rust ignores SIGPIPE, so a write to a closed pipe
// is an error); these end the process quietly instead (`output`). Defined before the
// subcommands' modules, so every line a command prints goes through them.
macro_rules! print {
    ($($arg:tt)*) => { $crate::cli::output::stdout(format_args!($($arg)*)) };
}
macro_rules! println {
    () => { $crate::cli::output::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::output::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::cli::output::stderr(format_args!($($arg)*)) };
}
macro_rules! eprintln {
    () => { $crate::cli::output::stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::output::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

mod output;
pub use output::parse_args;

mod catalog;
#[cfg(feature = "lower")]
mod eval;
#[cfg(feature = "onnx")]
mod export;
mod graph;
#[cfg(feature = "onnx")]
mod import;
#[cfg(feature = "lower")]
mod run;
#[cfg(feature = "lower")]
mod sample;
#[cfg(feature = "lower")]
mod sweep;
#[cfg(feature = "lower")]
mod train;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use wick::diag::RenderStyle;
use wick::report::{self, TableStyle};
use wick::{Compiled, Options};

/// Exit codes: 0 success, 1 errors in the spec, 2 usage or I/O errors, 141 standard output
/// closed early (as a shell reports a process that SIGPIPE ended).
pub const EXIT_SPEC: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_BROKEN_PIPE: u8 = 141;

#[derive(Parser, Debug)]
#[command(
    name = "wick",
    version,
    about = "A declarative model-graph compiler: specs in, checked graphs and exact summaries out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// With an error, print where in wick it arose (a backtrace) too.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a spec and print its diagnostics.
    Check(SpecArgs),
    /// Compile a spec; with --summary print its layers, parameters, MACs and memory; with -o
    /// save freshly initialised weights.
    Compile(CompileArgs),
    /// Run a model on inputs from files and write its outputs.
    #[cfg(feature = "lower")]
    Run(run::RunArgs),
    /// Train a spec as its `train` section (or `--config`) says: progress, checkpoints, curves.
    #[cfg(feature = "lower")]
    Train(train::TrainArgs),
    /// Train once per setting (`--grid lr=1e-3,3e-3`, or `--random N --range lr=1e-4:1e-1:log`),
    /// each run in its own folder, then rank the runs by the monitored figure.
    #[cfg(feature = "lower")]
    Sweep(sweep::SweepArgs),
    /// The learning-rate range test: the loss against a growing rate, and a suggested rate.
    #[cfg(feature = "lower")]
    LrFind(train::LrFindArgs),
    /// Evaluate trained weights on the spec's test (or validation) split or a file: the loss,
    /// and accuracy, F1, confusion matrix, R², IoU or ROC-AUC as the task calls for.
    #[cfg(feature = "lower")]
    Eval(eval::EvalArgs),
    /// Run a generator on seeded latent draws; write the samples (.npy, .safetensors, .png grid).
    #[cfg(feature = "lower")]
    Sample(sample::SampleArgs),
    /// Write a spec and its weights as an ONNX model (eval mode: dropout removed, batch norm
    /// with its running statistics).
    #[cfg(feature = "onnx")]
    Export(export::ExportArgs),
    /// Write an ONNX model as a readable spec (layers named from its nodes, repeated blocks as
    /// `repeat`), with --weights-out its weights under the spec's keys.
    #[cfg(feature = "onnx")]
    Import(import::ImportArgs),
    /// Draw a spec: blocks as clusters, shapes on edges, params on nodes (DOT, Mermaid, SVG).
    Graph(graph::GraphArgs),
    /// Compile every spec in a folder; one row each: params, running stats, MACs, shapes.
    Catalog(catalog::CatalogArgs),
    /// List every op with its signature (tensor inputs, then attributes with their defaults).
    Ops,
    /// List every block of the bundled library (`use "std/..."`) with its signature.
    Blocks,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// The spec file (.wick, .yaml or .yml).
    pub spec: String,
    /// Which model to build when the file defines several.
    #[arg(long)]
    pub model: Option<String>,
    /// Values for dims, overriding the spec's examples: `--bind N=8,T=128`.
    #[arg(long, value_delimiter = ',', value_parser = parse_binding)]
    pub bind: Vec<(String, i64)>,
    /// Ignore the spec's example dim values: shapes and MACs stay symbolic unless bound.
    #[arg(long)]
    pub symbolic: bool,
}

#[derive(Args, Debug)]
pub struct CompileArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Print the summary.
    #[arg(long)]
    pub summary: bool,
    /// Fold paths deeper than this into their block's row.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Save weights with PyTorch's default initialisation to this .safetensors file.
    #[cfg(feature = "lower")]
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// Seed of the initialisation (each parameter draws from its own stream of it).
    #[cfg(feature = "lower")]
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Md,
    Csv,
}

/// A command's outcome: its one line of news on standard error and success, or its error and
/// exit code.
#[cfg(feature = "onnx")]
fn report(outcome: Result<String, (u8, String)>) -> ExitCode {
    match outcome {
        Ok(line) => {
            eprintln!("{line}");
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("error: {}", message.trim_end());
            ExitCode::from(code)
        }
    }
}

fn parse_binding(s: &str) -> Result<(String, i64), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("expected NAME=VALUE, found `{s}`"))?;
    let value: i64 = value.trim().parse().map_err(|_| format!("`{value}` is not an integer"))?;
    if value < 1 {
        return Err(format!("dims must be at least 1, found {value}"));
    }
    Ok((name.trim().to_string(), value))
}

impl SpecArgs {
    pub(crate) fn options(&self) -> Options {
        Options {
            model: self.model.clone(),
            bind: self.bind.clone(),
            symbolic: self.symbolic,
            max_nodes: None,
        }
    }

    fn compile(&self) -> Result<Compiled, ExitCode> {
        wick::compile_file(&self.spec, &self.options()).map_err(|e| {
            eprintln!("error: cannot read `{}`: {e}", self.spec);
            ExitCode::from(EXIT_USAGE)
        })
    }
}

fn print_diagnostics(c: &Compiled) {
    let fancy = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let style = RenderStyle { fancy, width: 100 };
    eprint!("{}", c.render_diagnostics(style));
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Graph(args) => graph::run(args),
        Command::Catalog(args) => catalog::run(args),
        Command::Blocks => {
            print!("{}", wick::elab::library::listing());
            ExitCode::SUCCESS
        }
        Command::Ops => {
            print!("{}", wick::ops::listing());
            print!("\nFunctions on numbers (compile time):\n{}", wick::elab::functions::listing());
            ExitCode::SUCCESS
        }
        Command::Check(args) => {
            let c = match args.compile() {
                Ok(c) => c,
                Err(code) => return code,
            };
            print_diagnostics(&c);
            if c.diagnostics.has_errors() {
                return ExitCode::from(EXIT_SPEC);
            }
            if let (Some(g), Some(a)) = (&c.graph, &c.analysis) {
                println!("ok: model {} has {} parameters", g.name, report::thousands(a.total_params()));
            }
            ExitCode::SUCCESS
        }
        Command::Compile(args) => {
            let c = match args.spec.compile() {
                Ok(c) => c,
                Err(code) => return code,
            };
            print_diagnostics(&c);
            // A `--bind` naming no dim is a mistyped flag: a table at the dims the spec gives
            // would pass for the one asked for.
            if c.diagnostics.items.iter().any(|d| d.code == "E0214") {
                return ExitCode::from(EXIT_SPEC);
            }
            if args.summary {
                if let Some(s) = c.partial_summary(args.depth) {
                    let tty = std::io::stdout().is_terminal();
                    let style =
                        TableStyle { unicode: tty, color: tty && std::env::var_os("NO_COLOR").is_none() };
                    let text = match args.format {
                        Format::Table => report::render_table(&s, style),
                        Format::Json => report::render_json(&s),
                        Format::Md => report::render_markdown(&s),
                        Format::Csv => report::render_csv(&s),
                    };
                    print!("{text}");
                }
            } else if !c.diagnostics.has_errors() {
                if let (Some(g), Some(a)) = (&c.graph, &c.analysis) {
                    println!("compiled model {}: {} parameters", g.name, report::thousands(a.total_params()));
                }
            }
            if c.diagnostics.has_errors() {
                return ExitCode::from(EXIT_SPEC);
            }
            #[cfg(feature = "lower")]
            if let Some(path) = &args.output {
                return run::save_initial_weights(&args.spec, path, args.seed);
            }
            ExitCode::SUCCESS
        }
        #[cfg(feature = "lower")]
        Command::Run(args) => run::run(args),
        #[cfg(feature = "lower")]
        Command::Train(args) => train::run(args),
        #[cfg(feature = "lower")]
        Command::Sweep(args) => sweep::run(args),
        #[cfg(feature = "lower")]
        Command::LrFind(args) => train::lr_find(args),
        #[cfg(feature = "lower")]
        Command::Sample(args) => sample::run(args),
        #[cfg(feature = "lower")]
        Command::Eval(args) => eval::run(args),
        #[cfg(feature = "onnx")]
        Command::Export(args) => export::run(args),
        #[cfg(feature = "onnx")]
        Command::Import(args) => import::run(args),
    }
}
