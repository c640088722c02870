//! `union`: one search over tables that share a source, `union` of subsearches otherwise,
//! and the factoring of a union of pipelines that differ only in the tables they read.

use std::collections::BTreeSet;

use super::Tr;
use super::expr::{E, S};
use super::pipeline::{Head, Spl};
use super::scope::{Binding, Kind, Scope};
use super::text;
use crate::diag::Code;
use crate::ir::{FieldPath, JoinKind, Pipeline, Source, Span, Stage};

/// Tables read by one search: the source terms, the filters with the values each table
/// adds, the window, and the table names.
type TableGroup = (Vec<S>, Vec<(String, Vec<String>)>, Option<i64>, Vec<String>);

/// `union P(A), P(B)` where the inputs differ only in tables read at row-wise positions
/// (the head of a row-wise pipeline, the right side of an inner join) is `P(A, B)`: one
/// search over both tables, which for tables sharing a sourcetype is one category filter.
pub(super) fn factor(p: &Pipeline) -> Pipeline {
    let Source::Union {
        inputs,
        fuzzy,
        source_column: None,
        inner: false,
    } = &p.source
    else {
        return p.clone();
    };
    if inputs.len() < 2 || inputs.iter().all(|i| i.stages.is_empty()) {
        return p.clone();
    }
    let mut masked = vec![];
    let mut names = vec![];
    for input in inputs {
        let mut found = vec![];
        masked.push(mask(input, true, &mut found));
        names.push(found);
    }
    let same_shape =
        masked.iter().all(|m| *m == masked[0]) && names.iter().all(|n| n.len() == names[0].len());
    if !same_shape {
        return p.clone();
    }
    let positions = names[0].len();
    let mut merged_at = vec![];
    for i in 0..positions {
        let tables: Vec<&String> = names.iter().map(|n| &n[i].0).collect();
        if tables.iter().all(|t| *t == tables[0]) {
            merged_at.push(None);
        } else if names.iter().all(|n| n[i].1) {
            let mut distinct: Vec<String> = vec![];
            for t in tables {
                if !distinct.contains(t) {
                    distinct.push(t.clone());
                }
            }
            merged_at.push(Some(distinct));
        } else {
            return p.clone();
        }
    }
    let mut merged = unmask(&masked[0], &names[0], &merged_at, *fuzzy);
    merged.stages.extend(p.stages.iter().cloned());
    merged
}

/// The pipeline with each table name replaced by its position; `found` gets the names
/// and whether the position is row-wise.
fn mask(p: &Pipeline, linear: bool, found: &mut Vec<(String, bool)>) -> Pipeline {
    let source = match &p.source {
        Source::Table { name, window, at } => {
            found.push((
                name.clone(),
                linear && p.stages.iter().all(Stage::is_row_wise),
            ));
            Source::Table {
                name: format!("\u{0}{}", found.len() - 1),
                window: window.clone(),
                at: *at,
            }
        }
        other => other.clone(),
    };
    let mut stages = vec![];
    for (i, s) in p.stages.iter().enumerate() {
        match s {
            Stage::Join {
                kind,
                right,
                keys,
                lookup,
                at,
            } => {
                let right_linear = linear
                    && matches!(kind, JoinKind::Inner | JoinKind::InnerUnique)
                    && p.stages[i + 1..].iter().all(Stage::is_row_wise);
                stages.push(Stage::Join {
                    kind: *kind,
                    right: mask(right, right_linear, found),
                    keys: keys.clone(),
                    lookup: *lookup,
                    at: *at,
                });
            }
            other => stages.push(other.clone()),
        }
    }
    Pipeline { source, stages }
}

fn unmask(
    p: &Pipeline,
    names: &[(String, bool)],
    merged: &[Option<Vec<String>>],
    fuzzy: bool,
) -> Pipeline {
    let table = |name: &str, window: &Option<crate::ir::Window>, at: Span| -> Source {
        let i: usize = name.trim_start_matches('\u{0}').parse().unwrap_or(0);
        match merged.get(i) {
            Some(Some(tables)) => Source::Union {
                inputs: tables
                    .iter()
                    .map(|t| Pipeline {
                        source: Source::Table {
                            name: t.clone(),
                            window: window.clone(),
                            at,
                        },
                        stages: vec![],
                    })
                    .collect(),
                fuzzy,
                source_column: None,
                inner: false,
            },
            _ => Source::Table {
                name: names.get(i).map(|n| n.0.clone()).unwrap_or_default(),
                window: window.clone(),
                at,
            },
        }
    };
    let source = match &p.source {
        Source::Table { name, window, at } => table(name, window, *at),
        other => other.clone(),
    };
    let stages = p
        .stages
        .iter()
        .map(|s| match s {
            Stage::Join {
                kind,
                right,
                keys,
                lookup,
                at,
            } => Stage::Join {
                kind: *kind,
                right: unmask(right, names, merged, fuzzy),
                keys: keys.clone(),
                lookup: *lookup,
                at: *at,
            },
            other => other.clone(),
        })
        .collect();
    Pipeline { source, stages }
}

