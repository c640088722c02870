//! `summarize` as `STATS ... BY`: the aggregates ES|QL has, `make_set` limits as
//! `MV_SLICE`, `arg_max`/`arg_min` where they can be written, and `having` conditions.

use std::collections::BTreeSet;

use crate::diag::Code;
use crate::ir::*;

use super::expr::{self, E, Ty};
use super::lit;
use super::query::{Col, Origin, Scope, Tx, Why, computed, unquote};

/// The most values a `make_list` without a limit collects (TOP needs a limit).
const MAKE_LIST_LIMIT: i64 = 10_000;

/// What one aggregate contributes to a `STATS`.
#[derive(Default)]
pub struct AggOut {
    /// `name = AGG(x) [WHERE cond]`.
    pub items: Vec<String>,
    /// `EVAL` assignments after the `STATS` (`MV_SLICE` for `make_set` limits).
    pub post: Vec<String>,
    pub cols: Vec<(String, Col)>,
}

impl Tx<'_> {
    pub fn aggregate(
        &mut self,
        keys: &[GroupKey],
        aggregates: &[Aggregate],
        having: Option<&Predicate>,
        span: Span,
        rest: &[Stage],
    ) {
        let needed = Some(self.inputs_of(rest));
        let key_names: BTreeSet<String> = keys.iter().map(|k| k.name.clone()).collect();
        let mut out = AggOut::default();
        for a in aggregates {
            self.aggregate_items(a, None, needed.as_ref(), &key_names, &mut out);
        }
        let mut by = vec![];
        let mut key_cols = vec![];
        for k in keys {
            match self.group_key(k) {
                Ok((text, col)) => {
                    by.push(text);
                    key_cols.push((k.name.clone(), col));
                }
                Err(why) => self.error(
                    Code::Untranslatable,
                    Some(span),
                    format!(
                        "the grouping key `{}` cannot be written: {}",
                        k.name,
                        why.message()
                    ),
                ),
            }
        }
        let mut line = "STATS".to_string();
        if !out.items.is_empty() {
            line.push(' ');
            line.push_str(&out.items.join(", "));
        }
        if !by.is_empty() {
            line.push_str(" BY ");
            line.push_str(&by.join(", "));
        }
        if out.items.is_empty() && by.is_empty() {
            line.push_str(" Count = COUNT(*)");
        }
        self.aggregates = true;
        self.push(line);
        if !out.post.is_empty() {
            self.push(format!("EVAL {}", out.post.join(", ")));
        }
        let mut scope = Scope {
            tables: self.scope.tables.clone(),
            cols: vec![],
            open: false,
            lookup: false,
        };
        for (n, c) in key_cols.into_iter().chain(out.cols) {
            scope.set(&n, c);
        }
        self.scope = scope;
        if let Some(h) = having {
            self.having(h, span);
        }
    }

    pub fn having(&mut self, h: &Predicate, span: Span) {
        match self.pred(h, false) {
            expr::P::Const(true) => {}
            expr::P::Const(false) => {
                self.error(
                    Code::Untranslatable,
                    Some(span),
                    "nothing is left of the condition on the aggregates".into(),
                );
                self.push("WHERE FALSE");
            }
            expr::P::E(e) => self.push(format!("WHERE {}", e.text)),
        }
    }

    /// A `BY` item and the column it makes.
    pub fn group_key(&mut self, k: &GroupKey) -> Result<(String, Col), Why> {
        let e = self.scalar(&k.value)?;
        if e.is_column()
            && let Scalar::Field { path } = &k.value
            && path.path.is_empty()
            && path.column == k.name
        {
            let esql = unquote(&e.text);
            let mut col = self.scope.get(&k.name).cloned().unwrap_or(Col {
                esql: esql.clone(),
                ty: e.ty,
                origin: Origin::Source {
                    table: self.scope.tables.first().cloned(),
                    path: path.clone(),
                    first_element: false,
                },
                object: false,
            });
            col.esql = esql;
            return Ok((e.text, col));
        }
        Ok((
            format!("{} = {}", lit::ident(&k.name), e.text),
            computed(&k.name, e.ty),
        ))
    }

    /// One aggregate's `STATS` items; `extra` is a condition every row must meet (the
    /// side of a correlation).
    pub fn aggregate_items(
        &mut self,
        a: &Aggregate,
        extra: Option<&E>,
        needed: Option<&BTreeSet<String>>,
        keys: &BTreeSet<String>,
        out: &mut AggOut,
    ) {
        let here = Some(a.at);
        let mut cond = extra.cloned();
        if let Some(c) = &a.condition {
            match self.pred_strict(c) {
                Ok(p) => {
                    let parts = cond.into_iter().map(expr::P::E).chain([p]).collect();
                    cond = match expr::and(parts) {
                        expr::P::E(e) => Some(e),
                        expr::P::Const(true) => None,
                        expr::P::Const(false) => Some(E::bool(false)),
                    };
                }
                Err(why) => {
                    self.warn(
                        Code::NotTranslated,
                        here,
                        format!(
                            "the condition of `{}` cannot be written ({}); it counts every row",
                            a.name,
                            why.message()
                        ),
                    );
                }
            }
        }
        let filter = cond
            .as_ref()
            .map(|c| format!(" WHERE {}", c.text))
            .unwrap_or_default();
        let name = |i: usize, default: &str| -> String {
            a.names.get(i).cloned().unwrap_or_else(|| {
                if i == 0 && !a.name.is_empty() {
                    a.name.clone()
                } else {
                    default.to_string()
                }
            })
        };
        let mut simple = |tx: &mut Self, function: &str, ty_of_arg: bool, fixed: Ty| {
            let Some(arg) = a.args.first() else {
                return tx.warn(
                    Code::NotTranslated,
                    here,
                    format!("`{}` without an argument is left out", a.name),
                );
            };
            match tx.scalar(arg) {
                Ok(e) => {
                    let ty = if ty_of_arg { e.ty } else { fixed };
                    let n = name(0, &a.name);
                    out.items.push(format!(
                        "{} = {function}({}){filter}",
                        lit::ident(&n),
                        e.text
                    ));
                    out.cols.push((n.clone(), computed(&n, ty)));
                }
                Err(why) => tx.aggregate_dropped(a, why),
            }
        };
        match &a.function {
            AggregateFunction::Count => {
                let n = name(0, "count_");
                let what = match a.args.first() {
                    None | Some(Scalar::AllColumns) => Ok("*".to_string()),
                    Some(x) => self.scalar(x).map(|e| e.text),
                };
                match what {
                    Ok(w) => {
                        out.items
                            .push(format!("{} = COUNT({w}){filter}", lit::ident(&n)));
                        out.cols.push((n.clone(), computed(&n, Ty::Num)));
                    }
                    Err(why) => self.aggregate_dropped(a, why),
                }
            }
            AggregateFunction::DistinctCount => simple(self, "COUNT_DISTINCT", false, Ty::Num),
            AggregateFunction::Sum => simple(self, "SUM", false, Ty::Num),
            AggregateFunction::Avg => simple(self, "AVG", false, Ty::Num),
            AggregateFunction::Min => simple(self, "MIN", true, Ty::Any),
            AggregateFunction::Max => simple(self, "MAX", true, Ty::Any),
            AggregateFunction::MakeSet => {
                simple(self, "VALUES", true, Ty::Any);
                if let Some(limit) = a.limit
                    && out.cols.last().is_some_and(|(n, _)| *n == name(0, &a.name))
                {
                    let n = lit::ident(&name(0, &a.name));
                    out.post.push(format!(
                        "{n} = MV_SLICE({n}, 0, {})",
                        limit.saturating_sub(1).max(0)
                    ));
                }
            }
            AggregateFunction::MakeList => {
                // TOP keeps repeated values (VALUES would not); it sorts them, where
                // make_list keeps the order rows came in (which KQL does not define).
                let limit = match a.limit {
                    Some(l) => l.clamp(1, MAKE_LIST_LIMIT),
                    None => {
                        self.warn(
                            Code::TargetLimit,
                            here,
                            format!(
                                "`{}`: make_list keeps up to 1,048,576 values; ES|QL's TOP is given {MAKE_LIST_LIMIT}",
                                a.name
                            ),
                        );
                        MAKE_LIST_LIMIT
                    }
                };
                match a.args.first().map(|x| self.scalar(x)) {
                    Some(Ok(e)) => {
                        let n = name(0, &a.name);
                        out.items.push(format!(
                            "{} = TOP({}, {limit}, \"asc\"){filter}",
                            lit::ident(&n),
                            e.text
                        ));
                        out.cols.push((n.clone(), computed(&n, e.ty)));
                    }
                    Some(Err(why)) => self.aggregate_dropped(a, why),
                    None => {}
                }
            }
            AggregateFunction::Any => {
                for (i, arg) in a.args.iter().enumerate() {
                    let default = match arg {
                        Scalar::Field { path } => path.column.clone(),
                        _ => format!("any_{i}"),
                    };
                    let n = if a.args.len() == 1 {
                        name(0, &default)
                    } else {
                        name(i, &default)
                    };
                    match self.scalar(arg) {
                        // Any value of the group: MAX gives one.
                        Ok(e) => {
                            out.items
                                .push(format!("{} = MAX({}){filter}", lit::ident(&n), e.text));
                            out.cols.push((n.clone(), computed(&n, e.ty)));
                        }
                        Err(why) => self.aggregate_dropped(a, why),
                    }
                }
            }
            AggregateFunction::ArgMax | AggregateFunction::ArgMin => {
                self.arg_extreme(a, &filter, needed, keys, out);
            }
            AggregateFunction::Expression => {
                let Some(arg) = a.args.first() else { return };
                self.in_stats = true;
                let r = self.scalar(arg);
                self.in_stats = false;
                match r {
                    Ok(e) => {
                        if !filter.is_empty() {
                            self.warn(
                                Code::NotTranslated,
                                here,
                                format!(
                                    "`{}`: the row condition of a computed aggregate is left out",
                                    a.name
                                ),
                            );
                        }
                        out.items
                            .push(format!("{} = {}", lit::ident(&a.name), e.text));
                        out.cols.push((a.name.clone(), computed(&a.name, e.ty)));
                    }
                    Err(why) => self.aggregate_dropped(a, why),
                }
            }
            AggregateFunction::Other(f) => match f.as_str() {
                "percentile" if a.args.len() == 2 => {
                    let (v, p) = (self.scalar(&a.args[0]), self.scalar(&a.args[1]));
                    match (v, p) {
                        (Ok(v), Ok(p)) => {
                            out.items.push(format!(
                                "{} = PERCENTILE({}, {}){filter}",
                                lit::ident(&a.name),
                                v.text,
                                p.text
                            ));
                            out.cols.push((a.name.clone(), computed(&a.name, Ty::Num)));
                        }
                        (Err(why), _) | (_, Err(why)) => self.aggregate_dropped(a, why),
                    }
                }
                "stdev" | "stdevp" => simple(self, "STD_DEV", false, Ty::Num),
                _ => self.aggregate_dropped(
                    a,
                    Why::Other(format!("the aggregate `{f}()` has no ES|QL equivalent")),
                ),
            },
        }
    }

    fn aggregate_dropped(&mut self, a: &Aggregate, why: Why) {
        let code = why.code();
        let name = if a.name.is_empty() {
            a.names.join(", ")
        } else {
            a.name.clone()
        };
        self.warn(
            code,
            Some(a.at),
            format!("the aggregate `{name}` is left out: {}", why.message()),
        );
    }

    /// `arg_max(t, cols)`: the row with the largest `t`. ES|QL 9.3 has no "value at the
    /// maximum" aggregate for text columns, so this is exact only when no column other
    /// than `t` (and the keys) is used afterwards.
    fn arg_extreme(
        &mut self,
        a: &Aggregate,
        filter: &str,
        needed: Option<&BTreeSet<String>>,
        keys: &BTreeSet<String>,
        out: &mut AggOut,
    ) {
        let function = if a.function == AggregateFunction::ArgMax {
            "MAX"
        } else {
            "MIN"
        };
        let kql_name = if a.function == AggregateFunction::ArgMax {
            "arg_max"
        } else {
            "arg_min"
        };
        let Some(by) = a.args.first() else { return };
        let by_name = match by {
            Scalar::Field { path } if path.path.is_empty() => path.column.clone(),
            _ => "max_value".into(),
        };
        let t_name = a.names.first().cloned().unwrap_or(by_name.clone());
        match self.scalar(by) {
            Ok(e) => {
                out.items.push(format!(
                    "{} = {function}({}){filter}",
                    lit::ident(&t_name),
                    e.text
                ));
                out.cols.push((t_name.clone(), computed(&t_name, e.ty)));
            }
            Err(why) => return self.aggregate_dropped(a, why),
        }
        // The other columns it returns, and which of them are used later.
        let mut wanted: Vec<(String, Scalar)> = vec![];
        let mut all_columns = false;
        for (i, arg) in a.args.iter().enumerate().skip(1) {
            match arg {
                Scalar::AllColumns => all_columns = true,
                Scalar::Field { path } => {
                    let n = a
                        .names
                        .get(i)
                        .cloned()
                        .unwrap_or(path.dotted().replace('.', "_"));
                    wanted.push((n, arg.clone()));
                }
                other => wanted.push((
                    a.names.get(i).cloned().unwrap_or(format!("col{i}")),
                    other.clone(),
                )),
            }
        }
        if all_columns {
            match needed {
                Some(set) => {
                    for n in set {
                        if n != &t_name
                            && !keys.contains(n)
                            && !wanted.iter().any(|(w, _)| w == n)
                            && n != "*"
                        {
                            wanted.push((
                                n.clone(),
                                Scalar::Field {
                                    path: FieldPath::column(n.clone()),
                                },
                            ));
                        }
                    }
                }
                None => {
                    self.warn(
                        Code::NotTranslated,
                        Some(a.at),
                        format!(
                            "`{kql_name}({by_name}, *)` returns the whole latest row; ES|QL cannot name every column, so only `{t_name}` and the grouping keys are kept"
                        ),
                    );
                }
            }
        }
        let used: Vec<(String, Scalar)> = wanted
            .into_iter()
            .filter(|(n, _)| needed.is_none_or(|set| set.contains(n)) && !keys.contains(n))
            .collect();
        if used.is_empty() {
            return;
        }
        let names: Vec<String> = used.iter().map(|(n, _)| format!("`{n}`")).collect();
        self.warn(
            Code::NotTranslated,
            Some(a.at),
            format!(
                "`{kql_name}({by_name}, ...)` takes {} from the row with the {} `{by_name}`; ES|QL 9.3 has no such aggregate for text, so each is the list of its values in the group (VALUES)",
                names.join(", "),
                if function == "MAX" { "largest" } else { "smallest" }
            ),
        );
        for (n, s) in used {
            match self.scalar(&s) {
                Ok(e) => {
                    out.items
                        .push(format!("{} = VALUES({}){filter}", lit::ident(&n), e.text));
                    out.cols.push((n.clone(), computed(&n, e.ty)));
                }
                Err(why) => {
                    let code = why.code();
                    self.warn(
                        code,
                        Some(a.at),
                        format!("`{n}` is left out: {}", why.message()),
                    );
                }
            }
        }
    }
}
