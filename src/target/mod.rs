//! Stage 4: detection IR -> target text. One module per target; each says, with
//! diagnostics, what it could not carry over exactly.

pub mod kql;

use serde::Serialize;

use crate::diag::{Diagnostic, Severity};
use crate::ir::Detection;
use crate::load::Rule;

/// A language kqlc writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Normalized, self-contained KQL (Microsoft Sentinel).
    Kql,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Kql => "kql",
        }
    }

    /// The extension of written files.
    pub fn extension(self) -> &'static str {
        match self {
            Target::Kql => "kql",
        }
    }
}

/// How faithful a translation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fidelity {
    /// Means exactly what the KQL meant.
    Exact,
    /// Written, but matches more or fewer events, or leaves something out: the
    /// diagnostics and the output's comments say what.
    Approximate,
    /// Nothing usable could be written.
    Failed,
}

/// One rule in one target language.
#[derive(Debug, Clone)]
pub struct Translation {
    pub target: Target,
    pub text: String,
    pub fidelity: Fidelity,
    /// Everything said about this translation (including the IR's notes).
    pub diagnostics: Vec<Diagnostic>,
}

/// Translates a detection. `notes` are the diagnostics from normalizing it; each target
/// decides which of them make its output approximate.
pub fn translate(
    target: Target,
    rule: &Rule,
    detection: &Detection,
    notes: &[Diagnostic],
) -> Translation {
    match target {
        Target::Kql => {
            let query = kql::emit(detection);
            // The KQL target prints what it cannot model verbatim, so it stays exact.
            let mut text = header("//", rule, notes);
            text.push_str(&query);
            text.push('\n');
            Translation {
                target,
                text,
                fidelity: Fidelity::Exact,
                diagnostics: notes.to_vec(),
            }
        }
    }
}

/// A comment block naming the rule and listing what was said about it.
fn header(comment: &str, rule: &Rule, notes: &[Diagnostic]) -> String {
    let mut out = String::new();
    if let Some(name) = &rule.metadata.name {
        out.push_str(&format!("{comment} {name}\n"));
    }
    out.push_str(&format!(
        "{comment} Translated by kqlc from {}\n",
        rule.file.path.display()
    ));
    for d in notes {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        let place = d
            .line_column(&rule.file.text)
            .map(|(l, c)| format!(" at {}:{l}:{c}", rule.file.path.display()))
            .unwrap_or_default();
        for (i, line) in d.message.lines().enumerate() {
            if i == 0 {
                out.push_str(&format!(
                    "{comment} {level}[{}]{place}: {line}\n",
                    d.code.as_str()
                ));
            } else {
                out.push_str(&format!("{comment}   {line}\n"));
            }
        }
    }
    out
}
