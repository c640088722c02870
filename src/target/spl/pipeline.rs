//! Sources and stages: the IR pipeline as SPL commands.

use std::collections::BTreeSet;

use super::Tr;
use super::expr::{E, Op, S};
use super::predicate::{Filter, eval_value};
use super::scalar::value_of;
use super::scope::{Binding, Kind, Ref, Scope};
use super::text;
use super::union::factor;
use crate::diag::Code;
use crate::ir::{
    Assign, ExpandColumn, FieldPath, ParseKind, ParsePiece, Pipeline, Scalar, SortKey, Source,
    Span, Stage, Type, Value,
};

/// How an SPL pipeline starts.
pub(super) enum Head {
    /// Base search terms (`search` in a subsearch).
    Search(Vec<S>),
    /// A generating command (`inputlookup x`, `makeresults`), written after a `|`.
    Command(String),
}

/// An SPL pipeline being built.
pub(super) struct Spl {
    pub head: Head,
    pub commands: Vec<String>,
    pub scope: Scope,
}

impl Spl {
    pub(super) fn new(head: Head, scope: Scope) -> Spl {
        Spl {
            head,
            commands: vec![],
            scope,
        }
    }

    /// Whether filters can still join the base search.
    pub(super) fn head_open(&self) -> bool {
        self.commands.is_empty() && matches!(self.head, Head::Search(_))
    }
}

