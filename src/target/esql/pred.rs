//! Conditions and values: KQL predicates and scalars as ES|QL expressions that keep the
//! KQL meaning (case, missing strings read as `""`, whole-term matches, unanchored
//! regular expressions).

use crate::diag::Code;
use crate::ir::*;
use crate::target::kql;

use super::expr::{self, E, P, Ty};
use super::lit;
use super::query::{Tx, Why, multi_valued, unquote};
use super::regex;

/// RFC 1918 ranges (`ipv4_is_private`).
const PRIVATE: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

impl Tx<'_> {
    /// A condition. A part that cannot be written is left out and said: inside an `or`
    /// it becomes false (that alternative no longer matches), elsewhere true (the
    /// condition no longer restricts).
    pub fn pred(&mut self, p: &Predicate, in_or: bool) -> P {
        let outer = std::mem::replace(&mut self.missing_is_null, false);
        let r = self.pred_inner(p, in_or);
        self.missing_is_null = outer;
        r
    }

    fn pred_inner(&mut self, p: &Predicate, in_or: bool) -> P {
        match p {
            Predicate::And { all } => {
                let parts = all.iter().map(|q| self.pred(q, false)).collect();
                expr::and(parts)
            }
            Predicate::Or { any } => {
                let parts = any.iter().map(|q| self.pred(q, true)).collect();
                expr::or(parts)
            }
            Predicate::Constant { value } => P::Const(*value),
            _ => match self.leaf(p) {
                Ok(r) => r,
                Err(why) => self.drop_leaf(p, in_or, why),
            },
        }
    }

    fn drop_leaf(&mut self, p: &Predicate, in_or: bool, why: Why) -> P {
        let code = why.code();
        let effect = if in_or {
            "this alternative is left out, so the rule matches fewer events"
        } else {
            "this condition is left out, so the rule matches more events"
        };
        let kql = crate::target::one_line(&kql::predicate(p).to_string());
        self.warn(
            code,
            p.span(),
            format!("`{}`: {}; {effect}", shorten(&kql), why.message()),
        );
        P::Const(!in_or)
    }

    fn leaf(&mut self, p: &Predicate) -> Result<P, Why> {
        match p {
            Predicate::Compare {
                left,
                op,
                right,
                case_sensitive,
                ..
            } => self.compare(left, *op, right, *case_sensitive),
            Predicate::Text {
                value,
                test,
                pattern,
                case_sensitive,
                negated,
                ..
            } => self.text(value, *test, pattern, *case_sensitive, *negated),
            Predicate::Regex {
                value,
                pattern,
                negated,
                ..
            } => {
                let v = self.text_value(value)?;
                let lucene = regex::translate(pattern).map_err(|why| {
                    Why::Other(format!(
                        "the regular expression cannot be written in Lucene syntax ({why})"
                    ))
                })?;
                let subject = if lucene.lowercase {
                    expr::call("TO_LOWER", std::slice::from_ref(&v), Ty::Str)
                } else {
                    v.clone()
                };
                Ok(guard_negated(
                    &v,
                    expr::matches(&subject, "RLIKE", &lucene.pattern, *negated),
                    *negated,
                ))
            }
            Predicate::InList {
                value,
                list,
                test,
                case_sensitive,
                negated,
                ..
            } => self.in_list(value, list, *test, *case_sensitive, *negated),
            Predicate::InQuery { .. } => self.in_query(p),
            Predicate::Range {
                value,
                low,
                high,
                negated,
                ..
            } => {
                let v = self.scalar(value)?;
                let (lo, hi) = (self.scalar(low)?, self.scalar(high)?);
                let (lo, hi) = (self.coerce(&v, lo), self.coerce(&v, hi));
                Ok(if *negated {
                    expr::or(vec![
                        P::E(expr::cmp(&v, "<", &lo)),
                        P::E(expr::cmp(&v, ">", &hi)),
                    ])
                } else {
                    expr::and(vec![
                        P::E(expr::cmp(&v, ">=", &lo)),
                        P::E(expr::cmp(&v, "<=", &hi)),
                    ])
                })
            }
            Predicate::Cidr {
                value,
                ranges,
                negated,
                ..
            } => {
                let ranges: Vec<String> = ranges.iter().map(|r| cidr(r)).collect();
                self.cidr(value, &ranges, *negated)
            }
            Predicate::PrivateIp { value, negated, .. } => {
                let ranges: Vec<String> = PRIVATE.iter().map(|r| r.to_string()).collect();
                self.cidr(value, &ranges, *negated)
            }
            Predicate::Empty {
                value,
                null_only,
                negated,
                ..
            } => {
                let v = self.scalar(value)?;
                let stringy = matches!(v.ty, Ty::Str | Ty::Any) && !*null_only;
                Ok(match (stringy, negated) {
                    (true, false) => expr::or(vec![
                        P::E(expr::is_null(&v)),
                        P::E(expr::cmp(&v, "==", &E::string(""))),
                    ]),
                    (true, true) => expr::and(vec![
                        P::E(expr::is_not_null(&v)),
                        P::E(expr::cmp(&v, "!=", &E::string(""))),
                    ]),
                    (false, false) => P::E(expr::is_null(&v)),
                    (false, true) => P::E(expr::is_not_null(&v)),
                })
            }
            Predicate::Expr { value, negated, .. } => {
                let v = self.scalar(value)?;
                Ok(P::E(if *negated { expr::not(&v) } else { v }))
            }
            Predicate::And { .. } | Predicate::Or { .. } | Predicate::Constant { .. } => {
                Ok(self.pred(p, false))
            }
        }
    }

    /// A string operand: IP and other typed fields are compared as their text.
    fn text_value(&mut self, value: &Scalar) -> Result<E, Why> {
        let v = self.scalar(value)?;
        Ok(match v.ty {
            Ty::Str | Ty::Any | Ty::Null => v,
            _ => expr::call("TO_STRING", &[v], Ty::Str),
        })
    }

    fn compare(
        &mut self,
        left: &Scalar,
        op: CompareOp,
        right: &Scalar,
        case_sensitive: bool,
    ) -> Result<P, Why> {
        let mut l = self.scalar(left)?;
        let mut r = self.scalar(right)?;
        let op_text = match op {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        };
        let equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
        // Keep the literal on the right.
        if is_literal(&l) && !is_literal(&r) {
            std::mem::swap(&mut l, &mut r);
            let flipped = match op_text {
                "<" => ">",
                "<=" => ">=",
                ">" => "<",
                ">=" => "<=",
                other => other,
            };
            return self.compare_exprs(l, flipped, r, case_sensitive, equality);
        }
        self.compare_exprs(l, op_text, r, case_sensitive, equality)
    }

    fn compare_exprs(
        &mut self,
        l: E,
        op: &str,
        r: E,
        case_sensitive: bool,
        equality: bool,
    ) -> Result<P, Why> {
        let r_string = string_literal(&r);
        // IP fields: text tests as text; equality with an address as an address.
        if l.ty == Ty::Ip && r_string.is_some() {
            let s = r_string.unwrap_or_default();
            if equality {
                let eq = op == "==";
                if s.is_empty() {
                    return Ok(P::E(if eq {
                        expr::is_null(&l)
                    } else {
                        expr::is_not_null(&l)
                    }));
                }
                if s.parse::<std::net::IpAddr>().is_ok() && case_sensitive {
                    let ip = expr::call("TO_IP", &[E::string(&s)], Ty::Ip);
                    let test = P::E(expr::cmp(&l, op, &ip));
                    return Ok(if eq {
                        test
                    } else {
                        expr::or(vec![P::E(expr::is_null(&l)), test])
                    });
                }
            }
            let l = expr::call("TO_STRING", &[l], Ty::Str);
            return self.compare_exprs(l, op, r, case_sensitive, equality);
        }
        // KQL converts between a string column and a number.
        let r = self.coerce(&l, r);
        let l = match (l.ty, r.ty) {
            (Ty::Str, Ty::Num) if !equality => expr::call("TO_DOUBLE", &[l], Ty::Num),
            (Ty::Date, Ty::Str) => l,
            _ => l,
        };
        self.mv_warning(&l);
        let stringy = matches!(l.ty, Ty::Str | Ty::Any) && matches!(r.ty, Ty::Str);
        let (l2, r2) = if !case_sensitive && stringy {
            (lower(&l), lower(&r))
        } else {
            (l.clone(), r.clone())
        };
        if !stringy || !equality {
            return Ok(P::E(expr::cmp(&l2, op, &r2)));
        }
        // A missing string is "" in KQL.
        let eq = op == "==";
        match string_literal(&r) {
            Some(s) if s.is_empty() => Ok(if eq {
                expr::or(vec![P::E(expr::is_null(&l)), P::E(expr::cmp(&l, "==", &r))])
            } else {
                expr::and(vec![
                    P::E(expr::is_not_null(&l)),
                    P::E(expr::cmp(&l, "!=", &r)),
                ])
            }),
            Some(_) => {
                let test = P::E(expr::cmp(&l2, op, &r2));
                Ok(if eq {
                    test
                } else {
                    expr::or(vec![P::E(expr::is_null(&l)), test])
                })
            }
            None => {
                // Two columns: compare their values with missing ones as "".
                let empty = E::string("");
                let lc = expr::call("COALESCE", &[l2, empty.clone()], Ty::Str);
                let rc = expr::call("COALESCE", &[r2, empty], Ty::Str);
                Ok(P::E(expr::cmp(&lc, op, &rc)))
            }
        }
    }

    /// A literal in the type of the value it is compared with (KQL converts: a keyword
    /// `ResultType == 0` compares with `"0"`).
    pub fn coerce(&mut self, value: &E, literal: E) -> E {
        match (value.ty, literal.ty) {
            (Ty::Str, Ty::Num) if is_literal(&literal) => {
                E::string(literal.text.trim_start_matches('+'))
            }
            (Ty::Num, Ty::Str) => match string_literal(&literal) {
                Some(s) if s.trim().parse::<f64>().is_ok() => {
                    let t = s.trim().to_string();
                    E::new(
                        t.clone(),
                        Ty::Num,
                        if t.starts_with('-') {
                            expr::NEG
                        } else {
                            expr::ATOM
                        },
                    )
                }
                _ => literal,
            },
            (Ty::Bool, Ty::Str) => match string_literal(&literal).as_deref() {
                Some(s) if s.eq_ignore_ascii_case("true") => E::bool(true),
                Some(s) if s.eq_ignore_ascii_case("false") => E::bool(false),
                _ => literal,
            },
            (Ty::Date, Ty::Str) => match string_literal(&literal) {
                Some(s) => expr::call("TO_DATETIME", &[E::string(&iso_datetime(&s))], Ty::Date),
                None => literal,
            },
            _ => literal,
        }
    }

    fn mv_warning(&mut self, value: &E) {
        if value.is_column() && multi_valued(&unquote(&value.text)) {
            self.warn(
                Code::MatchesFewer,
                self.here,
                format!(
                    "`{}` is multi-valued in ECS; ES|QL comparisons on a field with several values are null, so such events are missed",
                    unquote(&value.text)
                ),
            );
        }
    }

    fn text(
        &mut self,
        value: &Scalar,
        test: TextTest,
        pattern: &Scalar,
        case_sensitive: bool,
        negated: bool,
    ) -> Result<P, Why> {
        let v = self.text_value(value)?;
        let needle = match pattern {
            Scalar::Literal {
                value: Value::String(s),
            } => s.clone(),
            Scalar::Literal { value: other } => match literal_text(other) {
                Some(s) => s,
                None => return Err(Why::Other("a non-text pattern".into())),
            },
            other => return self.text_column(&v, test, other, case_sensitive, negated),
        };
        if needle.is_empty() {
            // Every string contains, starts and ends with "".
            return Ok(P::Const(!negated));
        }
        self.mv_warning(&v);
        let (subject, needle) = if case_sensitive {
            (v.clone(), needle)
        } else {
            (lower(&v), needle.to_lowercase())
        };
        let test = match test {
            TextTest::Substring => like(
                &subject,
                &format!("*{}*", lit::like_literal(&needle)),
                negated,
            ),
            TextTest::Prefix => like(
                &subject,
                &format!("{}*", lit::like_literal(&needle)),
                negated,
            ),
            TextTest::Suffix => like(
                &subject,
                &format!("*{}", lit::like_literal(&needle)),
                negated,
            ),
            TextTest::Like => like(&subject, &sql_like(&needle), negated),
            TextTest::Term | TextTest::TermPrefix | TextTest::TermSuffix => expr::matches(
                &subject,
                "RLIKE",
                &term_regex(&[needle], test, case_sensitive),
                negated,
            ),
        };
        Ok(guard_negated(&v, test, negated))
    }

    /// A text test against another column (`contains` a column's value).
    fn text_column(
        &mut self,
        v: &E,
        test: TextTest,
        pattern: &Scalar,
        case_sensitive: bool,
        negated: bool,
    ) -> Result<P, Why> {
        let p = self.text_value(pattern)?;
        let (v2, p) = if case_sensitive {
            (v.clone(), p)
        } else {
            (lower(v), lower(&p))
        };
        let e = match test {
            TextTest::Substring => {
                expr::cmp(&expr::call("LOCATE", &[v2, p], Ty::Num), ">", &E::long(0))
            }
            TextTest::Prefix => expr::call("STARTS_WITH", &[v2, p], Ty::Bool),
            TextTest::Suffix => expr::call("ENDS_WITH", &[v2, p], Ty::Bool),
            _ => {
                return Err(Why::Other(
                    "a term test against another column's value has no ES|QL equivalent".into(),
                ));
            }
        };
        Ok(if negated {
            expr::or(vec![P::E(expr::is_null(v)), P::E(expr::not(&e))])
        } else {
            P::E(e)
        })
    }

    fn in_list(
        &mut self,
        value: &Scalar,
        list: &[Value],
        test: ListTest,
        case_sensitive: bool,
        negated: bool,
    ) -> Result<P, Why> {
        let mut items: Vec<Value> = vec![];
        for v in list {
            flatten(v, &mut items);
        }
        match test {
            ListTest::Equals => self.equals_any(value, &items, case_sensitive, negated),
            ListTest::AnyTerm | ListTest::AllTerms => {
                let v = self.text_value(value)?;
                self.mv_warning(&v);
                let terms: Vec<String> = items
                    .iter()
                    .filter_map(literal_text)
                    .map(|t| if case_sensitive { t } else { t.to_lowercase() })
                    .collect();
                if terms.is_empty() {
                    // has_any of nothing is false; has_all of nothing is true.
                    return Ok(P::Const((test == ListTest::AllTerms) != negated));
                }
                let subject = if case_sensitive { v.clone() } else { lower(&v) };
                let p = if test == ListTest::AnyTerm {
                    P::E(expr::matches(
                        &subject,
                        "RLIKE",
                        &term_regex(&terms, TextTest::Term, case_sensitive),
                        false,
                    ))
                } else {
                    expr::and(
                        terms
                            .iter()
                            .map(|t| {
                                P::E(expr::matches(
                                    &subject,
                                    "RLIKE",
                                    &term_regex(
                                        std::slice::from_ref(t),
                                        TextTest::Term,
                                        case_sensitive,
                                    ),
                                    false,
                                ))
                            })
                            .collect(),
                    )
                };
                Ok(if negated {
                    let e = p.expr();
                    expr::or(vec![P::E(expr::is_null(&v)), P::E(expr::not(&e))])
                } else {
                    p
                })
            }
        }
    }

    fn equals_any(
        &mut self,
        value: &Scalar,
        items: &[Value],
        case_sensitive: bool,
        negated: bool,
    ) -> Result<P, Why> {
        let mut v = self.scalar(value)?;
        if items.is_empty() {
            return Ok(P::Const(negated));
        }
        self.mv_warning(&v);
        let mut has_empty = false;
        let mut lits: Vec<E> = vec![];
        for item in items {
            let e = self
                .value(item)
                .map_err(|_| Why::Other("a list value has no ES|QL form".into()))?;
            if string_literal(&e).is_some_and(|s| s.is_empty()) {
                has_empty = true;
                continue;
            }
            if v.ty == Ty::Ip {
                // Only addresses can equal an IP field.
                match string_literal(&e).and_then(|s| s.parse::<std::net::IpAddr>().ok().map(|_| s))
                {
                    Some(s) if case_sensitive => {
                        lits.push(expr::call("TO_IP", &[E::string(&s)], Ty::Ip));
                    }
                    _ if string_literal(&e).is_some() => {
                        // Text that is not an address: compare as text instead.
                        v = expr::call("TO_STRING", &[v], Ty::Str);
                        return self.equals_any_text(v, items, case_sensitive, negated);
                    }
                    _ => lits.push(e),
                }
                continue;
            }
            let e = self.coerce(&v, e);
            let e = if !case_sensitive { lower(&e) } else { e };
            if !lits.contains(&e) {
                lits.push(e);
            }
        }
        self.finish_in(v, lits, has_empty, case_sensitive, negated)
    }

    fn equals_any_text(
        &mut self,
        v: E,
        items: &[Value],
        case_sensitive: bool,
        negated: bool,
    ) -> Result<P, Why> {
        let mut has_empty = false;
        let mut lits = vec![];
        for item in items {
            let Some(s) = literal_text(item) else {
                continue;
            };
            if s.is_empty() {
                has_empty = true;
                continue;
            }
            let e = E::string(&if case_sensitive { s } else { s.to_lowercase() });
            if !lits.contains(&e) {
                lits.push(e);
            }
        }
        self.finish_in(v, lits, has_empty, case_sensitive, negated)
    }

    fn finish_in(
        &mut self,
        v: E,
        lits: Vec<E>,
        has_empty: bool,
        case_sensitive: bool,
        negated: bool,
    ) -> Result<P, Why> {
        let stringy = matches!(v.ty, Ty::Str | Ty::Any);
        let subject = if !case_sensitive && stringy {
            lower(&v)
        } else {
            v.clone()
        };
        let test = match lits.len() {
            0 => P::Const(false),
            1 => P::E(expr::cmp(
                &subject,
                if negated { "!=" } else { "==" },
                &lits[0],
            )),
            _ => P::E(expr::in_list(&subject, &lits, negated)),
        };
        let test = if negated && lits.is_empty() {
            P::Const(true)
        } else {
            test
        };
        // A missing value is "" (strings) or null (others, which no list holds).
        let missing_is_empty = stringy || v.ty == Ty::Ip;
        Ok(match (negated, has_empty && missing_is_empty) {
            (false, false) => test,
            (false, true) => expr::or(vec![
                P::E(expr::is_null(&v)),
                if stringy {
                    expr::or(vec![P::E(expr::cmp(&v, "==", &E::string(""))), test])
                } else {
                    test
                },
            ]),
            (true, false) if stringy || v.ty == Ty::Ip => {
                expr::or(vec![P::E(expr::is_null(&v)), test])
            }
            (true, false) => test,
            (true, true) => expr::and(vec![
                P::E(expr::is_not_null(&v)),
                if stringy {
                    P::E(expr::cmp(&v, "!=", &E::string("")))
                } else {
                    P::Const(true)
                },
                test,
            ]),
        })
    }

    fn cidr(&mut self, value: &Scalar, ranges: &[String], negated: bool) -> Result<P, Why> {
        let v = self.scalar(value)?;
        let ip = match v.ty {
            Ty::Ip => v,
            _ => expr::call("TO_IP", &[v], Ty::Ip),
        };
        let mut args = vec![ip.clone()];
        args.extend(ranges.iter().map(|r| E::string(r)));
        let test = expr::call("CIDR_MATCH", &args, Ty::Bool);
        if !negated {
            return Ok(P::E(test));
        }
        // KQL's ipv4_* functions are null for other addresses (IPv6), so the negation
        // excludes them too.
        let ipv4 = ranges.iter().all(|r| !r.contains(':'));
        Ok(if ipv4 {
            expr::and(vec![
                P::E(expr::call(
                    "CIDR_MATCH",
                    &[ip, E::string("0.0.0.0/0")],
                    Ty::Bool,
                )),
                P::E(expr::not(&test)),
            ])
        } else {
            P::E(expr::not(&test))
        })
    }

    fn in_query(&mut self, p: &Predicate) -> Result<P, Why> {
        let Predicate::InQuery { query, negated, .. } = p else {
            unreachable!()
        };
        let key = p as *const Predicate as usize;
        if let Some((_, e)) = self.lookup_tests.iter().find(|(k, _)| *k == key) {
            let e = e.clone();
            return Ok(P::E(if *negated { expr::not(&e) } else { e }));
        }
        let source = match &query.source {
            Source::Table { name, .. } => format!("the table {name}"),
            Source::Watchlist { name } => format!("the watchlist {name}"),
            Source::Union { .. } => "a union of tables".into(),
            Source::External { .. } => "externaldata".into(),
            _ => "another query".into(),
        };
        Err(Why::Other(format!(
            "it tests membership in rows of {source}; ES|QL has no sub-queries (only LOOKUP JOIN against a lookup index)"
        )))
    }

    // ---- values ----

    pub fn scalar(&mut self, s: &Scalar) -> Result<E, Why> {
        match s {
            Scalar::Field { path } => match self.field(path) {
                Err(Why::NoEquivalent(f)) if self.missing_is_null => {
                    self.warn(
                        Code::NoEquivalentField,
                        self.here,
                        format!("Elastic has no equivalent of `{f}`: it reads as NULL in this translation"),
                    );
                    Ok(E::null())
                }
                other => other,
            },
            Scalar::Literal { value } => self.value(value),
            Scalar::AllColumns => Err(Why::Other("`*` as a value".into())),
            Scalar::Arith { op, left, right } => {
                let l = self.scalar(left)?;
                let r = self.scalar(right)?;
                let (sym, ty) = match op {
                    ArithOp::Add => (
                        "+",
                        if l.ty == Ty::Date || r.ty == Ty::Date {
                            Ty::Date
                        } else {
                            Ty::Num
                        },
                    ),
                    ArithOp::Sub => (
                        "-",
                        if l.ty == Ty::Date && r.ty != Ty::Date {
                            Ty::Date
                        } else {
                            Ty::Num
                        },
                    ),
                    ArithOp::Mul => ("*", Ty::Num),
                    ArithOp::Div => ("/", Ty::Num),
                    ArithOp::Mod => ("%", Ty::Num),
                };
                if l.ty == Ty::Date && r.ty == Ty::Date && *op == ArithOp::Sub {
                    return Err(Why::Other(
                        "the difference of two datetimes (a timespan) has no ES|QL value; use datetime_diff()".into(),
                    ));
                }
                Ok(expr::arith(&l, sym, &r, ty))
            }
            Scalar::Negate { value } => Ok(expr::neg(&self.scalar(value)?)),
            Scalar::Condition { predicate } => match self.pred_strict(predicate)? {
                P::Const(b) => Ok(E::bool(b)),
                // KQL conditions are never null: a null comparison reads as false.
                P::E(e) => Ok(expr::call("COALESCE", &[e, E::bool(false)], Ty::Bool)),
            },
            Scalar::Choose {
                branches,
                otherwise,
            } => {
                let mut args = vec![];
                let mut ty = Ty::Any;
                for (cond, value) in branches {
                    let c = self.pred_strict(cond)?.expr();
                    let v = self.scalar(value)?;
                    if ty == Ty::Any || ty == Ty::Null {
                        ty = v.ty;
                    }
                    args.push(c);
                    args.push(v);
                }
                let o = self.scalar(otherwise)?;
                if ty == Ty::Any || ty == Ty::Null {
                    ty = o.ty;
                }
                // `iff(c, x, "")` and the like: keep the branches' type for an empty else.
                args.push(o);
                Ok(expr::call("CASE", &args, ty))
            }
            Scalar::Now { offset_seconds } => {
                let now = E::atom("NOW()", Ty::Date);
                if *offset_seconds == 0.0 {
                    return Ok(now);
                }
                let span = expr::span(offset_seconds.abs())
                    .ok_or_else(|| Why::Other("a time offset with no ES|QL time span".into()))?;
                let op = if *offset_seconds < 0.0 { "-" } else { "+" };
                Ok(expr::arith(&now, op, &span, Ty::Date))
            }
            Scalar::Bin { value, size } => {
                let v = self.scalar(value)?;
                let size = self.scalar(size)?;
                if size.ty == Ty::Span {
                    Ok(expr::call("DATE_TRUNC", &[size, v], Ty::Date))
                } else {
                    let floor =
                        expr::call("FLOOR", &[expr::arith(&v, "/", &size, Ty::Num)], Ty::Num);
                    Ok(expr::arith(&floor, "*", &size, Ty::Num))
                }
            }
            Scalar::Call { function, args } => self.call(function, args),
            Scalar::Element { value, index } => {
                // `parse_json(x).key`, `x[0]`: a path into a field.
                if let Some(path) = as_path(s) {
                    return self.field(&path);
                }
                let v = self.scalar(value)?;
                let i = match index.as_ref() {
                    Scalar::Literal {
                        value: Value::Long(i),
                    } => *i,
                    Scalar::Literal {
                        value: Value::String(k),
                    } => {
                        return Err(Why::Other(format!(
                            "the property `{k}` of a computed value: ES|QL has no dynamic values"
                        )));
                    }
                    _ => return Err(Why::Other("an array index that is not a constant".into())),
                };
                Ok(match i {
                    0 => expr::call("MV_FIRST", &[v], Ty::Str),
                    -1 => expr::call("MV_LAST", &[v], Ty::Str),
                    i => expr::call("MV_SLICE", &[v, E::long(i), E::long(i)], Ty::Str),
                })
            }
            Scalar::Subquery { .. } => Err(Why::Other(
                "a scalar sub-query (toscalar) has no ES|QL equivalent".into(),
            )),
        }
    }

    /// A condition used as a value: every part must be written.
    pub fn pred_strict(&mut self, p: &Predicate) -> Result<P, Why> {
        let outer = std::mem::replace(&mut self.missing_is_null, false);
        let r = self.pred_strict_inner(p);
        self.missing_is_null = outer;
        r
    }

    fn pred_strict_inner(&mut self, p: &Predicate) -> Result<P, Why> {
        match p {
            Predicate::And { all } => {
                let mut parts = vec![];
                for q in all {
                    parts.push(self.pred_strict(q)?);
                }
                Ok(expr::and(parts))
            }
            Predicate::Or { any } => {
                let mut parts = vec![];
                for q in any {
                    parts.push(self.pred_strict(q)?);
                }
                Ok(expr::or(parts))
            }
            Predicate::Constant { value } => Ok(P::Const(*value)),
            leaf => self.leaf(leaf),
        }
    }

    pub fn value(&mut self, v: &Value) -> Result<E, Why> {
        Ok(match v {
            Value::Null => E::null(),
            Value::Bool(b) => E::bool(*b),
            Value::Long(n) => E::long(*n),
            Value::Real(r) => {
                if !r.is_finite() {
                    return Err(Why::Other("a number ES|QL cannot write".into()));
                }
                let mut t = format!("{r:?}");
                if !t.contains(['.', 'e', 'E']) {
                    t.push_str(".0");
                }
                E::new(t, Ty::Num, if *r < 0.0 { expr::NEG } else { expr::ATOM })
            }
            Value::String(s) | Value::Guid(s) => E::string(s),
            Value::TimeSpan(s) => {
                expr::span(*s).ok_or_else(|| Why::Other("a time span with no ES|QL form".into()))?
            }
            Value::DateTime(t) => {
                expr::call("TO_DATETIME", &[E::string(&iso_datetime(t))], Ty::Date)
            }
            Value::Dynamic(j) => match j {
                serde_json::Value::String(s) => E::string(s),
                serde_json::Value::Number(n) => E::new(n.to_string(), Ty::Num, expr::ATOM),
                serde_json::Value::Bool(b) => E::bool(*b),
                serde_json::Value::Null => E::null(),
                _ => return Err(Why::Other("a dynamic array or bag as a value".into())),
            },
        })
    }

    fn call(&mut self, function: &str, args: &[Scalar]) -> Result<E, Why> {
        if self.in_stats
            && let Some(e) = self.aggregate_call(function, args)?
        {
            return Ok(e);
        }
        let mut a = || -> Result<Vec<E>, Why> { args.iter().map(|x| self.scalar(x)).collect() };
        let f = function;
        let unsupported = || Why::Other(format!("the function `{f}()` has no ES|QL translation"));
        let one = |name: &str, a: Vec<E>, ty: Ty| -> Result<E, Why> {
            if a.len() != 1 {
                return Err(Why::Other(format!("`{f}()` with {} arguments", a.len())));
            }
            Ok(expr::call(name, &a, ty))
        };
        match f {
            "tostring" => {
                let mut a = a()?;
                if a.len() != 1 {
                    return Err(unsupported());
                }
                let v = a.remove(0);
                Ok(match v.ty {
                    Ty::Str | Ty::Null => v,
                    _ => expr::call("TO_STRING", &[v], Ty::Str),
                })
            }
            "tolower" => one("TO_LOWER", a()?, Ty::Str),
            "toupper" => one("TO_UPPER", a()?, Ty::Str),
            "strlen" => one("LENGTH", a()?, Ty::Num),
            "toint" => one("TO_INTEGER", a()?, Ty::Num),
            "tolong" => one("TO_LONG", a()?, Ty::Num),
            "todouble" | "toreal" | "todecimal" => one("TO_DOUBLE", a()?, Ty::Num),
            "tobool" | "toboolean" => one("TO_BOOLEAN", a()?, Ty::Bool),
            "todatetime" => one("TO_DATETIME", a()?, Ty::Date),
            "abs" => one("ABS", a()?, Ty::Num),
            "sqrt" => one("SQRT", a()?, Ty::Num),
            "exp" => one("EXP", a()?, Ty::Num),
            "log" => one("LOG", a()?, Ty::Num),
            "log10" => one("LOG10", a()?, Ty::Num),
            "reverse" => one("REVERSE", a()?, Ty::Str),
            "array_length" => one("MV_COUNT", a()?, Ty::Num),
            "base64_decode_tostring" => one("FROM_BASE64", a()?, Ty::Str),
            "base64_encode_tostring" => one("TO_BASE64", a()?, Ty::Str),
            "hash_md5" => one("MD5", a()?, Ty::Str),
            "hash_sha1" => one("SHA1", a()?, Ty::Str),
            "hash_sha256" => one("SHA256", a()?, Ty::Str),
            "parse_json" | "parsejson" | "todynamic" | "todynamic_" => {
                let mut a = a()?;
                if a.len() != 1 {
                    return Err(unsupported());
                }
                Ok(a.remove(0))
            }
            "round" => {
                let a = a()?;
                Ok(expr::call("ROUND", &a, Ty::Num))
            }
            "pow" => Ok(expr::call("POW", &a()?, Ty::Num)),
            "max_of" => Ok(expr::call("GREATEST", &a()?, Ty::Any)),
            "min_of" => Ok(expr::call("LEAST", &a()?, Ty::Any)),
            "strcat" => {
                let a = a()?;
                if a.is_empty() {
                    return Ok(E::string(""));
                }
                // strcat reads a missing value as "": CONCAT would be null.
                let parts: Vec<E> = a
                    .into_iter()
                    .map(|x| {
                        let x = if matches!(x.ty, Ty::Str | Ty::Any | Ty::Null) {
                            x
                        } else {
                            expr::call("TO_STRING", &[x], Ty::Str)
                        };
                        if string_literal(&x).is_some() {
                            x
                        } else {
                            expr::call("COALESCE", &[x, E::string("")], Ty::Str)
                        }
                    })
                    .collect();
                if parts.len() == 1 {
                    return Ok(parts.into_iter().next().unwrap_or_else(|| E::string("")));
                }
                Ok(expr::call("CONCAT", &parts, Ty::Str))
            }
            "strcat_delim" => {
                let a = a()?;
                if a.len() < 2 {
                    return Err(unsupported());
                }
                let mut parts = vec![];
                for (i, x) in a[1..].iter().enumerate() {
                    if i > 0 {
                        parts.push(a[0].clone());
                    }
                    parts.push(expr::call("COALESCE", &[x.clone(), E::string("")], Ty::Str));
                }
                Ok(expr::call("CONCAT", &parts, Ty::Str))
            }
            "strcat_array" => Ok(expr::call("MV_CONCAT", &a()?, Ty::Str)),
            "split" => {
                let a = a()?;
                match a.len() {
                    2 => Ok(expr::call("SPLIT", &a, Ty::Str)),
                    3 => {
                        let split = expr::call("SPLIT", &a[..2], Ty::Str);
                        Ok(expr::call(
                            "MV_SLICE",
                            &[split, a[2].clone(), a[2].clone()],
                            Ty::Str,
                        ))
                    }
                    _ => Err(unsupported()),
                }
            }
            "substring" => {
                let a = a()?;
                if !(2..=3).contains(&a.len()) {
                    return Err(unsupported());
                }
                // KQL counts from 0, ES|QL from 1.
                let start = match a[1].text.parse::<i64>() {
                    Ok(n) => E::long(n.saturating_add(1)),
                    Err(_) => expr::arith(&a[1], "+", &E::long(1), Ty::Num),
                };
                let mut args = vec![a[0].clone(), start];
                args.extend(a.get(2).cloned());
                Ok(expr::call("SUBSTRING", &args, Ty::Str))
            }
            "indexof" => {
                let a = a()?;
                if a.len() != 2 {
                    return Err(unsupported());
                }
                let locate = expr::call("LOCATE", &a, Ty::Num);
                Ok(expr::arith(&locate, "-", &E::long(1), Ty::Num))
            }
            "replace_string" if args.len() == 3 => {
                let a = a()?;
                let (Some(from), Some(to)) = (string_literal(&a[1]), string_literal(&a[2])) else {
                    return Err(unsupported());
                };
                let from = java_regex_literal(&from);
                let to = to.replace('\\', "\\\\").replace('$', "\\$");
                Ok(expr::call(
                    "REPLACE",
                    &[a[0].clone(), E::string(&from), E::string(&to)],
                    Ty::Str,
                ))
            }
            "trim" | "trim_start" | "trim_end" => {
                let a = a()?;
                let whitespace = a.len() == 2
                    && string_literal(&a[0]).is_some_and(|s| {
                        matches!(s.as_str(), " " | r"\s" | r"\s+" | r"\s*" | "[ ]" | "[ ]+")
                    });
                if !whitespace {
                    return Err(Why::Other(format!(
                        "`{f}()` with a pattern other than whitespace has no ES|QL equivalent"
                    )));
                }
                let name = match f {
                    "trim" => "TRIM",
                    "trim_start" => "LTRIM",
                    _ => "RTRIM",
                };
                Ok(expr::call(name, &a[1..], Ty::Str))
            }
            "coalesce" => {
                let a = a()?;
                if a.is_empty() {
                    return Err(unsupported());
                }
                if a.iter().all(|x| matches!(x.ty, Ty::Str | Ty::Null)) {
                    // KQL's coalesce skips empty strings too.
                    let mut args = vec![];
                    for x in &a[..a.len() - 1] {
                        if string_literal(x).is_some_and(|s| s.is_empty()) {
                            continue;
                        }
                        args.push(expr::cmp(
                            &expr::call("LENGTH", std::slice::from_ref(x), Ty::Num),
                            ">",
                            &E::long(0),
                        ));
                        args.push(x.clone());
                    }
                    let last = a[a.len() - 1].clone();
                    if args.is_empty() {
                        return Ok(last);
                    }
                    args.push(last);
                    return Ok(expr::call("CASE", &args, Ty::Str));
                }
                let ty = a[0].ty;
                Ok(expr::call("COALESCE", &a, ty))
            }
            "datetime_diff" => {
                let a = a()?;
                let unit = a.first().and_then(string_literal).ok_or_else(unsupported)?;
                if a.len() != 3 {
                    return Err(unsupported());
                }
                let unit = match unit.to_ascii_lowercase().as_str() {
                    u @ ("year" | "quarter" | "month" | "week" | "day" | "hour" | "minute"
                    | "second" | "millisecond" | "microsecond" | "nanosecond") => u.to_string(),
                    _ => return Err(unsupported()),
                };
                Ok(expr::call(
                    "DATE_DIFF",
                    &[E::string(&unit), a[2].clone(), a[1].clone()],
                    Ty::Num,
                ))
            }
            "startofday" | "startofmonth" | "startofyear" if args.len() == 1 => {
                let unit = match f {
                    "startofday" => "1 day",
                    "startofmonth" => "1 month",
                    _ => "1 year",
                };
                let a = a()?;
                Ok(expr::call(
                    "DATE_TRUNC",
                    &[E::atom(unit, Ty::Span), a[0].clone()],
                    Ty::Date,
                ))
            }
            "datetime_part" if args.len() == 2 => {
                let a = a()?;
                let unit = string_literal(&a[0]).ok_or_else(unsupported)?;
                // ChronoField names; KQL's week_of_year (ISO 8601) and quarter have none.
                let part = match unit.to_ascii_lowercase().as_str() {
                    "year" => "year",
                    "month" => "month_of_year",
                    "day" => "day_of_month",
                    "dayofyear" => "day_of_year",
                    "hour" => "hour_of_day",
                    "minute" => "minute_of_hour",
                    "second" => "second_of_minute",
                    "millisecond" => "milli_of_second",
                    "microsecond" => "micro_of_second",
                    "nanosecond" => "nano_of_second",
                    _ => return Err(unsupported()),
                };
                Ok(expr::call(
                    "DATE_EXTRACT",
                    &[E::string(part), a[1].clone()],
                    Ty::Num,
                ))
            }
            "base64_decodestring" => one("FROM_BASE64", a()?, Ty::Str),
            // `isnotempty(x)` used as a value (`countif(isnotempty(x))`).
            "isempty" | "isnotempty" | "isnull" | "isnotnull" if args.len() == 1 => {
                let pred = Predicate::Empty {
                    value: args[0].clone(),
                    null_only: matches!(f, "isnull" | "isnotnull"),
                    negated: matches!(f, "isnotempty" | "isnotnull"),
                    at: Span::default(),
                };
                Ok(self.pred_strict(&pred)?.expr())
            }
            "hourofday" | "getyear" | "getmonth" | "dayofmonth" if args.len() == 1 => {
                let part = match f {
                    "hourofday" => "hour_of_day",
                    "getyear" => "year",
                    "getmonth" => "month_of_year",
                    _ => "day_of_month",
                };
                let a = a()?;
                Ok(expr::call(
                    "DATE_EXTRACT",
                    &[E::string(part), a[0].clone()],
                    Ty::Num,
                ))
            }
            "unixtime_seconds_todatetime" => {
                let a = a()?;
                if a.len() != 1 {
                    return Err(unsupported());
                }
                let ms = expr::arith(&a[0], "*", &E::long(1000), Ty::Num);
                Ok(expr::call("TO_DATETIME", &[ms], Ty::Date))
            }
            "unixtime_milliseconds_todatetime" => one("TO_DATETIME", a()?, Ty::Date),
            "array_slice" => Ok(expr::call("MV_SLICE", &a()?, Ty::Any)),
            "pack_array" => {
                let a = a()?;
                let mut it = a.into_iter();
                let first = it.next().ok_or_else(unsupported)?;
                Ok(it.fold(first, |acc, x| expr::call("MV_APPEND", &[acc, x], Ty::Any)))
            }
            "array_concat" => {
                let a = a()?;
                let mut it = a.into_iter();
                let first = it.next().ok_or_else(unsupported)?;
                Ok(it.fold(first, |acc, x| expr::call("MV_APPEND", &[acc, x], Ty::Any)))
            }
            "strrep" => Ok(expr::call("REPEAT", &a()?, Ty::Str)),
            "column_ifexists" => {
                let name = match args.first() {
                    Some(Scalar::Literal {
                        value: Value::String(n),
                    }) => n.clone(),
                    _ => return Err(unsupported()),
                };
                match self.field(&FieldPath::column(name)) {
                    Ok(e) => Ok(e),
                    Err(_) => match args.get(1) {
                        Some(d) => self.scalar(d),
                        None => Ok(E::null()),
                    },
                }
            }
            "__matches_regex" => {
                let pred = match (args.first(), args.get(1)) {
                    (
                        Some(v),
                        Some(Scalar::Literal {
                            value: Value::String(re),
                        }),
                    ) => Predicate::Regex {
                        value: v.clone(),
                        pattern: re.clone(),
                        negated: false,
                        at: Span::default(),
                    },
                    _ => return Err(unsupported()),
                };
                Ok(self.pred_strict(&pred)?.expr())
            }
            "__unsupported" => {
                let text = match args.first() {
                    Some(Scalar::Literal {
                        value: Value::String(t),
                    }) => t.clone(),
                    _ => String::new(),
                };
                Err(Why::Other(format!(
                    "`{}` is an expression kqlc does not model",
                    shorten(&crate::target::one_line(&text))
                )))
            }
            "extract" => self.extract(args),
            "extract_all" => Err(Why::Other(
                "`extract_all()` (every regex match) has no ES|QL function".into(),
            )),
            "ingestion_time" if args.is_empty() => Ok(E::column("event.ingested", Ty::Date)),
            "arraylength" => one("MV_COUNT", a()?, Ty::Num),
            "string_size" => one("BYTE_LENGTH", a()?, Ty::Num),
            "ceiling" => one("CEIL", a()?, Ty::Num),
            "columnifexists" => self.call("column_ifexists", args),
            "replace_regex" | "replace" if args.len() == 3 => {
                // replace(regex, rewrite, text) is the old spelling of replace_regex(text, regex, rewrite).
                let a = a()?;
                let (text, re, rewrite) = if f == "replace" {
                    (&a[2], &a[0], &a[1])
                } else {
                    (&a[0], &a[1], &a[2])
                };
                let (Some(re), Some(rw)) = (string_literal(re), string_literal(rewrite)) else {
                    return Err(unsupported());
                };
                // KQL's `\1` is Java's `$1`.
                let mut java = String::new();
                let mut chars = rw.chars().peekable();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => java.push('$'),
                        '$' => java.push_str("\\$"),
                        c => java.push(c),
                    }
                }
                Ok(expr::call(
                    "REPLACE",
                    &[text.clone(), E::string(&re), E::string(&java)],
                    Ty::Str,
                ))
            }
            "startofweek" if args.len() == 1 => {
                // KQL weeks start on Sunday, DATE_TRUNC's on Monday.
                let a = a()?;
                let day = E::atom("1 day", Ty::Span);
                let shifted = expr::arith(&a[0], "+", &day, Ty::Date);
                let trunc = expr::call(
                    "DATE_TRUNC",
                    &[E::atom("1 week", Ty::Span), shifted],
                    Ty::Date,
                );
                Ok(expr::arith(&trunc, "-", &day, Ty::Date))
            }
            "countof"
                if matches!(
                    args.get(2),
                    None | Some(Scalar::Literal {
                        value: Value::String(_)
                    })
                ) =>
            {
                let a = a()?;
                if a.len() >= 3 && string_literal(&a[2]).is_some_and(|k| k != "normal") {
                    return Err(Why::Other(
                        "`countof(..., \"regex\")` has no ES|QL function".into(),
                    ));
                }
                let needle = a
                    .get(1)
                    .and_then(string_literal)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(unsupported)?;
                let n = needle.chars().count() as i64;
                let removed = expr::call(
                    "REPLACE",
                    &[
                        a[0].clone(),
                        E::string(&java_regex_literal(&needle)),
                        E::string(""),
                    ],
                    Ty::Str,
                );
                let diff = expr::arith(
                    &expr::call("LENGTH", std::slice::from_ref(&a[0]), Ty::Num),
                    "-",
                    &expr::call("LENGTH", &[removed], Ty::Num),
                    Ty::Num,
                );
                Ok(if n == 1 {
                    diff
                } else {
                    expr::arith(&diff, "/", &E::long(n), Ty::Num)
                })
            }
            "datetime_add" if args.len() == 3 => {
                let a = a()?;
                let (Some(unit), Ok(n)) = (string_literal(&a[0]), a[1].text.parse::<i64>()) else {
                    return Err(unsupported());
                };
                let unit = match unit.to_ascii_lowercase().as_str() {
                    u @ ("year" | "month" | "week" | "day" | "hour" | "minute" | "second"
                    | "millisecond") => u.to_string(),
                    _ => return Err(unsupported()),
                };
                let plural = if n.unsigned_abs() == 1 { "" } else { "s" };
                let span = E::atom(format!("{} {unit}{plural}", n.unsigned_abs()), Ty::Span);
                Ok(expr::arith(
                    &a[2],
                    if n < 0 { "-" } else { "+" },
                    &span,
                    Ty::Date,
                ))
            }
            "format_datetime" if args.len() == 2 => {
                let a = a()?;
                let format = string_literal(&a[1]).ok_or_else(unsupported)?;
                Ok(expr::call(
                    "DATE_FORMAT",
                    &[E::string(&java_date_format(&format)), a[0].clone()],
                    Ty::Str,
                ))
            }
            _ => Err(unsupported()),
        }
    }

    /// A condition given as an argument (`countif(x > 1)`).
    fn condition_arg(&mut self, arg: Option<&Scalar>) -> Result<E, Why> {
        match arg {
            Some(Scalar::Condition { predicate }) => Ok(self.pred_strict(predicate)?.expr()),
            Some(other) => self.scalar(other),
            None => Err(Why::Other("an aggregate without its condition".into())),
        }
    }

    /// `extract(regex, n, text)`: a GROK command with the group named, before the
    /// command that uses the value.
    fn extract(&mut self, args: &[Scalar]) -> Result<E, Why> {
        if self.in_stats {
            return Err(Why::Other("`extract()` inside an aggregate".into()));
        }
        let (
            Some(Scalar::Literal {
                value: Value::String(re),
            }),
            Some(Scalar::Literal {
                value: Value::Long(group),
            }),
            Some(text),
        ) = (args.first(), args.get(1), args.get(2))
        else {
            return Err(Why::Other(
                "`extract()` with a regex or group that is not a constant".into(),
            ));
        };
        let name = self.fresh("extracted");
        let pattern = named_group(re, *group, &name).ok_or_else(|| {
            Why::Other(format!(
                "`extract()`: group {group} of the regex cannot be named for GROK"
            ))
        })?;
        let source = self.text_value(text)?;
        let input = if source.is_column() {
            source.text.clone()
        } else {
            let tmp = self.fresh("extract_input");
            self.push(format!("EVAL {} = {}", lit::ident(&tmp), source.text));
            lit::ident(&tmp)
        };
        self.push(format!("GROK {input} {}", lit::string(&pattern)));
        let value = E::column(&name, Ty::Str);
        Ok(match args.get(3) {
            Some(Scalar::Literal {
                value: Value::String(t),
            }) => match t.as_str() {
                "int" => expr::call("TO_INTEGER", &[value], Ty::Num),
                "long" => expr::call("TO_LONG", &[value], Ty::Num),
                "real" | "double" | "decimal" => expr::call("TO_DOUBLE", &[value], Ty::Num),
                "datetime" => expr::call("TO_DATETIME", &[value], Ty::Date),
                "bool" | "boolean" => expr::call("TO_BOOLEAN", &[value], Ty::Bool),
                _ => value,
            },
            _ => value,
        })
    }

    /// An aggregate call inside a `summarize` expression (`round(avg(x), 2)`).
    fn aggregate_call(&mut self, function: &str, args: &[Scalar]) -> Result<Option<E>, Why> {
        let arg = |tx: &mut Self, i: usize| -> Result<E, Why> {
            match args.get(i) {
                Some(a) => tx.scalar(a),
                None => Err(Why::Other(format!("`{function}()` without an argument"))),
            }
        };
        Ok(Some(match function {
            "count" if args.is_empty() => E::atom("COUNT(*)", Ty::Num),
            "count" => expr::call("COUNT", &[arg(self, 0)?], Ty::Num),
            "countif" => {
                let c = self.condition_arg(args.first())?;
                let case = expr::call("CASE", &[c, E::long(1), E::null()], Ty::Num);
                expr::call("COUNT", &[case], Ty::Num)
            }
            "dcount" => expr::call("COUNT_DISTINCT", &[arg(self, 0)?], Ty::Num),
            "dcountif" | "sumif" | "avgif" | "minif" | "maxif" => {
                let v = arg(self, 0)?;
                let c = self.condition_arg(args.get(1))?;
                let case = expr::call("CASE", &[c, v.clone(), E::null()], v.ty);
                let agg = match function {
                    "dcountif" => "COUNT_DISTINCT",
                    "sumif" => "SUM",
                    "avgif" => "AVG",
                    "minif" => "MIN",
                    _ => "MAX",
                };
                expr::call(agg, &[case], Ty::Num)
            }
            "make_set" | "make_set_if" => {
                let v = arg(self, 0)?;
                let v = if function == "make_set_if" {
                    let c = self.condition_arg(args.get(1))?;
                    expr::call("CASE", &[c, v.clone(), E::null()], v.ty)
                } else {
                    v
                };
                expr::call("VALUES", &[v], Ty::Any)
            }
            "sum" => expr::call("SUM", &[arg(self, 0)?], Ty::Num),
            "avg" => expr::call("AVG", &[arg(self, 0)?], Ty::Num),
            "min" => {
                let a = arg(self, 0)?;
                let ty = a.ty;
                expr::call("MIN", &[a], ty)
            }
            "max" => {
                let a = arg(self, 0)?;
                let ty = a.ty;
                expr::call("MAX", &[a], ty)
            }
            _ => return Ok(None),
        }))
    }
}

