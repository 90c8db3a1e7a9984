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

/// A catalog file: its name and text.
pub struct Source {
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
                out.push(Source { name, text });
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

const MUTATIONS: &[Mutation] = &[
    Mutation::DeleteToken,
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
    history: Vec<String>,
}

impl Case {
    /// One catalog file with one to three mutations, or (one case in twenty) a YAML alias bomb.
    pub fn generate(rng: &mut Rng, sources: &[Source]) -> Case {
        if rng.below(20) == 0 {
            return alias_bomb(rng);
        }
        let source = rng.pick(sources);
        let extension = if source.name.ends_with(".yaml") { "yaml" } else { "wick" };
        let spec = format!("spec.{extension}");
        let mut case = Case {
            files: vec![(spec, source.text.clone().into_bytes())],
            history: vec![source.name.clone()],
        };
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
        let name = self.files[0].0.clone();
        let mut extra = Vec::new();
        let text = &mut self.files[0].1;
        let toks = tokens(text);
        let at = |rng: &mut Rng| toks.get(rng.below(toks.len())).copied().unwrap_or((0, 0));
        let note = match m {
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
            Mutation::HugeNumber => {
                let numbers: Vec<_> =
                    toks.iter().filter(|(s, _)| text[*s].is_ascii_digit()).copied().collect();
                let n = rng.pick(HUGE);
                match numbers.get(rng.below(numbers.len())) {
                    Some(&(s, e)) => {
                        text.splice(s..e, n.bytes());
                        format!("number {s} -> {n}")
                    }
                    None => "no number".into(),
                }
            }
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
        history: vec![format!("alias bomb, {levels} levels, place {place}")],
    }
}
