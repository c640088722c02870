//! ARM templates exported from a Sentinel workspace: one JSON file, many rules.
//!
//! Rules are the resources whose `type` ends with `alertRules`
//! (`Microsoft.OperationalInsights/workspaces/providers/alertRules`,
//! `Microsoft.SecurityInsights/alertRules`). Also read: a single rule resource, a JSON
//! array of them, the REST API's `{ "value": [...] }` list, and rules nested in a
//! resource's `resources` or in a content package's `properties.mainTemplate`.
//!
//! serde_json gives no positions, so a small scanner walks the text again to find each
//! rule's `query` string; the string is then decoded here with its escapes, recording
//! where each byte comes from, and checked against serde_json's value.

use std::collections::{HashMap, HashSet};

use super::metadata::{Dialect, FieldReport};
use super::node::Node;
use super::position::QueryMapBuilder;
use super::{
    LoadError, LoadErrorKind, Loaded, Metadata, QueryMap, Rule, RuleFormat, RuleKind, SourceFile,
};

pub(super) fn load(file: SourceFile) -> Result<Loaded, LoadError> {
    let shared = file.text.clone();
    let text: &str = &shared;
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let body = &text[bom..];
    if body.trim().is_empty() {
        return Err(no_rules(
            "the file is empty: expected an ARM template with Sentinel analytics rules",
        ));
    }
    let root: Node = serde_json::from_str(body).map_err(|e| json_error(text, bom, &e))?;
    let mut found = Vec::new();
    collect_rules(&root, &mut Vec::new(), &mut found);
    if found.is_empty() {
        return Err(no_rules(
            "no Sentinel analytics rule in the file: expected resources of type `Microsoft.SecurityInsights/alertRules` (or `.../providers/alertRules`)",
        ));
    }

    // Ask the scanner only for the places needed: each resource, and each field of
    // its `properties` (the query, and fields that may be reported as invalid).
    let mut wanted = HashSet::new();
    for rule in &found {
        wanted.insert(rule.resource_path.clone());
        if let Node::Map(fields) = rule.properties {
            for (key, _) in fields {
                wanted.insert(child(&rule.properties_path, key));
            }
        }
        wanted.insert(child(&rule.properties_path, "query"));
    }
    let spans = value_spans(text, bom, &wanted);

    let mut loaded = Loaded::default();
    for (index, rule) in found.iter().enumerate() {
        let resource_at = spans.get(&rule.resource_path).map(|&(s, _)| (s, s + 1));
        let query_span = spans.get(&child(&rule.properties_path, "query")).copied();
        let number = index + 1;
        let query = match rule.properties.get("query") {
            Some(Node::String(query)) => query.clone(),
            other => {
                let found = match other {
                    None => "it has no `properties.query`".to_string(),
                    Some(node) => format!("its `properties.query` is {}", node.describe()),
                };
                loaded.errors.push(LoadError {
                    kind: LoadErrorKind::MissingQuery,
                    message: format!("rule {number}{}: {found}", label(rule)),
                    span: query_span.or(resource_at),
                });
                continue;
            }
        };
        let span_of = |key: &str| spans.get(&child(&rule.properties_path, key)).copied();
        let mut report = FieldReport::new(&span_of, format!("rule {number}{}: ", label(rule)));
        let fields: &[(String, Node)] = match rule.properties {
            Node::Map(fields) => fields,
            _ => &[],
        };
        let mut metadata = Metadata::from_fields(fields, Dialect::Arm, &mut report);
        metadata.id = rule_id(rule.resource, rule.properties);
        // The resource's own fields (`apiVersion`, `name`, `type`, ...) are kept too.
        // (A bare rule object is its own `properties`: nothing more to keep.)
        let resource_fields: serde_json::Map<String, serde_json::Value> = match rule.resource {
            Node::Map(fields) if !std::ptr::eq(rule.resource, rule.properties) => fields
                .iter()
                .filter(|(k, _)| k != "properties")
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
            _ => serde_json::Map::new(),
        };
        if !resource_fields.is_empty() {
            metadata.extra.insert(
                "resource".to_string(),
                serde_json::Value::Object(resource_fields),
            );
        }
        metadata.kind = match rule.resource.get("kind") {
            Some(Node::String(kind)) => Some(RuleKind::parse(kind)),
            _ if rule.properties.get("queryFrequency").is_some() => Some(RuleKind::Scheduled),
            _ => None,
        };
        loaded.errors.extend(report.errors);
        let query_map = query_span
            .and_then(|(start, _)| decode_string(text, start))
            .filter(|builder| builder.text() == query)
            .map(QueryMapBuilder::finish)
            .unwrap_or_else(|| {
                QueryMap::approximate(query_span.or(resource_at).map_or(0, |(s, _)| s))
            });
        loaded.rules.push(Rule {
            file: file.clone(),
            format: RuleFormat::ArmTemplate { index },
            metadata,
            query,
            query_map,
        });
    }
    Ok(loaded)
}

