//! A detection's pipeline as Sigma sees it: event streams (one Sigma rule each: a log
//! source and a condition) and, when the KQL aggregates or joins, a correlation over them.
//!
//! Row-wise stages (`where`, `extend`, `project`, `join`, `mv-expand`) distribute over a
//! `union`, so each union input becomes its own stream; streams that end up with the same
//! log source and condition are one rule (SigninLogs and AADNonInteractiveUserSignInLogs
//! share `azure/signinlogs`). `summarize ... | where count_ > N` becomes an `event_count`
//! (or `value_count`) correlation; an inner join of two event sources on a key becomes a
//! `temporal` correlation grouped by that key. Everything else is reported.

use std::collections::{BTreeMap, BTreeSet};

use super::cond::Cond;
use super::model::{Item, Modifier, Threshold, Value as SValue};
use super::predicate::{Column, Env, Fold, Issue, Scope, Translator, resolve, short};
use crate::diag::Code;
use crate::ir::visit::predicate_columns;
use crate::ir::{
    AggregateFunction, CompareOp, JoinKind, ListTest, Pipeline, Predicate, Scalar, Source, Span,
    Stage, Value,
};
use crate::mapping::{MappedField, Mappings};
use crate::target::kql;

/// Columns that hold the event time: a lower bound on them is the query window.
const TIME_COLUMNS: &[&str] = &["TimeGenerated", "Timestamp"];

/// One Sigma rule's worth of events: tables with one log source, and a condition.
#[derive(Debug, Clone)]
pub struct Stream {
    pub tables: Vec<String>,
    pub cond: Cond,
    pub env: Env,
    /// `TimeGenerated > ago(...)`, in seconds.
    pub window: Option<i64>,
    /// `mv-expand` ran: one row per array element, not per event.
    pub expanded: bool,
    /// The columns of the last projection, when known.
    pub columns: Option<Vec<String>>,
}

impl Stream {
    fn new(table: &str, window: Option<i64>) -> Stream {
        Stream {
            tables: vec![table.to_string()],
            cond: Cond::Const(true),
            env: Env::new(),
            window,
            expanded: false,
            columns: None,
        }
    }

    pub fn table(&self) -> &str {
        self.tables.first().map(String::as_str).unwrap_or("")
    }
}

/// What an aggregate computes, as far as a correlation condition can use it.
#[derive(Debug, Clone)]
enum Agg {
    Count,
    /// `countif(p)`: counts the rows where `p` holds.
    CountIf(Predicate),
    /// `dcount(x)`.
    DistinctCount(Scalar),
    /// Anything else (`make_set`, `min`...): output only.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CorrKind {
    EventCount,
    /// Distinct values of a field (its Sigma name).
    ValueCount(String),
    Temporal,
}

/// A `group-by` key: its KQL name and the Sigma field in each stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub fields: Vec<String>,
}

/// Something to say about an aggregation, said only if its correlation is written (an
/// aggregation before a join is only a grouping of the events the join relates).
#[derive(Debug, Clone)]
struct Pending {
    code: Code,
    span: Option<Span>,
    lost: Option<String>,
    message: String,
}

#[derive(Debug, Clone)]
pub struct Corr {
    pub kind: CorrKind,
    pub keys: Vec<Key>,
    /// From a `bin(TimeGenerated, size)` key.
    pub timespan: Option<i64>,
    pub condition: Option<Threshold>,
    /// Aggregate columns by name (for `where` after `summarize`).
    aggregates: BTreeMap<String, Agg>,
    /// Group-by columns by name, with their values (to move `where` on them before the
    /// aggregation, where it means the same).
    key_values: BTreeMap<String, Scalar>,
    pending: Vec<Pending>,
}

impl Corr {
    /// Counting all events (no group-by), for a threshold on the number of results.
    pub fn count(condition: Threshold) -> Corr {
        Corr {
            kind: CorrKind::EventCount,
            keys: vec![],
            timespan: None,
            condition: Some(condition),
            aggregates: BTreeMap::new(),
            key_values: BTreeMap::new(),
            pending: vec![],
        }
    }
}

impl Corr {
    fn pend(&mut self, code: Code, span: Option<Span>, lost: Option<String>, message: String) {
        self.pending.push(Pending {
            code,
            span,
            lost,
            message,
        });
    }
}

impl PartialEq for Corr {
    fn eq(&self, other: &Corr) -> bool {
        self.kind == other.kind
            && self.keys == other.keys
            && self.timespan == other.timespan
            && self.condition == other.condition
    }
}

/// Streams and the correlation that relates them (none: each stream alerts on its own).
#[derive(Debug, Clone)]
pub struct Unit {
    pub streams: Vec<Stream>,
    pub corr: Option<Corr>,
    /// Columns computed after the aggregation (output only): name -> (where, KQL).
    pub post_env: BTreeMap<String, (Span, String)>,
}

impl Unit {
    fn single(stream: Stream) -> Unit {
        Unit {
            streams: vec![stream],
            corr: None,
            post_env: BTreeMap::new(),
        }
    }

    pub fn aggregated(&self) -> bool {
        matches!(
            self.corr,
            Some(Corr {
                kind: CorrKind::EventCount | CorrKind::ValueCount(_),
                ..
            })
        )
    }

