//! Scalar expressions and conditions: AST -> `Scalar` / `Predicate`.

use crate::diag::Code;
use crate::ir::{
    ArithOp, CompareOp, FieldPath, ListTest, PathStep, Pipeline, Predicate, Scalar, Span, TextTest,
    Value,
};
use crate::syntax::ast::{self, BinaryOp, ExprKind, ListOp, Literal, LogicalOp, StringTest};

use super::Normalizer;
use super::env::{Binding, Env};
use super::predicate::{and, mirror_op, negate, or};

/// KQL functions that return a table.
pub fn is_tabular_function(name: &str) -> bool {
    matches!(
        name,
        "_GetWatchlist" | "table" | "materialize" | "view" | "database" | "cluster" | "union"
    )
}

/// Common KQL scalar functions: a `let` whose value calls one of these is a scalar.
pub fn is_scalar_function(name: &str) -> bool {
    const SCALAR: &[&str] = &[
        "ago",
        "now",
        "datetime_add",
        "datetime_diff",
        "startofday",
        "startofweek",
        "startofmonth",
        "endofday",
        "todatetime",
        "totimespan",
        "tostring",
        "toint",
        "tolong",
        "toreal",
        "todouble",
        "tobool",
        "todynamic",
        "parse_json",
        "parsejson",
        "dynamic",
        "pack",
        "pack_array",
        "bag_pack",
        "strcat",
        "tolower",
        "toupper",
        "split",
        "extract",
        "iff",
        "iif",
        "case",
        "toscalar",
        "range",
        "array_length",
        "bin",
        "floor",
        "round",
        "format_datetime",
        "dcount_hll",
        "hash",
        "base64_decode_tostring",
        "replace_string",
        "trim",
        "substring",
        "strlen",
        "isempty",
        "isnotempty",
        "coalesce",
        "set_union",
        "set_difference",
        "set_intersect",
        "array_concat",
        "zip",
        "not",
        "make_datetime",
        "ipv4_is_private",
        "ipv4_is_in_range",
        "parse_url",
        "parse_path",
        "url_decode",
        "todecimal",
        "toguid",
        "typeof",
        "gettype",
        "abs",
        "log",
        "exp",
        "sqrt",
        "pow",
        "min_of",
        "max_of",
        "rand",
        "new_guid",
        "unixtime_seconds_todatetime",
        "datetime_part",
        "dayofweek",
        "hourofday",
        "getmonth",
        "getyear",
        "indexof",
        "countof",
        "reverse",
        "strcat_array",
        "array_sort_asc",
        "array_sort_desc",
        "bag_keys",
        "bag_merge",
        "tohex",
        "ipv4_compare",
        "parse_ipv4",
        "format_ipv4",
    ];
    SCALAR.contains(&name)
}

/// The time columns whose `> ago(...)` filter is the query window.
pub const TIME_COLUMNS: &[&str] = &["TimeGenerated", "Timestamp"];

