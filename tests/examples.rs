//! Snapshots of every example rule (`examples/rules/`) in every target and form. The
//! seeds are snapshotted by each target's own test (`tests/{sigma,spl,esql,seeds}.rs`);
//! this covers the other examples: real corpus rules, a hunting query, an ARM export.

mod common;

use kqlc::mapping::Mappings;
use kqlc::normalize::Functions;
use kqlc::target::{Context, Format, Target, translate};

const FORMS: [(Target, Format); 6] = [
    (Target::Sigma, Format::Query),
    (Target::Spl, Format::Query),
    (Target::Spl, Format::Savedsearch),
    (Target::Esql, Format::Query),
    (Target::Esql, Format::ElasticRule),
    (Target::Kql, Format::Query),
];

#[test]
fn example_rules_in_every_target() {
    let root = common::crate_dir();
    let mut files: Vec<_> = walkdir::WalkDir::new(root.join("examples/rules"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| {
            p.is_file()
                && !p.components().any(|c| c.as_os_str() == "seeds")
                && p.extension()
                    .is_some_and(|e| ["yaml", "yml", "json", "kql"].contains(&e.to_str().unwrap()))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 7, "the non-seed examples: {files:?}");
    let mut snapshots = 0;
    for path in files {
        // Loaded under the relative path, so snapshots do not depend on the checkout.
        let shown = path.strip_prefix(&root).unwrap();
        let loaded = kqlc::load::load_bytes(shown, &std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{} loads: {e:?}", shown.display()));
        let stem = shown
            .strip_prefix("examples/rules")
            .unwrap()
            .with_extension("")
            .to_string_lossy()
            .replace('/', "-");
        let several = loaded.rules.len() > 1;
        for (i, rule) in loaded.rules.iter().enumerate() {
            let (detection, notes) = kqlc::normalize_rule(rule, &Functions::none())
                .unwrap_or_else(|d| panic!("{} normalizes: {d:?}", shown.display()));
            for (target, format) in FORMS {
                let cx = Context {
                    rule,
                    detection: &detection,
                    notes: &notes,
                    mappings: Mappings::embedded(),
                    format,
                };
                let t = translate(target, &cx);
                let index = if several {
                    format!(".{i}")
                } else {
                    String::new()
                };
                let name = format!("{stem}{index}.{}", target.extension(format));
                insta::with_settings!({
                    description => format!("{} ({:?})", shown.display(), t.fidelity),
                    omit_expression => true,
                }, {
                    insta::assert_snapshot!(name, t.text);
                });
                snapshots += 1;
            }
        }
    }
    assert!(snapshots >= 6 * 8);
}
