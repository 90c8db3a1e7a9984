//! `wick sample` for a causal language model: text from a prime, one token at a time.
//!
//! The model's input is token ids `[batch, time]` (two dims the spec names, `[N, T]`); its
//! `logits` output (else its first) holds the scores of the next token at each position, as
//! `[batch, time, vocab]` or `[batch * time, vocab]`. A step feeds one token to the model bound
//! to `time = 1`, in a pass that carries each layer's state: recurrent layers continue from their
//! last state, causal self-attention keeps its keys and values (a key-value cache) and position
//! tables continue their count, so a token costs one position. Without the cache
//! ([`Decoder::rerun`]), each step runs the whole prefix again, from a zero state: the reference
//! the cached path is checked against.
//!
//! The vocabulary comes from the weights' metadata, where `wick train` on a `text:` source put
//! it; without one (random weights) the prime is token ids and the output too.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::choose::Choice;
use super::{compile, load_used, run_folder_weights, SampleError, Weights};
use crate::ir::dim::Dim;
use crate::lower::params::SplitMix64;
use crate::lower::{Lowered, Pass};
use crate::train::data::text::Vocabulary;
use crate::{Model, Options};

/// One text-sampling run.
#[derive(Clone, Debug)]
pub struct TextRequest {
    pub spec: String,
    pub options: Options,
    pub weights: Weights,
    pub device: Device,
    /// Seeds the draws (and the initialisation under [`Weights::Random`]).
    pub seed: u64,
    /// The text the model continues: characters or words of its vocabulary, or token ids
    /// separated by spaces when the weights carry no vocabulary.
    pub prime: String,
    /// How many tokens to generate.
    pub length: usize,
    pub choice: Choice,
    /// Carry layer states from token to token (else re-run the whole prefix each time).
    pub cache: bool,
}

/// What a text-sampling run made.
#[derive(Debug)]
pub struct TextSample {
    pub model: String,
    /// The weights file read; `None` for [`Weights::Random`].
    pub weights: Option<PathBuf>,
    /// The prime and its continuation, decoded as one sequence (token ids when there is no
    /// vocabulary).
    pub text: String,
    pub prime_tokens: usize,
    pub generated: Vec<u32>,
    /// Wall time of the generation loop, the prime included, weights loading not.
    pub seconds: f64,
    pub cached: bool,
}

