//! Sigma rule metadata from the Sentinel rule's: identifier, title, tags, level.

use uuid::Uuid;

use crate::load::{Rule, Severity};

/// The namespace of the identifiers kqlc derives (UUIDv5 of the Sentinel id).
const NAMESPACE: Uuid = Uuid::from_u128(0x6b71_6c63_5f73_4967_6d61_5f6e_616d_6573);

/// The Sigma `id`: the Sentinel id when it is a UUID, otherwise a UUIDv5 derived from it
/// (or from the title and query when the rule has no id), so the same rule always gets
/// the same id. The second value is the original id when it is not the Sigma id.
pub fn rule_id(rule: &Rule) -> (Uuid, Option<String>) {
    match rule.metadata.id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => match Uuid::parse_str(id) {
            Ok(u) => (u, None),
            Err(_) => (
                Uuid::new_v5(&NAMESPACE, format!("sentinel-id:{id}").as_bytes()),
                Some(id.to_string()),
            ),
        },
        _ => {
            let seed = format!(
                "sentinel-rule:{}\n{}",
                rule.metadata.name.as_deref().unwrap_or(""),
                rule.query
            );
            (Uuid::new_v5(&NAMESPACE, seed.as_bytes()), None)
        }
    }
}

/// Another document's id, derived from the main one.
pub fn derived_id(main: Uuid, part: &str) -> Uuid {
    Uuid::new_v5(&main, part.as_bytes())
}

/// The rule's title (at most 256 characters, as the schema wants), or its file name.
pub fn title(rule: &Rule) -> String {
    let name = rule
        .metadata
        .name
        .as_deref()
        .map(crate::target::one_line)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            rule.file
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "Translated KQL rule".into())
        });
    truncate(&name, 256)
}

pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max - 3).collect();
        format!("{cut}...")
    }
}

/// A `name` for references from correlation rules: the title in snake_case.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    // At most 40 characters, cut at a word.
    let mut short = String::new();
    for word in out.split('_').filter(|w| !w.is_empty()) {
        if !short.is_empty() && short.len() + 1 + word.len() > 40 {
            break;
        }
        if !short.is_empty() {
            short.push('_');
        }
        short.push_str(word);
    }
    let out: String = short.chars().take(40).collect();
    if out.len() < 2 {
        "kqlc_rule".into()
    } else {
        out
    }
}

/// `attack.<tactic>` (`InitialAccess` -> `attack.initial-access`) and `attack.tNNNN[.NNN]`.
pub fn tags(rule: &Rule) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for tactic in &rule.metadata.tactics {
        let mut tag = String::from("attack.");
        let mut previous_lower = false;
        for c in tactic.trim().chars() {
            if c.is_ascii_uppercase() {
                if previous_lower {
                    tag.push('-');
                }
                tag.push(c.to_ascii_lowercase());
                previous_lower = false;
            } else if c.is_ascii_alphanumeric() {
                tag.push(c.to_ascii_lowercase());
                previous_lower = true;
            } else if c == ' ' || c == '-' || c == '_' {
                if !tag.ends_with('-') && !tag.ends_with('.') {
                    tag.push('-');
                }
                previous_lower = false;
            }
        }
        if tag.len() > "attack.".len() && !out.contains(&tag) {
            out.push(tag);
        }
    }
    for technique in &rule.metadata.techniques {
        let t = technique.trim().to_ascii_lowercase();
        let valid = t.len() >= 5
            && t.starts_with('t')
            && t[1..5].chars().all(|c| c.is_ascii_digit())
            && match &t[5..] {
                "" => true,
                rest => {
                    rest.len() == 4
                        && rest.starts_with('.')
                        && rest[1..].chars().all(|c| c.is_ascii_digit())
                }
            };
        let tag = format!("attack.{t}");
        if valid && !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

/// `level` from the severity; a rule with none (a hunting query) is informational.
pub fn level(rule: &Rule) -> &'static str {
    match rule.metadata.severity {
        Some(Severity::Informational) | None => "informational",
        Some(Severity::Low) => "low",
        Some(Severity::Medium) => "medium",
        Some(Severity::High) => "high",
    }
}

