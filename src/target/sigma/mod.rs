//! The Sigma target: one YAML file per rule holding the Sigma rule(s) for its event
//! sources and, when the KQL aggregates or joins, the correlation rule over them
//! (separate YAML documents, referring to the rules by `name`).
//!
//! Field names are the mapping's Sigma names (Sentinel column names for Entra ID tables).
//! What Sigma cannot express is left out and said three times: as a diagnostic, in the
//! comment block at the top, and in the `kqlc` custom field (`exact`, `not_translated`,
//! `diagnostics` with their positions in the rule file).

mod cond;
mod meta;
mod model;
mod plan;
mod predicate;
mod yaml;

use std::collections::BTreeMap;
use std::fmt::Write;

use askama::Template;

use super::{Context, Emitted};
use crate::diag::{Code, Diagnostic, Severity};
use crate::ir::{CompareOp, Span};
use crate::mapping::MappedField;
use model::{Alias, Correlation, CorrelationKind, Threshold};
use plan::{Corr, CorrKind, Planner, Stream, Unit};
use predicate::{Column, Issue, resolve};

/// When no query period or window says how far back a correlation looks: Sentinel's
/// default query time range.
const DEFAULT_TIMESPAN: i64 = 86_400;

#[derive(Template)]
#[template(path = "sigma/rule.yml", escape = "none")]
struct RuleDoc {
    title: String,
    id: String,
    name: Option<String>,
    status: &'static str,
    description: String,
    references: Vec<String>,
    author: String,
    date: Option<String>,
    modified: Option<String>,
    tags: Vec<String>,
    logsource: Vec<(String, String)>,
    detection: String,
    fields: Vec<String>,
    falsepositives: Vec<String>,
    level: &'static str,
    kqlc: String,
}

#[derive(Template)]
#[template(path = "sigma/correlation.yml", escape = "none")]
struct CorrelationDoc {
    title: String,
    id: String,
    status: &'static str,
    description: String,
    references: Vec<String>,
    author: String,
    date: Option<String>,
    modified: Option<String>,
    tags: Vec<String>,
    correlation: String,
    fields: Vec<String>,
    falsepositives: Vec<String>,
    level: &'static str,
    kqlc: String,
}

/// Translates a detection into Sigma.
pub fn emit(cx: &Context) -> Emitted {
    let mut planner = Planner::new(cx.mappings);
    let mut units = match planner.pipeline(&cx.detection.query) {
        Ok(units) => units,
        Err(fail) => return failed(cx, &planner, fail.span, &fail.message),
    };
    let mut extra: Vec<Issue> = vec![];
    apply_trigger(cx, &mut units, &mut extra);
    if let Err(message) = settle_conditions(&mut units, &mut extra, &mut planner.lost) {
        return failed(cx, &planner, None, &message);
    }
    planner.flush(&mut units);
    report_outputs(cx, &units, &mut planner);
    let mut tables: Vec<String> = vec![];
    for s in units.iter().flat_map(|u| &u.streams) {
        for t in &s.tables {
            if !tables.contains(t) {
                tables.push(t.clone());
            }
        }
    }
    for table in &tables {
        let mapping = cx.mappings.table(table);
        if plan::logsource(cx.mappings, table).is_none() {
            extra.push(Issue {
                code: Code::UnmappedSource,
                span: None,
                message: format!(
                    "no Sigma log source is known for the table `{table}`: a placeholder \
                     (`product: sentinel`, `service: {}`) is written; give one with --mapping",
                    service_name(table)
                ),
            });
        }
        if let Some(note) = mapping.and_then(|m| m.note.as_ref()) {
            extra.push(Issue {
                code: Code::SourceNote,
                span: None,
                message: format!("`{table}`: {note}"),
            });
        }
    }
    let timespan = timespan(cx, &units, &mut extra);

    let mut diagnostics: Vec<Diagnostic> = vec![];
    for issue in planner.tr.issues.iter().chain(&extra) {
        diagnostics.push(cx.diagnostic(Severity::Warning, issue.code, issue.span, &issue.message));
    }
    for issue in &planner.notes {
        let mut d = cx.diagnostic(Severity::Warning, issue.code, issue.span, &issue.message);
        d.severity = Severity::Note;
        diagnostics.push(d);
    }
    let exact = !cx
        .notes
        .iter()
        .chain(&diagnostics)
        .any(|d| d.severity >= Severity::Warning);

    let docs = Documents::new(cx, &units, timespan);
    let text = docs.render(cx, &planner, &diagnostics, exact, &tables);
    Emitted { text, diagnostics }
}