/// A value that names a path into a field: `x`, `parse_json(x).a`, `tostring(x.a)`,
/// `x[0].b`.
pub fn as_path(s: &Scalar) -> Option<FieldPath> {
    match s {
        Scalar::Field { path } => Some(path.clone()),
        Scalar::Call { function, args }
            if args.len() == 1
                && matches!(
                    function.as_str(),
                    "parse_json" | "parsejson" | "todynamic" | "tostring"
                ) =>
        {
            as_path(&args[0])
        }
        Scalar::Element { value, index } => {
            let mut p = as_path(value)?;
            match index.as_ref() {
                Scalar::Literal {
                    value: Value::String(k),
                } => p.path.push(PathStep::Key(k.clone())),
                Scalar::Literal {
                    value: Value::Long(i),
                } => p.path.push(PathStep::Index(*i)),
                _ => return None,
            }
            Some(p)
        }
        _ => None,
    }
}

/// `NOT x LIKE ...` is null for a missing `x`; KQL's negated tests are true for "".
fn guard_negated(value: &E, test: E, negated: bool) -> P {
    if negated {
        expr::or(vec![P::E(expr::is_null(value)), P::E(test)])
    } else {
        P::E(test)
    }
}

fn like(subject: &E, pattern: &str, negated: bool) -> E {
    expr::matches(subject, "LIKE", pattern, negated)
}