fn no_rules(message: &str) -> LoadError {
    LoadError {
        kind: LoadErrorKind::NoRules,
        message: message.to_string(),
        span: None,
    }
}

/// A serde_json error with its place: serde_json counts lines from 1 and columns in
/// bytes from 1, in the text after the byte-order mark.
fn json_error(text: &str, bom: usize, e: &serde_json::Error) -> LoadError {
    let body = &text[bom..];
    let span = (e.line() > 0).then(|| {
        let line_start = if e.line() == 1 {
            Some(0)
        } else {
            body.match_indices('\n')
                .nth(e.line() - 2)
                .map(|(i, _)| i + 1)
        };
        let line_start = line_start.unwrap_or(body.len());
        let line_end = body[line_start..]
            .find('\n')
            .map_or(body.len(), |i| line_start + i);
        let mut at = (line_start + e.column().saturating_sub(1)).min(line_end);
        while !body.is_char_boundary(at) {
            at -= 1;
        }
        let end = body[at..].chars().next().map_or(at, |c| at + c.len_utf8());
        (bom + at, bom + end)
    });
    LoadError {
        kind: LoadErrorKind::Json,
        message: format!("invalid JSON: {e}"),
        span,
    }
}

/// A step of the path from the document root to a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    Key(String),
    Index(usize),
}

fn child(path: &[Step], key: &str) -> Vec<Step> {
    let mut path = path.to_vec();
    path.push(Step::Key(key.to_string()));
    path
}

/// A rule found in the document.
struct Found<'a> {
    resource: &'a Node,
    resource_path: Vec<Step>,
    /// The rule's fields: `resource.properties`, or the object itself for a bare rule.
    properties: &'a Node,
    properties_path: Vec<Step>,
}

/// The rule's display name for messages: ` (`name`)`, or nothing.
fn label(rule: &Found<'_>) -> String {
    rule.properties
        .get("displayName")
        .and_then(Node::as_str)
        .map(|name| format!(" (`{name}`)"))
        .unwrap_or_default()
}

fn collect_rules<'a>(node: &'a Node, path: &mut Vec<Step>, found: &mut Vec<Found<'a>>) {
    match node {
        Node::Seq(items) if path.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                collect_rules(item, path, found);
                path.pop();
            }
        }
        Node::Map(_) => {
            if is_rule_resource(node) {
                found.push(Found {
                    resource: node,
                    resource_path: path.clone(),
                    properties: node.get("properties").unwrap_or(&Node::Null),
                    properties_path: child(path, "properties"),
                });
                return;
            }
            if path.is_empty() && is_bare_rule(node) {
                found.push(Found {
                    resource: node,
                    resource_path: Vec::new(),
                    properties: node,
                    properties_path: Vec::new(),
                });
                return;
            }
            // Child resources, the REST API's list, a content package's template.
            let nested = [
                (vec!["resources"], node.get("resources")),
                (vec!["value"], node.get("value")),
                (
                    vec!["properties", "mainTemplate", "resources"],
                    node.get("properties")
                        .and_then(|p| p.get("mainTemplate"))
                        .and_then(|t| t.get("resources")),
                ),
            ];
            for (keys, list) in nested {
                let Some(Node::Seq(items)) = list else {
                    continue;
                };
                let depth = path.len();
                path.extend(keys.iter().map(|k| Step::Key(k.to_string())));
                for (i, item) in items.iter().enumerate() {
                    if matches!(item, Node::Map(_)) {
                        path.push(Step::Index(i));
                        collect_rules(item, path, found);
                        path.pop();
                    }
                }
                path.truncate(depth);
            }
        }
        _ => {}
    }
}

/// A resource of type `...alertRules`, or an untyped object with a rule's `properties`.
fn is_rule_resource(node: &Node) -> bool {
    match node.get("type") {
        Some(Node::String(kind)) => kind.to_ascii_lowercase().ends_with("alertrules"),
        Some(_) => false,
        None => matches!(node.get("properties"), Some(p) if p.get("query").is_some()),
    }
}

