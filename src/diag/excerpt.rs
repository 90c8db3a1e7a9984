//! The lines of a source file that one diagnostic shows, as miette reads them.
//!
//! Handing miette the whole file costs a scan of the file per label (so thousands of
//! diagnostics take quadratic time) and panics once a column passes 65,535 (its padding widths
//! are `u16`). An excerpt holds only the lines around the labels, each line longer than
//! [`WIDE`] bytes cut to a window around its label with `...` marking the cuts, and reports
//! the file's own line numbers and byte columns, so the rendering reads as if the whole file
//! were there.

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::front::span::{SourceFile, Span};

/// Lines longer than this (in bytes) are shown as a window around their label.
const WIDE: usize = 160;
/// The window: this many bytes before the anchor and this many in all.
const LEFT: usize = 40;
const WINDOW: usize = 120;
/// A label over more lines than this is shown on its first line only.
const TALL: usize = 12;
/// The lines miette shows above and below a label (its default).
const CONTEXT: usize = 1;
/// Snippets this many lines apart or fewer are shown as one, the lines between included.
const GAP: usize = 2;
const CUT: &str = "...";

/// One line of the excerpt.
#[derive(Debug)]
struct Row {
    /// Where the row starts in the excerpt's text.
    at: usize,
    /// Its 0-based line in the file.
    line: usize,
    /// Where the line starts in the file.
    line_start: usize,
    /// The file bytes kept: the whole line, or the window.
    kept: (usize, usize),
    /// Bytes of the cut marker before the kept bytes.
    marker: usize,
}

#[derive(Debug)]
pub(super) struct Excerpt {
    name: String,
    text: String,
    rows: Vec<Row>,
}

impl Excerpt {
    /// The excerpt of `file` that shows `spans`, and each span mapped into it.
    pub(super) fn new(file: &SourceFile, spans: &[Span]) -> (Excerpt, Vec<SourceSpan>) {
        let spans: Vec<(usize, usize)> = spans.iter().map(|s| clip_tall(file, *s)).collect();
        let mut ranges: Vec<(usize, usize)> = spans
            .iter()
            .map(|(s, e)| {
                let first = file.line_index(*s).saturating_sub(CONTEXT);
                let last = (file.line_index(*e) + CONTEXT).min(file.line_count() - 1);
                (first, last)
            })
            .collect();
        ranges.sort_unstable();
        // Ranges close enough are one run of lines, the lines between included: miette joins
        // snippets by the line counts `read_span` reports, which say the same (see there).
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (first, last) in ranges {
            match merged.last_mut() {
                Some(prev) if first <= prev.1 + 1 + GAP => prev.1 = prev.1.max(last),
                _ => merged.push((first, last)),
            }
        }
        let mut excerpt = Excerpt { name: file.name.clone(), text: String::new(), rows: Vec::new() };
        for (first, last) in merged {
            for line in first..=last {
                excerpt.push_row(file, line, &spans);
            }
        }
        let mapped = spans
            .iter()
            .map(|(s, e)| {
                let start = excerpt.map(file, *s);
                let end = excerpt.map(file, *e).max(start);
                SourceSpan::new(start.into(), end - start)
            })
            .collect();
        (excerpt, mapped)
    }

    fn push_row(&mut self, file: &SourceFile, line: usize, spans: &[(usize, usize)]) {
        let (start, end, next) = file.line_bounds(line);
        let text = &file.text;
        let at = self.text.len();
        if end - start <= WIDE {
            self.text.push_str(text.get(start..next).unwrap_or(""));
            self.rows.push(Row { at, line, line_start: start, kept: (start, end), marker: 0 });
            return;
        }
        // The window's anchor: the first label starting on this line, else one ending on it.
        let anchor = spans
            .iter()
            .map(|(s, _)| *s)
            .find(|s| (start..=end).contains(s))
            .or_else(|| spans.iter().map(|(_, e)| *e).find(|e| (start..=end).contains(e)))
            .unwrap_or(start);
        let from = floor_boundary(text, anchor.saturating_sub(LEFT).max(start));
        let to = floor_boundary(text, (from + WINDOW).min(end));
        let marker = if from > start { CUT.len() } else { 0 };
        if marker > 0 {
            self.text.push_str(CUT);
        }
        self.text.push_str(text.get(from..to).unwrap_or(""));
        if to < end {
            self.text.push_str(CUT);
        }
        self.text.push_str(text.get(end..next).unwrap_or(""));
        self.rows.push(Row { at, line, line_start: start, kept: (from, to), marker });
    }

