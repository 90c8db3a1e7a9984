//! A hand-written recursive-descent reading of `grammar/wick.pest`, which stays the language's
//! definition: pest took about two thirds of compiling a long spec.
//!
//! Each function below mirrors one rule of the grammar as a PEG: ordered choice, `?`, `*`,
//! look-aheads, and pest's implicit whitespace (`skip`: spaces, newlines and `#` comments)
//! between the items of a non-atomic sequence. A rule's span ends where pest's pair ends,
//! which includes the skip before an optional tail that matched nothing; spans are trimmed as
//! the pest builder trims them, so both readings give the same AST, spans included.
//!
//! This reading only ever says "here is the AST" or "not read": text it does not read (a
//! syntax error, an integer too large, a chain of `else if` deeper than it follows) goes
//! through pest, which gives the error with its position and message. So a spec is never
//! refused here that pest would accept with a different meaning, and every error is pest's.

use super::ast::*;
use super::span::{FileId, Span};

// The rules, by level: this file the characters and tokens, `items` what stands at the top of
// a file and in a body, `expr` the expressions.
mod expr;
mod items;

/// Deepest `else if` chain followed here (deeper ones go through pest). Brackets are bounded
/// before parsing (`dsl::MAX_NESTING`), so this is the one other recursion.
const MAX_ELSE_IF: usize = 64;

/// The words the grammar's `keyword` rule keeps from being names.
fn is_reserved(word: &str) -> bool {
    // A `match` compares a word's length before its bytes: most identifiers are rejected at
    // once, where a scan of a list compared every entry.
    matches!(
        word,
        "use"
            | "dim"
            | "block"
            | "model"
            | "input"
            | "output"
            | "return"
            | "assert"
            | "if"
            | "else"
            | "repeat"
            | "in"
            | "as"
            | "of"
            | "true"
            | "false"
            | "none"
    )
}

/// What a rule read and where pest's pair for it ends (before trimming).
type Read<T> = Option<(T, usize)>;

/// Which entry rule to read: a whole file, or a fragment YAML embeds.
pub(super) enum Entry {
    Expr,
    Type,
    Param,
}

/// A fragment read through [`Entry`].
pub(super) enum Fragment {
    Expr(Expr),
    Type(TypeExpr),
    Param(Param),
}

pub(super) struct Descent<'t> {
    text: &'t str,
    b: &'t [u8],
    file: FileId,
    base: usize,
    /// Set when the text is left to pest although the rule matched (a literal out of range).
    bail: bool,
    else_if: usize,
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// Whether `text` is one bare word of the grammar (`cfg_key`, `cfg_word`: `adam`, `lr`), which
/// reads back without quotes.
pub fn is_word(text: &str) -> bool {
    let b = text.as_bytes();
    b.first().is_some_and(|&c| ident_start(c)) && b.iter().all(|&c| ident_char(c))
}

