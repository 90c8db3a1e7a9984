//! `wick eval SPEC`: a spec's model with trained weights, on a split of the spec's own data
//! (its test split, else its validation split) or on a file read by its data section's rules,
//! given the preprocessing the weights record.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use super::{evaluate, Report};
use crate::train::batch::Feed;
use crate::train::config::TrainConfig;
use crate::train::data::recorded::Recorded;
use crate::train::data::{self, Dataset, Source, Target};
use crate::train::nets::Nets;
use crate::train::run::TrainError;
use crate::{Compiled, Model};

/// One evaluation to run.
pub struct Request {
    pub compiled: Compiled,
    /// The spec's training configuration: its data, loss, batch size and seed.
    pub config: TrainConfig,
    /// What the configuration's relative paths start from.
    pub config_dir: PathBuf,
    pub weights: PathBuf,
    /// A file of examples instead of the spec's split (CSV, `.npz` or `.safetensors`, read with
    /// the data section's columns or array names, shape and dtype).
    pub data: Option<PathBuf>,
    /// Give the inputs as read, without the preprocessing the weights record.
    pub raw: bool,
    pub batch_size: Option<usize>,
    pub device: Device,
}

/// The report, and notes for the person (what preprocessing was applied).
pub fn run(request: Request) -> Result<(Report, Vec<String>), TrainError> {
    let Request { compiled, config, config_dir, weights, data, raw, batch_size, device } = request;
    let mut notes = Vec::new();
    let recorded = Recorded::read(&weights)?;
    let preprocessing = !raw && (recorded.standardized.is_some() || recorded.rescaled.is_some());
    // Either the weights' record is applied below, or (with none) the data section recomputes
    // what it asks for from the training split, as training did; `--raw` applies neither.
    let mut section = config.data.clone();
    if raw || preprocessing {
        section.standardize = false;
        section.rescale = None;
    }
    let (mut examples, what) = match &data {
        Some(path) => {
            let source = source_at(&section.source, path)?;
            let classes = recorded.classes.as_deref();
            (data::read_source(&source, &section, Path::new(""), classes)?, path.display().to_string())
        }
        None => {
            let splits = data::load_with(&section, &config_dir, config.seed, &Device::Cpu, false)?;
            match splits.test {
                Some(test) => (test, "the test split".to_string()),
                None => (splits.val, "the validation split".to_string()),
            }
        }
    };
    if preprocessing {
        examples.x = recorded.apply(&examples.x)?;
        notes.extend(recorded.describe());
    } else if !raw && data.is_some() && (config.data.standardize || config.data.rescale.is_some()) {
        notes.push("the weights record no preprocessing: the file's inputs are given as they are".into());
    }
    if config.data.target == Target::Input {
        examples.y = examples.x.clone();
    }
    if examples.is_empty() {
        return Err(TrainError::Usage(format!("{what} has no examples to evaluate")));
    }
    let nets = build(compiled, &examples, batch_size.unwrap_or(config.batch_size), &device)?;
    nets.full().load_weights(&weights, false)?;
    let net = nets.full();
    let (input, target) = crate::train::session::fit_data(net, &config.data, &examples)?;
    let first_output = net.output_names().first().map(|o| o.to_string()).unwrap_or_default();
    let objectives = config.objectives(&first_output, &target).map_err(TrainError::Usage)?;
    let examples = examples.to_device(&device)?;
    let feed = Feed { data: &examples, input, target };
    let evaluated = evaluate(&nets, &feed, &objectives, recorded.classes.as_deref())?;
    let report = Report {
        schema: super::SCHEMA,
        model: net.name.clone(),
        weights: weights.display().to_string(),
        data: what,
        examples: evaluated.examples,
        loss: evaluated.loss,
        preprocessed: preprocessing,
        outputs: evaluated.outputs,
    };
    Ok((report, notes))
}

/// The model lowered at `batch` rows (fewer when there are fewer examples) and at the last
/// batch's rows.
fn build(compiled: Compiled, examples: &Dataset, batch: usize, device: &Device) -> Result<Nets, TrainError> {
    let model = Model::from_compiled(compiled)?;
    let batch_dim = crate::train::session::batch_dim(model.graph())?;
    let batch = batch.clamp(1, examples.len().max(1));
    let model = model.rebound(&[(batch_dim.clone(), batch as i64)])?;
    let mut full = model.build(device, DType::F32)?;
    // The full batches run with each batch norm folded into its convolution (`lower::fold`).
    full.fold_for_inference();
    Ok(Nets::build(&model, full, &batch_dim, &[examples.len()])?)
}

/// The training source's reader, its columns or arrays, on the file at `path`.
fn source_at(source: &Source, path: &Path) -> Result<Source, TrainError> {
    let file = path.display().to_string();
    match source {
        Source::Csv { features, target, .. } => {
            Ok(Source::Csv { path: file, features: features.clone(), target: target.clone() })
        }
        Source::Npz { features, target, .. } => {
            Ok(Source::Npz { path: file, features: features.clone(), target: target.clone() })
        }
        Source::Safetensors { features, target, .. } => {
            Ok(Source::Safetensors { path: file, features: features.clone(), target: target.clone() })
        }
        _ => Err(TrainError::Usage(format!(
            "--data reads a file like the spec's data source, which must be csv, npz or safetensors; \
             evaluate other sources with a `test:` source in the spec's `data:` section (not `{file}`)"
        ))),
    }
}