impl Tr<'_> {
    /// The rule's query as an SPL search.
    pub(super) fn main_search(&mut self) -> String {
        let p = factor(&self.cx.detection.query);
        let spl = self.pipeline(&p);
        self.render(&spl, false)
    }

    /// A pipeline as a subsearch (`[search ...]`), with commands appended.
    pub(super) fn subsearch(
        &mut self,
        p: &Pipeline,
        extra: impl FnOnce(&mut Self, &mut Spl),
    ) -> String {
        self.depth += 1;
        let p = factor(p);
        let mut spl = self.pipeline(&p);
        extra(self, &mut spl);
        let text = self.render(&spl, true);
        self.depth -= 1;
        text
    }

    /// `x in (T | ... | project c)` as a subsearch returning `field=value` terms.
    /// With `terms`, the values are wrapped in `*` (a substring search, for `has_any`).
    pub(super) fn in_subsearch(
        &mut self,
        query: &Pipeline,
        column: &str,
        field: &str,
        terms: bool,
        at: Option<Span>,
    ) -> String {
        self.warn(
            Code::TargetLimit,
            at,
            "the sub-query runs as a subsearch: Splunk keeps its first 10,000 results (limits.conf `maxout`) and stops it after 60 s",
        );
        let field = field.to_string();
        let column = column.to_string();
        // The `project column` that picks the sub-query's column says nothing more here.
        let mut query = query.clone();
        if let Some(Stage::Project { columns, .. }) = query.stages.last()
            && columns.len() == 1
            && columns[0].name == column
            && unwrap_tostring_field(&columns[0].value)
                .is_some_and(|p| p.path.is_empty() && p.column == column)
        {
            query.stages.pop();
        }
        self.subsearch(&query, move |tr, spl| {
            // A sub-query whose column kqlc could not tell (N005) but which has one.
            let column = match spl.scope.order.as_slice() {
                [only] if !spl.scope.columns.contains_key(&column) && !spl.scope.open => {
                    only.clone()
                }
                _ => column,
            };
            let r = tr.resolve(&spl.scope, &FieldPath::column(&column), at);
            match r {
                _ if terms => {
                    let wrapped = E::bin(
                        Op::Concat,
                        E::bin(Op::Concat, E::str("*"), r.expr()),
                        E::str("*"),
                    );
                    spl.commands.push(format!(
                        "eval {}={}",
                        text::eval_field(&field),
                        wrapped.print()
                    ));
                }
                Ref::Field(name, _) if name == field => {}
                Ref::Field(name, _) if name != "_time" => {
                    spl.commands.push(format!("rename {name} AS {field}"));
                }
                other => spl.commands.push(format!(
                    "eval {}={}",
                    text::eval_field(&field),
                    other.expr().print()
                )),
            }
            spl.commands.push(format!("dedup {field}"));
            spl.commands.push(format!("fields {field}"));
        })
    }

    /// The SPL text of a pipeline.
    pub(super) fn render(&self, spl: &Spl, sub: bool) -> String {
        let nl = self.newline();
        let mut out = String::new();
        match &spl.head {
            Head::Search(terms) => {
                let terms = S::and(terms.clone()).print();
                if sub {
                    out.push_str("[search ");
                    out.push_str(if terms.is_empty() { "*" } else { &terms });
                } else if terms.is_empty() {
                    out.push('*');
                } else {
                    out.push_str(&terms);
                }
            }
            Head::Command(c) => {
                out.push_str(if sub { "[| " } else { "| " });
                out.push_str(c);
            }
        }
        for c in &spl.commands {
            out.push_str(&nl);
            out.push_str("| ");
            out.push_str(c);
        }
        if sub {
            out.push(']');
        }
        out
    }

    /// A pipeline: its source, then each stage.
    pub(super) fn pipeline(&mut self, p: &Pipeline) -> Spl {
        let mut spl = self.source(&p.source);
        for (i, stage) in p.stages.iter().enumerate() {
            // The final columns are a `table` in the main search; elsewhere `fields`.
            let last = self.depth == 0
                && p.stages[i + 1..].iter().all(|s| {
                    matches!(
                        s,
                        Stage::Sort { .. } | Stage::Limit { .. } | Stage::Top { .. }
                    )
                });
            self.stage(&mut spl, p, i, stage, last);
        }
        spl
    }

    /// The `earliest=` of a base search: the table's window, within the rule's query
    /// period; nothing when the saved search's dispatch window already says it.
    pub(super) fn earliest(&self, window: Option<i64>) -> Option<S> {
        let window = window.filter(|w| *w > 0).map(|w| w as u64);
        let effective = match (window, self.period) {
            (Some(w), Some(p)) => Some(w.min(p)),
            (w, p) => w.or(p),
        };
        if effective.is_some() && effective == self.dispatch {
            return None;
        }
        effective.map(|s| S::term(format!("earliest=-{}", text::unit(s))))
    }

    /// The search terms selecting a table's events.
    pub(super) fn table_terms(&mut self, name: &str, at: Span) -> Vec<S> {
        let mapping = self.cx.mappings.table(name);
        if let Some(note) = mapping.and_then(|m| m.note.clone()) {
            self.warn(Code::SourceNote, Some(at), format!("{name}: {note}"));
        }
        match mapping.and_then(|m| m.splunk.clone()) {
            Some(source) => {
                let mut terms = vec![];
                if let Some(index) = &source.index {
                    terms.push(S::cmp("index", "=", text::search_pattern(index)));
                }
                terms.push(S::cmp(
                    "sourcetype",
                    "=",
                    text::search_pattern(&source.sourcetype),
                ));
                for (k, v) in &source.filter {
                    if let Some(field) = text::mapped_name(k) {
                        terms.push(S::cmp(&field, "=", text::search_pattern(v)));
                    }
                }
                terms
            }
            None => {
                self.warn(
                    Code::UnmappedSource,
                    Some(at),
                    format!(
                        "{name} has no known Splunk source: written as `sourcetype=\"{name}\"`; give its index and sourcetype with --mapping"
                    ),
                );
                vec![S::cmp("sourcetype", "=", text::search_pattern(name))]
            }
        }
    }

    fn source(&mut self, source: &Source) -> Spl {
        match source {
            Source::Table { name, window, at } => {
                let mut terms = self.table_terms(name, *at);
                terms.extend(self.earliest(window.as_ref().map(|w| w.seconds)));
                Spl::new(Head::Search(terms), Scope::tables(vec![name.clone()]))
            }
            Source::Union {
                inputs,
                source_column,
                ..
            } => self.union(inputs, source_column.as_deref()),
            Source::Watchlist { name } => {
                let lookup = text::object_name(name);
                self.note(
                    Code::UnmappedSource,
                    None,
                    format!(
                        "the watchlist `{name}` is read from the lookup `{lookup}`, which must be created in Splunk (a lookup definition of that name holding the watchlist's columns)"
                    ),
                );
                let mut scope = Scope::tables(vec![]);
                scope.open = true;
                Spl::new(Head::Command(format!("inputlookup {lookup}")), scope)
            }
            Source::External { columns, uris, .. } => {
                let base = uris
                    .first()
                    .and_then(|u| u.split(['?', '#']).next())
                    .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
                    .unwrap_or("externaldata");
                let mut lookup = text::object_name(base);
                if !lookup.to_ascii_lowercase().ends_with(".csv") {
                    lookup.push_str(".csv");
                }
                let names: Vec<String> =
                    columns.iter().map(|c| text::column_name(&c.name)).collect();
                self.warn(
                    Code::UnmappedSource,
                    None,
                    format!(
                        "`externaldata` reads {} when the query runs; a Splunk search cannot fetch a URL: it reads the lookup `{lookup}`, which must be created from that file (with the header {}) and kept up to date",
                        uris.join(", "),
                        names.join(",")
                    ),
                );
                let scope = Scope::closed(
                    names
                        .iter()
                        .map(|n| {
                            (
                                n.clone(),
                                Binding::Field {
                                    name: n.clone(),
                                    kind: Kind::Value,
                                },
                            )
                        })
                        .collect(),
                );
                Spl::new(Head::Command(format!("inputlookup {lookup}")), scope)
            }
            Source::Inline { columns, rows } => self.inline(columns, rows),
            Source::UnresolvedFunction { name, args } => {
                let call = self.macro_call(name, args);
                self.warn(
                    Code::NotTranslated,
                    None,
                    format!(
                        "the workspace function `{name}` is not defined in the query: written as the Splunk macro {call}, which must be defined (Settings > Advanced search > Search macros) to search the events the function returns"
                    ),
                );
                Spl::new(Head::Search(vec![S::term(call)]), Scope::tables(vec![]))
            }
            Source::Unsupported(u) => {
                self.fail(
                    Code::Untranslatable,
                    Some(Span {
                        start: u.span.0,
                        end: u.span.1,
                    }),
                    format!("{} is not translated to SPL", u.construct),
                );
                Spl::new(Head::Search(vec![]), Scope::tables(vec![]))
            }
        }
    }

    /// `` `name(args)` ``: a workspace function as a Splunk macro of the same name.
    fn macro_call(&mut self, name: &str, args: &[Scalar]) -> String {
        let name = text::object_name(name).replace('.', "_");
        if args.is_empty() {
            return format!("`{name}`");
        }
        let scope = Scope::tables(vec![]);
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                let printed = value_of(self.scalar(&scope, a)).print();
                // A macro argument ends at `,` or `)` and cannot hold a backtick.
                printed.replace('`', "'")
            })
            .collect();
        format!("`{name}({})`", args.join(", "))
    }

    /// `datatable`: rows made with `makeresults`, numbered, each column a `case` on the
    /// row number.
    fn inline(&mut self, columns: &[crate::ir::Column], rows: &[Vec<Value>]) -> Spl {
        let names: Vec<String> = columns.iter().map(|c| text::column_name(&c.name)).collect();
        let scope = Scope::closed(
            names
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        Binding::Field {
                            name: n.clone(),
                            kind: Kind::Value,
                        },
                    )
                })
                .collect(),
        );
        let mut spl = Spl::new(
            Head::Command(format!("makeresults count={}", rows.len().max(1))),
            scope,
        );
        if rows.is_empty() {
            spl.commands.push("where false()".into());
            return spl;
        }
        let row = self.temp("row");
        spl.commands.push(format!("streamstats count AS {row}"));
        let mut evals = vec![];
        for (c, name) in names.iter().enumerate() {
            let mut args = vec![];
            for (r, values) in rows.iter().enumerate() {
                if let Some(v) = values.get(c) {
                    args.push(E::eq(E::field(&row), E::int(r as i64 + 1)));
                    args.push(eval_value(v));
                }
            }
            let value = if args.is_empty() {
                E::call("null", vec![])
            } else {
                E::call("case", args)
            };
            evals.push(format!("{}={}", text::eval_field(name), value.print()));
        }
        spl.commands.push(format!("eval {}", evals.join(", ")));
        spl.commands.push(format!("fields - {row}, _time"));
        spl
    }

    fn stage(&mut self, spl: &mut Spl, p: &Pipeline, i: usize, stage: &Stage, last: bool) {
        let mark = self.pending.len();
        let position = spl.commands.len();
        self.stage_commands(spl, p, i, stage, last);
        let pending = self.pending.split_off(mark.min(self.pending.len()));
        let position = position.min(spl.commands.len());
        spl.commands.splice(position..position, pending);
    }

    fn stage_commands(&mut self, spl: &mut Spl, p: &Pipeline, i: usize, stage: &Stage, last: bool) {
        match stage {
            Stage::Filter { predicate, .. } => {
                let f = self.filter(&spl.scope, predicate);
                self.push_filter(spl, f);
            }
            Stage::Compute { columns, .. } => self.compute(spl, columns),
            Stage::Project { columns, .. } => self.project(spl, columns, last),
            Stage::Drop { columns, .. } => {
                let names: Vec<String> = columns
                    .iter()
                    .map(|c| self.pattern_name(&spl.scope, c))
                    .collect();
                spl.commands.push(format!("fields - {}", names.join(", ")));
                for c in columns {
                    spl.scope.remove(c);
                }
            }
            Stage::Keep { columns, .. } => {
                let names: Vec<String> = columns
                    .iter()
                    .map(|c| self.pattern_name(&spl.scope, c))
                    .collect();
                spl.commands.push(format!("fields {}", names.join(", ")));
                if !spl.scope.open {
                    let keep: Vec<String> = spl
                        .scope
                        .order
                        .iter()
                        .filter(|c| columns.iter().any(|p| matches_pattern(p, c)))
                        .cloned()
                        .collect();
                    spl.scope.order = keep;
                }
            }
            Stage::Rename { renames, .. } => {
                let mut pairs = vec![];
                let mut evals = vec![];
                for r in renames {
                    let new = text::column_name(&r.new);
                    match self.resolve(&spl.scope, &FieldPath::column(&r.old), None) {
                        Ref::Field(old, kind) if old != "_time" => {
                            pairs.push(format!("{old} AS {new}"));
                            spl.scope.remove(&r.old);
                            spl.scope.define(&r.new, Binding::Field { name: new, kind });
                        }
                        other => {
                            evals.push(format!(
                                "{}={}",
                                text::eval_field(&new),
                                other.expr().print()
                            ));
                            spl.scope.remove(&r.old);
                            spl.scope.define(
                                &r.new,
                                Binding::Field {
                                    name: new,
                                    kind: other.kind(),
                                },
                            );
                        }
                    }
                }
                if !evals.is_empty() {
                    spl.commands.push(format!("eval {}", evals.join(", ")));
                }
                if !pairs.is_empty() {
                    spl.commands.push(format!("rename {}", pairs.join(", ")));
                }
            }
            Stage::Reorder { columns, .. } => {
                if last {
                    let names: Vec<String> = columns
                        .iter()
                        .map(|c| self.pattern_name(&spl.scope, c))
                        .collect();
                    spl.commands.push(format!("table {}, *", names.join(", ")));
                }
            }
            Stage::Aggregate {
                keys,
                aggregates,
                having,
                ..
            } => self.aggregate(spl, keys, aggregates, having.as_ref()),
            Stage::Join {
                kind,
                right,
                keys,
                at,
                ..
            } => self.join(spl, p, i, *kind, right, keys, *at),
            Stage::Expand {
                columns,
                limit,
                item_index,
                bag_as_array,
                at,
            } => {
                self.expand_options(item_index.as_deref(), *bag_as_array, *at);
                self.expand(spl, columns, *limit, *at)
            }
            Stage::Parse {
                source,
                kind,
                pattern,
                drop_unmatched,
                at,
            } => self.parse(spl, source, *kind, pattern, *drop_unmatched, *at),
            Stage::Sort { keys, .. } => {
                let keys = self.sort_keys(spl, keys);
                spl.commands.push(format!("sort 0 {keys}"));
            }
            Stage::Limit { count, .. } => spl.commands.push(format!("head {}", count.max(&0))),
            Stage::Top { count, key, .. } => {
                let keys = self.sort_keys(spl, std::slice::from_ref(key));
                spl.commands.push(format!("sort {} {keys}", count.max(&0)));
            }
            Stage::Distinct { columns, .. } => self.distinct(spl, columns),
            Stage::Count { .. } => {
                spl.commands.push("stats count AS Count".into());
                spl.scope = Scope::closed(vec![(
                    "Count".into(),
                    Binding::Field {
                        name: "Count".into(),
                        kind: Kind::Value,
                    },
                )]);
            }
            Stage::UnresolvedInvoke { name, args, at } => {
                let call = self.macro_call(name, args);
                self.warn(
                    Code::NotTranslated,
                    Some(*at),
                    format!(
                        "`invoke {name}()` calls a workspace function that is not defined in the query: written as the Splunk macro {call}, which must be defined (Settings > Advanced search > Search macros) to do what the function does to the events"
                    ),
                );
                spl.commands.push(call);
            }
            Stage::Unsupported(u) => {
                let at = Span {
                    start: u.span.0,
                    end: u.span.1,
                };
                if let Some(column) = bag_unpack_column(&u.kql) {
                    // spath with no path extracts every key of the JSON as a field.
                    let field =
                        match self.resolve(&spl.scope, &FieldPath::column(&column), Some(at)) {
                            Ref::Field(name, _) => name,
                            other => {
                                let t = self.temp("bag");
                                spl.commands
                                    .push(format!("eval {t}={}", other.expr().print()));
                                t
                            }
                        };
                    spl.commands.push(format!("spath input={field}"));
                    spl.scope.remove(&column);
                    spl.scope.open = true;
                    return;
                }
                self.fail(
                    Code::Untranslatable,
                    Some(at),
                    format!("{} is not translated to SPL", u.construct),
                );
            }
        }
    }

    /// A column name or pattern (`Col*`) as Splunk field name(s).
    pub(super) fn pattern_name(&mut self, scope: &Scope, column: &str) -> String {
        if column.contains('*') {
            let clean: String = column
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '*' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            return clean;
        }
        match self.resolve(scope, &FieldPath::column(column), None) {
            Ref::Field(name, _) => name,
            Ref::Raw { path, .. } => format!("{path}.*"),
            Ref::Expr(..) => text::column_name(column),
        }
    }

    /// Emits a filter's commands (its search part joins the base search when it can).
    pub(super) fn push_filter(&mut self, spl: &mut Spl, f: Filter) {
        if !f.search.is_empty() {
            if spl.head_open() {
                if let Head::Search(terms) = &mut spl.head {
                    terms.extend(f.search);
                }
            } else {
                spl.commands
                    .push(format!("search {}", S::and(f.search).print()));
            }
        }
        if !f.where_.is_empty() {
            spl.commands
                .push(format!("where {}", E::and(f.where_).print()));
        }
        if !f.prelude.is_empty() {
            let evals: Vec<String> = f
                .prelude
                .iter()
                .map(|(n, e)| format!("{}={}", text::eval_field(n), e.print()))
                .collect();
            spl.commands.push(format!("eval {}", evals.join(", ")));
        }
        if !f.mixed.is_empty() {
            spl.commands
                .push(format!("search {}", S::and(f.mixed).print()));
        }
        if !f.cleanup.is_empty() {
            spl.commands
                .push(format!("fields - {}", f.cleanup.join(", ")));
        }
    }

    /// `extend`: one `eval` with the assignments in order (eval reads the fields it has
    /// just set, as extend does). A JSON path needs no eval: the new column names it.
    fn compute(&mut self, spl: &mut Spl, columns: &[Assign]) {
        let mut evals = vec![];
        for a in columns {
            let target = text::column_name(&a.name);
            // `X = parse_json(Y)` and `X = Y.path` over raw JSON only name it.
            let alias = match unwrap_json(&a.value) {
                Scalar::Field { path } => match self.resolve(&spl.scope, path, None) {
                    Ref::Raw { path, array } => Some(Binding::Raw { path, array }),
                    Ref::Field(name, kind) if name == target && is_json_call(&a.value) => {
                        Some(Binding::Field {
                            name,
                            kind: if kind == Kind::Multi {
                                kind
                            } else {
                                Kind::Json
                            },
                        })
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(b) = alias {
                spl.scope.define(&a.name, b);
                continue;
            }
            let (e, kind) = self.scalar(&spl.scope, &a.value);
            let e = value_of((e, kind));
            let kind = if kind == Kind::Bool {
                Kind::Value
            } else {
                kind
            };
            if e == E::field(&target) {
                spl.scope
                    .define(&a.name, Binding::Field { name: target, kind });
                continue;
            }
            evals.push(format!("{}={}", text::eval_field(&target), e.print()));
            spl.scope
                .define(&a.name, Binding::Field { name: target, kind });
        }
        if !evals.is_empty() {
            spl.commands.push(format!("eval {}", evals.join(", ")));
        }
    }

    /// `project`: computed columns evaluated, mapped fields renamed to the KQL names
    /// (the event time stays `_time`), then the columns in order.
    fn project(&mut self, spl: &mut Spl, columns: &[Assign], last: bool) {
        struct Out {
            target: String,
            source: Option<String>,
            expr: Option<E>,
            kind: Kind,
        }
        let mut outs: Vec<Out> = vec![];
        let mut renamed: BTreeSet<String> = BTreeSet::new();
        for a in columns {
            let target = text::column_name(&a.name);
            let is_plain = matches!(&a.value, Scalar::Field { path } if path.path.is_empty());
            let (source, expr, kind) =
                match unwrap_tostring_field(&a.value).map(|p| self.resolve(&spl.scope, p, None)) {
                    Some(Ref::Field(name, kind)) => (Some(name), None, kind),
                    _ => {
                        let (e, kind) = self.scalar(&spl.scope, &a.value);
                        let stored = if kind == Kind::Bool {
                            Kind::Value
                        } else {
                            kind
                        };
                        (None, Some(value_of((e, kind))), stored)
                    }
                };
            // The event time keeps its name when projected as itself.
            let target = match &source {
                Some(s) if s == "_time" && is_plain => "_time".to_string(),
                _ => target,
            };
            outs.push(Out {
                target,
                source,
                expr,
                kind,
            });
        }
        // Evals run in order, then one rename: a clash is an eval overwriting a field a
        // later column reads, or a rename whose target another rename reads.
        let mut clash = false;
        let mut written: BTreeSet<String> = BTreeSet::new();
        let mut rename_sources: BTreeSet<String> = BTreeSet::new();
        for o in &outs {
            let mut reads = BTreeSet::new();
            if let Some(e) = &o.expr {
                fields_of(e, &mut reads);
            }
            if let Some(s) = &o.source {
                if *s != o.target && !rename_sources.insert(s.clone()) {
                    clash = true;
                }
                reads.insert(s.clone());
            }
            if reads.iter().any(|r| written.contains(r)) {
                clash = true;
            }
            if o.expr.is_some() || o.source.as_deref() == Some("_time") {
                written.insert(o.target.clone());
            }
        }
        let rename_targets: BTreeSet<String> = outs
            .iter()
            .filter(|o| o.source.as_ref().is_some_and(|s| *s != o.target))
            .map(|o| o.target.clone())
            .collect();
        if rename_targets.iter().any(|t| rename_sources.contains(t))
            || written.iter().any(|w| rename_sources.contains(w))
        {
            clash = true;
        }
        let mut evals = vec![];
        let mut renames = vec![];
        if clash {
            // Compute every column under a temporary name first.
            let mut temps = vec![];
            for o in &outs {
                let value = o
                    .expr
                    .clone()
                    .unwrap_or_else(|| E::field(o.source.as_deref().unwrap_or("")));
                let t = self.temp("col");
                evals.push(format!("{}={}", text::eval_field(&t), value.print()));
                temps.push(t);
            }
            for (o, t) in outs.iter().zip(&temps) {
                renames.push(format!("{t} AS {}", o.target));
            }
        } else {
            for o in &outs {
                match (&o.source, &o.expr) {
                    (Some(s), _) if *s == o.target => {}
                    (Some(s), _) if s != "_time" && renamed.insert(s.clone()) => {
                        renames.push(format!("{s} AS {}", o.target));
                    }
                    (Some(s), _) => evals.push(format!(
                        "{}={}",
                        text::eval_field(&o.target),
                        E::field(s).print()
                    )),
                    (None, Some(e)) => {
                        evals.push(format!("{}={}", text::eval_field(&o.target), e.print()))
                    }
                    (None, None) => {}
                }
            }
        }
        if !evals.is_empty() {
            spl.commands.push(format!("eval {}", evals.join(", ")));
        }
        if !renames.is_empty() {
            spl.commands.push(format!("rename {}", renames.join(", ")));
        }
        let names: Vec<String> = outs.iter().map(|o| o.target.clone()).collect();
        spl.commands.push(format!(
            "{} {}",
            if last { "table" } else { "fields" },
            names.join(", ")
        ));
        spl.scope = Scope::closed(
            columns
                .iter()
                .zip(outs)
                .map(|(a, o)| {
                    (
                        a.name.clone(),
                        Binding::Field {
                            name: o.target,
                            kind: o.kind,
                        },
                    )
                })
                .collect(),
        );
    }

    pub(super) fn sort_keys(&mut self, spl: &mut Spl, keys: &[SortKey]) -> String {
        let mut out = vec![];
        for k in keys {
            let name =
                match unwrap_tostring_field(&k.value).map(|p| self.resolve(&spl.scope, p, None)) {
                    Some(Ref::Field(name, _)) => name,
                    _ => {
                        let (e, kind) = self.scalar(&spl.scope, &k.value);
                        let t = self.temp("sort");
                        spl.commands
                            .push(format!("eval {t}={}", value_of((e, kind)).print()));
                        t
                    }
                };
            out.push(format!("{}{name}", if k.descending { "-" } else { "+" }));
        }
        out.join(", ")
    }

    /// `mv-expand`: the array's elements, one event each (`spath` lists a JSON array's
    /// elements, `mvexpand` splits them).
    /// `mvexpand` has neither an element index nor a bag-as-array mode.
    fn expand_options(&mut self, item_index: Option<&str>, bag_as_array: bool, at: Span) {
        if let Some(name) = item_index {
            self.warn(
                Code::NotTranslated,
                Some(at),
                format!("`with_itemindex={name}` (each element's position) is not produced: `mvexpand` has no index"),
            );
        }
        if bag_as_array {
            self.warn(
                Code::NotTranslated,
                Some(at),
                "`bagexpansion=array` (property bag entries as [key, value] arrays) is not kept: `mvexpand` expands values",
            );
        }
    }

    fn expand(&mut self, spl: &mut Spl, columns: &[ExpandColumn], limit: Option<i64>, at: Span) {
        if columns.len() > 1 {
            self.warn(
                Code::MatchesMore,
                Some(at),
                "`mv-expand` of several arrays pairs their elements by position; here each is expanded in turn (every combination): matches more",
            );
        }
        for c in columns {
            let target = text::column_name(&c.name);
            let r = match unwrap_json(&c.value) {
                Scalar::Field { path } => self.resolve(&spl.scope, path, Some(at)),
                other => {
                    let (e, kind) = self.scalar(&spl.scope, other);
                    let kind = if is_json_call(&c.value) && kind != Kind::Multi {
                        Kind::Json
                    } else {
                        kind
                    };
                    Ref::Expr(e, kind)
                }
            };
            let kind = match r {
                Ref::Raw { path, .. } => {
                    spl.commands.push(format!(
                        "spath output={target} path={}",
                        text::option_string(&format!("{path}{{}}"))
                    ));
                    Kind::Json
                }
                Ref::Field(name, Kind::Json) => {
                    spl.commands.push(format!(
                        "spath input={name} output={target} path={}",
                        text::option_string("{}")
                    ));
                    Kind::Json
                }
                Ref::Expr(e, Kind::Json) => {
                    spl.commands
                        .push(format!("eval {}={}", text::eval_field(&target), e.print()));
                    spl.commands.push(format!(
                        "spath input={target} output={target} path={}",
                        text::option_string("{}")
                    ));
                    Kind::Json
                }
                Ref::Field(name, kind) => {
                    if name != target {
                        spl.commands.push(format!(
                            "eval {}={}",
                            text::eval_field(&target),
                            E::field(&name).print()
                        ));
                    }
                    kind
                }
                Ref::Expr(e, kind) => {
                    spl.commands.push(format!(
                        "eval {}={}",
                        text::eval_field(&target),
                        value_of((e, kind)).print()
                    ));
                    kind
                }
            };
            let limit = limit.map(|l| format!(" limit={l}")).unwrap_or_default();
            spl.commands.push(format!("mvexpand {target}{limit}"));
            let kind = if kind == Kind::Multi {
                Kind::Value
            } else {
                kind
            };
            spl.scope
                .define(&c.name, Binding::Field { name: target, kind });
        }
    }

    /// `parse`: a `rex` with one named group per column.
    fn parse(
        &mut self,
        spl: &mut Spl,
        source: &Scalar,
        kind: ParseKind,
        pattern: &[ParsePiece],
        drop_unmatched: bool,
        at: Span,
    ) {
        let field =
            match unwrap_tostring_field(source).map(|p| self.resolve(&spl.scope, p, Some(at))) {
                Some(Ref::Field(name, _)) => name,
                _ => {
                    let (e, k) = self.scalar(&spl.scope, source);
                    let t = self.temp("parse");
                    spl.commands
                        .push(format!("eval {t}={}", value_of((e, k)).print()));
                    t
                }
            };
        if kind == ParseKind::Relaxed {
            self.warn(
                Code::MatchesFewer,
                Some(at),
                "`parse kind=relaxed` sets the columns that match even when the rest does not; `rex` sets none unless the whole pattern matches",
            );
        }
        let mut re = String::from("^");
        let mut captures = vec![];
        for (i, piece) in pattern.iter().enumerate() {
            let last = i + 1 == pattern.len();
            match piece {
                ParsePiece::Text { text: t } => {
                    if kind == ParseKind::Regex {
                        re.push_str(t);
                    } else {
                        re.push_str(&text::regex_escape(t));
                    }
                }
                ParsePiece::Skip => re.push_str(if last { ".*" } else { ".*?" }),
                ParsePiece::Capture { name, ty } => {
                    let group = text::column_name(name);
                    // A typed column takes what the type can read.
                    let body = match ty {
                        Some(Type::Int | Type::Long) => r"-?\d+",
                        Some(Type::Real | Type::Decimal) => r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?",
                        Some(Type::Bool) => "(?i:true|false)",
                        _ if last => ".*",
                        _ => ".*?",
                    };
                    re.push_str(&format!("(?<{group}>{body})"));
                    captures.push((name.clone(), group));
                }
            }
        }
        if drop_unmatched {
            let m = E::call("match", vec![E::field(&field), E::str(&re)]);
            spl.commands.push(format!("where {}", m.print()));
        }
        spl.commands
            .push(format!("rex field={field} {}", text::rex_pattern(&re)));
        for (kql, group) in captures {
            spl.scope.define(
                &kql,
                Binding::Field {
                    name: group,
                    kind: Kind::Value,
                },
            );
        }
    }
}

/// The column of `evaluate bag_unpack(Column)` (with at most a `columnsConflict` option,
/// which only says what to do with keys named like existing columns).
fn bag_unpack_column(kql: &str) -> Option<String> {
    let rest = kql.trim().strip_prefix("evaluate")?.trim_start();
    let rest = rest
        .strip_prefix("bag_unpack")?
        .trim_start()
        .strip_prefix('(')?;
    let args = rest.strip_suffix(')')?.trim_end();
    let mut parts = args.split(',').map(str::trim);
    let column = parts.next()?;
    if parts.any(|p| !p.starts_with("columnsConflict")) {
        return None;
    }
    let ok = !column.is_empty()
        && column
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| column.to_string())
}

/// Whether a column name is the event time (`TimeGenerated`, `Timestamp`).
pub(super) fn kql_is_time(name: &str) -> bool {
    matches!(name, "TimeGenerated" | "Timestamp")
}

/// `parse_json(x)`, `todynamic(x)` (and `tostring` around them) name `x`'s value.
pub(super) fn unwrap_json(s: &Scalar) -> &Scalar {
    match s {
        Scalar::Call { function, args }
            if args.len() == 1
                && matches!(
                    function.as_str(),
                    "parse_json" | "todynamic" | "parsejson" | "toobject" | "tostring"
                ) =>
        {
            unwrap_json(&args[0])
        }
        _ => s,
    }
}

pub(super) fn is_json_call(s: &Scalar) -> bool {
    matches!(s, Scalar::Call { function, args }
        if args.len() == 1 && matches!(function.as_str(), "parse_json" | "todynamic" | "parsejson" | "toobject"))
}

/// The column a value reads, when it is just a column (`tostring(x)` included).
pub(super) fn unwrap_tostring_field(s: &Scalar) -> Option<&FieldPath> {
    match s {
        Scalar::Field { path } => Some(path),
        Scalar::Call { function, args } if function == "tostring" && args.len() == 1 => {
            unwrap_tostring_field(&args[0])
        }
        _ => None,
    }
}

/// Field names an expression reads.
pub(super) fn fields_of(e: &E, out: &mut BTreeSet<String>) {
    match e {
        E::Field(f) => {
            out.insert(f.clone());
        }
        E::Call(_, args) | E::And(args) | E::Or(args) => {
            args.iter().for_each(|a| fields_of(a, out))
        }
        E::Not(x) | E::Neg(x) => fields_of(x, out),
        E::Bin(_, l, r) => {
            fields_of(l, out);
            fields_of(r, out);
        }
        E::Str(_) | E::Num(_) => {}
    }
}

/// Whether a column name matches a `project-keep` pattern (`Col*`).
pub(super) fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.starts_with(pre) && name[pre.len()..].ends_with(post.trim_start_matches('*'))
        }
    }
}
