//! Field and source mappings: which Sigma logsource, Splunk sourcetype and Elastic index a
//! Sentinel table becomes, and what each column is called there. The defaults are
//! embedded from `targets/mappings.yaml`; `--mapping FILE` (same format) overrides them
//! table by table and field by field.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer};

use crate::ir::{FieldPath, PathStep};

const EMBEDDED: &str = include_str!("../../targets/mappings.yaml");

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mappings {
    #[serde(default)]
    pub tables: BTreeMap<String, TableMapping>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMapping {
    #[serde(default)]
    pub sigma: Option<SigmaSource>,
    #[serde(default)]
    pub splunk: Option<SplunkSource>,
    #[serde(default)]
    pub elastic: Option<ElasticSource>,
    /// Said (as a warning) whenever the table is translated.
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldMapping>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaSource {
    pub logsource: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplunkSource {
    #[serde(default)]
    pub index: Option<String>,
    pub sourcetype: String,
    /// Field values that select the table's events within the sourcetype.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticSource {
    /// Index pattern(s), comma-separated.
    pub index: String,
    /// Field values that select the table's documents within the index.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, String>,
}

/// A column's name in each target: absent = not known (the Sentinel name is kept),
/// `null` = the target has no equivalent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    #[serde(default, deserialize_with = "present")]
    pub sigma: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub splunk: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub elastic: Option<Option<String>>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A key that is present, whatever its value (`null` included): `Some(value)`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Which target's names to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Sigma,
    Splunk,
    Elastic,
}

/// A column's name in a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappedField {
    /// The mapping names it.
    Mapped(String),
    /// The mapping says the target has no such field.
    NoEquivalent,
    /// The mapping does not know the column: the Sentinel name is kept.
    Unmapped(String),
}

impl Mappings {
    /// The mappings built into kqlc.
    pub fn embedded() -> &'static Mappings {
        static EMBEDDED_MAPPINGS: OnceLock<Mappings> = OnceLock::new();
        EMBEDDED_MAPPINGS.get_or_init(|| {
            serde_yaml::from_str(EMBEDDED)
                .expect("targets/mappings.yaml is valid (checked by a test)")
        })
    }

    /// The embedded mappings with a user's file laid over them: its tables replace the
    /// embedded sources they set, and its fields replace the embedded fields.
    pub fn with_overrides(text: &str) -> Result<Mappings, String> {
        let user: Mappings = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let mut merged = Mappings::embedded().clone();
        for (name, table) in user.tables {
            let entry = merged.tables.entry(name).or_default();
            if table.sigma.is_some() {
                entry.sigma = table.sigma;
            }
            if table.splunk.is_some() {
                entry.splunk = table.splunk;
            }
            if table.elastic.is_some() {
                entry.elastic = table.elastic;
            }
            if table.note.is_some() {
                entry.note = table.note;
            }
            entry.fields.extend(table.fields);
        }
        Ok(merged)
    }

    pub fn table(&self, name: &str) -> Option<&TableMapping> {
        self.tables.get(name)
    }

    /// A field's name in a target, for a column (and path) of a table. A path into a
    /// dynamic column is looked up whole (`LocationDetails.city`), then by its column with
    /// the rest of the path appended.
    pub fn field(&self, table: Option<&str>, side: Side, field: &FieldPath) -> MappedField {
        let dotted = field.dotted();
        let Some(mapping) = table.and_then(|t| self.tables.get(t)) else {
            return MappedField::Unmapped(dotted);
        };
        let pick = |f: &FieldMapping| match side {
            Side::Sigma => f.sigma.clone(),
            Side::Splunk => f.splunk.clone(),
            Side::Elastic => f.elastic.clone(),
        };
        if let Some(f) = mapping.fields.get(&dotted)
            && let Some(name) = pick(f)
        {
            return name.map_or(MappedField::NoEquivalent, MappedField::Mapped);
        }
        match mapping.fields.get(&field.column).and_then(pick) {
            Some(Some(base)) => {
                let mut name = base;
                for step in &field.path {
                    match step {
                        PathStep::Key(k) => {
                            name.push('.');
                            name.push_str(&match side {
                                // The Elastic Azure integrations rename JSON keys to snake_case.
                                Side::Elastic => snake_case(k),
                                _ => k.clone(),
                            });
                        }
                        PathStep::Index(i) => name.push_str(&format!(".{i}")),
                    }
                }
                MappedField::Mapped(name)
            }
            Some(None) => MappedField::NoEquivalent,
            None => MappedField::Unmapped(dotted),
        }
    }
}

/// `operatingSystem` -> `operating_system`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else {
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(column: &str, keys: &[&str]) -> FieldPath {
        FieldPath {
            column: column.into(),
            path: keys.iter().map(|k| PathStep::Key(k.to_string())).collect(),
            decoded: vec![],
        }
    }

    #[test]
    fn embedded_mappings_load() {
        let m = Mappings::embedded();
        assert!(m.tables.len() >= 10, "{} tables", m.tables.len());
        let signin = m.table("SigninLogs").unwrap();
        assert_eq!(
            signin.splunk.as_ref().unwrap().sourcetype,
            "azure:monitor:aad"
        );
        assert_eq!(
            m.field(Some("SigninLogs"), Side::Elastic, &path("IPAddress", &[])),
            MappedField::Mapped("source.ip".into())
        );
        assert_eq!(
            m.field(Some("SigninLogs"), Side::Sigma, &path("TimeGenerated", &[])),
            MappedField::NoEquivalent
        );
        assert_eq!(
            m.field(Some("SigninLogs"), Side::Splunk, &path("NoSuchColumn", &[])),
            MappedField::Unmapped("NoSuchColumn".into())
        );
        assert_eq!(
            m.field(None, Side::Splunk, &path("X", &["y"])),
            MappedField::Unmapped("X.y".into())
        );
    }

    #[test]
    fn overrides_replace_tables_and_fields() {
        let m = Mappings::with_overrides(
            "tables:\n  SigninLogs:\n    splunk: {index: aad, sourcetype: custom}\n    fields:\n      IPAddress: {splunk: src}\n",
        )
        .unwrap();
        let s = m.table("SigninLogs").unwrap().splunk.clone().unwrap();
        assert_eq!(
            (s.index.as_deref(), s.sourcetype.as_str()),
            (Some("aad"), "custom")
        );
        assert_eq!(
            m.field(Some("SigninLogs"), Side::Splunk, &path("IPAddress", &[])),
            MappedField::Mapped("src".into())
        );
        // Untouched entries keep their embedded values.
        assert!(m.table("SigninLogs").unwrap().elastic.is_some());
        assert!(Mappings::with_overrides("tables: {X: {bogus: 1}}").is_err());
    }

    #[test]
    fn snake_case_follows_elastic() {
        assert_eq!(snake_case("operatingSystem"), "operating_system");
        assert_eq!(snake_case("ipAddress"), "ip_address");
        assert_eq!(snake_case("city"), "city");
    }
}
