//! Error cases: one small spec per case under `tests/errors/`, each checked for its error code,
//! for where its primary label points, and snapshotted as rendered plain diagnostics.
//!
//! Update the snapshots with `INSTA_UPDATE=always cargo test --test errors` and read every
//! changed `tests/snapshots/errors__*.snap` before committing it.

mod common;
use common::wick;

use std::collections::BTreeMap;
use std::path::Path;

use wick::diag::{Diagnostic, RenderStyle};
use wick::{compile_source, Compiled, Options};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/errors");

fn read(rel: &str) -> String {
    let path = Path::new(DIR).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Compile `tests/errors/{case}.wick`, shown in diagnostics as `{case}.wick`.
fn compile_case(case: &str, opts: &Options) -> Compiled {
    wick::compile_source(&format!("{case}.wick"), &read(&format!("{case}.wick")), opts)
}

/// The diagnostics of `c` with `code`; panics (showing everything) when there are none.
fn with_code<'c>(c: &'c Compiled, code: &str) -> Vec<&'c Diagnostic> {
    let found: Vec<&Diagnostic> = c.diagnostics.items.iter().filter(|d| d.code == code).collect();
    assert!(
        !found.is_empty(),
        "expected an error {code}, got:\n{}",
        c.render_diagnostics(RenderStyle::PLAIN)
    );
    found
}

/// Checks that some `code` diagnostic has its primary label on exactly `snippet` at `line`.
fn assert_points_at(c: &Compiled, code: &str, line: usize, snippet: &str) {
    let ok = with_code(c, code).iter().any(|d| match &d.primary {
        Some(p) => {
            let (l, _) = c.sources.get(p.span.file).line_col(p.span.start as usize);
            // Trailing whitespace is trimmed here too (`spans_end_before_trailing_whitespace` holds spans to it).
            l == line && c.sources.snippet(p.span).trim_end() == snippet
        }
        None => false,
    });
    let got: Vec<String> = with_code(c, code)
        .iter()
        .filter_map(|d| d.primary.as_ref())
        .map(|p| format!("{} `{}`", c.sources.location(p.span), c.sources.snippet(p.span)))
        .collect();
    assert!(ok, "{code}: expected the primary label on `{snippet}` at line {line}, got {got:?}");
}

/// Some `code` diagnostic's message, labels, help or notes contain `text`.
fn assert_mentions(c: &Compiled, code: &str, text: &str) {
    let ok = with_code(c, code).iter().any(|d| {
        d.message.contains(text)
            || d.help.as_deref().is_some_and(|h| h.contains(text))
            || d.notes.iter().any(|n| n.contains(text))
            || d.primary.iter().chain(d.secondary.iter()).any(|l| l.text.contains(text))
    });
    assert!(ok, "{code}: expected a mention of {text:?}, got:\n{}", c.render_diagnostics(RenderStyle::PLAIN));
}

/// Compile a case, check it fails with `code`, snapshot its rendered diagnostics.
fn case_with(case: &str, code: &str, opts: &Options) -> Compiled {
    let c = compile_case(case, opts);
    let rendered = c.render_diagnostics(RenderStyle::PLAIN);
    assert!(c.diagnostics.has_errors(), "{case}: expected errors, got:\n{rendered}");
    with_code(&c, code);
    let header = |l: &str| l.trim() == format!("error[{code}]") || l.trim() == format!("warning[{code}]");
    assert!(rendered.lines().any(header), "{case}: the rendering lacks {code}:\n{rendered}");
    assert!(rendered.is_ascii(), "{case}: plain rendering must be ASCII:\n{rendered}");
    assert!(!rendered.contains('\u{1b}'), "{case}: plain rendering must not colour:\n{rendered}");
    insta::assert_snapshot!(case, rendered);
    c
}

fn case(name: &str, code: &str) -> Compiled {
    case_with(name, code, &Options::default())
}

// ---- the required cases ----

#[test]
fn unknown_op() {
    let c = case("unknown_op", "E0202");
    assert_points_at(&c, "E0202", 6, "Conv2D");
    assert_mentions(&c, "E0202", "did you mean `Conv2d`?");
}

