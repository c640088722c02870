//! Converting many rules: load and translate in parallel (rayon), keep the output order
//! of the inputs, show progress on a terminal, and collect per-rule results for the
//! summary, the report and `check`.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use super::inputs;
use crate::diag::{self, Diagnostic, Severity};
use crate::load::{Rule, SourceFile};
use crate::mapping::Mappings;
use crate::normalize::Functions;
use crate::target::{Context, Fidelity, Format, Target, Translation};

/// What to convert and how.
pub struct Job<'a> {
    pub paths: &'a [PathBuf],
    pub targets: &'a [Target],
    pub formats: &'a [Format],
    pub functions: &'a Functions,
    pub mappings: &'a Mappings,
}

/// One input file after conversion.
pub struct FileResult {
    pub path: PathBuf,
    /// Where its outputs go under `--out`.
    pub relative: PathBuf,
    pub file: SourceFile,
    /// Problems loading the file itself.
    pub load_diagnostics: Vec<Diagnostic>,
    pub rules: Vec<RuleResult>,
}

/// One rule after conversion.
pub struct RuleResult {
    pub rule: Rule,
    /// Position among several rules of one file (`None` when the file holds one).
    pub index: Option<usize>,
    /// The rule could not be parsed or normalized: why.
    pub error: Option<Diagnostic>,
    /// What normalizing said.
    pub notes: Vec<Diagnostic>,
    pub translations: Vec<(Format, Translation)>,
}

impl RuleResult {
    /// One translation per target for counting and reporting: when a target was written
    /// in several forms (query and package), the least faithful one, which says the most.
    pub fn per_target(&self) -> Vec<&Translation> {
        let mut out: Vec<&Translation> = vec![];
        for (_, t) in &self.translations {
            match out.iter_mut().find(|o| o.target == t.target) {
                Some(o) if t.fidelity > o.fidelity => *o = t,
                Some(_) => {}
                None => out.push(t),
            }
        }
        out
    }
}

impl FileResult {
    /// The file, or one of its rules, could not be read, parsed or normalized.
    pub fn unreadable(&self) -> bool {
        self.load_diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
            || self.rules.iter().any(|r| r.error.is_some())
    }

    /// Unreadable, or some translation failed.
    pub fn failed(&self) -> bool {
        self.unreadable()
            || self
                .rules
                .iter()
                .flat_map(|r| &r.translations)
                .any(|(_, t)| t.fidelity == Fidelity::Failed)
    }
}

/// The forms a target is written in, given the `--format` list: its package
/// (`savedsearch`, `elastic-rule`) and/or its query; the query when neither is asked.
pub fn formats_for(target: Target, formats: &[Format]) -> Vec<Format> {
    let package = match target {
        Target::Spl => Some(Format::Savedsearch),
        Target::Esql => Some(Format::ElasticRule),
        _ => None,
    };
    match package {
        Some(p) if formats.contains(&p) => {
            if formats.contains(&Format::Query) && formats.len() > 1 {
                vec![Format::Query, p]
            } else {
                vec![p]
            }
        }
        _ => vec![Format::Query],
    }
}

/// Converts every rule of every input, in parallel, results in input order.
pub fn run(job: &Job, progress: bool) -> Vec<FileResult> {
    let files = inputs::collect_with_relative(job.paths);
    let bar = progress_bar(files.len() as u64, progress);
    let results: Vec<FileResult> = files
        .par_iter()
        .map(|(path, relative)| {
            let result = convert_file(job, path, relative);
            bar.inc(1);
            result
        })
        .collect();
    bar.finish_and_clear();
    results
}

/// A progress bar on stderr when it is a terminal (and `enabled`); hidden otherwise.
fn progress_bar(len: u64, enabled: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() || len < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} converting {pos}/{len} files {wide_bar} {eta}")
    {
        bar.set_style(style);
    }
    bar
}

