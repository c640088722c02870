//! Joins as stats-based correlations: both sides' events in one search (`multisearch`
//! of two streaming searches, each event tagged with its side and its join key), then
//! `eventstats ... by key` and a filter on the sides present. No subsearch, so none of
//! `join`'s limits (50,000 rows, 60 s).
//!
//! Only where the result is the KQL join's, row for row:
//! - `leftsemi`/`leftanti` (and `rightsemi`/`rightanti`, sides swapped) of two streaming
//!   pipelines: every left event is kept or dropped on its own, by whether a right event
//!   has its key (`eventstats max(side) by key`), so each surviving left row appears
//!   once with its own columns, as in KQL.
//! - `inner`/`innerunique` where the left side is `summarize ... by` exactly the join
//!   keys (or `distinct` of them) over a streaming pipeline, and the right side is
//!   streaming: the left has one row per key, so both kinds give one row per matching
//!   right row, with that key's left aggregates. `eventstats` computes the left
//!   aggregates over the left events of each key and writes them on every event of the
//!   key; the right events of keys that have left events are the result.
//!
//! Everything else (`inner` with several left rows per key, outer joins, sides that
//! aggregate otherwise or join again) stays `join`.
//!
//! Keys: each side's key value goes into one field (`kqlc_keyN`), missing values read as
//! `""` (`fillnull`) as KQL strings do, compared exactly (`by` is case-sensitive, as KQL
//! join keys are).

use super::Tr;
use super::pipeline::{Head, Spl};
use super::scalar::value_of;
use super::scope::{Binding, Kind, Ref, Scope};
use super::text;
use super::union::factor;
use crate::ir::{
    Aggregate, AggregateFunction, CompareOp, FieldPath, GroupKey, JoinKeyPair, JoinKind, Pipeline,
    Predicate, Scalar, Source, Span, Stage, Value,
};

/// Commands that work event by event (Splunk's distributable streaming commands): the
/// only ones the searches of `multisearch` may hold. A subsearch (`[search ...]`,
/// `[| ...]`) has its own limits, so a side holding one is not rewritten.
fn streaming_command(c: &str) -> bool {
    if c.contains("[search ") || c.contains("[| ") {
        return false;
    }
    let word = c.split_whitespace().next().unwrap_or("");
    matches!(
        word,
        "search" | "where" | "eval" | "rename" | "fields" | "rex" | "regex" | "spath" | "mvexpand"
    ) || (word == "fillnull" && c.split_whitespace().count() > 2)
}

/// Whether a pipeline reads events and only filters or reshapes them row by row, before
/// rendering it (rendering then confirms every command streams).
fn streaming_ir(p: &Pipeline) -> bool {
    let source = match &p.source {
        Source::Table { .. } => true,
        Source::Union { inputs, .. } => inputs.iter().all(streaming_ir),
        _ => false,
    };
    source && p.stages.iter().all(Stage::is_row_wise)
}

/// Aggregates whose `stats` function reads its condition (so it can be limited to one
/// side's events), and that `eventstats` computes as `stats` does.
fn per_side_aggregate(a: &Aggregate) -> bool {
    a.names.is_empty()
        && matches!(
            a.function,
            AggregateFunction::Count
                | AggregateFunction::DistinctCount
                | AggregateFunction::Sum
                | AggregateFunction::Avg
                | AggregateFunction::Min
                | AggregateFunction::Max
                | AggregateFunction::MakeSet
                | AggregateFunction::MakeList
                | AggregateFunction::Any
        )
}

/// One side of a correlation, rendered as a search of `multisearch`.
struct Side {
    spl: Spl,
}

