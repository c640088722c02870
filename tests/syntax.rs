//! The KQL parser on hand-written queries: precedence, spellings that mean the same,
//! literals, the printer's round trip, and error messages.

use kqlc::syntax::ast::*;
use kqlc::syntax::{SyntaxErrorKind, parse};

fn ok(text: &str) -> Query {
    parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e:?}"))
}

/// The `where` predicate of `T | where <predicate>`.
fn predicate(text: &str) -> Expr {
    let query = ok(&format!("T | where {text}"));
    let [
        Statement::Expr(Expr {
            kind: ExprKind::Pipeline { operators, .. },
            ..
        }),
    ] = query.statements.as_slice()
    else {
        panic!("not a pipeline: {query:?}")
    };
    match &operators[0].kind {
        OperatorKind::Where { predicate } => predicate.clone(),
        other => panic!("not a where: {other:?}"),
    }
}

fn literal(text: &str) -> Literal {
    match predicate(&format!("x == {text}")).kind {
        ExprKind::Binary { right, .. } => match right.kind {
            ExprKind::Literal { value } => value,
            other => panic!("not a literal: {other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn same(a: &str, b: &str) {
    assert_eq!(
        ok(a),
        ok(b),
        "{a:?} and {b:?} should parse to the same tree"
    );
}

fn different(a: &str, b: &str) {
    assert_ne!(ok(a), ok(b), "{a:?} and {b:?} should differ");
}

#[test]
fn precedence_follows_kql() {
    same("T | where a or b and c", "T | where a or (b and c)");
    same("T | where a and b or c", "T | where (a and b) or c");
    same("T | where x == 1 + 2 * 3", "T | where x == (1 + (2 * 3))");
    same("T | where x - y - z > 0", "T | where ((x - y) - z) > 0");
    same("T | where -a.b > 0", "T | where (-(a.b)) > 0");
    same("T | where a + b in (1, 2)", "T | where (a + b) in (1, 2)");
    same("T | where a and b in (1)", "T | where a and (b in (1))");
    different("T | where a - (b - c) > 0", "T | where a - b - c > 0");
    different("T | where (a or b) and c", "T | where a or b and c");
}

#[test]
fn logical_chains_are_flat() {
    let p = predicate("a == 1 or b == 2 or c == 3 or d == 4");
    match p.kind {
        ExprKind::Logical {
            op: LogicalOp::Or,
            operands,
        } => assert_eq!(operands.len(), 4),
        other => panic!("{other:?}"),
    }
}

#[test]
fn spellings_of_one_construct_are_one_node() {
    same("T | filter a", "T | where a");
    same("T | limit 5", "T | take 5");
    same("T | order by a", "T | sort by a");
    same("T | mvexpand a", "T | mv-expand a");
    same("T | where a notcontains 'x'", "T | where a !contains 'x'");
    same("T | where a containscs 'x'", "T | where a contains_cs 'x'");
    same("T | where a <> 1", "T | where a != 1");
    same("T | extend b = a.c", "T | extend b = a['c']");
    same("T | extend b = a.c", "T | extend b = a.['c']");
    same("T | extend b = a[\"c\"]", "T | extend b = a.c");
    same("print x = 'a' \"b\"", "print x = 'ab'");
    same("print x = @'a''b'", "print x = \"a'b\"");
    same(
        "T | join (U) on $right.b == $left.a",
        "T | join (U) on $left.a == $right.b",
    );
    same(
        "let f = (x:double) { x }; f(1)",
        "let f = (x:real) { x }; f(1)",
    );
}

#[test]
fn string_operators_keep_case_and_negation() {
    let cases = [
        ("has", StringTest::Has, false, false),
        ("!has", StringTest::Has, true, false),
        ("has_cs", StringTest::Has, false, true),
        ("!has_cs", StringTest::Has, true, true),
        ("hasprefix", StringTest::HasPrefix, false, false),
        ("!hassuffix_cs", StringTest::HasSuffix, true, true),
        ("contains", StringTest::Contains, false, false),
        ("!contains_cs", StringTest::Contains, true, true),
        ("startswith", StringTest::StartsWith, false, false),
        ("!endswith", StringTest::EndsWith, true, false),
        ("matches regex", StringTest::MatchesRegex, false, true),
        ("like", StringTest::Like, false, false),
        ("notlikecs", StringTest::Like, true, true),
    ];
    for (spelling, test, negated, case_sensitive) in cases {
        match predicate(&format!("a {spelling} 'x'")).kind {
            ExprKind::Binary {
                op: BinaryOp::Str(op),
                ..
            } => assert_eq!(
                op,
                StringOp {
                    test,
                    negated,
                    case_sensitive
                },
                "{spelling}"
            ),
            other => panic!("{spelling}: {other:?}"),
        }
    }
}

#[test]
fn list_operators() {
    for (spelling, op) in [
        ("in", ListOp::In),
        ("!in", ListOp::NotIn),
        ("in~", ListOp::InCi),
        ("!in~", ListOp::NotInCi),
        ("has_any", ListOp::HasAny),
        ("has_all", ListOp::HasAll),
    ] {
        match predicate(&format!("a {spelling} ('x', 'y')")).kind {
            ExprKind::List {
                op: parsed, items, ..
            } => {
                assert_eq!(parsed, op, "{spelling}");
                assert_eq!(items.len(), 2);
            }
            other => panic!("{spelling}: {other:?}"),
        }
    }
    // `has` must not swallow the start of `has_any`.
    assert!(matches!(
        predicate("a has_any ('x')").kind,
        ExprKind::List {
            op: ListOp::HasAny,
            ..
        }
    ));
}

#[test]
fn string_literals_decode() {
    let s = |text: &str| match literal(text) {
        Literal::String(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(s(r#""a\"b\\c\n\t""#).value, "a\"b\\c\n\t");
    assert_eq!(s(r#"'it\'s'"#).value, "it's");
    assert_eq!(s(r#"@"C:\Windows\""#).value, r"C:\Windows\");
    assert_eq!(s(r#"@"say ""hi""""#).value, r#"say "hi""#);
    assert_eq!(s("\"\\u0041\\x42\"").value, "AB");
    assert_eq!(s("```line1\nline2```").value, "line1\nline2");
    let secret = s(r#"h"p@ss""#);
    assert_eq!(secret.value, "p@ss");
    assert!(secret.obfuscated);
    assert_eq!(s("'a' // comment\n 'b'").value, "ab");
}

#[test]
fn invalid_escape_is_an_error() {
    let e = parse(r#"T | where a == "C:\Windows""#).unwrap_err();
    assert_eq!(e.kind, SyntaxErrorKind::InvalidLiteral);
    assert_eq!(e.span.start, 18, "points at the backslash");
}

#[test]
fn numbers_and_durations() {
    assert_eq!(literal("42"), Literal::Long { value: 42 });
    assert_eq!(literal("0x1F"), Literal::Long { value: 31 });
    assert_eq!(literal("1.5"), Literal::Real { value: Real(1.5) });
    assert_eq!(
        literal("1e3"),
        Literal::Real {
            value: Real(1000.0)
        }
    );
    assert_eq!(literal("int(7)"), Literal::Int { value: 7 });
    assert_eq!(literal("long(-3)"), Literal::Long { value: -3 });
    assert_eq!(
        literal("long(0xf090013d)"),
        Literal::Long { value: 0xf090013d }
    );
    assert_eq!(
        literal("int(null)"),
        Literal::Null {
            ty: ScalarType::Int
        }
    );
    let ticks = |text: &str| match literal(text) {
        Literal::TimeSpan { ticks } => ticks,
        other => panic!("{other:?}"),
    };
    assert_eq!(ticks("1h"), 36_000_000_000);
    assert_eq!(ticks("14d"), 14 * 864_000_000_000);
    assert_eq!(ticks("1.5s"), 15_000_000);
    assert_eq!(ticks("10ms"), 100_000);
    assert_eq!(ticks("2min"), 1_200_000_000);
    assert_eq!(ticks("time(1.02:00:00)"), 26 * 36_000_000_000);
    assert_eq!(ticks("time(2)"), 2 * 864_000_000_000);
    assert_eq!(ticks("timespan(30m)"), 18_000_000_000);
    assert_eq!(
        literal("datetime(2024-01-02T03:04:05Z)"),
        Literal::DateTime {
            text: "2024-01-02T03:04:05Z".to_string()
        }
    );
    assert!(
        parse("print 99999999999999999999").is_err(),
        "does not fit a long"
    );
}

#[test]
fn dynamic_literals() {
    let Literal::Dynamic { value } = literal(r#"dynamic(["a", 1, -2.5, {"k": null}, [true]])"#)
    else {
        panic!()
    };
    let Dynamic::Array(items) = value else {
        panic!("{value:?}")
    };
    assert_eq!(items.len(), 5);
    assert_eq!(
        items[2],
        Dynamic::Scalar(Box::new(Literal::Real { value: Real(-2.5) }))
    );
    assert_eq!(
        items[3],
        Dynamic::Object(vec![("k".to_string(), Dynamic::Null)])
    );
}

#[test]
fn keywords_need_brackets_as_names() {
    assert!(parse("T | project by").is_err());
    assert!(parse("T | project ['by']").is_ok());
    // `summarize by x` has no aggregate, not an aggregate named `by`.
    let q = ok("T | summarize by x");
    let printed = q.to_string();
    assert!(printed.contains("summarize by x"), "{printed}");
}

#[test]
fn where_with_single_equals_is_a_named_constant() {
    // Kusto reads `where Flag = true` as the constant `true` (named `Flag`), not a comparison.
    match predicate("IsBillable = true").kind {
        ExprKind::Named { name, value } => {
            assert_eq!(name, "IsBillable");
            assert_eq!(
                value.kind,
                ExprKind::Literal {
                    value: Literal::Bool { value: true }
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(parse("T | where a = 1 and b = 2").is_err());
}

#[test]
fn statements_and_functions() {
    let q = ok(
        "let t = 1h; let f = (T:(*), n:long = 5) { T | take n }; f(SigninLogs | where x > ago(t))",
    );
    assert_eq!(q.statements.len(), 3);
    let Statement::Let(Let {
        value: LetValue::Function(f),
        ..
    }) = &q.statements[1]
    else {
        panic!()
    };
    assert_eq!(f.params.len(), 2);
    assert_eq!(f.params[0].ty, ParamType::AnyTable);
    assert!(f.params[1].default.is_some());
    ok("set notruncation; declare query_parameters(a:string = 'x'); T");
    ok("let x = 1;");
    assert!(parse("T;;").is_err());
    assert!(
        parse("T | where a\nT | where b").is_err(),
        "two queries need a `;`"
    );
}

/// Every printed tree reads back as the same tree.
#[test]
fn printer_round_trips() {
    let queries = [
        "T | where a == 1 and (b or c) | extend d = -(x - (y - z)) * 2",
        "T | where a between (1 .. 10) and b !between (datetime(2020-01-01) .. now())",
        "T | summarize (t, id) = arg_max(ts, id), count(), make_set(x, 10) by bin(ts, 1h), k",
        "union isfuzzy=true withsource=Src (A | where x), B*, database('d').C | where y",
        "T | join kind=leftouter hint.strategy=broadcast (U | project a) on a, $left.b == $right.c",
        "T | mv-expand bagexpansion=array with_itemindex=i x = y to typeof(string) limit 5",
        "T | mv-apply x on (top 1 by x desc | project x)",
        "T | parse kind=regex flags=Ui msg with 'user=' User:string ' ' * ' id=' Id:long",
        "T | parse-kv msg as (a:string, b:long) with (pair_delimiter=',', kv_delimiter='=')",
        "T | top-nested 3 of a by count(), top-nested of b with others = 'x' by max(c) desc",
        "T | make-series n = count() default = 0 on ts from ago(1d) to now() step 1h by k",
        "T | evaluate bag_unpack(x, columnsConflict='keep_source') : (a:string, b:long)",
        "datatable(a:string, b:long)['x', 1, 'y', 2] | as hint.materialized=true X",
        "externaldata(a:string)[@'https://x/y.csv'] with (format='csv', ignoreFirstRecord=true)",
        "range x from 1 to 10 step 1 | extend y = x % 3",
        "search in (T, U) 'x' | project-away a*, b | project-rename c = d | project-reorder e asc",
        "T | scan with_match_id=Id declare (s:string) with (step a: x == 1 => s = 'a'; step b optional: y == a.x;)",
        "T | where ['col with space'] =~ h'secret' and {param} > 1",
        "T | extend a = dynamic({\"k\": [1, -2, \"x\"]}), b = real(-inf), c = time(-1d), d = 1.5e-7",
        "T | where a has_any (dynamic(['x', 'y'])) | where b in ((U | project c)) | count",
        "let v = view () { T }; v | sample 3 | sample-distinct 2 of a | getschema",
        "T | fork (where a) (take 1) | facet by a with (take 1) | partition by k (top 1 by v)",
    ];
    for text in queries {
        let first = ok(text);
        let printed = first.to_string();
        let second = parse(&printed).unwrap_or_else(|e| {
            panic!("printed form of {text:?} does not parse: {e:?}\n{printed}")
        });
        assert_eq!(first, second, "round trip of {text:?} via\n{printed}");
    }
}

#[test]
fn error_messages_name_what_was_expected() {
    let e = parse("T | wher x").unwrap_err();
    assert_eq!(e.kind, SyntaxErrorKind::Unexpected);
    assert!(e.message.contains("query operator"), "{}", e.message);
    assert!(e.message.contains("`wher`"), "{}", e.message);
    assert_eq!(e.span.start, 4);

    let e = parse("T | where x ==").unwrap_err();
    assert!(
        e.message.contains("expected an expression"),
        "{}",
        e.message
    );
    assert!(e.message.contains("end of the query"), "{}", e.message);

    let e = parse("T | where a == 'abc").unwrap_err();
    assert_eq!(e.kind, SyntaxErrorKind::UnterminatedString);
    assert_eq!(e.span.start, 15);

    let e = parse("  // only a comment\n").unwrap_err();
    assert_eq!(e.kind, SyntaxErrorKind::Empty);

    for text in [
        "T | where a == 'abc",
        "T | where (a",
        "T | summarize by",
        "print ```x",
    ] {
        let e = parse(text).unwrap_err();
        assert!(
            !e.message.contains('_'),
            "no grammar rule names: {}",
            e.message
        );
    }
}

#[test]
fn limits_reject_instead_of_overflowing() {
    let deep = format!("T | where {}a{}", "(".repeat(100_000), ")".repeat(100_000));
    assert_eq!(parse(&deep).unwrap_err().kind, SyntaxErrorKind::TooDeep);

    let at_limit = format!(
        "T | where {}a{}",
        "(".repeat(kqlc::syntax::MAX_BRACKET_DEPTH),
        ")".repeat(kqlc::syntax::MAX_BRACKET_DEPTH)
    );
    ok(&at_limit);

    let chain = format!("T | where x == {}1", "1 + ".repeat(5_000));
    assert_eq!(parse(&chain).unwrap_err().kind, SyntaxErrorKind::TooDeep);
    let signs = format!("print {}1", "-".repeat(5_000));
    assert_eq!(parse(&signs).unwrap_err().kind, SyntaxErrorKind::TooDeep);

    // Long `or` chains are flat and fine: IOC lists are written this way.
    let iocs: Vec<String> = (0..20_000).map(|i| format!("a == '{i}'")).collect();
    ok(&format!("T | where {}", iocs.join(" or ")));

    let big = format!("print '{}'", "x".repeat(kqlc::syntax::MAX_QUERY_BYTES));
    assert_eq!(parse(&big).unwrap_err().kind, SyntaxErrorKind::TooLarge);
}

/// The messages users see for common mistakes (reviewed: each names what was expected).
#[test]
fn error_messages_snapshot() {
    let broken = [
        "T | wher x",
        "T | where x ==",
        "T | where (a",
        "T | summarize by",
        "T | project a,",
        "T | join kind=inner (U) on",
        "let x = ;",
        "T | where a in 'x'",
        "T | extend = 1",
        "T | where a == \"C:\\Windows\"",
        "T | where a == 'abc",
        "T | take",
        "T | sort x",
        "T | where a between (1, 2)",
        "SigninLogs\n| where ResultType == 0\nAuditLogs",
    ];
    let report: Vec<String> = broken
        .iter()
        .map(|q| {
            let e = parse(q).unwrap_err();
            format!(
                "{q:?}\n  at {}..{}: {}",
                e.span.start, e.span.end, e.message
            )
        })
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}
