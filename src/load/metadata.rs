//! Rule metadata shared by the YAML and ARM formats: typed where later stages need it,
//! everything else kept as written in `extra`.

use serde::Serialize;

use super::node::Node;
use super::{LoadError, LoadErrorKind, RuleDuration};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metadata {
    /// `id` (YAML) or the resource name / `properties.alertRuleTemplateName` (ARM).
    pub id: Option<String>,
    /// `name` (YAML) or `properties.displayName` (ARM).
    pub name: Option<String>,
    pub description: Option<String>,
    pub kind: Option<RuleKind>,
    pub severity: Option<Severity>,
    pub enabled: Option<bool>,
    pub query_frequency: Option<RuleDuration>,
    pub query_period: Option<RuleDuration>,
    pub trigger_operator: Option<TriggerOperator>,
    pub trigger_threshold: Option<u64>,
    /// MITRE ATT&CK tactics as written (`InitialAccess`).
    pub tactics: Vec<String>,
    /// `relevantTechniques` / `techniques` and `subTechniques`, as written (`T1078`, `T1078.004`).
    pub techniques: Vec<String>,
    pub required_data_connectors: Vec<DataConnector>,
    pub entity_mappings: Vec<EntityMapping>,
    /// `customDetails`: output name -> column, in file order.
    pub custom_details: Vec<(String, String)>,
    pub alert_details_override: Option<AlertDetailsOverride>,
    pub version: Option<String>,
    /// Every other field of the rule (incidentConfiguration, eventGroupingSettings,
    /// metadata, tags, ...), unchanged.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Scheduled,
    Nrt,
    /// A hunting query (no schedule).
    Hunting,
    /// Any other `kind` value, as written.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerOperator {
    GreaterThan,
    LessThan,
    Equal,
    NotEqual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataConnector {
    pub connector_id: String,
    pub data_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityMapping {
    pub entity_type: String,
    /// (identifier, column name)
    pub field_mappings: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertDetailsOverride {
    pub display_name_format: Option<String>,
    pub description_format: Option<String>,
    pub severity_column: Option<String>,
    pub tactics_column: Option<String>,
}

impl RuleKind {
    /// Reads a `kind` value: `Scheduled` and `NRT` in any case, anything else kept.
    pub fn parse(text: &str) -> RuleKind {
        match text.to_ascii_lowercase().as_str() {
            "scheduled" => RuleKind::Scheduled,
            "nrt" => RuleKind::Nrt,
            "hunting" => RuleKind::Hunting,
            _ => RuleKind::Other(text.to_string()),
        }
    }
}

impl Severity {
    /// `Informational`, `Low`, `Medium`, `High` in any case.
    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_lowercase().as_str() {
            "informational" => Some(Severity::Informational),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            _ => None,
        }
    }
}

impl TriggerOperator {
    /// YAML's `gt`/`lt`/`eq`/`ne` or ARM's `GreaterThan`/`LessThan`/`Equal`/`NotEqual`,
    /// in any case.
    pub fn parse(text: &str) -> Option<TriggerOperator> {
        match text.to_ascii_lowercase().as_str() {
            "gt" | "greaterthan" => Some(TriggerOperator::GreaterThan),
            "lt" | "lessthan" => Some(TriggerOperator::LessThan),
            "eq" | "equal" => Some(TriggerOperator::Equal),
            "ne" | "notequal" => Some(TriggerOperator::NotEqual),
            _ => None,
        }
    }
}

/// Whose field names to read: Sentinel YAML (`name`, `version`) or an ARM resource's
/// `properties` (`displayName`, `templateVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Yaml,
    Arm,
}

/// Collects the problems found while reading fields, with their place in the file.
pub(super) struct FieldReport<'a> {
    pub(super) errors: Vec<LoadError>,
    /// The byte range of a field (its key or value) in the file, when it can be found.
    span_of: &'a dyn Fn(&str) -> Option<(usize, usize)>,
    /// Put before every message, to say which rule of a multi-rule file is meant.
    prefix: String,
}

impl<'a> FieldReport<'a> {
    pub(super) fn new(
        span_of: &'a dyn Fn(&str) -> Option<(usize, usize)>,
        prefix: String,
    ) -> FieldReport<'a> {
        FieldReport {
            errors: Vec::new(),
            span_of,
            prefix,
        }
    }

    fn invalid(&mut self, field: &str, message: String) {
        self.errors.push(LoadError {
            kind: LoadErrorKind::InvalidField,
            message: format!("{}`{field}`: {message}", self.prefix),
            span: (self.span_of)(field),
        });
    }

    fn expected(&mut self, field: &str, what: &str, found: &Node) {
        let message = format!("expected {what}, found {}", found.describe());
        self.invalid(field, message);
    }
}

