//! Diagnostics: a code, a message, labelled spans, help and notes — rendered rustc-style.
//!
//! Every phase pushes into a [`Diagnostics`] collection and carries on, so one run reports
//! every independent error. Rendering goes through miette's graphical handler with a fixed
//! theme and width, so snapshot tests are stable.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};

mod excerpt;

use excerpt::Excerpt;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan};

use crate::front::span::{SourceMap, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

/// A span with a short text saying what is there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

/// Most diagnostics kept for one compilation; later ones are only counted, so a spec that
/// repeats a mistake a million times neither fills memory nor floods the terminal.
pub const MAX_DIAGNOSTICS: usize = 200;

/// The diagnostics of one compilation, in the order they were found.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
    /// Hash of each kept item -> its indices, so a repeat is found without a scan.
    seen: HashMap<u64, Vec<usize>>,
    /// Errors and warnings past [`MAX_DIAGNOSTICS`], counted but not kept.
    dropped_errors: usize,
    dropped_warnings: usize,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        // The same error reached twice (e.g. through a shared block) is reported once.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        d.hash(&mut hasher);
        let hash = hasher.finish();
        if self.seen.get(&hash).is_some_and(|same| same.iter().any(|i| self.items[*i] == d)) {
            return;
        }
        if self.items.len() >= MAX_DIAGNOSTICS {
            match d.severity {
                Severity::Error => self.dropped_errors += 1,
                Severity::Warning => self.dropped_warnings += 1,
            }
            return;
        }
        self.seen.entry(hash).or_default().push(self.items.len());
        self.items.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.dropped_errors += other.dropped_errors;
        self.dropped_warnings += other.dropped_warnings;
        for d in other.items {
            self.push(d);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.dropped_errors > 0 || self.items.iter().any(Diagnostic::is_error)
    }

    /// Errors found, kept or not.
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count() + self.dropped_errors
    }

    /// Warnings found, kept or not.
    pub fn warning_count(&self) -> usize {
        self.items.len() - self.items.iter().filter(|d| d.is_error()).count() + self.dropped_warnings
    }

    /// Diagnostics found but not kept (past [`MAX_DIAGNOSTICS`]).
    pub fn dropped(&self) -> usize {
        self.dropped_errors + self.dropped_warnings
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.dropped() == 0
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
    if diags.dropped() > 0 {
        out.push_str(&format!(
            "note: {} more diagnostic{} not shown (only the first {MAX_DIAGNOSTICS} are)\n",
            diags.dropped(),
            plural(diags.dropped())
        ));
    }
    let errors = diags.error_count();
    let warnings = diags.warning_count();
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

/// The block calls that led to a diagnostic, innermost first; a deep chain (a recursive block)
/// keeps its ends and says how many calls it leaves out between them.
fn call_lines(calls: &[(String, Span, String)], sources: &SourceMap) -> Vec<String> {
    const ENDS: usize = 4;
    let line = |(block, span, path): &(String, Span, String)| {
        format!("in {block} `{path}`, called at {}", sources.location(*span))
    };
    if calls.len() <= 2 * ENDS + 1 {
        return calls.iter().rev().map(line).collect();
    }
    let mut lines: Vec<String> = calls[calls.len() - ENDS..].iter().rev().map(line).collect();
    lines.push(format!("... {} calls more ...", calls.len() - 2 * ENDS));
    lines.extend(calls[..ENDS].iter().rev().map(line));
    lines
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A diagnostic in the shape miette renders: labels in the primary span's file; labels in
/// other files and the notes become text below it. A file that is not shown (not a spec) gives
/// its places as text, never its bytes.
#[derive(Debug)]
struct Report {
    message: String,
    code: String,
    severity: miette::Severity,
    source: Option<Excerpt>,
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
            message = format!("{message}\n   at {}", sources.location(primary.span));
            let (here, elsewhere): (Vec<&Label>, Vec<&Label>) = std::iter::once(primary)
                .chain(&d.secondary)
                .partition(|l| l.span.file == primary.span.file && file.shown);
            let spans: Vec<Span> = here.iter().map(|l| l.span).collect();
            if !here.is_empty() {
                let (excerpt, mapped) = Excerpt::new(file, &spans);
                for (i, (l, span)) in here.iter().zip(mapped).enumerate() {
                    let text = Some(l.text.clone());
                    labels.push(if i == 0 {
                        LabeledSpan::new_primary_with_span(text, span)
                    } else {
                        LabeledSpan::new_with_span(text, span)
                    });
                }
                source = Some(excerpt);
            }
            for l in elsewhere {
                help_lines.push(format!("{}: {}", sources.location(l.span), l.text));
            }
        }
        // miette prefixes the first line with "help:"; the fix goes first, context after.
        let mut lines: Vec<String> = d.help.iter().cloned().collect();
        lines.extend(help_lines);
        lines.extend(d.notes.iter().cloned());
        lines.extend(call_lines(&d.calls, sources));
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
    // Edit distance costs the product of the lengths: nobody misspells a name this long.
    const LONGEST: usize = 64;
    let length = name.chars().count();
    if length > LONGEST {
        return None;
    }
    let lower = name.to_lowercase();
    let limit = (length.max(3) / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        // A candidate whose length differs by more than the limit cannot be within it.
        if c.len().abs_diff(name.len()) > 4 * limit && c.chars().count().abs_diff(length) > limit {
            continue;
        }
        if c.to_lowercase() == lower {
            return Some(c);
        }
        let d = edit_distance(&lower, &c.to_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
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
    fn repeats_are_kept_once_and_past_the_cap_only_counted() {
        let mut diags = Diagnostics::default();
        diags.push(Diagnostic::error("E0201", "same"));
        diags.push(Diagnostic::error("E0201", "same"));
        assert_eq!(diags.items.len(), 1);
        for i in 0..MAX_DIAGNOSTICS + 50 {
            diags.push(Diagnostic::warning("W0401", format!("warning {i}")));
        }
        assert_eq!(diags.items.len(), MAX_DIAGNOSTICS);
        assert_eq!(
            (diags.error_count(), diags.warning_count(), diags.dropped()),
            (1, MAX_DIAGNOSTICS + 50, 51)
        );
        let rendered = render_all(&diags, &SourceMap::new(), RenderStyle::PLAIN);
        assert!(rendered.contains("51 more diagnostics not shown"), "{rendered}");
    }

    #[test]
    fn a_deep_call_chain_keeps_its_ends() {
        let mut sources = SourceMap::new();
        let file = sources.add("t.wick", None, "x\n".into());
        let calls: Vec<_> =
            (0..30).map(|i| ("R".to_string(), Span::new(file, 0, 1), format!("r{i}"))).collect();
        let lines = call_lines(&calls, &sources);
        assert_eq!(lines.len(), 9, "{lines:?}");
        assert!(lines[0].contains("`r29`") && lines[8].contains("`r0`"), "{lines:?}");
        assert_eq!(lines[4], "... 22 calls more ...");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("Conv2D", ["Conv2d", "Conv1d"]), Some("Conv2d"));
        assert_eq!(did_you_mean("Lienar", ["Linear", "LayerNorm"]), Some("Linear"));
        assert_eq!(did_you_mean("Foo", ["Linear", "LayerNorm"]), None);
    }
}
