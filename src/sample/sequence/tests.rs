use super::*;

fn decoders(spec: &str) -> (Decoder, Decoder) {
    let build = || {
        let model = Model::from_source("lm.wick", spec, &Options::default()).unwrap();
        let axes = TokenAxes::of(&model).unwrap();
        let model = model.rebound(&[(axes.batch, 1), (axes.time, 1)]).unwrap();
        let step = model.build_seeded(&Device::Cpu, DType::F32, 7).unwrap();
        (model, step)
    };
    let (m1, s1) = build();
    let (m2, s2) = build();
    let axes = TokenAxes::of(&m1).unwrap();
    (Decoder::new(m1, s1, axes.clone(), true), Decoder::new(m2, s2, axes, false))
}

/// After every prefix of a token sequence, the cached decoder's scores equal the scores of the
/// whole prefix run again, within 1e-5.
fn cache_matches_rerun(spec: &str) {
    let (mut cached, mut rerun) = decoders(spec);
    let (mut c, mut r) = (cached.start(), rerun.start());
    let tokens: Vec<u32> = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8].to_vec();
    let mut worst = 0.0f32;
    for len in 1..=tokens.len() {
        let (a, b) =
            (cached.scores(&mut c, &tokens[..len]).unwrap(), rerun.scores(&mut r, &tokens[..len]).unwrap());
        assert_eq!(a.len(), b.len());
        worst = a.iter().zip(&b).fold(worst, |m, (x, y)| m.max((x - y).abs()));
    }
    assert!(worst < 1e-5, "{worst}");
    // The positions mattered: the scores are not the same at every step.
    let first = rerun.scores(&mut r, &tokens[..1]).unwrap();
    assert_ne!(first, rerun.scores(&mut r, &tokens[..2]).unwrap());
}

#[test]
fn a_key_value_cache_equals_rerunning_the_prefix() {
    cache_matches_rerun(
        "dim N = 1\ndim T = 16\nmodel TinyGPT {\n input ids: [N, T] of i64\n \
         x = ids |> wte: Embedding(11, 8) |> wpe: LearnedPositions(32)\n \
         a = x + (x |> ln_1: LayerNorm |> attn: MultiheadAttention(8, 2, batch_first=true, causal=true))\n \
         b = a + (a |> ln_2: LayerNorm |> attn2: MultiheadAttention(8, 4, batch_first=true, causal=true))\n \
         output logits = b |> head: Linear(11)\n}\n",
    );
}

#[test]
fn sinusoidal_positions_continue_under_the_cache() {
    cache_matches_rerun(
        "dim N = 1\ndim T = 4\nmodel SinGPT {\n input ids: [N, T] of i64\n \
         x = ids |> wte: Embedding(11, 6) |> pos: SinusoidalPositions(64)\n \
         a = x + (x |> attn: MultiheadAttention(6, 3, batch_first=true, causal=true))\n \
         output logits = a |> head: Linear(11)\n}\n",
    );
}

/// std/llama.wick's decoder: its rotary positions continue under the cache and its grouped-query
/// attention keeps the rotated keys of every earlier position.
#[test]
fn a_llama_decoder_under_the_cache_equals_rerunning_the_prefix() {
    cache_matches_rerun(
        "use \"std/llama.wick\"\ndim N = 1\ndim T = 16\nmodel TinyLlama {\n input ids: [N, T] of i64\n \
         output logits = ids |> ...LlamaForCausalLM(vocab_size=11, hidden_size=12, intermediate_size=20, \
         num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2)\n}\n",
    );
}