impl<'t> Descent<'t> {
    pub(super) fn new(text: &'t str, file: FileId, base: usize) -> Descent<'t> {
        Descent { text, b: text.as_bytes(), file, base, bail: false, else_if: 0 }
    }

    /// `file = { SOI ~ item* ~ EOI }`
    pub(super) fn file(mut self) -> Option<Module> {
        let mut items = Vec::new();
        let mut at = self.skip(0);
        while let Some((item, end)) = self.item(at) {
            items.extend(item);
            at = self.skip(end);
        }
        (at == self.b.len() && !self.bail).then_some(Module { items, file: self.file })
    }

    /// `expr_only`, `type_only`, `param_only`: `SOI ~ rule ~ EOI`.
    pub(super) fn fragment(mut self, entry: Entry) -> Option<Fragment> {
        let at = self.skip(0);
        let (read, end) = match entry {
            Entry::Expr => self.expr(at).map(|(e, end)| (Fragment::Expr(e), end))?,
            Entry::Type => self.type_expr(at).map(|(t, end)| (Fragment::Type(t), end))?,
            Entry::Param => self.param(at).map(|(p, end)| (Fragment::Param(p), end))?,
        };
        (self.skip(end) == self.b.len() && !self.bail).then_some(read)
    }

    // ---- characters ----

    /// pest's implicit whitespace: `WHITESPACE* ~ (COMMENT ~ WHITESPACE*)*`.
    fn skip(&self, mut at: usize) -> usize {
        loop {
            at = self.blanks(at);
            if self.b.get(at) != Some(&b'#') {
                return at;
            }
            while at < self.b.len() && self.b[at] != b'\n' {
                at += 1;
            }
        }
    }

    /// `WHITESPACE*` alone (a label's look-ahead).
    fn blanks(&self, mut at: usize) -> usize {
        while matches!(self.b.get(at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            at += 1;
        }
        at
    }

    fn at(&self, at: usize) -> u8 {
        self.b.get(at).copied().unwrap_or(0)
    }

    fn lit(&self, at: usize, s: &str) -> Option<usize> {
        self.b.get(at..)?.starts_with(s.as_bytes()).then_some(at + s.len())
    }

    fn word_end(&self, mut at: usize) -> usize {
        while at < self.b.len() && ident_char(self.b[at]) {
            at += 1;
        }
        at
    }

    /// `kw_x = _{ &x_word ~ "x" }`, `x_word = @{ "x" ~ !ident_char }`.
    fn kw(&self, at: usize, word: &str) -> Option<usize> {
        self.lit(at, word).filter(|end| !ident_char(self.at(*end)))
    }

    /// The span of a pair from `start` to `end`, trimmed as the pest builder trims it.
    fn span(&self, start: usize, end: usize) -> Span {
        let len = self.text.get(start..end).map_or(0, |s| s.trim_end().len());
        Span::new(self.file, self.base + start, self.base + start + len)
    }

    // ---- tokens ----

    /// `ident = @{ !keyword ~ (ASCII_ALPHA | "_") ~ ident_char* }`
    fn ident(&self, at: usize) -> Read<Ident> {
        let end = self.ident_end(at)?;
        Some((self.ident_at(at, end), end))
    }

    /// Where an `ident` at `at` ends, its name not yet copied out: a caller that may still
    /// refuse it (a call without its `(`, a label without its `:`) allocates nothing.
    fn ident_end(&self, at: usize) -> Option<usize> {
        if !ident_start(self.at(at)) {
            return None;
        }
        let end = self.word_end(at);
        (!is_reserved(&self.text[at..end])).then_some(end)
    }

    /// The identifier of the text from `at` to `end`.
    fn ident_at(&self, at: usize, end: usize) -> Ident {
        Ident { name: self.text[at..end].to_string(), span: self.span(at, end) }
    }

    /// A bare word (`arg_name`, `cfg_key`, `cfg_word`): `(ASCII_ALPHA | "_") ~ ident_char*`.
    fn word(&self, at: usize) -> Option<usize> {
        ident_start(self.at(at)).then(|| self.word_end(at))
    }

    /// `string = ${ "\"" ~ string_inner ~ "\"" }`, its escapes read as the builder reads them.
    fn string(&self, at: usize) -> Read<StrLit> {
        if self.at(at) != b'"' {
            return None;
        }
        let mut i = at + 1;
        loop {
            match *self.b.get(i)? {
                b'"' => break,
                b'\n' => return None,
                b'\\' => {
                    let c = self.text.get(i + 1..)?.chars().next()?;
                    i += 1 + c.len_utf8();
                }
                _ => i += 1,
            }
        }
        let value = super::dsl::unescape(&self.text[at + 1..i]);
        Some((StrLit { value, span: self.span(at, i + 1) }, i + 1))
    }

    fn digits(&self, mut at: usize) -> Option<usize> {
        let start = at;
        while self.at(at).is_ascii_digit() {
            at += 1;
        }
        (at > start).then_some(at)
    }

    /// `^"e" ~ ("+" | "-")? ~ ASCII_DIGIT+`
    fn exponent(&self, at: usize) -> Option<usize> {
        if !matches!(self.at(at), b'e' | b'E') {
            return None;
        }
        let sign = at + 1 + usize::from(matches!(self.at(at + 1), b'+' | b'-'));
        self.digits(sign)
    }

    /// `float = @{ D+ ~ "." ~ D+ ~ exponent? | D+ ~ exponent }`
    fn float(&self, at: usize) -> Option<usize> {
        let whole = self.digits(at)?;
        if self.at(whole) == b'.' {
            if let Some(frac) = self.digits(whole + 1) {
                return Some(self.exponent(frac).unwrap_or(frac));
            }
        }
        self.exponent(whole)
    }

    /// `int = @{ ASCII_DIGIT ~ (ASCII_DIGIT | "_")* }`
    fn int(&self, at: usize) -> Option<usize> {
        if !self.at(at).is_ascii_digit() {
            return None;
        }
        let mut end = at + 1;
        while self.at(end).is_ascii_digit() || self.at(end) == b'_' {
            end += 1;
        }
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::dsl::parse_file_with_pest;

    /// Every `.wick` file under `dir`, recursively.
    fn wick_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                wick_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "wick") {
                out.push(path);
            }
        }
    }