impl Normalizer<'_> {
    /// A scalar expression.
    pub(super) fn scalar(&mut self, e: &ast::Expr, env: &Env) -> Scalar {
        match &e.kind {
            ExprKind::Literal { value } => Scalar::Literal {
                value: literal(value),
            },
            ExprKind::Name { name } => match env.get(name) {
                // Inside an operator a column wins over a `let` of the same name.
                Some(Binding::Scalar(_)) if self.is_known_column(name) => {
                    self.report(
                        Code::LetShadowedByColumn,
                        e.span,
                        format!("`{name}` is both a `let` name and a column of the table: Kusto reads the column here"),
                    );
                    Scalar::Field {
                        path: FieldPath::column(name.clone()),
                    }
                }
                Some(Binding::Scalar(s)) => s.clone(),
                Some(Binding::Table(p)) => Scalar::Subquery {
                    query: Box::new(p.clone()),
                },
                _ => Scalar::Field {
                    path: FieldPath::column(name.clone()),
                },
            },
            ExprKind::Star => Scalar::AllColumns,
            ExprKind::Named { value, .. } => self.scalar(value, env),
            ExprKind::Member { target, member } => {
                let base = self.scalar(target, env);
                extend_path(base, PathStep::Key(member.clone()))
            }
            ExprKind::Index { target, index } => {
                let base = self.scalar(target, env);
                let index = self.scalar(index, env);
                match (&base, &index) {
                    (
                        Scalar::Field { .. },
                        Scalar::Literal {
                            value: Value::Long(i),
                        },
                    ) => extend_path(base, PathStep::Index(*i)),
                    _ => Scalar::Element {
                        value: Box::new(base),
                        index: Box::new(index),
                    },
                }
            }
            ExprKind::Call { name, args } => self.call(name, args, e, env),
            ExprKind::Unary { op, operand } => {
                let value = self.scalar(operand, env);
                match (op, value) {
                    (ast::UnaryOp::Plus, v) => v,
                    (
                        ast::UnaryOp::Minus,
                        Scalar::Literal {
                            value: Value::Long(n),
                        },
                    ) => Scalar::Literal {
                        value: Value::Long(-n),
                    },
                    (
                        ast::UnaryOp::Minus,
                        Scalar::Literal {
                            value: Value::Real(n),
                        },
                    ) => Scalar::Literal {
                        value: Value::Real(-n),
                    },
                    (
                        ast::UnaryOp::Minus,
                        Scalar::Literal {
                            value: Value::TimeSpan(n),
                        },
                    ) => Scalar::Literal {
                        value: Value::TimeSpan(-n),
                    },
                    (ast::UnaryOp::Minus, v) => Scalar::Negate { value: Box::new(v) },
                }
            }
            ExprKind::Binary { op, left, right } => match arith_op(*op) {
                Some(op) => {
                    let left = self.scalar(left, env);
                    let right = self.scalar(right, env);
                    fold_arith(op, left, right)
                }
                None => condition(self.predicate(e, env)),
            },
            ExprKind::Logical { .. } | ExprKind::List { .. } | ExprKind::Between { .. } => {
                condition(self.predicate(e, env))
            }
            ExprKind::Pipeline { .. } | ExprKind::Source { .. } => Scalar::Subquery {
                query: Box::new(self.tabular(e, env)),
            },
            ExprKind::MethodCall { .. } | ExprKind::TablePattern { .. } => {
                self.unsupported_scalar(e, "a table reference where a value is expected")
            }
            ExprKind::ClientParameter { name } => {
                self.report(
                    Code::ClientParameter,
                    e.span,
                    format!("`{{{name}}}` is a query template placeholder, not a value"),
                );
                Scalar::Call {
                    function: format!("{{{name}}}"),
                    args: vec![],
                }
            }
        }
    }

    fn unsupported_scalar(&mut self, e: &ast::Expr, what: &str) -> Scalar {
        self.report(
            Code::UnsupportedExpression,
            e.span,
            format!("unsupported: {what}"),
        );
        Scalar::Call {
            function: "__unsupported".into(),
            args: vec![Scalar::Literal {
                value: Value::String(e.to_string()),
            }],
        }
    }

    fn call(&mut self, name: &str, args: &[ast::Expr], e: &ast::Expr, env: &Env) -> Scalar {
        if let Some(Binding::Function(_)) = env.get(name) {
            return self.inline_scalar_function(name, args, e, env);
        }
        let lower = name.to_ascii_lowercase();
        match (lower.as_str(), args) {
            ("ago", [d]) => match self.scalar(d, env) {
                Scalar::Literal {
                    value: Value::TimeSpan(s),
                } => Scalar::Now { offset_seconds: -s },
                other => Scalar::Call {
                    function: "ago".into(),
                    args: vec![other],
                },
            },
            ("now", []) => Scalar::Now {
                offset_seconds: 0.0,
            },
            ("now", [d]) => match self.scalar(d, env) {
                Scalar::Literal {
                    value: Value::TimeSpan(s),
                } => Scalar::Now { offset_seconds: s },
                other => Scalar::Call {
                    function: "now".into(),
                    args: vec![other],
                },
            },
            ("bin" | "floor", [v, size]) => Scalar::Bin {
                value: Box::new(self.scalar(v, env)),
                size: Box::new(self.scalar(size, env)),
            },
            ("iff" | "iif", [c, a, b]) => Scalar::Choose {
                branches: vec![(self.predicate(c, env), self.scalar(a, env))],
                otherwise: Box::new(self.scalar(b, env)),
            },
            ("case", _) if args.len() >= 3 && args.len() % 2 == 1 => {
                let mut branches = vec![];
                for pair in args[..args.len() - 1].chunks(2) {
                    branches.push((self.predicate(&pair[0], env), self.scalar(&pair[1], env)));
                }
                Scalar::Choose {
                    branches,
                    otherwise: Box::new(self.scalar(&args[args.len() - 1], env)),
                }
            }
            ("not", [_]) => condition(self.predicate(e, env)),
            ("toscalar", [q]) => Scalar::Subquery {
                query: Box::new(self.tabular(q, env)),
            },
            // `parse_json(tostring(x.y)).z` is the path `x.y.z`, with the decoding step
            // recorded: it also parses `x.y` when that holds JSON text.
            ("parse_json" | "parsejson" | "todynamic", [v]) => match self.scalar(v, env) {
                Scalar::Call { function, args }
                    if function == "tostring"
                        && matches!(args.as_slice(), [Scalar::Field { .. }]) =>
                {
                    let Some(Scalar::Field { mut path }) = args.into_iter().next() else {
                        unreachable!()
                    };
                    let at = path.path.len();
                    if !path.decoded.contains(&at) {
                        path.decoded.push(at);
                    }
                    Scalar::Field { path }
                }
                other => Scalar::Call {
                    function: "parse_json".into(),
                    args: vec![other],
                },
            },
            _ => Scalar::Call {
                function: canonical_function(&lower, name),
                args: args.iter().map(|a| self.scalar(a, env)).collect(),
            },
        }
    }

    /// A call of a `let` function in a scalar position.
    fn inline_scalar_function(
        &mut self,
        name: &str,
        args: &[ast::Expr],
        e: &ast::Expr,
        env: &Env,
    ) -> Scalar {
        let Some(Binding::Function(f)) = env.get(name).cloned() else {
            unreachable!()
        };
        match self.bind_call(&f, args, None, e.span, env) {
            Some(call_env) => {
                let Some(ast::Statement::Expr(result)) = f.body.last() else {
                    return self.unsupported_scalar(e, "a function without a result");
                };
                let outer_call = self.call_site;
                if f.workspace && outer_call.is_none() {
                    self.call_site = Some(e.span);
                }
                let mut body_env = call_env;
                for s in &f.body[..f.body.len() - 1] {
                    if let ast::Statement::Let(l) = s {
                        let b = self.binding(&l.value, &body_env);
                        body_env.bind(&l.name.name, b);
                    }
                }
                self.depth += 1;
                let value = self.scalar(result, &body_env);
                self.depth -= 1;
                self.call_site = outer_call;
                value
            }
            None => self.unsupported_scalar(e, "this function call"),
        }
    }

    /// A condition.
    pub(super) fn predicate(&mut self, e: &ast::Expr, env: &Env) -> Predicate {
        match &e.kind {
            ExprKind::Logical { op, operands } => {
                let parts = operands.iter().map(|o| self.predicate(o, env)).collect();
                match op {
                    LogicalOp::And => and(parts),
                    LogicalOp::Or => or(parts),
                }
            }
            ExprKind::Call { name, args } if name == "not" && args.len() == 1 => {
                negate(self.predicate(&args[0], env))
            }
            ExprKind::Call { name, args } => self.predicate_call(name, args, e, env),
            ExprKind::Literal {
                value: Literal::Bool { value },
            } => Predicate::Constant { value: *value },
            ExprKind::Named { name, value } => {
                self.report(
                    Code::NamedPredicate,
                    e.span,
                    format!(
                        "`where {name} = ...` does not compare: Kusto reads it as the value after `=` named `{name}`; did you mean `==`?"
                    ),
                );
                self.predicate(value, env)
            }
            ExprKind::Binary { op, left, right } => self.binary_predicate(*op, left, right, e, env),
            ExprKind::List { op, operand, items } => {
                self.list_predicate(*op, operand, items, e, env)
            }
            ExprKind::Between {
                negated,
                operand,
                low,
                high,
            } => Predicate::Range {
                at: self.at(e.span),
                value: self.scalar(operand, env),
                low: self.scalar(low, env),
                high: self.scalar(high, env),
                negated: *negated,
            },
            _ => match self.scalar(e, env) {
                Scalar::Condition { predicate } => *predicate,
                Scalar::Literal {
                    value: Value::Bool(b),
                } => Predicate::Constant { value: b },
                value => Predicate::Expr {
                    at: self.at(e.span),
                    value,
                    negated: false,
                },
            },
        }
    }

    fn binary_predicate(
        &mut self,
        op: BinaryOp,
        left: &ast::Expr,
        right: &ast::Expr,
        e: &ast::Expr,
        env: &Env,
    ) -> Predicate {
        let (compare, case_sensitive) = match op {
            BinaryOp::Eq => (Some(CompareOp::Eq), true),
            BinaryOp::NotEq => (Some(CompareOp::Ne), true),
            BinaryOp::EqCi => (Some(CompareOp::Eq), false),
            BinaryOp::NotEqCi => (Some(CompareOp::Ne), false),
            BinaryOp::Lt => (Some(CompareOp::Lt), true),
            BinaryOp::Le => (Some(CompareOp::Le), true),
            BinaryOp::Gt => (Some(CompareOp::Gt), true),
            BinaryOp::Ge => (Some(CompareOp::Ge), true),
            _ => (None, true),
        };
        if let Some(op) = compare {
            // `cond == false` is `not cond`: read the other side as a condition.
            let bool_side = |e: &ast::Expr| {
                matches!(
                    e.kind,
                    ExprKind::Literal {
                        value: Literal::Bool { .. }
                    }
                )
            };
            if matches!(op, CompareOp::Eq | CompareOp::Ne) && (bool_side(left) || bool_side(right))
            {
                let (cond, constant) = if bool_side(right) {
                    (left, right)
                } else {
                    (right, left)
                };
                let ExprKind::Literal {
                    value: Literal::Bool { value },
                } = constant.kind
                else {
                    unreachable!()
                };
                let p = self.predicate(cond, env);
                if !matches!(p, Predicate::Expr { .. }) || is_boolean_call(cond) {
                    let holds = (op == CompareOp::Eq) == value;
                    return if holds { p } else { negate(p) };
                }
            }
            let l = self.scalar(left, env);
            let r = self.scalar(right, env);
            return compare_predicate(l, op, r, case_sensitive, self.at(e.span));
        }
        match op {
            BinaryOp::Str(s) => {
                let value = self.scalar(left, env);
                let pattern = self.scalar(right, env);
                if s.test == StringTest::MatchesRegex {
                    return match pattern {
                        Scalar::Literal {
                            value: Value::String(p),
                        } => Predicate::Regex {
                            at: self.at(e.span),
                            value,
                            pattern: p,
                            negated: false,
                        },
                        other => Predicate::Expr {
                            at: self.at(e.span),
                            value: Scalar::Call {
                                function: "__matches_regex".into(),
                                args: vec![value, other],
                            },
                            negated: false,
                        },
                    };
                }
                let test = match s.test {
                    StringTest::Has => TextTest::Term,
                    StringTest::HasPrefix => TextTest::TermPrefix,
                    StringTest::HasSuffix => TextTest::TermSuffix,
                    StringTest::Contains => TextTest::Substring,
                    StringTest::StartsWith => TextTest::Prefix,
                    StringTest::EndsWith => TextTest::Suffix,
                    StringTest::Like => TextTest::Like,
                    StringTest::MatchesRegex => unreachable!(),
                };
                Predicate::Text {
                    at: self.at(e.span),
                    value,
                    test,
                    pattern,
                    case_sensitive: s.case_sensitive,
                    negated: s.negated,
                }
            }
            BinaryOp::SearchField => {
                self.report(
                    Code::UnsupportedExpression,
                    e.span,
                    "unsupported: `Column:value` (search syntax) outside `search`",
                );
                Predicate::Expr {
                    at: self.at(e.span),
                    value: self.unsupported_scalar(e, "`Column:value`"),
                    negated: false,
                }
            }
            _ => match self.scalar(e, env) {
                Scalar::Literal {
                    value: Value::Bool(b),
                } => Predicate::Constant { value: b },
                value => Predicate::Expr {
                    at: self.at(e.span),
                    value,
                    negated: false,
                },
            },
        }
    }

    fn list_predicate(
        &mut self,
        op: ListOp,
        operand: &ast::Expr,
        items: &[ast::Expr],
        e: &ast::Expr,
        env: &Env,
    ) -> Predicate {
        let value = self.scalar(operand, env);
        let (test, case_sensitive, negated) = match op {
            ListOp::In => (ListTest::Equals, true, false),
            ListOp::NotIn => (ListTest::Equals, true, true),
            ListOp::InCi => (ListTest::Equals, false, false),
            ListOp::NotInCi => (ListTest::Equals, false, true),
            ListOp::HasAny => (ListTest::AnyTerm, false, false),
            ListOp::HasAll => (ListTest::AllTerms, false, false),
        };
        // A single tabular item: membership in a sub-query's column.
        if let [item] = items
            && self.is_tabular(item, env)
        {
            let query = self.tabular(item, env);
            let column = match output_column(&query) {
                Some(c) => c,
                None => {
                    self.report(
                        Code::UnknownSubqueryColumn,
                        item.span,
                        "cannot tell which column of this sub-query holds the values",
                    );
                    String::new()
                }
            };
            let _ = e;
            return Predicate::InQuery {
                at: self.at(e.span),
                value,
                query: Box::new(query),
                column,
                test,
                case_sensitive,
                negated,
            };
        }
        // Constants (literals, dynamic arrays, let-bound lists) make a list.
        let mut list = vec![];
        let mut others = vec![];
        for item in items {
            match self.scalar(item, env) {
                Scalar::Literal {
                    value: Value::Dynamic(serde_json::Value::Array(values)),
                } => list.extend(values.into_iter().map(json_value)),
                Scalar::Literal { value } => list.push(value),
                other => others.push(other),
            }
        }
        if others.is_empty() {
            return Predicate::InList {
                at: self.at(e.span),
                value,
                list,
                test,
                case_sensitive,
                negated,
            };
        }
        // Columns in the list: `x in (a, b)` is `x == a or x == b`.
        if test == ListTest::Equals {
            let mut parts: Vec<Predicate> = others
                .into_iter()
                .map(|o| {
                    compare_predicate(
                        value.clone(),
                        CompareOp::Eq,
                        o,
                        case_sensitive,
                        self.at(e.span),
                    )
                })
                .collect();
            if !list.is_empty() {
                parts.push(Predicate::InList {
                    at: self.at(e.span),
                    value: value.clone(),
                    list,
                    test,
                    case_sensitive,
                    negated: false,
                });
            }
            let p = or(parts);
            return if negated { negate(p) } else { p };
        }
        let terms: Vec<Scalar> = others;
        let parts: Vec<Predicate> = terms
            .into_iter()
            .map(|t| Predicate::Text {
                at: self.at(e.span),
                value: value.clone(),
                test: TextTest::Term,
                pattern: t,
                case_sensitive: false,
                negated: false,
            })
            .chain((!list.is_empty()).then(|| Predicate::InList {
                at: self.at(e.span),
                value: value.clone(),
                list,
                test,
                case_sensitive: false,
                negated: false,
            }))
            .collect();
        if test == ListTest::AllTerms {
            and(parts)
        } else {
            or(parts)
        }
    }

    fn predicate_call(
        &mut self,
        name: &str,
        args: &[ast::Expr],
        e: &ast::Expr,
        env: &Env,
    ) -> Predicate {
        let lower = name.to_ascii_lowercase();
        match (lower.as_str(), args) {
            ("isempty" | "isnotempty" | "isnull" | "isnotnull", [v]) => Predicate::Empty {
                at: self.at(e.span),
                value: self.scalar(v, env),
                null_only: lower.contains("null"),
                negated: lower.starts_with("isnot"),
            },
            ("ipv4_is_private", [v]) => Predicate::PrivateIp {
                at: self.at(e.span),
                value: self.scalar(v, env),
                negated: false,
            },
            ("ipv4_is_in_range" | "ipv4_is_in_any_range", [v, rest @ ..]) if !rest.is_empty() => {
                let value = self.scalar(v, env);
                let mut ranges = vec![];
                for r in rest {
                    match self.scalar(r, env) {
                        Scalar::Literal {
                            value: Value::String(s),
                        } => ranges.push(s),
                        Scalar::Literal {
                            value: Value::Dynamic(serde_json::Value::Array(items)),
                        } => {
                            ranges.extend(items.iter().filter_map(|i| i.as_str().map(String::from)))
                        }
                        _ => {
                            return Predicate::Expr {
                                at: self.at(e.span),
                                value: self.scalar(e, env),
                                negated: false,
                            };
                        }
                    }
                }
                Predicate::Cidr {
                    at: self.at(e.span),
                    value,
                    ranges,
                    negated: false,
                }
            }
            _ => match self.scalar(e, env) {
                Scalar::Condition { predicate } => *predicate,
                value => Predicate::Expr {
                    at: self.at(e.span),
                    value,
                    negated: false,
                },
            },
        }
    }
}

