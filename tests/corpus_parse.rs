//! The parser over every query in ../shared/corpus, judged against Microsoft's own Kusto
//! parser (`kql-validate`): we must read at least 97% of what it accepts, reject all that
//! it rejects, and every tree we read must print and read back unchanged.

mod common;

use std::collections::BTreeMap;

#[test]
fn corpus_parses_like_microsofts_parser() {
    let queries = common::corpus_queries();
    assert!(
        queries.len() > 3000,
        "corpus not found or incomplete: {} queries",
        queries.len()
    );
    let verdicts = common::run_validator("kql-validate", &[], &queries);

    let mut accepted_by_ms = 0;
    let mut parsed_of_accepted = 0;
    let mut failures = vec![];
    let mut too_lenient = vec![];
    let mut round_trip_failures = vec![];
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for ((id, query), verdict) in queries.iter().zip(&verdicts) {
        assert_eq!(verdict["id"].as_str(), Some(id.as_str()));
        let ms_valid = verdict["valid"].as_bool().unwrap();
        let ours = kqlc::syntax::parse(query);
        accepted_by_ms += usize::from(ms_valid);
        match (&ours, ms_valid) {
            (Ok(_), true) => parsed_of_accepted += 1,
            (Ok(_), false) => {
                too_lenient.push(format!("{id}: {}", verdict["errors"][0]["message"]))
            }
            (Err(e), true) => {
                *reasons.entry(e.message.clone()).or_default() += 1;
                let at = e.span.start as usize;
                let line = query[..at].matches('\n').count() + 1;
                failures.push(format!("{id}:{line}: {}", e.message));
            }
            (Err(_), false) => {}
        }
        if let Ok(ast) = &ours {
            let printed = ast.to_string();
            match kqlc::syntax::parse(&printed) {
                Ok(again) if &again == ast => {}
                Ok(_) => round_trip_failures.push(format!("{id}: printed form parses differently")),
                Err(e) => {
                    round_trip_failures.push(format!("{id}: printed form fails: {}", e.message))
                }
            }
        }
    }
    let share = parsed_of_accepted as f64 / accepted_by_ms as f64;
    println!(
        "corpus: {} queries; Microsoft's parser accepts {}; kqlc parses {} of those ({:.2}%)",
        queries.len(),
        accepted_by_ms,
        parsed_of_accepted,
        share * 100.0
    );
    println!(
        "rejected by Microsoft's parser: {}; of those kqlc accepts {}",
        queries.len() - accepted_by_ms,
        too_lenient.len()
    );
    println!(
        "round trip (print, parse, compare): {} failures",
        round_trip_failures.len()
    );
    println!("failures ({}):", failures.len());
    for f in &failures {
        println!("  {f}");
    }
    for (reason, n) in &reasons {
        println!("  {n:4} x {reason}");
    }
    assert!(
        share >= 0.97,
        "kqlc parses only {:.2}% of the queries Microsoft's parser accepts",
        share * 100.0
    );
    assert!(
        too_lenient.is_empty(),
        "kqlc accepts queries Microsoft's parser rejects:\n{}",
        too_lenient.join("\n")
    );
    assert!(
        round_trip_failures.is_empty(),
        "round trip failures:\n{}",
        round_trip_failures.join("\n")
    );
}
