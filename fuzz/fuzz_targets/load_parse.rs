//! Loader + parser on arbitrary bytes, as every file format. Checks, beyond "no panic,
//! no hang, no stack overflow": a parsed query prints to text that parses back to the
//! same tree, and every error renders as a diagnostic.
#![no_main]

use std::path::Path;

use kqlc::diag::{self, Diagnostic};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["rule.yaml", "rules.json", "query.kql"] {
        let loaded = match kqlc::load::load_bytes(Path::new(name), data) {
            Ok(loaded) => loaded,
            Err(e) => {
                let _ = Diagnostic::from_load(&e);
                continue;
            }
        };
        for rule in &loaded.rules {
            match kqlc::parse_rule(rule) {
                Ok(ast) => {
                    let printed = ast.to_string();
                    let again = kqlc::syntax::parse(&printed)
                        .unwrap_or_else(|e| panic!("printed query does not parse: {e:?}\n{printed}"));
                    assert_eq!(again, ast, "round trip changed the tree:\n{printed}");
                }
                Err(d) => {
                    let _ = diag::render(&d, &rule.file);
                }
            }
        }
    }
});
