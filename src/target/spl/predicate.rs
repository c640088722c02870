//! KQL conditions as SPL: in a search expression where search compares exactly (it is
//! case-insensitive and reads `*` as a wildcard), otherwise in `where`. A condition that
//! needs a subsearch (`x in (T | ...)`) can only be a search expression; when it is
//! combined with conditions only `where` can say, those are computed first into flag
//! fields that the search tests.

use super::Tr;
use super::expr::{E, Op, S};
use super::scalar::value_of;
use super::scope::{Kind, Ref, Scope};
use super::text;
use crate::diag::Code;
use crate::ir::{CompareOp, ListTest, Pipeline, Predicate, Scalar, Source, Span, TextTest, Value};

/// Term boundaries of KQL's `has`: terms are maximal runs of ASCII letters and digits.
const TERM_START: &str = "(^|[^a-zA-Z0-9])";
const TERM_END: &str = "([^a-zA-Z0-9]|$)";

/// A filter as SPL: evals to run first, a search expression, a where expression, and
/// the temporary fields to drop afterwards.
#[derive(Default)]
pub(super) struct Filter {
    /// Search terms on the input's fields (they can join the base search).
    pub search: Vec<S>,
    pub where_: Vec<E>,
    /// Evals the `mixed` terms read (flags, computed operands).
    pub prelude: Vec<(String, E)>,
    /// Search terms with subsearches, run after the prelude.
    pub mixed: Vec<S>,
    pub cleanup: Vec<String>,
}

/// A literal value of a comparison, if the scalar is one.
fn literal(s: &Scalar) -> Option<&Value> {
    match s {
        Scalar::Literal { value } => Some(value),
        _ => None,
    }
}

/// `tostring(x)` is `x` in Splunk, whose field values are strings already.
fn unwrap_tostring(s: &Scalar) -> &Scalar {
    match s {
        Scalar::Call { function, args } if function == "tostring" && args.len() == 1 => {
            unwrap_tostring(&args[0])
        }
        _ => s,
    }
}

fn mirror(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        op => op,
    }
}

fn op(c: CompareOp) -> Op {
    match c {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
    }
}

/// Whether a predicate holds a subsearch (`x in (T | ...)`), which only search can run.
fn has_subsearch(p: &Predicate) -> bool {
    match p {
        Predicate::And { all } => all.iter().any(has_subsearch),
        Predicate::Or { any } => any.iter().any(has_subsearch),
        Predicate::InQuery { test, query, .. } => {
            *test != ListTest::AllTerms && inline_values(query).is_none()
        }
        _ => false,
    }
}

/// The values of a one-column `datatable` (or a `let` list turned into one): an `in`
/// against it is a list.
fn inline_values(p: &Pipeline) -> Option<Vec<Value>> {
    match &p.source {
        Source::Inline { columns, rows } if columns.len() == 1 && p.stages.is_empty() => {
            Some(rows.iter().filter_map(|r| r.first().cloned()).collect())
        }
        _ => None,
    }
}

/// A value as a search term value: quoted string or number; `None` when search cannot
/// compare it exactly (with `case_sensitive`, only caseless text is exact).
fn search_value(v: &Value, case_sensitive: bool) -> Option<String> {
    match v {
        Value::String(s) | Value::Guid(s) => {
            if case_sensitive && !text::caseless(s) && !matches!(v, Value::Guid(_)) {
                return None;
            }
            text::search_string(s)
        }
        Value::Long(n) => Some(n.to_string()),
        Value::Real(r) if r.is_finite() => Some(text::number(*r)),
        Value::Bool(b) => Some(format!("\"{b}\"")),
        _ => None,
    }
}

