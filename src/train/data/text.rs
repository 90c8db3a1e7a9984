//! The `text:` source: a corpus cut into (input, next-token target) windows for a language
//! model, its tokens the corpus's characters or a Hugging Face `tokenizer.json`'s.
//!
//! The vocabulary travels with the run: a training run writes it into the metadata of the
//! weights files ([`Vocabulary::metadata`]), where `wick sample` finds it to encode a prime and
//! decode what the model writes.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};

use super::convert::{Named, Raw};
use super::DataError;

/// The weights files' metadata key, its value `{"chars": [...]}` or `{"tokenizer": "..."}`
/// (the `tokenizer.json` text) as JSON.
pub const METADATA_KEY: &str = "wick.vocabulary";

/// More ids than this in one array is a corpus or a stride no example set needs (1 GiB of i64).
const MAX_VALUES: usize = 1 << 27;

/// How text becomes token ids and back.
#[derive(Clone, Debug)]
pub enum Vocabulary {
    /// One token per character, ids in the order of the characters' code points.
    Chars(Vec<char>),
    /// A Hugging Face tokenizer, with the `tokenizer.json` text it was read from.
    Tokenizer { json: String, tokenizer: Box<tokenizers::Tokenizer> },
}

impl PartialEq for Vocabulary {
    fn eq(&self, other: &Vocabulary) -> bool {
        match (self, other) {
            (Vocabulary::Chars(a), Vocabulary::Chars(b)) => a == b,
            (Vocabulary::Tokenizer { json: a, .. }, Vocabulary::Tokenizer { json: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Vocabulary {
    /// The distinct characters of `text`.
    pub fn of_chars(text: &str) -> Vocabulary {
        Vocabulary::Chars(text.chars().collect::<BTreeSet<char>>().into_iter().collect())
    }

    /// A `tokenizer.json`'s text.
    pub fn tokenizer(json: String) -> Result<Vocabulary, String> {
        let tokenizer = json.parse::<tokenizers::Tokenizer>().map_err(|e| e.to_string())?;
        Ok(Vocabulary::Tokenizer { json, tokenizer: Box::new(tokenizer) })
    }

    /// How many ids there are: the size of the model's embedding table and output.
    pub fn len(&self) -> usize {
        match self {
            Vocabulary::Chars(chars) => chars.len(),
            Vocabulary::Tokenizer { tokenizer, .. } => tokenizer.get_vocab_size(true),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids of `text`; a character the vocabulary lacks is an error naming it and where it
    /// is (line and column, from 1).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        match self {
            Vocabulary::Chars(chars) => {
                let ids: HashMap<char, u32> = chars.iter().enumerate().map(|(i, c)| (*c, i as u32)).collect();
                let (mut line, mut column) = (1, 0);
                let mut out = Vec::with_capacity(text.len());
                for c in text.chars() {
                    column += 1;
                    match ids.get(&c) {
                        Some(id) => out.push(*id),
                        None => {
                            return Err(format!(
                                "{line}:{column}: the character {c:?} is not in the vocabulary of {} \
                                 characters the model was trained on",
                                chars.len()
                            ))
                        }
                    }
                    if c == '\n' {
                        (line, column) = (line + 1, 0);
                    }
                }
                Ok(out)
            }
            Vocabulary::Tokenizer { tokenizer, .. } => {
                let encoding = tokenizer.encode(text, false).map_err(|e| e.to_string())?;
                Ok(encoding.get_ids().to_vec())
            }
        }
    }

    /// The text of `ids`; an id past the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        match self {
            Vocabulary::Chars(chars) => ids
                .iter()
                .map(|id| {
                    chars.get(*id as usize).copied().ok_or_else(|| {
                        format!("token {id} is past the vocabulary of {} characters", chars.len())
                    })
                })
                .collect(),
            Vocabulary::Tokenizer { tokenizer, .. } => {
                tokenizer.decode(ids, false).map_err(|e| e.to_string())
            }
        }
    }

    /// The metadata entry a weights file carries it in.
    pub fn metadata(&self) -> HashMap<String, String> {
        let value = match self {
            Vocabulary::Chars(chars) => serde_json::json!({ "chars": chars }),
            Vocabulary::Tokenizer { json, .. } => serde_json::json!({ "tokenizer": json }),
        };
        HashMap::from([(METADATA_KEY.to_string(), value.to_string())])
    }

    /// Read back from a weights file's metadata: `None` without the entry, an error when it is
    /// there but unreadable.
    pub fn from_metadata(metadata: &HashMap<String, String>) -> Result<Option<Vocabulary>, String> {
        let Some(value) = metadata.get(METADATA_KEY) else { return Ok(None) };
        let bad = |e: String| format!("the weights' `{METADATA_KEY}` metadata: {e}");
        let value: serde_json::Value = serde_json::from_str(value).map_err(|e| bad(e.to_string()))?;
        if let Some(chars) = value.get("chars") {
            let chars: Vec<char> = serde_json::from_value(chars.clone()).map_err(|e| bad(e.to_string()))?;
            return Ok(Some(Vocabulary::Chars(chars)));
        }
        match value.get("tokenizer").and_then(|t| t.as_str()) {
            Some(json) => Vocabulary::tokenizer(json.to_string()).map(Some).map_err(bad),
            None => Err(bad("expected `chars` or `tokenizer`".into())),
        }
    }
}

/// The vocabulary of a text source: its tokenizer's, or the characters of the corpus at `path`.
pub(super) fn vocabulary(path: &Path, tokenizer: Option<&Path>) -> Result<Vocabulary, DataError> {
    match tokenizer {
        Some(file) => Vocabulary::tokenizer(read(file)?)
            .map_err(|message| DataError::Array { what: format!("`{}`", file.display()), message }),
        None => Ok(Vocabulary::of_chars(&read(path)?)),
    }
}

/// The corpus at `path` as windows of `seq_len` ids, one every `stride`: features `[M, seq_len]`
/// and targets the same windows one token on (i64).
pub(super) fn windows(
    path: &Path,
    vocabulary: &Vocabulary,
    seq_len: usize,
    stride: usize,
) -> Result<Raw, DataError> {
    let what = format!("`{}`", path.display());
    let error = |message: String| DataError::Array { what: what.clone(), message };
    let ids = vocabulary.encode(&read(path)?).map_err(error)?;
    let count = match ids.len().checked_sub(seq_len + 1) {
        Some(room) => room / stride + 1,
        None => {
            return Err(error(format!(
                "{} tokens: a window of `seq_len: {seq_len}` and its next token need {}",
                ids.len(),
                seq_len + 1
            )))
        }
    };
    if count.saturating_mul(seq_len) > MAX_VALUES {
        return Err(error(format!(
            "{count} windows of {seq_len} tokens exceed {MAX_VALUES} ids: raise `stride` or shorten `seq_len`"
        )));
    }
    let take = |offset: usize| -> Result<Tensor, DataError> {
        let values: Vec<i64> = (0..count)
            .flat_map(|w| ids[w * stride + offset..][..seq_len].iter().map(|id| i64::from(*id)))
            .collect();
        Ok(Tensor::from_vec(values, (count, seq_len), &Device::Cpu)?)
    };
    Ok(Raw {
        x: Named::new(format!("{what} windows"), take(0)?),
        y: Some(Named::new(format!("{what} next tokens"), take(1)?)),
    })
}

fn read(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io { path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_round_trip_and_unknown_ones_are_placed() {
        let v = Vocabulary::of_chars("hello world\n");
        assert_eq!(v.len(), 9);
        let ids = v.encode("hold\nloh").unwrap();
        assert_eq!(v.decode(&ids).unwrap(), "hold\nloh");
        let e = v.encode("he\nlz").unwrap_err();
        assert!(e.starts_with("2:2: the character 'z' is not in the vocabulary of 9"), "{e}");
        assert!(v.decode(&[9]).unwrap_err().contains("past the vocabulary of 9"));
        assert_eq!(Vocabulary::from_metadata(&v.metadata()).unwrap(), Some(v));
        assert_eq!(Vocabulary::from_metadata(&HashMap::new()).unwrap(), None);
        let bad = HashMap::from([(METADATA_KEY.to_string(), "{\"words\": 3}".to_string())]);
        assert!(Vocabulary::from_metadata(&bad).unwrap_err().contains("expected `chars` or `tokenizer`"));
    }

    #[test]
    fn windows_hold_the_next_token_as_target() {
        let dir = super::super::test_dir("text-windows");
        let path = dir.join("corpus.txt");
        std::fs::write(&path, "abcdefgh").unwrap();
        let v = Vocabulary::of_chars("abcdefgh");
        let raw = windows(&path, &v, 3, 2).unwrap();
        // Windows start at 0, 2, 4: the last needs ids 4..8, the corpus has 8.
        assert_eq!(raw.x.tensor.to_vec2::<i64>().unwrap(), [[0, 1, 2], [2, 3, 4], [4, 5, 6]]);
        let y = raw.y.unwrap().tensor.to_vec2::<i64>().unwrap();
        assert_eq!(y, [[1, 2, 3], [3, 4, 5], [5, 6, 7]]);
        let e = windows(&path, &v, 8, 1).unwrap_err().to_string();
        assert!(e.contains("8 tokens: a window of `seq_len: 8` and its next token need 9"), "{e}");
    }

    /// A word-level tokenizer written by hand: ids as its vocabulary says.
    #[test]
    fn a_tokenizer_json_encodes_and_decodes() {
        let json = r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
            "decoder": null, "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "model": 1,
            "input": 2, "x": 3}, "unk_token": "[UNK]"}}"#;
        let v = Vocabulary::tokenizer(json.to_string()).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v.encode("model x input").unwrap(), [1, 3, 2]);
        assert_eq!(v.decode(&[1, 3]).unwrap(), "model x");
        assert_eq!(Vocabulary::from_metadata(&v.metadata()).unwrap(), Some(v));
        assert!(Vocabulary::tokenizer("{}".into()).is_err());
    }
}