#[test]
fn unknown_keyword() {
    let c = case("unknown_keyword", "E0203");
    assert_points_at(&c, "E0203", 6, "strides");
    assert_mentions(&c, "E0203", "did you mean `stride`?");
}

#[test]
fn missing_argument() {
    let c = case("missing_argument", "E0206");
    assert_points_at(&c, "E0206", 6, "Linear()");
    assert_mentions(&c, "E0206", "missing argument `out_features` of `Linear` (int)");
}

#[test]
fn wrong_argument_type() {
    let c = case("wrong_argument_type", "E0207");
    assert_points_at(&c, "E0207", 6, "\"200\"");
    assert_mentions(&c, "E0207", "expected int");
}

#[test]
fn conv_channel_mismatch() {
    let c = case("conv_channel_mismatch", "E0301");
    assert_points_at(&c, "E0301", 6, "Conv2d(8, 3, groups=4)");
    assert_mentions(&c, "E0301", "6");
}

#[test]
fn batchnorm_mismatch() {
    let c = case("batchnorm_mismatch", "E0301");
    assert_points_at(&c, "E0301", 6, "BatchNorm2d(32)");
    assert_mentions(&c, "E0301", "`num_features` is 32 but the input has 16 channels");
}

#[test]
fn concat_mismatch() {
    let c = case("concat_mismatch", "E0301");
    assert_points_at(&c, "E0301", 8, "concat([a, b], axis=1)");
    assert_mentions(&c, "E0301", "axis 2");
}

#[test]
fn elementwise_mismatch() {
    let c = case("elementwise_mismatch", "E0301");
    assert_points_at(&c, "E0301", 7, "x + h");
    assert_mentions(&c, "E0301", "64");
}

#[test]
fn assert_failed() {
    let c = case("assert_failed", "E0303");
    assert_points_at(&c, "E0303", 5, "cin % groups == 0");
    assert_mentions(&c, "E0303", "channels 6 must divide into 4 groups");
}

#[test]
fn rule_on_dims() {
    let c = case("rule_on_dims", "E0303");
    assert_points_at(&c, "E0303", 9, "H % patch == 0");
    assert_points_at(&c, "E0303", 10, "W % patch == 0");
    // A dim in the message reads as its value, and both rules are reported, nothing after them.
    assert_mentions(&c, "E0303", "the image height 200 must be a multiple of the patch size 16");
    assert_mentions(&c, "E0303", "the image width 230 must be a multiple of the patch size 16");
    assert_eq!(c.diagnostics.items.len(), 2, "{}", c.render_diagnostics(RenderStyle::PLAIN));
}

#[test]
fn input_too_small() {
    let c = case("input_too_small", "E0301");
    assert_points_at(&c, "E0301", 9, "MaxPool2d(3)");
    assert_mentions(
        &c,
        "E0301",
        "input size (H + 1) / 2 - 1 = 2 on spatial axis 0 is too small for kernel 3",
    );
}

#[test]
fn output_type_mismatch() {
    let c = case("output_type_mismatch", "E0302");
    assert_points_at(&c, "E0302", 7, "y");
    assert_mentions(&c, "E0302", "axis 1 is 20, expected 10");
}

#[test]
fn block_return_mismatch() {
    let c = case("block_return_mismatch", "E0302");
    assert_mentions(&c, "E0302", "the result of Mlp");
    assert_mentions(&c, "E0302", "axis 1 is 32, expected 64");
}

#[test]
fn undefined_name() {
    let c = case("undefined_name", "E0201");
    assert_points_at(&c, "E0201", 7, "hiden");
    assert_mentions(&c, "E0201", "did you mean `hidden`?");
}

#[test]
fn duplicate_path() {
    let c = case("duplicate_path", "E0210");
    assert_points_at(&c, "E0210", 6, "Linear(10)");
    assert_mentions(&c, "E0210", "`fc`");
}

#[test]
fn cycle() {
    let c = case("cycle", "E0401");
    assert_mentions(&c, "E0401", "depends on itself");
}