impl Metadata {
    /// Reads the fields of a rule (a YAML mapping, or an ARM resource's `properties`).
    /// `query` is skipped (the loaders read it). Nothing else is lost: fields kqlc does not
    /// type go to `extra` unchanged, and so does a typed field whose value has the wrong
    /// shape (reported, and left out of the typed field) or that holds more than kqlc
    /// types (`alertDetailsOverride.alertDynamicProperties`).
    pub(super) fn from_fields(
        fields: &[(String, Node)],
        dialect: Dialect,
        report: &mut FieldReport<'_>,
    ) -> Metadata {
        let mut m = Metadata::default();
        for (key, value) in fields {
            let problems_before = report.errors.len();
            if *value == Node::Null && key != "query" && is_typed(key, dialect) {
                // `tactics:` with nothing after it: the field is absent, not wrong.
                continue;
            }
            match (dialect, key.as_str()) {
                (_, "query") => {}
                (Dialect::Yaml, "id") => m.id = text(key, value, report),
                (Dialect::Yaml, "name") | (Dialect::Arm, "displayName") => {
                    m.name = text(key, value, report)
                }
                (_, "description") => m.description = text(key, value, report),
                (Dialect::Yaml, "kind") => {
                    m.kind = text(key, value, report).map(|t| RuleKind::parse(&t))
                }
                (_, "severity") => {
                    m.severity = text(key, value, report).and_then(|t| {
                        let parsed = Severity::parse(&t);
                        if parsed.is_none() {
                            report.expected(key, "Informational, Low, Medium or High", value);
                        }
                        parsed
                    })
                }
                (_, "enabled") => match value {
                    Node::Bool(b) => m.enabled = Some(*b),
                    _ => report.expected(key, "true or false", value),
                },
                (_, "queryFrequency") => m.query_frequency = duration(key, value, report),
                (_, "queryPeriod") => m.query_period = duration(key, value, report),
                (_, "triggerOperator") => {
                    m.trigger_operator = text(key, value, report).and_then(|t| {
                        let parsed = TriggerOperator::parse(&t);
                        if parsed.is_none() {
                            report.expected(
                                key,
                                "gt, lt, eq or ne (or GreaterThan, LessThan, Equal, NotEqual)",
                                value,
                            );
                        }
                        parsed
                    })
                }
                (_, "triggerThreshold") => match value {
                    Node::Number(n) if n.as_u64().is_some() => m.trigger_threshold = n.as_u64(),
                    _ => report.expected(key, "a whole number, 0 or more", value),
                },
                (_, "tactics") => {
                    if let Some(list) = strings(key, value, report) {
                        m.tactics = list;
                    }
                }
                (_, "relevantTechniques" | "techniques" | "subTechniques") => {
                    for t in strings(key, value, report).unwrap_or_default() {
                        if !m.techniques.contains(&t) {
                            m.techniques.push(t);
                        }
                    }
                }
                (_, "requiredDataConnectors") => {
                    m.required_data_connectors = data_connectors(value).unwrap_or_else(|| {
                        report.expected(
                            key,
                            "a list of { connectorId: text, dataTypes: [text] }",
                            value,
                        );
                        Vec::new()
                    })
                }
                (_, "entityMappings") => {
                    m.entity_mappings = entity_mappings(value).unwrap_or_else(|| {
                        report.expected(
                            key,
                            "a list of { entityType: text, fieldMappings: [{ identifier: text, columnName: text }] }",
                            value,
                        );
                        Vec::new()
                    })
                }
                (_, "customDetails") => {
                    m.custom_details = custom_details(value).unwrap_or_else(|| {
                        report.expected(key, "a mapping of names to column names", value);
                        Vec::new()
                    })
                }
                (_, "alertDetailsOverride") => match alert_details_override(value) {
                    Some(o) => m.alert_details_override = o,
                    None => report.expected(
                        key,
                        "a mapping with alertDisplayNameFormat, alertDescriptionFormat, alertSeverityColumnName, alertTacticsColumnName (text)",
                        value,
                    ),
                },
                (Dialect::Yaml, "version") | (Dialect::Arm, "templateVersion") => {
                    m.version = text(key, value, report)
                }
                _ => {
                    m.extra.insert(key.clone(), value.to_json());
                }
            }
            let invalid = report.errors.len() > problems_before;
            if invalid || (key == "alertDetailsOverride" && has_untyped_override_keys(value)) {
                m.extra.insert(key.clone(), value.to_json());
            }
        }
        m
    }
}