/// Output when nothing usable can be written: the comment block and the reason.
fn failed(cx: &Context, planner: &Planner, span: Option<Span>, message: &str) -> Emitted {
    let mut diagnostics: Vec<Diagnostic> = planner
        .tr
        .issues
        .iter()
        .map(|i| cx.diagnostic(Severity::Warning, i.code, i.span, &i.message))
        .collect();
    diagnostics.push(cx.diagnostic(Severity::Error, Code::Untranslatable, span, message));
    let all: Vec<Diagnostic> = cx.notes.iter().chain(&diagnostics).cloned().collect();
    let mut text = comment_block(cx, &all);
    let _ = writeln!(
        text,
        "# No Sigma rule was written: {}",
        yaml::comment_text(&super::one_line(message))
    );
    Emitted { text, diagnostics }
}

/// The comment block at the top of the file, safe for YAML readers.
fn comment_block(cx: &Context, diagnostics: &[Diagnostic]) -> String {
    super::header("#", cx.rule, diagnostics)
        .lines()
        .map(|l| format!("{}\n", yaml::comment_text(l)))
        .collect()
}

/// The alert trigger (number of result rows compared with a threshold) on top of the
/// correlation, when it says more than "at least one row".
fn apply_trigger(cx: &Context, units: &mut [Unit], extra: &mut Vec<Issue>) {
    let trigger = cx.detection.alert.trigger;
    let default = trigger.is_none_or(|t| t.op == CompareOp::Gt && t.threshold == 0);
    for unit in units.iter_mut() {
        if let Some(corr) = unit.corr.as_mut() {
            // At least one event per group: the trigger's "more than 0 results".
            if corr.condition.is_none() && corr.kind != CorrKind::Temporal {
                corr.condition = Some(Threshold {
                    op: "gte",
                    value: 1,
                });
            }
            if !default && let Some(t) = trigger {
                extra.push(Issue {
                    code: Code::MatchesMore,
                    span: None,
                    message: format!(
                        "the rule alerts when the query returns {} {} rows; the Sigma correlation \
                         alerts for each group that qualifies: the rule matches more",
                        op_words(t.op),
                        t.threshold
                    ),
                });
            }
        } else if !default && let Some(t) = trigger {
            let threshold = i64::try_from(t.threshold).unwrap_or(i64::MAX);
            unit.corr = Some(Corr::count(Threshold {
                op: threshold_op(t.op),
                value: threshold,
            }));
            if t.op != CompareOp::Gt && t.op != CompareOp::Ge {
                extra.push(Issue {
                    code: Code::MatchesFewer,
                    span: None,
                    message: format!(
                        "the rule alerts when the query returns {} {} rows; when no event \
                         matches at all, Sigma backends have no count to compare, so that case \
                         is missed: the rule matches fewer",
                        op_words(t.op),
                        t.threshold
                    ),
                });
            }
        }
    }
}

fn op_words(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Gt => "more than",
        CompareOp::Ge => "at least",
        CompareOp::Lt => "fewer than",
        CompareOp::Le => "at most",
        CompareOp::Eq => "exactly",
        CompareOp::Ne => "other than",
    }
}

fn threshold_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Gt => "gt",
        CompareOp::Ge => "gte",
        CompareOp::Lt => "lt",
        CompareOp::Le => "lte",
        CompareOp::Eq => "eq",
        CompareOp::Ne => "neq",
    }
}

