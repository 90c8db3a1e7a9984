//! `wick export`: a spec and its trained weights as an ONNX model.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use wick::lower::LowerError;
use wick::onnx::{self, weights, Placement, DEFAULT_OPSET};
use wick::train::folder;
use wick::Model;

use super::{SpecArgs, EXIT_SPEC, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Weights (.safetensors keyed like a PyTorch state_dict); default: the spec's run folder,
    /// as for `wick run`.
    #[arg(long)]
    pub weights: Option<String>,
    /// The ONNX file to write.
    #[arg(short = 'o', long = "output")]
    pub output: String,
    /// The ONNX operator set (17 to 20).
    #[arg(long, default_value_t = DEFAULT_OPSET)]
    pub opset: i64,
    /// Write the weights beside the model, in OUTPUT.data (ONNX external data), even when the
    /// model would fit in one file; without it they go there only past protobuf's 2 GiB.
    #[arg(long)]
    pub external_data: bool,
}

pub fn run(args: ExportArgs) -> ExitCode {
    super::report(export(&args))
}

fn export(args: &ExportArgs) -> Result<String, (u8, String)> {
    let usage = |e: String| (EXIT_USAGE, e);
    let model = Model::from_file(&args.spec.spec, &args.spec.options()).map_err(|e| match e {
        LowerError::Spec(_) => (EXIT_SPEC, e.to_string()),
        other => (EXIT_USAGE, other.to_string()),
    })?;
    let graph = model.graph();
    let path = match &args.weights {
        Some(w) => w.into(),
        None => folder::default_weights(&args.spec.spec, &graph.name)
            .map_err(|looked| usage(format!("{looked}; train the spec first, or pass --weights FILE")))?,
    };
    let values = weights::read_safetensors(&path)
        .map_err(|e| usage(format!("cannot read weights {}: {e}", path.display())))?;
    let output = Path::new(&args.output);
    let location = weights::external_location(output);
    let placement =
        if args.external_data { Placement::External(&location) } else { Placement::Auto(&location) };
    let exported =
        onnx::export_placed(graph, &values, args.opset, placement).map_err(|e| usage(e.to_string()))?;
    weights::write_exported(&exported, &values, output)
        .map_err(|e| usage(format!("cannot write {}: {e}", args.output)))?;
    let g = exported.model.graph.unwrap_or_default();
    let beside = match &exported.external {
        Some(file) => {
            format!("; {} of them ({} bytes) in {} beside it", file.tensors.len(), file.bytes, file.location)
        }
        None => String::new(),
    };
    Ok(format!(
        "wrote {}: model {}, {} ONNX nodes, {} initializers{beside}, opset {}",
        args.output,
        graph.name,
        g.node.len(),
        g.initializer.len(),
        args.opset
    ))
}
