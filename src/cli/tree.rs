//! A readable tree of any serialisable stage output (AST, IR): one node per line with its
//! kind and scalar fields, children indented below. Spans and empty lists are left out,
//! and small nodes are folded into their parent's line.

use serde_json::{Map, Value};

/// Keys that name a node's kind, in the order they are looked for.
const KIND_KEYS: &[&str] = &[
    "statement",
    "operator",
    "expr",
    "source",
    "stage",
    "predicate",
    "piece",
    "kind",
    "type",
    "op",
    "test",
    "range",
];
/// Fields left out when they hold their default: they would be on every line.
const QUIET_DEFAULTS: &[(&str, Value)] = &[("obfuscated", Value::Bool(false))];

pub fn render(root_label: &str, value: &Value) -> String {
    let mut out = String::new();
    node(&mut out, root_label, value, "", "");
    out
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The node's kind: the values of its kind keys (`expr pipeline` for a statement that is
/// an expression).
fn kind_of(map: &Map<String, Value>) -> Option<String> {
    let kinds: Vec<&str> = KIND_KEYS
        .iter()
        .filter_map(|k| map.get(*k).and_then(Value::as_str))
        .collect();
    (!kinds.is_empty()).then(|| kinds.join(" "))
}

fn is_kind_field(key: &str, value: &Value) -> bool {
    KIND_KEYS.contains(&key) && value.is_string()
}

fn visible_fields(map: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    map.iter().filter(move |(k, v)| {
        k.as_str() != "span"
            && !is_kind_field(k, v)
            && !v.is_null()
            && !matches!(v, Value::Array(a) if a.is_empty())
            && !QUIET_DEFAULTS.iter().any(|(qk, qv)| qk == k && qv == *v)
    })
}

/// An object small enough to print on one line: only scalars, or one small child.
fn inline(value: &Value) -> Option<String> {
    let Value::Object(map) = value else {
        return is_scalar(value).then(|| scalar_text(value));
    };
    // A field path (`{column, path: [..], decoded: [..]}`) reads best dotted, with its
    // decoding steps as KQL writes them: `parse_json(tostring(InitiatedBy.user)).ipAddress`.
    if let (Some(Value::String(column)), Some(Value::Array(steps))) =
        (map.get("column"), map.get("path"))
        && steps.iter().all(is_scalar)
        && map
            .keys()
            .all(|k| matches!(k.as_str(), "column" | "path" | "decoded"))
    {
        let decoded: Vec<u64> = map
            .get("decoded")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let mut dotted = column.clone();
        for (i, step) in steps.iter().enumerate() {
            if decoded.contains(&(i as u64)) {
                dotted = format!("parse_json(tostring({dotted}))");
            }
            match step {
                Value::String(k) => dotted.push_str(&format!(".{k}")),
                other => dotted.push_str(&format!("[{other}]")),
            }
        }
        if decoded.contains(&(steps.len() as u64)) {
            dotted = format!("parse_json(tostring({dotted}))");
        }
        return Some(dotted);
    }
    let mut parts: Vec<String> = kind_of(map).into_iter().collect();
    let mut objects = 0;
    for (k, v) in visible_fields(map) {
        if is_scalar(v) {
            // A lone `value`/`name` reads better without its key.
            if (k == "value" || k == "name") && map.len() <= 3 {
                parts.push(scalar_text(v));
            } else {
                parts.push(format!("{k}={}", scalar_text(v)));
            }
        } else {
            objects += 1;
            if objects > 1 {
                return None;
            }
            parts.push(inline(v)?);
        }
    }
    Some(parts.join(" "))
}

fn node(out: &mut String, label: &str, value: &Value, prefix: &str, branch: &str) {
    let label = if label.is_empty() {
        String::new()
    } else {
        format!("{label}: ")
    };
    let child_prefix = format!(
        "{prefix}{}",
        match branch {
            "├─ " => "│  ",
            "└─ " => "   ",
            _ => "",
        }
    );
    if let Some(line) = inline(value) {
        out.push_str(&format!("{prefix}{branch}{label}{line}\n"));
        return;
    }
    match value {
        Value::Object(map) => {
            let head: Vec<String> = kind_of(map)
                .into_iter()
                .chain(
                    visible_fields(map)
                        .filter(|(_, v)| is_scalar(v))
                        .map(|(k, v)| format!("{k}={}", scalar_text(v))),
                )
                .collect();
            out.push_str(
                &format!("{prefix}{branch}{label}{}\n", head.join(" ")).replace(": \n", ":\n"),
            );
            let kids: Vec<(&String, &Value)> =
                visible_fields(map).filter(|(_, v)| !is_scalar(v)).collect();
            for (i, (k, v)) in kids.iter().enumerate() {
                let b = if i + 1 == kids.len() {
                    "└─ "
                } else {
                    "├─ "
                };
                node(out, k, v, &child_prefix, b);
            }
        }
        Value::Array(items) => {
            // A list of one-liners reads well on one line.
            let lines: Option<Vec<String>> = items.iter().map(inline).collect();
            if let Some(lines) = lines.filter(|l| l.iter().map(String::len).sum::<usize>() < 80) {
                out.push_str(&format!("{prefix}{branch}{label}[{}]\n", lines.join(", ")));
                return;
            }
            out.push_str(&format!(
                "{prefix}{branch}{}\n",
                label.trim_end_matches(' ')
            ));
            for (i, item) in items.iter().enumerate() {
                let b = if i + 1 == items.len() {
                    "└─ "
                } else {
                    "├─ "
                };
                node(out, "", item, &child_prefix, b);
            }
        }
        scalar => out.push_str(&format!("{prefix}{branch}{label}{}\n", scalar_text(scalar))),
    }
}
