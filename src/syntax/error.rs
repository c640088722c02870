//! Syntax errors: a kind (with a stable code), a span in the query text and a message.

use super::ast::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub kind: SyntaxErrorKind,
    /// Byte range in the query text.
    pub span: Span,
    pub message: String,
    /// What the parser would have accepted, in words (may be empty).
    pub expected: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxErrorKind {
    /// The text does not follow KQL syntax.
    Unexpected,
    /// A string literal has no closing quote.
    UnterminatedString,
    /// Brackets or operator chains nest deeper than the parser allows.
    TooDeep,
    /// The query text is larger than the parser accepts.
    TooLarge,
    /// A literal is well-formed but its value is not valid (`long(x)`, an overflowing number).
    InvalidLiteral,
    /// The query holds nothing but whitespace and comments.
    Empty,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SyntaxError {}
