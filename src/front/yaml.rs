//! The YAML surface: the same [`Module`] as `.wick` text, written as YAML. Each line's `.wick`
//! equivalent is in the comment beside it.
//!
//! ```yaml
//! use: [std/resnet.wick]          # use "std/resnet.wick"                 (optional: a list of paths)
//! dims:                           # (optional: name -> example, or null for none)
//!   N: 1                          # dim N = 1
//! blocks:                         # (optional: name -> block)
//!   SqueezeExcite:                # block SqueezeExcite(
//!     params:                     #   (in order: name -> "type" or "type = default")
//!       x: "[N, c, h, w]"         #   x: [N, c, h, w],
//!       r: int = 16               #   r: int = 16
//!     returns: "[N, c, h, w]"     # ) -> [N, c, h, w] {                    (optional)
//!     body:
//!       - assert: c % r == 0      #   assert c % r == 0, "reduction {r} must divide channels {c}"
//!         message: "reduction {r} must divide channels {c}"
//!       - s: "x |> GlobalAvgPool |> Flatten |> fc1: Linear(c / r) |> ReLU |> fc2: Linear(c) |> Sigmoid"
//!       - return: x * reshape(s, [N, c, 1, 1])  #   return x * reshape(s, [N, c, 1, 1])
//! models:                         # (optional: name -> model: a block's keys but `returns`)
//!   SeedMLP:                      # model SeedMLP {
//!     body:
//!       - input: {x: "[N, 784]"}  #   input x: [N, 784]                    (more keys: more inputs)
//!       - logits: >-              #   logits = x |> fc1: Linear(200) |> ReLU |> fc2: Linear(10)
//!           x |> fc1: Linear(200) |> ReLU
//!             |> fc2: Linear(10)
//!       - output: {logits: "[N, 10]"}  # output logits: [N, 10]
//! ```
//!
//! A body is a list of one-key mappings: `input`, `output`, `return` and `assert` (with an
//! optional `message` beside it) are statements; any other key binds names (`h, c: expr` is
//! `h, c = expr`), and a bare scalar is an expression statement. `output` takes a name, a list
//! of names, or a mapping from names to type assertions (null: none); bind a value before
//! outputting it. Expressions, types and defaults are `.wick` text in YAML scalars, and a type
//! may also be a YAML list of dims (`[N, 784]`). YAML reads `[` opening a scalar as a list and
//! `: ` inside one as a key, so quote `"[N, c]"` types that carry `= default` or `of dtype`, and
//! labelled pipes, or write them as block scalars (`>-`).
//!
//! Spans are exact wherever the `.wick` text stands in the file as written (plain, quoted
//! without escapes, block scalars); otherwise every node of that scalar points at the scalar.
//! Keys are strict: anything unexpected is an `E0104` naming what is accepted there.

// The signature `parse` dispatches to returns a whole `Diagnostic`, as the `.wick` parser does.
#![allow(clippy::result_large_err)]

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use super::ast::*;
use super::dsl;
use super::span::{FileId, Span};
use crate::diag::{did_you_mean, Diagnostic};

/// Deepest YAML nesting accepted; deeper input is refused as it streams in.
pub const MAX_DEPTH: usize = 64;

const TOP_KEYS: &[&str] = &["use", "dims", "blocks", "models"];
const BLOCK_KEYS: &[&str] = &["params", "returns", "body"];
const MODEL_KEYS: &[&str] = &["params", "body"];
const ASSERT_KEYS: &[&str] = &["assert", "message"];
const STMT_KEYS: &[&str] = &["input", "output", "return", "assert"];

/// A YAML node and the span of its text.
struct Node {
    kind: Kind,
    span: Span,
}

