//! Stage 2: KQL query text -> [`ast::Query`].

pub mod ast;
mod error;
mod guard;
pub mod parser;
mod printer;

pub use error::{SyntaxError, SyntaxErrorKind};
pub use guard::{MAX_BRACKET_DEPTH, MAX_CHAIN_HEIGHT, MAX_QUERY_BYTES};

/// Parses one KQL query (statements separated by `;`).
pub fn parse(text: &str) -> Result<ast::Query, SyntaxError> {
    guard::check(text)?;
    parser::parse_checked(text)
}