/// A rule's properties written on their own: `{ "displayName": ..., "query": ... }`.
fn is_bare_rule(node: &Node) -> bool {
    node.get("query").is_some()
        && node.get("resources").is_none()
        && (node.get("displayName").is_some() || node.get("queryFrequency").is_some())
}

/// The resource name's GUID (exports write
/// `[concat(parameters('workspace'),'/Microsoft.SecurityInsights/<guid>')]`), else the
/// template the rule came from, else the name's last segment.
fn rule_id(resource: &Node, properties: &Node) -> Option<String> {
    let name = resource.get("name").and_then(Node::as_str);
    if let Some(guid) = name.and_then(last_guid) {
        return Some(guid.to_string());
    }
    let template = properties
        .get("alertRuleTemplateName")
        .and_then(Node::as_str)
        .filter(|t| !t.is_empty());
    if let Some(template) = template {
        return Some(template.to_string());
    }
    let name = name?.trim();
    if name.starts_with('[') || name.is_empty() {
        // An ARM expression without a GUID: nothing stable to call the rule.
        return None;
    }
    name.rsplit('/').next().map(str::to_string)
}

/// The last `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in `text`.
fn last_guid(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(35)).rev().find_map(|i| {
        let candidate = b.get(i..i + 36)?;
        let is_guid = candidate.iter().enumerate().all(|(j, &c)| match j {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
        // Both ends are ASCII, so the slice is on char boundaries.
        is_guid.then(|| &text[i..i + 36])
    })
}

/// Walks the JSON text (already validated by serde_json) and returns the byte span of
/// each value whose path is in `wanted`. Iterative, so nesting costs no stack. A
/// repeated key keeps its last value, as serde_json does.
fn value_spans(
    text: &str,
    start: usize,
    wanted: &HashSet<Vec<Step>>,
) -> HashMap<Vec<Step>, (usize, usize)> {
    let b = text.as_bytes();
    let longest = wanted.iter().map(Vec::len).max().unwrap_or(0);
    let mut spans = HashMap::new();
    let mut record = |path: &Vec<Step>, s: usize, e: usize| {
        if path.len() <= longest && wanted.contains(path) {
            spans.insert(path.clone(), (s, e));
        }
    };
    let mut p = start;
    let mut path: Vec<Step> = Vec::new();
    // Open containers: their first byte.
    let mut open: Vec<usize> = Vec::new();
    'value: loop {
        p = skip_ws(b, p);
        let value_start = p;
        match at(b, p) {
            open_byte @ (b'{' | b'[') => {
                open.push(p);
                p = skip_ws(b, p + 1);
                let close = if open_byte == b'{' { b'}' } else { b']' };
                if at(b, p) == close {
                    p += 1;
                    open.pop();
                    record(&path, value_start, p);
                } else if open_byte == b'{' {
                    let Some((key, next)) = read_key(text, p) else {
                        return spans;
                    };
                    p = next;
                    path.push(Step::Key(key));
                    continue 'value;
                } else {
                    path.push(Step::Index(0));
                    continue 'value;
                }
            }
            b'"' => {
                let Some(end) = string_end(b, p) else {
                    return spans;
                };
                p = end;
                record(&path, value_start, p);
            }
            _ => {
                while p < b.len()
                    && !matches!(b[p], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    p += 1;
                }
                if p == value_start {
                    return spans;
                }
                record(&path, value_start, p);
            }
        }
        // After a value: the next member, or the end of containers.
        loop {
            p = skip_ws(b, p);
            let Some(&container_start) = open.last() else {
                return spans;
            };
            match at(b, p) {
                b',' => {
                    p = skip_ws(b, p + 1);
                    match path.last_mut() {
                        Some(Step::Index(i)) => *i += 1,
                        Some(step @ Step::Key(_)) => {
                            let Some((key, next)) = read_key(text, p) else {
                                return spans;
                            };
                            p = next;
                            *step = Step::Key(key);
                        }
                        None => return spans,
                    }
                    continue 'value;
                }
                b'}' | b']' => {
                    p += 1;
                    open.pop();
                    path.pop();
                    record(&path, container_start, p);
                }
                _ => return spans,
            }
        }
    }
}

fn at(b: &[u8], p: usize) -> u8 {
    b.get(p).copied().unwrap_or(0)
}

fn skip_ws(b: &[u8], mut p: usize) -> usize {
    while matches!(at(b, p), b' ' | b'\t' | b'\r' | b'\n') {
        p += 1;
    }
    p
}

/// The end (after the closing quote) of the string starting at `p`.
fn string_end(b: &[u8], p: usize) -> Option<usize> {
    let mut q = p + 1;
    loop {
        match *b.get(q)? {
            b'\\' => q += 2,
            b'"' => return Some(q + 1),
            _ => q += 1,
        }
    }
}