enum Kind {
    /// `raw`: the byte range holding text equivalent to `value` as `.wick` (same characters,
    /// whitespace runs for whitespace runs), when there is one.
    Scalar {
        value: String,
        raw: Option<(usize, usize)>,
        null: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// Parse a whole YAML spec.
pub fn parse_file(text: &str, file: FileId) -> Result<Module, Diagnostic> {
    let cx = Cx { text, file };
    match cx.load()? {
        Some(root) => cx.module(&root),
        None => Ok(Module::default()),
    }
}

/// A collection being read: where it starts and its children so far (keys and values alternate).
struct Frame {
    map: bool,
    start: usize,
    items: Vec<Node>,
}

/// Turns the parser's char indices into byte offsets, walking from the last answer since
/// events arrive nearly in order.
struct Pos<'a> {
    text: &'a str,
    chars: usize,
    bytes: usize,
}

impl Pos<'_> {
    fn byte(&mut self, index: usize) -> usize {
        while self.chars < index {
            let Some(c) = self.text.get(self.bytes..).and_then(|s| s.chars().next()) else { break };
            self.bytes += c.len_utf8();
            self.chars += 1;
        }
        while self.chars > index {
            let Some(c) = self.text.get(..self.bytes).and_then(|s| s.chars().next_back()) else { break };
            self.bytes -= c.len_utf8();
            self.chars -= 1;
        }
        self.bytes
    }
}

struct Cx<'a> {
    text: &'a str,
    file: FileId,
}

