//! Which Splunk field a KQL column is, at each point of a pipeline: columns the query
//! computed keep their KQL names; the source table's columns go through the mapping
//! (`UserPrincipalName` -> `properties.userPrincipalName`); paths into JSON become JSON
//! field names (`a.b.c`), or `spath()` where Splunk's flattened names cannot say it (an
//! array index, a whole object).

use std::collections::BTreeMap;

use super::Tr;
use super::expr::E;
use super::text;
use crate::diag::Code;
use crate::ir::{FieldPath, PathStep, Span};
use crate::mapping::{MappedField, Side};

/// Tables whose columns Splunk stores like another table's (the mapping draft's
/// `inherits_columns_from`, which `targets/mappings.yaml` does not carry yet).
const INHERITS: &[(&str, &str)] = &[("AADNonInteractiveUserSignInLogs", "SigninLogs")];

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string or number.
    Value,
    /// `"true"`/`"false"` (eval cannot store a boolean).
    Bool,
    /// Several values (`values()`, `split()`, `mvappend()`).
    Multi,
    /// JSON text (an element of an expanded array, `parse_json` of a string).
    Json,
}

/// A column in scope.
#[derive(Debug, Clone)]
pub enum Binding {
    /// A Splunk field.
    Field { name: String, kind: Kind },
    /// JSON in the raw event at this path (an object, or an array when `array`), which
    /// Splunk flattens into `path.key` fields rather than keeping as one field.
    Raw { path: String, array: bool },
}

/// The columns at one point of a pipeline.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Source tables whose columns are readable through the mapping (raw events).
    pub tables: Vec<String>,
    /// Columns the query defined, by KQL name.
    pub columns: BTreeMap<String, Binding>,
    /// Whether columns other than `columns` exist (raw events of `tables`, or a lookup).
    pub open: bool,
    /// Columns in output order, when the query fixed them (`project`, `summarize`).
    pub order: Vec<String>,
}

impl Scope {
    pub fn tables(tables: Vec<String>) -> Scope {
        Scope {
            tables,
            open: true,
            ..Scope::default()
        }
    }

    /// A scope with only the listed columns (after `project`, `summarize`).
    pub fn closed(columns: Vec<(String, Binding)>) -> Scope {
        let order = columns.iter().map(|(n, _)| n.clone()).collect();
        Scope {
            tables: vec![],
            columns: columns.into_iter().collect(),
            open: false,
            order,
        }
    }

    pub fn define(&mut self, column: &str, binding: Binding) {
        if !self.open && !self.columns.contains_key(column) {
            self.order.push(column.to_string());
        }
        self.columns.insert(column.to_string(), binding);
    }

    pub fn remove(&mut self, column: &str) {
        self.columns.remove(column);
        self.order.retain(|c| c != column);
    }
}

/// A column (or path) resolved.
#[derive(Debug, Clone)]
pub enum Ref {
    /// A field, usable in search and eval.
    Field(String, Kind),
    /// JSON in the raw event (an object or array).
    Raw { path: String, array: bool },
    /// Only computable, in eval.
    Expr(E, Kind),
}

impl Ref {
    /// The value in an eval expression.
    pub fn expr(&self) -> E {
        match self {
            Ref::Field(name, _) => E::field(name),
            Ref::Raw { path, .. } => E::call("spath", vec![E::field("_raw"), E::str(path)]),
            Ref::Expr(e, _) => e.clone(),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Ref::Field(_, k) | Ref::Expr(_, k) => *k,
            Ref::Raw { .. } => Kind::Json,
        }
    }
}

/// A path as spath writes it: `a.b{0}.c`.
fn spath_path(prefix: &str, steps: &[PathStep]) -> String {
    let mut out = prefix.to_string();
    for step in steps {
        match step {
            PathStep::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathStep::Index(i) => out.push_str(&format!("{{{i}}}")),
        }
    }
    out
}

/// What a mapped name says about the field's shape (`a.*`: an object; `a{}.*`, `a{}`:
/// an array), with those markers removed from inside the name.
fn shape(name: &str) -> (String, Option<bool>) {
    let n = name.replace("{}.*.", "{}.").replace(".*.", ".");
    if let Some(base) = n.strip_suffix("{}.*") {
        (base.to_string(), Some(true))
    } else if let Some(base) = n.strip_suffix(".*") {
        (base.to_string(), Some(false))
    } else if let Some(base) = n.strip_suffix("{}") {
        (base.to_string(), Some(true))
    } else {
        (n, None)
    }
}

