//! The transformer blocks of `std/transformer.wick` beyond what the catalog exercises:
//! pre-norm placement, the activation choice, batch-first cross-attention.

fn compile(body: &str) -> wick::Compiled {
    let spec = format!("use \"std/transformer.wick\"\ndim N = 2\nmodel M {{\n{body}\n}}\n");
    wick::compile_source("m.wick", &spec, &wick::Options::default())
}

/// Parameter paths in graph order (the order layers run in).
fn paths(c: &wick::Compiled) -> Vec<String> {
    assert!(!c.diagnostics.has_errors(), "{}", c.render_diagnostics(wick::diag::RenderStyle::PLAIN));
    c.graph.as_ref().expect("graph").parameters().into_iter().map(|p| p.0).collect()
}

fn position(paths: &[String], path: &str) -> usize {
    paths.iter().position(|p| p == path).unwrap_or_else(|| panic!("no {path} in {paths:?}"))
}

#[test]
fn norm_first_moves_each_norm_before_its_sublayer() {
    let layer = |norm_first: bool| {
        compile(&format!(
            "input x: [N, 9, 64]\n y = x |> l: TransformerEncoderLayer(4, 128, batch_first=true, \
             norm_first={norm_first})\n output y"
        ))
    };
    let (post, pre) = (paths(&layer(false)), paths(&layer(true)));
    assert!(position(&post, "l.norm1.weight") > position(&post, "l.self_attn.in_proj_weight"));
    assert!(position(&pre, "l.norm1.weight") < position(&pre, "l.self_attn.in_proj_weight"));
    assert!(position(&pre, "l.norm2.weight") < position(&pre, "l.linear1.weight"));
    let (mut a, mut b) = (post.clone(), pre.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same parameters either way");
}

#[test]
fn activation_is_checked_and_chosen() {
    let c = compile(
        "input x: [N, 9, 64]\n y = x |> l: TransformerEncoderLayer(4, 128, activation=\"gelu_tanh\")\n output y",
    );
    let s = c.summary(None).expect("summary");
    assert!(s.rows.iter().any(|r| r.path == "l.gelu" && r.op == "GELU"), "{:?}", s.rows);
    let c = compile(
        "input x: [N, 9, 64]\n y = x |> l: TransformerEncoderLayer(4, activation=\"swish\")\n output y",
    );
    let d = c.diagnostics.items.iter().find(|d| d.code == "E0303").expect("a failed assert");
    assert!(d.message.contains("found swish"), "{}", d.message);
}

#[test]
fn batch_first_decoder_attends_to_a_memory_of_another_length() {
    let c = compile(
        "input tgt: [N, 7, 64]\n input memory: [N, 5, 64]\n \
         y = tgt |> decoder: TransformerDecoder(memory, 2, 4, 128, batch_first=true, norm_first=true, \
         final_norm=true)\n output y: [N, 7, 64]",
    );
    let p = paths(&c);
    assert!(p.contains(&"decoder.layers.1.multihead_attn.in_proj_weight".to_string()));
    assert!(p.contains(&"decoder.norm.weight".to_string()));
    // Per layer, cross-attention: 2 * ((2*7 + 2*5) * 64^2 + 2 * 7 * 5 * 64).
    let s = c.summary(None).expect("summary");
    let cross = s.rows.iter().find(|r| r.path == "decoder.layers.0.multihead_attn").expect("row");
    assert_eq!(cross.macs, Some(wick::report::DimValue::Int(2 * (24 * 4096 + 2 * 35 * 64))));
}