#[test]
fn import_cycle() {
    let mut files = BTreeMap::new();
    files.insert("a.wick".to_string(), read("import_cycle/a.wick"));
    files.insert("b.wick".to_string(), read("import_cycle/b.wick"));
    let c = wick::compile_files("a.wick", files, &Options::default());
    let rendered = c.render_diagnostics(RenderStyle::PLAIN);
    with_code(&c, "E0112");
    assert_points_at(&c, "E0112", 1, "use \"a.wick\"");
    assert_mentions(&c, "E0112", "a.wick -> b.wick -> a.wick");
    insta::assert_snapshot!("import_cycle", rendered);
}

#[test]
fn unbound_dim() {
    let c = case("unbound_dim", "E0305");
    assert_points_at(&c, "E0305", 7, "Linear(T)");
    assert_mentions(&c, "E0305", "`T`");
}

#[test]
fn unbound_repeat() {
    let c = case("unbound_repeat", "E0305");
    assert_points_at(&c, "E0305", 7, "L");
    // A binding makes the same spec compile.
    let opts = Options { bind: vec![("L".into(), 3)], ..Options::default() };
    let ok = compile_case("unbound_repeat", &opts);
    assert!(!ok.diagnostics.has_errors(), "{}", ok.render_diagnostics(RenderStyle::PLAIN));
}

#[test]
fn size_cap() {
    let c = case("size_cap", "E0402");
    assert_mentions(&c, "E0402", "1000000000");
    assert_eq!(c.diagnostics.error_count(), 1, "{}", c.render_diagnostics(RenderStyle::PLAIN));
}

#[test]
fn syntax_error() {
    let c = case("syntax_error", "E0101");
    assert_points_at(&c, "E0101", 4, "modle");
    assert_mentions(&c, "E0101", "`model`");
}

#[test]
fn syntax_error_suggestion() {
    let c = case("syntax_error_suggestion", "E0101");
    assert_points_at(&c, "E0101", 4, "modl");
    assert_mentions(&c, "E0101", "did you mean the keyword `model`?");
}

#[test]
fn misplaced_statement() {
    let c = case("misplaced_statement", "E0212");
    assert_points_at(&c, "E0212", 5, "z");
}

#[test]
fn misplaced_return() {
    let c = case("misplaced_return", "E0212");
    assert_points_at(&c, "E0212", 7, "return y");
}

#[test]
fn too_many_args() {
    let c = case("too_many_args", "E0204");
    assert_points_at(&c, "E0204", 6, "3");
}

#[test]
fn multiple_errors() {
    let c = case("multiple_errors", "E0202");
    assert_points_at(&c, "E0202", 6, "Lienar");
    assert_points_at(&c, "E0203", 7, "biass");
    assert_points_at(&c, "E0302", 9, "c");
    assert_eq!(c.diagnostics.error_count(), 3, "{}", c.render_diagnostics(RenderStyle::PLAIN));
    assert!(c.render_diagnostics(RenderStyle::PLAIN).contains("3 errors"));
}

// ---- more cases ----

#[test]
fn bad_choice() {
    let c = case("bad_choice", "E0207");
    assert_points_at(&c, "E0207", 6, "\"sme\"");
    assert_mentions(&c, "E0207", "did you mean `same`?");
}

#[test]
fn given_twice() {
    let c = case("given_twice", "E0205");
    assert_points_at(&c, "E0205", 6, "out_features");
}

#[test]
fn positional_after_keyword() {
    let c = case("positional_after_keyword", "E0204");
    assert_points_at(&c, "E0204", 6, "1");
}

#[test]
fn missing_block_arg() {
    let c = case("missing_block_arg", "E0206");
    assert_mentions(&c, "E0206", "planes");
}

#[test]
fn layer_as_value() {
    let c = case("layer_as_value", "E0211");
    assert_points_at(&c, "E0211", 6, "ReLU");
}

#[test]
fn value_as_layer() {
    let c = case("value_as_layer", "E0211");
    assert_points_at(&c, "E0211", 7, "h");
}

#[test]
fn block_recursion() {
    case("block_recursion", "E0402");
}

#[test]
fn division_by_zero() {
    let c = case("division_by_zero", "E0306");
    assert_mentions(&c, "E0306", "division by zero");
}

#[test]
fn int_too_large() {
    let c = case("int_too_large", "E0103");
    assert_points_at(&c, "E0103", 6, "99999999999999999999");
}

