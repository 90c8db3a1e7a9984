//! Adversarial specs from good ones: a small seeded generator and the mutations the reliability
//! suite applies (token deletion and duplication, huge numbers, deep nesting, keyword and
//! unicode noise, invalid UTF-8, truncation, long lines, import cycles, repeat bombs, YAML alias
//! bombs). Everything is a pure function of the seed, so a failing case can be made again.

use std::path::Path;

/// SplitMix64: small, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A catalog file: its folder, name and text.
pub struct Source {
    pub folder: &'static str,
    pub name: String,
    pub text: String,
}

/// The catalog (`specs/*.wick`, `specs/*.yaml`, `std/*.wick`), in a fixed order.
pub fn sources(root: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    for folder in ["specs", "std"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(folder))
            .expect("catalog folder")
            .flatten()
            .map(|e| e.path())
            .collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if name.ends_with(".wick") || name.ends_with(".yaml") {
                let text = std::fs::read_to_string(&path).expect("catalog spec");
                out.push(Source { folder, name, text });
            }
        }
    }
    out
}

/// Byte ranges of the tokens of a spec: words, numbers, strings and single punctuation.
fn tokens(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == b'_' {
            while i < text.len() && (text[i].is_ascii_alphanumeric() || text[i] == b'_') {
                i += 1;
            }
        } else if c == b'"' {
            i += 1;
            while i < text.len() && text[i] != b'"' && text[i] != b'\n' {
                i += 1;
            }
            i = (i + 1).min(text.len());
        } else {
            i += 1;
            // Keep multi-byte characters whole.
            while i < text.len() && (text[i] & 0xc0) == 0x80 {
                i += 1;
            }
        }
        out.push((start, i));
    }
    out
}