pub fn lower(e: &E) -> E {
    match string_literal(e) {
        Some(s) => E::string(&s.to_lowercase()),
        None => expr::call("TO_LOWER", std::slice::from_ref(e), Ty::Str),
    }
}

fn is_literal(e: &E) -> bool {
    e.text.starts_with('"')
        || e.text.parse::<f64>().is_ok()
        || matches!(e.text.as_str(), "TRUE" | "FALSE" | "NULL")
}

/// The value of a string literal written by [`lit::string`].
pub fn string_literal(e: &E) -> Option<String> {
    let t = &e.text;
    if e.ty != Ty::Str || !t.starts_with('"') || e.prec != expr::ATOM {
        return None;
    }
    if let Some(inner) = t
        .strip_prefix("\"\"\"")
        .and_then(|s| s.strip_suffix("\"\"\""))
    {
        return Some(inner.to_string());
    }
    let inner = t.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn literal_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) | Value::Guid(s) => Some(s.clone()),
        Value::Long(n) => Some(n.to_string()),
        Value::Real(r) => Some(r.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Dynamic(serde_json::Value::String(s)) => Some(s.clone()),
        Value::Dynamic(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// List items with dynamic arrays spread out (`in (dynamic(["a", "b"]))`).
fn flatten(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Dynamic(serde_json::Value::Array(items)) => {
            for i in items {
                flatten(&Value::Dynamic(i.clone()), out);
            }
        }
        Value::Dynamic(serde_json::Value::String(s)) => out.push(Value::String(s.clone())),
        Value::Dynamic(serde_json::Value::Number(n)) => out.push(match n.as_i64() {
            Some(i) => Value::Long(i),
            None => Value::Real(n.as_f64().unwrap_or_default()),
        }),
        Value::Dynamic(serde_json::Value::Bool(b)) => out.push(Value::Bool(*b)),
        other => out.push(other.clone()),
    }
}

/// The Lucene pattern for KQL's whole-term tests (`has`, `hasprefix`, `hassuffix`,
/// `has_any`): a term is a maximal run of letters and digits, so the needle must have a
/// non-alphanumeric character (or the edge of the value) on each side where it starts
/// or ends with one. Lucene has no `\b`, so the boundary is spelled out; `.*` also
/// matches line breaks in Lucene.
pub fn term_regex(needles: &[String], test: TextTest, case_sensitive: bool) -> String {
    let other = if case_sensitive {
        "[^A-Za-z0-9]"
    } else {
        "[^a-z0-9]"
    };
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let bounded_start = !matches!(test, TextTest::TermSuffix);
    let bounded_end = !matches!(test, TextTest::TermPrefix);
    // Needles that need the same boundaries share one alternation.
    let mut groups: Vec<((bool, bool), Vec<String>)> = vec![];
    for n in needles {
        let start = bounded_start && alnum(n.chars().next());
        let end = bounded_end && alnum(n.chars().last());
        let body = lit::regex_literal(n);
        match groups.iter_mut().find(|(k, _)| *k == (start, end)) {
            Some((_, v)) => {
                if !v.contains(&body) {
                    v.push(body)
                }
            }
            None => groups.push(((start, end), vec![body])),
        }
    }
    let parts: Vec<String> = groups
        .into_iter()
        .map(|((start, end), bodies)| {
            let body = if bodies.len() == 1 {
                bodies[0].clone()
            } else {
                format!("({})", bodies.join("|"))
            };
            let pre = if start {
                format!("(.*{other})?")
            } else {
                ".*".to_string()
            };
            let post = if end {
                format!("({other}.*)?")
            } else {
                ".*".to_string()
            };
            format!("{pre}{body}{post}")
        })
        .collect();
    if parts.len() == 1 {
        parts.into_iter().next().unwrap_or_default()
    } else {
        parts
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// A regex with capture group `group` (0: the whole match) named `name` and every other
/// group made non-capturing, for GROK (whose named groups become columns). `None` when
/// the regex holds what GROK reads as its own syntax (`%{`) or has no such group.
fn named_group(re: &str, group: i64, name: &str) -> Option<String> {
    if re.contains("%{") || group < 0 {
        return None;
    }
    if group == 0 {
        return Some(format!("(?<{name}>{})", strip_names(re)?));
    }
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut count = 0;
    let mut in_class = false;
    let mut found = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.push(c);
                if let Some(&n) = chars.get(i + 1) {
                    out.push(n);
                }
                i += 2;
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => {
                let rest: String = chars[i..].iter().take(4).collect();
                let named = rest.starts_with("(?P<")
                    || (rest.starts_with("(?<")
                        && !rest.starts_with("(?<=")
                        && !rest.starts_with("(?<!"));
                if named || !rest.starts_with("(?") {
                    count += 1;
                    let skip = if named {
                        chars[i..].iter().position(|&c| c == '>')? + 1
                    } else {
                        1
                    };
                    out.push_str(&if count == group {
                        found = true;
                        format!("(?<{name}>")
                    } else {
                        "(?:".to_string()
                    });
                    i += skip;
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    found.then_some(out)
}

/// A regex with its named groups made plain.
fn strip_names(re: &str) -> Option<String> {
    named_group(re, i64::MAX, "unused").or_else(|| {
        // No group numbered that high: every group was made non-capturing.
        let chars: Vec<char> = re.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut in_class = false;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                out.push(c);
                if let Some(&n) = chars.get(i + 1) {
                    out.push(n);
                }
                i += 2;
                continue;
            }
            if c == '[' && !in_class {
                in_class = true;
            } else if c == ']' && in_class {
                in_class = false;
            } else if c == '(' && !in_class {
                let rest: String = chars[i..].iter().take(4).collect();
                let named = rest.starts_with("(?P<")
                    || (rest.starts_with("(?<")
                        && !rest.starts_with("(?<=")
                        && !rest.starts_with("(?<!"));
                if named || !rest.starts_with("(?") {
                    let skip = if named {
                        chars[i..].iter().position(|&c| c == '>')? + 1
                    } else {
                        1
                    };
                    out.push_str("(?:");
                    i += skip;
                    continue;
                }
            }
            out.push(c);
            i += 1;
        }
        Some(out)
    })
}

/// SQL `like` (`%`, `_`) as an ES|QL `LIKE` pattern.
fn sql_like(pattern: &str) -> String {
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            c => out.push_str(&lit::like_literal(&c.to_string())),
        }
    }
    out
}

/// A CIDR for CIDR_MATCH (a bare address is its own /32 or /128).
fn cidr(range: &str) -> String {
    if range.contains('/') {
        range.to_string()
    } else if range.contains(':') {
        format!("{range}/128")
    } else {
        format!("{range}/32")
    }
}

/// A Java regex matching `s` literally (REPLACE takes a regex).
fn java_regex_literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A KQL datetime format (`yyyy-MM-dd HH:mm:ss.fff tt`) as a Java one.
fn java_date_format(f: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = f.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        match c {
            'f' | 'F' => out.push_str(&"S".repeat(run)),
            't' => out.push('a'),
            'y' | 'M' | 'd' | 'H' | 'h' | 'm' | 's' => out.push_str(&c.to_string().repeat(run)),
            c if c.is_ascii_alphabetic() => {
                out.push('\'');
                out.push_str(&c.to_string().repeat(run));
                out.push('\'');
            }
            c => out.push_str(&c.to_string().repeat(run)),
        }
        i += run;
    }
    out
}

