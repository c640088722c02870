//! Diagnostics: what went wrong (or was approximated), where in the rule file, and a
//! stable code. Rendering (code frames) lives here too, so no other module formats errors.

mod codes;

use codespan_reporting::diagnostic::{Diagnostic as Frame, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;
use serde::Serialize;

pub use codes::Code;

use crate::load::{LoadError, LoadErrorKind, Rule, SourceFile};
use crate::syntax::{SyntaxError, SyntaxErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

/// A byte range in a rule file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileSpan {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    /// Where in the file; `None` for problems with the file as a whole.
    pub span: Option<FileSpan>,
    /// Short text shown under the caret.
    pub label: Option<String>,
    /// Further lines: what was expected, what was done instead.
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: None,
            notes: vec![],
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, start: usize, end: usize) -> Diagnostic {
        self.span = Some(FileSpan {
            start,
            end: end.max(start),
        });
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// A syntax error in a rule's query, placed in the rule's file.
    pub fn from_syntax(error: &SyntaxError, rule: &Rule) -> Diagnostic {
        let code = match error.kind {
            SyntaxErrorKind::Unexpected => Code::SyntaxError,
            SyntaxErrorKind::UnterminatedString => Code::UnterminatedString,
            SyntaxErrorKind::TooDeep => Code::TooDeep,
            SyntaxErrorKind::TooLarge => Code::TooLarge,
            SyntaxErrorKind::InvalidLiteral => Code::InvalidLiteral,
            SyntaxErrorKind::Empty => Code::EmptyQuery,
        };
        let start = rule.query_map.to_file(error.span.start as usize);
        let end = rule.query_map.to_file(error.span.end as usize);
        let label = match error.kind {
            SyntaxErrorKind::Unexpected if !error.expected.is_empty() => "unexpected here",
            SyntaxErrorKind::UnterminatedString => "string starts here",
            SyntaxErrorKind::TooDeep => "too deep from here",
            _ => "here",
        };
        Diagnostic::error(code, error.message.clone())
            .at(start, end)
            .with_label(label)
    }

    /// A problem loading a file.
    pub fn from_load(error: &LoadError) -> Diagnostic {
        let code = match error.kind {
            LoadErrorKind::Io => Code::ReadFailed,
            LoadErrorKind::NotUtf8 => Code::NotUtf8,
            LoadErrorKind::Yaml => Code::YamlSyntax,
            LoadErrorKind::Json => Code::JsonSyntax,
            LoadErrorKind::MissingQuery => Code::MissingQuery,
            LoadErrorKind::UnknownFormat => Code::UnknownFormat,
            LoadErrorKind::NoRules => Code::NoRules,
            LoadErrorKind::InvalidField => Code::InvalidField,
        };
        let severity = match error.kind {
            LoadErrorKind::InvalidField => Severity::Warning,
            _ => Severity::Error,
        };
        let d = Diagnostic {
            severity,
            ..Diagnostic::error(code, error.message.clone())
        };
        match error.span {
            Some((start, end)) => d.at(start, end),
            None => d,
        }
    }

    /// 1-based line and column (in characters) of the start, if the diagnostic has a place.
    pub fn line_column(&self, text: &str) -> Option<(usize, usize)> {
        self.span.map(|s| line_column(text, s.start))
    }
}

/// A diagnostic with its file and line/column, as written into JSON output and reports.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Located {
    pub fn new(d: &Diagnostic, file: &SourceFile) -> Located {
        let position = d.line_column(&file.text);
        Located {
            severity: d.severity,
            code: d.code,
            message: d.message.clone(),
            file: file.path.display().to_string(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            notes: d.notes.clone(),
        }
    }
}

/// 1-based line and column (characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Renders a diagnostic as text with a code frame (`path:line:col`, the source line, a
/// caret under the place).
pub fn render(diagnostic: &Diagnostic, file: &SourceFile) -> String {
    let name = file.path.display().to_string();
    let (text, shown) = window_long_line(&file.text, diagnostic);
    let rendered = render_frame(&shown, &name, &text);
    // A frame drawn from a shortened line names the shortened position: put back the
    // real one.
    match (shown.span, diagnostic.line_column(&file.text)) {
        (Some(span), Some((line, col))) if text.len() != file.text.len() => {
            let (shown_line, shown_col) = line_column(&text, span.start);
            rendered.replacen(
                &format!("{name}:{shown_line}:{shown_col}"),
                &format!("{name}:{line}:{col}"),
                1,
            )
        }
        _ => rendered,
    }
}

/// Lines longer than this are cut around the place shown, so that a code frame stays
/// readable for minified or generated queries.
const MAX_SHOWN_LINE: usize = 200;
const WINDOW_CONTEXT: usize = 60;

/// The text to draw the frame from: the file's, or a copy whose long line holding the
/// span is cut to a window (with the span moved accordingly).
fn window_long_line(text: &str, diagnostic: &Diagnostic) -> (String, Diagnostic) {
    let Some(span) = diagnostic.span else {
        return (text.to_string(), diagnostic.clone());
    };
    let start = floor_char_boundary(text, span.start.min(text.len()));
    let line_start = text[..start].rfind('\n').map_or(0, |p| p + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |p| start + p);
    if line_end - line_start <= MAX_SHOWN_LINE {
        return (text.to_string(), diagnostic.clone());
    }
    let from = floor_char_boundary(text, start.saturating_sub(WINDOW_CONTEXT).max(line_start));
    let end = floor_char_boundary(text, span.end.min(line_end).max(start));
    let to = floor_char_boundary(text, (end + WINDOW_CONTEXT).min(line_end));
    let head = if from > line_start { "…" } else { "" };
    let tail = if to < line_end { "…" } else { "" };
    let shown = format!(
        "{}{head}{}{tail}{}",
        &text[..line_start],
        &text[from..to],
        &text[line_end..]
    );
    let moved = line_start + head.len() + (start - from);
    let mut d = diagnostic.clone();
    d.span = Some(FileSpan {
        start: moved,
        end: moved + (end - start),
    });
    (shown, d)
}

fn render_frame(diagnostic: &Diagnostic, name: &str, text: &str) -> String {
    let frame_file = SimpleFile::new(name, text);
    let mut frame = match diagnostic.severity {
        Severity::Error => Frame::error(),
        Severity::Warning => Frame::warning(),
        Severity::Note => Frame::note(),
    }
    .with_code(diagnostic.code.as_str())
    .with_message(&diagnostic.message);
    if let Some(span) = diagnostic.span {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let end = floor_char_boundary(text, span.end.min(text.len())).max(start);
        let mut label = Label::primary((), start..end);
        if let Some(l) = &diagnostic.label {
            label = label.with_message(l);
        }
        frame = frame.with_labels(vec![label]);
    }
    frame = frame.with_notes(diagnostic.notes.clone());
    let config = term::Config::default();
    match term::emit_into_string(&config, &frame_file, &frame) {
        Ok(text) if diagnostic.span.is_some() => text,
        // No place: name the file in the headline instead of a frame.
        Ok(text) => text.replacen(
            &format!("{}\n", diagnostic.message),
            &format!("{}\n  = in {}\n", diagnostic.message, name),
            1,
        ),
        Err(_) => format!(
            "{}[{}]: {} ({})\n",
            match diagnostic.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "note",
            },
            diagnostic.code.as_str(),
            diagnostic.message,
            name
        ),
    }
}
