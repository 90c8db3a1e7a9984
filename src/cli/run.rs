//! `wick compile -o` (initialise and save weights) and `wick run` (inference from files).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;

use candle_core::{DType, Device, Tensor};
use clap::{Args, ValueEnum};

use wick::lower::device::{self, DeviceChoice};
use wick::lower::LowerError;
use wick::train::data::recorded::Recorded;
use wick::train::{data, files, folder};
use wick::Model;

use super::{SpecArgs, EXIT_SPEC, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Weights (.safetensors keyed like a PyTorch state_dict); default: the spec's run folder,
    /// `runs/<spec name>/<Model>.safetensors` or else `runs/<spec name>/weights.safetensors`.
    #[arg(long)]
    pub weights: Option<String>,
    /// Give the inputs as they are, without the preprocessing the weights record (the training
    /// data's standardisation or rescale, applied to the first input by default).
    #[arg(long)]
    pub raw: bool,
    /// An input: `NAME=FILE` (.npy, or .safetensors holding NAME, input.NAME or one tensor).
    /// Dims that are a lone symbol in the input's declared shape are bound from the file.
    #[arg(long = "input", value_parser = parse_input, required = true)]
    pub inputs: Vec<(String, String)>,
    /// Where to write the outputs: .safetensors (keyed by output name) or .npy (one output).
    #[arg(long)]
    pub output: String,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    #[arg(long, value_enum, default_value_t = Mode::Eval)]
    pub mode: Mode,
    /// Load the tensors that fit and report the rest, instead of refusing the file.
    #[arg(long)]
    pub allow_partial: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Mode {
    Eval,
    Train,
}

fn parse_input(s: &str) -> Result<(String, String), String> {
    let (name, file) = s.split_once('=').ok_or_else(|| format!("expected NAME=FILE, found `{s}`"))?;
    Ok((name.trim().to_string(), file.trim().to_string()))
}

/// An error and the exit code it earns.
struct Failure(u8, String);

impl From<LowerError> for Failure {
    fn from(e: LowerError) -> Failure {
        let code = if matches!(e, LowerError::Spec(_)) { EXIT_SPEC } else { EXIT_USAGE };
        Failure(code, e.to_string())
    }
}

/// The spec compiled, so what candle refuses at run time is about the inputs (a shape, a dtype).
impl From<candle_core::Error> for Failure {
    fn from(e: candle_core::Error) -> Failure {
        Failure(EXIT_USAGE, e.to_string())
    }
}

fn finish(r: Result<(), Failure>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("error: {}", message.trim_end());
            ExitCode::from(code)
        }
    }
}

/// `wick compile SPEC -o FILE`: PyTorch's default initialisation from `seed`, saved.
pub fn save_initial_weights(spec: &SpecArgs, path: &str, seed: u64) -> ExitCode {
    finish((|| {
        let model = Model::from_file(&spec.spec, &spec.options())?;
        let lowered = model.build_seeded(&Device::Cpu, DType::F32, seed)?;
        lowered.save_weights(path)?;
        let count: usize = lowered.params().entries().iter().map(|e| e.var.elem_count()).sum();
        eprintln!("wrote {} tensors ({count} values) to {path}", lowered.params().entries().len());
        Ok(())
    })())
}

pub fn run(args: RunArgs) -> ExitCode {
    finish(run_inner(&args))
}

