//! Property tests: no input, however broken, makes the compiler or its renderers panic.
//!
//! (a) arbitrary text, and text built from the language's tokens, through `compile_source`;
//! (b) random mutations (delete, insert, duplicate, swap, overwrite) of every spec under
//!     `specs/` and `tests/errors/`, compiled with the other spec files available to `use`.
//!
//! The node cap is lowered so that a mutated repeat count cannot make one case slow.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;
use wick::diag::RenderStyle;
use wick::report::{self, TableStyle};
use wick::{Compiled, Options};

/// 256 cases per property; `PROPTEST_CASES=N` runs more (for a longer hunt).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn options() -> Options {
    Options { max_nodes: Some(5_000), ..Options::default() }
}

/// Everything a user can look at: diagnostics in both styles, and every summary format.
fn exercise(c: &Compiled) {
    let _ = c.render_diagnostics(RenderStyle::PLAIN);
    let _ = c.render_diagnostics(RenderStyle { fancy: true, width: 80 });
    if !c.diagnostics.has_errors() {
        assert!(c.graph.is_some(), "no errors but no graph");
    }
    for depth in [None, Some(1)] {
        if let Some(s) = c.partial_summary(depth) {
            let _ = report::render_table(&s, TableStyle { unicode: false, color: false });
            let _ = report::render_table(&s, TableStyle { unicode: true, color: true });
            let _ = report::render_json(&s);
            let _ = report::render_markdown(&s);
            let _ = report::render_csv(&s);
        }
    }
}

const TOKENS: &[&str] = &[
    "model",
    "block",
    "dim",
    "use",
    "input",
    "output",
    "return",
    "assert",
    "if",
    "else",
    "repeat",
    "in",
    "as",
    "of",
    "true",
    "false",
    "int",
    "float",
    "bool",
    "string",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "!",
    "->",
    "|>",
    "..",
    "+",
    "-",
    "*",
    "/",
    "%",
    "N",
    "T",
    "x",
    "y",
    "h",
    "cin",
    "planes",
    "i",
    "_",
    "Linear(",
    "Conv2d(",
    "BatchNorm2d(",
    "ReLU",
    "concat(",
    "reshape(",
    "cdiv(",
    "min(",
    "max(",
    "round(",
    "len(",
    "[...repeat 2 { ReLU }]",
    "...",
    "none",
    "attention=none",
    ": op = ReLU",
    "act=LeakyReLU(0.2)",
    "init=kaiming_normal(mode=\"fan_out\")",
    "bias_init=zeros",
    "init=normal(0, 0.02)",
    "enumerate(",
    " in [",
    ": [int]",
    "[2] * 3",
    "floor(",
    "ceil(",
    "int(",
    "0.25 *",
    "Flatten",
    "MaxPool2d(",
    "Dropout(",
    "Softmax",
    "fc1:",
    "\"block1-0\":",
    "conv:",
    "stride=",
    "padding=",
    "axis=",
    "groups=",
    "\"same\"",
    "\"fc{i}\"",
    "\"msg {N}\"",
    "\"b.wick\"",
    "0",
    "1",
    "2",
    "3",
    "7",
    "16",
    "64",
    "-1",
    "0.5",
    "1e3",
    "99999999999999999999",
    "#c\n",
    "\n",
    " ",
    "f32",
    "i64",
    "Block",
    "Model",
    "M",
    "x |> ReLU",
    "[N, 784]",
    "[N, 3, 32, 32]",
    "[N, cin, h, w]",
];

fn token_text() -> impl Strategy<Value = String> {
    let sep = select(&[" ", " ", " ", "\n", ""][..]);
    prop::collection::vec((select(TOKENS), sep), 0..80)
        .prop_map(|parts| parts.into_iter().flat_map(|(t, s)| [t, s]).collect::<String>())
}

/// A small model skeleton with random tokens spliced into its body, to get past the parser more
/// often than free text does.
fn skeleton_text() -> impl Strategy<Value = String> {
    (token_text(), token_text()).prop_map(|(a, b)| {
        format!("dim N = 2\nblock B(x: [N, c], k: int = 1) -> [N, _] {{\n return x |> {a}\n}}\nmodel M {{\n input x: [N, 8]\n y = x |> {b}\n output y\n}}\n")
    })
}