impl Cx<'_> {
    /// Build the node tree from the event stream without recursion; `None` for an empty document.
    fn load(&self) -> Result<Option<Node>, Diagnostic> {
        // yaml-rust2 keeps a byte-order mark in the first key; skip it and count from after it.
        let bom = if self.text.starts_with('\u{feff}') { 3 } else { 0 };
        let mut pos = Pos { text: self.text, chars: 0, bytes: bom };
        let mut parser = Parser::new_from_str(self.text.get(bom..).unwrap_or(""));
        let mut stack: Vec<Frame> = Vec::new();
        let mut root = None;
        loop {
            let (event, mark) = parser.next_token().map_err(|e| {
                let at = pos.byte(e.marker().index());
                let d = Diagnostic::error("E0101", format!("invalid YAML: {}", e.info()))
                    .at(Span::new(self.file, at, self.char_end(at)), "here");
                if e.info().contains("mapping values are not allowed") {
                    return d
                        .help("quote text containing `: ` (a labelled stage): `\"x |> fc: Linear(10)\"`");
                }
                d
            })?;
            let at = pos.byte(mark.index());
            let here = Span::new(self.file, at, self.char_end(at));
            let node = match event {
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart if root.is_some() => {
                    return Err(self.error(here, "a spec is one YAML document", "second document"))
                }
                Event::Alias(_) => return Err(self.error(here, "YAML aliases are not supported", "alias")),
                Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                    return Err(self.error(
                        here,
                        format!("YAML nested deeper than {MAX_DEPTH} levels"),
                        "too deep",
                    ))
                }
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    let map = matches!(event, Event::MappingStart(..));
                    stack.push(Frame { map, start: at, items: Vec::new() });
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                    Some(frame) => self.collection(frame, at),
                    None => continue,
                },
                Event::Scalar(value, style, ..) => self.scalar(value, style, at),
                _ => continue,
            };
            match stack.last_mut() {
                Some(frame) => frame.items.push(node),
                None => root = Some(node),
            }
        }
    }

    fn scalar(&self, value: String, style: TScalarStyle, at: usize) -> Node {
        let plain = style == TScalarStyle::Plain;
        let null = plain && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL");
        let quoted = matches!(style, TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted);
        let raw = self.locate(at + usize::from(quoted), value.trim_matches(is_ws));
        let span = match raw {
            Some((start, end)) => Span::new(self.file, start, end),
            // An empty scalar's mark is the next token's; `collection` moves it onto its key.
            None if value.is_empty() => Span::new(self.file, at, at),
            None => self.line_span(at, usize::MAX),
        };
        Node { kind: Kind::Scalar { value, raw, null }, span }
    }

    fn collection(&self, frame: Frame, end: usize) -> Node {
        // A block mapping's start mark lies after its first key, so its first child decides.
        let start = frame.items.first().map_or(frame.start, |n| n.span.start as usize).min(frame.start);
        let span = self.line_span(start, self.char_end(end));
        if !frame.map {
            return Node { kind: Kind::Seq(frame.items), span };
        }
        let mut items = frame.items.into_iter();
        let mut pairs = Vec::new();
        while let (Some(key), Some(mut value)) = (items.next(), items.next()) {
            if value.span.is_empty() && matches!(value.kind, Kind::Scalar { null: true, .. }) {
                value.span = key.span;
            }
            pairs.push((key, value));
        }
        Node { kind: Kind::Map(pairs), span }
    }

    /// Match `want` against the file from `start` (skipping leading whitespace), whitespace run
    /// for whitespace run, so folded and block scalars still get exact spans.
    fn locate(&self, start: usize, want: &str) -> Option<(usize, usize)> {
        let rest = self.text.get(start..)?;
        let start = start + rest.len() - rest.trim_start_matches(is_ws).len();
        let mut raw = self.text.get(start..)?.char_indices().peekable();
        let mut want = want.chars().peekable();
        let mut end = None;
        while let Some(w) = want.next() {
            if is_ws(w) {
                while want.next_if(|c| is_ws(*c)).is_some() {}
                raw.next_if(|(_, c)| is_ws(*c))?;
                while raw.next_if(|(_, c)| is_ws(*c)).is_some() {}
            } else {
                match raw.next() {
                    Some((i, c)) if c == w => end = Some(start + i + c.len_utf8()),
                    _ => return None,
                }
            }
        }
        end.map(|end| (start, end))
    }

    /// From `start` to the end of its line (trailing blanks dropped), or to `limit` if sooner.
    fn line_span(&self, start: usize, limit: usize) -> Span {
        let rest = self.text.get(start..).unwrap_or("");
        let line = rest.split(['\n', '\r']).next().unwrap_or("").trim_end_matches(is_ws);
        Span::new(self.file, start, (start + line.len()).min(limit))
    }

    fn char_end(&self, at: usize) -> usize {
        at + self.text.get(at..).and_then(|s| s.chars().next()).map_or(0, char::len_utf8)
    }

    fn error(&self, span: Span, message: impl Into<String>, label: &str) -> Diagnostic {
        Diagnostic::error("E0104", message).at(span, label)
    }

    fn wrong(&self, node: &Node, expected: &str) -> Diagnostic {
        let found = match &node.kind {
            Kind::Scalar { null: true, .. } => "nothing".to_string(),
            Kind::Scalar { value, .. } if value.chars().count() <= 40 => format!("`{value}`"),
            Kind::Scalar { .. } => "a string".to_string(),
            Kind::Seq(_) => "a list".to_string(),
            Kind::Map(_) => "a mapping".to_string(),
        };
        Diagnostic::error("E0104", format!("expected {expected}, found {found}"))
            .at(node.span, format!("expected {expected}"))
    }

    /// A mapping's entries (none for null), every key a scalar and none repeated.
    fn entries<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [(Node, Node)], Diagnostic> {
        let entries = match &node.kind {
            Kind::Map(entries) => entries.as_slice(),
            Kind::Scalar { null: true, .. } => &[],
            _ => return Err(self.wrong(node, what)),
        };
        let mut seen = std::collections::HashMap::new();
        for (key, _) in entries {
            if let Some(first) = seen.insert(self.text_of(key, "a key")?, key.span) {
                let msg = format!("duplicate key `{}`", self.text_of(key, "a key")?);
                return Err(self.error(key.span, msg, "repeated here").also(first, "first here"));
            }
        }
        Ok(entries)
    }

    /// A mapping whose keys must come from `accepted`.
    fn fields<'n>(&self, node: &'n Node, what: &str, accepted: &[&str]) -> Result<Fields<'n>, Diagnostic> {
        let entries = self.entries(node, &format!("{what} (a mapping)"))?;
        for (key, _) in entries {
            let name = self.text_of(key, "a key")?;
            if !accepted.contains(&name) {
                let mut d = self.error(key.span, format!("unknown key `{name}` in {what}"), "unknown key");
                if let Some(close) = did_you_mean(name, accepted.iter().copied()) {
                    d = d.help(format!("did you mean `{close}`?"));
                }
                return Err(d.note(format!("{what} takes: {}", accepted.join(", "))));
            }
        }
        Ok(Fields(entries))
    }

    /// A scalar's text; null and collections are errors.
    fn text_of<'n>(&self, node: &'n Node, expected: &str) -> Result<&'n str, Diagnostic> {
        match &node.kind {
            Kind::Scalar { value, null: false, .. } => Ok(value),
            _ => Err(self.wrong(node, expected)),
        }
    }

    /// Parse `.wick` text held in a scalar, after `prefix`: from the file where it stands
    /// there (exact spans), else from the YAML value with every span moved onto the scalar.
    fn fragment<T>(
        &self,
        node: &Node,
        expected: &str,
        prefix: &str,
        parse: fn(&str, FileId, usize) -> Result<T, Diagnostic>,
        respan: fn(&mut T, Span),
    ) -> Result<T, Diagnostic> {
        let value = self.text_of(node, expected)?;
        let mut first_error = None;
        if let Kind::Scalar { raw: Some((start, end)), .. } = node.kind {
            let raw = self.text.get(start..end).unwrap_or("");
            if let Some(base) = start.checked_sub(prefix.len()) {
                match parse(&format!("{prefix}{raw}"), self.file, base) {
                    Ok(t) => return Ok(t),
                    // Folded text can break a string literal across lines; the value may still parse.
                    Err(e) if raw != value.trim_matches(is_ws) => first_error = Some(e),
                    Err(e) => return Err(e),
                }
            }
        }
        match parse(&format!("{prefix}{value}"), self.file, 0) {
            Ok(mut t) => {
                respan(&mut t, node.span);
                Ok(t)
            }
            Err(mut e) => Err(first_error.unwrap_or_else(|| {
                e.primary.iter_mut().chain(&mut e.secondary).for_each(|l| l.span = node.span);
                e
            })),
        }
    }

    fn expr(&self, node: &Node) -> Result<Expr, Diagnostic> {
        self.fragment(node, "an expression", "", dsl::parse_expr, respan_expr)
    }

    /// A type: `.wick` text, or a YAML list of dims.
    fn ty(&self, node: &Node) -> Result<TypeExpr, Diagnostic> {
        if let Kind::Seq(items) = &node.kind {
            let dims = items.iter().map(|d| self.expr(d)).collect::<Result<_, _>>()?;
            return Ok(TypeExpr { kind: TypeKind::Tensor { dims, dtype: None }, span: node.span });
        }
        self.fragment(node, "a type", "", dsl::parse_type, respan_type)
    }

    fn tensor(&self, node: &Node) -> Result<TypeExpr, Diagnostic> {
        let ty = self.ty(node)?;
        match ty.kind {
            TypeKind::Tensor { .. } => Ok(ty),
            _ => Err(self.error(ty.span, "expected a tensor type (`[N, 784]`)", "not a tensor type")),
        }
    }

    /// Comma-separated names in one scalar (`h, c`), each checked by the `.wick` grammar.
    fn names(&self, node: &Node) -> Result<Vec<Ident>, Diagnostic> {
        let value = self.text_of(node, "a name")?;
        // Offsets within the value are offsets in the file only when the scalar is verbatim.
        let base = match node.kind {
            Kind::Scalar { raw: Some((start, end)), .. } if self.text.get(start..end) == Some(value) => {
                Some(start)
            }
            _ => None,
        };
        let mut offset = 0;
        let mut names = Vec::new();
        for piece in value.split(',') {
            let name = piece.trim_matches(is_ws);
            let at = offset + piece.len() - piece.trim_start_matches(is_ws).len();
            offset += piece.len() + 1;
            let span = base.map_or(node.span, |b| Span::new(self.file, b + at, b + at + name.len()));
            match dsl::parse_expr(name, self.file, 0) {
                Ok(Expr { kind: ExprKind::Name(n), .. }) if n == name => names.push(Ident { name: n, span }),
                _ => {
                    return Err(self.error(span, format!("`{name}` is not a valid name"), "expected a name"))
                }
            }
        }
        Ok(names)
    }

    fn name(&self, node: &Node) -> Result<Ident, Diagnostic> {
        let mut names = self.names(node)?;
        match names.pop() {
            Some(name) if names.is_empty() => Ok(name),
            _ => Err(self.wrong(node, "one name")),
        }
    }

    fn module(&self, root: &Node) -> Result<Module, Diagnostic> {
        let top = self.fields(root, "a spec", TOP_KEYS)?;
        let mut items = Vec::new();
        if let Some(uses) = top.get("use") {
            let paths = match &uses.kind {
                Kind::Seq(paths) => paths.iter().collect(),
                Kind::Scalar { null: true, .. } => vec![],
                _ => vec![uses],
            };
            for p in paths {
                items.push(Item::Use { path: self.text_of(p, "a file path")?.to_string(), span: p.span });
            }
        }
        for (key, value) in top.entries(self, "dims", "dims (a mapping)")? {
            let example = match value.kind {
                Kind::Scalar { null: true, .. } => None,
                _ => Some(self.expr(value)?),
            };
            items.push(Item::Dim { name: self.name(key)?, example });
        }
        for (section, kind) in [("blocks", DefKind::Block), ("models", DefKind::Model)] {
            for (key, value) in top.entries(self, section, "a mapping of names to definitions")? {
                items.push(Item::Def(self.def(kind, key, value)?));
            }
        }
        Ok(Module { items })
    }

    fn def(&self, kind: DefKind, key: &Node, value: &Node) -> Result<Def, Diagnostic> {
        let name = self.name(key)?;
        let fields = match kind {
            DefKind::Block => self.fields(value, "a block", BLOCK_KEYS)?,
            DefKind::Model => self.fields(value, "a model", MODEL_KEYS)?,
        };
        let mut params = Vec::new();
        for (param, ty) in fields.entries(self, "params", "params (a mapping of names to types)")? {
            let name = self.name(param)?;
            let (ty, default) = match ty.kind {
                Kind::Seq(_) => (self.ty(ty)?, None),
                // `p:` stands in for the name so the `.wick` param rule reads `type = default`.
                _ => {
                    let p = self.fragment(ty, "a type", "p:", dsl::parse_param, respan_param)?;
                    (p.ty, p.default)
                }
            };
            params.push(Param { name, ty, default });
        }
        let returns = fields.get("returns").map(|r| self.ty(r)).transpose()?;
        let mut body = Vec::new();
        let stmts = match fields.get("body").map(|b| (b, &b.kind)) {
            Some((_, Kind::Seq(stmts))) => stmts.as_slice(),
            Some((_, Kind::Scalar { null: true, .. })) | None => &[],
            Some((b, _)) => return Err(self.wrong(b, "a list of statements")),
        };
        for stmt in stmts {
            self.stmt(stmt, &mut body)?;
        }
        Ok(Def { kind, name, params, returns, body, span: key.span.to(value.span) })
    }

    fn stmt(&self, node: &Node, out: &mut Vec<Stmt>) -> Result<(), Diagnostic> {
        let entries = match &node.kind {
            Kind::Map(entries) => entries,
            Kind::Seq(_) => return Err(self.wrong(node, "a statement (`- name: expr`)")),
            Kind::Scalar { .. } => {
                out.push(Stmt::Expr(self.expr(node)?));
                return Ok(());
            }
        };
        let is_assert =
            |(k, _): &(Node, Node)| matches!(&k.kind, Kind::Scalar { value, .. } if value == "assert");
        if let Some((key, cond)) = entries.iter().find(|e| is_assert(e)) {
            let message = self.fields(node, "an assert statement", ASSERT_KEYS)?.get("message");
            let message =
                message.map(|m| Ok(StrLit { value: self.text_of(m, "a message")?.into(), span: m.span }));
            let message = message.transpose()?;
            out.push(Stmt::Assert { cond: self.expr(cond)?, message, span: key.span.to(cond.span) });
            return Ok(());
        }
        let [(key, value)] = entries.as_slice() else {
            let msg = format!("a statement has one key, found {}", entries.len());
            return Err(self
                .error(node.span, msg, "expected one key")
                .help("give each statement its own `- ` item"));
        };
        let span = key.span.to(value.span);
        match self.text_of(key, "a statement key")? {
            "input" => {
                for (name, ty) in self.entries(value, "input (a mapping of names to tensor types)")? {
                    out.push(Stmt::Input { name: self.name(name)?, ty: self.tensor(ty)? });
                }
            }
            "output" => {
                let item = |name, ty| OutputItem { name, ty, value: None };
                let items = match &value.kind {
                    Kind::Map(_) => self
                        .entries(value, "")?
                        .iter()
                        .map(|(n, t)| match t.kind {
                            Kind::Scalar { null: true, .. } => Ok(item(self.name(n)?, None)),
                            _ => Ok(item(self.name(n)?, Some(self.tensor(t)?))),
                        })
                        .collect::<Result<_, Diagnostic>>()?,
                    Kind::Seq(names) => {
                        names.iter().map(|n| Ok(item(self.name(n)?, None))).collect::<Result<_, _>>()?
                    }
                    Kind::Scalar { .. } => self.names(value)?.into_iter().map(|n| item(n, None)).collect(),
                };
                out.push(Stmt::Output(items));
            }
            "return" => out.push(Stmt::Return { value: self.expr(value)?, span }),
            name => {
                if !matches!(value.kind, Kind::Scalar { .. }) {
                    let d = self.wrong(value, "an expression");
                    return Err(match did_you_mean(name, STMT_KEYS.iter().copied()) {
                        Some(s) => {
                            d.help(format!("`{name}` binds a name; did you mean the statement `{s}`?"))
                        }
                        None => d,
                    });
                }
                out.push(Stmt::Let { names: self.names(key)?, value: self.expr(value)? });
            }
        }
        Ok(())
    }
}