/// An object key at `p` and the position after its `:`.
fn read_key(text: &str, p: usize) -> Option<(String, usize)> {
    let b = text.as_bytes();
    if at(b, p) != b'"' {
        return None;
    }
    let end = string_end(b, p)?;
    let raw = text.get(p..end)?;
    let key = if raw.contains('\\') {
        serde_json::from_str::<String>(raw).ok()?
    } else {
        raw.get(1..raw.len() - 1)?.to_string()
    };
    let colon = skip_ws(b, end);
    (at(b, colon) == b':').then_some((key, colon + 1))
}

/// Decodes the JSON string whose opening quote is at `start`, mapping each byte.
fn decode_string(text: &str, start: usize) -> Option<QueryMapBuilder> {
    let b = text.as_bytes();
    if at(b, start) != b'"' {
        return None;
    }
    let mut p = start + 1;
    let mut builder = QueryMapBuilder::new(p);
    loop {
        match *b.get(p)? {
            b'"' => return Some(builder),
            b'\\' => {
                let (ch, len) = json_escape(b, p)?;
                builder.produce(ch, p, len);
                p += len;
            }
            _ => {
                let run = p;
                while p < b.len() && !matches!(b[p], b'"' | b'\\') {
                    p += 1;
                }
                builder.copy(text, run, p);
            }
        }
    }
}

/// The JSON escape at `p` (the backslash): the character and the escape's length.
/// A UTF-16 surrogate pair (`\ud83d\ude00`) is one character from one 12-byte escape.
fn json_escape(b: &[u8], p: usize) -> Option<(char, usize)> {
    let ch = match at(b, p + 1) {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\x08',
        b'f' => '\x0c',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let first = hex4(b, p + 2)?;
            if (0xD800..0xDC00).contains(&first) {
                if at(b, p + 6) != b'\\' || at(b, p + 7) != b'u' {
                    return None;
                }
                let second = hex4(b, p + 8)?;
                if !(0xDC00..0xE000).contains(&second) {
                    return None;
                }
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Some((char::from_u32(code)?, 12));
            }
            return Some((char::from_u32(first)?, 6));
        }
        _ => return None,
    };
    Some((ch, 2))
}

