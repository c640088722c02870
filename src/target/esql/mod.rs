//! The Elastic ES|QL target (Elasticsearch 9.3, checked with Elastic's own grammar).
//!
//! A detection becomes one ES|QL query: `FROM` the index patterns of the embedded
//! mapping (with the category filter that selects a table inside a shared data stream),
//! `WHERE` for filters and the time window, `EVAL`, `STATS ... BY`, `MV_EXPAND`,
//! `DISSECT`/`GROK`, `KEEP`, `RENAME`, `SORT`, `LIMIT`, `LOOKUP JOIN` for watchlists, and
//! `FROM a, b | STATS ... BY key` for joins of two event streams. With
//! `--format elastic-rule` the query is wrapped in an Elastic detection rule (JSON).
//!
//! KQL meaning that needs care in ES|QL (see DESIGN-NOTES.md):
//! - `==`, `LIKE`, `IN` are case-sensitive: `=~` and the other case-insensitive tests
//!   compare `TO_LOWER(field)` with the lower-cased constant.
//! - `has` is a whole-term match: an anchored `RLIKE` with the term boundaries spelled
//!   out (`(.*[^a-z0-9])?term([^a-z0-9].*)?`); terms are runs of ASCII letters and
//!   digits (a non-ASCII letter next to the term counts as a boundary here).
//! - `matches regex` (RE2, a search) becomes a Lucene full match wrapped in `.*`
//!   where the syntax maps exactly (module `regex`), otherwise it is said.
//! - A missing string is `""` in KQL but null in ES|QL, where a comparison with null
//!   drops the row: negated tests and tests that hold for `""` add `x IS NULL OR ...`.
//! - IP fields are of type `ip`: equality with an address is `== TO_IP("...")`, ranges
//!   are `CIDR_MATCH`, text tests read `TO_STRING(ip)`.
//! - A keyword column compared with a number compares with its text (`ResultType == 0`
//!   is `result_type == "0"`), as KQL converts.
//!
//! Everything that cannot be carried over exactly is a diagnostic and a `//` comment
//! above the command it concerns.

mod agg;
mod expr;
mod join;
mod lit;
mod mitre;
mod pred;
mod query;
mod regex;
mod rule;

use super::{Context, Emitted, Format};
use crate::diag::{Code, Diagnostic};
use crate::ir::CompareOp;

/// The ES|QL text (or Elastic rule) for a detection, and what could not be carried over.
pub fn emit(cx: &Context) -> Emitted {
    let mut tx = query::Tx::new(cx);
    tx.pipeline(&cx.detection.query);
    if cx.format == Format::ElasticRule {
        trigger(&mut tx);
    }
    // METADATA is for de-duplicating the alerts of non-aggregating rule queries.
    if tx.aggregates
        && let Some(first) = tx.lines.first_mut()
    {
        first.text = first.text.replace(" METADATA _id, _index, _version", "");
    }
    let trailing = tx.take_pending();
    let body = render(&tx.lines, &trailing);
    // The ES|QL column each entity and detail column became.
    let columns: Vec<(String, String)> = tx
        .alert_columns()
        .into_iter()
        .filter_map(|c| {
            let esql = tx.scope.get(&c).map(|col| col.esql.clone())?;
            (esql != c).then_some((c, esql))
        })
        .collect();
    let mut all: Vec<Diagnostic> = cx.notes.to_vec();
    all.extend(tx.diags.iter().cloned());
    let text = match cx.format {
        Format::ElasticRule => rule::document(cx, &body, &all, &tx.lookup_indices, &columns),
        _ => {
            let mut text = super::header("//", cx.rule, &all);
            text.push_str(&body);
            text
        }
    };
    Emitted {
        text,
        diagnostics: tx.diags,
    }
}

/// An alert threshold other than "any row": Elastic ES|QL rules alert on every row.
fn trigger(tx: &mut query::Tx) {
    let Some(t) = tx.cx.detection.alert.trigger else {
        return;
    };
    if t.op == CompareOp::Gt && t.threshold == 0 {
        return;
    }
    let op = match t.op {
        CompareOp::Eq => "==",
        CompareOp::Ne => "!=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
    };
    tx.warn(
        Code::NotTranslated,
        None,
        format!(
            "the rule alerts when the number of result rows {op} {}; an Elastic ES|QL rule alerts on each result row, so this threshold is not carried over",
            t.threshold
        ),
    );
}

/// The commands one per line, each processing command after `| `, with comments above.
fn render(lines: &[query::Line], trailing: &[String]) -> String {
    let mut out = String::new();
    if lines.is_empty() {
        out.push_str("ROW kqlc_untranslatable = TRUE\n");
    }
    for (i, line) in lines.iter().enumerate() {
        for c in &line.comments {
            out.push_str(c);
            out.push('\n');
        }
        if i > 0 {
            out.push_str("| ");
        }
        out.push_str(&line.text);
        out.push('\n');
    }
    for c in trailing {
        out.push_str(c);
        out.push('\n');
    }
    out
}
