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
    /// `EVAL` assignments before the `STATS` (the row keys of `arg_max`).
    pub pre: Vec<String>,
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
        let mut needed = self.inputs_of(rest);
        // The columns `arg_max(t, a, b)` names are output when no later step chooses
        // the output columns.
        if !rest.iter().any(|s| super::query::stage_refs(s).1) {
            for a in aggregates {
                if matches!(
                    a.function,
                    AggregateFunction::ArgMax | AggregateFunction::ArgMin
                ) {
                    for (i, arg) in a.args.iter().enumerate().skip(1) {
                        if let Some(n) = taken_name(a, i, arg) {
                            needed.insert(n);
                        }
                    }
                }
            }
        }
        let needed = Some(needed);
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
        if !out.pre.is_empty() {
            self.push(format!("EVAL {}", out.pre.join(", ")));
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
                let mut values: Vec<(String, E)> = vec![];
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
                        Ok(e) => values.push((n, e)),
                        Err(why) => self.aggregate_dropped(a, why),
                    }
                }
                let plain = |tx: &Self, (n, e): &(String, E)| {
                    e.ty != Ty::Any
                        && !super::query::multi_valued(&unquote(&e.text))
                        && !tx.stage_lists.contains(n)
                };
                if values.len() > 1 && values.iter().all(|v| plain(self, v)) {
                    // The values of one row: each is the text after the same row's hash.
                    let texts: Vec<E> = values.iter().map(|(_, e)| as_text(e)).collect();
                    let hash = row_hash(&texts);
                    let key = self.fresh("any_row");
                    self.scope.set(&key, computed(&key, Ty::Str));
                    out.pre
                        .push(format!("{} = {}", lit::ident(&key), hash.text));
                    let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
                    self.comment(&format!(
                        "take_any({}): the values of one row, each the text after a hash of the row's values (the same for every column)",
                        names.join(", ")
                    ));
                    for ((n, e), text) in values.iter().zip(texts) {
                        let keyed =
                            expr::call("CONCAT", &[E::column(&key, Ty::Str), text], Ty::Str);
                        out.items
                            .push(format!("{} = MAX({}){filter}", lit::ident(n), keyed.text));
                        let back = from_text(e.ty, E::column(n, Ty::Str), 32);
                        out.post.push(format!("{} = {}", lit::ident(n), back.text));
                        out.cols.push((n.clone(), computed(n, back.ty)));
                    }
                } else {
                    if values.len() > 1 {
                        self.warn(
                            Code::NotTranslated,
                            here,
                            format!(
                                "`take_any()` takes {} from one row; some of them can be arrays, so each is any value of its own column (MAX), possibly from different rows",
                                values
                                    .iter()
                                    .map(|(n, _)| format!("`{n}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    }
                    for (n, e) in values {
                        // Any value of the group: MAX gives one.
                        out.items
                            .push(format!("{} = MAX({}){filter}", lit::ident(&n), e.text));
                        out.cols.push((n.clone(), computed(&n, e.ty)));
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

    /// `arg_max(t, cols)`: the row with the largest `t`.
    ///
    /// ES|QL 9.3 has no "value at the maximum" aggregate for text (`TOP`'s output field
    /// takes numbers and dates only, `FIRST`/`LAST` come later), so when `t` is a
    /// datetime each column is read from the largest (smallest) text
    /// `time + row hash + value`: the time is written at a fixed width, so the text
    /// order is the time order; the hash of the row's taken values (length-prefixed, so
    /// distinct rows hash differently) breaks ties the same way for every column, so all
    /// of them come from one row, as in KQL. Otherwise (a numeric `t`, a column whose
    /// value is an array) each column is the list of its values in the group, said.
    fn arg_extreme(
        &mut self,
        a: &Aggregate,
        filter: &str,
        needed: Option<&BTreeSet<String>>,
        keys: &BTreeSet<String>,
        out: &mut AggOut,
    ) {
        let max = a.function == AggregateFunction::ArgMax;
        let function = if max { "MAX" } else { "MIN" };
        let kql_name = if max { "arg_max" } else { "arg_min" };
        let Some(by) = a.args.first() else { return };
        let by_name = match by {
            Scalar::Field { path } if path.path.is_empty() => path.column.clone(),
            _ => "max_value".into(),
        };
        let t_name = a.names.first().cloned().unwrap_or(by_name.clone());
        let t = match self.scalar(by) {
            Ok(e) => {
                out.items.push(format!(
                    "{} = {function}({}){filter}",
                    lit::ident(&t_name),
                    e.text
                ));
                out.cols.push((t_name.clone(), computed(&t_name, e.ty)));
                e
            }
            Err(why) => return self.aggregate_dropped(a, why),
        };
        // The other columns it returns, and which of them are used later.
        let mut wanted: Vec<(String, Scalar)> = vec![];
        let mut all_columns = false;
        for (i, arg) in a.args.iter().enumerate().skip(1) {
            match taken_name(a, i, arg) {
                Some(n) => wanted.push((n, arg.clone())),
                None => all_columns = true,
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
            .filter(|(n, _)| {
                needed.is_none_or(|set| set.contains(n)) && !keys.contains(n) && *n != t_name
            })
            .collect();
        if used.is_empty() {
            return;
        }
        let mut values: Vec<(String, E)> = vec![];
        for (n, s) in used {
            match self.scalar(&s) {
                Ok(e) => values.push((n, e)),
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
        // A datetime written at a fixed width, whose text order is its time order.
        let stamp = match t.ty {
            Ty::Date => Some(t.clone()),
            Ty::Str | Ty::Any if time_column(&by_name) => Some(expr::call(
                "TO_DATETIME",
                std::slice::from_ref(&t),
                Ty::Date,
            )),
            _ => None,
        }
        .map(|d| expr::call("DATE_FORMAT", &[E::string(STAMP_FORMAT), d], Ty::Str));
        let (exact, lists): (Named, Named) = match &stamp {
            Some(_) => values.into_iter().partition(|(n, e)| {
                e.ty != Ty::Any
                    && !super::query::multi_valued(&unquote(&e.text))
                    && !self.stage_lists.contains(n)
            }),
            None => (vec![], values),
        };
        if let Some(stamp) = stamp
            && !exact.is_empty()
        {
            let texts: Vec<E> = exact.iter().map(|(_, e)| as_text(e)).collect();
            // One column needs no tie-break: any row with the largest time will do.
            let (key, width) = if exact.len() == 1 {
                (stamp, STAMP_WIDTH)
            } else {
                let hash = row_hash(&texts);
                let name = self.fresh(&format!("{kql_name}_row"));
                self.scope.set(&name, computed(&name, Ty::Str));
                out.pre.push(format!(
                    "{} = {}",
                    lit::ident(&name),
                    expr::call("CONCAT", &[stamp, hash], Ty::Str).text
                ));
                (E::column(&name, Ty::Str), STAMP_WIDTH + 32)
            };
            let names: Vec<String> = exact.iter().map(|(n, _)| format!("`{n}`")).collect();
            self.comment(&format!(
                "{kql_name}({by_name}, ...): {} {} read from the row with the {} `{by_name}`: each is the text after a fixed-width key (the time{})",
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" },
                if max { "largest" } else { "smallest" },
                if exact.len() == 1 { "" } else { ", then a hash of the row's values that breaks ties the same way for every column" }
            ));
            for ((n, e), text) in exact.iter().zip(texts) {
                let keyed = expr::call("CONCAT", &[key.clone(), text], Ty::Str);
                out.items.push(format!(
                    "{} = {function}({}){filter}",
                    lit::ident(n),
                    keyed.text
                ));
                let back = from_text(e.ty, E::column(n, Ty::Str), width);
                out.post.push(format!("{} = {}", lit::ident(n), back.text));
                out.cols.push((n.clone(), computed(n, back.ty)));
            }
        }
        if lists.is_empty() {
            return;
        }
        let names: Vec<String> = lists.iter().map(|(n, _)| format!("`{n}`")).collect();
        let why = if t.ty == Ty::Date || time_column(&by_name) {
            "their values can be arrays, which cannot be keyed by the time"
        } else {
            "ES|QL 9.3 has no such aggregate for text and this one is not ordered by a datetime"
        };
        self.warn(
            Code::NotTranslated,
            Some(a.at),
            format!(
                "`{kql_name}({by_name}, ...)` takes {} from the row with the {} `{by_name}`; {why}, so each is the list of its values in the group (VALUES)",
                names.join(", "),
                if max { "largest" } else { "smallest" }
            ),
        );
        for (n, e) in lists {
            out.items
                .push(format!("{} = VALUES({}){filter}", lit::ident(&n), e.text));
            out.cols.push((n.clone(), computed(&n, e.ty)));
        }
    }
}

/// Values with their output names.
type Named = Vec<(String, E)>;

/// How `arg_max` writes a time so that text order is time order (23 characters).
const STAMP_FORMAT: &str = "yyyy-MM-dd'T'HH:mm:ss.SSS";
const STAMP_WIDTH: usize = 23;

/// A Sentinel column that holds a datetime by the tables' naming conventions, when the
/// mapping does not say what type it has in Elastic.
fn time_column(name: &str) -> bool {
    let last = name.rsplit('_').next().unwrap_or(name);
    matches!(last, "TimeGenerated" | "Timestamp")
        || last.ends_with("Time")
        || last.ends_with("TimeUtc")
        || last.ends_with("DateTime")
}

/// A value as text that is never null (KQL reads a missing string as "").
fn as_text(e: &E) -> E {
    let text = match e.ty {
        Ty::Str => e.clone(),
        _ => expr::call("TO_STRING", std::slice::from_ref(e), Ty::Str),
    };
    expr::call("COALESCE", &[text, E::string("")], Ty::Str)
}

/// A fixed-width hash of some values that differs for different values (each but the
/// last is prefixed with its length, so `("a:", "b")` and `("a", ":b")` differ).
fn row_hash(texts: &[E]) -> E {
    let mut parts = vec![];
    for (i, v) in texts.iter().enumerate() {
        if i + 1 < texts.len() {
            parts.push(expr::call(
                "TO_STRING",
                &[expr::call("LENGTH", std::slice::from_ref(v), Ty::Num)],
                Ty::Str,
            ));
            parts.push(E::string(":"));
        }
        parts.push(v.clone());
    }
    expr::call("MD5", &[expr::call("CONCAT", &parts, Ty::Str)], Ty::Str)
}

/// The value after a `width`-character key, converted back to its type.
fn from_text(ty: Ty, keyed: E, width: usize) -> E {
    let tail = expr::call("SUBSTRING", &[keyed, E::long(width as i64 + 1)], Ty::Str);
    match ty {
        Ty::Num => expr::call("TO_DOUBLE", &[tail], Ty::Num),
        Ty::Date => expr::call("TO_DATETIME", &[tail], Ty::Date),
        Ty::Bool => expr::call("TO_BOOLEAN", &[tail], Ty::Bool),
        Ty::Ip => expr::call("TO_IP", &[tail], Ty::Ip),
        _ => tail,
    }
}

/// The output name of `arg_max`'s `i`-th argument (`None` for `*`).
fn taken_name(a: &Aggregate, i: usize, arg: &Scalar) -> Option<String> {
    match arg {
        Scalar::AllColumns => None,
        Scalar::Field { path } => Some(
            a.names
                .get(i)
                .cloned()
                .unwrap_or(path.dotted().replace('.', "_")),
        ),
        _ => Some(a.names.get(i).cloned().unwrap_or(format!("col{i}"))),
    }
}