/// Byte ranges of the lines of a spec, newlines included.
fn line_ranges(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.iter().enumerate() {
        if *b == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

const KEYWORDS: &[&str] = &[
    "model", "block", "dim", "use", "input", "output", "return", "assert", "if", "else", "repeat", "in",
    "as", "of", "true", "false", "train", "|>", "->", "..", "=", ":", ",", "{", "}", "(", ")", "[", "]",
];
const HUGE: &[&str] = &[
    "0",
    "-1",
    "99999999999999999999",
    "9223372036854775807",
    "4294967296",
    "1000000000",
    "100000000000",
    "1e308",
    "0.0000000001",
    "3037000499",
];
const UNICODE: &[&str] =
    &["é", "\u{200b}", "\u{202e}", "\u{feff}", "👾", "\u{301}", "ß", "Ω", "\u{2028}", "\t", "\r", "\u{0}"];

/// One change to a spec.
#[derive(Clone, Copy, Debug)]
enum Mutation {
    /// An identifier replaced by another of the same file: the wrong op, name or dim.
    ReplaceName,
    /// A number replaced by a small one: shapes that no longer fit.
    SmallNumber,
    DeleteLine,
    DuplicateLine,
    DeleteToken,
    DuplicateTokens,
    SwapTokens,
    HugeNumber,
    DeepNesting,
    Keyword,
    Unicode,
    InvalidUtf8,
    Truncate,
    OneLine,
    RepeatBomb,
    ImportCycle,
}

/// Mutations that keep the syntax come more often, so most cases reach elaboration.
const MUTATIONS: &[Mutation] = &[
    Mutation::ReplaceName,
    Mutation::ReplaceName,
    Mutation::ReplaceName,
    Mutation::SmallNumber,
    Mutation::SmallNumber,
    Mutation::SmallNumber,
    Mutation::DeleteLine,
    Mutation::DuplicateLine,
    Mutation::DuplicateLine,
    Mutation::HugeNumber,
    Mutation::DeleteToken,
    Mutation::DuplicateTokens,
    Mutation::SwapTokens,
    Mutation::HugeNumber,
    Mutation::HugeNumber,
    Mutation::DeepNesting,
    Mutation::Keyword,
    Mutation::Keyword,
    Mutation::Unicode,
    Mutation::InvalidUtf8,
    Mutation::Truncate,
    Mutation::OneLine,
    Mutation::RepeatBomb,
    Mutation::ImportCycle,
];

/// A generated case: the files to write and how they were made.
pub struct Case {
    /// The spec given to wick, then any file it imports.
    files: Vec<(String, Vec<u8>)>,
    /// The file the mutations change.
    target: usize,
    history: Vec<String>,
}

impl Case {
    /// One catalog file with one to three mutations, or (one case in twenty) a YAML alias bomb.
    /// A block library of `std/` is mutated as a local copy imported by a spec that uses it,
    /// since on its own it defines no model.
    pub fn generate(rng: &mut Rng, sources: &[Source]) -> Case {
        if rng.below(20) == 0 {
            return alias_bomb(rng);
        }
        let source = rng.pick(sources);
        let bundled = format!("std/{}", source.name);
        let users: Vec<&Source> =
            sources.iter().filter(|s| s.folder == "specs" && s.text.contains(&bundled)).collect();
        // (root name, root text, the library copy if any)
        let (root_name, root_text, library) = match (source.folder, users.is_empty()) {
            ("std", false) => {
                let user = *rng.pick(&users);
                let copy = (source.name.clone(), source.text.clone().into_bytes());
                (user.name.as_str(), user.text.replace(&bundled, &source.name), Some(copy))
            }
            _ => (source.name.as_str(), source.text.clone(), None),
        };
        let extension = if root_name.ends_with(".yaml") { "yaml" } else { "wick" };
        let mut files = vec![(format!("spec.{extension}"), root_text.into_bytes())];
        let target = usize::from(library.is_some());
        files.extend(library);
        let mut case = Case { files, target, history: vec![source.name.clone()] };
        for _ in 0..1 + rng.below(3) {
            let m = *rng.pick(MUTATIONS);
            case.apply(m, rng);
        }
        case
    }

    pub fn describe(&self) -> String {
        self.history.join(" + ")
    }

    /// Write the files into `dir`; the spec's name, relative to it.
    pub fn write(&self, dir: &Path) -> String {
        std::fs::create_dir_all(dir).expect("case folder");
        for (name, bytes) in &self.files {
            std::fs::write(dir.join(name), bytes).expect("case file");
        }
        self.files[0].0.clone()
    }

    fn apply(&mut self, m: Mutation, rng: &mut Rng) {
        let name = self.files[self.target].0.clone();
        let mut extra = Vec::new();
        let text = &mut self.files[self.target].1;
        let toks = tokens(text);
        let at = |rng: &mut Rng| toks.get(rng.below(toks.len())).copied().unwrap_or((0, 0));
        let lines: Vec<(usize, usize)> = line_ranges(text);
        let note = match m {
            Mutation::ReplaceName => {
                let names: Vec<_> = toks
                    .iter()
                    .filter(|(s, _)| text[*s].is_ascii_alphabetic() || text[*s] == b'_')
                    .copied()
                    .collect();
                let (Some(&(s, e)), Some(&(a, b))) =
                    (names.get(rng.below(names.len())), names.get(rng.below(names.len())))
                else {
                    return;
                };
                let name = text[a..b].to_vec();
                let note = format!("name {s} -> {}", String::from_utf8_lossy(&name));
                text.splice(s..e, name);
                note
            }
            Mutation::SmallNumber => replace_number(text, &toks, &["1", "2", "3", "7", "16", "0"], rng),
            Mutation::DeleteLine => {
                let (s, e) = lines.get(rng.below(lines.len())).copied().unwrap_or((0, 0));
                text.drain(s..e);
                format!("delete line {s}..{e}")
            }
            Mutation::DuplicateLine => {
                let (s, e) = lines.get(rng.below(lines.len())).copied().unwrap_or((0, 0));
                let copy = text[s..e].to_vec();
                text.splice(e..e, copy);
                format!("duplicate line {s}..{e}")
            }
            Mutation::DeleteToken => {
                let (s, e) = at(rng);
                text.drain(s..e);
                format!("delete {s}..{e}")
            }
            Mutation::DuplicateTokens => {
                let (s, _) = at(rng);
                let (_, e) = at(rng);
                let (s, e) = (s.min(e), s.max(e));
                let copy = text[s..e].to_vec();
                let times = *rng.pick(&[1usize, 2, 50]);
                for _ in 0..times {
                    text.splice(e..e, copy.iter().copied());
                }
                format!("duplicate {s}..{e} x{times}")
            }
            Mutation::SwapTokens => {
                let (a, b) = (at(rng), at(rng));
                let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
                if first.1 <= second.0 {
                    let (x, y) = (text[first.0..first.1].to_vec(), text[second.0..second.1].to_vec());
                    text.splice(second.0..second.1, x);
                    text.splice(first.0..first.1, y);
                }
                format!("swap {first:?} {second:?}")
            }
            Mutation::HugeNumber => replace_number(text, &toks, HUGE, rng),
            Mutation::DeepNesting => {
                let (s, e) = at(rng);
                let depth = *rng.pick(&[30usize, 300, 20_000]);
                let (open, close) = *rng.pick(&[("(", ")"), ("[", "]"), ("{", "}"), ("-", ""), ("!", "")]);
                text.splice(e..e, close.repeat(depth).bytes());
                text.splice(s..s, open.repeat(depth).bytes());
                format!("nest {s}..{e} {open}x{depth}")
            }
            Mutation::Keyword => {
                let (s, _) = at(rng);
                let k = rng.pick(KEYWORDS);
                text.splice(s..s, format!("{k} ").into_bytes());
                format!("keyword {k} at {s}")
            }
            Mutation::Unicode => {
                let (s, _) = at(rng);
                let u = rng.pick(UNICODE);
                text.splice(s..s, u.bytes());
                format!("unicode {u:?} at {s}")
            }
            Mutation::InvalidUtf8 => {
                let (s, _) = at(rng);
                let b = *rng.pick(&[0xffu8, 0xc3, 0x80, 0xfe]);
                text.insert(s.min(text.len()), b);
                format!("byte {b:#x} at {s}")
            }
            Mutation::Truncate => {
                let cut = rng.below(text.len() + 1);
                text.truncate(cut);
                format!("truncate at {cut}")
            }
            Mutation::OneLine => {
                // Comments would swallow everything after them, so drop them first.
                let joined: Vec<u8> = String::from_utf8_lossy(text)
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(" ")
                    .into_bytes();
                *text = joined;
                "one line".into()
            }
            Mutation::RepeatBomb => {
                let pipes: Vec<usize> = toks
                    .iter()
                    .filter(|(s, e)| &text[*s..*e] == b"|" && text.get(*e) == Some(&b'>'))
                    .map(|t| t.0)
                    .collect();
                let n = rng.pick(&["1000000", "999999999", "100000"]);
                let body = rng.pick(&["[]", "ReLU", "Identity", "repeat 1000000 { [] }", "(ReLU |> ReLU)"]);
                match pipes.get(rng.below(pipes.len())) {
                    Some(&p) => {
                        text.splice(p..p, format!("|> repeat {n} {{ {body} }} ").into_bytes());
                        format!("repeat {n} {{ {body} }} at {p}")
                    }
                    None => "no pipe".into(),
                }
            }
            Mutation::ImportCycle => {
                let (import, other) = if name.ends_with(".yaml") {
                    ("use: [other.wick]\n".to_string(), format!("use \"{name}\"\n"))
                } else {
                    ("use \"other.wick\"\n".to_string(), format!("use \"third.wick\"\nuse \"{name}\"\n"))
                };
                if !name.ends_with(".yaml") || !text.starts_with(b"use") {
                    text.splice(0..0, import.into_bytes());
                }
                extra.push(("other.wick".to_string(), other.into_bytes()));
                extra.push(("third.wick".to_string(), b"use \"other.wick\"\n".to_vec()));
                "import cycle".into()
            }
        };
        self.files.extend(extra);
        self.history.push(note);
    }
}

/// Replace a number of `text` (tokens `toks`) by one of `choices`.
fn replace_number(text: &mut Vec<u8>, toks: &[(usize, usize)], choices: &[&str], rng: &mut Rng) -> String {
    let numbers: Vec<_> = toks.iter().filter(|(s, _)| text[*s].is_ascii_digit()).copied().collect();
    let n = rng.pick(choices);
    match numbers.get(rng.below(numbers.len())) {
        Some(&(s, e)) => {
            text.splice(s..e, n.bytes());
            format!("number {s} -> {n}")
        }
        None => "no number".into(),
    }
}

/// The billion laughs: each level names the one below it ten times.
fn alias_bomb(rng: &mut Rng) -> Case {
    let levels = 3 + rng.below(7);
    let mut text = String::from("a0: &a0 [\"lol\", \"lol\"]\n");
    for i in 1..levels {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let place = rng.below(3);
    let spec = match place {
        0 => format!("{text}dims:\n  N: *a{}\n", levels - 1),
        1 => format!("dims: {{N: 1}}\n{text}models:\n  M:\n    body:\n      - input: {{x: \"[N, 4]\"}}\n      - output: *a{}\n", levels - 1),
        _ => format!("{text}train: *a{}\n", levels - 1),
    };
    Case {
        files: vec![("spec.yaml".into(), spec.into_bytes())],
        target: 0,
        history: vec![format!("alias bomb, {levels} levels, place {place}")],
    }
}