#[test]
fn nesting_too_deep() {
    case("nesting_too_deep", "E0102");
}

#[test]
fn missing_import() {
    let c = case("missing_import", "E0111");
    assert_points_at(&c, "E0111", 2, "use \"blocks/nowhere.wick\"");
}

#[test]
fn no_model() {
    let c = case("no_model", "E0213");
    // The whole file is the culprit: its start is the place to name.
    assert_points_at(&c, "E0213", 1, "");
}

#[test]
fn work_budget_repeat() {
    let c = case("work_budget_repeat", "E0402");
    assert_points_at(&c, "E0402", 6, "repeat 50000 { repeat 50000 { if false { ReLU } } }");
    assert_mentions(&c, "E0402", "still running this `repeat`");
    assert_eq!(c.diagnostics.error_count(), 1, "{}", c.render_diagnostics(RenderStyle::PLAIN));
}

#[test]
fn work_budget_recursion() {
    let c = case("work_budget_recursion", "E0402");
    assert_points_at(&c, "E0402", 11, "R(25)");
    assert_mentions(&c, "E0402", "call of `R`");
}

#[test]
fn figure_overflow() {
    let c = case("figure_overflow", "E0306");
    assert_points_at(&c, "E0306", 6, "Linear(1000000000)");
    assert_mentions(&c, "E0306", "parameter count");
    assert_mentions(&c, "E0306", "MAC count");
}

/// A spec of one line with a diagnostic far past column 65,535 (where miette's padding
/// overflows): the line is shown as a window around the label, whose column is named.
#[test]
fn long_line() {
    let pad = " ".repeat(70_000);
    let spec = format!("dim N = 1 model Net {{ input x: [N, 4]{pad} y = x |> Lienar(3) output y }}\n");
    let c = wick::compile_source("long_line.wick", &spec, &Options::default());
    assert_points_at(&c, "E0202", 1, "Lienar");
    let rendered = c.render_diagnostics(RenderStyle::PLAIN);
    assert!(rendered.contains("long_line.wick:1:70048"), "{rendered}");
    assert!(rendered.len() < 1500, "the line was not windowed: {} bytes", rendered.len());
    insta::assert_snapshot!("long_line", rendered);
}

/// Labels on many distant lines of a long file each keep their own line number.
#[test]
fn distant_labels_keep_their_lines() {
    let filler: String = (0..5000).map(|i| format!("dim D{i} = {}\n", i + 1)).collect();
    let net = "model Net {\n input x: [N, 4]\n output x\n}\n";
    let spec = format!("dim N = 1\n{filler}{net}{net}");
    let c = wick::compile_source("distant.wick", &spec, &Options::default());
    assert_points_at(&c, "E0209", 5006, "Net");
    let rendered = c.render_diagnostics(RenderStyle::PLAIN);
    assert!(rendered.contains("5002 | model Net {") && rendered.contains("5006 | model Net {"), "{rendered}");
}

#[test]
fn rank_mismatch() {
    let c = case("rank_mismatch", "E0302");
    assert_mentions(&c, "E0302", "rank-2");
}

#[test]
fn rank_error_linear() {
    let c = case("rank_error_linear", "E0301");
    assert_points_at(&c, "E0301", 6, "Conv2d(8, 3)");
}

#[test]
fn shadows_op() {
    let c = case("shadows_op", "E0209");
    assert_points_at(&c, "E0209", 4, "Linear");
}

#[test]
fn duplicate_definition() {
    let c = case("duplicate_definition", "E0209");
    assert_points_at(&c, "E0209", 8, "Head");
}

#[test]
fn reversed_range() {
    case("reversed_range", "E0306");
}

#[test]
fn unknown_model() {
    let opts = Options { model: Some("Nett".into()), ..Options::default() };
    let c = case_with("unknown_model", "E0213", &opts);
    assert_mentions(&c, "E0213", "did you mean `Net`?");
}

#[test]
fn unknown_bind() {
    let opts = Options { bind: vec![("M".into(), 4)], ..Options::default() };
    let c = case_with("unknown_bind", "E0214", &opts);
    assert_mentions(&c, "E0214", "did you mean `N`?");
}