impl Tr<'_> {
    /// Writes the join as a stats-based correlation when that is exact; false (nothing
    /// written) otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn correlate(
        &mut self,
        spl: &mut Spl,
        p: &Pipeline,
        i: usize,
        kind: JoinKind,
        right: &Pipeline,
        keys: &[JoinKeyPair],
        at: Span,
    ) -> bool {
        if keys.is_empty() {
            return false;
        }
        match kind {
            JoinKind::LeftSemi | JoinKind::LeftAnti => {
                self.semi_correlation(spl, p, i, kind == JoinKind::LeftAnti, right, keys, at)
            }
            JoinKind::Inner | JoinKind::InnerUnique => {
                self.aggregated_left_correlation(spl, p, i, right, keys, at)
            }
            _ => false,
        }
    }

    /// A pipeline's events as a streaming search one level down (a `multisearch` search),
    /// or None when some command does not stream.
    fn streaming_side(&mut self, p: &Pipeline) -> Option<Side> {
        if !streaming_ir(p) {
            return None;
        }
        self.depth += 1;
        let spl = self.pipeline(&factor(p));
        self.depth -= 1;
        let ok = matches!(spl.head, Head::Search(_))
            && spl.commands.iter().all(|c| streaming_command(c));
        ok.then_some(Side { spl })
    }

    /// `eval side=N, key1=..., ...` at the end of a side's search. None when a key holds
    /// several values (`by` would group each value: not KQL's comparison).
    fn tag(&mut self, side: &mut Side, side_field: &str, n: i64, keys: &[(String, E2)]) -> bool {
        let mut evals = vec![format!("{side_field}={n}")];
        for (field, value) in keys {
            match value {
                E2::Ref(r) if r.kind() == Kind::Multi => return false,
                E2::Ref(r) => evals.push(format!("{field}={}", r.expr().print())),
                E2::Value(e, kind) => {
                    if *kind == Kind::Multi {
                        return false;
                    }
                    evals.push(format!("{field}={}", value_of((e.clone(), *kind)).print()))
                }
            }
        }
        side.spl.commands.push(format!("eval {}", evals.join(", ")));
        true
    }

    /// `| multisearch [search left...] [search right...]`, with `scope` as its columns.
    fn multisearch(&mut self, left: &Side, right: &Side, scope: Scope) -> Spl {
        self.depth += 1;
        let l = self.render(&left.spl, true);
        let r = self.render(&right.spl, true);
        self.depth -= 1;
        let nl = format!("\n{}", "    ".repeat(self.depth + 1));
        Spl::new(Head::Command(format!("multisearch{nl}{l}{nl}{r}")), scope)
    }

    /// The side of a semi or anti join that only says which keys exist: a streaming
    /// pipeline, or one ending with `summarize ... by` (or `distinct`) keys that include
    /// the join's, with no condition on the aggregates (every group has an event, so the
    /// keys present are those of the events before it). Its events, and the value of
    /// each named key on them.
    fn key_side(&mut self, p: &Pipeline, names: &[String], at: Span) -> Option<(Side, Vec<E2>)> {
        if streaming_ir(p) {
            let side = self.streaming_side(p)?;
            let values = names
                .iter()
                .map(|n| E2::Ref(self.resolve(&side.spl.scope, &FieldPath::column(n), Some(at))))
                .collect();
            return Some((side, values));
        }
        let (last, prefix) = p.stages.split_last()?;
        let group: Vec<GroupKey> = match last {
            Stage::Aggregate {
                keys, having: None, ..
            } => keys.clone(),
            Stage::Distinct { columns, .. } => columns
                .iter()
                .map(|c| GroupKey {
                    name: c.name.clone(),
                    value: c.value.clone(),
                })
                .collect(),
            _ => return None,
        };
        let before = Pipeline {
            source: p.source.clone(),
            stages: prefix.to_vec(),
        };
        if !names.iter().all(|n| group.iter().any(|g| g.name == *n)) || !streaming_ir(&before) {
            return None;
        }
        let side = self.streaming_side(&before)?;
        let mut values = vec![];
        for n in names {
            let g = group.iter().find(|g| g.name == *n)?;
            let (e, kind) = self.scalar(&side.spl.scope, &g.value);
            values.push(E2::Value(e, kind));
        }
        Some((side, values))
    }

    /// Semi and anti joins: the left events whose key some right event has (or has not).
    #[allow(clippy::too_many_arguments)]
    fn semi_correlation(
        &mut self,
        spl: &mut Spl,
        p: &Pipeline,
        i: usize,
        anti: bool,
        right: &Pipeline,
        keys: &[JoinKeyPair],
        at: Span,
    ) -> bool {
        let left_p = Pipeline {
            source: p.source.clone(),
            stages: p.stages[..i].to_vec(),
        };
        if !streaming_ir(&left_p) {
            return false;
        }
        let right_names: Vec<String> = keys.iter().map(|k| k.right.clone()).collect();
        let Some((mut r, right_keys)) = self.key_side(right, &right_names, at) else {
            return false;
        };
        let Some(mut l) = self.streaming_side(&left_p) else {
            return false;
        };
        let side = self.temp("side");
        let key_fields: Vec<String> = keys.iter().map(|_| self.temp("key")).collect();
        let lk: Vec<(String, E2)> = keys
            .iter()
            .zip(&key_fields)
            .map(|(k, f)| {
                let r = self.resolve(&l.spl.scope, &FieldPath::column(&k.left), Some(at));
                (f.clone(), E2::Ref(r))
            })
            .collect();
        let rk: Vec<(String, E2)> = key_fields.iter().cloned().zip(right_keys).collect();
        if !self.tag(&mut l, &side, 0, &lk) || !self.tag(&mut r, &side, 1, &rk) {
            return false;
        }
        let matched = self.temp("matched");
        let scope = l.spl.scope.clone();
        let mut out = self.multisearch(&l, &r, scope);
        let by = key_fields.join(", ");
        out.commands
            .push(format!("fillnull value=\"\" {}", key_fields.join(" ")));
        // The largest side tag of a key is 1 when some right event has it.
        out.commands
            .push(format!("eventstats max({side}) AS {matched} by {by}"));
        out.commands.push(format!(
            "where {side}=0 AND {matched}={}",
            if anti { 0 } else { 1 }
        ));
        out.commands
            .push(format!("fields - {side}, {matched}, {by}"));
        self.correlated(at);
        *spl = out;
        true
    }

    /// Says that a join became a correlation (a note: the meaning is the join's).
    fn correlated(&mut self, at: Span) {
        self.note(
            crate::diag::Code::TargetLimit,
            Some(at),
            "the join is a stats-based correlation (`multisearch` of both sides, `eventstats` by the key): no subsearch limits; `eventstats` holds the search's events in memory (limits.conf `max_mem_usage_mb`)",
        );
    }

    /// `summarize aggs by k | join (R) on k` with R streaming: the right events whose key
    /// has left events, each with the key's left aggregates.
    fn aggregated_left_correlation(
        &mut self,
        spl: &mut Spl,
        p: &Pipeline,
        i: usize,
        right: &Pipeline,
        keys: &[JoinKeyPair],
        at: Span,
    ) -> bool {
        if i == 0 {
            return false;
        }
        let (group, aggregates, having): (Vec<GroupKey>, Vec<Aggregate>, Option<Predicate>) =
            match &p.stages[i - 1] {
                Stage::Aggregate {
                    keys,
                    aggregates,
                    having,
                    ..
                } => (keys.clone(), aggregates.clone(), having.clone()),
                Stage::Distinct { columns, .. } => (
                    columns
                        .iter()
                        .map(|c| GroupKey {
                            name: c.name.clone(),
                            value: c.value.clone(),
                        })
                        .collect(),
                    vec![],
                    None,
                ),
                _ => return false,
            };
        // One left row per join key: the group keys are exactly the join's left keys.
        let mut names: Vec<&str> = keys.iter().map(|k| k.left.as_str()).collect();
        names.sort();
        names.dedup();
        if names.len() != keys.len()
            || group.len() != keys.len()
            || !group.iter().all(|g| names.contains(&g.name.as_str()))
            || !aggregates.iter().all(per_side_aggregate)
        {
            return false;
        }
        let left_p = Pipeline {
            source: p.source.clone(),
            stages: p.stages[..i - 1].to_vec(),
        };
        if !streaming_ir(&left_p) || !streaming_ir(right) {
            return false;
        }
        let Some(mut l) = self.streaming_side(&left_p) else {
            return false;
        };
        let Some(mut r) = self.streaming_side(right) else {
            return false;
        };
        // The left's columns must not take a right column's name (KQL would rename the
        // right one `name1`; here both would be one field).
        let right_has = |tr: &Self, name: &str| {
            r.spl.scope.columns.contains_key(name)
                || r.spl.scope.order.iter().any(|c| c == name)
                || (r.spl.scope.open && tr.table_has(&r.spl.scope.tables, name))
        };
        let left_outputs: Vec<&str> = group
            .iter()
            .map(|g| g.name.as_str())
            .filter(|n| !keys.iter().any(|k| k.left == *n && k.right == *n))
            .chain(aggregates.iter().map(|a| a.name.as_str()))
            .collect();
        if left_outputs
            .iter()
            .any(|n| n.is_empty() || right_has(self, n))
        {
            return false;
        }
        let side = self.temp("side");
        let key_fields: Vec<String> = keys.iter().map(|_| self.temp("key")).collect();
        let mut lk = vec![];
        for (k, f) in keys.iter().zip(&key_fields) {
            let Some(g) = group.iter().find(|g| g.name == k.left) else {
                return false;
            };
            let (e, kind) = self.scalar(&l.spl.scope, &g.value);
            lk.push((f.clone(), E2::Value(e, kind)));
        }
        let rk: Vec<(String, E2)> = keys
            .iter()
            .zip(&key_fields)
            .map(|(k, f)| {
                let rr = self.resolve(&r.spl.scope, &FieldPath::column(&k.right), Some(at));
                (f.clone(), E2::Ref(rr))
            })
            .collect();
        if !self.tag(&mut l, &side, 0, &lk) || !self.tag(&mut r, &side, 1, &rk) {
            return false;
        }
        // The left aggregates, each limited to the left events.
        let mut agg_scope = l.spl.scope.clone();
        agg_scope.define(
            &side,
            Binding::Field {
                name: side.clone(),
                kind: Kind::Value,
            },
        );
        let on_left = Predicate::Compare {
            left: Scalar::Field {
                path: FieldPath::column(&side),
            },
            op: CompareOp::Eq,
            right: Scalar::Literal {
                value: Value::Long(0),
            },
            case_sensitive: true,
            at: Span::default(),
        };
        // How many left events a key has (a left `count()` says it already).
        let counted = aggregates.iter().find(|a| {
            a.function == AggregateFunction::Count && a.condition.is_none() && !a.name.is_empty()
        });
        let (left_count, own_count) = match counted {
            Some(a) => (text::column_name(&a.name), false),
            None => (self.temp("left"), true),
        };
        let mut stats = vec![];
        if own_count {
            stats.push(format!("count(eval({side}=0)) AS {left_count}"));
        }
        let mut post = vec![];
        let mut outputs = vec![];
        for a in &aggregates {
            let mut a = a.clone();
            a.condition = Some(match a.condition.take() {
                Some(c) => Predicate::And {
                    all: vec![on_left.clone(), c],
                },
                None => on_left.clone(),
            });
            let before = stats.len();
            self.aggregate_fn(&agg_scope, &a, &mut stats, &mut post, &mut outputs);
            if stats.len() == before {
                return false;
            }
        }
        // The result: right events, with the left key columns and aggregates.
        let mut scope = r.spl.scope.clone();
        let mut left_cols: Vec<(String, Binding)> = vec![];
        let mut key_evals = vec![];
        for (k, f) in keys.iter().zip(&key_fields) {
            let name = text::column_name(&k.left);
            key_evals.push(format!("{}={f}", text::eval_field(&name)));
            left_cols.push((
                k.left.clone(),
                Binding::Field {
                    name,
                    kind: Kind::Value,
                },
            ));
        }
        // Left columns in the order KQL gives them: the summarize's keys, then aggregates.
        left_cols.sort_by_key(|(n, _)| group.iter().position(|g| g.name == *n));
        for (kql, field, kind) in &outputs {
            left_cols.push((
                kql.clone(),
                Binding::Field {
                    name: field.clone(),
                    kind: *kind,
                },
            ));
        }
        let right_order: Vec<String> = scope
            .order
            .iter()
            .filter(|c| !left_cols.iter().any(|(n, _)| n == *c))
            .cloned()
            .collect();
        for (name, b) in &left_cols {
            scope.columns.insert(name.clone(), b.clone());
        }
        if !scope.open {
            scope.order = left_cols.iter().map(|(n, _)| n.clone()).collect();
            scope.order.extend(right_order);
        }
        let mut out = self.multisearch(&l, &r, scope);
        let by = key_fields.join(", ");
        out.commands
            .push(format!("fillnull value=\"\" {}", key_fields.join(" ")));
        out.commands
            .push(format!("eventstats {} by {by}", stats.join(", ")));
        out.commands
            .push(format!("where {side}=1 AND {left_count}>0"));
        let mut evals = key_evals;
        let mut after = vec![];
        for c in post {
            match c.strip_prefix("eval ") {
                Some(assignment) => evals.push(assignment.to_string()),
                None => after.push(c),
            }
        }
        out.commands.push(format!("eval {}", evals.join(", ")));
        out.commands.extend(after);
        let temps = if own_count {
            format!("{side}, {left_count}, {by}")
        } else {
            format!("{side}, {by}")
        };
        out.commands.push(format!("fields - {temps}"));
        if let Some(h) = &having {
            let scope = out.scope.clone();
            let f = self.filter(&scope, h);
            self.push_filter(&mut out, f);
        }
        self.correlated(at);
        *spl = out;
        true
    }
}

/// A key's value on one side: a column, or an expression (a summarize's computed key).
enum E2 {
    Ref(Ref),
    Value(super::expr::E, Kind),
}
