//! A survey of the ES|QL target over the corpus, for work on its coverage (ignored by
//! default): `cargo test --release --test esql_survey -- --ignored` writes one JSON line
//! per query (id, text, diagnostics) to `$KQLC_SURVEY` (default `target/esql-survey.jsonl`).

mod common;

use std::io::Write;
use std::path::Path;

use kqlc::diag::Code;
use kqlc::mapping::Mappings;
use kqlc::target::{Context, Fidelity, Format, Target, translate};

#[test]
#[ignore]
fn survey() {
    let out = std::env::var("KQLC_SURVEY").unwrap_or_else(|_| "target/esql-survey.jsonl".into());
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
    for (id, query) in common::corpus_queries() {
        let loaded = kqlc::load::load_bytes(Path::new("q.kql"), query.as_bytes()).unwrap();
        let rule = &loaded.rules[0];
        let functions = kqlc::normalize::Functions::none();
        let Ok((detection, notes)) = kqlc::normalize_rule(rule, &functions) else {
            continue;
        };
        let cx = Context {
            rule,
            detection: &detection,
            notes: &notes,
            mappings: Mappings::embedded(),
            format: Format::Query,
        };
        let t = translate(Target::Esql, &cx);
        let unsupported = t.fidelity == Fidelity::Failed
            || t.diagnostics
                .iter()
                .any(|d| matches!(d.code, Code::NotTranslated | Code::Untranslatable));
        let diags: Vec<serde_json::Value> = t
            .diagnostics
            .iter()
            .map(|d| serde_json::json!({"code": d.code.as_str(), "message": d.message}))
            .collect();
        let line = serde_json::json!({
            "id": id,
            "kql": query,
            "esql": t.text,
            "failed": t.fidelity == Fidelity::Failed,
            "unsupported": unsupported,
            "diagnostics": diags,
        });
        writeln!(file, "{line}").unwrap();
    }
}
