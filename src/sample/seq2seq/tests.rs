use candle_core::{DType, Device};

use super::*;
use crate::sample::sequence::Cursor;

/// The model's decoder at a batch of one with `source` fixed, cached or not.
fn decoder(spec: &str, source: &[u32], cached: bool) -> Decoder {
    let model = Model::from_source("s2s.wick", spec, &Options::default()).unwrap();
    let (src, tgt) = roles(&model, None).unwrap();
    let bind = [(tgt.batch.clone(), 1), (src.time.clone(), source.len() as i64), (tgt.time.clone(), 1)];
    let model = model.rebound(&bind).unwrap();
    let step = model.build_seeded(&Device::Cpu, DType::F32, 7).unwrap();
    let source = src.tensor(source, &Device::Cpu).unwrap();
    Decoder::new(model, step, tgt, cached).with_fixed(&src.input, source).unwrap()
}

/// After each prefix of an output, the decoder that carries its states (and runs the layers
/// that see only the source once) scores the next token as running the whole model does.
fn cache_matches_rerun(spec: &str) {
    let source = [3, 1, 4, 1, 5];
    let (mut cached, mut rerun) = (decoder(spec, &source, true), decoder(spec, &source, false));
    let (mut c, mut r) = (cached.start(), Cursor::default());
    let tokens = [6, 2, 0, 5, 5, 1, 3];
    let mut worst = 0.0f32;
    for len in 1..=tokens.len() {
        let (a, b) =
            (cached.scores(&mut c, &tokens[..len]).unwrap(), rerun.scores(&mut r, &tokens[..len]).unwrap());
        assert_eq!(a.len(), 7);
        worst = a.iter().zip(&b).fold(worst, |m, (x, y)| m.max((x - y).abs()));
    }
    assert!(worst < 1e-5, "{worst}");
    // The source mattered: another one scores differently.
    let mut other = decoder(spec, &[0, 0, 0, 0, 0], false);
    assert_ne!(
        other.scores(&mut Cursor::default(), &tokens[..3]).unwrap(),
        rerun.scores(&mut r, &tokens[..3]).unwrap()
    );
}

#[test]
fn a_gru_encoder_decoder_decodes_step_by_step_as_it_runs_whole() {
    // The encoder is bidirectional: it runs once, over the whole source, never carried.
    cache_matches_rerun(
        "dim N = 1\ndim S = 5\ndim T = 4\nmodel GruS2S {\n input src: [N, S] of i64\n input tgt: [N, T] of i64\n \
         states, h = src |> se: Embedding(7, 5) |> enc: GRU(6, bidirectional=true, batch_first=true)\n \
         context = slice(h, axis=0, start=1) |> permute([1, 0, 2]) |> bridge: Linear(6)\n \
         out, state = ((tgt |> te: Embedding(7, 6)) + context) |> dec: GRU(6, num_layers=2, batch_first=true)\n \
         output logits = out |> fc: Linear(7)\n}\n",
    );
}

#[test]
fn a_transformer_encoder_decoder_decodes_step_by_step_as_it_runs_whole() {
    // Encoder self-attention sees the whole source; the decoder's self-attention is causal and
    // cached; its attention to the encoder's output is recomputed against the same memory.
    cache_matches_rerun(
        "use \"std/transformer.wick\"\ndim N = 1\ndim S = 5\ndim T = 4\nmodel TinyTranslator {\n \
         input src: [N, S] of i64\n input tgt: [N, T] of i64\n \
         memory = src |> se: Embedding(7, 8) |> sp: LearnedPositions(16)\n \
                      |> encoder: TransformerEncoder(num_layers=2, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=true)\n \
         x = tgt |> te: Embedding(7, 8) |> tp: LearnedPositions(16)\n \
         y = decoder: TransformerDecoderLayer(x, memory, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=true, causal=true)\n \
         output logits = y |> fc: Linear(7)\n}\n",
    );
}

#[test]
fn a_beam_scores_at_least_greedy_decoding() {
    let spec = "dim N = 1\ndim S = 5\ndim T = 4\nmodel GruS2S {\n input src: [N, S] of i64\n input tgt: [N, T] of i64\n \
                states, h = src |> se: Embedding(7, 5) |> enc: GRU(6, batch_first=true)\n \
                context = h |> permute([1, 0, 2]) |> bridge: Linear(6)\n \
                out, state = ((tgt |> te: Embedding(7, 6)) + context) |> dec: GRU(6, batch_first=true)\n \
                output logits = out |> fc: Linear(7)\n}\n";
    let search = |width: usize| {
        let mut d = decoder(spec, &[3, 1, 4, 1, 5], true);
        let start = d.start();
        beam::search(&[6], start, width, 6, Some(0), |c, t| d.scores(c, t)).unwrap()
    };
    let (greedy, beam4) = (search(1), search(4));
    assert_eq!(greedy.len(), 1);
    assert!(beam4.len() > 1 && beam4.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(beam4[0].score >= greedy[0].score - 1e-9, "{beam4:?} vs {greedy:?}");
}

#[test]
fn the_roles_of_the_inputs_are_checked() {
    let model = |inputs: &str| {
        let spec = format!("dim N = 1\ndim S = 3\ndim T = 2\nmodel M {{\n{inputs}\n output y = a |> e: Embedding(5, 2)\n}}\n");
        Model::from_source("m.wick", &spec, &Options::default()).unwrap()
    };
    let one = model(" input a: [N, S] of i64");
    let e = roles(&one, None).unwrap_err().to_string();
    assert!(e.contains("has 1 inputs") && e.contains("--source-input"), "{e}");
    let alike = model(" input a: [N, S] of i64\n input b: [N, S] of i64");
    let e = roles(&alike, None).unwrap_err().to_string();
    assert!(e.contains("share exactly one dim, the batch; they share N, S"), "{e}");
    let floats = model(" input a: [N, S] of i64\n input b: [N, T]");
    let e = roles(&floats, None).unwrap_err().to_string();
    assert!(e.contains("input `b` of model M is f32 [N, T]") && e.contains("one-hot rows"), "{e}");
    let named = roles(&floats, Some(&("a".into(), "zz".into()))).unwrap_err().to_string();
    assert!(named.contains("no input `zz`"), "{named}");
    let (s, t) = roles(&model(" input a: [S, N] of i64\n input b: [T, N, 4]"), None).unwrap();
    assert!(s.time_first && s.time == "S" && s.one_hot.is_none());
    assert!(t.time_first && t.time == "T" && t.one_hot == Some(4));
}
