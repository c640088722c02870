//! `summarize`, `distinct`: `stats` after `fillnull` (stats drops events without the key,
//! KQL groups them under ""), and `arg_max`/`arg_min` as `sort` then `dedup`.

use std::collections::BTreeSet;

use super::Tr;
use super::expr::E;
use super::pipeline::{Spl, kql_is_time, unwrap_tostring_field};
use super::scalar::value_of;
use super::scope::{Binding, Kind, Ref, Scope};
use super::text;
use crate::diag::Code;
use crate::ir::visit::scalar_columns;
use crate::ir::{
    Aggregate, AggregateFunction, Assign, FieldPath, GroupKey, Predicate, Scalar, SortKey, Span,
    Value,
};

impl Tr<'_> {
    pub(super) fn distinct(&mut self, spl: &mut Spl, columns: &[Assign]) {
        if columns.is_empty() {
            if spl.scope.open {
                self.warn(
                    Code::MatchesMore,
                    None,
                    "`distinct *` over raw events is written as `dedup _raw`: events that differ only outside their text count as distinct",
                );
                spl.commands.push("dedup _raw".into());
                return;
            }
            let keys: Vec<GroupKey> = spl
                .scope
                .order
                .iter()
                .map(|c| GroupKey {
                    name: c.clone(),
                    value: Scalar::Field {
                        path: FieldPath::column(c),
                    },
                })
                .collect();
            self.aggregate(spl, &keys, &[], None);
            return;
        }
        let keys: Vec<GroupKey> = columns
            .iter()
            .map(|a| GroupKey {
                name: a.name.clone(),
                value: a.value.clone(),
            })
            .collect();
        self.aggregate(spl, &keys, &[], None);
    }

    /// `summarize`: `stats` (or, for `arg_max`, sort and `dedup`), after `fillnull` so
    /// that events without a key are grouped under "" as KQL does.
    pub(super) fn aggregate(
        &mut self,
        spl: &mut Spl,
        keys: &[GroupKey],
        aggregates: &[Aggregate],
        having: Option<&Predicate>,
    ) {
        let mut read_by_aggregates = BTreeSet::new();
        for a in aggregates {
            for arg in &a.args {
                scalar_columns(arg, &mut read_by_aggregates);
            }
        }
        // The key fields, computed first when they are expressions.
        let mut key_fields: Vec<(String, String, Kind)> = vec![]; // (kql name, spl field, kind)
        let mut evals = vec![];
        for k in keys {
            let target = text::column_name(&k.name);
            match unwrap_tostring_field(&k.value).map(|p| self.resolve(&spl.scope, p, None)) {
                Some(Ref::Field(name, kind)) => key_fields.push((k.name.clone(), name, kind)),
                _ => {
                    let (e, kind) = self.scalar(&spl.scope, &k.value);
                    let name = if read_by_aggregates.contains(&k.name) {
                        self.temp("key")
                    } else {
                        target.clone()
                    };
                    evals.push(format!(
                        "{}={}",
                        text::eval_field(&name),
                        value_of((e, kind)).print()
                    ));
                    key_fields.push((
                        k.name.clone(),
                        name,
                        if kind == Kind::Bool {
                            Kind::Value
                        } else {
                            kind
                        },
                    ));
                }
            }
        }
        if !evals.is_empty() {
            spl.commands.push(format!("eval {}", evals.join(", ")));
        }
        let by: Vec<String> = key_fields.iter().map(|k| k.1.clone()).collect();
        if !by.is_empty() {
            spl.commands
                .push(format!("fillnull value=\"\" {}", by.join(" ")));
        }

        let arg_max: Vec<&Aggregate> = aggregates
            .iter()
            .filter(|a| {
                matches!(
                    a.function,
                    AggregateFunction::ArgMax | AggregateFunction::ArgMin
                )
            })
            .collect();
        let mut stats = vec![];
        let mut post = vec![];
        let mut outputs: Vec<(String, String, Kind)> = vec![];
        for a in aggregates {
            if matches!(
                a.function,
                AggregateFunction::ArgMax | AggregateFunction::ArgMin
            ) {
                continue;
            }
            self.aggregate_fn(&spl.scope, a, &mut stats, &mut post, &mut outputs);
        }

        let mut scope = if let Some(first) = arg_max.first() {
            if arg_max.len() > 1 {
                self.warn(
                    Code::NotTranslated,
                    Some(arg_max[1].at),
                    "a second `arg_max`/`arg_min` in the same `summarize` is not translated: only the first picks the rows",
                );
            }
            self.arg_max(spl, first, &key_fields, stats, &outputs)
        } else {
            let by_clause = if by.is_empty() {
                String::new()
            } else {
                format!(" by {}", by.join(", "))
            };
            if stats.is_empty() {
                stats.push("count AS kqlc_count".into());
                post.push("fields - kqlc_count".into());
            }
            spl.commands
                .push(format!("stats {}{by_clause}", stats.join(", ")));
            let mut cols: Vec<(String, Binding)> = vec![];
            let mut renames = vec![];
            for (kql, field, kind) in &key_fields {
                let target = text::column_name(kql);
                let name = if field == "_time" && kql_is_time(kql) {
                    field.clone()
                } else if *field != target {
                    renames.push(format!("{field} AS {target}"));
                    target
                } else {
                    target
                };
                cols.push((kql.clone(), Binding::Field { name, kind: *kind }));
            }
            if !renames.is_empty() {
                spl.commands.push(format!("rename {}", renames.join(", ")));
            }
            for (kql, field, kind) in &outputs {
                cols.push((
                    kql.clone(),
                    Binding::Field {
                        name: field.clone(),
                        kind: *kind,
                    },
                ));
            }
            Scope::closed(cols)
        };
        // The evals after stats in one command (eval assigns in order).
        let mut evals = vec![];
        for c in post {
            match c.strip_prefix("eval ") {
                Some(assignment) => evals.push(assignment.to_string()),
                None => {
                    if !evals.is_empty() {
                        spl.commands.push(format!("eval {}", evals.join(", ")));
                        evals.clear();
                    }
                    spl.commands.push(c);
                }
            }
        }
        if !evals.is_empty() {
            spl.commands.push(format!("eval {}", evals.join(", ")));
        }
        if let Some(h) = having {
            let f = self.filter(&scope, h);
            self.push_filter(spl, f);
        }
        std::mem::swap(&mut spl.scope, &mut scope);
    }

    /// One aggregate as `stats` functions (`fn(x) AS name`), and the evals after.
    pub(super) fn aggregate_fn(
        &mut self,
        scope: &Scope,
        a: &Aggregate,
        stats: &mut Vec<String>,
        post: &mut Vec<String>,
        outputs: &mut Vec<(String, String, Kind)>,
    ) {
        let name = text::column_name(if a.name.is_empty() {
            a.names.first().map(String::as_str).unwrap_or("Column1")
        } else {
            &a.name
        });
        if a.function == AggregateFunction::Expression {
            let Some(expr) = a.args.first() else { return };
            let mut parts = vec![];
            let replaced = self.replace_aggregates(scope, expr, &mut parts, a.at);
            for (temp, call) in &parts {
                stats.push(format!("{call} AS {temp}"));
            }
            let (e, kind) = self.scalar(scope, &replaced);
            post.push(format!(
                "eval {}={}",
                text::eval_field(&name),
                value_of((e, kind)).print()
            ));
            if !parts.is_empty() {
                post.push(format!(
                    "fields - {}",
                    parts
                        .iter()
                        .map(|p| p.0.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            outputs.push((a.name.clone(), name, Kind::Value));
            return;
        }
        if let AggregateFunction::Other(f) = &a.function
            && matches!(f.as_str(), "percentile" | "percentiles")
            && a.args.len() >= 2
        {
            // One output per percentage: `percentile_x_95`, or the names given.
            let column =
                match unwrap_tostring_field(&a.args[0]).map(|p| self.resolve(scope, p, None)) {
                    Some(Ref::Field(name, _)) => name,
                    _ => format!("eval({})", value_of(self.scalar(scope, &a.args[0])).print()),
                };
            let base = match &a.args[0] {
                Scalar::Field { path } => text::column_name(&path.column),
                _ => "expr".into(),
            };
            for (i, p) in a.args[1..].iter().enumerate() {
                let pct = match p {
                    Scalar::Literal {
                        value: Value::Long(n),
                    } => *n as f64,
                    Scalar::Literal {
                        value: Value::Real(r),
                    } => *r,
                    _ => {
                        self.warn(Code::NotTranslated, Some(a.at), "a percentile with a computed percentage is not translated: its column is left out");
                        continue;
                    }
                };
                let pct_text = text::number(pct);
                let kql = match a.names.get(i) {
                    Some(n) => n.clone(),
                    // A name other than KQL's default (`percentile_x`, which KQL writes
                    // `percentile_x_95`) was given.
                    None if a.args.len() == 2
                        && !a.name.is_empty()
                        && a.name != format!("{f}_{base}") =>
                    {
                        a.name.clone()
                    }
                    None => format!("percentile_{base}_{}", pct_text.replace('.', "_")),
                };
                let out = text::column_name(&kql);
                stats.push(format!("exactperc{pct_text}({column}) AS {out}"));
                outputs.push((kql, out, Kind::Value));
            }
            return;
        }
        let (call, kind) = match self.stats_call(
            scope,
            &a.function,
            &a.args,
            a.condition.as_ref(),
            a.limit,
            a.at,
        ) {
            Some(c) => c,
            None => return,
        };
        stats.push(format!("{call} AS {name}"));
        if let Some(limit) = a.limit.filter(|l| *l > 0)
            && matches!(
                a.function,
                AggregateFunction::MakeSet | AggregateFunction::MakeList
            )
        {
            post.push(format!(
                "eval {}=mvindex({}, 0, {})",
                text::eval_field(&name),
                text::eval_field(&name),
                limit - 1
            ));
        }
        outputs.push((
            if a.name.is_empty() {
                name.clone()
            } else {
                a.name.clone()
            },
            name,
            kind,
        ));
    }

    /// A stats function call for an aggregate (`dc(x)`, `count(eval(...))`).
    fn stats_call(
        &mut self,
        scope: &Scope,
        function: &AggregateFunction,
        args: &[Scalar],
        condition: Option<&Predicate>,
        limit: Option<i64>,
        at: Span,
    ) -> Option<(String, Kind)> {
        let arg = |tr: &mut Self, i: usize| -> String {
            let Some(s) = args.get(i) else {
                return "*".into();
            };
            let value = match condition {
                Some(c) => {
                    let cond = tr.where_pred(scope, c);
                    let (e, k) = tr.scalar(scope, s);
                    return format!(
                        "eval({})",
                        E::call("if", vec![cond, value_of((e, k)), E::call("null", vec![])])
                            .print()
                    );
                }
                None => s,
            };
            match unwrap_tostring_field(value).map(|p| tr.resolve(scope, p, None)) {
                Some(Ref::Field(name, _)) => name,
                _ => {
                    let (e, k) = tr.scalar(scope, value);
                    format!("eval({})", value_of((e, k)).print())
                }
            }
        };
        let simple = |f: &str, tr: &mut Self| format!("{f}({})", arg(tr, 0));
        Some(match function {
            AggregateFunction::Count => match condition {
                Some(c) => {
                    let cond = self.where_pred(scope, c);
                    (format!("count(eval({}))", cond.print()), Kind::Value)
                }
                None => ("count".into(), Kind::Value),
            },
            AggregateFunction::DistinctCount => (simple("dc", self), Kind::Value),
            AggregateFunction::Sum => (simple("sum", self), Kind::Value),
            AggregateFunction::Avg => (simple("avg", self), Kind::Value),
            AggregateFunction::Min => (simple("min", self), Kind::Value),
            AggregateFunction::Max => (simple("max", self), Kind::Value),
            AggregateFunction::MakeSet => (simple("values", self), Kind::Multi),
            AggregateFunction::MakeList => {
                if limit.is_none_or(|l| l > 100 || l <= 0) {
                    self.warn(
                        Code::TargetLimit,
                        Some(at),
                        "`make_list` is `list()`, which keeps at most 100 values per group (limits.conf `list_maxsize`)",
                    );
                }
                (simple("list", self), Kind::Multi)
            }
            AggregateFunction::Any => (simple("first", self), Kind::Value),
            AggregateFunction::Other(f) => {
                let f = f.to_ascii_lowercase();
                match f.as_str() {
                    "stdev" | "stdevif" => (simple("stdev", self), Kind::Value),
                    "variance" | "variance_if" => (simple("var", self), Kind::Value),
                    "count_distinct" | "count_distinctif" => (simple("dc", self), Kind::Value),
                    "anyif" | "take_anyif" => {
                        let cond = args.get(1).map(|c| match c {
                            Scalar::Condition { predicate } => self.where_pred(scope, predicate),
                            other => {
                                let (e, _) = self.scalar(scope, other);
                                E::eq(e, E::str("true"))
                            }
                        });
                        let (v, k) = match args.first() {
                            Some(s) => self.scalar(scope, s),
                            None => (E::call("null", vec![]), Kind::Value),
                        };
                        let value = value_of((v, k));
                        let e = match cond {
                            Some(c) => E::call("if", vec![c, value, E::call("null", vec![])]),
                            None => value,
                        };
                        (format!("first(eval({}))", e.print()), Kind::Value)
                    }
                    "percentile" => {
                        let p = match args.get(1) {
                            Some(Scalar::Literal {
                                value: Value::Long(n),
                            }) => text::number(*n as f64),
                            Some(Scalar::Literal {
                                value: Value::Real(r),
                            }) => text::number(*r),
                            _ => {
                                self.warn(
                                    Code::NotTranslated,
                                    Some(at),
                                    "`percentile` with a computed percentage is not translated",
                                );
                                return None;
                            }
                        };
                        (format!("exactperc{p}({})", arg(self, 0)), Kind::Value)
                    }
                    _ => {
                        self.warn(
                            Code::NotTranslated,
                            Some(at),
                            format!(
                                "the aggregate `{f}` has no SPL translation: its column is left out"
                            ),
                        );
                        return None;
                    }
                }
            }
            AggregateFunction::ArgMax
            | AggregateFunction::ArgMin
            | AggregateFunction::Expression => return None,
        })
    }

    /// An expression over aggregates: each aggregate call becomes a stats output under a
    /// temporary name, which the expression then reads.
    fn replace_aggregates(
        &mut self,
        scope: &Scope,
        s: &Scalar,
        parts: &mut Vec<(String, String)>,
        at: Span,
    ) -> Scalar {
        match s {
            Scalar::Call { function, args } => {
                let f = function.to_ascii_lowercase();
                let function_kind = match f.as_str() {
                    "count" => Some((AggregateFunction::Count, None)),
                    "countif" => Some((AggregateFunction::Count, args.first().cloned())),
                    "dcount" => Some((AggregateFunction::DistinctCount, None)),
                    "dcountif" => Some((AggregateFunction::DistinctCount, args.get(1).cloned())),
                    "sum" => Some((AggregateFunction::Sum, None)),
                    "sumif" => Some((AggregateFunction::Sum, args.get(1).cloned())),
                    "avg" => Some((AggregateFunction::Avg, None)),
                    "min" => Some((AggregateFunction::Min, None)),
                    "max" => Some((AggregateFunction::Max, None)),
                    "make_set" | "makeset" => Some((AggregateFunction::MakeSet, None)),
                    "make_list" | "makelist" => Some((AggregateFunction::MakeList, None)),
                    "any" | "take_any" => Some((AggregateFunction::Any, None)),
                    "stdev" | "variance" => Some((AggregateFunction::Other(f.clone()), None)),
                    _ => None,
                };
                if let Some((kind, cond)) = function_kind {
                    let condition = cond.map(|c| match c {
                        Scalar::Condition { predicate } => *predicate,
                        other => Predicate::Expr {
                            value: other,
                            negated: false,
                            at: Span::default(),
                        },
                    });
                    let call_args: Vec<Scalar> = match f.as_str() {
                        "countif" => vec![],
                        _ => args.iter().take(1).cloned().collect(),
                    };
                    if let Some((call, _)) =
                        self.stats_call(scope, &kind, &call_args, condition.as_ref(), None, at)
                    {
                        let temp = self.temp("agg");
                        parts.push((temp.clone(), call));
                        return Scalar::Field {
                            path: FieldPath::column(&temp),
                        };
                    }
                }
                Scalar::Call {
                    function: function.clone(),
                    args: args
                        .iter()
                        .map(|a| self.replace_aggregates(scope, a, parts, at))
                        .collect(),
                }
            }
            Scalar::Arith { op, left, right } => Scalar::Arith {
                op: *op,
                left: Box::new(self.replace_aggregates(scope, left, parts, at)),
                right: Box::new(self.replace_aggregates(scope, right, parts, at)),
            },
            Scalar::Negate { value } => Scalar::Negate {
                value: Box::new(self.replace_aggregates(scope, value, parts, at)),
            },
            other => other.clone(),
        }
    }

    /// `summarize arg_max(t, cols) by keys`: other aggregates with `eventstats`, then the
    /// row with the largest `t` per key (`sort` then `dedup`).
    fn arg_max(
        &mut self,
        spl: &mut Spl,
        a: &Aggregate,
        keys: &[(String, String, Kind)],
        stats: Vec<String>,
        outputs: &[(String, String, Kind)],
    ) -> Scope {
        let by: Vec<String> = keys.iter().map(|k| k.1.clone()).collect();
        if !stats.is_empty() {
            let by_clause = if by.is_empty() {
                String::new()
            } else {
                format!(" by {}", by.join(", "))
            };
            spl.commands
                .push(format!("eventstats {}{by_clause}", stats.join(", ")));
        }
        let Some(by_value) = a.args.first() else {
            return spl.scope.clone();
        };
        let order = SortKey {
            value: by_value.clone(),
            descending: a.function == AggregateFunction::ArgMax,
            nulls_first: None,
        };
        let sort = self.sort_keys(spl, std::slice::from_ref(&order));
        spl.commands.push(format!("sort 0 {sort}"));
        if by.is_empty() {
            spl.commands.push("head 1".into());
        } else {
            spl.commands.push(format!("dedup {}", by.join(", ")));
        }
        let all = a
            .args
            .iter()
            .skip(1)
            .any(|s| matches!(s, Scalar::AllColumns));
        let mut scope = spl.scope.clone();
        let mut fields: Vec<String> = vec![];
        let mut renames = vec![];
        let mut cols: Vec<(String, Binding)> = vec![];
        // The keys under their KQL names (copies: with `*` the fields stay too).
        for (kql, f, k) in keys {
            let target = if f == "_time" && kql_is_time(kql) {
                f.clone()
            } else {
                text::column_name(kql)
            };
            if target != *f {
                renames.push(format!(
                    "{}={}",
                    text::eval_field(&target),
                    E::field(f).print()
                ));
            }
            fields.push(target.clone());
            let binding = Binding::Field {
                name: target,
                kind: *k,
            };
            cols.push((kql.clone(), binding.clone()));
            scope.define(kql, binding);
        }
        // The returned columns, renamed when the query names them.
        let returned: Vec<&Scalar> = a
            .args
            .iter()
            .filter(|s| !matches!(s, Scalar::AllColumns))
            .collect();
        for (i, s) in returned.iter().enumerate() {
            let kql = match s {
                Scalar::Field { path } => path.column.clone(),
                _ => format!("Column{}", i + 1),
            };
            // `x = arg_max(t, *)` names the `t` column `x`.
            let given = match a.names.get(i) {
                Some(n) => Some(n.clone()),
                None if i == 0 && a.names.is_empty() && !a.name.is_empty() => Some(a.name.clone()),
                None => None,
            };
            let wanted = given.clone().unwrap_or_else(|| kql.clone());
            let (field, kind) =
                match unwrap_tostring_field(s).map(|p| self.resolve(&spl.scope, p, None)) {
                    Some(Ref::Field(f, k)) => (f, k),
                    _ => {
                        let (e, k) = self.scalar(&spl.scope, s);
                        let t = text::column_name(&wanted);
                        spl.commands.push(format!(
                            "eval {}={}",
                            text::eval_field(&t),
                            value_of((e, k)).print()
                        ));
                        (t, k)
                    }
                };
            let target = if given.is_some() || (field != "_time" && !all) {
                let t = text::column_name(&wanted);
                if t != field {
                    // A copy: `*` keeps the original column too.
                    renames.push(format!(
                        "{}={}",
                        text::eval_field(&t),
                        E::field(&field).print()
                    ));
                }
                t
            } else {
                field
            };
            fields.push(target.clone());
            cols.push((
                wanted.clone(),
                Binding::Field {
                    name: target.clone(),
                    kind,
                },
            ));
            scope.define(&wanted, Binding::Field { name: target, kind });
        }
        for (kql, f, k) in outputs {
            fields.push(f.clone());
            cols.push((
                kql.clone(),
                Binding::Field {
                    name: f.clone(),
                    kind: *k,
                },
            ));
            scope.define(
                kql,
                Binding::Field {
                    name: f.clone(),
                    kind: *k,
                },
            );
        }
        if !renames.is_empty() {
            spl.commands.push(format!("eval {}", renames.join(", ")));
        }
        if all {
            scope
        } else {
            spl.commands.push(format!("fields {}", fields.join(", ")));
            Scope::closed(cols)
        }
    }
}
