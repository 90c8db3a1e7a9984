//! `wick import`: an ONNX model as a readable spec, and its weights under the spec's keys.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use wick::onnx::to_spec::{self, ConvertError};
use wick::onnx::weights;
use wick::train::files;
use wick::Options;

use super::{parse_binding, EXIT_SPEC, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The ONNX model (.onnx).
    pub model: String,
    /// The spec to write (.wick).
    #[arg(short = 'o', long = "output")]
    pub output: String,
    /// Write the model's weights here (.safetensors), under the spec's parameter keys, so
    /// `wick run SPEC --weights FILE` runs the imported model.
    #[arg(long)]
    pub weights_out: Option<String>,
    /// Values for the model's named dims, written into the spec: `--bind N=1`.
    #[arg(long, value_delimiter = ',', value_parser = parse_binding)]
    pub bind: Vec<(String, i64)>,
}

pub fn run(args: ImportArgs) -> ExitCode {
    super::report(import(&args))
}

fn import(args: &ImportArgs) -> Result<String, (u8, String)> {
    let usage = |e: String| (EXIT_USAGE, e);
    let bytes = files::read_regular(Path::new(&args.model))
        .map_err(|e| usage(format!("cannot read `{}`: {e}", args.model)))?;
    let opts = Options { bind: args.bind.clone(), ..Options::default() };
    let converted = to_spec::to_spec(&bytes, &args.model, &args.output, &opts).map_err(|e| match e {
        ConvertError::Import(_) | ConvertError::Model(_) => (EXIT_SPEC, e.to_string()),
        other => usage(other.to_string()),
    })?;
    // The weights first: a spec is only written beside the weights that go with it.
    if let Some(out) = &args.weights_out {
        weights::write_safetensors(&converted.weights, Path::new(out))
            .map_err(|e| usage(format!("cannot write {out}: {e}")))?;
    }
    files::replace_file(Path::new(&args.output), |tmp| std::fs::write(tmp, &converted.text))
        .map_err(|e| usage(format!("cannot write {}: {e}", args.output)))?;
    let mut line = format!(
        "wrote {}: model {}, {} parameters{}",
        args.output,
        converted.model,
        converted.params,
        match &args.weights_out {
            Some(w) => format!(", weights in {w}"),
            None => String::new(),
        }
    );
    for (from, to) in &converted.io_renames {
        line.push_str(&format!("\n  `{from}` is `{to}` in the spec"));
    }
    Ok(line)
}