/// A call that yields a boolean (so `f(x) == false` is `not f(x)`).
fn is_boolean_call(e: &ast::Expr) -> bool {
    matches!(&e.kind, ExprKind::Call { name, .. } if matches!(
        name.to_ascii_lowercase().as_str(),
        "ipv4_is_private" | "ipv4_is_in_range" | "ipv4_is_in_any_range" | "isempty" | "isnotempty"
            | "isnull" | "isnotnull" | "not" | "tobool" | "set_has_element" | "array_index_of"
            | "ipv4_is_match" | "ipv6_is_match" | "has_any_ipv4" | "has_ipv4" | "isnan" | "isinf"
            | "isfinite" | "isascii" | "isutf8" | "has_any_index"
    ))
}

/// `a op b` as a predicate, with constants folded: `ipv4_is_private(x) == false` is
/// "x is not private", `true == cond` is `cond`.
pub fn compare_predicate(
    left: Scalar,
    op: CompareOp,
    right: Scalar,
    case_sensitive: bool,
    at: Span,
) -> Predicate {
    // Keep the constant on the right.
    let (left, op, right) = match (&left, &right) {
        (Scalar::Literal { .. }, r) if !matches!(r, Scalar::Literal { .. }) => {
            (right, mirror_op(op), left)
        }
        _ => (left, op, right),
    };
    if let (
        Scalar::Condition { predicate },
        Scalar::Literal {
            value: Value::Bool(b),
        },
    ) = (&left, &right)
    {
        let holds = match op {
            CompareOp::Eq => *b,
            CompareOp::Ne => !*b,
            _ => {
                return Predicate::Compare {
                    at,
                    left,
                    op,
                    right,
                    case_sensitive,
                };
            }
        };
        let p = (**predicate).clone();
        return if holds { p } else { negate(p) };
    }
    Predicate::Compare {
        at,
        left,
        op,
        right,
        case_sensitive,
    }
}