/// The description: Sentinel's often sit in quotes inside a block scalar.
pub fn description(rule: &Rule) -> Option<String> {
    let text = rule.metadata.description.as_deref()?.trim();
    let text = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(text)
        .trim();
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let text = lines.join("\n");
    (!text.is_empty()).then(|| truncate(&text, 65_000))
}

/// Links in the description and in a `references` field, if the rule has one.
pub fn references(rule: &Rule) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    if let Some(serde_json::Value::Array(items)) = rule.metadata.extra.get("references") {
        for item in items {
            if let Some(s) = item.as_str() {
                out.push(s.trim().to_string());
            }
        }
    }
    if let Some(d) = &rule.metadata.description {
        for word in d.split(|c: char| c.is_whitespace() || "()<>[]\"'`".contains(c)) {
            if word.starts_with("https://") || word.starts_with("http://") {
                out.push(word.trim_end_matches(['.', ',', ';', ':']).to_string());
            }
        }
    }
    let mut seen = vec![];
    out.retain(|r| {
        !r.is_empty() && !seen.contains(r) && {
            seen.push(r.clone());
            true
        }
    });
    out
}

/// `metadata.author.name` (Sentinel solution rules) or `author`.
pub fn author(rule: &Rule) -> Option<String> {
    let extra = &rule.metadata.extra;
    let name = extra
        .get("metadata")
        .and_then(|m| m.get("author"))
        .and_then(|a| a.get("name"))
        .or_else(|| extra.get("author"))
        .and_then(|a| a.as_str())
        .map(crate::target::one_line)
        .filter(|a| !a.is_empty());
    Some(match name {
        Some(a) => format!("{a} (Sentinel rule); translated to Sigma by kqlc"),
        None => "translated to Sigma by kqlc".to_string(),
    })
}

/// A `YYYY-MM-DD` date from a metadata field holding an ISO 8601 date or time.
pub fn date_field(rule: &Rule, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        let text = rule.metadata.extra.get(*k)?.as_str()?.trim();
        let date = text.get(..10)?;
        let b = date.as_bytes();
        let ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && date
                .chars()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        let month: u32 = date.get(5..7)?.parse().ok()?;
        let day: u32 = date.get(8..10)?.parse().ok()?;
        (ok && (1..=12).contains(&month) && (1..=31).contains(&day)).then(|| date.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rule(yaml: &str) -> Rule {
        crate::load::load_bytes(Path::new("r.yaml"), yaml.as_bytes())
            .unwrap()
            .rules
            .remove(0)
    }

    #[test]
    fn ids_are_uuids_and_stable() {
        let r = rule("id: 9b1a000a-100a-410a-910a-aadprov0000a\nname: X\nquery: T\n");
        let (id, original) = rule_id(&r);
        assert_eq!(
            original.as_deref(),
            Some("9b1a000a-100a-410a-910a-aadprov0000a")
        );
        assert_eq!(rule_id(&r).0, id);
        let r = rule("id: 157c0cfc-d76d-463b-8755-c781608cdc1a\nname: X\nquery: T\n");
        assert_eq!(
            rule_id(&r).0.to_string(),
            "157c0cfc-d76d-463b-8755-c781608cdc1a"
        );
    }

    #[test]
    fn tags_follow_attack_conventions() {
        let r = rule(
            "name: X\ntactics: [InitialAccess, CommandAndControl, PrivilegeEscalation]\n\
             relevantTechniques: [T1078, T1078.004, bogus, T1078]\nquery: T\n",
        );
        assert_eq!(
            tags(&r),
            [
                "attack.initial-access",
                "attack.command-and-control",
                "attack.privilege-escalation",
                "attack.t1078",
                "attack.t1078.004"
            ]
        );
    }

    #[test]
    fn slugs_and_durations() {
        assert_eq!(
            slug("TAP Added to Entra Connector Account (Backdoor)"),
            "tap_added_to_entra_connector_account"
        );
        assert_eq!(crate::target::sigma::plan::duration(3600), "1h");
        assert_eq!(crate::target::sigma::plan::duration(1_209_600), "14d");
        assert_eq!(crate::target::sigma::plan::duration(90), "90s");
    }
}