    /// Same log sources, conditions and correlation (the tables may differ).
    fn same_shape(&self, other: &Unit, mappings: &Mappings) -> bool {
        self.streams.len() == other.streams.len()
            && self
                .streams
                .iter()
                .zip(&other.streams)
                .all(|(a, b)| same_stream(a, b, mappings))
            && self.corr == other.corr
    }
}

fn same_stream(a: &Stream, b: &Stream, mappings: &Mappings) -> bool {
    a.cond == b.cond && logsource(mappings, a.table()) == logsource(mappings, b.table())
}

/// The Sigma log source of a table, when the mapping has one.
pub fn logsource(mappings: &Mappings, table: &str) -> Option<BTreeMap<String, String>> {
    mappings
        .table(table)
        .and_then(|t| t.sigma.as_ref())
        .map(|s| s.logsource.clone())
}

/// Whether a table's Sigma field names are its Sentinel column names (the mapping's
/// choice for Entra ID and Azure activity, which SigmaHQ gives no taxonomy): then a column
/// the mapping does not list is still named right.
pub fn sentinel_names(mappings: &Mappings, table: &str) -> bool {
    let Some(t) = mappings.table(table) else {
        return true;
    };
    if t.sigma.is_none() {
        return true;
    }
    t.fields.iter().all(|(column, f)| match &f.sigma {
        Some(Some(name)) => column.contains(' ') || *name == column.replace("[]", ""),
        _ => true,
    })
}

/// Why nothing usable can be written.
#[derive(Debug)]
pub struct Fail {
    pub span: Option<Span>,
    pub message: String,
}

/// Walks a detection's pipeline.
pub struct Planner<'a> {
    mappings: &'a Mappings,
    pub tr: Translator<'a>,
    /// Things said that change nothing (the window is the schedule, `sort` is not needed).
    pub notes: Vec<Issue>,
    /// Short texts of what was left out, for the output's `kqlc.not_translated`.
    pub lost: Vec<String>,
}

