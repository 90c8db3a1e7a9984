//! `wick sample`: a generator model run on latent draws, its outputs written as arrays or as a
//! grid of images; or a language model's text ([`sequence`]).
//!
//! The latent is every float input of the model, drawn from a seeded standard normal at the
//! input's declared shape with its leading (batch) dim bound to the number of samples, as
//! `wick run` binds dims from the tensors it is given. Inputs of another kind (a class label,
//! token ids) are refused for now: conditional and sequence sampling will take them from flags.

pub mod beam;
pub mod choose;
pub mod seq2seq;
pub mod sequence;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::lower::{random, LowerError, WeightsMismatch};
use crate::train::data::rescaled::Rescaled;
use crate::{Model, Options};

pub use choose::Choice;
pub use seq2seq::{translate, TranslateRequest, Translation};
pub use sequence::{generate_text, TextRequest, TextSample};
pub use write::{write, Format};

/// Why sampling failed: the spec (exit 1), or anything the person running it can change (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("the spec has errors:\n{0}")]
    Spec(String),
    #[error("{0}")]
    Usage(String),
}

impl From<LowerError> for SampleError {
    fn from(e: LowerError) -> SampleError {
        match e {
            LowerError::Spec(rendered) => SampleError::Spec(rendered),
            other => SampleError::Usage(other.to_string()),
        }
    }
}

/// Once the spec compiled, what candle refuses is about the numbers asked for.
impl From<candle_core::Error> for SampleError {
    fn from(e: candle_core::Error) -> SampleError {
        SampleError::Usage(e.to_string())
    }
}

/// Where the model's weights come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Weights {
    File(PathBuf),
    /// The spec's run folder: see [`run_folder_weights`].
    RunFolder,
    /// PyTorch's default initialisation from the sampling seed: an untrained model, asked for.
    Random,
}

/// One sampling run.
#[derive(Clone, Debug)]
pub struct Request {
    pub spec: String,
    /// The model (`--model`) and dim bindings.
    pub options: Options,
    /// How many samples: the batch dim's value.
    pub n: usize,
    /// Seeds the latent draws (and the initialisation under [`Weights::Random`]).
    pub seed: u64,
    pub weights: Weights,
    pub device: Device,
    /// The class every sample is drawn for, given to the model's integer inputs (a conditional
    /// generator's label).
    pub label: Option<i64>,
}

/// The outputs of a sampling run and where its weights came from.
#[derive(Debug)]
pub struct Samples {
    pub model: String,
    /// Output name -> `[n, ...]` tensor.
    pub outputs: BTreeMap<String, Tensor>,
    /// The weights file read; `None` for [`Weights::Random`].
    pub weights: Option<PathBuf>,
    /// Tensors of the weights file that the model has no use for (a VAE's encoder, when its
    /// decoder samples), sorted.
    pub unused: Vec<String>,
    /// How the training data was rescaled, as the weights file records it: the float outputs
    /// have been mapped back to the data's scale by it.
    pub rescaled: Option<Rescaled>,
}

/// Draws the latent, runs the model in eval mode, returns its outputs.
pub fn generate(request: &Request) -> Result<Samples, SampleError> {
    let mut options = request.options.clone();
    let mut file = request.spec.clone();
    if options.model.is_none() {
        // A spec that trains a GAN samples its generator, not its last model.
        if let Some(generator) = trained_generator(&request.spec) {
            options.model = Some(generator.model);
            file = generator.spec.unwrap_or(file);
        }
    }
    let model = compile(&file, &options)?;
    let latent = latent(&model, request.n, request.seed, request.label)?;
    let model = Model::bound_to_inputs(&file, &options, &latent)?;
    let mut lowered = model.build_seeded(&request.device, DType::F32, request.seed)?;
    lowered.fold_for_inference();
    let (weights, unused) = match &request.weights {
        Weights::Random => (None, Vec::new()),
        Weights::File(path) => (Some(path.clone()), load_used(&lowered, path)?),
        Weights::RunFolder => {
            let path = run_folder_weights(&request.spec, &lowered.name)?;
            let unused = load_used(&lowered, &path)?;
            (Some(path), unused)
        }
    };
    let rescaled = match &weights {
        Some(path) => crate::train::data::read_safetensors_metadata(path)
            .map_err(|e| SampleError::Usage(e.to_string()))
            .map(|m| Rescaled::from_metadata(&m))?,
        None => None,
    };
    let mut outputs = lowered.infer_named(&latent, false)?;
    if let Some(r) = &rescaled {
        for t in outputs.values_mut().filter(|t| t.dtype().is_float()) {
            *t = r.undo(t)?;
        }
    }
    Ok(Samples { model: lowered.name.clone(), outputs, weights, unused, rescaled })
}

/// The generator a spec's `train { gan: ... }` section names: the model, and the file that
/// holds it when that is not the spec itself.
pub struct TrainedGenerator {
    pub model: String,
    pub spec: Option<String>,
}