fn condition(p: Predicate) -> Scalar {
    match p {
        Predicate::Constant { value } => Scalar::Literal {
            value: Value::Bool(value),
        },
        p => Scalar::Condition {
            predicate: Box::new(p),
        },
    }
}

fn extend_path(base: Scalar, step: PathStep) -> Scalar {
    match base {
        Scalar::Field { mut path } => {
            path.path.push(step);
            Scalar::Field { path }
        }
        // `tostring(x.y)` used as an object again (`parse_json(tostring(x.y)).z`) is
        // handled by parse_json; here the base is some other value.
        other => Scalar::Element {
            value: Box::new(other),
            index: Box::new(match step {
                PathStep::Key(k) => Scalar::Literal {
                    value: Value::String(k),
                },
                PathStep::Index(i) => Scalar::Literal {
                    value: Value::Long(i),
                },
            }),
        },
    }
}

fn arith_op(op: BinaryOp) -> Option<ArithOp> {
    Some(match op {
        BinaryOp::Add => ArithOp::Add,
        BinaryOp::Sub => ArithOp::Sub,
        BinaryOp::Mul => ArithOp::Mul,
        BinaryOp::Div => ArithOp::Div,
        BinaryOp::Mod => ArithOp::Mod,
        _ => return None,
    })
}