impl Tr<'_> {
    /// A union of inputs.
    pub(super) fn union(&mut self, inputs: &[Pipeline], source_column: Option<&str>) -> Spl {
        let bare: Option<Vec<(&String, Option<i64>, Span)>> = inputs
            .iter()
            .map(|i| match &i.source {
                Source::Table { name, window, at } if i.stages.is_empty() => {
                    Some((name, window.as_ref().map(|w| w.seconds), *at))
                }
                _ => None,
            })
            .collect();
        if let Some(tables) = bare
            && !tables.is_empty()
        {
            return self.union_of_tables(&tables, source_column);
        }
        // Inputs with stages: each a subsearch of `union`.
        let mut subs = vec![];
        let mut scope = Scope::tables(vec![]);
        scope.open = false;
        let non_streaming = inputs
            .iter()
            .any(|i| i.stages.iter().any(|s| !s.is_row_wise()));
        if non_streaming {
            self.warn(
                Code::TargetLimit,
                None,
                "`union` of inputs that aggregate or join runs them as subsearches: Splunk keeps 50,000 results of each",
            );
        }
        // Columns the inputs define take one name in every input.
        let mut defined: BTreeSet<String> = BTreeSet::new();
        for (i, input) in inputs.iter().enumerate() {
            let label = match &input.source {
                Source::Table { name, .. } => name.clone(),
                _ => format!("union_arg{i}"),
            };
            let column = source_column.map(text::column_name);
            let sub = self.subsearch(input, |tr, spl| {
                if let Some(c) = &column {
                    spl.commands
                        .push(format!("eval {c}={}", E::str(&label).print()));
                    spl.scope.define(
                        c,
                        Binding::Field {
                            name: c.clone(),
                            kind: Kind::Value,
                        },
                    );
                }
                let mut evals = vec![];
                for (name, b) in spl.scope.columns.clone() {
                    let spl_name = text::column_name(&name);
                    match b {
                        Binding::Field { name: f, .. } if f == spl_name => {}
                        _ => {
                            let r = tr.resolve(&spl.scope, &FieldPath::column(&name), None);
                            evals.push(format!(
                                "{}={}",
                                text::eval_field(&spl_name),
                                r.expr().print()
                            ));
                        }
                    }
                }
                if !evals.is_empty() {
                    spl.commands.push(format!("eval {}", evals.join(", ")));
                }
                for t in &spl.scope.tables {
                    if !scope.tables.contains(t) {
                        scope.tables.push(t.clone());
                    }
                }
                scope.open |= spl.scope.open;
                defined.extend(spl.scope.columns.keys().cloned());
            });
            subs.push(sub);
        }
        for name in defined {
            let spl_name = text::column_name(&name);
            scope.define(
                &name,
                Binding::Field {
                    name: spl_name,
                    kind: Kind::Value,
                },
            );
        }
        let nl = format!("\n{}", "    ".repeat(self.depth + 1));
        let command = format!(
            "union{}",
            subs.iter().map(|s| format!("{nl}{s}")).collect::<String>()
        );
        Spl::new(Head::Command(command), scope)
    }

    /// Tables without stages: one search, with one `IN` filter for tables that share a
    /// sourcetype (interactive and non-interactive sign-ins).
    pub(super) fn union_of_tables(
        &mut self,
        tables: &[(&String, Option<i64>, Span)],
        source_column: Option<&str>,
    ) -> Spl {
        let mut groups: Vec<TableGroup> = vec![];
        for (name, window, at) in tables {
            let terms = self.table_terms(name, *at);
            // Split the terms into the source (index, sourcetype) and the filters.
            let (source, filters): (Vec<S>, Vec<S>) = terms
                .into_iter()
                .partition(|t| matches!(t, S::Term(s) if s.starts_with("index=") || s.starts_with("sourcetype=")));
            let filters: Vec<(String, Vec<String>)> = filters
                .into_iter()
                .filter_map(|t| match t {
                    S::Term(s) => s
                        .split_once('=')
                        .map(|(k, v)| (k.to_string(), vec![v.to_string()])),
                    _ => None,
                })
                .collect();
            let keys: Vec<&String> = filters.iter().map(|f| &f.0).collect();
            match groups.iter_mut().find(|g| {
                g.0 == source
                    && g.2 == *window
                    && g.1.iter().map(|f| &f.0).collect::<Vec<_>>() == keys
            }) {
                Some(g) => {
                    for (slot, (_, values)) in g.1.iter_mut().zip(filters) {
                        for v in values {
                            if !slot.1.contains(&v) {
                                slot.1.push(v);
                            }
                        }
                    }
                    g.3.push((*name).clone());
                }
                None => groups.push((source, filters, *window, vec![(*name).clone()])),
            }
        }
        let mut alternatives = vec![];
        for (source, filters, window, _) in &groups {
            let mut terms = source.clone();
            for (k, values) in filters {
                if values.len() == 1 {
                    terms.push(S::term(format!("{k}={}", values[0])));
                } else {
                    terms.push(S::term(format!("{k} IN ({})", values.join(", "))));
                }
            }
            terms.extend(self.earliest(*window));
            alternatives.push(S::and(terms));
        }
        let names: Vec<String> = tables.iter().map(|t| t.0.clone()).collect();
        let mut spl = Spl::new(
            Head::Search(vec![S::or(alternatives)]),
            Scope::tables(names.clone()),
        );
        if let Some(column) = source_column {
            let column = text::column_name(column);
            let mut cases = vec![];
            for name in &names {
                let terms = self.table_terms(name, Span::default());
                let cond: Vec<E> = terms
                    .iter()
                    .filter_map(|t| match t {
                        S::Term(s) if !s.starts_with("index=") => s
                            .split_once('=')
                            .map(|(k, v)| E::eq(E::field(k), E::str(v.trim_matches('"')))),
                        _ => None,
                    })
                    .collect();
                cases.push(E::and(cond));
                cases.push(E::str(name));
            }
            spl.commands.push(format!(
                "eval {}={}",
                text::eval_field(&column),
                E::call("case", cases).print()
            ));
            spl.scope.define(
                &column,
                Binding::Field {
                    name: column.clone(),
                    kind: Kind::Value,
                },
            );
        }
        spl
    }
}
