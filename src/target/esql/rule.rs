//! The Elastic detection rule (`--format elastic-rule`): one JSON object in the form
//! Kibana imports (Security > Rules > Import, or the detection engine API).
//!
//! Choices:
//! - `rule_id` is the Sentinel id when it is a UUID; otherwise a UUIDv5 of it (namespace
//!   OID, name `sentinel-rule:<id>`), so re-translating gives the same id. The original
//!   id is kept in a tag and in the note.
//! - `interval` is `queryFrequency` and `from` is `now-<queryPeriod>`: the look-back
//!   beyond the interval is the one Sentinel had (queryPeriod - queryFrequency); no
//!   extra margin for ingestion delay is added, so events indexed late can be missed, as
//!   in Sentinel. Without a schedule, Elastic's default (5m, from now-6m) is used.
//! - Severity: Informational and Low -> low (21), Medium -> medium (47), High -> high
//!   (73), Elastic's default risk scores.
//! - `enabled: false`: a translated rule is reviewed before it runs.

use serde_json::{Value, json};

use crate::diag::Diagnostic;
use crate::ir::{Pipeline, Predicate, Source, Stage};
use crate::load::Severity;
use crate::target::{Context, describe};

use super::expr::date_math;
use super::mitre;

/// `columns`: Sentinel column -> ES|QL column, where they differ (for the entity
/// mappings).
pub fn document(
    cx: &Context,
    query: &str,
    diagnostics: &[Diagnostic],
    lookups: &[String],
    columns: &[(String, String)],
) -> String {
    let meta = &cx.rule.metadata;
    let name = meta
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            cx.rule
                .file
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "Translated Sentinel rule".into())
        });
    let description = meta
        .description
        .as_deref()
        .map(clean_description)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| name.clone());
    let (rule_id, original_id) = rule_id(meta.id.as_deref(), &name, cx);
    let (severity, risk) = match meta.severity {
        Some(Severity::High) => ("high", 73),
        Some(Severity::Medium) => ("medium", 47),
        Some(Severity::Low) | Some(Severity::Informational) | None => ("low", 21),
    };
    let frequency = meta
        .query_frequency
        .as_ref()
        .map(|d| d.seconds)
        .filter(|s| *s > 0);
    let period = meta
        .query_period
        .as_ref()
        .map(|d| d.seconds)
        .filter(|s| *s > 0);
    let interval = date_math(frequency.unwrap_or(300));
    let from = format!(
        "now-{}",
        date_math(period.or(frequency.map(|f| f + 60)).unwrap_or(360))
    );
    let (threat, unknown) = threat(&meta.tactics, &meta.techniques);

    let mut tags = vec![
        "Microsoft Sentinel".to_string(),
        "Translated by kqlc".to_string(),
    ];
    for t in &meta.tactics {
        if let Some((_, n)) = mitre::tactic(t) {
            tags.push(format!("Tactic: {n}"));
        }
    }
    for t in tables(&cx.detection.query) {
        tags.push(format!("Data Source: {t}"));
    }
    if let Some(id) = &original_id {
        tags.push(format!("Sentinel ID: {id}"));
    }
    dedup(&mut tags);

    let mut note = String::from("## Translated from Microsoft Sentinel\n\n");
    note.push_str(&format!(
        "Translated by kqlc from `{}`.\n",
        cx.rule.file.path.display()
    ));
    if let Some(id) = &meta.id {
        note.push_str(&format!("Sentinel rule id: `{id}`"));
        if let Some(v) = &meta.version {
            note.push_str(&format!(", version {v}"));
        }
        note.push_str(".\n");
    }
    if let Some(s) = meta.severity {
        note.push_str(&format!("Sentinel severity: {s:?}.\n"));
    }
    if !diagnostics.is_empty() {
        note.push_str("\n### What the translation could not carry over exactly\n\n");
        for d in diagnostics {
            note.push_str(&format!("- {}\n", describe(d, cx.rule)));
        }
    }
    if !meta.entity_mappings.is_empty() {
        note.push_str("\n### Sentinel entity mappings\n\n");
        for e in &meta.entity_mappings {
            let fields: Vec<String> = e
                .field_mappings
                .iter()
                .map(|(id, col)| match columns.iter().find(|(c, _)| c == col) {
                    Some((_, esql)) => format!("{id} = `{col}` (ES|QL column `{esql}`)"),
                    None => format!("{id} = `{col}`"),
                })
                .collect();
            note.push_str(&format!("- {}: {}\n", e.entity_type, fields.join(", ")));
        }
    }
    if !unknown.is_empty() {
        note.push_str(&format!(
            "\nTechniques kqlc has no name for (named \"unknown\" in the threat field): {}.\n",
            unknown.join(", ")
        ));
    }
    let mut setup = String::new();
    if !lookups.is_empty() {
        setup.push_str("This rule reads lookup indices that must exist (index.mode: lookup):\n\n");
        for l in lookups {
            setup.push_str(&format!("- {l}\n"));
        }
    }

    let mut doc = json!({
        "rule_id": rule_id,
        "name": name,
        "description": description,
        "type": "esql",
        "language": "esql",
        "query": query,
        "enabled": false,
        "interval": interval,
        "from": from,
        "to": "now",
        "severity": severity,
        "risk_score": risk,
        "threat": threat,
        "tags": tags,
        "references": [],
        "false_positives": [],
        "max_signals": 100,
        "version": 1,
        "author": ["kqlc"],
        "note": note,
    });
    if !setup.is_empty()
        && let Value::Object(map) = &mut doc
    {
        map.insert("setup".into(), Value::String(setup));
    }
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Sentinel descriptions are often wrapped in quotes inside the YAML block.
fn clean_description(d: &str) -> String {
    let t = d.trim();
    let t = t
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(t);
    t.trim().to_string()
}