/// Streams whose condition is constant: one that never matches is dropped; one with no
/// condition left gets "has a value in the group-by field", or is dropped from a temporal
/// correlation; with nothing left to write, the translation fails.
fn settle_conditions(
    units: &mut Vec<Unit>,
    extra: &mut Vec<Issue>,
    lost: &mut Vec<String>,
) -> Result<(), String> {
    for unit in units.iter_mut() {
        let temporal = matches!(
            unit.corr,
            Some(Corr {
                kind: CorrKind::Temporal,
                ..
            })
        );
        if temporal
            && unit
                .streams
                .iter()
                .any(|s| s.cond == cond::Cond::Const(false))
        {
            unit.streams.clear();
            continue;
        }
        unit.streams.retain(|s| s.cond != cond::Cond::Const(false));
        let mut keep = vec![];
        let constrained = unit
            .streams
            .iter()
            .filter(|s| s.cond != cond::Cond::Const(true))
            .count();
        for (i, stream) in unit.streams.iter_mut().enumerate() {
            if stream.cond != cond::Cond::Const(true) {
                keep.push(true);
                continue;
            }
            let key_field = unit
                .corr
                .as_ref()
                .and_then(|c| c.keys.first())
                .and_then(|k| k.fields.get(i).cloned());
            if temporal && constrained > 0 {
                extra.push(Issue {
                    code: Code::MatchesMore,
                    span: None,
                    message: format!(
                        "no condition on `{}` events can be written in Sigma: they are left out \
                         of the correlation, so the rule matches more events",
                        stream.tables.join("`, `")
                    ),
                });
                lost.push(format!(
                    "the `{}` events of the correlation",
                    stream.tables.join("`, `")
                ));
                keep.push(false);
            } else if let Some(field) = key_field {
                extra.push(Issue {
                    code: Code::MatchesFewer,
                    span: None,
                    message: format!(
                        "the rule has no condition on `{}` events Sigma can write; it selects the \
                         events that have a `{field}` (the group-by field), so events without \
                         one are not counted: the rule matches fewer events",
                        stream.tables.join("`, `")
                    ),
                });
                stream.cond = plan::has_value(&field);
                keep.push(true);
            } else {
                keep.push(false);
            }
        }
        let mut k = keep.into_iter();
        let before = unit.streams.len();
        unit.streams.retain(|_| k.next().unwrap_or(false));
        if let Some(corr) = unit.corr.as_mut()
            && unit.streams.len() != before
        {
            // Keys index streams: keep only keys every remaining stream has.
            corr.keys.clear();
        }
        if temporal && unit.streams.len() == 1 {
            unit.corr = None;
        }
    }
    units.retain(|u| !u.streams.is_empty());
    if units.is_empty() {
        return Err(
            "no condition of the rule can be written in Sigma, and a Sigma rule needs one".into(),
        );
    }
    Ok(())
}

/// How far back correlations look: the `bin()` size, else the query period or window,
/// else a day (said).
fn timespan(cx: &Context, units: &[Unit], extra: &mut Vec<Issue>) -> i64 {
    let period = cx.detection.alert.period_seconds.map(|p| p as i64);
    let window = units
        .iter()
        .flat_map(|u| &u.streams)
        .filter_map(|s| s.window)
        .max();
    let lookback = match (period, window) {
        (Some(p), Some(w)) => Some(p.min(w)),
        (p, w) => p.or(w),
    };
    let needs = units
        .iter()
        .any(|u| u.corr.as_ref().is_some_and(|c| c.timespan.is_none()));
    match lookback {
        Some(l) if l > 0 => l,
        _ => {
            if needs {
                extra.push(Issue {
                    code: Code::TargetLimit,
                    span: None,
                    message: "the rule has no query period or time window; a Sigma correlation \
                              needs a time span: 1d is written (Sentinel's default query range)"
                        .into(),
                });
            }
            DEFAULT_TIMESPAN
        }
    }
}