/// Arithmetic on two constant durations or numbers is computed (`1d + 12h`).
fn fold_arith(op: ArithOp, left: Scalar, right: Scalar) -> Scalar {
    use Value::*;
    if let (Scalar::Literal { value: l }, Scalar::Literal { value: r }) = (&left, &right) {
        let folded = match (op, l, r) {
            (ArithOp::Add, TimeSpan(a), TimeSpan(b)) => Some(TimeSpan(a + b)),
            (ArithOp::Sub, TimeSpan(a), TimeSpan(b)) => Some(TimeSpan(a - b)),
            (ArithOp::Mul, TimeSpan(a), Long(b)) | (ArithOp::Mul, Long(b), TimeSpan(a)) => {
                Some(TimeSpan(a * *b as f64))
            }
            (ArithOp::Add, Long(a), Long(b)) => a.checked_add(*b).map(Long),
            (ArithOp::Sub, Long(a), Long(b)) => a.checked_sub(*b).map(Long),
            (ArithOp::Mul, Long(a), Long(b)) => a.checked_mul(*b).map(Long),
            _ => None,
        };
        if let Some(value) = folded {
            return Scalar::Literal { value };
        }
    }
    if let (Scalar::Now { offset_seconds }, Scalar::Literal { value: TimeSpan(d) }) =
        (&left, &right)
    {
        match op {
            ArithOp::Add => {
                return Scalar::Now {
                    offset_seconds: offset_seconds + d,
                };
            }
            ArithOp::Sub => {
                return Scalar::Now {
                    offset_seconds: offset_seconds - d,
                };
            }
            _ => {}
        }
    }
    Scalar::Arith {
        op,
        left: Box::new(left),
        right: Box::new(right),
    }
}

