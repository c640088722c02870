//! The KQL target: the IR printed back as one self-contained Sentinel query (functions
//! inlined, filters merged and simplified). It is built as a KQL syntax tree and printed
//! with the syntax module's printer, so it is always well-formed KQL.

use crate::ir::*;
use crate::syntax::ast::{
    self, Assignment, BinaryOp, Dynamic, Expr, ExprKind, Ident, JoinCondition, JoinKey, ListOp,
    Literal, LogicalOp, Operator, OperatorKind, OperatorOption, ParsePart, Real,
    SortKey as AstSortKey, SortOrder, Span, Statement, StringLit, StringOp, StringTest,
};

/// The KQL target's output: a comment header, then the query. It prints what the IR keeps
/// opaque verbatim, so it adds no diagnostics of its own.
pub fn emit_rule(cx: &super::Context) -> super::Emitted {
    let mut text = super::header("//", cx.rule, cx.notes);
    text.push_str(&emit(cx.detection));
    text.push('\n');
    super::Emitted {
        text,
        diagnostics: vec![],
    }
}

/// The query text for a detection.
pub fn emit(detection: &Detection) -> String {
    let query = ast::Query {
        statements: vec![Statement::Expr(pipeline(&detection.query))],
        span: Span::default(),
    };
    query.to_string()
}

