//! The language reads what a spec says: indexing, keywords as prefixes of names and as labels,
//! and summaries that never pass off a spec with errors as complete.

use wick::{compile_source, Compiled, Options};

fn compile(body: &str) -> Compiled {
    let spec = format!("dim N = 1\nmodel M {{\n    input x: [N, 3, 16, 16]\n{body}\n}}\n");
    compile_source("m.wick", &spec, &Options::default())
}

fn params(c: &Compiled) -> Vec<(String, Vec<i64>)> {
    let rendered = c.render_diagnostics(wick::diag::RenderStyle::PLAIN);
    assert!(!c.diagnostics.has_errors(), "{rendered}");
    let g = c.graph.as_ref().expect("a graph");
    g.parameters()
        .into_iter()
        .map(|(path, shape, _)| (path, shape.iter().map(|d| d.as_const().expect("bound")).collect()))
        .collect()
}

#[test]
fn an_index_picks_the_item_it_names() {
    let c = compile(
        "    ks = [3, [5, 7]]\n    y = x |> a: Conv2d(8, ks[1][0]) |> b: Conv2d(4, ks[-2])\n    output y",
    );
    let p = params(&c);
    assert!(p.contains(&("a.weight".into(), vec![8, 3, 5, 5])), "{p:?}");
    assert!(p.contains(&("b.weight".into(), vec![4, 8, 3, 3])), "{p:?}");
}

#[test]
fn every_keyword_may_begin_a_name() {
    for kw in [
        "use", "dim", "block", "model", "train", "input", "output", "return", "assert", "if", "else",
        "repeat", "in", "as", "of", "true", "false",
    ] {
        let name = format!("{kw}s");
        let c = compile(&format!(
            "    {name} = 2\n    {kw}_n = 1\n    y = x |> repeat i in 0..{name} {{ Conv2d(3, 1) }}\n    output y"
        ));
        let p = params(&c);
        assert_eq!(p.len(), 4, "{kw}: two convolutions of weight and bias, got {p:?}");
    }
}

#[test]
fn any_word_labels_a_layer() {
    let c = compile("    y = x |> block: [Conv2d(4, 1), if: ReLU] |> repeat: Conv2d(2, 1)\n    output y");
    let p = params(&c);
    let paths: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(paths, ["block.0.weight", "block.0.bias", "repeat.weight", "repeat.bias"]);
}

#[test]
fn a_spec_with_errors_has_no_summary_and_its_partial_one_says_incomplete() {
    let c = compile("    y = x |> Conv2d(8, 3) |> Lnear(3)\n    output y");
    assert!(matches!(c.summary(None), Err(wick::SummaryError::Errors { count: 1, .. })));
    let partial = c.partial_summary(None).expect("what was built");
    assert!(!partial.complete);
    let json = wick::report::render_json(&partial);
    assert!(json.contains("\"complete\": false"), "{json}");
    let fine = compile("    y = x |> Conv2d(8, 3)\n    output y");
    assert!(fine.summary(None).expect("no errors").complete);
}
