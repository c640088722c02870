//! Sigma rule parts as typed values (the spec's words in the doc comments), rendered to
//! YAML by [`super::yaml`]. Only what kqlc writes is modelled.

use std::fmt::Write;

use super::yaml;

/// A value in a detection. Strings hold Sigma text: wildcards (`*`, `?`) and their
/// backslash escapes are already applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// "A null value is defined with `null`."
    Null,
}

impl Value {
    fn yaml(&self) -> String {
        match self {
            Value::Str(s) => yaml::string(s),
            Value::Int(i) => i.to_string(),
            // Built only from finite floats (see `predicate::value`).
            Value::Float(f) => yaml::float(*f).unwrap_or_else(|| "null".into()),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".into(),
        }
    }
}

/// Value modifiers, appended to the field name with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    /// "The value is handled as a regular expression by backends", case-sensitive.
    Re,
    /// `re|i`: the regular expression matches case-insensitively.
    ReI,
    Cidr,
    Gt,
    Gte,
    Lt,
    Lte,
    /// "Expansion of placeholders in values" (`%name%`), by processing pipelines.
    Expand,
    /// "Lists of values are linked with AND" instead of OR.
    All,
    /// "Defines that a certain field has to exist or must not exist."
    Exists,
}

impl Modifier {
    fn name(self) -> &'static str {
        match self {
            Modifier::Contains => "contains",
            Modifier::StartsWith => "startswith",
            Modifier::EndsWith => "endswith",
            Modifier::Re => "re",
            Modifier::ReI => "re|i",
            Modifier::Cidr => "cidr",
            Modifier::Gt => "gt",
            Modifier::Gte => "gte",
            Modifier::Lt => "lt",
            Modifier::Lte => "lte",
            Modifier::Expand => "expand",
            Modifier::All => "all",
            Modifier::Exists => "exists",
        }
    }
}

/// One field test: `Field|modifiers: value` or a list of values (OR, or AND with `all`).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub field: String,
    pub modifiers: Vec<Modifier>,
    pub values: Vec<Value>,
}

impl Item {
    pub fn new(field: &str, modifiers: Vec<Modifier>, values: Vec<Value>) -> Item {
        Item {
            field: field.to_string(),
            modifiers,
            values,
        }
    }

    /// `Field|mod1|mod2`, the key this item is written under.
    pub fn key(&self) -> String {
        let mut key = self.field.clone();
        for m in &self.modifiers {
            key.push('|');
            key.push_str(m.name());
        }
        key
    }

    /// Whether another item on the same key can share this one's value list (OR).
    pub fn mergeable(&self, other: &Item) -> bool {
        self.key() == other.key() && !self.modifiers.contains(&Modifier::All)
    }
}

/// A search identifier: a map (its items all hold) or a list of maps (one of them holds).
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Map(Vec<Item>),
    List(Vec<Vec<Item>>),
}

/// The `detection` section: named selections and the condition over them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Detection {
    pub selections: Vec<(String, Selection)>,
    pub condition: String,
}

impl Detection {
    /// The YAML lines of the section's body (indented by two spaces under `detection:`).
    pub fn yaml(&self) -> String {
        let mut out = String::new();
        for (name, selection) in &self.selections {
            let _ = writeln!(out, "  {name}:");
            match selection {
                Selection::Map(items) => write_map(&mut out, items, "    ", "    "),
                Selection::List(maps) => {
                    for map in maps {
                        write_map(&mut out, map, "    - ", "      ");
                    }
                }
            }
        }
        let _ = writeln!(out, "  condition: {}", yaml::string(&self.condition));
        out
    }
}

/// Writes a map's items: the first after `first`, the others after `rest` (so a map can
/// start a list entry).
fn write_map(out: &mut String, items: &[Item], first: &str, rest: &str) {
    for (i, item) in items.iter().enumerate() {
        let indent = if i == 0 { first } else { rest };
        let key = yaml::key(&item.key());
        match item.values.as_slice() {
            [one] => {
                let _ = writeln!(out, "{indent}{key}: {}", one.yaml());
            }
            values => {
                let _ = writeln!(out, "{indent}{key}:");
                for v in values {
                    let _ = writeln!(out, "{rest}  - {}", v.yaml());
                }
            }
        }
    }
}

/// The kinds of correlation kqlc writes.
#[derive(Debug, Clone, PartialEq)]
pub enum CorrelationKind {
    /// "Counts events occurring in the given time frame."
    EventCount,
    /// "Counts values in a field."
    ValueCount { field: String },
    /// "All events of the referenced rules occur within the time frame."
    Temporal,
}

/// A correlation condition: a comparison with a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub op: &'static str,
    pub value: i64,
}

/// `aliases`: one field name for values that the rules call differently.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    /// (rule name, field in that rule)
    pub fields: Vec<(String, String)>,
}

/// The `correlation` section of a correlation rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    pub kind: CorrelationKind,
    pub rules: Vec<String>,
    pub aliases: Vec<Alias>,
    pub group_by: Vec<String>,
    pub timespan: String,
    pub condition: Option<Threshold>,
}

impl Correlation {
    /// The YAML lines of the section's body (indented by two spaces).
    pub fn yaml(&self) -> String {
        let mut out = String::new();
        let kind = match &self.kind {
            CorrelationKind::EventCount => "event_count",
            CorrelationKind::ValueCount { .. } => "value_count",
            CorrelationKind::Temporal => "temporal",
        };
        let _ = writeln!(out, "  type: {kind}");
        let _ = writeln!(out, "  rules:");
        for r in &self.rules {
            let _ = writeln!(out, "    - {}", yaml::string(r));
        }
        if !self.aliases.is_empty() {
            let _ = writeln!(out, "  aliases:");
            for alias in &self.aliases {
                let _ = writeln!(out, "    {}:", yaml::key(&alias.name));
                for (rule, field) in &alias.fields {
                    let _ = writeln!(out, "      {}: {}", yaml::key(rule), yaml::string(field));
                }
            }
        }
        if self.group_by.is_empty() {
            let _ = writeln!(out, "  group-by: []");
        } else {
            let _ = writeln!(out, "  group-by:");
            for g in &self.group_by {
                let _ = writeln!(out, "    - {}", yaml::string(g));
            }
        }
        let _ = writeln!(out, "  timespan: {}", self.timespan);
        if self.condition.is_some() || matches!(self.kind, CorrelationKind::ValueCount { .. }) {
            let _ = writeln!(out, "  condition:");
            if let Some(t) = self.condition {
                let _ = writeln!(out, "    {}: {}", t.op, t.value);
            }
            if let CorrelationKind::ValueCount { field } = &self.kind {
                let _ = writeln!(out, "    field: {}", yaml::string(field));
            }
        }
        out
    }
}