impl Tr<'_> {
    /// The Splunk field (or expression) for a column or a path into one.
    pub(super) fn resolve(&mut self, scope: &Scope, path: &FieldPath, at: Option<Span>) -> Ref {
        match scope.columns.get(&path.column) {
            Some(Binding::Field { name, kind }) => {
                if path.path.is_empty() {
                    return Ref::Field(name.clone(), *kind);
                }
                // An index into several values (`values()`, `split()`) is mvindex.
                if let (Kind::Multi, Some(PathStep::Index(i))) = (kind, path.path.first()) {
                    let element = E::call("mvindex", vec![E::field(name), E::int(*i)]);
                    if path.path.len() == 1 {
                        return Ref::Expr(element, Kind::Value);
                    }
                    let rest = spath_path("", &path.path[1..]);
                    return Ref::Expr(E::call("spath", vec![element, E::str(&rest)]), Kind::Json);
                }
                // A path into a computed column: the column holds JSON text.
                let p = spath_path("", &path.path);
                Ref::Expr(
                    E::call("spath", vec![E::field(name), E::str(&p)]),
                    Kind::Json,
                )
            }
            Some(Binding::Raw { path: base, array }) => self.raw(base, *array, &path.path),
            None if scope.open && !scope.tables.is_empty() => {
                self.table_field(&scope.tables.clone(), path, at)
            }
            None => {
                // A lookup's or an external file's column, or one the query never defined
                // (Kusto would reject the query): the KQL name.
                let keys = keys_before_index(&path.path);
                let rest = &path.path[keys.len()..];
                let name = text::dotted_name(&path.column, &keys);
                if rest.is_empty() {
                    Ref::Field(name, Kind::Value)
                } else {
                    self.raw(&name, false, rest)
                }
            }
        }
    }

    /// Whether the mapping knows a column of these tables (so raw events have it).
    pub(super) fn table_has(&self, tables: &[String], column: &str) -> bool {
        column == "TimeGenerated"
            || tables.iter().any(|t| {
                !matches!(
                    self.cx
                        .mappings
                        .field(Some(t), Side::Splunk, &FieldPath::column(column)),
                    MappedField::Unmapped(_)
                )
            })
    }

    /// A path into raw JSON.
    fn raw(&mut self, base: &str, array: bool, steps: &[PathStep]) -> Ref {
        if steps.is_empty() {
            return Ref::Raw {
                path: base.to_string(),
                array,
            };
        }
        if steps.iter().all(|s| matches!(s, PathStep::Key(_))) && !array {
            // Splunk's JSON extraction names the leaf `base.key.key`.
            return Ref::Field(spath_path(base, steps), Kind::Value);
        }
        Ref::Expr(
            E::call(
                "spath",
                vec![E::field("_raw"), E::str(&spath_path(base, steps))],
            ),
            Kind::Json,
        )
    }

    /// A column of the source tables, through the mapping.
    fn table_field(&mut self, tables: &[String], path: &FieldPath, at: Option<Span>) -> Ref {
        let keys = keys_before_index(&path.path);
        let rest: Vec<PathStep> = path.path[keys.len()..].to_vec();
        let lookup = FieldPath {
            column: path.column.clone(),
            path: keys.iter().cloned().map(PathStep::Key).collect(),
            decoded: vec![],
        };
        // Every Splunk event has its time in `_time`, whatever the mapping says of the
        // table's other columns.
        if path.column == "TimeGenerated" && path.path.is_empty() {
            return Ref::Field("_time".into(), Kind::Value);
        }
        let mut candidates: Vec<&str> = vec![];
        for t in tables {
            candidates.push(t);
            for (child, parent) in INHERITS {
                if t == child && !tables.iter().any(|x| x == parent) {
                    candidates.push(parent);
                }
            }
        }
        let mut no_equivalent = None;
        let mut invalid = None;
        for t in &candidates {
            match self.cx.mappings.field(Some(t), Side::Splunk, &lookup) {
                MappedField::Mapped(name) => {
                    let (base, array) = shape(&name);
                    let Some(base) = text::mapped_name(&base) else {
                        invalid.get_or_insert((t.to_string(), name));
                        continue;
                    };
                    return match array {
                        None if rest.is_empty() => Ref::Field(base, Kind::Value),
                        None => self.raw(&base, false, &rest),
                        Some(array) => self.raw(&base, array, &rest),
                    };
                }
                MappedField::NoEquivalent => {
                    no_equivalent.get_or_insert(t.to_string());
                }
                MappedField::Unmapped(_) => {}
            }
        }
        let kept = text::dotted_name(&path.column, &keys);
        let label = tables.join(", ");
        if let Some(table) = no_equivalent {
            self.warn(
                Code::NoEquivalentField,
                at,
                format!(
                    "`{}` of {table} has no equivalent in the Splunk data (per the mapping): kept as `{kept}`, which Splunk events do not have, so conditions on it do not hold",
                    lookup.dotted()
                ),
            );
        } else if let Some((table, name)) = invalid {
            self.warn(
                Code::UnmappedField,
                at,
                format!(
                    "`{}` of {table} is mapped to `{name}`, which is not one Splunk field name: kept as `{kept}`",
                    lookup.dotted()
                ),
            );
        } else {
            let no_mapping = tables.iter().all(|t| {
                self.cx
                    .mappings
                    .table(t)
                    .is_none_or(|m| m.fields.is_empty())
            });
            self.unmapped_field(&label, &lookup.dotted(), at, no_mapping);
        }
        if rest.is_empty() {
            Ref::Field(kept, Kind::Value)
        } else {
            self.raw(&kept, false, &rest)
        }
    }
}

/// The keys of a path up to its first index.
fn keys_before_index(steps: &[PathStep]) -> Vec<String> {
    steps
        .iter()
        .map_while(|s| match s {
            PathStep::Key(k) => Some(k.clone()),
            PathStep::Index(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_shapes() {
        assert_eq!(
            shape("properties.deviceDetail.*"),
            ("properties.deviceDetail".into(), Some(false))
        );
        assert_eq!(
            shape("properties.deviceDetail.*.operatingSystem"),
            ("properties.deviceDetail.operatingSystem".into(), None)
        );
        assert_eq!(
            shape("properties.targetResources{}.*"),
            ("properties.targetResources".into(), Some(true))
        );
        assert_eq!(
            spath_path("a", &[PathStep::Index(0), PathStep::Key("b".into())]),
            "a{0}.b"
        );
    }
}
