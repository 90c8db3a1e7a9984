//! `wick graph`: draw a compiled spec as DOT, Mermaid or SVG.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use wick::report::graph;

use super::{print_diagnostics, SpecArgs, EXIT_SPEC, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct GraphArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Picture format; by default taken from the -o file's extension, else DOT.
    #[arg(long, value_enum)]
    pub format: Option<GraphFormat>,
    /// Draw blocks deeper than this as one node each (at least 1).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Write the picture to this file instead of standard output.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Svg,
}

impl GraphFormat {
    fn from_extension(path: &std::path::Path) -> Option<GraphFormat> {
        match path.extension()?.to_str()? {
            "dot" | "gv" => Some(GraphFormat::Dot),
            "mmd" | "mermaid" => Some(GraphFormat::Mermaid),
            "svg" => Some(GraphFormat::Svg),
            _ => None,
        }
    }
}

pub fn run(args: GraphArgs) -> ExitCode {
    let c = match args.spec.compile() {
        Ok(c) => c,
        Err(code) => return code,
    };
    print_diagnostics(&c);
    let (Some(g), Some(a)) = (&c.graph, &c.analysis) else { return ExitCode::from(EXIT_SPEC) };
    if c.diagnostics.has_errors() {
        return ExitCode::from(EXIT_SPEC);
    }
    let drawing = graph::build(g, a, args.depth);
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(GraphFormat::from_extension))
        .unwrap_or(GraphFormat::Dot);
    let text = match format {
        GraphFormat::Dot => graph::render_dot(&drawing),
        GraphFormat::Mermaid => graph::render_mermaid(&drawing),
        GraphFormat::Svg => graph::render_svg(&drawing),
    };
    match &args.output {
        Some(path) => {
            if let Err(e) = wick::train::files::replace_file(path, |tmp| std::fs::write(tmp, &text)) {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
        }
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}