#[test]
fn missing_root_in_memory() {
    let c = wick::compile_files("nothing.wick", BTreeMap::new(), &Options::default());
    with_code(&c, "E0111");
    // No source to point into: the rendering must still work.
    assert!(c.render_diagnostics(RenderStyle::PLAIN).contains("E0111"));
}

/// Every `.wick` file under `tests/errors/` is used by a test above (so none goes stale).
#[test]
fn every_case_file_has_a_test() {
    let src = include_str!("errors.rs");
    for entry in std::fs::read_dir(DIR).expect("tests/errors") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "wick") {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            assert!(src.contains(&format!("\"{stem}\"")), "no test uses tests/errors/{stem}.wick");
        }
    }
}

// ---- regressions: each once a known issue, now fixed ----

fn plain(case: &str) -> String {
    compile_case(case, &Options::default()).render_diagnostics(RenderStyle::PLAIN)
}

#[test]
fn help_is_prefixed_once() {
    let r = plain("unknown_op");
    assert!(!r.contains("help: help:"), "{r}");
}

#[test]
fn spans_end_before_trailing_whitespace() {
    let c = compile_case("misplaced_return", &Options::default());
    let p = with_code(&c, "E0212")[0].primary.clone().expect("primary");
    assert_eq!(c.sources.snippet(p.span), "return y");
    let c = compile_case("multiple_errors", &Options::default());
    let declared = with_code(&c, "E0302")[0].secondary[0].span;
    assert_eq!(c.sources.snippet(declared), "[N, 20]");
}

#[test]
fn a_misspelt_keyword_gets_a_suggestion() {
    let c = compile_case("syntax_error", &Options::default());
    assert_mentions(&c, "E0101", "did you mean the keyword `model`?");
}

#[test]
fn an_unknown_bind_renders_as_ascii() {
    let opts = Options { bind: vec![("M".into(), 4)], ..Options::default() };
    let r = compile_case("unknown_bind", &opts).render_diagnostics(RenderStyle::PLAIN);
    assert!(r.is_ascii(), "{r}");
}

#[test]
fn no_unused_warnings_follow_errors() {
    for case in ["unknown_op", "wrong_argument_type", "undefined_name", "value_as_layer", "block_recursion"] {
        let c = compile_case(case, &Options::default());
        let unused: Vec<&str> =
            c.diagnostics.items.iter().filter(|d| d.code.starts_with("W040")).map(|d| d.code).collect();
        assert!(unused.is_empty(), "{case}: {unused:?}\n{}", c.render_diagnostics(RenderStyle::PLAIN));
    }
}

// ---- the binary ----