#[test]
fn a_carried_recurrent_state_equals_rerunning_the_prefix() {
    cache_matches_rerun(
        "dim N = 1\ndim T = 8\nmodel CharLSTM {\n input ids: [N, T] of i64\n \
         out, h, c = ids |> embed: Embedding(11, 5) |> lstm: LSTM(7, num_layers=2, batch_first=true)\n \
         logits = out |> reshape([N * T, 7]) |> fc: Linear(11)\n output logits, h, c\n}\n",
    );
    cache_matches_rerun(
        "dim N = 1\ndim T = 8\nmodel CharGRU {\n input ids: [N, T] of i64\n \
         out, h = ids |> embed: Embedding(11, 5) |> gru: GRU(6, batch_first=true)\n \
         output logits = out |> fc: Linear(11)\n}\n",
    );
}

#[test]
fn models_that_take_no_token_ids_are_refused() {
    let floats = Model::from_source(
        "f.wick",
        "dim N = 1\nmodel F {\n input x: [N, 4]\n output y = x |> fc: Linear(3)\n}\n",
        &Options::default(),
    )
    .unwrap();
    let e = TokenAxes::of(&floats).unwrap_err().to_string();
    assert!(e.contains("input `x` is f32 [N, 4]") && e.contains("token ids [N, T] of i64"), "{e}");
    let fixed = Model::from_source(
        "i.wick",
        "model I {\n input ids: [1, 5] of i64\n output y = ids |> e: Embedding(5, 2)\n}\n",
        &Options::default(),
    )
    .unwrap();
    let e = TokenAxes::of(&fixed).unwrap_err().to_string();
    assert!(e.contains("not two dims named by `dim`"), "{e}");
}

#[test]
fn a_prime_without_a_vocabulary_is_token_ids() {
    assert_eq!(encode_tokens(None, " 5 12\n3", "--prime").unwrap(), [5, 12, 3]);
    assert!(encode_tokens(None, "model ", "--prime")
        .unwrap_err()
        .to_string()
        .contains("token ids separated by spaces"));
    let chars = Vocabulary::of_chars("model ");
    assert!(encode_tokens(Some(&chars), "", "--prime")
        .unwrap_err()
        .to_string()
        .contains("at least one token"));
    assert_eq!(decode(None, &[1, 2]).unwrap(), "1 2");
}

#[test]
fn layers_that_see_later_positions_cannot_carry_state() {
    let model = |attn: &str, rnn: &str| {
        let spec = format!(
            "dim N = 1\ndim T = 4\nmodel M {{\n input ids: [N, T] of i64\n \
             x = ids |> e: Embedding(5, 4)\n a = x |> attn: MultiheadAttention(4, 2, batch_first=true{attn})\n \
             y, h = a |> rnn: GRU(4, batch_first=true{rnn})\n output y\n}}\n"
        );
        Model::from_source("m.wick", &spec, &Options::default()).unwrap()
    };
    assert_eq!(uncacheable_lm(&model(", causal=true", "")), None);
    let why = uncacheable_lm(&model("", "")).unwrap();
    assert!(why.contains("`attn` attends to later positions"), "{why}");
    let why = uncacheable_lm(&model(", causal=true", ", bidirectional=true")).unwrap();
    assert!(why.contains("`rnn` also runs backwards"), "{why}");
    // Scaled dot-product attention: not causal, or with a mask shaped for the whole sequence.
    let sdpa = |args: &str| {
        let spec = format!(
            "dim N = 1\ndim T = 4\nmodel M {{\n input ids: [N, T] of i64\n \
             x = ids |> e: Embedding(5, 4) |> reshape([N, 1, T, 4])\n m = Parameter([T, T])\n \
             output y = sdpa: ScaledDotProductAttention(x, x, x{args})\n}}\n"
        );
        uncacheable_lm(&Model::from_source("m.wick", &spec, &Options::default()).unwrap())
    };
    assert_eq!(sdpa(", causal=true"), None);
    assert!(sdpa("").unwrap().contains("`sdpa` attends to later positions"));
    assert!(sdpa(", attn_mask=m, causal=true").unwrap().contains("`sdpa` takes an attn_mask"));
}

fn uncacheable_lm(model: &Model) -> Option<String> {
    uncacheable(model, &["ids"])
}
