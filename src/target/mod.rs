//! Stage 4: detection IR -> target text. One module per target; each says, with
//! diagnostics placed in the rule file, what it could not carry over exactly.

pub mod esql;
pub mod kql;
pub mod sigma;
pub mod spl;

use serde::Serialize;

use crate::diag::{Code, Diagnostic, Severity};
use crate::ir::{Detection, Span};
use crate::load::Rule;
use crate::mapping::Mappings;

/// A language kqlc writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A Sigma rule (with correlation rules for thresholds).
    Sigma,
    /// A Splunk SPL search.
    Spl,
    /// An Elastic ES|QL query.
    Esql,
    /// Normalized, self-contained KQL (Microsoft Sentinel).
    Kql,
}

/// What form of output: the query alone, or the target's rule package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// The query (Sigma: the rule document).
    Query,
    /// SPL as a `savedsearches.conf` stanza (schedule, alert condition, annotations).
    Savedsearch,
    /// ES|QL as an Elastic detection rule (JSON, importable in Kibana).
    ElasticRule,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Sigma => "sigma",
            Target::Spl => "spl",
            Target::Esql => "esql",
            Target::Kql => "kql",
        }
    }

    /// The extension of written files in a format.
    pub fn extension(self, format: Format) -> &'static str {
        match (self, format) {
            (Target::Spl, Format::Savedsearch) => "conf",
            (Target::Esql, Format::ElasticRule) => "json",
            (Target::Sigma, _) => "yml",
            (Target::Spl, _) => "spl",
            (Target::Esql, _) => "esql",
            (Target::Kql, _) => "kql",
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

/// Everything a target reads to translate one rule.
pub struct Context<'a> {
    pub rule: &'a Rule,
    pub detection: &'a Detection,
    /// What normalizing said (a target decides which of these make it approximate).
    pub notes: &'a [Diagnostic],
    pub mappings: &'a Mappings,
    pub format: Format,
}

impl Context<'_> {
    /// A diagnostic about the construct at `span` (query offsets), placed in the rule file.
    pub fn diagnostic(
        &self,
        severity: Severity,
        code: Code,
        span: Option<Span>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let d = match severity {
            Severity::Error => Diagnostic::error(code, message),
            _ => Diagnostic::warning(code, message),
        };
        match span {
            Some(s) => d.at(
                self.rule.query_map.to_file(s.start as usize),
                self.rule.query_map.to_file(s.end as usize),
            ),
            None => d,
        }
    }
}

/// A target's output for one rule.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub text: String,
    /// What the target could not carry over (each also said in `text`, as a comment or
    /// a field).
    pub diagnostics: Vec<Diagnostic>,
}

/// One rule in one target language.
#[derive(Debug, Clone)]
pub struct Translation {
    pub target: Target,
    pub text: String,
    pub fidelity: Fidelity,
    /// Everything said about this translation: the IR's notes, then the target's own.
    pub diagnostics: Vec<Diagnostic>,
}

/// Translates a detection into one target.
pub fn translate(target: Target, cx: &Context) -> Translation {
    let emitted = match target {
        Target::Sigma => sigma::emit(cx),
        Target::Spl => spl::emit(cx),
        Target::Esql => esql::emit(cx),
        Target::Kql => kql::emit_rule(cx),
    };
    let fidelity = fidelity(target, cx.notes, &emitted.diagnostics);
    let mut diagnostics = cx.notes.to_vec();
    diagnostics.extend(emitted.diagnostics);
    Translation {
        target,
        text: emitted.text,
        fidelity,
        diagnostics,
    }
}

/// Failed if the target reported an error; approximate if it (or, for targets other than
/// KQL, the normalizer) reported a warning; exact otherwise.
fn fidelity(target: Target, notes: &[Diagnostic], own: &[Diagnostic]) -> Fidelity {
    if own.iter().any(|d| d.severity == Severity::Error) {
        return Fidelity::Failed;
    }
    // The KQL target prints what the IR keeps opaque verbatim, so the IR's notes do not
    // make it approximate; the other targets inherit them.
    let inherited = target != Target::Kql && notes.iter().any(|d| d.severity >= Severity::Warning);
    if inherited || own.iter().any(|d| d.severity == Severity::Warning) {
        Fidelity::Approximate
    } else {
        Fidelity::Exact
    }
}

/// A comment block naming the rule and listing what was said about it, for the top of
/// an output (`comment` is the target's line-comment marker).
pub fn header(comment: &str, rule: &Rule, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    if let Some(name) = &rule.metadata.name {
        out.push_str(&format!("{comment} {}\n", one_line(name)));
    }
    out.push_str(&format!(
        "{comment} Translated by kqlc from {}\n",
        rule.file.path.display()
    ));
    for d in diagnostics {
        out.push_str(&format!("{comment} {}\n", describe(d, rule)));
    }
    out
}

/// One line saying what a diagnostic says and where: `warning[T001] at rule.yaml:12:5: ...`.
pub fn describe(d: &Diagnostic, rule: &Rule) -> String {
    let level = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let place = d
        .line_column(&rule.file.text)
        .map(|(l, c)| format!(" at {}:{l}:{c}", rule.file.path.display()))
        .unwrap_or_default();
    one_line(&format!(
        "{level}[{}]{place}: {}",
        d.code.as_str(),
        d.message
    ))
}

/// Text on one line (comments must not be broken by the text they hold).
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