/// A literal as an eval value.
pub(super) fn eval_value(v: &Value) -> E {
    match v {
        Value::Null => E::call("null", vec![]),
        Value::Bool(b) => E::str(if *b { "true" } else { "false" }),
        Value::Long(n) => E::int(*n),
        Value::Real(r) => E::num(*r),
        Value::String(s) | Value::Guid(s) => E::str(s),
        Value::TimeSpan(s) => E::num(*s),
        Value::DateTime(t) => match epoch(t) {
            Some(secs) => E::num(secs),
            None => E::call("strptime", vec![E::str(t), E::str("%Y-%m-%dT%H:%M:%S")]),
        },
        Value::Dynamic(j) => match j {
            serde_json::Value::String(s) => E::str(s),
            serde_json::Value::Number(n) => E::num(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::Bool(b) => E::str(if *b { "true" } else { "false" }),
            serde_json::Value::Array(items) => E::call(
                "mvappend",
                items
                    .iter()
                    .map(|i| eval_value(&Value::Dynamic(i.clone())))
                    .collect(),
            ),
            other => E::str(&other.to_string()),
        },
    }
}

/// A KQL datetime literal (`2023-01-31`, `2023-01-31T12:00:00Z`, `2023-01-31 12:00:00.5`)
/// as seconds since 1970 (KQL datetimes are UTC).
pub(super) fn epoch(text: &str) -> Option<f64> {
    let t = text.trim().trim_end_matches('Z').trim_end_matches('z');
    let (date, time) = match t.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, t),
        None => (t, ""),
    };
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next().unwrap_or("1").parse().ok()?;
    if d.next().is_some()
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(-9_999..=99_999).contains(&year)
    {
        return None;
    }
    let mut secs = 0.0;
    if !time.is_empty() {
        let mut parts = time.split(':');
        let h: f64 = parts.next()?.parse().ok()?;
        let m: f64 = parts.next().unwrap_or("0").parse().ok()?;
        let s: f64 = parts.next().unwrap_or("0").parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        secs = h * 3600.0 + m * 60.0 + s;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + secs)
}

fn lower_literal(s: &str) -> String {
    s.to_lowercase()
}