fn convert_file(job: &Job, path: &Path, relative: &Path) -> FileResult {
    let outcome = inputs::load(path);
    let several = outcome.rules.len() > 1;
    let rules = outcome
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, rule)| convert_rule(job, rule, several.then_some(i)))
        .collect();
    FileResult {
        path: path.to_path_buf(),
        relative: relative.to_path_buf(),
        file: outcome.file,
        load_diagnostics: outcome.diagnostics,
        rules,
    }
}

fn convert_rule(job: &Job, rule: Rule, index: Option<usize>) -> RuleResult {
    let normalized = inputs::guarded(|| crate::normalize_rule(&rule, job.functions));
    let (detection, notes) = match normalized {
        Ok(ok) => ok,
        Err(d) => {
            return RuleResult {
                rule,
                index,
                error: Some(d),
                notes: vec![],
                translations: vec![],
            };
        }
    };
    let mut translations = vec![];
    for &target in job.targets {
        for format in formats_for(target, job.formats) {
            let cx = Context {
                rule: &rule,
                detection: &detection,
                notes: &notes,
                mappings: job.mappings,
                format,
            };
            let translation = inputs::guarded(|| Ok(crate::target::translate(target, &cx)))
                .unwrap_or_else(|d| Translation {
                    target,
                    text: String::new(),
                    fidelity: Fidelity::Failed,
                    diagnostics: vec![d],
                });
            translations.push((format, translation));
        }
    }
    RuleResult {
        rule,
        index,
        error: None,
        notes,
        translations,
    }
}

/// `DIR/<target>/<relative path>.<ext>`; a file holding several rules gets one output
/// per rule, numbered.
pub fn output_path(
    dir: &Path,
    target: Target,
    format: Format,
    relative: &Path,
    index: Option<usize>,
) -> PathBuf {
    let mut path = dir.join(target.name()).join(relative);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = target.extension(format);
    path.set_file_name(match index {
        Some(i) => format!("{stem}.{i}.{extension}"),
        None => format!("{stem}.{extension}"),
    });
    path
}

/// Counts per target: exact, approximated, failed.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Tally {
    pub exact: usize,
    pub approximate: usize,
    pub failed: usize,
}

pub fn tally(results: &[FileResult], targets: &[Target]) -> Vec<(Target, Tally)> {
    targets
        .iter()
        .map(|&target| {
            let mut t = Tally::default();
            for file in results {
                // A file that yielded no rule counts once as failed for every target.
                if file.rules.is_empty() {
                    t.failed += 1;
                }
                for rule in &file.rules {
                    if rule.error.is_some() {
                        t.failed += 1;
                        continue;
                    }
                    for tr in rule
                        .per_target()
                        .into_iter()
                        .filter(|tr| tr.target == target)
                    {
                        match tr.fidelity {
                            Fidelity::Exact => t.exact += 1,
                            Fidelity::Approximate => t.approximate += 1,
                            Fidelity::Failed => t.failed += 1,
                        }
                    }
                }
            }
            (target, t)
        })
        .collect()
}

/// The summary table printed after a batch.
pub fn summary_table(tallies: &[(Target, Tally)]) -> String {
    let mut out = String::from("target   exact  approximated  failed\n");
    for (target, t) in tallies {
        out.push_str(&format!(
            "{:<8} {:>5}  {:>12}  {:>6}\n",
            target.name(),
            t.exact,
            t.approximate,
            t.failed
        ));
    }
    out
}

// ---- reports ------------------------------------------------------------------------

#[derive(Serialize)]
struct Report<'a> {
    kqlc_version: &'static str,
    summary: Vec<TargetSummary>,
    rules: Vec<RuleReport<'a>>,
}

#[derive(Serialize)]
struct TargetSummary {
    target: Target,
    #[serde(flatten)]
    tally: Tally,
}

#[derive(Serialize)]
struct RuleReport<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    /// Why the rule (or its file) produced nothing, if so.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<diag::Located>,
    targets: Vec<TargetReport>,
}

#[derive(Serialize)]
struct TargetReport {
    target: Target,
    status: Fidelity,
    diagnostics: Vec<diag::Located>,
}

