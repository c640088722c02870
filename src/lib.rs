//! kqlc: Microsoft Sentinel KQL detections to Sigma, Splunk SPL and Elastic ES|QL.
//!
//! Data flows one way through the stages; each is a public function taking the previous
//! stage's value (see `ARCHITECTURE.md`):
//!
//! | stage | input | output | module |
//! |---|---|---|---|
//! | load | rule file | [`load::Rule`] | [`load`] |
//! | parse | query text | [`syntax::ast::Query`] | [`syntax`] |
//! | normalize | `Query` + `Rule` metadata | [`ir::Detection`] + diagnostics | [`normalize`] |

pub mod cli;
pub mod diag;
pub mod ir;
pub mod load;
pub mod mapping;
pub mod normalize;
pub mod syntax;

/// Parses a rule's query; a syntax error becomes a diagnostic placed in the rule's file.
pub fn parse_rule(rule: &load::Rule) -> Result<syntax::ast::Query, diag::Diagnostic> {
    syntax::parse(&rule.query).map_err(|e| diag::Diagnostic::from_syntax(&e, rule))
}

/// Parses and normalizes a rule: its detection IR and what could not be carried into it.
pub fn normalize_rule(
    rule: &load::Rule,
    functions: &normalize::Functions,
) -> Result<(ir::Detection, Vec<diag::Diagnostic>), diag::Diagnostic> {
    let query = parse_rule(rule)?;
    Ok(normalize::normalize(rule, &query, functions))
}
pub mod target;