/// Function names as KQL spells them today (`parsejson` is `parse_json`).
fn canonical_function(lower: &str, written: &str) -> String {
    match lower {
        "parsejson" => "parse_json".into(),
        "iif" => "iff".into(),
        "todouble" => "toreal".into(),
        _ => written.to_string(),
    }
}

/// The IR value of a literal.
pub fn literal(l: &Literal) -> Value {
    match l {
        Literal::String(s) => Value::String(s.value.clone()),
        Literal::Bool { value } => Value::Bool(*value),
        Literal::Long { value } => Value::Long(*value),
        Literal::Int { value } => Value::Long(*value as i64),
        Literal::Real { value } => Value::Real(value.0),
        Literal::Decimal { text } => Value::Real(text.parse().unwrap_or(0.0)),
        Literal::TimeSpan { ticks } => Value::TimeSpan(*ticks as f64 / 10_000_000.0),
        Literal::DateTime { text } => Value::DateTime(text.clone()),
        Literal::Guid { text } => Value::Guid(text.clone()),
        Literal::Dynamic { value } => match dynamic_json(value) {
            serde_json::Value::Null => Value::Null,
            other => Value::Dynamic(other),
        },
        Literal::Null { .. } => Value::Null,
        Literal::Type { ty } => Value::String(ty.name().to_string()),
    }
}

