//! The whole `convert` path on arbitrary bytes: load (as every file format), parse,
//! normalize, and translate into every target in every output form. No panic, no hang,
//! no stack overflow; every diagnostic renders. Translation runs unguarded here, so a
//! panic the CLI would turn into an X001 "internal error" is a crash the fuzzer reports.
#![no_main]

use std::path::Path;

use kqlc::diag::{self, Diagnostic};
use kqlc::mapping::Mappings;
use kqlc::normalize::Functions;
use kqlc::target::{self, Context, Format, Target};
use libfuzzer_sys::fuzz_target;

const FORMS: [(Target, Format); 6] = [
    (Target::Sigma, Format::Query),
    (Target::Spl, Format::Query),
    (Target::Spl, Format::Savedsearch),
    (Target::Esql, Format::Query),
    (Target::Esql, Format::ElasticRule),
    (Target::Kql, Format::Query),
];

fuzz_target!(|data: &[u8]| {
    let functions = Functions::none();
    for name in ["rule.yaml", "rules.json", "query.kql"] {
        let loaded = match kqlc::load::load_bytes(Path::new(name), data) {
            Ok(loaded) => loaded,
            Err(e) => {
                let _ = Diagnostic::from_load(&e);
                continue;
            }
        };
        for rule in &loaded.rules {
            let (detection, notes) = match kqlc::normalize_rule(rule, &functions) {
                Ok(ok) => ok,
                Err(d) => {
                    let _ = diag::render(&d, &rule.file);
                    continue;
                }
            };
            for (target, format) in FORMS {
                let cx = Context {
                    rule,
                    detection: &detection,
                    notes: &notes,
                    mappings: Mappings::embedded(),
                    format,
                };
                let translation = target::translate(target, &cx);
                for d in &translation.diagnostics {
                    let _ = diag::render(d, &rule.file);
                }
            }
        }
    }
});
