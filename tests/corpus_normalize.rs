//! The normalizer over every corpus query that parses: at least 90% must reach the IR
//! with no "unsupported" diagnostic (codes U001-U003), and nothing may panic. Prints the
//! constructs most often unsupported.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use kqlc::diag::Code;

#[test]
fn corpus_normalizes() {
    let functions = kqlc::normalize::Functions::none();
    let mut parsed = 0;
    let mut clean = 0;
    let mut unresolved = 0;
    let mut constructs: BTreeMap<String, usize> = BTreeMap::new();
    for (id, query) in common::corpus_queries() {
        let loaded = kqlc::load::load_bytes(Path::new("query.kql"), query.as_bytes()).unwrap();
        let rule = &loaded.rules[0];
        let Ok(ast) = kqlc::parse_rule(rule) else {
            continue;
        };
        parsed += 1;
        let (_, notes) =
            std::panic::catch_unwind(|| kqlc::normalize::normalize(rule, &ast, &functions))
                .unwrap_or_else(|_| panic!("normalizer panicked on {id}"));
        let unsupported: Vec<_> = notes
            .iter()
            .filter(|d| {
                matches!(
                    d.code,
                    Code::UnsupportedOperator
                        | Code::UnsupportedSource
                        | Code::UnsupportedExpression
                )
            })
            .collect();
        unresolved += usize::from(notes.iter().any(|d| d.code == Code::UnresolvedFunction));
        if unsupported.is_empty() {
            clean += 1;
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in unsupported {
            let what = d.message.trim_start_matches("unsupported: ").to_string();
            if seen.insert(what.clone()) {
                *constructs.entry(what).or_default() += 1;
            }
        }
    }
    let share = clean as f64 / parsed as f64;
    println!(
        "normalized {parsed} parsed queries; {clean} with no unsupported construct ({:.1}%)",
        share * 100.0
    );
    println!("{unresolved} call functions not defined in the query (U004, need --functions)");
    let mut ranked: Vec<_> = constructs.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("most frequent unsupported constructs (queries using them):");
    for (what, n) in ranked.iter().take(25) {
        println!("  {n:5}  {what}");
    }
    assert!(
        share >= 0.90,
        "only {:.1}% normalize without unsupported constructs",
        share * 100.0
    );
}