/// Generates `request.length` tokens after the prime.
pub fn generate_text(request: &TextRequest) -> Result<TextSample, SampleError> {
    let choice = request.choice.checked().map_err(SampleError::Usage)?;
    let model = compile(&request.spec, &request.options)?;
    let axes = TokenAxes::of(&model)?;
    let model = model.rebound(&[(axes.batch.clone(), 1), (axes.time.clone(), 1)])?;
    let step = model.build_seeded(&request.device, DType::F32, request.seed)?;
    let weights = match &request.weights {
        Weights::Random => None,
        Weights::File(path) => Some(path.clone()),
        Weights::RunFolder => Some(run_folder_weights(&request.spec, &step.name)?),
    };
    let mut vocabulary = None;
    if let Some(path) = &weights {
        load_used(&step, path)?;
        let metadata = crate::train::data::read_safetensors_metadata(path)
            .map_err(|e| SampleError::Usage(e.to_string()))?;
        vocabulary = Vocabulary::from_metadata(&metadata).map_err(SampleError::Usage)?;
    }
    let prime = encode_prime(vocabulary.as_ref(), &request.prime)?;
    let name = step.name.clone();
    if let (true, Some(why)) = (request.cache, uncacheable(&model)) {
        return Err(SampleError::Usage(format!(
            "model {name} cannot carry its state from token to token: {why}; --no-cache runs the \
             whole prefix again for every token"
        )));
    }
    let mut decoder = match request.cache {
        true => Decoder::cached(model, step),
        false => Decoder::rerun(model, step),
    };
    let started = Instant::now();
    let mut rng = SplitMix64::new(request.seed);
    let mut tokens = prime.clone();
    for _ in 0..request.length {
        let scores = decoder.scores(&tokens)?;
        if let Some(vocabulary) = &vocabulary {
            if scores.len() != vocabulary.len() {
                return Err(SampleError::Usage(format!(
                    "model {name} scores {} tokens but the vocabulary has {}",
                    scores.len(),
                    vocabulary.len()
                )));
            }
        }
        tokens.push(choice.pick(&scores, &mut rng));
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(TextSample {
        model: name,
        weights,
        text: decode(vocabulary.as_ref(), &tokens)?,
        generated: tokens.split_off(prime.len()),
        prime_tokens: prime.len(),
        seconds,
        cached: request.cache,
    })
}

fn encode_prime(vocabulary: Option<&Vocabulary>, prime: &str) -> Result<Vec<u32>, SampleError> {
    let ids = match vocabulary {
        Some(v) => v.encode(prime).map_err(|e| SampleError::Usage(format!("--prime: {e}")))?,
        None => {
            prime.split_whitespace().map(|w| w.parse::<u32>()).collect::<Result<_, _>>().map_err(|_| {
                SampleError::Usage(format!(
                    "--prime: the weights carry no vocabulary (train on a `text:` source to save one), \
                     so the prime is token ids separated by spaces; found `{prime}`"
                ))
            })?
        }
    };
    if ids.is_empty() {
        return Err(SampleError::Usage("--prime: give at least one token to start from".into()));
    }
    Ok(ids)
}

fn decode(vocabulary: Option<&Vocabulary>, ids: &[u32]) -> Result<String, SampleError> {
    match vocabulary {
        Some(v) => v.decode(ids).map_err(SampleError::Usage),
        None => Ok(ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")),
    }
}

/// Why a carried state would not give what the whole prefix gives: a layer that sees later
/// positions (attention without `causal=true`) or runs backwards (a bidirectional recurrence).
pub fn uncacheable(model: &Model) -> Option<String> {
    let g = model.graph();
    g.order.iter().map(|id| (g.node(*id), g.inputs_of(*id).len())).find_map(|(n, inputs)| {
        let set = |name: &'static str| n.attrs.bool(name).unwrap_or(false);
        match n.kind {
            "MultiheadAttention" | "ScaledDotProductAttention" if !set("causal") => {
                Some(format!("`{}` attends to later positions (it is not `causal=true`)", n.path))
            }
            "ScaledDotProductAttention" if inputs > 3 => {
                Some(format!("`{}` takes an attn_mask shaped for the whole sequence", n.path))
            }
            "LSTM" | "GRU" | "RNN" if set("bidirectional") => {
                Some(format!("`{}` also runs backwards (bidirectional)", n.path))
            }
            _ => None,
        }
    })
}

/// The symbols of the token input's batch and time dims.
#[derive(Clone, Debug)]
pub struct TokenAxes {
    pub input: String,
    pub batch: String,
    pub time: String,
}

impl TokenAxes {
    /// The model's one input must be integer ids `[batch, time]`, each dim a symbol of its own.
    pub fn of(model: &Model) -> Result<TokenAxes, SampleError> {
        let g = model.graph();
        let refuse = |why: String| {
            SampleError::Usage(format!(
                "model {} cannot generate text: {why}; a language model takes token ids [N, T] of i64",
                g.name
            ))
        };
        let [(name, id)] = g.inputs.as_slice() else {
            return Err(refuse(format!("it has {} inputs", g.inputs.len())));
        };
        let ty = g.node(*id).outputs.first().ok_or_else(|| refuse(format!("input `{name}` has no type")))?;
        let symbol = |d: &Dim| match d.symbols().as_slice() {
            [s] if *d == Dim::sym(s) => Some(s.clone()),
            _ => None,
        };
        match (ty.dtype.is_float(), ty.shape.as_slice()) {
            (false, [n, t]) => match (symbol(n), symbol(t)) {
                (Some(batch), Some(time)) if batch != time => {
                    Ok(TokenAxes { input: name.clone(), batch, time })
                }
                _ => Err(refuse(format!("input `{name}` is [{n}, {t}], not two dims named by `dim`"))),
            },
            _ => Err(refuse(format!(
                "input `{name}` is {} {}",
                ty.dtype,
                crate::ir::tensor::shape_string(&ty.shape)
            ))),
        }
    }
}

/// The next-token scores after a sequence of tokens, one way or the other.
pub struct Decoder {
    model: Model,
    /// The model at one token a pass, its parameters the ones every other binding shares.
    step: Lowered,
    output: usize,
    how: How,
}

enum How {
    /// Layer states carried from pass to pass; `fed` tokens are in them.
    Cached { pass: Pass, fed: usize },
    /// The whole prefix each time, by a model bound to its length.
    Rerun { by_len: HashMap<usize, Lowered> },
}

impl Decoder {
    /// Carries each layer's state: each call feeds only the tokens it has not seen.
    pub fn cached(model: Model, step: Lowered) -> Decoder {
        let pass = Pass { states: Some(step.new_states()), ..Pass::default() };
        Decoder::new(model, step, How::Cached { pass, fed: 0 })
    }

    /// Runs the whole prefix each call.
    pub fn rerun(model: Model, step: Lowered) -> Decoder {
        Decoder::new(model, step, How::Rerun { by_len: HashMap::new() })
    }

    fn new(model: Model, step: Lowered, how: How) -> Decoder {
        let names = step.output_names();
        let output = names.iter().position(|n| *n == "logits").unwrap_or(0);
        Decoder { model, step, output, how }
    }

    /// The scores of the token after `tokens`; a cached decoder must be given the tokens of its
    /// earlier calls again, followed by new ones.
    pub fn scores(&mut self, tokens: &[u32]) -> Result<Vec<f32>, SampleError> {
        let device = self.step.device().clone();
        let ids = |t: &[u32]| -> Result<Tensor, SampleError> {
            let values: Vec<i64> = t.iter().map(|id| i64::from(*id)).collect();
            Ok(Tensor::from_vec(values, (1, t.len()), &device)?)
        };
        let out = match &mut self.how {
            How::Cached { pass, fed } => {
                if *fed >= tokens.len() {
                    return Err(SampleError::Usage("a cached decoder needs a new token each call".into()));
                }
                let mut last = None;
                for t in *fed..tokens.len() {
                    last = Some(self.step.infer_with(&[ids(&tokens[t..=t])?], pass)?);
                }
                *fed = tokens.len();
                last.ok_or_else(|| SampleError::Usage("no token to feed".into()))?
            }
            How::Rerun { by_len } => {
                let len = tokens.len();
                let model = match by_len.entry(len) {
                    Entry::Occupied(built) => built.into_mut(),
                    Entry::Vacant(slot) => {
                        let time = TokenAxes::of(&self.model)?.time;
                        slot.insert(self.model.build_sharing(&self.step, &[(time, len as i64)])?)
                    }
                };
                model.infer(&[ids(tokens)?], false)?
            }
        };
        last_scores(out.get(self.output))
    }
}

/// The last position's scores: the output as rows of the vocabulary, its last row.
fn last_scores(logits: Option<&Tensor>) -> Result<Vec<f32>, SampleError> {
    let logits = logits.ok_or_else(|| SampleError::Usage("the model has no output".into()))?;
    let vocab = logits.dims().last().copied().unwrap_or(0);
    let rows = logits.reshape(((), vocab))?;
    let last = rows.dim(0)?.checked_sub(1).ok_or_else(|| SampleError::Usage("no scores".into()))?;
    Ok(rows.get(last)?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
}

#[cfg(test)]
mod tests;