/// Whether `key` is read into a typed field (a null value then means "absent").
fn is_typed(key: &str, dialect: Dialect) -> bool {
    matches!(
        (dialect, key),
        (Dialect::Yaml, "id" | "name" | "kind" | "version")
            | (Dialect::Arm, "displayName" | "templateVersion")
            | (
                _,
                "description"
                    | "severity"
                    | "enabled"
                    | "queryFrequency"
                    | "queryPeriod"
                    | "triggerOperator"
                    | "triggerThreshold"
                    | "tactics"
                    | "relevantTechniques"
                    | "techniques"
                    | "subTechniques"
                    | "requiredDataConnectors"
                    | "entityMappings"
                    | "customDetails"
                    | "alertDetailsOverride"
            )
    )
}

/// Text, or a number written where text was meant (`version: 1.0`, a numeric id).
fn text(key: &str, value: &Node, report: &mut FieldReport<'_>) -> Option<String> {
    match value {
        Node::String(s) => Some(s.clone()),
        Node::Number(n) => Some(n.to_string()),
        _ => {
            report.expected(key, "text", value);
            None
        }
    }
}

fn duration(key: &str, value: &Node, report: &mut FieldReport<'_>) -> Option<RuleDuration> {
    let text = text(key, value, report)?;
    match RuleDuration::parse(&text) {
        Ok(d) => Some(d),
        Err(e) => {
            report.invalid(key, e.message);
            None
        }
    }
}

fn strings(key: &str, value: &Node, report: &mut FieldReport<'_>) -> Option<Vec<String>> {
    let list = string_list(value);
    if list.is_none() {
        report.expected(key, "a list of text values", value);
    }
    list
}

