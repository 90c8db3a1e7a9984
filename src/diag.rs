//! Diagnostics: a code, a message, labelled spans, help and notes — rendered rustc-style.
//!
//! Every phase pushes into a [`Diagnostics`] collection and carries on, so one run reports
//! every independent error. Rendering goes through miette's graphical handler with a fixed
//! theme and width, so snapshot tests are stable.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::front::span::{SourceMap, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A span with a short text saying what is there.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable code, `E0101` or `W0401`; see the README's table.
    pub code: &'static str,
    pub message: String,
    /// The culprit; `None` only for errors with nothing in the spec to point at.
    pub primary: Option<Label>,
    /// Other places involved (the other operand, an earlier definition).
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    /// Extra context.
    pub notes: Vec<String>,
    /// The block calls that led here, outermost first: (block, call site, path).
    pub calls: Vec<(String, Span, String)>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
            calls: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    pub fn at(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.primary = Some(Label { span, text: text.into() });
        self
    }

    pub fn also(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { span, text: text.into() });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn called_from(mut self, calls: Vec<(String, Span, String)>) -> Diagnostic {
        self.calls = calls;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The diagnostics of one compilation, in the order they were found.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        // The same error reached twice (e.g. through a shared block) is reported once.
        if !self.items.contains(&d) {
            self.items.push(d);
        }
    }

    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.items {
            self.push(d);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// How to draw diagnostics.
#[derive(Clone, Copy, Debug)]
pub struct RenderStyle {
    /// Box-drawing characters and colour (a terminal) or plain ASCII (a file, a pipe, a test).
    pub fancy: bool,
    pub width: usize,
}

impl RenderStyle {
    pub const PLAIN: RenderStyle = RenderStyle { fancy: false, width: 100 };
}

/// Render every diagnostic, followed by a one-line count.
pub fn render_all(diags: &Diagnostics, sources: &SourceMap, style: RenderStyle) -> String {
    let mut out = String::new();
    for d in &diags.items {
        out.push_str(&render(d, sources, style));
    }
    let errors = diags.error_count();
    let warnings = diags.items.len() - errors;
    if errors > 0 {
        out.push_str(&format!(
            "error: could not compile the spec: {errors} error{}{}\n",
            plural(errors),
            if warnings > 0 { format!(", {warnings} warning{}", plural(warnings)) } else { String::new() }
        ));
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Render one diagnostic with its source snippet.
pub fn render(d: &Diagnostic, sources: &SourceMap, style: RenderStyle) -> String {
    let theme = if style.fancy { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let theme = if style.fancy {
        theme
    } else {
        GraphicalTheme { characters: miette::ThemeCharacters::ascii(), ..theme }
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(style.width).with_links(false);
    let report = Report::new(d, sources);
    let mut out = String::new();
    if handler.render_report(&mut out, &report).is_err() {
        out = format!("{}[{}]: {}\n", severity_word(d.severity), d.code, d.message);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
    out
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A diagnostic in the shape miette renders: labels in the primary span's file; labels in
/// other files and the notes become text below it.
#[derive(Debug)]
struct Report {
    message: String,
    code: String,
    severity: miette::Severity,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl Report {
    fn new(d: &Diagnostic, sources: &SourceMap) -> Report {
        let mut labels = Vec::new();
        let mut help_lines: Vec<String> = Vec::new();
        let mut source = None;
        let mut message = d.message.clone();
        if let Some(primary) = &d.primary {
            let file = sources.get(primary.span.file);
            source = Some(NamedSource::new(file.name.clone(), file.text.clone()));
            message = format!("{message}\n   at {}", sources.location(primary.span));
            labels.push(LabeledSpan::new_primary_with_span(
                Some(primary.text.clone()),
                source_span(primary.span),
            ));
            for l in &d.secondary {
                if l.span.file == primary.span.file {
                    labels.push(LabeledSpan::new_with_span(Some(l.text.clone()), source_span(l.span)));
                } else {
                    help_lines.push(format!("{}: {}", sources.location(l.span), l.text));
                }
            }
        }
        // miette prefixes the first line with "help:"; the fix goes first, context after.
        let mut lines: Vec<String> = d.help.iter().cloned().collect();
        lines.extend(help_lines);
        lines.extend(d.notes.iter().cloned());
        for (block, span, path) in d.calls.iter().rev() {
            lines.push(format!("in {block} `{path}`, called at {}", sources.location(*span)));
        }
        let help_lines = lines;
        Report {
            message,
            // rustc's header: `error[E0301]`, so the severity reads without colour too.
            code: format!("{}[{}]", severity_word(d.severity), d.code),
            severity: match d.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            },
            source,
            labels,
            help: (!help_lines.is_empty()).then(|| help_lines.join("\n")),
        }
    }
}

fn source_span(span: Span) -> SourceSpan {
    SourceSpan::new((span.start as usize).into(), span.len())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

/// The closest candidate to a misspelled name, if one is close enough to suggest.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c.to_lowercase() == lower {
            return Some(c);
        }
        let d = edit_distance(&lower, &c.to_lowercase());
        let limit = (name.chars().count().max(3)) / 3;
        if d <= limit.max(1) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut before: Vec<usize> = prev.clone();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
            // A swap of two neighbours (`modle` for `model`) is one edit, as people type it.
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("Conv2D", ["Conv2d", "Conv1d"]), Some("Conv2d"));
        assert_eq!(did_you_mean("Lienar", ["Linear", "LayerNorm"]), Some("Linear"));
        assert_eq!(did_you_mean("Foo", ["Linear", "LayerNorm"]), None);
    }
}