/// The values of a checked mapping, by key.
struct Fields<'n>(&'n [(Node, Node)]);

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.0
            .iter()
            .find(|(k, _)| matches!(&k.kind, Kind::Scalar { value, .. } if value == key))
            .map(|(_, v)| v)
    }

    /// The entries of the mapping under `key`; none when it is absent.
    fn entries(&self, cx: &Cx, key: &str, what: &str) -> Result<&'n [(Node, Node)], Diagnostic> {
        self.get(key).map_or(Ok(&[]), |node| cx.entries(node, what))
    }
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn respan_expr(e: &mut Expr, s: Span) {
    e.span = s;
    match &mut e.kind {
        ExprKind::List(items) => items.iter_mut().for_each(|x| respan_expr(x, s)),
        ExprKind::Call { callee, args } => {
            callee.span = s;
            for a in args {
                a.name.iter_mut().for_each(|n| n.span = s);
                respan_expr(&mut a.value, s);
            }
        }
        ExprKind::Unary { operand: x, .. } | ExprKind::Paren(x) => respan_expr(x, s),
        ExprKind::Binary { lhs, rhs, .. } => {
            respan_expr(lhs, s);
            respan_expr(rhs, s);
        }
        ExprKind::Pipe { head, stages } => {
            respan_expr(head, s);
            stages.iter_mut().for_each(|x| respan_expr(x, s));
        }
        ExprKind::Labelled { label, body } => {
            label.span = s;
            respan_expr(body, s);
        }
        ExprKind::If { cond, then, otherwise } => {
            respan_expr(cond, s);
            then.iter_mut().chain(otherwise.iter_mut().flatten()).for_each(|st| respan_stmt(st, s));
        }
        ExprKind::Repeat(r) => {
            r.var.iter_mut().for_each(|v| v.span = s);
            r.name_format.iter_mut().for_each(|f| f.span = s);
            r.start.iter_mut().for_each(|x| respan_expr(x, s));
            respan_expr(&mut r.end, s);
            respan_expr(&mut r.body, s);
        }
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Str(_) | ExprKind::Name(_) => {}
    }
}