fn string_list(value: &Node) -> Option<Vec<String>> {
    match value {
        Node::Null => Some(Vec::new()),
        Node::Seq(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

fn data_connectors(value: &Node) -> Option<Vec<DataConnector>> {
    let Node::Seq(items) = value else {
        return None;
    };
    items
        .iter()
        .map(|item| {
            Some(DataConnector {
                connector_id: item.get("connectorId")?.as_str()?.to_string(),
                data_types: match item.get("dataTypes") {
                    None => Vec::new(),
                    Some(types) => string_list(types)?,
                },
            })
        })
        .collect()
}

fn entity_mappings(value: &Node) -> Option<Vec<EntityMapping>> {
    let Node::Seq(items) = value else {
        return None;
    };
    items
        .iter()
        .map(|item| {
            let field_mappings = match item.get("fieldMappings") {
                None | Some(Node::Null) => Vec::new(),
                Some(Node::Seq(fields)) => fields
                    .iter()
                    .map(|f| {
                        Some((
                            f.get("identifier")?.as_str()?.to_string(),
                            f.get("columnName")?.as_str()?.to_string(),
                        ))
                    })
                    .collect::<Option<Vec<_>>>()?,
                Some(_) => return None,
            };
            Some(EntityMapping {
                entity_type: item.get("entityType")?.as_str()?.to_string(),
                field_mappings,
            })
        })
        .collect()
}

fn custom_details(value: &Node) -> Option<Vec<(String, String)>> {
    let Node::Map(entries) = value else {
        return None;
    };
    entries
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

const TYPED_OVERRIDE_KEYS: &[&str] = &[
    "alertDisplayNameFormat",
    "alertDescriptionFormat",
    "alertSeverityColumnName",
    "alertTacticsColumnName",
];

fn has_untyped_override_keys(value: &Node) -> bool {
    matches!(value, Node::Map(fields) if fields.iter().any(|(k, _)| !TYPED_OVERRIDE_KEYS.contains(&k.as_str())))
}

/// `Some(None)` when the mapping sets nothing (all four formats empty or absent).
fn alert_details_override(value: &Node) -> Option<Option<AlertDetailsOverride>> {
    let Node::Map(_) = value else {
        return None;
    };
    let field = |name: &str| -> Option<Option<String>> {
        match value.get(name) {
            None | Some(Node::Null) => Some(None),
            Some(Node::String(s)) if s.is_empty() => Some(None),
            Some(Node::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        }
    };
    let o = AlertDetailsOverride {
        display_name_format: field("alertDisplayNameFormat")?,
        description_format: field("alertDescriptionFormat")?,
        severity_column: field("alertSeverityColumnName")?,
        tactics_column: field("alertTacticsColumnName")?,
    };
    Some((o != AlertDetailsOverride::default()).then_some(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str, dialect: Dialect) -> (Metadata, Vec<LoadError>) {
        let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        let Node::Map(fields) = Node::from_yaml(&value) else {
            panic!("not a mapping")
        };
        let span_of = |_: &str| None;
        let mut report = FieldReport::new(&span_of, String::new());
        let m = Metadata::from_fields(&fields, dialect, &mut report);
        (m, report.errors)
    }

    #[test]
    fn typed_fields_are_read() {
        let (m, errors) = read(
            "id: abc\nname: N\nseverity: high\nkind: NRT\ntriggerOperator: gt\ntriggerThreshold: 3\n\
             queryFrequency: 5m\nqueryPeriod: P1D\ntactics: [InitialAccess]\n\
             relevantTechniques: [T1078]\nsubTechniques: [T1078.004, T1078]\nenabled: false\n\
             customDetails: {b: B, a: A}\nversion: 1.0\nstatus: Available\n",
            Dialect::Yaml,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(m.id.as_deref(), Some("abc"));
        assert_eq!(m.severity, Some(Severity::High));
        assert_eq!(m.kind, Some(RuleKind::Nrt));
        assert_eq!(m.trigger_operator, Some(TriggerOperator::GreaterThan));
        assert_eq!(m.trigger_threshold, Some(3));
        assert_eq!(m.query_frequency.as_ref().map(|d| d.seconds), Some(300));
        assert_eq!(m.query_period.as_ref().map(|d| d.seconds), Some(86_400));
        assert_eq!(m.techniques, ["T1078", "T1078.004"]);
        assert_eq!(m.enabled, Some(false));
        assert_eq!(
            m.custom_details,
            [("b".to_string(), "B".to_string()), ("a".into(), "A".into())]
        );
        assert_eq!(m.version.as_deref(), Some("1.0"));
        assert_eq!(m.extra["status"], serde_json::json!("Available"));
    }

    #[test]
    fn wrong_shapes_are_reported_and_left_out() {
        let (m, errors) = read(
            "severity: Extreme\ntriggerThreshold: abc\ntactics: InitialAccess\n\
             queryFrequency: 1x\nentityMappings: {a: b}\nenabled: yes please\n",
            Dialect::Yaml,
        );
        assert_eq!(m.severity, None);
        assert_eq!(m.trigger_threshold, None);
        assert!(m.tactics.is_empty());
        assert_eq!(m.query_frequency, None);
        assert!(m.entity_mappings.is_empty());
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(errors.iter().all(|e| e.kind == LoadErrorKind::InvalidField));
        assert!(errors[0].message.contains("`severity`"));
        assert!(errors[0].message.contains("Extreme"));
        assert!(errors[1].message.contains("`triggerThreshold`"));
    }

    #[test]
    fn null_fields_are_absent_not_wrong() {
        let (m, errors) = read("tactics:\nrelevantTechniques:\nseverity:\n", Dialect::Yaml);
        assert!(errors.is_empty());
        assert!(m.tactics.is_empty());
        assert!(m.extra.is_empty());
    }

    #[test]
    fn alert_details_override_empty_strings_are_none() {
        let (m, _) = read(
            "alertDetailsOverride:\n  alertDisplayNameFormat: 'X {{a}}'\n  alertSeverityColumnName: ''\n",
            Dialect::Yaml,
        );
        let o = m.alert_details_override.unwrap();
        assert_eq!(o.display_name_format.as_deref(), Some("X {{a}}"));
        assert_eq!(o.severity_column, None);
        let (m, _) = read(
            "alertDetailsOverride:\n  alertDisplayNameFormat: ''\n",
            Dialect::Yaml,
        );
        assert_eq!(m.alert_details_override, None);
    }

    #[test]
    fn arm_names() {
        let (m, errors) = read(
            "displayName: D\ntemplateVersion: 1.2.3\ntriggerOperator: GreaterThan\nname: ignored\n",
            Dialect::Arm,
        );
        assert!(errors.is_empty());
        assert_eq!(m.name.as_deref(), Some("D"));
        assert_eq!(m.version.as_deref(), Some("1.2.3"));
        assert_eq!(m.trigger_operator, Some(TriggerOperator::GreaterThan));
        assert_eq!(m.extra["name"], serde_json::json!("ignored"));
    }
}
