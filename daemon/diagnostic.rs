//! Diagnostics: a problem found in a source file, located by byte span, rendered as
//! `file:line:column` with the offending line and a caret. Owns rendering only; it must not
//! decide what is an error (that is the job of the module that found it).

use std::fmt::Write as _;
use std::ops::Range;

/// How bad a diagnostic is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a source file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Byte range in the source text.
    pub span: Range<usize>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            span,
            hint: None,
        }
    }

    pub fn warning(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            message: message.into(),
            span,
            hint: None,
        }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A named source text with a line index, used to turn byte offsets into line:column.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

/// A 1-based line and column (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            name: name.into(),
            text,
            line_starts,
        }
    }

    fn clamp(&self, offset: usize) -> usize {
        let mut o = offset.min(self.text.len());
        while !self.text.is_char_boundary(o) {
            o -= 1;
        }
        o
    }

    /// Line and column of a byte offset.
    pub fn position(&self, offset: usize) -> Position {
        let offset = self.clamp(offset);
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        Position {
            line: line + 1,
            column,
        }
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// Renders one diagnostic in the house style:
    ///
    /// ```text
    /// error: unknown key `timezon` in `[person]`
    ///  --> plan.toml:3:1
    ///   |
    /// 3 | timezon = "Europe/Berlin"
    ///   | ^^^^^^^
    ///   = hint: did you mean `timezone`?
    /// ```
    pub fn render(&self, d: &Diagnostic) -> String {
        let pos = self.position(d.span.start);
        let whole = self.line_text(pos.line);
        let gutter = pos.line.to_string().len();
        let pad = " ".repeat(gutter);
        let label = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // Caret length: the span's characters on this line, at least one.
        let line_start = self.line_starts[pos.line - 1];
        let line_end = line_start + whole.len();
        let span_end = self.clamp(d.span.end.min(line_end).max(d.span.start));
        let span_start = self.clamp(d.span.start);
        let width = self.text[span_start..span_end].chars().count().max(1);
        // A very long line is echoed as a window around the caret, so that thousands of
        // problems on one line can't print the line thousands of times.
        let (line, column, width) = window(whole, pos.column, width);
        let indent: String = line
            .chars()
            .take(column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let mut out = String::new();
        let _ = writeln!(out, "{label}: {}", d.message);
        let _ = writeln!(out, "{pad}--> {}:{}:{}", self.name, pos.line, pos.column);
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{} | {}", pos.line, line);
        let _ = writeln!(out, "{pad} | {indent}{}", "^".repeat(width));
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "{pad} = hint: {hint}");
        }
        out
    }

    /// Renders diagnostics in source order, separated by blank lines: at most
    /// `MAX_SHOWN`, then a line saying how many more there are.
    pub fn render_all(&self, diagnostics: &[Diagnostic]) -> String {
        let mut out = diagnostics
            .iter()
            .take(MAX_SHOWN)
            .map(|d| self.render(d))
            .collect::<Vec<_>>()
            .join("\n");
        if diagnostics.len() > MAX_SHOWN {
            let _ = writeln!(
                out,
                "\n... and {} more problem{} not shown",
                diagnostics.len() - MAX_SHOWN,
                if diagnostics.len() - MAX_SHOWN == 1 {
                    ""
                } else {
                    "s"
                }
            );
        }
        out
    }
}

/// At most this many diagnostics are printed in full.
pub const MAX_SHOWN: usize = 50;
/// Lines longer than this many characters are echoed as a window around the caret.
const MAX_ECHO: usize = 120;

/// Cuts a long line to a window around the caret: returns the text to echo, the caret's
/// 1-based column in it and the caret width.
fn window(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let chars = line.chars().count();
    if chars <= MAX_ECHO {
        return (line.to_string(), column, width);
    }
    let width = width.min(MAX_ECHO / 2);
    let start = column.saturating_sub(1 + MAX_ECHO / 3);
    let end = (start + MAX_ECHO).min(chars);
    let mut text: String = line.chars().skip(start).take(end - start).collect();
    let mut column = column - start;
    if start > 0 {
        text.insert(0, '…');
        column += 1;
    }
    if end < chars {
        text.push('…');
    }
    (text, column, width)
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&word.to_lowercase(), &c.to_lowercase());
        if score >= 0.8 && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_not_bytes() {
        let src = SourceFile::new("p.toml", "a = 1\nnäme = \"x\"\n");
        let off = src.text.find('=').unwrap();
        assert_eq!(src.position(off), Position { line: 1, column: 3 });
        let off = src.text.rfind('=').unwrap();
        assert_eq!(src.position(off), Position { line: 2, column: 6 });
    }

    #[test]
    fn renders_caret_under_span() {
        let src = SourceFile::new("plan.toml", "[person]\ntimezon = \"Europe/Berlin\"\n");
        let d =
            Diagnostic::error(9..16, "unknown key `timezon`").with_hint("did you mean `timezone`?");
        let out = src.render(&d);
        assert_eq!(
            out,
            "error: unknown key `timezon`\n --> plan.toml:2:1\n  |\n2 | timezon = \"Europe/Berlin\"\n  | ^^^^^^^\n  = hint: did you mean `timezone`?\n"
        );
    }

    #[test]
    fn span_at_end_of_file_does_not_panic() {
        let src = SourceFile::new("p", "abc");
        let out = src.render(&Diagnostic::error(3..10, "x"));
        assert!(out.contains("p:1:4"), "{out}");
        let empty = SourceFile::new("p", "");
        assert!(
            empty
                .render(&Diagnostic::error(0..0, "x"))
                .contains("p:1:1")
        );
    }

    #[test]
    fn long_lines_and_many_problems_are_bounded() {
        let line = format!("x = \"{}\"", "{bad}".repeat(20_000));
        let src = SourceFile::new("p.toml", line.clone());
        let diags: Vec<_> = (0..20_000)
            .map(|i| Diagnostic::error(5 + i * 5..10 + i * 5, "unknown placeholder"))
            .collect();
        let out = src.render_all(&diags);
        assert!(out.len() < 50 * 600, "{} bytes", out.len());
        assert!(
            out.contains("... and 19950 more problems not shown"),
            "{out}"
        );
        let one = src.render(&diags[10_000]);
        let echoed = one.lines().nth(3).unwrap();
        let caret = one.lines().nth(4).unwrap();
        assert!(echoed.chars().count() < 140, "{echoed}");
        // The caret still sits under the `{bad}` it names.
        let col = caret.find('^').unwrap();
        let under: String = echoed.chars().skip(col).take(5).collect();
        assert_eq!(under, "{bad}", "{one}");
    }

    #[test]
    fn suggests_close_names_only() {
        let keys = ["timezone", "name", "quiet_hours"];
        assert_eq!(did_you_mean("timezon", keys), Some("timezone"));
        assert_eq!(did_you_mean("xyz", keys), None);
    }
}
