//! The savedsearches.conf stanza: the search, its schedule (`cron_schedule` from the
//! query frequency), its time range (the query period), the alert condition (the trigger
//! operator and threshold) and, for Splunk Enterprise Security, the correlation search
//! settings with the MITRE ATT&CK annotations.

use askama::Template;

use super::super::{Context, one_line};
use super::text;
use crate::diag::{Code, Diagnostic, Severity};
use crate::ir::CompareOp;
use crate::load::{RuleDuration, Severity as RuleSeverity};

#[derive(Template)]
#[template(path = "spl/savedsearch.conf", escape = "none")]
struct Stanza {
    header: String,
    stanza: String,
    description: String,
    search: String,
    earliest: Option<String>,
    cron: Option<String>,
    condition: Option<(&'static str, u64)>,
    suppress: Option<String>,
    severity: u8,
    label: String,
    annotations: String,
    title: String,
    notable_severity: &'static str,
}

/// A cron schedule running every `seconds`, and whether it runs exactly that often
/// (cron steps restart each hour, day or month).
pub(super) fn cron(seconds: u64) -> (String, bool) {
    let minutes = seconds.div_ceil(60).max(1);
    if minutes < 60 {
        return (
            if minutes == 1 {
                "* * * * *".into()
            } else {
                format!("*/{minutes} * * * *")
            },
            seconds % 60 == 0 && 60 % minutes == 0,
        );
    }
    let hours = minutes.div_ceil(60);
    if hours < 24 {
        return (
            if hours == 1 {
                "0 * * * *".into()
            } else {
                format!("0 */{hours} * * *")
            },
            minutes % 60 == 0 && 24 % hours == 0 && seconds % 60 == 0,
        );
    }
    let days = hours.div_ceil(24);
    let whole = seconds % 86_400 == 0;
    match days {
        1 => ("0 0 * * *".into(), whole),
        7 => ("0 0 * * 0".into(), whole),
        d => (format!("0 0 */{d} * *"), false),
    }
}

/// A single-line conf value: no line breaks, and no trailing backslash (which would
/// continue the value on the next line).
fn conf_value(s: &str) -> String {
    one_line(s).trim_end_matches('\\').trim_end().to_string()
}

/// The stanza for a rule, and what it says about the schedule.
pub(super) fn stanza(
    cx: &Context,
    search: &str,
    diagnostics: &[Diagnostic],
) -> (String, Vec<Diagnostic>) {
    let meta = &cx.rule.metadata;
    let alert = &cx.detection.alert;
    let mut more = vec![];
    let nrt = meta.kind == Some(crate::load::RuleKind::Nrt);
    let frequency = meta
        .query_frequency
        .as_ref()
        .map(|d| d.seconds)
        .or(alert.frequency_seconds)
        .filter(|s| *s > 0)
        // A near-real-time rule runs every minute over the events since the last run.
        .or(nrt.then_some(60));
    let period = meta
        .query_period
        .as_ref()
        .map(|d| d.seconds)
        .or(alert.period_seconds)
        .filter(|s| *s > 0)
        .or(nrt.then_some(60));
    if nrt {
        let mut d = cx.diagnostic(
            Severity::Warning,
            Code::TargetLimit,
            None,
            "a near-real-time (NRT) rule reads the events ingested since its last run; the saved search runs every minute over the last minute of event time",
        );
        d.severity = Severity::Warning;
        more.push(d);
    }
    let cron = frequency.map(|f| {
        let (c, exact) = cron(f);
        if !exact {
            let mut d = cx.diagnostic(
                Severity::Warning,
                Code::TargetLimit,
                None,
                format!(
                    "the query frequency ({}) is scheduled as `{c}`, which cron cannot make exactly periodic",
                    text::unit(f)
                ),
            );
            d.severity = Severity::Warning;
            more.push(d);
        }
        c
    });
    let condition = match alert.trigger {
        Some(t) => {
            let relation = match t.op {
                CompareOp::Gt => "greater than",
                CompareOp::Lt => "less than",
                CompareOp::Eq => "equal to",
                CompareOp::Ne => "not equal to",
                CompareOp::Ge | CompareOp::Le => {
                    // Sentinel has no such trigger operators; written as the closest.
                    if t.op == CompareOp::Ge {
                        "greater than"
                    } else {
                        "less than"
                    }
                }
            };
            Some((relation, t.threshold))
        }
        None if frequency.is_some() => Some(("greater than", 0)),
        None => None,
    };
    let suppress = match (
        meta.extra.get("suppressionEnabled"),
        meta.extra.get("suppressionDuration"),
    ) {
        (Some(serde_json::Value::Bool(true)), Some(serde_json::Value::String(d))) => {
            RuleDuration::parse(d).ok().map(|d| text::unit(d.seconds))
        }
        _ => None,
    };
    let (severity, notable_severity) = match alert.severity.or(meta.severity) {
        Some(RuleSeverity::Informational) => (2, "informational"),
        Some(RuleSeverity::Low) => (3, "low"),
        Some(RuleSeverity::Medium) | None => (4, "medium"),
        Some(RuleSeverity::High) => (5, "high"),
    };
    let name = meta
        .name
        .clone()
        .or_else(|| meta.id.clone())
        .unwrap_or_else(|| cx.rule.file.path.display().to_string());
    let stanza = conf_value(&name.replace('[', "(").replace(']', ")"));
    let stanza = if stanza.is_empty() {
        "kqlc rule".to_string()
    } else {
        stanza
    };
    let description = conf_value(meta.description.as_deref().unwrap_or(&name));
    let techniques: Vec<&String> =
        alert
            .techniques
            .iter()
            .chain(&meta.techniques)
            .fold(vec![], |mut acc, t| {
                if !acc.contains(&t) {
                    acc.push(t);
                }
                acc
            });
    let annotations = if techniques.is_empty() {
        String::new()
    } else {
        serde_json::json!({ "mitre_attack": techniques }).to_string()
    };
    // Sentinel's `{{Column}}` placeholders are `$result.Column$` tokens in a notable's title.
    let title = meta
        .alert_details_override
        .as_ref()
        .and_then(|o| o.display_name_format.clone())
        .map(|f| f.replace("{{", "$result.").replace("}}", "$"))
        .unwrap_or_else(|| name.clone());
    let mut all: Vec<Diagnostic> = cx.notes.to_vec();
    all.extend(diagnostics.iter().cloned());
    all.extend(more.iter().cloned());
    let mut header = String::new();
    for line in super::super::header("#", cx.rule, &all).lines() {
        if !line.starts_with('#') {
            header.push_str("# ");
        }
        header.push_str(line);
        header.push('\n');
    }
    if !alert.tactics.is_empty() || !meta.tactics.is_empty() {
        let tactics = if alert.tactics.is_empty() {
            &meta.tactics
        } else {
            &alert.tactics
        };
        header.push_str(&format!(
            "# MITRE ATT&CK tactics: {}\n",
            one_line(&tactics.join(", "))
        ));
    }
    // A multi-line value continues with a backslash at the end of each line.
    let search = search.lines().collect::<Vec<_>>().join(" \\\n");
    let doc = Stanza {
        header,
        stanza,
        description: description.clone(),
        search,
        earliest: period.map(|p| format!("-{}", text::unit(p))),
        cron,
        condition,
        suppress,
        severity,
        label: conf_value(&name),
        annotations,
        title: conf_value(&title),
        notable_severity,
    };
    let text = doc
        .render()
        .unwrap_or_else(|e| format!("# kqlc could not write the stanza: {e}\n"));
    (text, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_schedules() {
        assert_eq!(cron(3600), ("0 * * * *".into(), true));
        assert_eq!(cron(86_400), ("0 0 * * *".into(), true));
        assert_eq!(cron(300), ("*/5 * * * *".into(), true));
        assert_eq!(cron(7 * 60), ("*/7 * * * *".into(), false));
        assert_eq!(cron(6 * 3600), ("0 */6 * * *".into(), true));
        assert_eq!(cron(5 * 3600), ("0 */5 * * *".into(), false));
        assert!(!cron(14 * 86_400).1);
    }
}