impl Tr<'_> {
    /// A filter stage's condition, split between search and where.
    pub(super) fn filter(&mut self, scope: &Scope, p: &Predicate) -> Filter {
        let mut f = Filter::default();
        let conjuncts: Vec<&Predicate> = match p {
            Predicate::And { all } => all.iter().collect(),
            p => vec![p],
        };
        for c in conjuncts {
            if let Predicate::Constant { value: true } = c {
                continue;
            }
            if let Some(s) = self.search_pred(scope, c) {
                f.search.push(s);
            } else if !has_subsearch(c) {
                let e = self.where_pred(scope, c);
                f.where_.push(e);
            } else {
                let s = self.mixed(scope, c, &mut f);
                f.mixed.push(s);
            }
        }
        f
    }

    /// A predicate holding subsearches: its parts that search cannot say become flags.
    fn mixed(&mut self, scope: &Scope, p: &Predicate, f: &mut Filter) -> S {
        let part = |tr: &mut Self, q: &Predicate, f: &mut Filter| -> S {
            if let Some(s) = tr.search_pred(scope, q) {
                s
            } else if has_subsearch(q) {
                tr.mixed(scope, q, f)
            } else {
                let cond = tr.where_pred(scope, q);
                let flag = tr.temp("cond");
                f.prelude.push((
                    flag.clone(),
                    E::call("if", vec![cond, E::int(1), E::int(0)]),
                ));
                f.cleanup.push(flag.clone());
                S::term(format!("{flag}=1"))
            }
        };
        match p {
            Predicate::And { all } => {
                let items = all.iter().map(|q| part(self, q, f)).collect();
                S::and(items)
            }
            Predicate::Or { any } => {
                let items = any.iter().map(|q| part(self, q, f)).collect();
                S::or(items)
            }
            Predicate::InQuery {
                value,
                query,
                column,
                case_sensitive,
                negated,
                at,
                test,
            } => {
                let field = match self.search_field(scope, value) {
                    Some(name) => name,
                    None => {
                        let (e, _) = self.scalar(scope, value);
                        let name = self.temp("in");
                        f.prelude.push((name.clone(), e));
                        f.cleanup.push(name.clone());
                        name
                    }
                };
                let terms = *test == ListTest::AnyTerm;
                let sub = self.in_subsearch(query, column, &field, terms, Some(*at));
                if terms {
                    self.warn(
                        Code::MatchesMore,
                        Some(*at),
                        format!(
                            "`has_any` against a sub-query is written as `{field}=\"*term*\"` terms from a subsearch: a substring match, not a whole-term match (matches more)"
                        ),
                    );
                } else if *case_sensitive {
                    self.warn(
                        Code::CaseSemantics,
                        Some(*at),
                        format!(
                            "`in` compares case-sensitively; the subsearch's `{field}=value` terms compare case-insensitively (and read `*` in a value as a wildcard): matches more"
                        ),
                    );
                }
                let s = S::term(sub);
                if *negated { S::not(s) } else { s }
            }
            other => part(self, other, f),
        }
    }

    /// The Splunk field a scalar is, when it is one (for search terms).
    fn search_field(&mut self, scope: &Scope, s: &Scalar) -> Option<String> {
        match unwrap_tostring(s) {
            Scalar::Field { path } => match self.resolve(scope, path, None) {
                Ref::Field(name, _) => Some(name),
                _ => None,
            },
            _ => None,
        }
    }

    /// A predicate as a search expression, when search says exactly the same.
    pub(super) fn search_pred(&mut self, scope: &Scope, p: &Predicate) -> Option<S> {
        match p {
            Predicate::And { all } if !all.is_empty() => {
                let items = all
                    .iter()
                    .map(|q| self.search_pred(scope, q))
                    .collect::<Option<Vec<_>>>()?;
                Some(S::and(items))
            }
            Predicate::Or { any } if !any.is_empty() => {
                let items = any
                    .iter()
                    .map(|q| self.search_pred(scope, q))
                    .collect::<Option<Vec<_>>>()?;
                Some(S::or(items))
            }
            Predicate::Compare {
                left,
                op,
                right,
                case_sensitive,
                ..
            } => {
                let (field, op, value, case_sensitive) = match (literal(left), literal(right)) {
                    (None, Some(v)) => (left, *op, v, *case_sensitive),
                    (Some(v), None) => (right, mirror(*op), v, *case_sensitive),
                    _ => return None,
                };
                // tolower(x) == "abc" is x =~ "abc" when the literal is lower case.
                let (field, case_sensitive) = match unwrap_tostring(field) {
                    Scalar::Call { function, args }
                        if args.len() == 1
                            && ((function == "tolower"
                                && matches!(value, Value::String(s) if s.to_lowercase() == *s))
                                || (function == "toupper"
                                    && matches!(value, Value::String(s) if s.to_uppercase() == *s))) =>
                    {
                        (&args[0], false)
                    }
                    f => (f, case_sensitive),
                };
                let name = self.search_field(scope, field)?;
                let v = search_value(value, case_sensitive)?;
                let numeric = matches!(value, Value::Long(_) | Value::Real(_));
                match op {
                    CompareOp::Eq => Some(S::cmp(&name, "=", v)),
                    // A missing number is null in KQL (the row drops); a missing string is
                    // "", which differs from the value (the row stays): `NOT` keeps events
                    // without the field, `!=` does not.
                    CompareOp::Ne if numeric => Some(S::cmp(&name, "!=", v)),
                    CompareOp::Ne => Some(S::not(S::cmp(&name, "=", v))),
                    _ => None,
                }
            }
            Predicate::Text {
                value,
                test,
                pattern,
                case_sensitive,
                negated,
                ..
            } => {
                let Some(Value::String(s)) = literal(pattern) else {
                    return None;
                };
                if *case_sensitive && !text::caseless(s) {
                    return None;
                }
                let (pre, post) = match test {
                    TextTest::Prefix => ("", "*"),
                    TextTest::Suffix => ("*", ""),
                    TextTest::Substring => ("*", "*"),
                    _ => return None,
                };
                if !text::search_safe(s) {
                    return None;
                }
                let name = self.search_field(scope, value)?;
                let quoted = text::search_pattern(&format!("{pre}{s}{post}"));
                let term = S::cmp(&name, "=", quoted);
                Some(if *negated { S::not(term) } else { term })
            }
            Predicate::InList {
                value,
                list,
                test: ListTest::Equals,
                case_sensitive,
                negated,
                ..
            } => {
                if list.is_empty() {
                    return None;
                }
                let values = list
                    .iter()
                    .map(|v| search_value(v, *case_sensitive))
                    .collect::<Option<Vec<_>>>()?;
                let name = self.search_field(scope, value)?;
                let term = if values.len() == 1 {
                    S::cmp(&name, "=", values[0].clone())
                } else {
                    S::term(format!("{name} IN ({})", values.join(", ")))
                };
                Some(if *negated { S::not(term) } else { term })
            }
            _ => None,
        }
    }

    /// A predicate as a where expression (always possible; what is not exact is said).
    pub(super) fn where_pred(&mut self, scope: &Scope, p: &Predicate) -> E {
        match p {
            Predicate::And { all } => {
                let items = all.iter().map(|q| self.where_pred(scope, q)).collect();
                E::and(items)
            }
            Predicate::Or { any } => {
                let items = any.iter().map(|q| self.where_pred(scope, q)).collect();
                E::or(items)
            }
            Predicate::Constant { value } => E::call(if *value { "true" } else { "false" }, vec![]),
            Predicate::Compare {
                left,
                op: cmp,
                right,
                case_sensitive,
                ..
            } => self.where_compare(scope, left, *cmp, right, *case_sensitive),
            Predicate::Text {
                value,
                test,
                pattern,
                case_sensitive,
                negated,
                at,
            } => self.where_text(scope, value, *test, pattern, *case_sensitive, *negated, *at),
            Predicate::Regex {
                value,
                pattern,
                negated,
                ..
            } => {
                let (v, _) = self.scalar(scope, value);
                let m = E::call("match", vec![v.clone(), E::str(pattern)]);
                if *negated {
                    // KQL: "" does not match (almost any) pattern, so the row stays.
                    E::or(vec![E::call("isnull", vec![v]), E::not(m)])
                } else {
                    m
                }
            }
            Predicate::InList {
                value,
                list,
                test,
                case_sensitive,
                negated,
                at,
            } => self.where_list(scope, value, list, *test, *case_sensitive, *negated, *at),
            Predicate::InQuery {
                value,
                query,
                test,
                case_sensitive,
                negated,
                at,
                ..
            } => {
                if let Some(list) = inline_values(query) {
                    return self.where_list(
                        scope,
                        value,
                        &list,
                        *test,
                        *case_sensitive,
                        *negated,
                        *at,
                    );
                }
                self.warn(
                    Code::NotTranslated,
                    Some(*at),
                    "`has_all` against a sub-query is not translated: the condition is left out (matches more)",
                );
                E::call("true", vec![])
            }
            Predicate::Range {
                value,
                low,
                high,
                negated,
                ..
            } => {
                let (v, _) = self.scalar(scope, value);
                let (lo, _) = self.scalar(scope, low);
                let (hi, _) = self.scalar(scope, high);
                let range = E::and(vec![
                    E::bin(Op::Ge, v.clone(), lo),
                    E::bin(Op::Le, v.clone(), hi),
                ]);
                if *negated {
                    E::and(vec![E::call("isnotnull", vec![v]), E::not(range)])
                } else {
                    range
                }
            }
            Predicate::Cidr {
                value,
                ranges,
                negated,
                ..
            } => {
                let (v, _) = self.scalar(scope, value);
                let ranges: Vec<String> = ranges
                    .iter()
                    .map(|r| {
                        if r.contains('/') {
                            r.clone()
                        } else {
                            format!("{r}/32")
                        }
                    })
                    .collect();
                cidr(v, &ranges, *negated)
            }
            Predicate::PrivateIp { value, negated, .. } => {
                let (v, _) = self.scalar(scope, value);
                let ranges = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].map(String::from);
                cidr(v, &ranges, *negated)
            }
            Predicate::Empty {
                value,
                null_only,
                negated,
                ..
            } => {
                let (v, _) = self.scalar(scope, value);
                empty_test(v, *null_only, *negated)
            }
            Predicate::Expr { value, negated, .. } => {
                let (v, kind) = self.scalar(scope, value);
                match (kind, negated) {
                    (Kind::Bool, false) => v,
                    (Kind::Bool, true) => E::not(v),
                    (_, false) => E::eq(v, E::str("true")),
                    // A null boolean is neither: KQL drops the row either way.
                    (_, true) => E::eq(v, E::str("false")),
                }
            }
        }
    }

    fn where_compare(
        &mut self,
        scope: &Scope,
        left: &Scalar,
        cmp: CompareOp,
        right: &Scalar,
        case_sensitive: bool,
    ) -> E {
        // A boolean expression compares as the text eval stores it ("true"/"false").
        let l = value_of(self.scalar(scope, left));
        let r = value_of(self.scalar(scope, right));
        let string_literal = |s: &Scalar| match literal(s) {
            Some(Value::String(v)) => Some(v.clone()),
            _ => None,
        };
        let equality = matches!(cmp, CompareOp::Eq | CompareOp::Ne);
        let side = |e: &E, s: &Scalar| match string_literal(s) {
            Some(v) if !case_sensitive && equality => E::str(&lower_literal(&v)),
            Some(_) => e.clone(),
            None if !case_sensitive && equality => E::call("lower", vec![e.clone()]),
            None => e.clone(),
        };
        let test = E::bin(op(cmp), side(&l, left), side(&r, right));
        // A missing string is "" in KQL: when the test holds for "", a missing field must
        // pass too.
        let (subject, lit) = match (string_literal(left), string_literal(right)) {
            (None, Some(v)) => (l, v),
            (Some(v), None) => (r, v),
            _ => return test,
        };
        let holds_for_empty = match cmp {
            CompareOp::Eq => lit.is_empty(),
            CompareOp::Ne => !lit.is_empty(),
            _ => false,
        };
        if holds_for_empty {
            E::or(vec![E::call("isnull", vec![subject]), test])
        } else {
            test
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn where_text(
        &mut self,
        scope: &Scope,
        value: &Scalar,
        test: TextTest,
        pattern: &Scalar,
        case_sensitive: bool,
        negated: bool,
        at: Span,
    ) -> E {
        let (v, _) = self.scalar(scope, value);
        let flags = if case_sensitive { "" } else { "(?i)" };
        let positive = match literal(pattern) {
            Some(Value::String(s)) => {
                let esc = text::regex_escape(s);
                let re = match test {
                    TextTest::Term => format!("{TERM_START}{esc}{TERM_END}"),
                    TextTest::TermPrefix => format!("{TERM_START}{esc}"),
                    TextTest::TermSuffix => format!("{esc}{TERM_END}"),
                    TextTest::Substring => esc,
                    TextTest::Prefix => format!("^{esc}"),
                    // `$` would also match before a final newline.
                    TextTest::Suffix => format!("{esc}\\z"),
                    TextTest::Like => {
                        return self.like(v, pattern, scope, case_sensitive, negated);
                    }
                };
                E::call("match", vec![v.clone(), E::str(&format!("{flags}{re}"))])
            }
            _ => {
                let (p, _) = self.scalar(scope, pattern);
                let (v2, p) = if case_sensitive {
                    (v.clone(), p)
                } else {
                    (E::call("lower", vec![v.clone()]), E::call("lower", vec![p]))
                };
                let len = E::call("len", vec![p.clone()]);
                match test {
                    TextTest::Prefix => E::eq(E::call("substr", vec![v2, E::int(1), len]), p),
                    TextTest::Suffix => E::eq(
                        E::call(
                            "substr",
                            vec![
                                v2.clone(),
                                E::bin(
                                    Op::Add,
                                    E::bin(Op::Sub, E::call("len", vec![v2]), len),
                                    E::int(1),
                                ),
                            ],
                        ),
                        p,
                    ),
                    TextTest::Like => return self.like(v, pattern, scope, case_sensitive, negated),
                    other => {
                        if other != TextTest::Substring {
                            self.warn(
                                Code::MatchesMore,
                                Some(at),
                                "a term test (`has`) against a computed value is written as a substring test: matches more",
                            );
                        }
                        E::bin(
                            Op::Gt,
                            E::call("mvcount", vec![E::call("split", vec![v2, p])]),
                            E::int(1),
                        )
                    }
                }
            }
        };
        if negated {
            let empty_pattern = matches!(literal(pattern), Some(Value::String(s)) if s.is_empty());
            if empty_pattern {
                E::not(positive)
            } else {
                E::or(vec![E::call("isnull", vec![v]), E::not(positive)])
            }
        } else {
            positive
        }
    }

    fn like(
        &mut self,
        v: E,
        pattern: &Scalar,
        scope: &Scope,
        case_sensitive: bool,
        negated: bool,
    ) -> E {
        let (p, _) = self.scalar(scope, pattern);
        let m = if case_sensitive {
            E::call("like", vec![v.clone(), p])
        } else {
            E::call(
                "like",
                vec![E::call("lower", vec![v.clone()]), E::call("lower", vec![p])],
            )
        };
        if negated {
            E::or(vec![E::call("isnull", vec![v]), E::not(m)])
        } else {
            m
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn where_list(
        &mut self,
        scope: &Scope,
        value: &Scalar,
        list: &[Value],
        test: ListTest,
        case_sensitive: bool,
        negated: bool,
        at: Span,
    ) -> E {
        let (v, _) = self.scalar(scope, value);
        if list.is_empty() {
            // `in ()` holds for nothing, `has_all ()` for everything.
            let holds = matches!(test, ListTest::AllTerms) != negated;
            return E::call(if holds { "true" } else { "false" }, vec![]);
        }
        let strings: Vec<String> = list
            .iter()
            .map(|v| match v {
                Value::String(s) | Value::Guid(s) => s.clone(),
                Value::Long(n) => n.to_string(),
                Value::Real(r) => text::number(*r),
                Value::Bool(b) => b.to_string(),
                Value::Dynamic(serde_json::Value::String(s)) => s.clone(),
                other => {
                    self.warn(
                        Code::MatchesFewer,
                        Some(at),
                        format!("list value {other:?} is compared as text"),
                    );
                    String::new()
                }
            })
            .collect();
        let positive = match test {
            ListTest::Equals => {
                let mut args = vec![if case_sensitive {
                    v.clone()
                } else {
                    E::call("lower", vec![v.clone()])
                }];
                for (value, s) in list.iter().zip(&strings) {
                    args.push(match value {
                        Value::Long(_) | Value::Real(_) => E::Num(s.clone()),
                        _ if case_sensitive => E::str(s),
                        _ => E::str(&lower_literal(s)),
                    });
                }
                E::call("in", args)
            }
            ListTest::AnyTerm => {
                let alternatives: Vec<String> =
                    strings.iter().map(|s| text::regex_escape(s)).collect();
                let re = format!("(?i){TERM_START}({}){TERM_END}", alternatives.join("|"));
                E::call("match", vec![v.clone(), E::str(&re)])
            }
            ListTest::AllTerms => E::and(
                strings
                    .iter()
                    .map(|s| {
                        let re = format!("(?i){TERM_START}{}{TERM_END}", text::regex_escape(s));
                        E::call("match", vec![v.clone(), E::str(&re)])
                    })
                    .collect(),
            ),
        };
        let has_empty = test == ListTest::Equals && strings.iter().any(String::is_empty);
        match (negated, has_empty) {
            (false, false) => positive,
            (false, true) => E::or(vec![E::call("isnull", vec![v]), positive]),
            (true, false) => E::or(vec![E::call("isnull", vec![v]), E::not(positive)]),
            (true, true) => E::and(vec![E::call("isnotnull", vec![v]), E::not(positive)]),
        }
    }
}

/// `ipv4_is_in_range`: KQL gives null (the row drops) for text that is not an IPv4
/// address, so the negated form first checks that the value is one.
fn cidr(v: E, ranges: &[String], negated: bool) -> E {
    let any = E::or(
        ranges
            .iter()
            .map(|r| E::call("cidrmatch", vec![E::str(r), v.clone()]))
            .collect(),
    );
    if negated {
        E::and(vec![
            E::call("cidrmatch", vec![E::str("0.0.0.0/0"), v]),
            E::not(any),
        ])
    } else {
        any
    }
}

/// `isempty`/`isnotempty` (null or "") and `isnull`/`isnotnull`.
fn empty_test(v: E, null_only: bool, negated: bool) -> E {
    match (null_only, negated) {
        (true, false) => E::call("isnull", vec![v]),
        (true, true) => E::call("isnotnull", vec![v]),
        (false, false) => E::or(vec![
            E::call("isnull", vec![v.clone()]),
            E::eq(v, E::str("")),
        ]),
        (false, true) => E::and(vec![
            E::call("isnotnull", vec![v.clone()]),
            E::bin(Op::Ne, v, E::str("")),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_utc_epochs() {
        assert_eq!(epoch("1970-01-01"), Some(0.0));
        assert_eq!(epoch("2023-01-01T00:00:00Z"), Some(1_672_531_200.0));
        assert_eq!(epoch("2023-01-01 01:00:00.5"), Some(1_672_534_800.5));
        assert_eq!(epoch("yesterday"), None);
    }
}