    /// The excerpt offset showing file offset `offset` (clamped into its row's window).
    fn map(&self, file: &SourceFile, offset: usize) -> usize {
        let line = file.line_index(offset);
        let Some(row) = self.rows.iter().find(|r| r.line == line) else {
            return self.text.len();
        };
        row.at + row.marker + offset.clamp(row.kept.0, row.kept.1) - row.kept.0
    }

    /// The file's byte column of an excerpt offset.
    fn column(&self, offset: usize) -> usize {
        let i = self.rows.partition_point(|r| r.at <= offset).saturating_sub(1);
        self.rows.get(i).map_or(0, |r| {
            let within = offset.saturating_sub(r.at + r.marker);
            r.kept.0 - r.line_start + within
        })
    }
}

/// A span as (start, end) offsets, ending on its first line when it covers more than [`TALL`].
fn clip_tall(file: &SourceFile, span: Span) -> (usize, usize) {
    let (start, end) = (span.start as usize, span.end as usize);
    let first = file.line_index(start);
    if file.line_index(end) > first + TALL {
        return (start, file.line_bounds(first).1.max(start));
    }
    (start, end)
}

/// The nearest char boundary at or before `i`.
fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let read = self.text.as_str().read_span(span, context_lines_before, context_lines_after)?;
        let data: &'a [u8] = read.data();
        let at = read.span().offset();
        let row = self.rows.partition_point(|r| r.at <= at).saturating_sub(1);
        let line = self.rows.get(row).map_or(0, |r| r.line);
        // miette gives a column only when it reads no lines before the span.
        let column = if context_lines_before == 0 { self.column(at) } else { 0 };
        // miette joins two snippets when the first's line plus its line count reaches the
        // second's line; the lines a snippet covers plus `GAP` make that the excerpt's own rule.
        let line_count = data.iter().filter(|b| **b == b'\n').count() + GAP;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            data,
            *read.span(),
            line,
            column,
            line_count,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::span::SourceMap;

    fn excerpt_of(text: &str, spans: &[(usize, usize)]) -> (Excerpt, Vec<SourceSpan>) {
        let mut map = SourceMap::new();
        let id = map.add("t.wick", None, text.to_string());
        let spans: Vec<Span> = spans.iter().map(|(s, e)| Span::new(id, *s, *e)).collect();
        Excerpt::new(map.get(id), &spans)
    }

    #[test]
    fn short_lines_are_kept_whole_with_their_context() {
        let text = "a\nb\nc x\nd\ne\n";
        let (e, spans) = excerpt_of(text, &[(6, 7)]);
        assert_eq!(e.text, "b\nc x\nd\n");
        assert_eq!(&e.text[spans[0].offset()..spans[0].offset() + spans[0].len()], "x");
        let read = e.read_span(&spans[0], 0, 0).unwrap();
        assert_eq!((read.line(), read.column()), (2, 2));
    }

    #[test]
    fn a_long_line_is_cut_to_a_window_around_the_label() {
        let text = format!("{}target{}\n", "a".repeat(100_000), "b".repeat(100_000));
        let (e, spans) = excerpt_of(&text, &[(100_000, 100_006)]);
        assert!(e.text.len() < 200, "{}", e.text.len());
        assert!(e.text.starts_with(CUT) && e.text.trim_end().ends_with(CUT));
        let s = spans[0];
        assert_eq!(&e.text[s.offset()..s.offset() + s.len()], "target");
        let read = e.read_span(&s, 0, 0).unwrap();
        assert_eq!(read.column(), 100_000);
    }

    #[test]
    fn a_label_over_many_lines_is_shown_on_its_first() {
        let text: String = (0..40).map(|i| format!("line{i}\r\n")).collect();
        let (e, spans) = excerpt_of(&text, &[(8, text.len() - 3)]);
        assert_eq!(e.text, "line0\r\nline1\r\nline2\r\n");
        assert_eq!(&e.text[spans[0].offset()..spans[0].offset() + spans[0].len()], "ine1");
    }

    #[test]
    fn distant_labels_keep_their_own_line_numbers() {
        let text: String = (0..100).map(|i| format!("line{i}\n")).collect();
        let second = text.find("line80").unwrap();
        let (e, spans) = excerpt_of(&text, &[(0, 5), (second, second + 6)]);
        assert_eq!(e.read_span(&spans[1], 0, 0).unwrap().line(), 80);
        assert_eq!(e.read_span(&spans[0], 1, 1).unwrap().line(), 0);
    }
}
