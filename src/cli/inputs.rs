//! Turning command-line paths into rule files: walking directories, reading, loading,
//! and keeping every problem as a diagnostic so that one bad file never stops a batch.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Code, Diagnostic, Severity};
use crate::load::{self, Rule, SourceFile};

/// Extensions picked up when walking a directory (an explicit file may have any
/// extension `load` knows).
const WALK_EXTENSIONS: &[&str] = &["yaml", "yml", "json", "kql"];

/// The files named by `paths`: files as given, directories searched recursively in
/// sorted order. A path that does not exist is kept, so that loading reports it.
pub fn collect(paths: &[PathBuf]) -> Vec<PathBuf> {
    collect_with_relative(paths)
        .into_iter()
        .map(|(f, _)| f)
        .collect()
}

/// Like [`collect`], with each file's path relative to the argument that named it (its
/// file name for a file argument): where its outputs go under `--out`.
pub fn collect_with_relative(paths: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    let mut files = vec![];
    for path in paths {
        if path.is_dir() {
            let walker = walkdir::WalkDir::new(path).sort_by_file_name();
            for entry in walker.into_iter().filter_map(Result::ok) {
                let p = entry.path();
                let wanted = entry.file_type().is_file()
                    && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        WALK_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    });
                if wanted {
                    let relative = p.strip_prefix(path).unwrap_or(p).to_path_buf();
                    files.push((p.to_path_buf(), relative));
                }
            }
        } else {
            let name = path
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| path.clone());
            files.push((path.clone(), name));
        }
    }
    files
}

/// One file after loading: its text (for code frames), its rules, and what went wrong.
pub struct FileOutcome {
    pub file: SourceFile,
    pub rules: Vec<Rule>,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileOutcome {
    /// Whether some part of the file could not be loaded (warnings do not count).
    pub fn failed(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

pub fn load(path: &Path) -> FileOutcome {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return FileOutcome {
                file: SourceFile {
                    path: path.to_path_buf(),
                    text: Arc::from(""),
                },
                rules: vec![],
                diagnostics: vec![Diagnostic::error(
                    Code::ReadFailed,
                    format!("cannot read `{}`: {e}", path.display()),
                )],
            };
        }
    };
    let shown = SourceFile {
        path: path.to_path_buf(),
        text: Arc::from(String::from_utf8_lossy(&bytes).as_ref()),
    };
    match guarded(|| Ok(load::load_bytes(path, &bytes))) {
        Ok(Ok(loaded)) => FileOutcome {
            file: loaded
                .rules
                .first()
                .map(|r| r.file.clone())
                .unwrap_or(shown),
            diagnostics: loaded.errors.iter().map(Diagnostic::from_load).collect(),
            rules: loaded.rules,
        },
        Ok(Err(e)) => FileOutcome {
            file: shown,
            rules: vec![],
            diagnostics: vec![Diagnostic::from_load(&e)],
        },
        Err(d) => FileOutcome {
            file: shown,
            rules: vec![],
            diagnostics: vec![d],
        },
    }
}

/// Runs one stage for one rule; a panic (always a bug) becomes an error diagnostic so
/// that the rest of the batch still runs and the exit status stays 1.
pub fn guarded<T>(f: impl FnOnce() -> Result<T, Diagnostic>) -> Result<T, Diagnostic> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Diagnostic::error(
                Code::Internal,
                format!("internal error (a bug in kqlc, please report it): {what}"),
            ))
        }
    }
}