/// Says which output columns are computed (Sigma rules output events' own fields).
fn report_outputs(cx: &Context, units: &[Unit], planner: &mut Planner) {
    let mut wanted: Vec<String> = vec![];
    for e in &cx.rule.metadata.entity_mappings {
        for (_, column) in &e.field_mappings {
            wanted.push(column.clone());
        }
    }
    for (_, column) in &cx.rule.metadata.custom_details {
        wanted.push(column.clone());
    }
    let mut by_span: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
    // Columns computed outputs read that the table does not have: (column, table) -> outputs.
    let mut missing: BTreeMap<(String, String), (Span, Vec<String>)> = BTreeMap::new();
    for unit in units {
        if unit.aggregated() {
            for (name, (at, text)) in &unit.post_env {
                let entry = format!("`{name} = {text}`");
                let list = by_span.entry((at.start, at.end)).or_default();
                if !list.contains(&entry) {
                    list.push(entry);
                }
            }
            continue;
        }
        for stream in &unit.streams {
            let mut names: Vec<String> = match &stream.columns {
                Some(cols) => cols.clone(),
                None => stream
                    .env
                    .iter()
                    .filter(|(_, c)| matches!(c, Column::Computed { .. }))
                    .map(|(n, _)| n.clone())
                    .collect(),
            };
            names.extend(wanted.iter().cloned());
            for name in names {
                let Some(Column::Computed { value, at }) = stream.env.get(&name) else {
                    continue;
                };
                let text = format!(
                    "`{name} = {}`",
                    predicate::short(&super::kql::scalar(value).to_string())
                );
                let list = by_span.entry((at.start, at.end)).or_default();
                if !list.contains(&text) {
                    list.push(text);
                }
                let mut read = std::collections::BTreeSet::new();
                crate::ir::visit::scalar_columns(value, &mut read);
                for column in read {
                    let scalar = crate::ir::Scalar::Field {
                        path: crate::ir::FieldPath::column(&column),
                    };
                    let Ok((path, _, _)) = resolve(&scalar, &stream.env) else {
                        continue;
                    };
                    for table in &stream.tables {
                        if predicate::lookup(cx.mappings, Some(table), &path)
                            == MappedField::NoEquivalent
                        {
                            let entry = missing
                                .entry((path.dotted(), table.clone()))
                                .or_insert((*at, vec![]));
                            if !entry.1.contains(&name) {
                                entry.1.push(name.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    for ((column, table), (at, outputs)) in missing {
        planner.tr.issue(
            Code::NoEquivalentField,
            Some(at),
            format!(
                "`{column}`, read by the computed column(s) `{}`, is not a column of `{table}` \
                 (the mapping has no Sigma field for it); no field is invented for it",
                outputs.join("`, `")
            ),
        );
    }
    for ((start, end), list) in by_span {
        let joined = list.join(", ");
        planner.tr.issue(
            Code::NotTranslated,
            Some(Span { start, end }),
            format!(
                "the output columns {joined} are computed; a Sigma rule outputs the matched \
                 events' own fields, so they are not produced"
            ),
        );
        planner
            .lost
            .push(format!("computed output columns {joined}"));
    }
}

fn service_name(table: &str) -> String {
    table.to_ascii_lowercase()
}

/// The documents of the output, named and identified.
struct Documents {
    title: String,
    main_id: uuid::Uuid,
    original_id: Option<String>,
    /// (name, stream, is it referenced by a correlation)
    rules: Vec<(String, Stream, bool)>,
    /// (correlation, names of its rules)
    correlations: Vec<(Correlation, usize)>,
}

impl Documents {
    fn new(cx: &Context, units: &[Unit], timespan: i64) -> Documents {
        let title = meta::title(cx.rule);
        let (main_id, original_id) = meta::rule_id(cx.rule);
        let slug = meta::slug(&title);
        let total: usize = units.iter().map(|u| u.streams.len()).sum();
        let mut names: Vec<String> = vec![];
        let mut rules = vec![];
        let mut correlations = vec![];
        for (u, unit) in units.iter().enumerate() {
            let mut unit_names = vec![];
            for stream in &unit.streams {
                // The id's first characters keep names unique across a directory of
                // outputs (correlations refer to rules by name).
                let short_id = &main_id.simple().to_string()[..8];
                let base = if total == 1 {
                    format!("{slug}_{short_id}")
                } else {
                    format!(
                        "{slug}_{}_{short_id}",
                        meta::slug(&crate::mapping::snake_case(stream.table()))
                    )
                };
                let mut name = base.clone();
                let mut n = 2;
                while names.contains(&name) {
                    name = format!("{base}_{n}");
                    n += 1;
                }
                names.push(name.clone());
                unit_names.push(name.clone());
                rules.push((name, stream.clone(), unit.corr.is_some()));
            }
            if let Some(corr) = &unit.corr {
                let (group_by, aliases) = group_by(corr, &unit_names);
                let kind = match &corr.kind {
                    CorrKind::EventCount => CorrelationKind::EventCount,
                    CorrKind::ValueCount(f) => CorrelationKind::ValueCount { field: f.clone() },
                    CorrKind::Temporal => CorrelationKind::Temporal,
                };
                correlations.push((
                    Correlation {
                        kind,
                        rules: unit_names,
                        aliases,
                        group_by,
                        timespan: plan::duration(corr.timespan.unwrap_or(timespan)),
                        condition: corr.condition,
                    },
                    u,
                ));
            }
        }
        Documents {
            title,
            main_id,
            original_id,
            rules,
            correlations,
        }
    }

    fn render(
        &self,
        cx: &Context,
        planner: &Planner,
        diagnostics: &[Diagnostic],
        exact: bool,
        tables: &[String],
    ) -> String {
        let all: Vec<Diagnostic> = cx.notes.iter().chain(diagnostics).cloned().collect();
        let mut out = comment_block(cx, &all);
        let rule = cx.rule;
        let description = meta::description(rule).unwrap_or_else(|| {
            format!(
                "Translated from the Sentinel rule {}",
                rule.file.path.display()
            )
        });
        let references: Vec<String> = meta::references(rule)
            .iter()
            .map(|r| yaml::string(r))
            .collect();
        let author = yaml::string(&meta::author(rule).unwrap_or_default());
        let date = meta::date_field(rule, &["createdDateUTC", "createdTimeUtc", "date"]);
        let modified =
            meta::date_field(rule, &["lastUpdatedDateUTC", "lastModifiedUtc", "modified"]);
        let tags = meta::tags(rule);
        let level = meta::level(rule);
        let falsepositives = vec![yaml::string("Unknown")];
        let main_kqlc = self.kqlc(cx, planner, &all, exact, tables);
        // The document that alerts carries the Sentinel rule's id and title.
        let main_is_correlation = !self.correlations.is_empty();
        let mut documents = vec![];
        for (i, (name, stream, referenced)) in self.rules.iter().enumerate() {
            let is_main = !main_is_correlation && i == 0;
            let id = if is_main {
                self.main_id
            } else {
                meta::derived_id(self.main_id, name)
            };
            let title = if self.rules.len() == 1 && !main_is_correlation {
                self.title.clone()
            } else {
                meta::truncate(
                    &format!("{} ({})", self.title, stream.tables.join(", ")),
                    256,
                )
            };
            let logsource: Vec<(String, String)> =
                match plan::logsource(cx.mappings, stream.table()) {
                    Some(ls) => ls
                        .into_iter()
                        .map(|(k, v)| (yaml::key(&k), yaml::string(&v)))
                        .collect(),
                    None => vec![
                        ("product".into(), "sentinel".into()),
                        (
                            "service".into(),
                            yaml::string(&service_name(stream.table())),
                        ),
                        (
                            "definition".into(),
                            yaml::string(&format!(
                                "kqlc placeholder: the events of the Microsoft Sentinel table {}",
                                stream.table()
                            )),
                        ),
                    ],
                };
            let detection = cond::detection(&stream.cond).yaml();
            let kqlc = if is_main {
                main_kqlc.clone()
            } else {
                let mut k = String::new();
                let _ = writeln!(k, "  tables:");
                for t in &stream.tables {
                    let _ = writeln!(k, "    - {}", yaml::string(t));
                }
                if *referenced {
                    let _ = writeln!(k, "  part_of: {}", self.main_id);
                }
                k
            };
            let doc = RuleDoc {
                title: yaml::string(&title),
                id: id.to_string(),
                name: (self.rules.len() > 1 || *referenced).then(|| yaml::string(name)),
                status: "experimental",
                description: block(&description),
                references: references.clone(),
                author: author.clone(),
                date: date.clone(),
                modified: modified.clone(),
                tags: tags.clone(),
                logsource,
                detection,
                fields: self
                    .fields(cx, stream)
                    .iter()
                    .map(|f| yaml::string(f))
                    .collect(),
                falsepositives: falsepositives.clone(),
                level,
                kqlc,
            };
            documents.push(doc.render().unwrap_or_default());
        }
        for (n, (corr, _)) in self.correlations.iter().enumerate() {
            let id = if n == 0 {
                self.main_id
            } else {
                meta::derived_id(self.main_id, &format!("correlation-{n}"))
            };
            let title = if n == 0 {
                self.title.clone()
            } else {
                meta::truncate(&format!("{} (correlation {})", self.title, n + 1), 256)
            };
            let kqlc = if n == 0 {
                main_kqlc.clone()
            } else {
                format!("  part_of: {}\n", self.main_id)
            };
            let doc = CorrelationDoc {
                title: yaml::string(&title),
                id: id.to_string(),
                status: "experimental",
                description: block(&description),
                references: references.clone(),
                author: author.clone(),
                date: date.clone(),
                modified: modified.clone(),
                tags: tags.clone(),
                correlation: corr.yaml(),
                fields: corr.group_by.iter().map(|f| yaml::string(f)).collect(),
                falsepositives: falsepositives.clone(),
                level,
                kqlc,
            };
            documents.push(doc.render().unwrap_or_default());
        }
        out.push_str(&documents.join("---\n"));
        out
    }

    /// `fields`: the projected, entity and custom-detail columns that are fields of the
    /// stream's events (time columns are implicit in Sigma). In a correlation, the entity
    /// and custom-detail columns each rule's mapping knows.
    fn fields(&self, cx: &Context, stream: &Stream) -> Vec<String> {
        let mut names: Vec<(String, bool)> = stream
            .columns
            .iter()
            .flatten()
            .map(|c| (c.clone(), false))
            .collect();
        let only_known = !self.correlations.is_empty();
        for e in &cx.rule.metadata.entity_mappings {
            for (_, column) in &e.field_mappings {
                names.push((column.clone(), only_known));
            }
        }
        for (_, column) in &cx.rule.metadata.custom_details {
            names.push((column.clone(), only_known));
        }
        let mut out: Vec<String> = vec![];
        for (name, only_known) in names {
            if matches!(name.as_str(), "TimeGenerated" | "Timestamp") {
                continue;
            }
            let scalar = crate::ir::Scalar::Field {
                path: crate::ir::FieldPath::column(&name),
            };
            let Ok((path, _, _)) = resolve(&scalar, &stream.env) else {
                continue;
            };
            let field = match predicate::lookup(cx.mappings, Some(stream.table()), &path) {
                MappedField::Mapped(f) => Some(f),
                MappedField::Unmapped(f) if !only_known => Some(f),
                _ => None,
            };
            if let Some(f) = field
                && !f.contains('|')
                && !out.contains(&f)
            {
                out.push(f);
            }
        }
        out
    }

    /// The `kqlc` custom field of the main document.
    fn kqlc(
        &self,
        cx: &Context,
        planner: &Planner,
        all: &[Diagnostic],
        exact: bool,
        tables: &[String],
    ) -> String {
        let rule = cx.rule;
        let mut k = String::new();
        let _ = writeln!(
            k,
            "  translated_from: {}",
            yaml::string(&rule.file.path.display().to_string())
        );
        if let Some(original) = &self.original_id {
            let _ = writeln!(k, "  sentinel_id: {}", yaml::string(original));
        }
        let _ = writeln!(k, "  exact: {exact}");
        let alert = &cx.detection.alert;
        if alert.frequency_seconds.is_some() || alert.period_seconds.is_some() {
            let _ = writeln!(k, "  schedule:");
            if let Some(f) = alert.frequency_seconds {
                let _ = writeln!(k, "    frequency: {}", plan::duration(f as i64));
            }
            if let Some(p) = alert.period_seconds {
                let _ = writeln!(k, "    period: {}", plan::duration(p as i64));
            }
        }
        let windows: Vec<i64> = self.rules.iter().filter_map(|(_, s, _)| s.window).collect();
        if let Some(w) = windows.iter().max() {
            let _ = writeln!(k, "  window: {}", plan::duration(*w));
        }
        let _ = writeln!(k, "  tables:");
        for t in tables {
            let _ = writeln!(k, "    - {}", yaml::string(t));
        }
        if !planner.tr.placeholders.is_empty() {
            let _ = writeln!(k, "  placeholders:");
            for p in &planner.tr.placeholders {
                let _ = writeln!(
                    k,
                    "    {}: {}",
                    yaml::key(&p.name),
                    yaml::string(&p.meaning)
                );
            }
        }
        if !planner.lost.is_empty() {
            let _ = writeln!(k, "  not_translated:");
            for l in &planner.lost {
                let _ = writeln!(k, "    - {}", yaml::string(&super::one_line(l)));
            }
        }
        if !all.is_empty() {
            let _ = writeln!(k, "  diagnostics:");
            for d in all {
                let _ = writeln!(k, "    - {}", yaml::string(&super::describe(d, rule)));
            }
        }
        k
    }
}

/// `group-by` and `aliases`: a key with the same field in every rule is that field;
/// otherwise an alias named after the KQL column.
fn group_by(corr: &Corr, rules: &[String]) -> (Vec<String>, Vec<Alias>) {
    let mut group_by = vec![];
    let mut aliases = vec![];
    for key in &corr.keys {
        let first = key.fields.first().cloned().unwrap_or_default();
        if key.fields.iter().all(|f| *f == first) {
            if !group_by.contains(&first) {
                group_by.push(first);
            }
        } else {
            let name = key.name.clone();
            aliases.push(Alias {
                name: name.clone(),
                fields: rules
                    .iter()
                    .cloned()
                    .zip(key.fields.iter().cloned())
                    .collect(),
            });
            if !group_by.contains(&name) {
                group_by.push(name);
            }
        }
    }
    (group_by, aliases)
}

/// A description as a YAML scalar: a literal block for text on several lines.
fn block(text: &str) -> String {
    yaml::literal_block(text).unwrap_or_else(|| yaml::string(text))
}
