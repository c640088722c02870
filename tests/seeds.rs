//! The five seed rules (../shared/seeds/rules), the project's acceptance inputs: each
//! loads and parses, and its syntax tree is snapshotted for review.

mod common;

fn seed_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(common::seeds_dir())
        .expect("../shared/seeds/rules exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "five seed rules");
    files
}

#[test]
fn seed_asts() {
    for path in seed_files() {
        let loaded = kqlc::load::load_file(&path).expect("seed loads");
        assert!(
            loaded.errors.is_empty(),
            "{}: {:?}",
            path.display(),
            loaded.errors
        );
        let [rule] = loaded.rules.as_slice() else {
            panic!("one rule per seed")
        };
        let ast = kqlc::parse_rule(rule)
            .unwrap_or_else(|d| panic!("{}", kqlc::diag::render(&d, &rule.file)));
        let tree = kqlc::cli::tree::render("query", &serde_json::to_value(&ast).unwrap());
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("ast-{name}"), tree);
    }
}

#[test]
fn seed_irs() {
    let functions = kqlc::normalize::Functions::none();
    for path in seed_files() {
        let loaded = kqlc::load::load_file(&path).expect("seed loads");
        let rule = &loaded.rules[0];
        let (detection, notes) = kqlc::normalize_rule(rule, &functions)
            .unwrap_or_else(|d| panic!("{}", kqlc::diag::render(&d, &rule.file)));
        let mut text =
            kqlc::cli::tree::render("detection", &serde_json::to_value(&detection).unwrap());
        for n in &notes {
            text.push_str(&format!("note {}: {}\n", n.code.as_str(), n.message));
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("ir-{name}"), text);
    }
}

#[test]
fn seed_kql() {
    let functions = kqlc::normalize::Functions::none();
    for path in seed_files() {
        let loaded = kqlc::load::load_file(&path).expect("seed loads");
        let rule = &loaded.rules[0];
        let (detection, notes) = kqlc::normalize_rule(rule, &functions).unwrap();
        let cx = kqlc::target::Context {
            rule,
            detection: &detection,
            notes: &notes,
            mappings: kqlc::mapping::Mappings::embedded(),
            format: kqlc::target::Format::Query,
        };
        let kql = kqlc::target::translate(kqlc::target::Target::Kql, &cx);
        // The printed query is valid KQL that kqlc reads back.
        let body: String = kql
            .text
            .lines()
            .filter(|l| !l.starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        kqlc::syntax::parse(&body).unwrap_or_else(|e| panic!("{}: {e:?}\n{body}", path.display()));
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("kql-{name}"), kql.text);
    }
}