fn hex4(b: &[u8], p: usize) -> Option<u32> {
    let digits = std::str::from_utf8(b.get(p..p + 4)?).ok()?;
    if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;

    fn load_text(text: &str) -> Result<Loaded, LoadError> {
        load(SourceFile {
            path: PathBuf::from("export.json"),
            text: Arc::from(text),
        })
    }

    #[test]
    fn escapes_map_to_their_backslash() {
        let text = r#"{"query": "a\"b\\c\nd\/e\t\u00e9\ud83d\ude00f\r"}"#;
        let builder = decode_string(text, text.find("\"a").unwrap()).unwrap();
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(builder.text(), value["query"].as_str().unwrap());
        let query = builder.text().to_string();
        let map = builder.finish();
        let file = |needle: &str| text.find(needle).unwrap();
        assert_eq!(map.to_file(0), file("a\\\""));
        assert_eq!(map.to_file(1), file("\\\"b"));
        assert_eq!(map.to_file(2), file("b\\\\"));
        assert_eq!(map.to_file(3), file("\\\\c"));
        assert_eq!(map.to_file(5), file("\\nd"));
        assert_eq!(map.to_file(7), file("\\/"));
        let e_acute = query.find('é').unwrap();
        assert_eq!(map.to_file(e_acute), file("\\u00e9"));
        assert_eq!(map.to_file(e_acute + 1), file("\\u00e9"));
        let emoji = query.find('😀').unwrap();
        for i in 0..4 {
            assert_eq!(map.to_file(emoji + i), file("\\ud83d"));
        }
        assert_eq!(map.to_file(emoji + 4), file("f\\r"));
        assert_eq!(map.to_file(query.len()), file("\\r\"") + 2);
    }

    #[test]
    fn bad_escapes_are_refused() {
        for text in [
            r#""\x""#,
            r#""\ud83d""#,
            r#""\ud83dx""#,
            r#""\u12""#,
            r#""abc"#,
        ] {
            assert!(decode_string(text, 0).is_none(), "{text}");
        }
    }

    #[test]
    fn scanner_finds_values_by_path() {
        let text = r#" { "a" : [ 1, {"q\u0041": "x", "b": {} }, [] ], "c": null, "a": [true] } "#;
        let wanted: HashSet<Vec<Step>> = [
            vec![
                Step::Key("a".into()),
                Step::Index(1),
                Step::Key("qA".into()),
            ],
            vec![Step::Key("a".into()), Step::Index(0)],
            vec![Step::Key("c".into())],
            vec![],
        ]
        .into_iter()
        .collect();
        let spans = value_spans(text, 0, &wanted);
        let slice = |path: Vec<Step>| spans.get(&path).map(|&(s, e)| &text[s..e]);
        assert_eq!(slice(vec![Step::Key("c".into())]), Some("null"));
        // The repeated key `a` keeps its last value, as serde_json does.
        assert_eq!(
            slice(vec![Step::Key("a".into()), Step::Index(0)]),
            Some("true")
        );
        assert_eq!(
            slice(vec![
                Step::Key("a".into()),
                Step::Index(1),
                Step::Key("qA".into())
            ]),
            Some("\"x\"")
        );
        assert_eq!(slice(vec![]), Some(text.trim()));
    }

    #[test]
    fn guid_from_resource_name() {
        let name = "[concat(parameters('workspace'),'/Microsoft.SecurityInsights/0b9ae89d-8cad-461c-808f-0494f70ad5c4')]";
        assert_eq!(
            last_guid(name),
            Some("0b9ae89d-8cad-461c-808f-0494f70ad5c4")
        );
        assert_eq!(last_guid("no guid here"), None);
        assert_eq!(last_guid(""), None);
    }

    #[test]
    fn single_rule_array_and_bare_rule() {
        let resource = r#"{"type": "Microsoft.SecurityInsights/alertRules", "kind": "NRT", "name": "r1",
            "properties": {"displayName": "One", "query": "T | take 1", "severity": "Low"}}"#;
        let loaded = load_text(resource).unwrap();
        assert_eq!(loaded.rules.len(), 1);
        assert_eq!(loaded.rules[0].metadata.id.as_deref(), Some("r1"));
        assert_eq!(loaded.rules[0].metadata.kind, Some(RuleKind::Nrt));
        let q = loaded.rules[0].query_map.to_file(0);
        assert!(resource[q..].starts_with("T | take 1"));

        let array = format!("[{resource}, {{\"type\": \"Microsoft.Insights/other\"}}, {resource}]");
        let loaded = load_text(&array).unwrap();
        assert_eq!(loaded.rules.len(), 2);
        assert_eq!(loaded.rules[1].format, RuleFormat::ArmTemplate { index: 1 });
        let q = loaded.rules[1].query_map.to_file(0);
        assert!(q > array.len() / 2);

        let bare = r#"{"displayName": "Bare", "query": "T"}"#;
        let loaded = load_text(bare).unwrap();
        assert_eq!(loaded.rules[0].metadata.name.as_deref(), Some("Bare"));
        assert!(!loaded.rules[0].query_map.is_approximate());
    }

    #[test]
    fn nested_templates_and_rest_lists() {
        let rule = r#"{"type": "Microsoft.SecurityInsights/alertRules", "kind": "Scheduled",
            "name": "ws/Microsoft.SecurityInsights/rule-one",
            "properties": {"displayName": "One", "query": "T", "queryFrequency": "PT5M"}}"#;
        let package = format!(
            r#"{{"resources": [{{"type": "Microsoft.OperationalInsights/workspaces/providers/contentTemplates",
                "properties": {{"mainTemplate": {{"resources": [{rule}]}}}}}}]}}"#
        );
        let loaded = load_text(&package).unwrap();
        assert_eq!(loaded.rules.len(), 1);
        assert_eq!(loaded.rules[0].metadata.id.as_deref(), Some("rule-one"));
        assert!(!loaded.rules[0].query_map.is_approximate());
        let rest = format!(r#"{{"value": [{rule}, {rule}]}}"#);
        let loaded = load_text(&rest).unwrap();
        assert_eq!(loaded.rules.len(), 2);
        let second = loaded.rules[1].query_map.to_file(0);
        assert!(second > rest.len() / 2);
    }

    #[test]
    fn errors() {
        let err = load_text("{\n  \"resources\": [\n    {,}\n  ]\n}").unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::Json);
        assert_eq!(err.span, Some((24, 25)));
        let err = load_text("{\"resources\": []}").unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::NoRules);
        let err = load_text("\u{feff}  ").unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::NoRules);
        let err = load_text("\u{feff}{\"a\": tru}").unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::Json);
        let (s, _) = err.span.unwrap();
        assert!((9..=13).contains(&s), "{err:?}");
    }
}
