//! `wick sample SPEC --source TEXT`: an encoder-decoder model's output sequence for a source,
//! by greedy or beam search ([`super::beam`]).
//!
//! The model takes two token inputs that share their batch dim: the source (held the same at
//! every step) and the decoder's input (the output so far, behind a start token, as it was fed
//! shifted right in teacher-forced training). Each may be ids (`[N, S]` or `[S, N]` of i64) or
//! one-hot rows of a float input. With the cache, each step feeds the decoder one token, its
//! layers carrying their states, and the layers that see only the source run once; without it,
//! each step runs the whole model on the output so far.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device};

use super::beam::{self, Scored};
use super::sequence::{
    decode, encode_tokens, input_type, uncacheable, vocabulary_of, weights_file, Decoder, TokenAxes,
};
use super::{compile, load_used, SampleError, Weights};
use crate::{Model, Options};

/// One decoding run.
#[derive(Clone, Debug)]
pub struct TranslateRequest {
    pub spec: String,
    pub options: Options,
    pub weights: Weights,
    pub device: Device,
    /// Seeds the initialisation under [`Weights::Random`].
    pub seed: u64,
    /// The source sequence: characters or words of the weights' vocabulary, or token ids
    /// separated by spaces.
    pub source: String,
    /// The source input and the decoder's, by name; default: the model's first and second.
    pub inputs: Option<(String, String)>,
    /// The token the decoder's input starts with.
    pub start: u32,
    /// The token that ends a sequence, if the model has one.
    pub end: Option<u32>,
    /// The most tokens to write.
    pub length: usize,
    /// How many hypotheses to keep; 1 is greedy decoding.
    pub beam: usize,
    /// Carry the decoder's states from token to token (else run the whole model each step).
    pub cache: bool,
}

/// What a decoding run found.
#[derive(Debug)]
pub struct Translation {
    pub model: String,
    /// The weights file read; `None` for [`Weights::Random`].
    pub weights: Option<PathBuf>,
    /// The best sequences, best first, decoded (without the end token), with their summed
    /// log-probabilities.
    pub hypotheses: Vec<(String, Scored)>,
    /// Wall time of the search, the weights loading not included.
    pub seconds: f64,
    pub cached: bool,
}

/// Decodes `request.source` with the model.
pub fn translate(request: &TranslateRequest) -> Result<Translation, SampleError> {
    if request.beam == 0 {
        return Err(SampleError::Usage("--beam: keep at least one hypothesis".into()));
    }
    let model = compile(&request.spec, &request.options)?;
    let (source, target) = roles(&model, request.inputs.as_ref())?;
    let name = model.graph().name.clone();
    let weights = weights_file(&request.weights, &request.spec, &name)?;
    let vocabulary = vocabulary_of(weights.as_deref())?;
    let source_tokens = encode_tokens(vocabulary.as_ref(), &request.source, "--source")?;
    if request.cache {
        if let Some(why) = uncacheable(&model, &[&target.input]) {
            return Err(SampleError::Usage(format!(
                "model {name} cannot carry its state from token to token: {why}; --no-cache runs the \
                 whole model again for every token"
            )));
        }
    }
    let model = model.rebound(&[
        (target.batch.clone(), 1),
        (source.time.clone(), source_tokens.len() as i64),
        (target.time.clone(), 1),
    ])?;
    let mut step = model.build_seeded(&request.device, DType::F32, request.seed)?;
    step.fold_for_inference();
    if let Some(path) = &weights {
        load_used(&step, path)?;
    }
    let source_tensor = source.tensor(&source_tokens, step.device())?;
    let mut decoder =
        Decoder::new(model, step, target, request.cache).with_fixed(&source.input, source_tensor)?;
    let started = Instant::now();
    let found = beam::search(
        &[request.start],
        decoder.start(),
        request.beam,
        request.length,
        request.end,
        |cursor, tokens| decoder.scores(cursor, tokens),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let hypotheses = found
        .into_iter()
        .map(|s| {
            let kept = s.tokens.len() - usize::from(s.finished);
            Ok((decode(vocabulary.as_ref(), &s.tokens[..kept])?, s))
        })
        .collect::<Result<_, SampleError>>()?;
    Ok(Translation { model: name, weights, hypotheses, seconds, cached: request.cache })
}

/// The source and decoder inputs: as named, or the model's two inputs in order. Their batch
/// dim is the symbol both shapes have.
fn roles(model: &Model, named: Option<&(String, String)>) -> Result<(TokenAxes, TokenAxes), SampleError> {
    let g = model.graph();
    let (source, target) = match (named, g.inputs.as_slice()) {
        (Some((s, t)), _) => (s.clone(), t.clone()),
        (None, [(s, _), (t, _)]) => (s.clone(), t.clone()),
        (None, inputs) => {
            return Err(SampleError::Usage(format!(
                "model {} has {} inputs: an encoder-decoder takes a source and the decoder's input \
                 (name them with --source-input and --decoder-input)",
                g.name,
                inputs.len()
            )))
        }
    };
    let names: Vec<&str> = g.inputs.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(missing) = [&source, &target].into_iter().find(|n| !names.contains(&n.as_str())) {
        return Err(SampleError::Usage(format!(
            "model {} has no input `{missing}`; its inputs: {}",
            g.name,
            names.join(", ")
        )));
    }
    let symbols = |name: &str| -> Result<Vec<String>, SampleError> {
        Ok(input_type(model, name)?.1.iter().flat_map(|d| d.symbols()).collect())
    };
    let theirs = symbols(&target)?;
    let shared: Vec<String> = symbols(&source)?.into_iter().filter(|s| theirs.contains(s)).collect();
    let [batch] = shared.as_slice() else {
        return Err(SampleError::Usage(format!(
            "inputs `{source}` and `{target}` of model {} should share exactly one dim, the batch; they share {}",
            g.name,
            if shared.is_empty() { "none".to_string() } else { shared.join(", ") }
        )));
    };
    Ok((TokenAxes::of_input(model, &source, batch)?, TokenAxes::of_input(model, &target, batch)?))
}

#[cfg(test)]
mod tests;
