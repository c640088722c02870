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