/// The report as JSON: per rule and target, the status and every diagnostic.
pub fn report_json(results: &[FileResult], targets: &[Target]) -> String {
    let rules = report_rules(results);
    let report = Report {
        kqlc_version: env!("CARGO_PKG_VERSION"),
        summary: tally(results, targets)
            .into_iter()
            .map(|(target, tally)| TargetSummary { target, tally })
            .collect(),
        rules,
    };
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}

fn report_rules(results: &[FileResult]) -> Vec<RuleReport<'_>> {
    let mut rules = vec![];
    for file in results {
        if file.rules.is_empty() {
            rules.push(RuleReport {
                file: file.path.display().to_string(),
                index: None,
                name: None,
                id: None,
                errors: file
                    .load_diagnostics
                    .iter()
                    .map(|d| diag::Located::new(d, &file.file))
                    .collect(),
                targets: vec![],
            });
        }
        for rule in &file.rules {
            rules.push(RuleReport {
                file: file.path.display().to_string(),
                index: rule.index,
                name: rule.rule.metadata.name.as_deref(),
                id: rule.rule.metadata.id.as_deref(),
                errors: rule
                    .error
                    .iter()
                    .map(|d| diag::Located::new(d, &rule.rule.file))
                    .collect(),
                targets: rule
                    .per_target()
                    .into_iter()
                    .map(|t| TargetReport {
                        target: t.target,
                        status: t.fidelity,
                        diagnostics: t
                            .diagnostics
                            .iter()
                            .map(|d| diag::Located::new(d, &rule.rule.file))
                            .collect(),
                    })
                    .collect(),
            });
        }
    }
    rules
}

/// The report as Markdown: the summary, then a section per rule that was not exact.
pub fn report_markdown(results: &[FileResult], targets: &[Target]) -> String {
    let mut out = String::from(
        "# kqlc conversion report\n\n| target | exact | approximated | failed |\n|---|---:|---:|---:|\n",
    );
    for (target, t) in tally(results, targets) {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            target.name(),
            t.exact,
            t.approximate,
            t.failed
        ));
    }
    out.push_str("\n## Rules\n\n| rule | file | ");
    out.push_str(
        &targets
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(" | "),
    );
    out.push_str(" |\n|---|---|");
    out.push_str(&"---|".repeat(targets.len()));
    out.push('\n');
    for rule in report_rules(results) {
        let statuses: Vec<String> = if rule.targets.is_empty() {
            targets.iter().map(|_| "failed".to_string()).collect()
        } else {
            rule.targets
                .iter()
                .map(|t| {
                    match t.status {
                        Fidelity::Exact => "exact",
                        Fidelity::Approximate => "approximated",
                        Fidelity::Failed => "failed",
                    }
                    .to_string()
                })
                .collect()
        };
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            md_cell(rule.name.unwrap_or("")),
            md_cell(&rule.file),
            statuses.join(" | ")
        ));
    }
    out.push_str("\n## Diagnostics\n\n");
    for rule in report_rules(results) {
        let mut lines = vec![];
        for d in &rule.errors {
            lines.push(format!("- {}", md_diagnostic(d)));
        }
        for t in &rule.targets {
            for d in &t.diagnostics {
                lines.push(format!("- **{}**: {}", t.target.name(), md_diagnostic(d)));
            }
        }
        if lines.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "### {}\n\n`{}`\n\n{}\n\n",
            md_cell(rule.name.unwrap_or(&rule.file)),
            md_cell(&rule.file),
            lines.join("\n")
        ));
    }
    out
}

fn md_diagnostic(d: &diag::Located) -> String {
    let place = match (d.line, d.column) {
        (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
        _ => String::new(),
    };
    format!("`{}` {}{}", d.code.as_str(), md_cell(&d.message), place)
}

/// Text safe inside a Markdown table cell.
fn md_cell(text: &str) -> String {
    crate::target::one_line(text).replace('|', "\\|")
}