fn expr(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

fn ident(name: &str) -> Ident {
    Ident {
        name: name.to_string(),
        span: Span::default(),
    }
}

fn name(n: &str) -> Expr {
    expr(ExprKind::Name {
        name: n.to_string(),
    })
}

fn string(s: &str) -> Expr {
    expr(ExprKind::Literal {
        value: Literal::String(StringLit {
            value: s.to_string(),
            obfuscated: false,
        }),
    })
}

fn call(function: &str, args: Vec<Expr>) -> Expr {
    expr(ExprKind::Call {
        name: function.to_string(),
        args,
    })
}

fn op(kind: OperatorKind) -> Operator {
    Operator {
        kind,
        span: Span::default(),
    }
}

fn option(name: &str, value: Expr) -> OperatorOption {
    OperatorOption {
        name: name.to_string(),
        value,
    }
}

fn assignment(name: &str, value: Expr) -> Assignment {
    // `Name = Name` says nothing more than `Name`.
    let names = match &value.kind {
        ExprKind::Name { name: n } if n == name => vec![],
        _ => vec![ident(name)],
    };
    Assignment { names, value }
}

pub fn pipeline(p: &Pipeline) -> Expr {
    let (source, mut operators) = source(&p.source);
    for stage in &p.stages {
        operators.extend(stage_operators(stage));
    }
    if operators.is_empty() {
        return source;
    }
    expr(ExprKind::Pipeline {
        source: Box::new(source),
        operators,
    })
}

/// The source expression, and operators it needs right after (the window filter).
fn source(s: &Source) -> (Expr, Vec<Operator>) {
    match s {
        Source::Table {
            name: n, window, ..
        } => {
            let ops = window
                .iter()
                .map(|w| {
                    let op = if w.inclusive {
                        BinaryOp::Ge
                    } else {
                        BinaryOp::Gt
                    };
                    let ago = call("ago", vec![timespan(w.seconds as f64)]);
                    where_op(binary(op, name(&w.column), ago))
                })
                .collect();
            (name(n), ops)
        }
        Source::Union {
            inputs,
            fuzzy,
            source_column,
            inner,
        } => {
            let mut options = vec![];
            if *inner {
                options.push(option("kind", name("inner")));
            }
            if *fuzzy {
                options.push(option("isfuzzy", bool_lit(true)));
            }
            if let Some(c) = source_column {
                options.push(option("withsource", name(c)));
            }
            let tables = inputs.iter().map(pipeline).collect();
            (
                expr(ExprKind::Source {
                    operator: Box::new(op(OperatorKind::Union { options, tables })),
                }),
                vec![],
            )
        }
        Source::Watchlist { name: n } => (call("_GetWatchlist", vec![string(n)]), vec![]),
        Source::Inline { columns, rows } => (
            expr(ExprKind::Source {
                operator: Box::new(op(OperatorKind::Datatable {
                    schema: columns.iter().map(column_decl).collect(),
                    values: rows.iter().flatten().map(value).collect(),
                })),
            }),
            vec![],
        ),
        Source::External {
            columns,
            uris,
            options,
        } => (
            expr(ExprKind::Source {
                operator: Box::new(op(OperatorKind::ExternalData {
                    schema: columns.iter().map(column_decl).collect(),
                    uris: uris.iter().map(|u| string(u)).collect(),
                    with: options.iter().map(|(k, v)| option(k, value(v))).collect(),
                })),
            }),
            vec![],
        ),
        Source::UnresolvedFunction { name: n, args } => {
            (call(n, args.iter().map(scalar).collect()), vec![])
        }
        Source::Unsupported(u) => (reparse_expr(&u.kql), vec![]),
    }
}

fn stage_operators(stage: &Stage) -> Vec<Operator> {
    let one = |kind| vec![op(kind)];
    match stage {
        Stage::Filter { predicate: p, .. } => vec![where_op(predicate(p))],
        Stage::Compute { columns, .. } => one(OperatorKind::Extend {
            columns: columns
                .iter()
                .map(|a| assignment(&a.name, scalar(&a.value)))
                .collect(),
        }),
        Stage::Project { columns, .. } => one(OperatorKind::Project {
            columns: columns
                .iter()
                .map(|a| assignment(&a.name, scalar(&a.value)))
                .collect(),
        }),
        Stage::Drop { columns, .. } => one(OperatorKind::ProjectAway {
            columns: patterns(columns),
        }),
        Stage::Keep { columns, .. } => one(OperatorKind::ProjectKeep {
            columns: patterns(columns),
        }),
        Stage::Rename { renames, .. } => one(OperatorKind::ProjectRename {
            renames: renames
                .iter()
                .map(|r| Assignment {
                    names: vec![ident(&r.new)],
                    value: name(&r.old),
                })
                .collect(),
        }),
        Stage::Reorder { columns, .. } => one(OperatorKind::ProjectReorder {
            columns: patterns(columns).into_iter().map(|c| (c, None)).collect(),
        }),
        Stage::Aggregate {
            keys,
            aggregates,
            having,
            ..
        } => {
            let mut ops = vec![op(OperatorKind::Summarize {
                options: vec![],
                aggregates: aggregates.iter().map(aggregate).collect(),
                by: keys
                    .iter()
                    .map(|k| assignment(&k.name, scalar(&k.value)))
                    .collect(),
            })];
            if let Some(h) = having {
                ops.push(where_op(predicate(h)));
            }
            ops
        }
        Stage::Join {
            kind,
            right,
            keys,
            lookup,
            ..
        } => {
            let kind_name = match kind {
                JoinKind::InnerUnique => "innerunique",
                JoinKind::Inner => "inner",
                JoinKind::LeftOuter => "leftouter",
                JoinKind::RightOuter => "rightouter",
                JoinKind::FullOuter => "fullouter",
                JoinKind::LeftSemi => "leftsemi",
                JoinKind::LeftAnti => "leftanti",
                JoinKind::RightSemi => "rightsemi",
                JoinKind::RightAnti => "rightanti",
            };
            let right = Box::new(pipeline(right));
            let options = vec![option("kind", name(kind_name))];
            let on = JoinCondition::Keys {
                keys: join_keys(keys),
            };
            one(if *lookup {
                OperatorKind::Lookup { options, right, on }
            } else {
                OperatorKind::Join { options, right, on }
            })
        }
        Stage::Expand {
            columns,
            limit,
            item_index,
            bag_as_array,
            ..
        } => one(OperatorKind::MvExpand {
            options: bag_as_array
                .then(|| option("bagexpansion", name("array")))
                .into_iter()
                .chain(item_index.iter().map(|i| option("with_itemindex", name(i))))
                .collect(),
            items: columns
                .iter()
                .map(|c| {
                    let value = scalar(&c.value);
                    let same = matches!(&value.kind, ExprKind::Name { name: n } if *n == c.name);
                    ast::ExpandItem {
                        name: (!same).then(|| ident(&c.name)),
                        value,
                        to_type: c.to_type.map(scalar_type),
                    }
                })
                .collect(),
            limit: limit.map(long),
        }),
        Stage::Parse {
            source: s,
            kind,
            pattern,
            drop_unmatched,
            ..
        } => one(OperatorKind::Parse {
            drop_unmatched: *drop_unmatched,
            options: match kind {
                ParseKind::Simple => vec![],
                ParseKind::Regex => vec![option("kind", name("regex"))],
                ParseKind::Relaxed => vec![option("kind", name("relaxed"))],
            },
            source: scalar(s),
            pattern: pattern
                .iter()
                .map(|p| match p {
                    ParsePiece::Text { text } => ParsePart::Text {
                        value: StringLit {
                            value: text.clone(),
                            obfuscated: false,
                        },
                    },
                    ParsePiece::Skip => ParsePart::Skip,
                    ParsePiece::Capture { name: n, ty } => ParsePart::Capture {
                        name: ident(n),
                        ty: ty.map(scalar_type),
                    },
                })
                .collect(),
        }),
        Stage::Sort { keys, .. } => one(OperatorKind::Sort {
            keys: keys.iter().map(sort_key).collect(),
        }),
        Stage::Limit { count, .. } => one(OperatorKind::Take {
            count: long(*count),
        }),
        Stage::Top { count, key, .. } => one(OperatorKind::Top {
            count: long(*count),
            by: sort_key(key),
        }),
        Stage::Distinct { columns, .. } => one(OperatorKind::Distinct {
            columns: columns
                .iter()
                .map(|a| assignment(&a.name, scalar(&a.value)))
                .collect(),
        }),
        Stage::Count { .. } => one(OperatorKind::Count),
        Stage::UnresolvedInvoke { name: n, args, .. } => one(OperatorKind::Invoke {
            function: call(n, args.iter().map(scalar).collect()),
        }),
        Stage::Unsupported(u) => vec![reparse_operator(&u.kql)],
    }
}

fn join_keys(keys: &[JoinKeyPair]) -> Vec<JoinKey> {
    keys.iter()
        .map(|k| {
            if k.left == k.right {
                JoinKey::Same {
                    column: ident(&k.left),
                }
            } else {
                JoinKey::Pair {
                    left: ident(&k.left),
                    right: ident(&k.right),
                }
            }
        })
        .collect()
}

fn where_op(predicate: Expr) -> Operator {
    op(OperatorKind::Where { predicate })
}

fn patterns(columns: &[String]) -> Vec<ast::ColumnPattern> {
    columns
        .iter()
        .map(|c| ast::ColumnPattern {
            pattern: c.clone(),
            span: Span::default(),
        })
        .collect()
}

fn sort_key(k: &SortKey) -> AstSortKey {
    AstSortKey {
        expr: scalar(&k.value),
        order: Some(if k.descending {
            SortOrder::Desc
        } else {
            SortOrder::Asc
        }),
        nulls: k.nulls_first.map(|first| {
            if first {
                ast::NullsPosition::First
            } else {
                ast::NullsPosition::Last
            }
        }),
    }
}

fn aggregate(a: &Aggregate) -> Assignment {
    let args: Vec<Expr> = a.args.iter().map(scalar).collect();
    let with_condition = |base: &str, mut args: Vec<Expr>| match &a.condition {
        Some(c) => {
            args.push(predicate(c));
            call(&format!("{base}if"), args)
        }
        None => call(base, args),
    };
    let value = match &a.function {
        AggregateFunction::Count => match &a.condition {
            Some(c) => call("countif", vec![predicate(c)]),
            None => call("count", args),
        },
        AggregateFunction::DistinctCount => with_condition("dcount", args),
        AggregateFunction::Sum => with_condition("sum", args),
        AggregateFunction::Avg => with_condition("avg", args),
        AggregateFunction::Min => with_condition("min", args),
        AggregateFunction::Max => with_condition("max", args),
        AggregateFunction::MakeSet | AggregateFunction::MakeList => {
            let base = if a.function == AggregateFunction::MakeSet {
                "make_set"
            } else {
                "make_list"
            };
            let mut args = args;
            let base = match &a.condition {
                Some(c) => {
                    args.push(predicate(c));
                    format!("{base}_if")
                }
                None => base.to_string(),
            };
            if let Some(n) = a.limit {
                args.push(long(n));
            }
            call(&base, args)
        }
        AggregateFunction::ArgMax => call("arg_max", args),
        AggregateFunction::ArgMin => call("arg_min", args),
        AggregateFunction::Any => call("take_any", args),
        AggregateFunction::Other(f) => call(f, args),
        AggregateFunction::Expression => args
            .into_iter()
            .next()
            .unwrap_or_else(|| call("count", vec![])),
    };
    if !a.names.is_empty() {
        Assignment {
            names: a.names.iter().map(|n| ident(n)).collect(),
            value,
        }
    } else if a.name.is_empty() {
        Assignment {
            names: vec![],
            value,
        }
    } else {
        Assignment {
            names: vec![ident(&a.name)],
            value,
        }
    }
}

fn not(e: Expr) -> Expr {
    call("not", vec![e])
}

fn binary(op: BinaryOp, left: Expr, right: Expr) -> Expr {
    expr(ExprKind::Binary {
        op,
        left: Box::new(left),
        right: Box::new(right),
    })
}

pub fn predicate(p: &Predicate) -> Expr {
    match p {
        Predicate::And { all } => expr(ExprKind::Logical {
            op: LogicalOp::And,
            operands: all.iter().map(predicate).collect(),
        }),
        Predicate::Or { any } => expr(ExprKind::Logical {
            op: LogicalOp::Or,
            operands: any.iter().map(predicate).collect(),
        }),
        Predicate::Constant { value } => bool_lit(*value),
        Predicate::Compare {
            left,
            op: cmp,
            right,
            case_sensitive,
            ..
        } => {
            let op = match (cmp, case_sensitive) {
                (CompareOp::Eq, true) => BinaryOp::Eq,
                (CompareOp::Eq, false) => BinaryOp::EqCi,
                (CompareOp::Ne, true) => BinaryOp::NotEq,
                (CompareOp::Ne, false) => BinaryOp::NotEqCi,
                (CompareOp::Lt, _) => BinaryOp::Lt,
                (CompareOp::Le, _) => BinaryOp::Le,
                (CompareOp::Gt, _) => BinaryOp::Gt,
                (CompareOp::Ge, _) => BinaryOp::Ge,
            };
            binary(op, scalar(left), scalar(right))
        }
        Predicate::Text {
            value,
            test,
            pattern,
            case_sensitive,
            negated,
            ..
        } => {
            let test = match test {
                TextTest::Term => StringTest::Has,
                TextTest::TermPrefix => StringTest::HasPrefix,
                TextTest::TermSuffix => StringTest::HasSuffix,
                TextTest::Substring => StringTest::Contains,
                TextTest::Prefix => StringTest::StartsWith,
                TextTest::Suffix => StringTest::EndsWith,
                TextTest::Like => StringTest::Like,
            };
            binary(
                BinaryOp::Str(StringOp {
                    test,
                    negated: *negated,
                    case_sensitive: *case_sensitive,
                }),
                scalar(value),
                scalar(pattern),
            )
        }
        Predicate::Regex {
            value,
            pattern,
            negated,
            ..
        } => {
            let e = binary(
                BinaryOp::Str(StringOp {
                    test: StringTest::MatchesRegex,
                    negated: false,
                    case_sensitive: true,
                }),
                scalar(value),
                string(pattern),
            );
            if *negated { not(e) } else { e }
        }
        Predicate::InList {
            value: v,
            list,
            test,
            case_sensitive,
            negated,
            ..
        } => {
            let (op, wrap_not) = list_op(*test, *case_sensitive, *negated);
            let e = expr(ExprKind::List {
                op,
                operand: Box::new(scalar(v)),
                items: list.iter().map(value).collect(),
            });
            if wrap_not { not(e) } else { e }
        }
        Predicate::InQuery {
            value: v,
            query,
            test,
            case_sensitive,
            negated,
            ..
        } => {
            let (op, wrap_not) = list_op(*test, *case_sensitive, *negated);
            let e = expr(ExprKind::List {
                op,
                operand: Box::new(scalar(v)),
                items: vec![pipeline(query)],
            });
            if wrap_not { not(e) } else { e }
        }
        Predicate::Range {
            value: v,
            low,
            high,
            negated,
            ..
        } => expr(ExprKind::Between {
            negated: *negated,
            operand: Box::new(scalar(v)),
            low: Box::new(scalar(low)),
            high: Box::new(scalar(high)),
        }),
        Predicate::Cidr {
            value: v,
            ranges,
            negated,
            ..
        } => {
            let e = match ranges.as_slice() {
                [one] => call("ipv4_is_in_range", vec![scalar(v), string(one)]),
                many => {
                    let mut args = vec![scalar(v)];
                    args.extend(many.iter().map(|r| string(r)));
                    call("ipv4_is_in_any_range", args)
                }
            };
            if *negated { not(e) } else { e }
        }
        Predicate::PrivateIp {
            value: v, negated, ..
        } => {
            let e = call("ipv4_is_private", vec![scalar(v)]);
            if *negated { not(e) } else { e }
        }
        Predicate::Empty {
            value: v,
            null_only,
            negated,
            ..
        } => {
            let f = match (null_only, negated) {
                (false, false) => "isempty",
                (false, true) => "isnotempty",
                (true, false) => "isnull",
                (true, true) => "isnotnull",
            };
            call(f, vec![scalar(v)])
        }
        Predicate::Expr {
            value: v, negated, ..
        } => {
            let e = scalar(v);
            if *negated { not(e) } else { e }
        }
    }
}

pub fn scalar(s: &Scalar) -> Expr {
    match s {
        Scalar::Field { path } => {
            let mut e = name(&path.column);
            for (i, step) in path.path.iter().enumerate() {
                if path.decoded.contains(&i) {
                    e = call("parse_json", vec![call("tostring", vec![e])]);
                }
                e = match step {
                    PathStep::Key(k) => expr(ExprKind::Member {
                        target: Box::new(e),
                        member: k.clone(),
                    }),
                    PathStep::Index(i) => expr(ExprKind::Index {
                        target: Box::new(e),
                        index: Box::new(long(*i)),
                    }),
                };
            }
            if path.decoded.contains(&path.path.len()) {
                e = call("parse_json", vec![call("tostring", vec![e])]);
            }
            e
        }
        Scalar::Literal { value: v } => value(v),
        Scalar::AllColumns => expr(ExprKind::Star),
        Scalar::Arith { op, left, right } => binary(
            match op {
                ArithOp::Add => BinaryOp::Add,
                ArithOp::Sub => BinaryOp::Sub,
                ArithOp::Mul => BinaryOp::Mul,
                ArithOp::Div => BinaryOp::Div,
                ArithOp::Mod => BinaryOp::Mod,
            },
            scalar(left),
            scalar(right),
        ),
        Scalar::Negate { value: v } => expr(ExprKind::Unary {
            op: ast::UnaryOp::Minus,
            operand: Box::new(scalar(v)),
        }),
        Scalar::Condition { predicate: p } => predicate(p),
        Scalar::Choose {
            branches,
            otherwise,
        } => match branches.as_slice() {
            [(c, v)] => call("iff", vec![predicate(c), scalar(v), scalar(otherwise)]),
            many => {
                let mut args = vec![];
                for (c, v) in many {
                    args.push(predicate(c));
                    args.push(scalar(v));
                }
                args.push(scalar(otherwise));
                call("case", args)
            }
        },
        Scalar::Now { offset_seconds } => {
            if *offset_seconds == 0.0 {
                call("now", vec![])
            } else if *offset_seconds < 0.0 {
                call("ago", vec![timespan(-offset_seconds)])
            } else {
                call("now", vec![timespan(*offset_seconds)])
            }
        }
        Scalar::Bin { value: v, size } => call("bin", vec![scalar(v), scalar(size)]),
        Scalar::Call { function, args } => match (function.as_str(), args.as_slice()) {
            (
                "__unsupported",
                [
                    Scalar::Literal {
                        value: Value::String(kql),
                    },
                ],
            ) => reparse_expr(kql),
            ("__matches_regex", [v, p]) => binary(
                BinaryOp::Str(StringOp {
                    test: StringTest::MatchesRegex,
                    negated: false,
                    case_sensitive: true,
                }),
                scalar(v),
                scalar(p),
            ),
            _ => call(function, args.iter().map(scalar).collect()),
        },
        Scalar::Element { value: v, index } => expr(ExprKind::Index {
            target: Box::new(scalar(v)),
            index: Box::new(scalar(index)),
        }),
        Scalar::Subquery { query } => call("toscalar", vec![pipeline(query)]),
    }
}

/// The KQL list operator for a membership test, and whether it must be wrapped in
/// `not()` (`has_any` and `has_all` have no negated form).
fn list_op(test: ListTest, case_sensitive: bool, negated: bool) -> (ListOp, bool) {
    match (test, case_sensitive, negated) {
        (ListTest::Equals, true, false) => (ListOp::In, false),
        (ListTest::Equals, true, true) => (ListOp::NotIn, false),
        (ListTest::Equals, false, false) => (ListOp::InCi, false),
        (ListTest::Equals, false, true) => (ListOp::NotInCi, false),
        (ListTest::AnyTerm, _, n) => (ListOp::HasAny, n),
        (ListTest::AllTerms, _, n) => (ListOp::HasAll, n),
    }
}

fn bool_lit(b: bool) -> Expr {
    expr(ExprKind::Literal {
        value: Literal::Bool { value: b },
    })
}

fn long(n: i64) -> Expr {
    if n < 0 {
        return expr(ExprKind::Unary {
            op: ast::UnaryOp::Minus,
            operand: Box::new(long(n.unsigned_abs() as i64)),
        });
    }
    expr(ExprKind::Literal {
        value: Literal::Long { value: n },
    })
}

fn timespan(seconds: f64) -> Expr {
    expr(ExprKind::Literal {
        value: Literal::TimeSpan {
            ticks: (seconds * 10_000_000.0).round() as i64,
        },
    })
}

pub fn value(v: &Value) -> Expr {
    let literal = |value| expr(ExprKind::Literal { value });
    match v {
        Value::Null => literal(Literal::Dynamic {
            value: Dynamic::Null,
        }),
        Value::Bool(b) => bool_lit(*b),
        Value::Long(n) => long(*n),
        Value::Real(r) if *r < 0.0 => expr(ExprKind::Unary {
            op: ast::UnaryOp::Minus,
            operand: Box::new(literal(Literal::Real { value: Real(-r) })),
        }),
        Value::Real(r) => literal(Literal::Real { value: Real(*r) }),
        Value::String(s) => string(s),
        Value::TimeSpan(s) if *s < 0.0 => expr(ExprKind::Unary {
            op: ast::UnaryOp::Minus,
            operand: Box::new(timespan(-s)),
        }),
        Value::TimeSpan(s) => timespan(*s),
        Value::DateTime(t) => literal(Literal::DateTime { text: t.clone() }),
        Value::Guid(g) => literal(Literal::Guid { text: g.clone() }),
        Value::Dynamic(j) => literal(Literal::Dynamic { value: dynamic(j) }),
    }
}

fn dynamic(j: &serde_json::Value) -> Dynamic {
    use serde_json::Value as J;
    match j {
        J::Null => Dynamic::Null,
        J::Bool(b) => Dynamic::Scalar(Box::new(Literal::Bool { value: *b })),
        J::Number(n) => Dynamic::Scalar(Box::new(match n.as_i64() {
            Some(i) => Literal::Long { value: i },
            None => Literal::Real {
                value: Real(n.as_f64().unwrap_or(0.0)),
            },
        })),
        J::String(s) => Dynamic::Scalar(Box::new(Literal::String(StringLit {
            value: s.clone(),
            obfuscated: false,
        }))),
        J::Array(items) => Dynamic::Array(items.iter().map(dynamic).collect()),
        J::Object(fields) => Dynamic::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), dynamic(v)))
                .collect(),
        ),
    }
}

