//! A bare `.kql` file: the whole file is the query.

use super::{Loaded, Metadata, QueryMap, Rule, RuleFormat, SourceFile};

pub(super) fn load(file: SourceFile) -> Loaded {
    let name = file
        .path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned());
    let query = file.text.to_string();
    let rule = Rule {
        format: RuleFormat::Kql,
        metadata: Metadata {
            name,
            ..Metadata::default()
        },
        query_map: QueryMap::identity(query.len()),
        query,
        file,
    };
    Loaded {
        rules: vec![rule],
        errors: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn whole_file_is_the_query() {
        let file = SourceFile {
            path: PathBuf::from("dir/My Rule.kql"),
            text: Arc::from("SigninLogs\n| take 1\n"),
        };
        let loaded = load(file);
        let rule = &loaded.rules[0];
        assert_eq!(rule.query, "SigninLogs\n| take 1\n");
        assert_eq!(rule.metadata.name.as_deref(), Some("My Rule"));
        assert_eq!(rule.format, RuleFormat::Kql);
        assert_eq!(rule.query_map.to_file(12), 12);
        assert!(loaded.errors.is_empty());
    }
}
