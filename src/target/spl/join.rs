//! `join`: a stats-based correlation where that is exact (`correlate.rs`), otherwise the
//! right side as a subsearch of Splunk's `join`; semi and anti joins keep the left rows;
//! right-side joins swap the sides.

use super::Tr;
use super::expr::E;
use super::pipeline::Spl;
use super::scope::{Binding, Kind, Ref};
use super::text;
use super::union::factor;
use crate::diag::Code;
use crate::ir::{
    AggregateFunction, FieldPath, JoinKeyPair, JoinKind, Pipeline, Scalar, Span, Stage,
};

impl Tr<'_> {
    /// `join`: the right side as a subsearch of `join`. Semi and anti joins keep only the
    /// left rows (the subsearch returns the distinct keys); right semi/anti/outer joins
    /// swap the sides.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn join(
        &mut self,
        spl: &mut Spl,
        p: &Pipeline,
        i: usize,
        kind: JoinKind,
        right: &Pipeline,
        keys: &[JoinKeyPair],
        at: Span,
    ) {
        if matches!(
            kind,
            JoinKind::RightSemi | JoinKind::RightAnti | JoinKind::RightOuter
        ) {
            // Run the right side as the main search and the left as the subsearch.
            let left = Pipeline {
                source: p.source.clone(),
                stages: p.stages[..i].to_vec(),
            };
            let swapped: Vec<JoinKeyPair> = keys
                .iter()
                .map(|k| JoinKeyPair {
                    left: k.right.clone(),
                    right: k.left.clone(),
                })
                .collect();
            let kind = match kind {
                JoinKind::RightSemi => JoinKind::LeftSemi,
                JoinKind::RightAnti => JoinKind::LeftAnti,
                _ => JoinKind::LeftOuter,
            };
            let mut main = self.pipeline(&factor(right));
            let pseudo = Pipeline {
                source: right.source.clone(),
                stages: right.stages.clone(),
            };
            self.join(
                &mut main,
                &pseudo,
                pseudo.stages.len(),
                kind,
                &left,
                &swapped,
                at,
            );
            *spl = main;
            return;
        }
        // `lookup` does not add the right keys: kept as `join`.
        let lookup = matches!(p.stages.get(i), Some(Stage::Join { lookup: true, .. }));
        if !lookup && self.correlate(spl, p, i, kind, right, keys, at) {
            return;
        }
        self.warn(
            Code::TargetLimit,
            Some(at),
            "the join's right side runs as a subsearch: Splunk joins at most 50,000 of its rows (limits.conf `subsearch_maxout`) and stops it after 60 s",
        );
        // The left keys as fields of the main search.
        let mut left_fields = vec![];
        for k in keys {
            match self.resolve(&spl.scope, &FieldPath::column(&k.left), Some(at)) {
                Ref::Field(name, _) => left_fields.push(name),
                other => {
                    let t = text::column_name(&k.left);
                    spl.commands.push(format!(
                        "eval {}={}",
                        text::eval_field(&t),
                        other.expr().print()
                    ));
                    left_fields.push(t);
                }
            }
        }
        // KQL strings are never null: events without a key have `""` and match each
        // other; Splunk's `join` and `dedup` would drop them.
        spl.commands
            .push(format!("fillnull value=\"\" {}", left_fields.join(" ")));
        let left_unique = i > 0
            && match &p.stages[i - 1] {
                Stage::Aggregate {
                    keys: agg_keys,
                    aggregates,
                    ..
                } => {
                    !aggregates.iter().any(|a| {
                        matches!(
                            a.function,
                            AggregateFunction::ArgMax | AggregateFunction::ArgMin
                        ) && a.args.iter().any(|s| matches!(s, Scalar::AllColumns))
                    }) && agg_keys
                        .iter()
                        .all(|k| keys.iter().any(|j| j.left == k.name))
                }
                Stage::Distinct { columns, .. } => {
                    !columns.is_empty()
                        && columns
                            .iter()
                            .all(|c| keys.iter().any(|j| j.left == c.name))
                }
                _ => false,
            };
        if kind == JoinKind::InnerUnique && !left_unique {
            spl.commands
                .push(format!("dedup {}", left_fields.join(", ")));
        }
        let left_scope = spl.scope.clone();
        let left_open = left_scope.open;
        let keys_owned: Vec<JoinKeyPair> = keys.to_vec();
        let lf = left_fields.clone();
        let matched = self.temp("matched");
        let mut right_columns: Vec<(String, Binding)> = vec![];
        let mut right_tables: Vec<String> = vec![];
        let semi = matches!(kind, JoinKind::LeftSemi | JoinKind::LeftAnti);
        let m = matched.clone();
        let sub = self.subsearch(right, |tr, r| {
            let mut evals = vec![];
            for (k, lname) in keys_owned.iter().zip(&lf) {
                let rr = tr.resolve(&r.scope, &FieldPath::column(&k.right), Some(at));
                match &rr {
                    Ref::Field(name, _) if name == lname => {}
                    _ => evals.push(format!("{}={}", text::eval_field(lname), rr.expr().print())),
                }
            }
            if semi {
                if !evals.is_empty() {
                    r.commands.push(format!("eval {}", evals.join(", ")));
                }
                r.commands
                    .push(format!("fillnull value=\"\" {}", lf.join(" ")));
                r.commands.push(format!("dedup {}", lf.join(", ")));
                if kind == JoinKind::LeftAnti {
                    r.commands.push(format!("eval {m}=1"));
                    r.commands.push(format!("fields {}, {m}", lf.join(", ")));
                } else {
                    r.commands.push(format!("fields {}", lf.join(", ")));
                }
                return;
            }
            // Right columns named like left ones take KQL's `1` suffix; JSON the right
            // side reads from its raw event is extracted before the events meet.
            let mut renames = vec![];
            for (name, b) in r.scope.columns.clone() {
                if keys_owned.iter().any(|k| k.right == name && k.left == name) {
                    continue;
                }
                let collides = left_scope.columns.contains_key(&name)
                    || (!left_scope.open && left_scope.order.contains(&name))
                    || (left_scope.open && tr.table_has(&left_scope.tables, &name));
                let target_kql = if collides {
                    format!("{name}1")
                } else {
                    name.clone()
                };
                let target = text::column_name(&target_kql);
                match b {
                    Binding::Field { name: f, kind } => {
                        if collides {
                            if f == "_time" {
                                evals.push(format!("{}=_time", text::eval_field(&target)));
                            } else {
                                renames.push(format!("{f} AS {target}"));
                            }
                            right_columns.push((target_kql, Binding::Field { name: target, kind }));
                        } else {
                            right_columns.push((target_kql, Binding::Field { name: f, kind }));
                        }
                    }
                    Binding::Raw { path, .. } => {
                        evals.push(format!(
                            "{}={}",
                            text::eval_field(&target),
                            E::call("spath", vec![E::field("_raw"), E::str(&path)]).print()
                        ));
                        right_columns.push((
                            target_kql,
                            Binding::Field {
                                name: target,
                                kind: Kind::Json,
                            },
                        ));
                    }
                }
            }
            if !r.scope.open {
                for name in &r.scope.order {
                    if !r.scope.columns.contains_key(name) {
                        right_columns.push((
                            name.clone(),
                            Binding::Field {
                                name: text::column_name(name),
                                kind: Kind::Value,
                            },
                        ));
                    }
                }
            }
            right_tables = r.scope.tables.clone();
            if !evals.is_empty() {
                r.commands.push(format!("eval {}", evals.join(", ")));
            }
            if !renames.is_empty() {
                r.commands.push(format!("rename {}", renames.join(", ")));
            }
            r.commands
                .push(format!("fillnull value=\"\" {}", lf.join(" ")));
        });
        let nl = format!("\n{}", "    ".repeat(self.depth + 1));
        // Fields on both sides keep the left's value (KQL renames the right's `name1`).
        let overwrite = if left_open { " overwrite=false" } else { "" };
        let fields = left_fields.join(", ");
        match kind {
            JoinKind::LeftSemi => {
                spl.commands
                    .push(format!("join type=inner max=1 {fields}{nl}{sub}"));
            }
            JoinKind::LeftAnti => {
                spl.commands
                    .push(format!("join type=left max=1 {fields}{nl}{sub}"));
                spl.commands.push(format!("where isnull({matched})"));
                spl.commands.push(format!("fields - {matched}"));
            }
            JoinKind::LeftOuter => {
                spl.commands
                    .push(format!("join type=left max=0{overwrite} {fields}{nl}{sub}"));
            }
            JoinKind::FullOuter => {
                self.warn(
                    Code::MatchesFewer,
                    Some(at),
                    "a full outer join is written as a left outer join (Splunk's `join` has no full outer join): right rows without a match are missing",
                );
                spl.commands
                    .push(format!("join type=left max=0{overwrite} {fields}{nl}{sub}"));
            }
            _ => {
                spl.commands.push(format!(
                    "join type=inner max=0{overwrite} {fields}{nl}{sub}"
                ));
            }
        }
        if !semi {
            if left_open && !right_tables.is_empty() {
                self.warn(
                    Code::TargetLimit,
                    Some(at),
                    "both sides of the join are raw events: fields they share keep the left side's value (KQL keeps the right side's as `name1`, which is not available here)",
                );
            }
            for (name, b) in right_columns {
                if !spl.scope.columns.contains_key(&name) {
                    spl.scope.define(&name, b);
                }
            }
            for t in right_tables {
                if !spl.scope.tables.contains(&t) {
                    spl.scope.tables.push(t);
                }
            }
            if !spl.scope.tables.is_empty() && !spl.scope.open {
                spl.scope.open = true;
            }
        }
    }
}
