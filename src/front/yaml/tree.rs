//! The YAML text as a tree of spanned nodes, built from yaml-rust2's event stream.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use super::{Kind, Node, MAX_DEPTH};
use crate::diag::Diagnostic;
use crate::front::span::{FileId, Span};

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

pub(super) struct Cx<'a> {
    pub(super) text: &'a str,
    pub(super) file: FileId,
}

impl Cx<'_> {
    /// Build the node tree from the event stream without recursion; `None` for an empty document.
    pub(super) fn load(&self) -> Result<Option<Node>, Diagnostic> {
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
        Node { kind: Kind::Scalar { value, raw, null, plain }, span }
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

    pub(super) fn error(&self, span: Span, message: impl Into<String>, label: &str) -> Diagnostic {
        Diagnostic::error("E0104", message).at(span, label)
    }
}

/// YAML's whitespace inside a scalar's source text.
pub(super) fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}
