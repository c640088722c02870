//! Checks made before the grammar runs, so that no input can make the parser recurse
//! too deep, run for long, or report an unterminated string only as "unexpected end".
//!
//! pest descends once per bracket level; the AST builder and every later pass recurse
//! once per tree level. Bounding bracket depth here and operator chains in the builder
//! bounds the tree height for all of them. Real rules nest at most 13 brackets deep
//! (measured over ../shared/corpus).

use super::ast::Span;
use super::error::{SyntaxError, SyntaxErrorKind};

/// Deepest bracket nesting accepted: `(`, `[`, `{` together.
pub const MAX_BRACKET_DEPTH: usize = 40;
/// Longest chain of operators in one expression (`a + b + ...`, `- - x`, `a.b.c...`).
/// `and`/`or` chains are flat in the tree and do not count.
pub const MAX_CHAIN_HEIGHT: u32 = 100;
/// Largest query accepted, in bytes. Sentinel itself caps rule queries at 10,000
/// characters; hunting queries run larger, but never near this.
pub const MAX_QUERY_BYTES: usize = 1 << 20;

/// Scans strings, comments and brackets the way the grammar reads them.
pub fn check(text: &str) -> Result<(), SyntaxError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(SyntaxError {
            kind: SyntaxErrorKind::TooLarge,
            span: Span::new(0, 0),
            message: format!(
                "query is {} bytes; the largest accepted is {} bytes",
                text.len(),
                MAX_QUERY_BYTES
            ),
            expected: vec![],
        });
    }
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    let mut only_trivia = true;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = line_end(bytes, i);
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            _ => only_trivia = false,
        }
        match b {
            b'`' if bytes[i..].starts_with(b"```") => i = fenced_end(text, i, "```")?,
            b'~' if bytes[i..].starts_with(b"~~~") => i = fenced_end(text, i, "~~~")?,
            b'@' if matches!(bytes.get(i + 1), Some(b'"' | b'\'')) => {
                i = quoted_end(text, i + 1, false).map_err(|_| unterminated(text, i))?
            }
            b'"' | b'\'' => i = quoted_end(text, i, true).map_err(|_| unterminated(text, i))?,
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_BRACKET_DEPTH {
                    return Err(SyntaxError {
                        kind: SyntaxErrorKind::TooDeep,
                        span: Span::new(i, i + 1),
                        message: format!("brackets nest more than {MAX_BRACKET_DEPTH} levels deep"),
                        expected: vec![],
                    });
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    if only_trivia {
        return Err(SyntaxError {
            kind: SyntaxErrorKind::Empty,
            span: Span::new(0, 0),
            message: "the query is empty (only whitespace or comments)".to_string(),
            expected: vec![],
        });
    }
    Ok(())
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |p| from + p)
}

/// End (exclusive) of a one-line string starting at the quote at `start`.
fn quoted_end(text: &str, start: usize, escapes: bool) -> Result<usize, ()> {
    let bytes = text.as_bytes();
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b'\n' | b'\r' => return Err(()),
            b if b == quote => {
                // In verbatim strings a doubled quote stands for one quote.
                if !escapes && bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                    continue;
                }
                return Ok(i + 1);
            }
            _ => i += 1,
        }
    }
    Err(())
}

fn fenced_end(text: &str, start: usize, fence: &str) -> Result<usize, SyntaxError> {
    match text[start + 3..].find(fence) {
        Some(p) => Ok(start + 3 + p + 3),
        None => Err(SyntaxError {
            kind: SyntaxErrorKind::UnterminatedString,
            span: Span::new(start, start + 3),
            message: format!("multi-line string opened with {fence} is never closed"),
            expected: vec![],
        }),
    }
}

fn unterminated(text: &str, start: usize) -> SyntaxError {
    let quote = &text[start..start + 1];
    SyntaxError {
        kind: SyntaxErrorKind::UnterminatedString,
        span: Span::new(start, start + 1),
        message: format!(
            "string starting here has no closing {quote} on the same line (use ``` for multi-line text)"
        ),
        expected: vec![],
    }
}