fn column_decl(c: &Column) -> ast::ColumnDecl {
    ast::ColumnDecl {
        name: ident(&c.name),
        ty: scalar_type(c.ty),
    }
}

fn scalar_type(t: Type) -> ast::ScalarType {
    match t {
        Type::Bool => ast::ScalarType::Bool,
        Type::DateTime => ast::ScalarType::DateTime,
        Type::Decimal => ast::ScalarType::Decimal,
        Type::Dynamic => ast::ScalarType::Dynamic,
        Type::Guid => ast::ScalarType::Guid,
        Type::Int => ast::ScalarType::Int,
        Type::Long => ast::ScalarType::Long,
        Type::Real => ast::ScalarType::Real,
        Type::String => ast::ScalarType::String,
        Type::TimeSpan => ast::ScalarType::TimeSpan,
    }
}

/// The KQL text of something the IR keeps opaque, read back as an expression. It was
/// printed by the syntax printer, so it parses; if not, it becomes a visible marker.
fn reparse_expr(kql: &str) -> Expr {
    match crate::syntax::parse(kql) {
        Ok(q) => match q.statements.into_iter().next() {
            Some(Statement::Expr(e)) => e,
            _ => name("kqlc_unparsable_fragment"),
        },
        Err(_) => name("kqlc_unparsable_fragment"),
    }
}

fn reparse_operator(kql: &str) -> Operator {
    let text = format!("T | {kql}");
    let parsed =
        crate::syntax::parse(&text)
            .ok()
            .and_then(|q| match q.statements.into_iter().next() {
                Some(Statement::Expr(Expr {
                    kind: ExprKind::Pipeline { mut operators, .. },
                    ..
                })) if operators.len() == 1 => operators.pop(),
                _ => None,
            });
    parsed.unwrap_or_else(|| {
        op(OperatorKind::Where {
            predicate: name("kqlc_unparsable_fragment"),
        })
    })
}