impl<'a> Planner<'a> {
    pub fn new(mappings: &'a Mappings) -> Planner<'a> {
        Planner {
            mappings,
            tr: Translator::new(mappings),
            notes: vec![],
            lost: vec![],
        }
    }

    fn warn(&mut self, code: Code, span: Option<Span>, lost: Option<String>, message: String) {
        if let Some(l) = lost
            && !self.lost.contains(&l)
        {
            self.lost.push(l);
        }
        self.tr.issue(code, span, message);
    }

    /// Says what the written correlations lose (aggregations a join turned back into
    /// events say nothing).
    pub fn flush(&mut self, units: &mut [Unit]) {
        for unit in units.iter_mut() {
            if let Some(corr) = unit.corr.as_mut() {
                for p in corr.pending.drain(..) {
                    self.warn(p.code, p.span, p.lost, p.message);
                }
            }
        }
    }

    fn note(&mut self, span: Option<Span>, message: String) {
        let issue = Issue {
            code: Code::NotTranslated,
            span,
            message,
        };
        if !self.notes.contains(&issue) {
            self.notes.push(issue);
        }
    }

    pub fn pipeline(&mut self, p: &Pipeline) -> Result<Vec<Unit>, Fail> {
        let (mut units, rest) = match &p.source {
            Source::Table {
                name, window, at, ..
            } => {
                let seconds = window.as_ref().map(|w| w.seconds);
                if let Some(w) = window {
                    self.window_note(&w.column, w.seconds, Some(*at));
                }
                (
                    vec![Unit::single(Stream::new(name, seconds))],
                    &p.stages[..],
                )
            }
            Source::UnresolvedFunction { name, .. } => {
                self.warn(
                    Code::NotTranslated,
                    None,
                    Some(format!("the workspace function `{name}` used as a source")),
                    format!(
                        "`{name}` is a workspace function not defined in the query: its events \
                         are read as a table named `{name}`, whatever the function does is not \
                         in the rule; supply its definition with --functions"
                    ),
                );
                (vec![Unit::single(Stream::new(name, None))], &p.stages[..])
            }
            Source::Union { inputs, .. } => {
                // Row-wise stages after the union apply to each input.
                let split = p
                    .stages
                    .iter()
                    .position(|s| !distributes_over_union(s))
                    .unwrap_or(p.stages.len());
                let (prefix, rest) = p.stages.split_at(split);
                let mut units = vec![];
                for input in inputs {
                    let mut stages = input.stages.clone();
                    stages.extend(prefix.iter().cloned());
                    let branch = Pipeline {
                        source: input.source.clone(),
                        stages,
                    };
                    units.extend(self.pipeline(&branch)?);
                }
                (self.merge_units(units), rest)
            }
            Source::Watchlist { name } => {
                return Err(Fail {
                    span: None,
                    message: format!(
                        "the query reads the watchlist `{name}`, not events: a Sigma rule matches log events"
                    ),
                });
            }
            Source::Inline { .. } | Source::External { .. } => {
                return Err(Fail {
                    span: None,
                    message: "the query reads inline or external data, not events: a Sigma rule \
                              matches log events"
                        .into(),
                });
            }
            Source::Unsupported(u) => {
                return Err(Fail {
                    span: Some(Span {
                        start: u.span.0,
                        end: u.span.1,
                    }),
                    message: format!(
                        "the query's source (`{}`) is not a table Sigma can read",
                        u.construct
                    ),
                });
            }
        };
        for stage in rest {
            self.stage(&mut units, stage)?;
        }
        Ok(units)
    }

    /// Merges units that differ only in their tables (a union of tables that share a log
    /// source and got the same condition).
    fn merge_units(&self, units: Vec<Unit>) -> Vec<Unit> {
        let mut out: Vec<Unit> = vec![];
        for unit in units {
            if let Some(existing) = out.iter_mut().find(|u| u.same_shape(&unit, self.mappings)) {
                for (a, b) in existing.streams.iter_mut().zip(unit.streams) {
                    for t in b.tables {
                        if !a.tables.contains(&t) {
                            a.tables.push(t);
                        }
                    }
                    a.window = min_option(a.window, b.window);
                }
            } else {
                out.push(unit);
            }
        }
        out
    }

    fn stage(&mut self, units: &mut Vec<Unit>, stage: &Stage) -> Result<(), Fail> {
        let span = Some(stage.span());
        match stage {
            Stage::Filter { predicate, .. } => {
                for unit in units.iter_mut() {
                    if unit.aggregated() {
                        self.post_filter(unit, predicate);
                    } else {
                        let target = self.filter_target(unit, predicate);
                        for (i, stream) in unit.streams.iter_mut().enumerate() {
                            if target.is_none_or(|t| t == i) {
                                self.filter(stream, predicate);
                            }
                        }
                    }
                }
            }
            Stage::Compute { columns, .. } | Stage::Project { columns, .. } => {
                for unit in units.iter_mut() {
                    if unit.aggregated() {
                        for c in columns {
                            let plain = matches!(&c.value, Scalar::Field { path } if path.path.is_empty() && path.column == c.name);
                            // Renaming a group-by key or an aggregate is no computation.
                            let renamed = matches!(&c.value, Scalar::Field { path } if path.path.is_empty());
                            if !plain && !renamed {
                                let text = short(&kql::scalar(&c.value).to_string());
                                unit.post_env.insert(c.name.clone(), (stage.span(), text));
                            }
                        }
                        continue;
                    }
                    // After a join, a projection mixes both sides' columns: each rule keeps
                    // the columns of its own side.
                    let joined = unit.streams.len() > 1;
                    for stream in unit.streams.iter_mut() {
                        define(&mut stream.env, columns.iter().map(|c| (&c.name, &c.value)), stage.span());
                        if matches!(stage, Stage::Project { .. }) && !joined {
                            stream.columns = Some(columns.iter().map(|c| c.name.clone()).collect());
                        }
                    }
                }
            }
            Stage::Rename { renames, .. } => {
                for unit in units.iter_mut() {
                    for stream in unit.streams.iter_mut() {
                        let values: Vec<(String, Scalar)> = renames
                            .iter()
                            .map(|r| {
                                (
                                    r.new.clone(),
                                    Scalar::Field {
                                        path: crate::ir::FieldPath::column(&r.old),
                                    },
                                )
                            })
                            .collect();
                        define(&mut stream.env, values.iter().map(|(n, v)| (n, v)), stage.span());
                    }
                }
            }
            Stage::Drop { .. } | Stage::Keep { .. } | Stage::Reorder { .. } => {}
            Stage::Expand { columns, .. } => {
                // Expanding a field of the events (not a computed value), with no
                // aggregation to count the rows: the same events match.
                let fields_only = columns.iter().all(|c| {
                    units
                        .iter()
                        .flat_map(|u| &u.streams)
                        .all(|s| resolve(&c.value, &s.env).is_ok())
                });
                if fields_only && !units.iter().any(Unit::aggregated) {
                    let names: Vec<String> = columns.iter().map(|c| format!("`{}`", c.name)).collect();
                    self.note(
                        span,
                        format!(
                            "`mv-expand` makes one row per element of {}; Sigma tests the array's \
                             elements in the event itself: the same events match (one match per \
                             event, not per element)",
                            names.join(", ")
                        ),
                    );
                }
                for unit in units.iter_mut() {
                    for stream in unit.streams.iter_mut() {
                        stream.expanded = true;
                        for c in columns {
                            let column = match resolve(&c.value, &stream.env) {
                                Ok((path, fold, _)) => Column::Field {
                                    path,
                                    fold,
                                    expanded: Some(c.name.clone()),
                                },
                                Err(_) => Column::Computed {
                                    value: c.value.clone(),
                                    at: stage.span(),
                                },
                            };
                            stream.env.insert(c.name.clone(), column);
                        }
                    }
                }
            }
            Stage::Parse {
                pattern,
                drop_unmatched,
                source,
                ..
            } => {
                for unit in units.iter_mut() {
                    for stream in unit.streams.iter_mut() {
                        for piece in pattern {
                            if let crate::ir::ParsePiece::Capture { name, .. } = piece {
                                stream.env.insert(
                                    name.clone(),
                                    Column::Computed {
                                        value: source.clone(),
                                        at: stage.span(),
                                    },
                                );
                            }
                        }
                    }
                }
                if *drop_unmatched {
                    self.warn(
                        Code::MatchesMore,
                        span,
                        Some(format!("`parse-where` on `{}`", short(&kql::scalar(source).to_string()))),
                        "`parse-where` drops the rows its pattern does not match; Sigma cannot \
                         parse text, so those rows are kept: the rule matches more events"
                            .into(),
                    );
                }
            }
            Stage::Aggregate {
                keys,
                aggregates,
                having,
                ..
            } => {
                let keys: Vec<(String, Scalar)> =
                    keys.iter().map(|k| (k.name.clone(), k.value.clone())).collect();
                let aggs: Vec<(String, Agg)> = aggregates
                    .iter()
                    .flat_map(|a| {
                        let agg = match (&a.function, &a.condition) {
                            (AggregateFunction::Count, None) => Agg::Count,
                            (AggregateFunction::Count, Some(p)) => Agg::CountIf(p.clone()),
                            (AggregateFunction::DistinctCount, None) if a.args.len() == 1 => {
                                Agg::DistinctCount(a.args[0].clone())
                            }
                            _ => Agg::Other,
                        };
                        let mut names = vec![a.name.clone()];
                        names.extend(a.names.iter().cloned());
                        names.into_iter().map(move |n| (n, agg.clone()))
                    })
                    .collect();
                self.aggregate(units, &keys, &aggs, stage.span());
                let outputs: Vec<String> = aggregates
                    .iter()
                    .filter(|a| {
                        !matches!(
                            a.function,
                            AggregateFunction::Count | AggregateFunction::DistinctCount
                        )
                    })
                    .map(|a| {
                        let value = kql::pipeline(&Pipeline {
                            source: Source::Table {
                                name: "T".into(),
                                window: None,
                                at: Span::default(),
                            },
                            stages: vec![Stage::Aggregate {
                                keys: vec![],
                                aggregates: vec![a.clone()],
                                having: None,
                                at: Span::default(),
                            }],
                        })
                        .to_string();
                        value
                            .split_once("summarize")
                            .map(|(_, v)| v.trim().to_string())
                            .unwrap_or(value)
                    })
                    .collect();
                if !outputs.is_empty()
                    && let Some(corr) = units.last_mut().and_then(|u| u.corr.as_mut())
                {
                    let list = outputs
                        .iter()
                        .map(|o| format!("`{}`", short(o)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    corr.pend(
                        Code::NotTranslated,
                        span,
                        Some(format!("aggregate outputs {list}")),
                        format!(
                            "the aggregate outputs {list} are not produced: a Sigma correlation \
                             counts events per group"
                        ),
                    );
                }
                if let Some(h) = having {
                    for unit in units.iter_mut() {
                        self.post_filter(unit, h);
                    }
                }
            }
            Stage::Distinct { columns, .. } => {
                if columns.is_empty() {
                    self.note(
                        span,
                        "`distinct *` removes duplicate rows: no effect on which events match".into(),
                    );
                } else {
                    let keys: Vec<(String, Scalar)> =
                        columns.iter().map(|c| (c.name.clone(), c.value.clone())).collect();
                    self.aggregate(units, &keys, &[], stage.span());
                }
            }
            Stage::Count { .. } => {
                self.aggregate(units, &[], &[("Count".to_string(), Agg::Count)], stage.span());
            }
            Stage::Join {
                kind, right, keys, ..
            } => self.join(units, *kind, right, keys, stage.span())?,
            Stage::Sort { .. } => self.note(
                span,
                "`sort` orders the results: Sigma rules do not order matches; no effect on which events match".into(),
            ),
            Stage::Limit { count, .. } | Stage::Top { count, .. } => {
                let what = if matches!(stage, Stage::Limit { .. }) {
                    "take"
                } else {
                    "top"
                };
                self.warn(
                    Code::NotTranslated,
                    span,
                    Some(format!("`{what} {count}`")),
                    format!(
                        "`{what} {count}` keeps at most {count} result rows; a Sigma rule reports \
                         every match, so the alert holds more rows"
                    ),
                );
            }
            Stage::UnresolvedInvoke { name, .. } => self.warn(
                Code::NotTranslated,
                span,
                Some(format!("`invoke {name}()`")),
                format!(
                    "`invoke {name}()` calls a workspace function that is not defined in the \
                     query: what it does to the rows is unknown and is not in the Sigma rule (if it \
                     removes rows, the rule matches more events); supply its definition with --functions"
                ),
            ),
            Stage::Unsupported(u) => self.warn(
                Code::NotTranslated,
                span,
                Some(format!("`{}`", short(&u.kql))),
                format!(
                    "`{}` ({}) has no Sigma equivalent and is left out: the rule may match more or \
                     other events",
                    short(&u.kql),
                    u.construct
                ),
            ),
        }
        Ok(())
    }

    /// Adds a filter to a stream; `TimeGenerated > ago(...)` conjuncts set its window.
    fn filter(&mut self, stream: &mut Stream, predicate: &Predicate) {
        let mut rest = vec![];
        let parts: Vec<&Predicate> = match predicate {
            Predicate::And { all } => all.iter().collect(),
            p => vec![p],
        };
        for p in parts {
            if let Some((column, seconds)) = window_of(p, &stream.env) {
                stream.window = min_option(stream.window, Some(seconds));
                self.window_note(&column, seconds, p.span());
            } else {
                rest.push(p.clone());
            }
        }
        if rest.is_empty() {
            return;
        }
        let p = if rest.len() == 1 {
            rest.pop().unwrap_or(Predicate::Constant { value: true })
        } else {
            Predicate::And { all: rest }
        };
        let table = stream.table().to_string();
        let scope = Scope {
            table: Some(&table),
            env: &stream.env,
            sentinel_names: sentinel_names(self.mappings, &table),
        };
        let before = self.tr.issues.len();
        let c = self.tr.filter(&p, &scope);
        self.record_lost(before);
        stream.cond = Cond::and(vec![stream.cond.clone(), c]);
    }

    /// Keeps the text of conditions the translator left out, for `not_translated`.
    fn record_lost(&mut self, before: usize) {
        let texts: Vec<String> = self.tr.issues[before..]
            .iter()
            .filter(|i| {
                matches!(
                    i.code,
                    Code::MatchesMore | Code::MatchesFewer | Code::NoEquivalentField
                ) && i.message.contains("has no Sigma form")
            })
            .filter_map(|i| i.message.split('`').nth(1).map(|t| format!("`{t}`")))
            .collect();
        for t in texts {
            if !self.lost.contains(&t) {
                self.lost.push(t);
            }
        }
    }

    fn window_note(&mut self, column: &str, seconds: i64, span: Option<Span>) {
        self.note(
            span,
            format!(
                "`{column} > ago({})` is the query window: in Sigma it is how far back the \
                 rule looks when it runs (`kqlc.window`, and a correlation's `timespan`), not a \
                 detection condition; nothing is lost",
                duration(seconds)
            ),
        );
    }

    /// After a join, a filter applies to the stream whose columns it reads: the right
    /// side's when the right side projected those columns, otherwise the left side's.
    fn filter_target(&self, unit: &Unit, predicate: &Predicate) -> Option<usize> {
        if !matches!(
            unit.corr,
            Some(Corr {
                kind: CorrKind::Temporal,
                ..
            })
        ) {
            return None;
        }
        let mut columns = BTreeSet::new();
        predicate_columns(predicate, &mut columns);
        let owner = unit.streams.iter().enumerate().skip(1).find(|(_, s)| {
            s.columns
                .as_ref()
                .is_some_and(|cs| columns.iter().all(|c| cs.contains(c)))
        });
        Some(owner.map_or(0, |(i, _)| i))
    }

    /// A `where` after `summarize`: on aggregates it is the correlation condition, on
    /// group-by columns it means the same before the aggregation.
    fn post_filter(&mut self, unit: &mut Unit, predicate: &Predicate) {
        let Some(corr) = unit.corr.as_mut() else {
            return;
        };
        let mut columns = BTreeSet::new();
        predicate_columns(predicate, &mut columns);
        let on_keys = columns.iter().all(|c| corr.key_values.contains_key(c));
        if on_keys && !columns.is_empty() {
            let key_values = corr.key_values.clone();
            for stream in unit.streams.iter_mut() {
                let mut env = stream.env.clone();
                define(
                    &mut env,
                    key_values.iter(),
                    predicate.span().unwrap_or_default(),
                );
                let table = stream.table().to_string();
                let scope = Scope {
                    table: Some(&table),
                    env: &env,
                    sentinel_names: sentinel_names(self.mappings, &table),
                };
                let before = self.tr.issues.len();
                let c = self.tr.filter(predicate, &scope);
                self.record_lost(before);
                stream.cond = Cond::and(vec![stream.cond.clone(), c]);
            }
            return;
        }
        let parts: Vec<&Predicate> = match predicate {
            Predicate::And { all } => all.iter().collect(),
            p => vec![p],
        };
        for p in parts {
            if !self.having(unit, p) {
                let text = short(&kql::predicate(p).to_string());
                self.warn(
                    Code::MatchesMore,
                    p.span(),
                    Some(format!("`{text}`")),
                    format!(
                        "`{text}` after the aggregation has no Sigma correlation form: left out, \
                         so the rule matches more events"
                    ),
                );
            }
        }
    }

    /// One comparison of an aggregate with a number: the correlation's condition.
    fn having(&mut self, unit: &mut Unit, p: &Predicate) -> bool {
        let Predicate::Compare {
            left, op, right, ..
        } = p
        else {
            return false;
        };
        let (name, op, n) = match (left, right) {
            (
                Scalar::Field { path },
                Scalar::Literal {
                    value: Value::Long(n),
                },
            ) if path.path.is_empty() => (&path.column, *op, *n),
            (
                Scalar::Literal {
                    value: Value::Long(n),
                },
                Scalar::Field { path },
            ) if path.path.is_empty() => (&path.column, flip(*op), *n),
            _ => return false,
        };
        let Some(corr) = unit.corr.as_mut() else {
            return false;
        };
        if corr.condition.is_some() {
            return false;
        }
        let Some(agg) = corr.aggregates.get(name).cloned() else {
            return false;
        };
        let threshold = Threshold {
            op: match op {
                CompareOp::Gt => "gt",
                CompareOp::Ge => "gte",
                CompareOp::Lt => "lt",
                CompareOp::Le => "lte",
                CompareOp::Eq => "eq",
                CompareOp::Ne => "neq",
            },
            value: n,
        };
        match agg {
            Agg::Count => {
                corr.condition = Some(threshold);
                true
            }
            Agg::DistinctCount(value) => {
                let mut fields = vec![];
                for stream in &unit.streams {
                    match resolve(&value, &stream.env)
                        .ok()
                        .and_then(|(path, _, _)| sigma_field(self.mappings, stream.table(), &path))
                    {
                        Some(f) => fields.push(f),
                        None => return false,
                    }
                }
                fields.dedup();
                let [field] = fields.as_slice() else {
                    return false;
                };
                corr.kind = CorrKind::ValueCount(field.clone());
                corr.condition = Some(threshold);
                true
            }
            // Groups with more than N rows where `p` holds, N >= 0, are the groups of the
            // events where `p` holds with more than N of them.
            Agg::CountIf(pred)
                if (op == CompareOp::Gt && n >= 0) || (op == CompareOp::Ge && n >= 1) =>
            {
                corr.condition = Some(threshold);
                for stream in unit.streams.iter_mut() {
                    self.filter(stream, &pred);
                }
                true
            }
            _ => false,
        }
    }

    /// `summarize` (or `distinct`, `count`): one correlation over all the streams.
    fn aggregate(
        &mut self,
        units: &mut Vec<Unit>,
        keys: &[(String, Scalar)],
        aggs: &[(String, Agg)],
        at: Span,
    ) {
        if units.iter().any(|u| u.corr.is_some()) {
            self.warn(
                Code::NotTranslated,
                Some(at),
                Some("an aggregation after a correlation".into()),
                "this aggregation follows a join or another aggregation: Sigma cannot correlate \
                 correlations here, so it is left out and the rule may match more events"
                    .into(),
            );
            return;
        }
        let mut streams: Vec<Stream> = units.drain(..).flat_map(|u| u.streams).collect();
        // Streams with the same source and condition count as one.
        let mut merged: Vec<Stream> = vec![];
        for s in streams.drain(..) {
            if let Some(m) = merged
                .iter_mut()
                .find(|m| same_stream(m, &s, self.mappings))
            {
                for t in s.tables {
                    if !m.tables.contains(&t) {
                        m.tables.push(t);
                    }
                }
                m.window = min_option(m.window, s.window);
            } else {
                merged.push(s);
            }
        }
        let streams = merged;
        let mut corr = Corr {
            kind: CorrKind::EventCount,
            keys: vec![],
            timespan: None,
            condition: None,
            aggregates: aggs.iter().cloned().collect(),
            key_values: BTreeMap::new(),
            pending: vec![],
        };
        if streams.iter().any(|s| s.expanded) && aggs.iter().any(|(_, a)| !matches!(a, Agg::Other))
        {
            corr.pend(
                Code::MatchesFewer,
                Some(at),
                Some("counting rows made by `mv-expand`".into()),
                "the aggregation counts rows after `mv-expand` (one per array element); Sigma \
                 counts events, so counts are lower: the rule matches fewer events"
                    .into(),
            );
        }
        for (name, value) in keys {
            corr.key_values.insert(name.clone(), value.clone());
            if let Scalar::Bin { value: inner, size } = value
                && let Scalar::Field { path } = &**inner
                && TIME_COLUMNS.contains(&path.column.as_str())
                && let Scalar::Literal {
                    value: Value::TimeSpan(secs),
                } = &**size
                && *secs >= 1.0
            {
                corr.timespan = Some(*secs as i64);
                continue;
            }
            let mut fields = vec![];
            let mut problem = None;
            for stream in &streams {
                match resolve(value, &stream.env) {
                    Ok((path, fold, _)) => {
                        if fold != Fold::None {
                            corr.pend(
                                Code::MatchesFewer,
                                Some(at),
                                None,
                                format!(
                                    "grouping by `{}` ignores case in KQL; Sigma groups by the \
                                     field as written, so values differing in case count apart: \
                                     the rule matches fewer events",
                                    short(&kql::scalar(value).to_string())
                                ),
                            );
                        }
                        match sigma_field(self.mappings, stream.table(), &path) {
                            Some(f) => fields.push(f),
                            None => {
                                problem = Some(format!(
                                    "the Sigma data of `{}` has no field for `{}`",
                                    stream.table(),
                                    path.dotted()
                                ))
                            }
                        }
                    }
                    Err(reason) => problem = Some(reason),
                }
            }
            match problem {
                None => corr.keys.push(Key {
                    name: name.clone(),
                    fields,
                }),
                Some(reason) => {
                    let text = short(&kql::scalar(value).to_string());
                    corr.pend(
                        Code::MatchesMore,
                        Some(at),
                        Some(format!("grouping by `{text}`")),
                        format!(
                            "grouping by `{text}` has no Sigma form ({reason}): the correlation \
                             does not group by it, so groups merge and the rule matches more events"
                        ),
                    );
                }
            }
        }
        units.push(Unit {
            streams,
            corr: Some(corr),
            post_env: BTreeMap::new(),
        });
    }

    fn join(
        &mut self,
        units: &mut [Unit],
        kind: JoinKind,
        right: &Pipeline,
        keys: &[crate::ir::JoinKeyPair],
        at: Span,
    ) -> Result<(), Fail> {
        let span = Some(at);
        // A join with a watchlist or inline table is a membership test.
        if matches!(
            right.source,
            Source::Watchlist { .. } | Source::Inline { .. }
        ) {
            let filter = matches!(
                kind,
                JoinKind::Inner | JoinKind::InnerUnique | JoinKind::LeftSemi | JoinKind::LeftAnti
            );
            if filter && let [key] = keys {
                let predicate = Predicate::InQuery {
                    value: Scalar::Field {
                        path: crate::ir::FieldPath::column(&key.left),
                    },
                    query: Box::new(right.clone()),
                    column: key.right.clone(),
                    test: ListTest::Equals,
                    case_sensitive: true,
                    negated: kind == JoinKind::LeftAnti,
                    at,
                };
                for unit in units.iter_mut() {
                    for stream in unit.streams.iter_mut() {
                        self.filter(stream, &predicate);
                    }
                }
            } else {
                self.warn(
                    Code::NotTranslated,
                    span,
                    Some("columns added by a lookup join".into()),
                    "this join adds columns from a lookup table; Sigma rules cannot add columns, \
                     so they are not in the output"
                        .into(),
                );
            }
            return Ok(());
        }
        match kind {
            JoinKind::LeftOuter => {
                self.warn(
                    Code::NotTranslated,
                    span,
                    Some("columns added by a `leftouter` join".into()),
                    "this `leftouter` join keeps every event and adds columns from other events; \
                     Sigma rules cannot add columns, so they are not in the output"
                        .into(),
                );
                return Ok(());
            }
            JoinKind::LeftAnti | JoinKind::RightAnti => {
                self.warn(
                    Code::MatchesMore,
                    span,
                    Some("an anti-join (events with no matching event)".into()),
                    "this anti-join keeps events that have no matching event on the other side; \
                     Sigma correlations cannot test for absence, so it is left out: the rule \
                     matches more events"
                        .into(),
                );
                return Ok(());
            }
            JoinKind::RightOuter | JoinKind::FullOuter => {
                self.warn(
                    Code::NotTranslated,
                    span,
                    Some("an outer join".into()),
                    "this outer join also keeps events of the other side alone; it has no Sigma \
                     form and is left out: the rule matches other events"
                        .into(),
                );
                return Ok(());
            }
            JoinKind::Inner | JoinKind::InnerUnique | JoinKind::LeftSemi | JoinKind::RightSemi => {}
        }
        let mut right_units = self.pipeline(right)?;
        if right_units.iter().any(|u| u.aggregated()) {
            // `summarize` by the join key with no condition keeps one row per key: the
            // events are the same for a correlation; a condition on counts is lost.
            for u in right_units.iter_mut() {
                self.drop_aggregation(u, span);
            }
        }
        if right_units.iter().any(|u| u.corr.is_some()) {
            self.warn(
                Code::MatchesMore,
                span,
                Some("a join with a joined sub-query".into()),
                "the join's right side is itself a join; Sigma cannot nest correlations, so it is \
                 left out: the rule matches more events"
                    .into(),
            );
            return Ok(());
        }
        let right_streams: Vec<Stream> = right_units.into_iter().flat_map(|u| u.streams).collect();
        let right_streams = self.merge_units(right_streams.into_iter().map(Unit::single).collect());
        let right_streams: Vec<Stream> =
            right_streams.into_iter().flat_map(|u| u.streams).collect();
        for unit in units.iter_mut() {
            if unit.aggregated() {
                self.drop_aggregation(unit, span);
            }
            let first_right = unit.streams.len();
            let left_count = unit.streams.len();
            unit.streams.extend(right_streams.iter().cloned());
            let mut corr = match unit.corr.take() {
                Some(c) if c.kind == CorrKind::Temporal => c,
                _ => Corr {
                    kind: CorrKind::Temporal,
                    keys: vec![],
                    timespan: None,
                    condition: None,
                    aggregates: BTreeMap::new(),
                    key_values: BTreeMap::new(),
                    pending: vec![],
                },
            };
            let already_keyed = !corr.keys.is_empty();
            let mut new_keys = vec![];
            let mut ok = true;
            let mut why: Vec<String> = vec![];
            for key in keys {
                let left: Vec<Result<String, String>> = unit.streams[..left_count]
                    .iter()
                    .map(|s| self.key_field(s, &key.left))
                    .collect();
                let right: Vec<Result<String, String>> = unit.streams[first_right..]
                    .iter()
                    .map(|s| self.key_field(s, &key.right))
                    .collect();
                if let Some(Err(reason)) = left.iter().chain(&right).find(|r| r.is_err()) {
                    ok = false;
                    if !why.contains(reason) {
                        why.push(reason.clone());
                    }
                    continue;
                }
                let left: Vec<Option<String>> = left.into_iter().map(Result::ok).collect();
                let right: Vec<Option<String>> = right.into_iter().map(Result::ok).collect();
                let right: Vec<String> = right.into_iter().flatten().collect();
                if already_keyed {
                    // A further join must relate the same key as the correlation's.
                    let left: Vec<String> = left.into_iter().flatten().collect();
                    if let Some(k) = corr.keys.iter_mut().find(|k| k.fields == left) {
                        k.fields.extend(right);
                        new_keys.push(k.name.clone());
                    } else {
                        ok = false;
                    }
                } else {
                    let mut fields: Vec<String> = left.into_iter().flatten().collect();
                    fields.extend(right);
                    corr.keys.push(Key {
                        name: key.left.clone(),
                        fields,
                    });
                }
            }
            if already_keyed && ok && new_keys.len() != corr.keys.len() {
                ok = false;
            }
            if !ok || keys.is_empty() {
                let on = keys
                    .iter()
                    .map(|k| {
                        if k.left == k.right {
                            k.left.clone()
                        } else {
                            format!("{} == {}", k.left, k.right)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                if why.is_empty() {
                    why.push("it is not the key the correlation already groups by".into());
                }
                self.warn(
                    Code::MatchesMore,
                    span,
                    Some(format!("the join key `{on}`")),
                    format!(
                        "the join on `{on}` cannot be a Sigma correlation key ({}); the temporal \
                         correlation does not require the events to share it: the rule matches \
                         more events",
                        why.join("; ")
                    ),
                );
                corr.keys.clear();
            }
            // Every stream needs a field for every key.
            let n = unit.streams.len();
            corr.keys.retain(|k| k.fields.len() == n);
            unit.corr = Some(corr);
        }
        Ok(())
    }

    /// The Sigma field a join key column is, in a stream.
    fn key_field(&self, stream: &Stream, column: &str) -> Result<String, String> {
        let scalar = Scalar::Field {
            path: crate::ir::FieldPath::column(column),
        };
        let (path, _, _) = resolve(&scalar, &stream.env)
            .map_err(|reason| format!("on the `{}` side, {reason}", stream.table()))?;
        sigma_field(self.mappings, stream.table(), &path).ok_or_else(|| {
            format!(
                "the Sigma data of `{}` has no field for `{}`",
                stream.table(),
                path.dotted()
            )
        })
    }

    /// Turns an aggregated unit back into its events (for a join): the grouping only
    /// shapes rows; a condition on counts cannot be kept.
    fn drop_aggregation(&mut self, unit: &mut Unit, span: Option<Span>) {
        if let Some(corr) = unit.corr.take()
            && corr.condition.is_some()
        {
            self.warn(
                Code::MatchesMore,
                span,
                Some("a count condition before a join".into()),
                "the count condition before this join cannot be kept in a temporal correlation: \
                 left out, so the rule matches more events"
                    .into(),
            );
        }
    }
}

/// Defines columns in an environment, in order (a later column may use an earlier one).
fn define<'s>(env: &mut Env, columns: impl Iterator<Item = (&'s String, &'s Scalar)>, at: Span) {
    for (name, value) in columns {
        // `project Actor` keeps what `Actor` was.
        if let Scalar::Field { path } = value
            && path.path.is_empty()
            && let Some(existing) = env.get(&path.column).cloned()
        {
            env.insert(name.clone(), existing);
            continue;
        }
        let column = match resolve(value, env) {
            Ok((path, fold, expanded)) => Column::Field {
                path,
                fold,
                expanded,
            },
            Err(_) => Column::Computed {
                value: value.clone(),
                at,
            },
        };
        env.insert(name.clone(), column);
    }
}

/// A field's Sigma name in a table; `None` when the mapping says Sigma has none.
pub fn sigma_field(
    mappings: &Mappings,
    table: &str,
    path: &crate::ir::FieldPath,
) -> Option<String> {
    match super::predicate::lookup(mappings, Some(table), path) {
        MappedField::Mapped(n) | MappedField::Unmapped(n) => {
            (!n.contains('|') && !n.is_empty()).then_some(n)
        }
        MappedField::NoEquivalent => None,
    }
}

/// Whether a stage after a `union` is moved into each input: the row-wise ones, joins,
/// unresolved functions and unsupported operators (each then planned, or reported, per
/// input).
fn distributes_over_union(s: &Stage) -> bool {
    s.is_row_wise()
        || matches!(
            s,
            Stage::Join { .. } | Stage::Unsupported(_) | Stage::UnresolvedInvoke { .. }
        )
}

/// `TimeGenerated > ago(1h)`: the time column and the window in seconds.
fn window_of(p: &Predicate, env: &Env) -> Option<(String, i64)> {
    let Predicate::Compare {
        left,
        op: CompareOp::Gt | CompareOp::Ge,
        right: Scalar::Now { offset_seconds },
        ..
    } = p
    else {
        return None;
    };
    let (path, _, _) = resolve(left, env).ok()?;
    (path.path.is_empty()
        && TIME_COLUMNS.contains(&path.column.as_str())
        && *offset_seconds < 0.0
        && offset_seconds.is_finite())
    .then(|| (path.column, (-offset_seconds).ceil() as i64))
}

fn flip(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        other => other,
    }
}

fn min_option(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A duration as Sigma writes a time span (`90m`, `1h`, `14d`).
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(1);
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// A condition that holds for the events that have a value in `field` (for a rule whose
/// own condition is empty but that groups by the field).
pub fn has_value(field: &str) -> Cond {
    Cond::item(Item::new(
        field,
        vec![Modifier::Exists],
        vec![SValue::Bool(true)],
    ))
}
