//! One value tree for YAML and JSON rule fields that keeps keys in file order.
//!
//! `serde_json::Value` sorts object keys (the crate's `preserve_order` feature is off),
//! and `customDetails` must stay in file order, so both loaders read into [`Node`]:
//! JSON through `Deserialize` (serde_json's recursion limit still applies), YAML by
//! converting `serde_yaml::Value`.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Node>),
    /// Entries in file order; a repeated key keeps only its last value (as serde_json).
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value of `key` in a map.
    pub(super) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    /// Words for error messages: "a list", "the number 5", ...
    pub(super) fn describe(&self) -> String {
        match self {
            Node::Null => "nothing (null)".to_string(),
            Node::Bool(b) => format!("`{b}`"),
            Node::Number(n) => format!("the number {n}"),
            Node::String(s) if s.chars().count() <= 40 => format!("the text `{s}`"),
            Node::String(_) => "a long text".to_string(),
            Node::Seq(_) => "a list".to_string(),
            Node::Map(_) => "a mapping".to_string(),
        }
    }

    pub(super) fn to_json(&self) -> serde_json::Value {
        match self {
            Node::Null => serde_json::Value::Null,
            Node::Bool(b) => serde_json::Value::Bool(*b),
            Node::Number(n) => serde_json::Value::Number(n.clone()),
            Node::String(s) => serde_json::Value::String(s.clone()),
            Node::Seq(items) => serde_json::Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Converts a YAML value. Tags are dropped (Sentinel rules use none); keys that
    /// are not strings are written as YAML would print them.
    pub(super) fn from_yaml(value: &serde_yaml::Value) -> Node {
        use serde_yaml::Value;
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => yaml_number(n),
            Value::String(s) => Node::String(s.clone()),
            Value::Sequence(items) => Node::Seq(items.iter().map(Node::from_yaml).collect()),
            Value::Mapping(mapping) => Node::Map(dedup(
                mapping
                    .iter()
                    .map(|(k, v)| (yaml_key(k), Node::from_yaml(v)))
                    .collect(),
            )),
            Value::Tagged(tagged) => Node::from_yaml(&tagged.value),
        }
    }
}

fn yaml_number(n: &serde_yaml::Number) -> Node {
    if let Some(u) = n.as_u64() {
        Node::Number(u.into())
    } else if let Some(i) = n.as_i64() {
        Node::Number(i.into())
    } else {
        // NaN and infinities have no JSON number: keep them as text.
        n.as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Node::String(n.to_string()), Node::Number)
    }
}

fn yaml_key(key: &serde_yaml::Value) -> String {
    use serde_yaml::Value;
    match key {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Tagged(tagged) => yaml_key(&tagged.value),
        // A list or mapping as a key: no Sentinel field looks like this.
        Value::Sequence(_) | Value::Mapping(_) => serde_yaml::to_string(key)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}

/// Keeps the last value of each key, at the position of that last occurrence.
fn dedup(entries: Vec<(String, Node)>) -> Vec<(String, Node)> {
    let mut seen = HashSet::new();
    let mut kept: Vec<(String, Node)> = entries
        .into_iter()
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    kept.reverse();
    kept
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Node::Null, Node::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            entries.push((key, value));
        }
        Ok(Node::Map(dedup(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_key_order_and_last_duplicate() {
        let node: Node = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        let Node::Map(entries) = node else {
            panic!("not a map")
        };
        let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(entries[1].1, Node::Number(3.into()));
    }

    #[test]
    fn yaml_converts_keys_and_numbers() {
        let value: serde_yaml::Value = serde_yaml::from_str("z: 1\n5: x\ny: 1.5\nt: true").unwrap();
        let node = Node::from_yaml(&value);
        assert_eq!(node.get("z"), Some(&Node::Number(1.into())));
        assert_eq!(node.get("5"), Some(&Node::String("x".into())));
        assert_eq!(node.get("t"), Some(&Node::Bool(true)));
        assert_eq!(node.to_json()["y"], serde_json::json!(1.5));
    }
}