/// The generator the `train` section of `spec` names, if it trains a GAN.
pub fn trained_generator(spec: &str) -> Option<TrainedGenerator> {
    let compiled = crate::compile_file(spec, &Options::default()).ok()?;
    let config = crate::train::config::TrainConfig::from_value(compiled.train.as_ref()?).ok()?;
    let generator = config.gan?.generator;
    // Paths in a spec's train section are relative to the spec's folder.
    let folder = Path::new(spec).parent().unwrap_or(Path::new(""));
    let file = generator.spec.map(|f| folder.join(f).display().to_string());
    Some(TrainedGenerator { model: generator.model, spec: file })
}

/// The model the options pick. A `--model` naming no model is the flag's error, not the spec's.
fn compile(spec: &str, options: &Options) -> Result<Model, SampleError> {
    let compiled = crate::compile_file(spec, options)
        .map_err(|e| SampleError::Usage(format!("cannot read `{spec}`: {e}")))?;
    let errors: Vec<_> = compiled.diagnostics.items.iter().filter(|d| d.is_error()).collect();
    // E0213: no model of that name (with `--model`), or none at all.
    if let [d] = errors.as_slice() {
        if d.code == "E0213" && options.model.is_some() {
            let help = d.help.iter().map(|h| format!("\n  help: {h}"));
            let notes = d.notes.iter().map(|n| format!("\n  note: {n}"));
            return Err(SampleError::Usage(format!(
                "{}{}",
                d.message,
                help.chain(notes).collect::<String>()
            )));
        }
    }
    Ok(Model::from_compiled(compiled)?)
}

/// A standard normal draw for each float input of `model`, at its declared shape with the
/// leading dim `n`, each input from its own stream of `seed`; each integer input (a class)
/// holds `label`. The draws fill the batch in order, so the first k samples of n are the k
/// samples of a smaller n with the same seed.
pub fn latent(
    model: &Model,
    n: usize,
    seed: u64,
    label: Option<i64>,
) -> Result<HashMap<String, Tensor>, SampleError> {
    let g = model.graph();
    let bindings = g.bindings();
    let mut drawn = HashMap::new();
    for (name, id) in &g.inputs {
        let Some(ty) = g.node(*id).outputs.first() else { continue };
        if !ty.dtype.is_float() {
            let Some(label) = label else {
                return Err(SampleError::Usage(format!(
                    "input `{name}` of model {} takes {} values (a class): pass --label K to sample class K",
                    g.name, ty.dtype
                )));
            };
            if ty.shape.len() != 1 {
                return Err(SampleError::Usage(format!(
                    "input `{name}` of model {} is {} values of shape {:?}: --label fills a class per sample",
                    g.name,
                    ty.dtype,
                    ty.shape.iter().map(ToString::to_string).collect::<Vec<_>>()
                )));
            }
            drawn.insert(name.clone(), Tensor::full(label, n, &Device::Cpu)?);
            continue;
        }
        let Some((batch, rest)) = ty.shape.split_first() else {
            return Err(SampleError::Usage(format!("input `{name}` of model {} has no batch dim", g.name)));
        };
        if batch.as_symbol().is_none() && batch.eval(&bindings) != Some(n as i64) {
            return Err(SampleError::Usage(format!(
                "input `{name}` of model {} has a fixed batch dim {batch}: it cannot take {n} samples",
                g.name
            )));
        }
        let mut dims = vec![n];
        for d in rest {
            let size = d.eval(&bindings).ok_or_else(|| {
                SampleError::Usage(format!("input `{name}` has the unbound dim {d}: bind it with --bind"))
            })?;
            dims.push(size as usize);
        }
        let stream = format!("latent.{name}");
        let z = random::scoped(seed, &stream, 0, || random::normal(&dims, DType::F32, &Device::Cpu))?;
        drawn.insert(name.clone(), z);
    }
    if drawn.is_empty() {
        return Err(SampleError::Usage(format!("model {} has no inputs to draw", g.name)));
    }
    Ok(drawn)
}

/// The weights a run of `spec` left for `model` ([`crate::train::folder::default_weights`]).
pub fn run_folder_weights(spec: &str, model: &str) -> Result<PathBuf, SampleError> {
    crate::train::folder::default_weights(spec, model).map_err(|looked| {
        SampleError::Usage(format!(
            "{looked}; train the spec first, pass --weights FILE, or --random-weights to sample the \
             untrained model"
        ))
    })
}

/// Loads the tensors of `path` that `lowered` has, every one of them required; returns the
/// file's other tensors. A generator is often part of what was trained (a VAE's decoder), so
/// the rest of the file is no error.
fn load_used(lowered: &crate::Lowered, path: &Path) -> Result<Vec<String>, SampleError> {
    // A partial load reports what did not fit; of that, only the file's surplus is allowed.
    let report = lowered.load_weights(path, true)?;
    let WeightsMismatch { missing, unexpected, mismatched } = report.skipped;
    if !missing.is_empty() || !mismatched.is_empty() {
        let lacking = WeightsMismatch { missing, unexpected: Vec::new(), mismatched };
        return Err(SampleError::Usage(format!("`{}`: {}", path.display(), lacking.to_string().trim_end())));
    }
    Ok(unexpected)
}

#[cfg(test)]
mod tests;
