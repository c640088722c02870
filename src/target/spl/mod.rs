//! The Splunk target: the whole pipeline as one SPL search, or a `savedsearches.conf`
//! stanza that schedules it as an alert (Splunk Enterprise Security annotations included).
//!
//! How KQL's meaning is kept:
//! - Filters go to the base search (or a `search` command) when search compares exactly:
//!   case-insensitive KQL tests, caseless values, no `*` (search cannot escape a
//!   wildcard). Everything else goes to `where` with eval functions: case-sensitive
//!   `==`, `has` as a regular expression with term boundaries, `*` in values.
//! - KQL strings are never null: a missing field is `""`. Where a test is true for `""`
//!   (`x != "a"`), the `where` form also accepts a missing field (`isnull(x) OR ...`); in
//!   search, `NOT x="a"` keeps events without the field, `x!="a"` would not.
//! - `summarize` is `stats` (after `fillnull`, since `stats ... by` drops events without
//!   the key, which KQL groups under `""`); joins are stats-based correlations
//!   (`multisearch` of both sides, `eventstats` by the key) where that gives the join's
//!   rows exactly (`correlate.rs`), `join` with the right side as a subsearch otherwise;
//!   `x in (subquery)` is a subsearch in a search expression; watchlists are lookups
//!   named after the watchlist.
//!
//! Everything that is not carried over exactly is a diagnostic and a line of the comment
//! block at the top (```...``` in the search, `#` lines in the .conf).

mod aggregate;
mod correlate;
mod expr;
mod join;
mod pipeline;
mod predicate;
mod scalar;
mod schedule;
mod scope;
mod text;
mod union;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::{Context, Emitted, Format};
use crate::diag::{Code, Diagnostic, Severity};
use crate::ir::Span;

/// Translates one rule to SPL (a search, or a savedsearches.conf stanza).
pub fn emit(cx: &Context) -> Emitted {
    let period = cx
        .rule
        .metadata
        .query_period
        .as_ref()
        .map(|d| d.seconds)
        .or(cx.detection.alert.period_seconds)
        .filter(|s| *s > 0);
    let dispatch = match cx.format {
        Format::Savedsearch => period,
        _ => None,
    };
    let mut tr = Tr::new(cx, period, dispatch);
    let search = tr.main_search();
    let mut diagnostics = tr.finish();
    let text = match cx.format {
        Format::Savedsearch => {
            let (stanza, more) = schedule::stanza(cx, &search, &diagnostics);
            diagnostics.extend(more);
            stanza
        }
        _ => format!("{}{search}\n", comment_block(cx, &diagnostics)),
    };
    Emitted { text, diagnostics }
}

/// The ```...``` block that opens a search: the rule's name, where it comes from, and
/// every diagnostic with its place in the rule file.
fn comment_block(cx: &Context, own: &[Diagnostic]) -> String {
    let all: Vec<Diagnostic> = cx.notes.iter().chain(own).cloned().collect();
    let lines = super::header("", cx.rule, &all);
    let body: Vec<String> = lines
        .lines()
        .map(|l| text::comment_text(l.trim_start()))
        .collect();
    format!("```{}```\n", body.join("\n"))
}

/// Fields read under a table without a known Splunk name, said once per table.
struct Unmapped {
    fields: BTreeSet<String>,
    at: Option<Span>,
    no_mapping: bool,
}

/// The translation of one rule: the diagnostics said so far and the counters for the
/// names kqlc makes up.
pub(super) struct Tr<'a> {
    cx: &'a Context<'a>,
    diags: Vec<Diagnostic>,
    said: HashSet<(Code, String)>,
    unmapped: BTreeMap<String, Unmapped>,
    temps: usize,
    /// The rule's query period (seconds): KQL cannot see further back.
    period: Option<u64>,
    /// In the savedsearch form, the dispatch window every search inherits.
    dispatch: Option<u64>,
    /// How deep in subsearches the current pipeline is (for indentation).
    depth: usize,
    /// Commands an expression needs before the command that reads it (`iplocation`,
    /// the join bringing a sub-query's value): the stage being written inserts them.
    pending: Vec<String>,
}

impl<'a> Tr<'a> {
    fn new(cx: &'a Context<'a>, period: Option<u64>, dispatch: Option<u64>) -> Tr<'a> {
        Tr {
            cx,
            diags: vec![],
            said: HashSet::new(),
            unmapped: BTreeMap::new(),
            temps: 0,
            period,
            dispatch,
            depth: 0,
            pending: vec![],
        }
    }

    /// A diagnostic, said once (the same construct can be reached twice, for example a
    /// `let` inlined in two places).
    pub(super) fn say(
        &mut self,
        severity: Severity,
        code: Code,
        at: Option<Span>,
        message: String,
    ) {
        if !self.said.insert((code, message.clone())) {
            return;
        }
        let mut d = self.cx.diagnostic(severity, code, at, message);
        d.severity = severity;
        self.diags.push(d);
    }

    pub(super) fn warn(&mut self, code: Code, at: Option<Span>, message: impl Into<String>) {
        self.say(Severity::Warning, code, at, message.into());
    }

    pub(super) fn note(&mut self, code: Code, at: Option<Span>, message: impl Into<String>) {
        self.say(Severity::Note, code, at, message.into());
    }

    pub(super) fn fail(&mut self, code: Code, at: Option<Span>, message: impl Into<String>) {
        self.say(Severity::Error, code, at, message.into());
    }

    /// A field name for an intermediate value, unique in the search.
    pub(super) fn temp(&mut self, what: &str) -> String {
        self.temps += 1;
        format!("kqlc_{what}{}", self.temps)
    }

    /// Records a field read under `table` that the mapping does not name.
    pub(super) fn unmapped_field(
        &mut self,
        table: &str,
        field: &str,
        at: Option<Span>,
        no_mapping: bool,
    ) {
        let entry = self.unmapped.entry(table.to_string()).or_insert(Unmapped {
            fields: BTreeSet::new(),
            at,
            no_mapping,
        });
        entry.fields.insert(field.to_string());
    }

    /// The diagnostics, with the unmapped fields said once per table.
    fn finish(mut self) -> Vec<Diagnostic> {
        let unmapped = std::mem::take(&mut self.unmapped);
        for (table, u) in unmapped {
            let list = u
                .fields
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let why = if u.no_mapping {
                "the mapping has no fields for this table"
            } else {
                "the mapping does not name them"
            };
            self.warn(
                Code::UnmappedField,
                u.at,
                format!(
                    "{table}: {list} kept under the Sentinel name ({why}); give the Splunk names with --mapping"
                ),
            );
        }
        self.diags
    }

    /// The line break and indentation before a command at the current depth.
    pub(super) fn newline(&self) -> String {
        format!("\n{}", "    ".repeat(self.depth))
    }
}
