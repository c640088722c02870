//! Stage 1: rule files -> [`Rule`] values.
//!
//! Three formats, one result: Sentinel analytics-rule / hunting-query YAML, ARM-template
//! JSON exported from a workspace (one file may hold many rules), and plain `.kql`. Every
//! `Rule` keeps the query text together with a [`QueryMap`] that turns an offset in the
//! query into an offset in the file, so diagnostics point at the rule file itself.

mod arm;
mod duration;
mod kql;
mod metadata;
mod node;
mod position;
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use duration::RuleDuration;
pub use metadata::*;
pub use position::QueryMap;

/// A file as read from disk: its path (as given) and its whole text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// One detection: metadata, query text, and where the query sits in its file.
#[derive(Debug, Clone)]
pub struct Rule {
    pub file: SourceFile,
    pub format: RuleFormat,
    pub metadata: Metadata,
    pub query: String,
    pub query_map: QueryMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleFormat {
    /// A Sentinel analytics rule or hunting query in YAML.
    SentinelYaml,
    /// An ARM template (workspace export); `index` is the rule's position among the
    /// template's `Microsoft.SecurityInsights/alertRules` resources.
    ArmTemplate { index: usize },
    /// A bare `.kql` query.
    Kql,
}

/// Why a file produced no rule (or not all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub kind: LoadErrorKind,
    pub message: String,
    /// Byte range in the file, when the problem has a place.
    pub span: Option<(usize, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// The file could not be read.
    Io,
    /// The bytes are not UTF-8 text.
    NotUtf8,
    /// YAML syntax error.
    Yaml,
    /// JSON syntax error.
    Json,
    /// The rule has no `query`.
    MissingQuery,
    /// The file's extension is not one kqlc reads.
    UnknownFormat,
    /// An ARM template with no Sentinel rule in it.
    NoRules,
    /// A metadata field has a value of the wrong shape.
    InvalidField,
}

/// What a file yielded: the rules it holds, and problems that did not stop the others
/// (an ARM template with one broken rule still yields the rest).
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<Rule>,
    pub errors: Vec<LoadError>,
}

/// Extensions kqlc reads when walking a directory.
pub const RULE_EXTENSIONS: &[&str] = &["yaml", "yml", "json", "kql", "kusto", "csl", "txt"];

/// Reads one file and loads the rules in it, choosing the format by extension.
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError {
        kind: LoadErrorKind::Io,
        message: format!("cannot read file: {e}"),
        span: None,
    })?;
    load_bytes(path, &bytes)
}

/// Loads rules from a file's bytes (what `load_file` does after reading).
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded, LoadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        LoadError {
            kind: LoadErrorKind::NotUtf8,
            message: format!("the file is not UTF-8 text (invalid byte at offset {at})"),
            span: Some((at, at + e.error_len().unwrap_or(1))),
        }
    })?;
    // A byte-order mark stays in the text (so offsets match the file); the YAML and
    // JSON loaders hand their parsers the text after it, and the KQL grammar reads it
    // as whitespace.
    let file = SourceFile {
        path: path.to_path_buf(),
        text: Arc::from(text),
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match extension.as_str() {
        "yaml" | "yml" => yaml::load(file),
        "json" => arm::load(file),
        "kql" | "kusto" | "csl" | "txt" => Ok(kql::load(file)),
        other => Err(LoadError {
            kind: LoadErrorKind::UnknownFormat,
            message: format!(
                "unknown file type `.{other}`: kqlc reads .yaml/.yml (Sentinel rules), .json (ARM templates) and .kql"
            ),
            span: None,
        }),
    }
}
