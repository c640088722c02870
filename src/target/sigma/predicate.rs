//! IR predicates -> Sigma field tests, with the exact meaning of each KQL operator:
//! plain values are case-insensitive in Sigma, so a case-sensitive KQL test on text that
//! has case becomes an anchored `|re` (pySigma's Splunk and ES|QL backends refuse
//! `|cased`); `has` is a whole-term match, written as a regular expression with term
//! boundaries; emptiness covers `''`, `null` and an absent field, as KQL's `isempty` does.
//! What has no Sigma form is left out of the condition and reported, with the direction
//! of the change (more or fewer events).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::cond::Cond;
use super::model::{Item, Modifier, Value as SValue};
use crate::diag::Code;
use crate::ir::{
    CompareOp, FieldPath, ListTest, PathStep, Pipeline, Predicate, Scalar, Source, Span, Stage,
    TextTest, Value,
};
use crate::mapping::{MappedField, Mappings, Side};
use crate::target::kql;

/// The RFC 1918 ranges: exactly what KQL's `ipv4_is_private` tests (127.0.0.0/8 and
/// link-local addresses are not private for it).
pub const PRIVATE_RANGES: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// A case conversion applied to a field before a test (`tolower(x) == "a"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    None,
    Lower,
    Upper,
}

/// What a column name means at some point of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Another name for a source field (`extend Ip = tostring(IPAddress)`); `expanded`
    /// names the column `mv-expand` turned into one row per element.
    Field {
        path: FieldPath,
        fold: Fold,
        expanded: Option<String>,
    },
    /// Computed from the row by an expression Sigma cannot write (`at`: where).
    Computed { value: Scalar, at: Span },
}

/// Computed and renamed columns, by name.
pub type Env = BTreeMap<String, Column>;

/// Where a predicate is translated: the table whose field names apply, and the columns
/// the pipeline defined before.
pub struct Scope<'a> {
    pub table: Option<&'a str>,
    pub env: &'a Env,
    /// The table's Sigma field names are its Sentinel column names (Entra ID, Azure
    /// activity): a column the mapping does not list keeps its name without a warning.
    pub sentinel_names: bool,
}

/// Something said about the translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub code: Code,
    pub span: Option<Span>,
    pub message: String,
}

/// A part of a condition that has no Sigma form.
#[derive(Debug, Clone)]
pub struct Unknown {
    span: Option<Span>,
    text: String,
    reason: String,
}

/// A placeholder written for a set of values that comes from other data.
#[derive(Debug, Clone, PartialEq)]
pub struct Placeholder {
    pub name: String,
    pub meaning: String,
}

/// Translates predicates, collecting what it had to say.
pub struct Translator<'a> {
    mappings: &'a Mappings,
    pub issues: Vec<Issue>,
    pub placeholders: Vec<Placeholder>,
    /// (expanded column, sub-field) pairs tested, in order, to tell when tests on one
    /// array element could be satisfied by different elements in Sigma.
    expanded_log: Vec<(String, String)>,
}

type Tr = Result<Cond, Vec<Unknown>>;

