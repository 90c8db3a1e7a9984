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
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::choose::Choice;
use super::{compile, load_used, run_folder_weights, SampleError, Weights};
use crate::ir::dim::Dim;
use crate::lower::params::SplitMix64;
use crate::lower::{Lowered, Pass, Reuse};
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
    let weights = weights_file(&request.weights, &request.spec, &model.graph().name)?;
    let vocabulary = vocabulary_of(weights.as_deref())?;
    let mut step = model.build_seeded(&request.device, DType::F32, request.seed)?;
    step.fold_for_inference();
    if let Some(path) = &weights {
        load_used(&step, path)?;
    }
    let prime = encode_tokens(vocabulary.as_ref(), &request.prime, "--prime")?;
    let name = step.name.clone();
    if let (true, Some(why)) = (request.cache, uncacheable(&model, &[&axes.input])) {
        return Err(SampleError::Usage(format!(
            "model {name} cannot carry its state from token to token: {why}; --no-cache runs the \
             whole prefix again for every token"
        )));
    }
    let mut decoder = Decoder::new(model, step, axes, request.cache);
    let mut cursor = decoder.start();
    let started = Instant::now();
    let mut rng = SplitMix64::new(request.seed);
    let mut tokens = prime.clone();
    for _ in 0..request.length {
        let scores = decoder.scores(&mut cursor, &tokens)?;
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

/// The weights file a run reads: none for random weights.
pub(super) fn weights_file(
    weights: &Weights,
    spec: &str,
    model: &str,
) -> Result<Option<PathBuf>, SampleError> {
    Ok(match weights {
        Weights::Random => None,
        Weights::File(path) => Some(path.clone()),
        Weights::RunFolder => Some(run_folder_weights(spec, model)?),
    })
}

/// The vocabulary a weights file's metadata records (`wick train` on a `text:` source).
pub(super) fn vocabulary_of(weights: Option<&Path>) -> Result<Option<Vocabulary>, SampleError> {
    let Some(path) = weights else { return Ok(None) };
    let metadata =
        crate::train::data::read_safetensors_metadata(path).map_err(|e| SampleError::Usage(e.to_string()))?;
    Vocabulary::from_metadata(&metadata).map_err(SampleError::Usage)
}

/// The tokens of `text` given by `flag`: characters or words of the vocabulary, else ids.
pub(super) fn encode_tokens(
    vocabulary: Option<&Vocabulary>,
    text: &str,
    flag: &str,
) -> Result<Vec<u32>, SampleError> {
    let ids = match vocabulary {
        Some(v) => v.encode(text).map_err(|e| SampleError::Usage(format!("{flag}: {e}")))?,
        None => {
            text.split_whitespace().map(|w| w.parse::<u32>()).collect::<Result<_, _>>().map_err(|_| {
                SampleError::Usage(format!(
                    "{flag}: the weights carry no vocabulary (train on a `text:` source to save one), \
                     so it takes token ids separated by spaces; found `{text}`"
                ))
            })?
        }
    };
    if ids.is_empty() {
        return Err(SampleError::Usage(format!("{flag}: give at least one token to start from")));
    }
    Ok(ids)
}

pub(super) fn decode(vocabulary: Option<&Vocabulary>, ids: &[u32]) -> Result<String, SampleError> {
    match vocabulary {
        Some(v) => v.decode(ids).map_err(SampleError::Usage),
        None => Ok(ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")),
    }
}

/// Why a carried state would not give what the whole prefix gives: a layer downstream of the
/// `varying` inputs (those given new tokens pass by pass) that sees later positions (attention
/// without `causal=true`, unless its keys and values come from elsewhere) or runs backwards (a
/// bidirectional recurrence). Layers that see only the other inputs run once.
pub fn uncacheable(model: &Model, varying: &[&str]) -> Option<String> {
    let g = model.graph();
    let mut reached = HashSet::new();
    for id in &g.order {
        let is_input = g.inputs.iter().any(|(name, i)| i == id && varying.contains(&name.as_str()));
        let fed: Vec<bool> = g.inputs_of(*id).iter().map(|t| reached.contains(&t.node)).collect();
        if !is_input && !fed.contains(&true) {
            continue;
        }
        reached.insert(*id);
        let n = g.node(*id);
        let set = |name: &'static str| n.attrs.bool(name).unwrap_or(false);
        // Attention whose keys and values (inputs 1 and 2) do not change from token to token
        // (cross-attention to an encoder's output) sees all of them in every pass anyway.
        let keys_values = &fed[fed.len().min(1)..fed.len().min(3)];
        let self_attention = keys_values.is_empty() || keys_values.contains(&true);
        let why = match n.kind {
            "MultiheadAttention" | "ScaledDotProductAttention" if !set("causal") && self_attention => {
                format!("`{}` attends to later positions (it is not `causal=true`)", n.path)
            }
            "ScaledDotProductAttention" if fed.len() > 3 => {
                format!("`{}` takes an attn_mask shaped for the whole sequence", n.path)
            }
            "LSTM" | "GRU" | "RNN" if set("bidirectional") => {
                format!("`{}` also runs backwards (bidirectional)", n.path)
            }
            _ => continue,
        };
        return Some(why);
    }
    None
}

/// A token input: its name, the symbols of its batch and time dims, and whether tokens arrive
/// as ids or as one-hot rows of a float input.
#[derive(Clone, Debug)]
pub struct TokenAxes {
    pub input: String,
    pub batch: String,
    pub time: String,
    /// The vocabulary size of a one-hot float input (its last dim); `None` for integer ids.
    pub one_hot: Option<usize>,
    /// Time before batch (`[T, N]`, PyTorch's sequence-first layout).
    pub time_first: bool,
}

impl TokenAxes {
    /// A language model's token input: its one input, integer ids `[batch, time]`, each dim a
    /// symbol of its own.
    pub fn of(model: &Model) -> Result<TokenAxes, SampleError> {
        let g = model.graph();
        let refuse = |why: String| {
            SampleError::Usage(format!(
                "model {} cannot generate text: {why}; a language model takes token ids [N, T] of i64",
                g.name
            ))
        };
        let [(name, _)] = g.inputs.as_slice() else {
            return Err(refuse(format!("it has {} inputs", g.inputs.len())));
        };
        let (dtype, shape) = input_type(model, name)?;
        match (dtype.is_float(), shape.as_slice()) {
            (false, [n, t]) => match (n.as_symbol(), t.as_symbol()) {
                (Some(batch), Some(time)) if batch != time => Ok(TokenAxes {
                    input: name.clone(),
                    batch: batch.into(),
                    time: time.into(),
                    one_hot: None,
                    time_first: false,
                }),
                _ => Err(refuse(format!("input `{name}` is [{n}, {t}], not two dims named by `dim`"))),
            },
            _ => {
                Err(refuse(format!("input `{name}` is {dtype} {}", crate::ir::tensor::shape_string(&shape))))
            }
        }
    }

    /// The token input `name` of a model whose batch dim is the symbol `batch`: integer ids
    /// with that dim and a time dim (either order), or one-hot float rows after them.
    pub fn of_input(model: &Model, name: &str, batch: &str) -> Result<TokenAxes, SampleError> {
        let (dtype, shape) = input_type(model, name)?;
        let refuse = || {
            SampleError::Usage(format!(
                "input `{name}` of model {} is {dtype} {}: a token input is ids [{batch}, T] or [T, {batch}] \
                 of i64, or one-hot rows [{batch}, T, vocab] or [T, {batch}, vocab] of f32",
                model.graph().name,
                crate::ir::tensor::shape_string(&shape)
            ))
        };
        let bindings = model.graph().bindings();
        let (axes, one_hot) = match (dtype.is_float(), shape.as_slice()) {
            (false, [a, b]) => ([a, b], None),
            (true, [a, b, v]) => ([a, b], Some(v.eval(&bindings).ok_or_else(refuse)? as usize)),
            _ => return Err(refuse()),
        };
        let symbols = axes.map(|d| d.as_symbol());
        let (time, time_first) = match symbols {
            [Some(a), Some(t)] if a == batch && t != batch => (t.to_string(), false),
            [Some(t), Some(a)] if a == batch && t != batch => (t.to_string(), true),
            _ => return Err(refuse()),
        };
        Ok(TokenAxes { input: name.to_string(), batch: batch.to_string(), time, one_hot, time_first })
    }

    /// `tokens` as this input at a batch of one: ids, or one-hot rows, in token order (which,
    /// at a batch of one, is the memory order of either layout).
    pub fn tensor(&self, tokens: &[u32], device: &Device) -> Result<Tensor, SampleError> {
        let mut dims = match self.time_first {
            true => vec![tokens.len(), 1],
            false => vec![1, tokens.len()],
        };
        dims.extend(self.one_hot);
        Ok(match self.one_hot {
            None => Tensor::from_vec(tokens.iter().map(|t| i64::from(*t)).collect::<Vec<_>>(), dims, device)?,
            Some(v) => {
                let mut rows = vec![0f32; tokens.len() * v];
                for (row, t) in rows.chunks_mut(v).zip(tokens) {
                    let hot = row.get_mut(*t as usize).ok_or_else(|| {
                        SampleError::Usage(format!(
                            "token {t} is outside input `{}`'s {v} classes",
                            self.input
                        ))
                    })?;
                    *hot = 1.0;
                }
                Tensor::from_vec(rows, dims, device)?
            }
        })
    }
}

/// The dtype and declared shape of input `name`.
pub(super) fn input_type(
    model: &Model,
    name: &str,
) -> Result<(crate::ir::tensor::DType, Vec<Dim>), SampleError> {
    let g = model.graph();
    let id = g.inputs.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
    let ty = id
        .and_then(|id| g.node(id).outputs.first())
        .ok_or_else(|| SampleError::Usage(format!("model {} has no input `{name}`", g.name)))?;
    Ok((ty.dtype, ty.shape.clone()))
}

/// The next-token scores after a sequence of tokens, one way or the other, for a model whose
/// other inputs (a seq2seq model's source) hold the same tensor at every token.
pub struct Decoder {
    model: Model,
    /// The model at one token a pass, its parameters the ones every other binding shares.
    step: Lowered,
    output: usize,
    tokens: TokenAxes,
    /// The other inputs' tensors, by input position.
    fixed: Vec<Option<Tensor>>,
    cached: bool,
    /// Rerunning: the model bound to each prefix length met so far.
    by_len: HashMap<usize, Lowered>,
}

/// Where one sequence's decoding stands: the layer states a cached decoder carries and how
/// many of the sequence's tokens are in them. Cloned when a beam branches.
#[derive(Clone, Debug, Default)]
pub struct Cursor {
    pass: Pass,
    fed: usize,
}

impl Decoder {
    /// A decoder that feeds `tokens` to the model, one a pass carrying each layer's state when
    /// `cached`, else the whole prefix each call, by a model bound to its length.
    pub fn new(model: Model, step: Lowered, tokens: TokenAxes, cached: bool) -> Decoder {
        let names = step.output_names();
        let output = names.iter().position(|n| *n == "logits").unwrap_or(0);
        let fixed = vec![None; step.inputs().len()];
        Decoder { model, step, output, tokens, fixed, cached, by_len: HashMap::new() }
    }

    /// Gives input `name` the same tensor at every token (a seq2seq model's source).
    pub fn with_fixed(mut self, name: &str, tensor: Tensor) -> Result<Decoder, SampleError> {
        let at = self.step.inputs().iter().position(|i| i.name == name);
        let slot = at
            .and_then(|i| self.fixed.get_mut(i))
            .ok_or_else(|| SampleError::Usage(format!("model {} has no input `{name}`", self.step.name)))?;
        *slot = Some(tensor);
        Ok(self)
    }

    /// A cursor at the start of a sequence.
    pub fn start(&self) -> Cursor {
        let fixed: Vec<&str> = self.step.inputs().iter().map(|i| i.name.as_str()).collect();
        let fixed: Vec<&str> = fixed.into_iter().filter(|n| *n != self.tokens.input).collect();
        let pass = match self.cached {
            true => Pass {
                states: Some(self.step.new_states()),
                reuse: (!fixed.is_empty()).then(|| Reuse::of_inputs(&fixed)),
                ..Pass::default()
            },
            false => Pass::default(),
        };
        Cursor { pass, fed: 0 }
    }

    /// The scores of the token after `tokens`; a cached decoder's cursor must have been given
    /// the tokens of its earlier calls, followed by new ones.
    pub fn scores(&mut self, cursor: &mut Cursor, tokens: &[u32]) -> Result<Vec<f32>, SampleError> {
        let out = if self.cached {
            if cursor.fed >= tokens.len() {
                return Err(SampleError::Usage("a cached decoder needs a new token each call".into()));
            }
            let mut last = None;
            for t in cursor.fed..tokens.len() {
                let inputs = self.inputs(&tokens[t..=t])?;
                last = Some(self.step.infer_with(&inputs, &mut cursor.pass)?);
            }
            cursor.fed = tokens.len();
            last.ok_or_else(|| SampleError::Usage("no token to feed".into()))?
        } else {
            let inputs = self.inputs(tokens)?;
            let len = tokens.len();
            let model = match self.by_len.entry(len) {
                Entry::Occupied(built) => built.into_mut(),
                Entry::Vacant(slot) => slot
                    .insert(self.model.build_sharing(&self.step, &[(self.tokens.time.clone(), len as i64)])?),
            };
            model.infer(&inputs, false)?
        };
        last_scores(out.get(self.output))
    }

    /// The model's inputs in order: the fixed tensors and `tokens` at a batch of one.
    fn inputs(&self, tokens: &[u32]) -> Result<Vec<Tensor>, SampleError> {
        let device = self.step.device();
        let at = self.step.inputs().iter().position(|i| i.name == self.tokens.input);
        (self.fixed.iter().enumerate())
            .map(|(i, t)| match t {
                _ if Some(i) == at => self.tokens.tensor(tokens, device),
                Some(t) => Ok(t.clone()),
                None => Err(SampleError::Usage(format!(
                    "input `{}` of model {} has no tensor",
                    self.step.inputs()[i].name,
                    self.step.name
                ))),
            })
            .collect()
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
