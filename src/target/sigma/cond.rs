//! A rule's condition as a tree of field tests, and its packing into Sigma's named
//! selections and condition text: positive tests joined by `and` share a map
//! (`selection`), alternatives share a list of maps, negated tests become `filter_*`
//! selections used under `not`.

use std::collections::BTreeSet;

use super::model::{Detection, Item, Modifier, Selection};

/// A condition over field tests. Negation sits on tests or on groups of tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Item(Item),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Const(bool),
}

impl Cond {
    pub fn item(item: Item) -> Cond {
        Cond::Item(item)
    }

    pub fn not(c: Cond) -> Cond {
        match c {
            Cond::Const(b) => Cond::Const(!b),
            Cond::Not(inner) => *inner,
            other => Cond::Not(Box::new(other)),
        }
    }

    /// All of `parts`, flattened and with constants folded.
    pub fn and(parts: Vec<Cond>) -> Cond {
        let mut out = vec![];
        for p in parts {
            match p {
                Cond::Const(true) => {}
                Cond::Const(false) => return Cond::Const(false),
                Cond::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        dedup(&mut out);
        match out.len() {
            0 => Cond::Const(true),
            1 => out.pop().unwrap_or(Cond::Const(true)),
            _ => Cond::And(out),
        }
    }

    /// One of `parts`, flattened and with constants folded.
    pub fn or(parts: Vec<Cond>) -> Cond {
        let mut out = vec![];
        for p in parts {
            match p {
                Cond::Const(false) => {}
                Cond::Const(true) => return Cond::Const(true),
                Cond::Or(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        dedup(&mut out);
        match out.len() {
            0 => Cond::Const(false),
            1 => out.pop().unwrap_or(Cond::Const(false)),
            _ => Cond::Or(out),
        }
    }

    /// The field tests in this condition, in order.
    pub fn items(&self) -> Vec<&Item> {
        let mut out = vec![];
        self.collect_items(&mut out);
        out
    }

    fn collect_items<'a>(&'a self, out: &mut Vec<&'a Item>) {
        match self {
            Cond::Item(i) => out.push(i),
            Cond::Not(c) => c.collect_items(out),
            Cond::And(cs) | Cond::Or(cs) => cs.iter().for_each(|c| c.collect_items(out)),
            Cond::Const(_) => {}
        }
    }
}

fn dedup(parts: &mut Vec<Cond>) {
    let mut kept: Vec<Cond> = Vec::with_capacity(parts.len());
    for p in parts.drain(..) {
        if !kept.contains(&p) {
            kept.push(p);
        }
    }
    *parts = kept;
}

/// Packs a condition (not a constant) into named selections and a condition text.
pub fn detection(cond: &Cond) -> Detection {
    let mut packer = Packer::default();
    let condition = packer.expr(cond, true);
    Detection {
        selections: packer.selections,
        condition,
    }
}

#[derive(Default)]
struct Packer {
    selections: Vec<(String, Selection)>,
    names: BTreeSet<String>,
}

impl Packer {
    /// The condition text for `c`; `top` marks the rule's top-level conjunction, whose
    /// positive tests go in the selection named `selection`.
    fn expr(&mut self, c: &Cond, top: bool) -> String {
        match c {
            Cond::Item(item) => {
                let hint = (!top).then_some(item);
                self.add("selection", hint, Selection::Map(vec![item.clone()]))
            }
            // Constants are folded away before packing (`Cond::and`/`or`/`not`); a rule
            // whose whole condition is constant is not packed at all.
            Cond::Const(b) => {
                let item = Item::new(
                    "kqlc_constant",
                    vec![super::model::Modifier::Exists],
                    vec![super::model::Value::Bool(!*b)],
                );
                self.add("selection", Some(&item), Selection::Map(vec![item.clone()]))
            }
            Cond::Not(inner) => {
                if let Some(sel) = as_selection(inner) {
                    format!("not {}", self.add("filter", main_field(inner), sel))
                } else {
                    format!("not ({})", self.expr(inner, false))
                }
            }
            Cond::Or(parts) => {
                // Regular expressions first: pySigma's Splunk backend (2.1) drops an `or`
                // whose regular expression follows a plain test into `| search OR ...`.
                let mut parts: Vec<Cond> = parts.clone();
                parts.sort_by_key(|p| !has_regex(p));
                let c = &Cond::Or(parts.clone());
                if let Some(sel) = as_selection(c) {
                    let hint = if top { None } else { main_field(c) };
                    return self.add("selection", hint, sel);
                }
                // The alternatives that are plain tests share one list of maps.
                let (plain, other): (Vec<&Cond>, Vec<&Cond>) =
                    parts.iter().partition(|p| and_map(p).is_some());
                let mut texts = vec![];
                if !plain.is_empty() {
                    let group = Cond::Or(plain.into_iter().cloned().collect());
                    texts.push(self.expr(&group, false));
                }
                for p in other {
                    let text = self.expr(p, false);
                    // `and` binds tighter than `or`; brackets say so to the reader.
                    texts.push(if text.contains(" and ") {
                        format!("({text})")
                    } else {
                        text
                    });
                }
                texts.join(" or ")
            }
            Cond::And(parts) => {
                // Positive tests share maps (a key may appear once per map); the first
                // map of the top level is `selection`.
                let items: Vec<Item> = parts
                    .iter()
                    .filter_map(|p| match p {
                        Cond::Item(i) => Some(i.clone()),
                        _ => None,
                    })
                    .collect();
                let mut maps: Vec<Vec<Item>> = vec![];
                for item in merge_all(items) {
                    {
                        let key = item.key();
                        match maps.iter_mut().find(|m| m.iter().all(|i| i.key() != key)) {
                            Some(map) => map.push(item),
                            None => maps.push(vec![item]),
                        }
                    }
                }
                let mut texts = vec![];
                for (n, map) in maps.into_iter().enumerate() {
                    let hint = if n == 0 && top {
                        None
                    } else {
                        map.first().cloned()
                    };
                    texts.push(self.add("selection", hint.as_ref(), Selection::Map(map)));
                }
                for p in parts.iter().filter(|p| !matches!(p, Cond::Item(_))) {
                    let text = self.expr(p, false);
                    texts.push(if matches!(p, Cond::Or(_)) && text.contains(" or ") {
                        format!("({text})")
                    } else {
                        text
                    });
                }
                texts.join(" and ")
            }
        }
    }

    /// Adds a selection named `base` (or `base_<field>`), returning its name.
    fn add(&mut self, base: &str, hint: Option<&Item>, selection: Selection) -> String {
        // The same test twice is one selection.
        if let Some((name, _)) = self
            .selections
            .iter()
            .find(|(n, s)| *s == selection && n.starts_with(base))
        {
            return name.clone();
        }
        let stem = match hint {
            Some(item) => format!("{base}_{}", identifier(&item.field)),
            None => base.to_string(),
        };
        let mut name = stem.clone();
        let mut n = 2;
        while self.names.contains(&name) {
            name = format!("{stem}_{n}");
            n += 1;
        }
        self.names.insert(name.clone());
        self.selections.push((name.clone(), selection));
        name
    }
}

/// The field most tests of a condition are on (the first such), to name its selection.
fn main_field(c: &Cond) -> Option<&Item> {
    let items = c.items();
    items
        .iter()
        .max_by_key(|i| {
            let count = items.iter().filter(|j| j.field == i.field).count();
            let first = items.iter().position(|j| j.field == i.field).unwrap_or(0);
            (count, usize::MAX - first)
        })
        .copied()
}

fn has_regex(c: &Cond) -> bool {
    c.items().iter().any(|i| {
        i.modifiers
            .iter()
            .any(|m| matches!(m, Modifier::Re | Modifier::ReI))
    })
}

/// The condition as one selection, when it is a test, tests that all hold, or
/// alternatives each of which is a test or tests that all hold.
fn as_selection(c: &Cond) -> Option<Selection> {
    match c {
        Cond::Item(i) => Some(Selection::Map(vec![i.clone()])),
        Cond::And(_) => and_map(c).map(Selection::Map),
        Cond::Or(parts) => {
            let mut maps: Vec<Vec<Item>> = vec![];
            for p in parts {
                let map = and_map(p)?;
                // `a: x` or `a: y` share one value list.
                if let [item] = map.as_slice()
                    && let Some(existing) = maps
                        .iter_mut()
                        .find(|m| m.len() == 1 && m[0].mergeable(item))
                {
                    existing[0].values.extend(item.values.iter().cloned());
                    continue;
                }
                maps.push(map);
            }
            Some(match maps.len() {
                1 => Selection::Map(maps.pop()?),
                _ => Selection::List(maps),
            })
        }
        _ => None,
    }
}

/// Tests that all hold, as one map (their keys must differ).
fn and_map(c: &Cond) -> Option<Vec<Item>> {
    match c {
        Cond::Item(i) => Some(vec![i.clone()]),
        Cond::And(parts) => {
            let mut items = vec![];
            for p in parts {
                let Cond::Item(i) = p else { return None };
                items.push(i.clone());
            }
            let mut map: Vec<Item> = vec![];
            for i in merge_all(items) {
                if map.iter().any(|m| m.key() == i.key()) {
                    return None;
                }
                map.push(i);
            }
            Some(map)
        }
        _ => None,
    }
}

/// Tests that must all hold on one field with one text modifier share a value list with
/// `|all` (`CommandLine|contains|all`).
fn merge_all(items: Vec<Item>) -> Vec<Item> {
    let mergeable = |i: &Item| {
        i.values.len() == 1
            && matches!(
                i.modifiers.as_slice(),
                [Modifier::Contains]
                    | [Modifier::StartsWith]
                    | [Modifier::EndsWith]
                    | [Modifier::Re]
                    | [Modifier::ReI]
            )
    };
    let mut out: Vec<Item> = vec![];
    for item in items {
        if mergeable(&item)
            && let Some(existing) = out.iter_mut().find(|o| {
                o.field == item.field
                    && (mergeable(o) || o.modifiers.last() == Some(&Modifier::All))
                    && o.modifiers
                        .iter()
                        .filter(|m| **m != Modifier::All)
                        .eq(item.modifiers.iter())
            })
        {
            if existing.modifiers.last() != Some(&Modifier::All) {
                existing.modifiers.push(Modifier::All);
            }
            existing.values.extend(item.values);
            continue;
        }
        out.push(item);
    }
    out
}

/// A field name as part of a selection name: its last segment in snake_case.
fn identifier(field: &str) -> String {
    let last: Vec<char> = field.rsplit('.').next().unwrap_or(field).chars().collect();
    // `IPAddress` -> `ip_address`: a word starts at an upper-case letter after a lower-case
    // one or a digit, or before a lower-case one after upper-case ones.
    let mut snake = String::new();
    for (i, &c) in last.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| last[p]);
        let next = last.get(i + 1);
        let starts_word = c.is_ascii_uppercase()
            && match previous {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
        if starts_word {
            snake.push('_');
        }
        snake.push(c);
    }
    let mut out: String = snake
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    let out = out.trim_matches('_');
    let mut out: String = out.chars().take(40).collect();
    if out.is_empty() {
        out = "field".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::sigma::model::Value;

    fn item(field: &str, m: Vec<Modifier>, v: &str) -> Cond {
        Cond::Item(Item::new(field, m, vec![Value::Str(v.into())]))
    }

    #[test]
    fn packs_conjunctions_alternatives_and_filters() {
        let c = Cond::and(vec![
            item("ResultType", vec![], "0"),
            Cond::or(vec![
                item("UserPrincipalName", vec![Modifier::StartsWith], "Sync_"),
                item("UserPrincipalName", vec![Modifier::Contains], "DirSync"),
            ]),
            Cond::not(item("IPAddress", vec![Modifier::Expand], "%X%")),
            item("AppId", vec![], "a"),
        ]);
        let d = detection(&c);
        assert_eq!(
            d.condition,
            "selection and selection_user_principal_name and not filter_ip_address"
        );
        assert_eq!(d.selections.len(), 3);
        let yaml = d.yaml();
        assert!(
            yaml.contains("  selection:\n    ResultType: '0'\n    AppId: a\n"),
            "{yaml}"
        );
        assert!(
            yaml.contains("    - UserPrincipalName|startswith: Sync_\n    - UserPrincipalName|contains: DirSync\n"),
            "{yaml}"
        );
    }

    #[test]
    fn same_key_alternatives_share_a_list() {
        let c = Cond::or(vec![item("A", vec![], "x"), item("A", vec![], "yes")]);
        let d = detection(&c);
        assert_eq!(d.condition, "selection");
        assert!(
            d.yaml().contains("    A:\n      - x\n      - 'yes'\n"),
            "{}",
            d.yaml()
        );
    }

    #[test]
    fn constants_fold() {
        assert_eq!(Cond::and(vec![Cond::Const(true)]), Cond::Const(true));
        assert_eq!(
            Cond::or(vec![Cond::Const(false), item("A", vec![], "x")]),
            item("A", vec![], "x")
        );
        assert_eq!(
            Cond::not(Cond::not(item("A", vec![], "x"))),
            item("A", vec![], "x")
        );
    }
}