fn respan_stmt(st: &mut Stmt, s: Span) {
    match st {
        Stmt::Let { names, value } => {
            names.iter_mut().for_each(|n| n.span = s);
            respan_expr(value, s);
        }
        Stmt::Input { name, ty } => {
            name.span = s;
            respan_type(ty, s);
        }
        Stmt::Output(items) => {
            for item in items {
                item.name.span = s;
                item.ty.iter_mut().for_each(|t| respan_type(t, s));
                item.value.iter_mut().for_each(|v| respan_expr(v, s));
            }
        }
        Stmt::Return { value: e, span } | Stmt::Assert { cond: e, span, .. } => {
            *span = s;
            respan_expr(e, s);
        }
        Stmt::Expr(e) => respan_expr(e, s),
    }
    if let Stmt::Assert { message: Some(m), .. } = st {
        m.span = s;
    }
}

fn respan_type(t: &mut TypeExpr, s: Span) {
    t.span = s;
    if let TypeKind::Tensor { dims, dtype } = &mut t.kind {
        dims.iter_mut().for_each(|d| respan_expr(d, s));
        dtype.iter_mut().for_each(|d| d.span = s);
    }
}

fn respan_param(p: &mut Param, s: Span) {
    p.name.span = s;
    respan_type(&mut p.ty, s);
    p.default.iter_mut().for_each(|d| respan_expr(d, s));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile_source, Compiled};

    fn compile(text: &str) -> Compiled {
        compile_source("x.yaml", text, &Default::default())
    }

    /// `file:line:col` and code of the first diagnostic.
    fn first_error(text: &str) -> (String, &'static str, Diagnostic) {
        let c = compile(text);
        let d = c.diagnostics.items.first().cloned().unwrap_or_else(|| Diagnostic::error("none", "no error"));
        let at = d.primary.as_ref().map(|l| c.sources.location(l.span)).unwrap_or_default();
        (at, d.code, d)
    }

    fn strip(module: &mut Module) -> String {
        let s = Span::default();
        for item in &mut module.items {
            match item {
                Item::Use { span, .. } => *span = s,
                Item::Dim { name, example } => {
                    name.span = s;
                    example.iter_mut().for_each(|e| respan_expr(e, s));
                }
                Item::Def(d) => {
                    (d.span, d.name.span) = (s, s);
                    d.params.iter_mut().for_each(|p| respan_param(p, s));
                    d.returns.iter_mut().for_each(|t| respan_type(t, s));
                    d.body.iter_mut().for_each(|st| respan_stmt(st, s));
                }
            }
        }
        format!("{module:?}")
    }

    #[test]
    fn seed_mlp_matches_the_wick_spec() -> Result<(), Diagnostic> {
        let yaml = include_str!("../../specs/seed_mlp.yaml");
        let wick = include_str!("../../specs/seed_mlp.wick");
        let (mut a, mut b) = (parse_file(yaml, FileId(0))?, dsl::parse_file(wick, FileId(0))?);
        assert_eq!(strip(&mut a), strip(&mut b));
        let (a, b) = (compile(yaml), compile_source("x.wick", wick, &Default::default()));
        assert!(!a.diagnostics.has_errors(), "{}", a.render_diagnostics(crate::diag::RenderStyle::PLAIN));
        let json = |c: &Compiled| c.summary(None).map(|s| crate::report::render_json(&s));
        assert_eq!(json(&a), json(&b));
        assert_eq!(a.summary(None).map(|s| s.total_params), Some(185_235));
        Ok(())
    }

    #[test]
    fn every_form_maps_to_the_wick_ast() -> Result<(), Diagnostic> {
        let yaml = r#"
use: [lib.wick]
dims: {N: 1, C: null}
blocks:
  SE:
    params:
      x: "[N, c, h, w]"
      r: int = 16
    returns: [N, c, h, w]
    body:
      - assert: c % r == 0
        message: "{r} \"r\""
      - a, b: split(x, 2)
      - return: "x * reshape(s, [N, c, 1, 1]) |> \"q\""
models:
  M:
    params: {k: int = 3}
    body:
      - input: {x: "[N, 784] of f32", y: "[N, 4]"}
      - x |> Linear(3)
      - h: |
          if k > 1 { x |> ReLU }
          else { x }
      - output: [h, y]
"#;
        let wick = r#"use "lib.wick" dim N = 1 dim C
            block SE(x: [N, c, h, w], r: int = 16) -> [N, c, h, w] {
                assert c % r == 0, "{r} \"r\""
                a, b = split(x, 2)
                return x * reshape(s, [N, c, 1, 1]) |> "q"
            }
            model M(k: int = 3) {
                input x: [N, 784] of f32
                input y: [N, 4]
                x |> Linear(3)
                h = if k > 1 { x |> ReLU } else { x }
                output h, y
            }"#;
        let (mut a, mut b) = (parse_file(yaml, FileId(0))?, dsl::parse_file(wick, FileId(0))?);
        assert_eq!(strip(&mut a), strip(&mut b));
        Ok(())
    }

    #[test]
    fn the_module_doc_example_parses() -> Result<(), Diagnostic> {
        let doc = include_str!("yaml.rs").lines().filter_map(|l| l.strip_prefix("//!"));
        let example: Vec<&str> = doc
            .skip_while(|l| *l != " ```yaml")
            .skip(1)
            .take_while(|l| *l != " ```")
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect();
        let module = parse_file(&example.join("\n"), FileId(0))?;
        assert_eq!(module.items.len(), 4);
        Ok(())
    }

    #[test]
    fn spans_point_into_the_yaml() {
        let spec = |stmt: &str| {
            let head = "dims: {N: 1}\nmodels:\n  M:\n    body:\n      - input:\n          x: \"[N, 4]\"";
            format!("{head}\n{stmt}\n      - output: y\n")
        };
        // Each case puts its culprit on line 7: (statement, location, code).
        let cases = [
            ("      - y: x |> Lienar(3)", "x.yaml:7:17", "E0202"),
            ("      - y: \"x |> fc: Linear(3) |> +\"", "x.yaml:7:35", "E0101"),
            ("      - y: >-\n          x |> fc: Linear(3)\n            |> )", "x.yaml:9:16", "E0101"),
            ("      - y: 'x |> fc: Linear(''3'') |> )'", "x.yaml:7:12", "E0101"),
            ("      - y, 3z: x", "x.yaml:7:12", "E0104"),
            ("      - y: x\n        typo: 1", "x.yaml:7:9", "E0104"),
        ];
        for (stmt, at, code) in cases {
            let (found, c, d) = first_error(&spec(stmt));
            assert_eq!((found.as_str(), c), (at, code), "{stmt}: {d:?}");
        }
    }

    #[test]
    fn unknown_keys_suggest_the_accepted_ones() {
        let (at, code, d) = first_error("dims: {N: 1}\nmodles:\n  M: {}\n");
        assert_eq!((at.as_str(), code), ("x.yaml:2:1", "E0104"));
        assert_eq!(d.help.as_deref(), Some("did you mean `models`?"));
        assert!(d.notes.iter().any(|n| n.contains("use, dims, blocks, models")), "{d:?}");
        let (at, _, d) = first_error("blocks:\n  B:\n    bdy: []\n");
        assert_eq!((at.as_str(), d.help.as_deref()), ("x.yaml:3:5", Some("did you mean `body`?")));
        let (at, _, d) = first_error("models:\n  M:\n    body:\n      - assert: true\n        mesage: hi\n");
        assert_eq!((at.as_str(), d.help.as_deref()), ("x.yaml:5:9", Some("did you mean `message`?")));
        let (_, _, d) = first_error("models:\n  M:\n    body:\n      - inpt: {x: \"[1]\"}\n");
        assert!(d.help.as_ref().is_some_and(|h| h.contains("`input`")), "{d:?}");
        let (_, _, d) = first_error("models: [M]\n");
        assert_eq!(d.message, "expected a mapping of names to definitions, found a list");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = |n: usize| format!("dims: {}{}", "[".repeat(n), "]".repeat(n));
        let d = parse_file(&deep(MAX_DEPTH - 1), FileId(0)).err();
        assert!(d.is_some_and(|d| d.message.starts_with("expected dims")));
        let d = parse_file(&deep(MAX_DEPTH), FileId(0)).err();
        assert!(d.is_some_and(|d| d.message.contains("deeper than 64")));
        assert!(parse_file(&deep(1_000_000), FileId(0)).is_err());
        assert!(parse_file(&"- ".repeat(100_000), FileId(0)).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let garbage =
            ["[[[{", "\t: - :", "", "a: *x", "a: 1\n---\nb: 2", "{a: 1, a: 2}", "\u{feff}é: [", "- ]"];
        for text in garbage {
            // An empty file is an empty module, as in `.wick`; compiling it finds no model.
            assert!(compile(text).diagnostics.has_errors(), "{text:?}");
        }
        assert_eq!(first_error("[[[{").0, "x.yaml:1:5");
        // Every prefix of a real spec, cut at any character, is handled.
        let yaml = include_str!("../../specs/seed_mlp.yaml");
        for (i, _) in yaml.char_indices() {
            let _ = compile(&yaml[..i]);
        }
    }
}