impl<'a> Translator<'a> {
    pub fn new(mappings: &'a Mappings) -> Translator<'a> {
        Translator {
            mappings,
            issues: vec![],
            placeholders: vec![],
            expanded_log: vec![],
        }
    }

    pub fn issue(&mut self, code: Code, span: Option<Span>, message: String) {
        let issue = Issue {
            code,
            span,
            message,
        };
        if !self.issues.contains(&issue) {
            self.issues.push(issue);
        }
    }

    /// A filter's condition. Parts with no Sigma form are left out (reported); when
    /// nothing is left the result is `Const(true)`.
    pub fn filter(&mut self, p: &Predicate, scope: &Scope) -> Cond {
        match self.tr(p, scope) {
            Ok(c) => c,
            Err(unknowns) => {
                self.dropped(unknowns, true);
                Cond::Const(true)
            }
        }
    }

    /// After `mv-expand`, KQL tests each array element on its own row; Sigma tests the
    /// array's field values, so `and`-ed tests on different sub-fields may hold for
    /// different elements.
    fn check_elements(&mut self, elements: &[(String, String, Option<Span>)]) {
        for (column, field, span) in elements {
            if let Some((_, other, _)) = elements.iter().find(|(c, f, _)| c == column && f != field)
            {
                self.issue(
                    Code::MatchesMore,
                    *span,
                    format!(
                        "after `mv-expand {column}`, KQL requires `{column}.{field}` and \
                         `{column}.{other}` of the same element; Sigma tests them on the whole \
                         array, so they may hold for different elements: the rule matches more events"
                    ),
                );
                return;
            }
        }
    }

    /// Reports parts left out: from an `and` (the rule matches more) or an `or` (fewer).
    fn dropped(&mut self, unknowns: Vec<Unknown>, from_and: bool) {
        for u in unknowns {
            let effect = if from_and {
                "left out, so the rule matches more events"
            } else {
                "left out of the `or`, so the rule matches fewer events"
            };
            let code = if from_and {
                Code::MatchesMore
            } else {
                Code::MatchesFewer
            };
            self.issue(
                code,
                u.span,
                format!("`{}` has no Sigma form ({}): {effect}", u.text, u.reason),
            );
        }
    }

    fn tr(&mut self, p: &Predicate, scope: &Scope) -> Tr {
        match p {
            Predicate::And { all } => {
                let mut parts = vec![];
                let mut unknown = vec![];
                let mut elements: Vec<(String, String, Option<Span>)> = vec![];
                for q in all {
                    let before = self.expanded_log.len();
                    match self.tr(q, scope) {
                        Ok(c) => parts.push(c),
                        Err(u) => unknown.extend(u),
                    }
                    // Sub-fields of an expanded column tested by this part.
                    let used: BTreeSet<(String, String)> =
                        self.expanded_log[before..].iter().cloned().collect();
                    elements.extend(used.into_iter().map(|(c, f)| (c, f, q.span())));
                }
                self.check_elements(&elements);
                if parts.is_empty() {
                    return Err(unknown);
                }
                self.dropped(unknown, true);
                Ok(Cond::and(parts))
            }
            Predicate::Or { any } => {
                let mut parts = vec![];
                let mut unknown = vec![];
                for q in any {
                    match self.tr(q, scope) {
                        Ok(c) => parts.push(c),
                        Err(u) => unknown.extend(u),
                    }
                }
                if parts.is_empty() {
                    return Err(unknown);
                }
                self.dropped(unknown, false);
                Ok(Cond::or(parts))
            }
            Predicate::Constant { value } => Ok(Cond::Const(*value)),
            leaf => self.leaf(leaf, scope).map_err(|u| vec![u]),
        }
    }

    fn leaf(&mut self, p: &Predicate, scope: &Scope) -> Result<Cond, Unknown> {
        let span = p.span();
        let unknown = |reason: &str| Unknown {
            span,
            text: short(&kql::predicate(p).to_string()),
            reason: reason.to_string(),
        };
        match p {
            Predicate::Compare {
                left,
                op,
                right,
                case_sensitive,
                ..
            } => {
                // `"a" == x` reads as `x == "a"`.
                let (left, op, right) = match (left, right) {
                    (Scalar::Literal { .. }, r) if !matches!(r, Scalar::Literal { .. }) => {
                        (r, flip(*op), left)
                    }
                    _ => (left, *op, right),
                };
                let Scalar::Literal { value } = right else {
                    return Err(unknown(match right {
                        Scalar::Now { .. } => "Sigma has no time relative to now",
                        Scalar::Field { .. } => "it compares two columns",
                        _ => "the compared value is computed",
                    }));
                };
                let f = self.field(left, scope, p)?;
                self.compare(&f, op, value, *case_sensitive)
                    .ok_or_else(|| unknown("no Sigma test compares this kind of value so"))
            }
            Predicate::Text {
                value,
                test,
                pattern,
                case_sensitive,
                negated,
                ..
            } => {
                let Scalar::Literal {
                    value: Value::String(text),
                } = pattern
                else {
                    return Err(unknown("the pattern is not a constant string"));
                };
                let f = self.field(value, scope, p)?;
                let c = self
                    .text(&f, *test, text, *case_sensitive)
                    .ok_or_else(|| unknown("no Sigma test has this meaning"))?;
                Ok(negate_if(c, *negated))
            }
            Predicate::Regex {
                value,
                pattern,
                negated,
                ..
            } => {
                let f = self.field(value, scope, p)?;
                let pattern = portable_regex(pattern).map_err(unknown)?;
                // RE2's leading `(?i)` is Sigma's `re|i`.
                let (insensitive, body) = match pattern.strip_prefix("(?i)") {
                    Some(rest) if !rest.is_empty() => (true, rest),
                    _ => (false, pattern.as_str()),
                };
                // On `tolower(x)`, a pattern with no upper-case letter matches as it would
                // on `x` ignoring case (and the reverse for `toupper`).
                let insensitive = match f.fold {
                    Fold::None => insensitive,
                    Fold::Lower if !has_letter(body, char::is_ascii_uppercase) => true,
                    Fold::Upper if !has_letter(body, char::is_ascii_lowercase) => true,
                    _ => {
                        return Err(unknown(
                            "a regular expression with letters of the other case on a case-converted value",
                        ));
                    }
                };
                let modifier = if insensitive {
                    Modifier::ReI
                } else {
                    Modifier::Re
                };
                let item = Item::new(&f.name, vec![modifier], vec![SValue::Str(body.to_string())]);
                Ok(negate_if(Cond::item(item), *negated))
            }
            Predicate::InList {
                value,
                list,
                test,
                case_sensitive,
                negated,
                ..
            } => {
                let f = self.field(value, scope, p)?;
                let c = self
                    .in_list(&f, list, *test, *case_sensitive)
                    .ok_or_else(|| unknown("the list holds values Sigma cannot compare"))?;
                Ok(negate_if(c, *negated))
            }
            Predicate::InQuery {
                value,
                query,
                column,
                test,
                case_sensitive,
                negated,
                ..
            } => {
                let f = self.field(value, scope, p)?;
                // `x in (datatable(...)[...])`: the values are in the rule.
                if let Some(values) = inline_values(query, column) {
                    let c = self
                        .in_list(&f, &values, *test, *case_sensitive)
                        .ok_or_else(|| unknown("the list holds values Sigma cannot compare"))?;
                    return Ok(negate_if(c, *negated));
                }
                Ok(negate_if(
                    self.in_query(&f, query, column, *test, *case_sensitive, *negated, span),
                    *negated,
                ))
            }
            Predicate::Range {
                value,
                low,
                high,
                negated,
                ..
            } => {
                let (Scalar::Literal { value: low }, Scalar::Literal { value: high }) = (low, high)
                else {
                    return Err(unknown("the bounds are computed"));
                };
                let (Some(low), Some(high)) = (number(low), number(high)) else {
                    return Err(unknown("Sigma compares numbers only"));
                };
                let f = self.field(value, scope, p)?;
                let range = Cond::and(vec![
                    Cond::item(Item::new(&f.name, vec![Modifier::Gte], vec![low])),
                    Cond::item(Item::new(&f.name, vec![Modifier::Lte], vec![high])),
                ]);
                Ok(if *negated {
                    // A missing number is not outside the range for KQL (null compares false).
                    Cond::and(vec![present(&f.name), Cond::not(range)])
                } else {
                    range
                })
            }
            Predicate::Cidr {
                value,
                ranges,
                negated,
                ..
            } => {
                let nets: Option<Vec<String>> = ranges.iter().map(|r| ipv4_network(r)).collect();
                let Some(nets) = nets else {
                    return Err(unknown("a range is not an IPv4 address or CIDR block"));
                };
                let f = self.field(value, scope, p)?;
                Ok(cidr(&f.name, nets, *negated))
            }
            Predicate::PrivateIp { value, negated, .. } => {
                let f = self.field(value, scope, p)?;
                let nets = PRIVATE_RANGES.iter().map(|r| r.to_string()).collect();
                Ok(cidr(&f.name, nets, *negated))
            }
            Predicate::Empty {
                value,
                null_only,
                negated,
                ..
            } => {
                let f = self.field(value, scope, p)?;
                let c = if *null_only {
                    null_or_absent(&f.name)
                } else {
                    empty(&f.name)
                };
                Ok(negate_if(c, *negated))
            }
            Predicate::Expr { value, negated, .. } => {
                let f = self.field(value, scope, p)?;
                let c = Cond::item(Item::new(&f.name, vec![], vec![SValue::Bool(true)]));
                Ok(negate_if(c, *negated))
            }
            Predicate::And { .. } | Predicate::Or { .. } | Predicate::Constant { .. } => {
                Err(unknown("internal: not a leaf"))
            }
        }
    }

    /// The Sigma field a scalar reads, through computed and renamed columns.
    fn field(&mut self, s: &Scalar, scope: &Scope, p: &Predicate) -> Result<Field, Unknown> {
        let span = p.span();
        let (path, fold, expanded) = resolve(s, scope.env).map_err(|reason| Unknown {
            span,
            text: short(&kql::predicate(p).to_string()),
            reason,
        })?;
        if let Some(column) = expanded
            && let Some(PathStep::Key(k)) = path.path.last()
        {
            self.expanded_log.push((column, k.clone()));
        }
        let name = match lookup(self.mappings, scope.table, &path) {
            MappedField::Mapped(name) => name,
            MappedField::Unmapped(name) => {
                if let Some(table) = scope.table
                    && !scope.sentinel_names
                {
                    self.issue(
                        Code::UnmappedField,
                        span,
                        format!(
                            "no Sigma field is known for `{}` of `{table}`: the Sentinel name `{name}` is kept",
                            path.dotted()
                        ),
                    );
                }
                name
            }
            MappedField::NoEquivalent => {
                // The cause (no field) and, from the caller, the effect (more or fewer events).
                let table = scope.table.unwrap_or("?");
                self.issue(
                    Code::NoEquivalentField,
                    span,
                    format!(
                        "the Sigma data of `{table}` has no field for `{}` (the mapping says so): \
                         conditions on it cannot be written",
                        path.dotted()
                    ),
                );
                return Err(Unknown {
                    span,
                    text: short(&kql::predicate(p).to_string()),
                    reason: format!("no Sigma field for `{}` in `{table}`", path.dotted()),
                });
            }
        };
        if name.contains('|') || name.is_empty() {
            return Err(Unknown {
                span,
                text: short(&kql::predicate(p).to_string()),
                reason: format!("the field name `{name}` cannot be written in Sigma"),
            });
        }
        Ok(Field { name, fold })
    }

    fn compare(
        &mut self,
        f: &Field,
        op: CompareOp,
        value: &Value,
        case_sensitive: bool,
    ) -> Option<Cond> {
        match value {
            Value::String(s) | Value::Guid(s) => {
                let equal = match op {
                    CompareOp::Eq | CompareOp::Ne => {
                        // GUIDs compare without case.
                        let cs = case_sensitive && matches!(value, Value::String(_));
                        equals(f, s, cs)
                    }
                    _ => return None,
                };
                // A missing string reads as "" in KQL, so `!=` holds for it: `not` keeps that.
                Some(if op == CompareOp::Ne {
                    Cond::not(equal)
                } else {
                    equal
                })
            }
            Value::Long(_) | Value::Real(_) | Value::Bool(_) => {
                let v = number(value)?;
                let modifier = match op {
                    CompareOp::Eq | CompareOp::Ne => None,
                    CompareOp::Lt => Some(Modifier::Lt),
                    CompareOp::Le => Some(Modifier::Lte),
                    CompareOp::Gt => Some(Modifier::Gt),
                    CompareOp::Ge => Some(Modifier::Gte),
                };
                if matches!(value, Value::Bool(_)) && modifier.is_some() {
                    return None;
                }
                let item = Cond::item(Item::new(&f.name, modifier.into_iter().collect(), vec![v]));
                Some(if op == CompareOp::Ne {
                    // A missing number compares false with anything in KQL.
                    Cond::and(vec![present(&f.name), Cond::not(item)])
                } else {
                    item
                })
            }
            _ => None,
        }
    }

    fn text(
        &mut self,
        f: &Field,
        test: TextTest,
        pattern: &str,
        case_sensitive: bool,
    ) -> Option<Cond> {
        // A case-converted value never holds the other case: `tolower(x) has "A"` is false.
        let case_sensitive = match f.fold {
            Fold::None => case_sensitive,
            fold => {
                if case_sensitive && apply(fold, pattern) != pattern {
                    return Some(Cond::Const(false));
                }
                false
            }
        };
        let exact_case = !case_sensitive || caseless(pattern);
        let field = f.name.as_str();
        let plain_item = |m: Vec<Modifier>| {
            Some(Cond::item(Item::new(
                field,
                m,
                vec![SValue::Str(plain(pattern))],
            )))
        };
        let regex = |re: String| {
            Some(Cond::item(Item::new(
                field,
                vec![Modifier::Re],
                vec![SValue::Str(re)],
            )))
        };
        match test {
            TextTest::Substring | TextTest::Prefix | TextTest::Suffix if pattern.is_empty() => {
                Some(Cond::Const(true))
            }
            TextTest::Substring if exact_case => plain_item(vec![Modifier::Contains]),
            TextTest::Substring => regex(re_escape(pattern)),
            TextTest::Prefix if exact_case => plain_item(vec![Modifier::StartsWith]),
            TextTest::Prefix => regex(format!("^{}", re_escape(pattern))),
            TextTest::Suffix if exact_case => plain_item(vec![Modifier::EndsWith]),
            TextTest::Suffix => regex(format!("{}$", re_escape(pattern))),
            TextTest::Term | TextTest::TermPrefix | TextTest::TermSuffix if pattern.is_empty() => {
                Some(Cond::Const(true))
            }
            TextTest::Term | TextTest::TermPrefix | TextTest::TermSuffix => {
                let re = term_regex(
                    pattern,
                    test != TextTest::TermSuffix,
                    test != TextTest::TermPrefix,
                );
                let modifier = if exact_case && !caseless(pattern) {
                    Modifier::ReI
                } else {
                    Modifier::Re
                };
                Some(Cond::item(Item::new(
                    field,
                    vec![modifier],
                    vec![SValue::Str(re)],
                )))
            }
            TextTest::Like => {
                if exact_case {
                    let mut s = String::new();
                    for c in pattern.chars() {
                        match c {
                            '%' => s.push('*'),
                            '_' => s.push('?'),
                            c => s.push_str(&plain(&c.to_string())),
                        }
                    }
                    Some(Cond::item(Item::new(field, vec![], vec![SValue::Str(s)])))
                } else {
                    let mut s = String::from("^");
                    for c in pattern.chars() {
                        match c {
                            '%' => s.push_str(".*"),
                            '_' => s.push('.'),
                            c => s.push_str(&re_escape(&c.to_string())),
                        }
                    }
                    s.push('$');
                    regex(s)
                }
            }
        }
    }

    fn in_list(
        &mut self,
        f: &Field,
        list: &[Value],
        test: ListTest,
        case_sensitive: bool,
    ) -> Option<Cond> {
        match test {
            ListTest::Equals => {
                let mut alternatives = vec![];
                for v in list {
                    let c = match v {
                        Value::String(s) | Value::Guid(s) => {
                            let cs = case_sensitive && matches!(v, Value::String(_));
                            equals(f, s, cs)
                        }
                        other => Cond::item(Item::new(&f.name, vec![], vec![number(other)?])),
                    };
                    alternatives.push(c);
                }
                Some(Cond::or(alternatives))
            }
            ListTest::AnyTerm | ListTest::AllTerms => {
                let mut exact_case = true;
                let mut regexes = vec![];
                let mut constant_false = false;
                let all = test == ListTest::AllTerms;
                for v in list {
                    let Value::String(s) = v else { return None };
                    if f.fold != Fold::None && case_sensitive && apply(f.fold, s) != *s {
                        constant_false = true;
                        continue;
                    }
                    if s.is_empty() {
                        // Every value has the empty term.
                        if all {
                            continue;
                        }
                        return Some(Cond::Const(true));
                    }
                    let re = term_regex(s, true, true);
                    exact_case &= caseless(s);
                    regexes.push(SValue::Str(re));
                }
                if constant_false && all {
                    return Some(Cond::Const(false));
                }
                if regexes.is_empty() {
                    return Some(Cond::Const(all));
                }
                let case_blind = !case_sensitive || f.fold != Fold::None;
                let mut modifiers = vec![if case_blind && !exact_case {
                    Modifier::ReI
                } else {
                    Modifier::Re
                }];
                if all && regexes.len() > 1 {
                    modifiers.push(Modifier::All);
                }
                Some(Cond::item(Item::new(&f.name, modifiers, regexes)))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn in_query(
        &mut self,
        f: &Field,
        query: &Pipeline,
        column: &str,
        test: ListTest,
        case_sensitive: bool,
        negated: bool,
        span: Option<Span>,
    ) -> Cond {
        let suffix = if column.is_empty() {
            String::new()
        } else {
            format!("_{column}")
        };
        let (origin, name) = match &query.source {
            Source::Watchlist { name } => (format!("watchlist `{name}`"), name.clone()),
            Source::Table { name, .. } => (format!("table `{name}`"), format!("{name}{suffix}")),
            _ => ("a sub-query".to_string(), format!("subquery{suffix}")),
        };
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let meaning = format!(
            "the values of `{column}` from {origin}: `{}`",
            shorten(&kql::pipeline(query).to_string(), 400)
        );
        self.issue(
            Code::NotTranslated,
            span,
            format!(
                "`{}` tests membership in {meaning}: written as the placeholder `%{name}%`, \
                 which a Sigma processing pipeline must fill with exactly those values",
                f.name
            ),
        );
        if test != ListTest::Equals {
            self.issue(
                Code::MatchesFewer,
                span,
                format!(
                    "the placeholder `%{name}%` is compared as whole values, not as terms: \
                     the rule matches {} events",
                    if negated { "more" } else { "fewer" }
                ),
            );
        } else if case_sensitive && f.fold == Fold::None {
            self.issue(
                Code::CaseSemantics,
                span,
                format!(
                    "KQL compares with the values of `%{name}%` case-sensitively, Sigma placeholder \
                     values case-insensitively: the rule matches {} events",
                    if negated { "fewer" } else { "more" }
                ),
            );
        }
        let placeholder = Placeholder {
            name: name.clone(),
            meaning,
        };
        if !self.placeholders.contains(&placeholder) {
            self.placeholders.push(placeholder);
        }
        Cond::item(Item::new(
            &f.name,
            vec![Modifier::Expand],
            vec![SValue::Str(format!("%{name}%"))],
        ))
    }
}

/// A field as a test reads it.
pub struct Field {
    pub name: String,
    pub fold: Fold,
}

/// A column's Sigma name from the mapping. Rows of `targets/mappings.yaml` keyed
/// `Column (note)` or `A / B / C` are not found by `Mappings::field`; when such a row says
/// Sigma has no field, it is honoured here for the columns it names (never to give a
/// name: `SourceTranslatedAddress / Port` abbreviates).
pub fn lookup(mappings: &Mappings, table: Option<&str>, path: &FieldPath) -> MappedField {
    let found = mappings.field(table, Side::Sigma, path);
    if !matches!(found, MappedField::Unmapped(_)) || !path.path.is_empty() {
        return found;
    }
    let Some(t) = table.and_then(|t| mappings.table(t)) else {
        return found;
    };
    let says_none = t.fields.iter().any(|(key, f)| {
        let key = key.split(" (").next().unwrap_or(key);
        matches!(f.sigma, Some(None)) && key.split(" / ").any(|part| part.trim() == path.column)
    });
    if says_none {
        MappedField::NoEquivalent
    } else {
        found
    }
}

/// The source field a scalar reads, with any case conversion and the expanded column it
/// goes through; the KQL of what it is when it is computed.
pub fn resolve(s: &Scalar, env: &Env) -> Result<(FieldPath, Fold, Option<String>), String> {
    match s {
        Scalar::Field { path } => match env.get(&path.column) {
            Some(Column::Field {
                path: base,
                fold,
                expanded,
            }) => {
                let mut full = base.clone();
                full.path.extend(path.path.iter().cloned());
                Ok((full, *fold, expanded.clone()))
            }
            Some(Column::Computed { value, .. }) => Err(format!(
                "`{}` is computed as `{}`",
                path.column,
                short(&kql::scalar(value).to_string())
            )),
            None => Ok((path.clone(), Fold::None, None)),
        },
        Scalar::Call { function, args } if args.len() == 1 => {
            let (path, fold, expanded) = resolve(&args[0], env)?;
            match function.as_str() {
                "tostring" | "todynamic" | "parse_json" | "parsejson" | "todynamic_" => {
                    Ok((path, fold, expanded))
                }
                "tolower" if fold == Fold::None => Ok((path, Fold::Lower, expanded)),
                "toupper" if fold == Fold::None => Ok((path, Fold::Upper, expanded)),
                _ => Err(format!(
                    "`{}` is computed",
                    short(&kql::scalar(s).to_string())
                )),
            }
        }
        Scalar::Element { value, index } => {
            let (mut path, fold, expanded) = resolve(value, env)?;
            match &**index {
                Scalar::Literal {
                    value: Value::Long(i),
                } => path.path.push(PathStep::Index(*i)),
                Scalar::Literal {
                    value: Value::String(k),
                } => path.path.push(PathStep::Key(k.clone())),
                _ => {
                    return Err(format!(
                        "`{}` is computed",
                        short(&kql::scalar(s).to_string())
                    ));
                }
            }
            Ok((path, fold, expanded))
        }
        _ => Err(format!(
            "`{}` is computed",
            short(&kql::scalar(s).to_string())
        )),
    }
}

/// The values of a column of an inline table with no further processing (a `project` of
/// the column is fine).
fn inline_values(query: &Pipeline, column: &str) -> Option<Vec<Value>> {
    let Source::Inline { columns, rows } = &query.source else {
        return None;
    };
    let plain = query.stages.iter().all(|s| match s {
        Stage::Project { columns, .. } | Stage::Distinct { columns, .. } => {
            columns.iter().all(|c| {
                matches!(&c.value, Scalar::Field { path } if path.path.is_empty() && path.column == c.name)
            })
        }
        _ => false,
    });
    if !plain {
        return None;
    }
    let index = if column.is_empty() && columns.len() == 1 {
        0
    } else {
        columns.iter().position(|c| c.name == column)?
    };
    rows.iter().map(|r| r.get(index).cloned()).collect()
}

fn negate_if(c: Cond, negated: bool) -> Cond {
    if negated { Cond::not(c) } else { c }
}

fn flip(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        other => other,
    }
}

fn apply(fold: Fold, s: &str) -> String {
    match fold {
        Fold::None => s.to_string(),
        Fold::Lower => s.to_lowercase(),
        Fold::Upper => s.to_uppercase(),
    }
}

/// `field == text`: plain (case-insensitive) when the case does not matter, an anchored
/// case-sensitive regular expression otherwise. "" is also a missing or null field in KQL.
fn equals(f: &Field, text: &str, case_sensitive: bool) -> Cond {
    if text.is_empty() {
        return empty(&f.name);
    }
    let case_sensitive = match f.fold {
        Fold::None => case_sensitive,
        fold => {
            if case_sensitive && apply(fold, text) != text {
                return Cond::Const(false);
            }
            false
        }
    };
    let item = if !case_sensitive || caseless(text) {
        Item::new(&f.name, vec![], vec![SValue::Str(plain(text))])
    } else {
        Item::new(
            &f.name,
            vec![Modifier::Re],
            vec![SValue::Str(format!("^{}$", re_escape(text)))],
        )
    };
    Cond::item(item)
}

/// KQL's `isempty`: the empty string, null, or no such field.
pub fn empty(field: &str) -> Cond {
    Cond::or(vec![
        Cond::item(Item::new(field, vec![], vec![SValue::Str(String::new())])),
        null_or_absent(field),
    ])
}

fn null_or_absent(field: &str) -> Cond {
    Cond::or(vec![
        Cond::item(Item::new(field, vec![], vec![SValue::Null])),
        Cond::item(Item::new(
            field,
            vec![Modifier::Exists],
            vec![SValue::Bool(false)],
        )),
    ])
}

/// The field holds a value (not null, not absent).
fn present(field: &str) -> Cond {
    Cond::not(null_or_absent(field))
}

/// `ipv4_is_in_range`/`ipv4_is_private`, and their negations. KQL gives null (so no row)
/// for a value that is not an IPv4 address, negated or not: the negation also requires an
/// IPv4 address (`0.0.0.0/0`).
fn cidr(field: &str, nets: Vec<String>, negated: bool) -> Cond {
    let test = Cond::item(Item::new(
        field,
        vec![Modifier::Cidr],
        nets.into_iter().map(SValue::Str).collect(),
    ));
    if negated {
        Cond::and(vec![
            Cond::item(Item::new(
                field,
                vec![Modifier::Cidr],
                vec![SValue::Str("0.0.0.0/0".into())],
            )),
            Cond::not(test),
        ])
    } else {
        test
    }
}

/// A KQL IPv4 range (`10.1.2.3/8`, `10.1.2.3`) as the network it denotes (`10.0.0.0/8`):
/// KQL masks the host bits, Sigma tools refuse them.
pub fn ipv4_network(range: &str) -> Option<String> {
    let (addr, bits) = match range.trim().split_once('/') {
        Some((a, b)) => (a, b.trim().parse::<u32>().ok()?),
        None => (range.trim(), 32),
    };
    if bits > 32 {
        return None;
    }
    let addr: Ipv4Addr = addr.trim().parse().ok()?;
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Some(format!("{}/{bits}", Ipv4Addr::from(u32::from(addr) & mask)))
}

fn number(v: &Value) -> Option<SValue> {
    match v {
        Value::Long(i) => Some(SValue::Int(*i)),
        Value::Real(f) if f.is_finite() => Some(SValue::Float(*f)),
        Value::Bool(b) => Some(SValue::Bool(*b)),
        _ => None,
    }
}

/// Text with no letter that has case: case-sensitive and -insensitive tests agree on it.
pub fn caseless(s: &str) -> bool {
    s.chars().all(|c| c.to_lowercase().eq(c.to_uppercase()))
}

/// A string as a Sigma plain value: `*`, `?` and a backslash before them (or at the end)
/// are escaped, since they are wildcards and escapes in Sigma.
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '*' | '?' => {
                out.push('\\');
                out.push(c);
            }
            '\\' => {
                let next = chars.get(i + 1);
                if matches!(next, None | Some('*') | Some('?') | Some('\\')) {
                    out.push_str("\\\\");
                } else {
                    out.push('\\');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A string as a regular expression matching it literally.
pub fn re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.^$*+?()[]{}|".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// KQL's whole-term match as a regular expression: the text, not preceded (`start`) or
/// followed (`end`) by a letter or digit. Kusto checks a boundary only at an edge where the
/// text itself has a letter or digit (`has "-b"` is true in `"a-b"`; text with none is a
/// plain substring), as measured by duckdb-kql against Kusto. Letters and digits outside
/// ASCII count as boundaries here (the portable regular expression class).
fn term_regex(text: &str, start: bool, end: bool) -> String {
    let first = text.chars().next().is_some_and(char::is_alphanumeric);
    let last = text.chars().last().is_some_and(char::is_alphanumeric);
    let mut re = String::new();
    if start && first {
        re.push_str("(^|[^0-9A-Za-z])");
    }
    re.push_str(&re_escape(text));
    if end && last {
        re.push_str("([^0-9A-Za-z]|$)");
    }
    re
}

/// Whether a pattern has a letter of this kind outside escape sequences (`\\S`, `\\W`
/// are classes, not letters).
fn has_letter(pattern: &str, kind: fn(&char) -> bool) -> bool {
    let mut escaped = false;
    for c in pattern.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if kind(&c) {
            return true;
        }
    }
    false
}

/// An RE2 pattern as Sigma tools read it (Python's `re` in pySigma, PCRE in Splunk):
/// named groups become plain groups (names do not change what matches, and the two
/// engines spell them differently); a leading flag group stays. Syntax the others read
/// differently or refuse is an error: flags after the start, `\\p{..}`, `\\z`, `\\x{..}`,
/// POSIX classes, RE2's ungreedy flag.
fn portable_regex(pattern: &str) -> Result<String, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let next = chars.get(i + 1).copied();
            if matches!(next, Some('p' | 'P' | 'z' | 'C' | 'Q' | 'E'))
                || (next == Some('x') && chars.get(i + 2) == Some(&'{'))
            {
                return Err(
                    "the regular expression uses RE2 syntax other engines read differently",
                );
            }
            out.push(c);
            if let Some(n) = next {
                out.push(n);
            }
            i += 2;
            continue;
        }
        if in_class {
            if c == '[' && chars.get(i + 1) == Some(&':') {
                return Err("the regular expression uses POSIX classes");
            }
            if c == ']' {
                in_class = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == '[' {
            in_class = true;
            out.push(c);
            // `[]` and `[^]` start with a literal `]`.
            if chars.get(i + 1) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            if chars.get(i + 1) == Some(&']') {
                out.push(']');
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == '(' && chars.get(i + 1) == Some(&'?') {
            let rest: String = chars[i + 2..].iter().collect();
            // `(?P<name>` and `(?<name>`: a plain group.
            let named = rest.starts_with("P<")
                || (rest.starts_with('<') && !rest.starts_with("<=") && !rest.starts_with("<!"));
            if named && let Some(close) = chars[i + 2..].iter().position(|c| *c == '>') {
                out.push('(');
                i += 2 + close + 1;
                continue;
            }
            // Flag groups: `(?flags)` only at the very start; `(?flags:...)` anywhere.
            let flags: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
                .collect();
            if !flags.is_empty() {
                if flags.contains('U') {
                    return Err("the regular expression uses RE2's ungreedy flag");
                }
                let after = rest[flags.len()..].chars().next();
                if after == Some(')') && i != 0 {
                    return Err("the regular expression sets flags after its start");
                }
            }
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

/// A text on one line, shortened for a message.
pub fn short(text: &str) -> String {
    shorten(text, 120)
}

pub fn shorten(text: &str, max: usize) -> String {
    let one = crate::target::one_line(text);
    if one.chars().count() > max {
        let cut: String = one.chars().take(max - 3).collect();
        format!("{cut}...")
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_escape_wildcards() {
        assert_eq!(plain("a*b?c"), "a\\*b\\?c");
        assert_eq!(plain("C:\\Windows\\"), "C:\\Windows\\\\");
        assert_eq!(plain("a\\*"), "a\\\\\\*");
    }

    #[test]
    fn term_regexes_have_boundaries() {
        let re = term_regex("On-Premises Sync", true, true);
        assert_eq!(re, "(^|[^0-9A-Za-z])On-Premises Sync([^0-9A-Za-z]|$)");
        assert_eq!(term_regex("(permanent)", true, true), "\\(permanent\\)");
        assert_eq!(term_regex("-x", true, true), "-x([^0-9A-Za-z]|$)");
        assert_eq!(term_regex("err", true, false), "(^|[^0-9A-Za-z])err");
    }

    #[test]
    fn regexes_are_made_portable() {
        assert_eq!(
            portable_regex("(?i)a(?P<x>b)(?<y>c)").unwrap(),
            "(?i)a(b)(c)"
        );
        assert_eq!(portable_regex("[(?<x>]").unwrap(), "[(?<x>]");
        assert!(portable_regex("a(?i)b").is_err());
        assert!(portable_regex("(?i:a)b").is_ok());
        assert!(portable_regex("\\pL").is_err());
        assert!(portable_regex("[[:alpha:]]").is_err());
        assert!(portable_regex("(?U)a+").is_err());
    }

    #[test]
    fn networks_are_masked() {
        assert_eq!(ipv4_network("10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(ipv4_network("1.2.3.4").unwrap(), "1.2.3.4/32");
        assert_eq!(ipv4_network("::1/128"), None);
        assert_eq!(ipv4_network("1.2.3.4/33"), None);
    }

    #[test]
    fn case_matters_only_for_letters() {
        assert!(caseless("50126"));
        assert!(caseless("10.0.0.1"));
        assert!(!caseless("Browser"));
    }
}