/// What the hand-written parser reads, pest reads alike (the same AST, spans included); what
/// it leaves, pest reads or refuses on its own.
fn readings_agree(text: &str) -> Result<(), TestCaseError> {
    use wick::front::{dsl, span::FileId};
    if let Some(fast) = dsl::parse_file_by_descent(text, FileId(0)) {
        match dsl::parse_file_with_pest(text, FileId(0)) {
            Ok(pest) => prop_assert_eq!(pest, fast, "the readings of {:?} differ", text),
            Err(e) => prop_assert!(false, "read by hand, refused by pest ({}): {:?}", e.message, text),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn token_soup_reads_as_pest_reads_it(text in token_text()) {
        readings_agree(&text)?;
    }

    #[test]
    fn spliced_skeleton_reads_as_pest_reads_it(text in skeleton_text()) {
        readings_agree(&text)?;
    }

    #[test]
    fn mutated_specs_read_as_pest_reads_them(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let files = corpus();
        let names: Vec<&String> = files.keys().collect();
        let mut text = files[*pick.get(&names)].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        readings_agree(&text)?;
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        exercise(&wick::compile_source("p.wick", &text, &options()));
    }

    #[test]
    fn token_soup_never_panics(text in token_text()) {
        exercise(&wick::compile_source("p.wick", &text, &options()));
    }

    #[test]
    fn spliced_skeleton_never_panics(text in skeleton_text()) {
        exercise(&wick::compile_source("p.wick", &text, &options()));
    }
}

// ---- mutations of the real specs ----

/// Every `.wick` file under `specs/` (keyed relative to it, so `use "blocks/x.wick"` resolves)
/// and under `tests/errors/` (keyed `errors/...`).
fn corpus() -> BTreeMap<String, String> {
    static CORPUS: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(load_corpus).clone()
}

fn load_corpus() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = BTreeMap::new();
    collect(&root.join("specs"), "", &mut files);
    collect(&root.join("tests/errors"), "errors/", &mut files);
    assert!(files.keys().any(|k| !k.starts_with("errors/")), "no specs found under specs/");
    files
}

fn collect(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if path.is_dir() {
            collect(&path, &format!("{prefix}{name}/"), out);
        } else if name.ends_with(".wick") {
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.insert(format!("{prefix}{name}"), text);
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: &'static str },
    InsertByte { at: usize, byte: u8 },
    Duplicate { at: usize, len: usize },
    Swap { a: usize, b: usize, len: usize },
    Overwrite { at: usize, byte: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1usize..24).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, select(TOKENS)).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::InsertByte { at, byte }),
        (at, 1usize..40).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (at, any::<usize>(), 1usize..16).prop_map(|(a, b, len)| Mutation::Swap { a, b, len }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Overwrite { at, byte }),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut b = text.as_bytes().to_vec();
    let n = b.len();
    let pos = |at: usize| if n == 0 { 0 } else { at % (n + 1) };
    match *m {
        Mutation::Delete { at, len } => {
            let s = pos(at);
            let e = (s + len).min(n);
            b.drain(s..e);
        }
        Mutation::Insert { at, token } => {
            let s = pos(at);
            b.splice(s..s, token.bytes());
        }
        Mutation::InsertByte { at, byte } => b.insert(pos(at), byte),
        Mutation::Duplicate { at, len } => {
            let s = pos(at);
            let e = (s + len).min(n);
            let piece = b[s..e].to_vec();
            b.splice(e..e, piece);
        }
        Mutation::Swap { a, b: other, len } => {
            if n > 0 {
                let (mut x, mut y) = (a % n, other % n);
                if x > y {
                    std::mem::swap(&mut x, &mut y);
                }
                let len = len.min(y - x).min(n - y);
                if len > 0 {
                    let first = b[x..x + len].to_vec();
                    let second = b[y..y + len].to_vec();
                    b[x..x + len].copy_from_slice(&second);
                    b[y..y + len].copy_from_slice(&first);
                }
            }
        }
        Mutation::Overwrite { at, byte } => {
            if n > 0 {
                b[at % n] = byte;
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_specs_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let files = corpus();
        let names: Vec<String> = files.keys().cloned().collect();
        let root = pick.get(&names).clone();
        let mut text = files[&root].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        let mut files = files;
        files.insert(root.clone(), text);
        exercise(&wick::compile_files(&root, files, &options()));
    }
}

/// The unmutated corpus compiles without panicking either, and `specs/` compiles cleanly.
#[test]
fn corpus_itself() {
    let files = corpus();
    for name in files.keys() {
        let c = wick::compile_files(name, files.clone(), &Options::default());
        exercise(&c);
        if !name.starts_with("errors/") && !name.contains('/') {
            assert!(!c.diagnostics.has_errors(), "{name}:\n{}", c.render_diagnostics(RenderStyle::PLAIN));
        }
    }
}