/// The rule id, and the Sentinel id when it had to be replaced.
fn rule_id(id: Option<&str>, name: &str, cx: &Context) -> (String, Option<String>) {
    match id.map(str::trim).filter(|i| !i.is_empty()) {
        Some(id) => match uuid::Uuid::parse_str(id) {
            Ok(u) => (u.hyphenated().to_string(), None),
            Err(_) => (
                derived(&format!("sentinel-rule:{id}")),
                Some(id.to_string()),
            ),
        },
        None => (
            derived(&format!(
                "sentinel-rule-file:{}#{name}",
                cx.rule.file.path.display()
            )),
            None,
        ),
    }
}

fn derived(name: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes())
        .hyphenated()
        .to_string()
}

/// The `threat` array: one entry per tactic, with the techniques that belong to it.
/// Returns the technique ids without a known name too.
fn threat(tactics: &[String], techniques: &[String]) -> (Value, Vec<String>) {
    let mut entries: Vec<(&str, &str, Vec<Value>)> = vec![];
    for t in tactics {
        if let Some((id, name)) = mitre::tactic(t)
            && !entries.iter().any(|(i, _, _)| *i == id)
        {
            entries.push((id, name, vec![]));
        }
    }
    let mut unknown = vec![];
    for raw in techniques {
        let id = raw.trim().to_ascii_uppercase();
        if id.is_empty() {
            continue;
        }
        let (parent, sub) = match id.split_once('.') {
            Some((p, s)) => (p.to_string(), Some(s.to_string())),
            None => (id.clone(), None),
        };
        let known = mitre::technique(&parent);
        let name = known.map(|k| k.0).unwrap_or_else(|| {
            unknown.push(parent.clone());
            "unknown"
        });
        let own: &[&str] = known.map(|k| k.1).unwrap_or(&[]);
        let mut technique = json!({
            "id": parent,
            "name": name,
            "reference": format!("https://attack.mitre.org/techniques/{parent}/"),
        });
        if let Some(s) = &sub {
            let sub_name = mitre::technique(&id).map(|k| k.0).unwrap_or_else(|| {
                unknown.push(id.clone());
                "unknown"
            });
            technique["subtechnique"] = json!([{
                "id": id,
                "name": sub_name,
                "reference": format!("https://attack.mitre.org/techniques/{parent}/{s}/"),
            }]);
        }
        // Under each of the rule's tactics it belongs to; else under the rule's first
        // tactic; else under its own first tactic.
        let mut placed = false;
        for (tid, _, list) in entries.iter_mut() {
            if own.contains(tid) {
                list.push(technique.clone());
                placed = true;
            }
        }
        if !placed {
            if let Some((_, _, list)) = entries.first_mut() {
                list.push(technique);
            } else if let Some((tid, tname)) = own.first().and_then(|t| mitre::tactic_by_id(t)) {
                entries.push((tid, tname, vec![technique]));
            }
        }
    }
    let value = entries
        .into_iter()
        .map(|(id, name, techniques)| {
            json!({
                "framework": "MITRE ATT&CK",
                "tactic": {
                    "id": id,
                    "name": name,
                    "reference": format!("https://attack.mitre.org/tactics/{id}/"),
                },
                "technique": techniques,
            })
        })
        .collect();
    dedup(&mut unknown);
    (Value::Array(value), unknown)
}

/// The Sentinel tables a query reads.
fn tables(p: &Pipeline) -> Vec<String> {
    let mut out = vec![];
    collect_tables(p, &mut out);
    dedup(&mut out);
    out
}

fn collect_tables(p: &Pipeline, out: &mut Vec<String>) {
    match &p.source {
        Source::Table { name, .. } => out.push(name.clone()),
        Source::Union { inputs, .. } => inputs.iter().for_each(|i| collect_tables(i, out)),
        _ => {}
    }
    for s in &p.stages {
        match s {
            Stage::Join { right, .. } => collect_tables(right, out),
            Stage::Filter { predicate, .. } => predicate_tables(predicate, out),
            _ => {}
        }
    }
}

fn predicate_tables(p: &Predicate, out: &mut Vec<String>) {
    match p {
        Predicate::And { all } => all.iter().for_each(|q| predicate_tables(q, out)),
        Predicate::Or { any } => any.iter().for_each(|q| predicate_tables(q, out)),
        Predicate::InQuery { query, .. } => collect_tables(query, out),
        _ => {}
    }
}

fn dedup(items: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threat_groups_techniques_under_their_tactics() {
        let (t, unknown) = threat(
            &["InitialAccess".into(), "Persistence".into()],
            &["T1078".into(), "T1078.004".into(), "T9999".into()],
        );
        let arr = t.as_array().unwrap();
        assert_eq!(arr.len(), 2);
        assert_eq!(arr[0]["tactic"]["id"], "TA0001");
        assert_eq!(arr[0]["technique"][0]["name"], "Valid Accounts");
        assert_eq!(
            arr[0]["technique"][1]["subtechnique"][0]["name"],
            "Cloud Accounts"
        );
        // Unknown techniques go under the first tactic, named "unknown".
        assert!(
            arr[0]["technique"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["id"] == "T9999" && t["name"] == "unknown")
        );
        assert_eq!(unknown, vec!["T9999".to_string()]);
    }

    #[test]
    fn descriptions_lose_their_wrapping_quotes() {
        assert_eq!(clean_description("'a rule'\n"), "a rule");
    }
}