fn dynamic_json(d: &ast::Dynamic) -> serde_json::Value {
    use serde_json::Value as J;
    match d {
        ast::Dynamic::Null => J::Null,
        ast::Dynamic::Array(items) => J::Array(items.iter().map(dynamic_json).collect()),
        ast::Dynamic::Object(fields) => J::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), dynamic_json(v)))
                .collect(),
        ),
        ast::Dynamic::Scalar(l) => match literal(l) {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(b),
            Value::Long(n) => J::from(n),
            Value::Real(r) => serde_json::Number::from_f64(r).map_or(J::Null, J::Number),
            Value::String(s) | Value::DateTime(s) | Value::Guid(s) => J::String(s),
            Value::TimeSpan(s) => serde_json::Number::from_f64(s).map_or(J::Null, J::Number),
            Value::Dynamic(v) => v,
        },
    }
}

/// A JSON element of a dynamic list, as an IR value.
pub fn json_value(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Long(i),
            None => Value::Real(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(s),
        other => Value::Dynamic(other),
    }
}

/// The single column a sub-query yields, when its last shaping stage says so.
pub fn output_column(p: &Pipeline) -> Option<String> {
    use crate::ir::Stage;
    for stage in p.stages.iter().rev() {
        match stage {
            Stage::Project { columns, .. } | Stage::Distinct { columns, .. }
                if columns.len() == 1 =>
            {
                return Some(columns[0].name.clone());
            }
            Stage::Aggregate {
                keys, aggregates, ..
            } if keys.len() == 1 && aggregates.is_empty() => return Some(keys[0].name.clone()),
            Stage::Filter { .. } | Stage::Sort { .. } | Stage::Limit { .. } | Stage::Top { .. } => {
            }
            _ => return None,
        }
    }
    None
}