    /// Both readings of `text`: the same AST when pest reads it; nothing when pest refuses it.
    fn agree(name: &str, text: &str) -> bool {
        if crate::front::dsl::check_nesting(text, FileId(0), 0).is_err() {
            return false;
        }
        let fast = Descent::new(text, FileId(0), 0).file();
        match (parse_file_with_pest(text, FileId(0)), fast) {
            (Ok(pest), Some(fast)) => {
                assert_eq!(pest, fast, "{name}: the readings differ");
                true
            }
            (Err(e), Some(_)) => panic!("{name}: read here, refused by pest: {}", e.message),
            (_, None) => false,
        }
    }

    #[test]
    fn the_forms_of_repeat_and_awkward_spacing_read_as_pest_reads_them() {
        let body = |line: &str| format!("model M {{\n input x: [1, 4]\n y = x |> {line}\n output y\n}}\n");
        for line in [
            "repeat i in 0..3 { Linear(4) }",
            "repeat i in 0 .. n + 1 as \"fc{i}\" { Linear(4) }",
            "repeat c in cfg { Linear(c) }",
            "repeat i, c in enumerate(cfg) { Linear(c) }",
            "repeat i in cfg[0] { ReLU }",
            "repeat 2 { ReLU }",
            "a: Linear(4)  # a comment\n |> ReLU",
            "\"block1-0\" : Linear(4, bias = true ,)",
            "[...repeat 2 { ReLU }, 2: LayerNorm(4)]",
            "if !a && -b < 3 * (c - 1) % 2 { ReLU } else if d { GELU } else { Tanh }",
            "f(x)[1][-2] |> (ReLU |> Linear(4))",
        ] {
            let text = body(line);
            assert!(
                agree(line, &text),
                "{line}: not read (pest: {:?})",
                parse_file_with_pest(&text, FileId(0)).err()
            );
        }
    }

    #[test]
    fn train_sections_with_quoted_keys_and_scheme_calls_read_as_pest_reads_them() {
        for section in [
            "init_weights: { \"**.weight\": normal(0, 0.02), \"**.bias\": zeros }",
            "init_weights: { \"a.b\" : kaiming_normal(mode=\"fan_out\"), c: ones() }, epochs: 3",
            "optimizer: { name: adam, lr: 1e-3 }, data: [a, \"b\", -2_0.5e3]",
        ] {
            let text = format!("model M {{\n input x: [1, 4]\n output x\n}}\ntrain {{ {section} }}\n");
            assert!(agree(section, &text), "{section}: not read");
        }
    }

    #[test]
    fn every_spec_reads_as_pest_reads_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["specs", "std", "tests", "benches", "examples", "docs"] {
            wick_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 50, "found only {} specs", files.len());
        let mut read = 0;
        for path in &files {
            let text = std::fs::read_to_string(path).unwrap();
            let name = path.display().to_string();
            let pest_ok = parse_file_with_pest(&text, FileId(0)).is_ok();
            let fast_ok = agree(&name, &text);
            assert_eq!(pest_ok, fast_ok, "{name}: pest read it: {pest_ok}; here: {fast_ok}");
            read += usize::from(fast_ok);
        }
        assert!(read > 50, "{read}");
    }
}