#[test]
fn cli_spec_error_exits_1() {
    let out = wick(&["check", "tests/errors/unknown_op.wick"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("E0202"), "{stderr}");
    assert!(stderr.contains("Conv2d"), "{stderr}");
}

#[test]
fn cli_import_cycle_on_disk_exits_1() {
    let out = wick(&["check", "tests/errors/import_cycle/a.wick"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("E0112"), "{stderr}");
}

#[test]
fn cli_missing_file_exits_2() {
    let out = wick(&["check", "tests/errors/no_such_file.wick"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = wick(&["compile", "--summary", "tests/errors/no_such_file.wick"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn cli_directory_exits_2() {
    let out = wick(&["check", "tests/errors"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn cli_bad_bind_exits_2() {
    for bind in ["garbage", "N=abc", "N=0", "N=-3", "=", "N=99999999999999999999"] {
        let out = wick(&["check", "specs/seed_mlp.wick", "--bind", bind]);
        assert_eq!(out.status.code(), Some(2), "--bind {bind}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn cli_bind_of_unknown_dim_exits_1() {
    let out = wick(&["check", "specs/seed_mlp.wick", "--bind", "M=4"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("E0214"), "{stderr}");
}

#[test]
fn cli_summary_with_a_bind_of_unknown_dim_prints_no_table() {
    let out = wick(&["compile", "specs/seed_mlp.wick", "--summary", "--bind", "M=4"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn cli_unknown_subcommand_exits_2() {
    let out = wick(&["frobnicate", "specs/seed_mlp.wick"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cli_good_spec_exits_0() {
    let out = wick(&["check", "specs/seed_mlp.wick"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("185,235"), "{stdout}");
    let out = wick(&["compile", "--summary", "specs/seed_mlp.wick", "--bind", "N=8"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn cli_summary_of_broken_spec_exits_1() {
    let out = wick(&["compile", "--summary", "tests/errors/output_type_mismatch.wick"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bad_tie() {
    let c = case("bad_tie", "E0217");
    assert_points_at(&c, "E0217", 7, "\"body\"");
    assert_mentions(&c, "E0217", "`weight` is [16, 32] here but [32, 64] in `body`");
}

#[test]
fn unknown_tie_target() {
    let c = case("unknown_tie_target", "E0216");
    assert_points_at(&c, "E0216", 7, "\"bodi\"");
    assert_mentions(&c, "E0216", "did you mean `body`?");
}

// ---- what once read silently as something else ----

#[test]
fn a_value_on_a_line_of_its_own_is_an_error_not_a_dropped_index() {
    let c = case("unused_value", "E0219");
    assert_points_at(&c, "E0219", 6, "[1]");
    assert_mentions(&c, "E0219", "`ks[1]` indexes");
}

#[test]
fn an_index_past_the_end_is_located() {
    let c = case("index_out_of_range", "E0218");
    assert_points_at(&c, "E0218", 5, "2");
    assert_mentions(&c, "E0218", "valid indices are 0..1");
}

#[test]
fn a_reserved_word_as_a_name_says_it_is_reserved() {
    let c = case("reserved_word", "E0101");
    assert_points_at(&c, "E0101", 4, "block");
    assert_mentions(&c, "E0101", "`block` is a reserved word");
}

#[test]
fn a_repeat_name_must_be_one_path_segment() {
    let c = case("bad_repeat_name", "E0220");
    assert_points_at(&c, "E0220", 4, "\"\"");
    assert_points_at(&c, "E0220", 5, "\"a.weight\"");
}

// ---- issue 12, item 5: PyTorch's positional order never builds another model ----

#[test]
fn pytorch_order_checks_the_leading_size() {
    let c = case("pytorch_order_mismatch", "E0221");
    assert_points_at(&c, "E0221", 7, "100");
    assert_mentions(&c, "E0221", "`in_features` of `Linear` is given as 100, but its input has 784");
}

#[test]
fn pytorch_order_that_wick_also_reads_is_refused() {
    let c = case("pytorch_order_ambiguous", "E0222");
    assert_points_at(&c, "E0222", 9, "TransformerEncoderLayer(512, 8)");
    assert_mentions(&c, "E0222", "`TransformerEncoderLayer(nhead=512, dim_feedforward=8)`");
    assert_mentions(&c, "E0222", "`TransformerEncoderLayer(d_model=512, nhead=8)`");
}

#[test]
fn a_float_where_an_int_is_due_says_how_to_convert() {
    let c = case("float_as_int", "E0207");
    assert_points_at(&c, "E0207", 6, "ratio * 16");
    assert_mentions(&c, "E0207", "found float `8.0`");
    assert_mentions(&c, "E0207", "`round(x)`, `floor(x)`, `ceil(x)` or `int(x)`");
}

#[test]
fn a_constant_argument_over_a_dim_without_a_value_says_how_to_give_one() {
    let c = case("constant_argument_unbound", "E0208");
    assert_points_at(&c, "E0208", 7, "L");
    assert_mentions(&c, "E0208", "`dim L = 16`");
}

#[test]
fn a_quoted_label_is_one_path_segment() {
    let c = case("bad_label", "E0220");
    assert_points_at(&c, "E0220", 6, "\"stage1.fc\"");
    assert_mentions(&c, "E0220", "a label names one path segment, found `stage1.fc`");
}

#[test]
fn a_row_that_does_not_unpack_into_the_repeats_names() {
    let c = case("repeat_unpack", "E0207");
    assert_points_at(&c, "E0207", 6, "cfg");
    assert_mentions(&c, "E0207", "cannot unpack a list of 2 items into 3 names");
}

#[test]
fn an_op_parameter_named_like_an_op_is_refused() {
    let c = case("op_param_named_like_op", "E0223");
    assert_points_at(&c, "E0223", 4, "scale");
    assert_mentions(&c, "E0223", "`x |> scale` calls the op or block, never the parameter");
}

#[test]
fn an_op_value_with_its_arguments_is_not_called_with_more() {
    let c = case("op_value_with_arguments", "E0223");
    assert_points_at(&c, "E0223", 5, "act(x, 0.1)");
    assert_mentions(&c, "E0223", "apply it as a layer");
}

#[test]
fn a_spread_outside_a_sequence() {
    let c = case("misplaced_spread", "E0224");
    assert_points_at(&c, "E0224", 6, "...ReLU");
    assert_mentions(&c, "E0224", "or inline a block");
}

#[test]
fn an_unknown_block_of_the_library_names_its_use_line() {
    let c = compile_source(
        "m.wick",
        "dim N = 1\nmodel M {\n    input x: [N, 3, 8, 8]\n    y = x |> ConvNormAct(8)\n    output y\n}\n",
        &Options::default(),
    );
    let rendered = c.render_diagnostics(RenderStyle::PLAIN);
    assert!(rendered.contains("`use \"std/conv.wick\"` brings it in"), "{rendered}");
}

// ---- issue 12, items 9 and 11: bare parameters and the new ops ----

#[test]
fn a_parameter_init_is_a_number_or_a_named_rule() {
    let c = case("parameter_bad_init", "E0207");
    assert_points_at(&c, "E0207", 6, "\"trunc\"");
    assert_mentions(&c, "E0207", "trunc_normal");
}

#[test]
fn an_axis_given_by_two_spellings_is_given_twice() {
    let c = case("axis_spelled_twice", "E0205");
    assert_points_at(&c, "E0205", 6, "dim");
    assert_mentions(&c, "E0205", "argument `dim` of `mean` given twice");
}

#[test]
fn a_reflection_wider_than_its_axis_is_refused() {
    let c = case("pad_too_wide", "E0301");
    assert_points_at(&c, "E0301", 6, "pad(x, [1, 3, 1, 1], mode=\"reflect\")");
    assert_mentions(&c, "E0301", "reflect padding of 3 does not fit axis 3 of size 3");
}

#[test]
fn an_undefined_name_that_may_be_an_input_suggests_declaring_it() {
    let c = compile_source(
        "m.wick",
        "dim N = 1\nmodel M {\n    input x: [N, 4]\n    y = pixels |> ReLU\n    output y\n}\n",
        &Options::default(),
    );
    let rendered = c.render_diagnostics(RenderStyle::PLAIN);
    assert!(rendered.contains("declare it in the model: `input pixels: [N, ...]`"), "{rendered}");
}

#[test]
fn every_bad_keyword_of_a_chain_is_reported() {
    let c = compile_source(
        "m.wick",
        "dim N = 1\nmodel M {\n    input x: [N, 3, 8, 8]\n    y = x |> Conv2d(8, 3, strid=1) |> BatchNorm2d(mom=0.1) |> ReLU(inplac=true) |> Conv2d(4, 1, bia=false)\n    output y\n}\n",
        &Options::default(),
    );
    let bad: Vec<&str> = with_code(&c, "E0203").iter().map(|d| d.message.as_str()).collect();
    assert_eq!(bad.len(), 4, "{bad:?}");
    assert!(bad[3].contains("`bia`"), "{bad:?}");
}

#[test]
fn unpacking_a_layers_outputs_into_too_few_names_says_how_many_it_gives() {
    let c = compile_source(
        "m.wick",
        "dim N = 1\ndim T = 5\nmodel M {\n    input x: [T, N, 8]\n    out, h = x |> lstm: LSTM(16)\n    output out\n}\n",
        &Options::default(),
    );
    let rendered = c.render_diagnostics(RenderStyle::PLAIN);
    assert!(
        rendered.contains("`lstm` (LSTM) gives 3 outputs, in its order: name each, `y0, y1, y2 = ...`"),
        "{rendered}"
    );
}

#[test]
fn bad_init() {
    let c = case("bad_init", "E0225");
    assert_points_at(&c, "E0225", 10, "kaiming_normal(mode=\"fan_out\")");
    assert_mentions(&c, "E0225", "`s1.bn.weight` has shape [8]");
}