/// KQL datetime text as the ISO form TO_DATETIME reads.
fn iso_datetime(t: &str) -> String {
    let t = t.trim();
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, rest)) => (d, rest.trim_end_matches('Z').to_string()),
        None => (t, "00:00:00".to_string()),
    };
    let time = match time.matches(':').count() {
        0 if time.is_empty() => "00:00:00".to_string(),
        1 => format!("{time}:00"),
        _ => time,
    };
    let time = if time.contains('.') {
        time
    } else {
        format!("{time}.000")
    };
    format!("{date}T{time}Z")
}

fn shorten(s: &str) -> String {
    const MAX: usize = 160;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let cut: String = s.chars().take(MAX).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_need_boundaries_only_at_alphanumeric_edges() {
        assert_eq!(
            term_regex(&["sync".into()], TextTest::Term, false),
            "(.*[^a-z0-9])?sync([^a-z0-9].*)?"
        );
        assert_eq!(
            term_regex(&["a".into(), "b c".into()], TextTest::Term, false),
            "(.*[^a-z0-9])?(a|b c)([^a-z0-9].*)?"
        );
        assert_eq!(
            term_regex(&["-x".into()], TextTest::Term, true),
            ".*\\-x([^A-Za-z0-9].*)?"
        );
        assert_eq!(
            term_regex(&["pre".into()], TextTest::TermPrefix, false),
            "(.*[^a-z0-9])?pre.*"
        );
    }

    #[test]
    fn datetimes_become_iso() {
        assert_eq!(iso_datetime("2024-01-02"), "2024-01-02T00:00:00.000Z");
        assert_eq!(iso_datetime("2024-01-02 10:30"), "2024-01-02T10:30:00.000Z");
        assert_eq!(
            iso_datetime("2024-01-02T10:30:05Z"),
            "2024-01-02T10:30:05.000Z"
        );
    }
}