fn run_inner(args: &RunArgs) -> Result<(), Failure> {
    let (device, note) = device::select(args.device).map_err(|e| Failure(EXIT_USAGE, e))?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let opts = args.spec.options();
    let compiled = Model::from_file(&args.spec.spec, &opts)?;
    check_input_names(&compiled.graph().inputs, &args.inputs)?;
    let mut inputs = HashMap::new();
    for (name, file) in &args.inputs {
        inputs.insert(name.clone(), read_input(name, file)?);
    }
    let weights = match &args.weights {
        Some(w) => w.clone(),
        None => folder::default_weights(&args.spec.spec, &compiled.graph().name)
            .map_err(|looked| {
                Failure(EXIT_USAGE, format!("{looked}; train the spec first, or pass --weights FILE"))
            })?
            .display()
            .to_string(),
    };
    if args.weights.is_none() {
        eprintln!("model {}: weights from {weights}", compiled.graph().name);
    }
    // Training fed its data to the first input, preprocessed as the weights record.
    let recorded = if args.raw {
        Recorded::default()
    } else {
        Recorded::read(Path::new(&weights)).map_err(data_error)?
    };
    if let Some(first) = compiled.graph().inputs.first().map(|(name, _)| name.clone()) {
        if let (Some(x), Some(what)) = (inputs.get_mut(&first), recorded.describe()) {
            *x = recorded.apply(x).map_err(|e| Failure(EXIT_USAGE, format!("input `{first}`: {e}")))?;
            eprintln!("note: {what}");
        }
    }
    let model = Model::bound_to_inputs(&args.spec.spec, &opts, &inputs)?;
    let mut lowered = model.build(&device, DType::F32)?;
    lowered.fold_for_inference();
    let report = lowered.load_weights(&weights, args.allow_partial)?;
    if !report.skipped.is_empty() {
        eprint!("note: loaded {} tensors; {}", report.loaded, report.skipped);
    }
    let outputs = lowered.infer_named(&inputs, args.mode == Mode::Train).map_err(|e| {
        // What the model refuses here is an input: say which files they came from.
        let from: Vec<String> =
            args.inputs.iter().map(|(name, file)| format!("`{name}` from {file}")).collect();
        Failure(EXIT_USAGE, format!("{e} (inputs: {})", from.join(", ")))
    })?;
    write_outputs(&args.output, &outputs)
}

fn data_error(e: data::DataError) -> Failure {
    Failure(EXIT_USAGE, e.to_string())
}

/// Every `--input` names an input of the model and every input has one: a misspelt name is
/// told as such, not as a missing input.
fn check_input_names(
    declared: &[(String, wick::ir::graph::NodeId)],
    given: &[(String, String)],
) -> Result<(), Failure> {
    let names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
    let list = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    if let Some((unknown, _)) = given.iter().find(|(g, _)| !names.contains(&g.as_str())) {
        return Err(Failure(
            EXIT_USAGE,
            format!("the model has no input `{unknown}`; its inputs are {list}"),
        ));
    }
    if let Some(missing) = names.iter().find(|n| !given.iter().any(|(g, _)| g == *n)) {
        return Err(Failure(
            EXIT_USAGE,
            format!("no `--input {missing}=FILE` given; the model's inputs are {list}"),
        ));
    }
    Ok(())
}

fn read_input(name: &str, file: &str) -> Result<Tensor, Failure> {
    data::read_input(Path::new(file), name)
        .map_err(|e| Failure(EXIT_USAGE, format!("cannot read input `{name}`: {e}")))
}

fn write_outputs(path: &str, outputs: &BTreeMap<String, Tensor>) -> Result<(), Failure> {
    let on_cpu = outputs
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?)))
        .collect::<candle_core::Result<HashMap<_, _>>>()?;
    let written = if extension(path) == "npy" {
        let mut values = on_cpu.values();
        let (Some(t), None) = (values.next(), values.next()) else {
            return Err(Failure(
                EXIT_USAGE,
                format!("the model has {} outputs: write them to a .safetensors file", on_cpu.len()),
            ));
        };
        files::replace_file(Path::new(path), |tmp| t.write_npy(tmp).map_err(std::io::Error::other))
    } else {
        files::save_safetensors(Path::new(path), &on_cpu)
    };
    written.map_err(|e| Failure(EXIT_USAGE, format!("cannot write `{path}`: {e}")))?;
    eprintln!("wrote {} to {path}", outputs.keys().cloned().collect::<Vec<_>>().join(", "));
    Ok(())
}

fn extension(path: &str) -> &str {
    Path::new(path).extension().and_then(|e| e.to_str()).unwrap_or("")
}
