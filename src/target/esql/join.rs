//! Reading several sources: `union`, `join` and `in (sub-query)`.
//!
//! ES|QL has no general join of two event streams. A join is written as a correlation
//! when both sides are filtered (and possibly summarized) tables: both sides are read
//! in one `FROM a, b`, each row is marked with the side it belongs to, and
//! `STATS ... BY key` keeps the keys both sides have. That keeps which keys match; it
//! gives one row per key (with the other columns as `VALUES` lists) where KQL gives one
//! row per matching pair, which is said unless both sides have one row per key. A join
//! with a watchlist, and `x in (watchlist)`, is a `LOOKUP JOIN` against a lookup index
//! named after the watchlist.

use std::collections::BTreeSet;

use crate::diag::Code;
use crate::ir::*;

use super::agg::AggOut;
use super::expr::{self, E, P, Ty};
use super::lit;
use super::query::{Col, Field, Origin, Scope, Tx, computed, dedup, unquote};

/// Does a pipeline read a watchlist or URL rows (written as a lookup index)?
pub fn reads_lookup(p: &Pipeline) -> bool {
    matches!(p.source, Source::Watchlist { .. } | Source::External { .. })
}

/// The pipeline with its first `x in (T | ...)` (a top-level condition, `T` a table) as
/// a semi-join (`!in`: an anti-join), for writing as a correlation.
pub fn semi_join(p: &Pipeline) -> Option<Pipeline> {
    for (i, s) in p.stages.iter().enumerate() {
        match s {
            Stage::Join { .. } => return None,
            Stage::Filter { predicate, at } => {
                let conjuncts: Vec<&Predicate> = match predicate {
                    Predicate::And { all } => all.iter().collect(),
                    q => vec![q],
                };
                let found = conjuncts.iter().position(|q| {
                    matches!(q, Predicate::InQuery {
                        value: Scalar::Field { path },
                        test: ListTest::Equals,
                        case_sensitive: true,
                        query,
                        ..
                    } if path.path.is_empty() && !reads_lookup(query))
                });
                let Some(k) = found else { continue };
                let Predicate::InQuery {
                    value: Scalar::Field { path },
                    query,
                    column,
                    negated,
                    at: test_at,
                    ..
                } = conjuncts[k]
                else {
                    continue;
                };
                let rest: Vec<Predicate> = conjuncts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .map(|(_, q)| (*q).clone())
                    .collect();
                let mut stages = p.stages[..i].to_vec();
                if !rest.is_empty() {
                    stages.push(Stage::Filter {
                        predicate: if rest.len() == 1 {
                            rest.into_iter().next()?
                        } else {
                            Predicate::And { all: rest }
                        },
                        at: *at,
                    });
                }
                stages.push(Stage::Join {
                    kind: if *negated {
                        JoinKind::LeftAnti
                    } else {
                        JoinKind::LeftSemi
                    },
                    right: (**query).clone(),
                    lookup: false,
                    keys: vec![JoinKeyPair {
                        left: path.column.clone(),
                        right: column.clone(),
                    }],
                    at: *test_at,
                });
                stages.extend(p.stages[i + 1..].iter().cloned());
                return Some(Pipeline {
                    source: p.source.clone(),
                    stages,
                });
            }
            _ => {}
        }
    }
    None
}

/// A lookup index standing for rows a query reads from outside the event stream.
pub struct Lookup {
    pub index: String,
    /// What it holds, for messages (`the watchlist X`, `the rows of <url>`).
    pub what: String,
    /// For the flag column's name.
    pub short: String,
    pub watchlist: bool,
}

pub fn lookup_of(source: &Source) -> Option<Lookup> {
    match source {
        Source::Watchlist { name } => Some(Lookup {
            index: lookup_index(name),
            what: format!("the rows of the watchlist `{name}`"),
            short: lookup_index(name),
            watchlist: true,
        }),
        Source::External { uris, .. } => {
            let uri = uris.first()?;
            let stem = uri
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            let stem = stem.split('.').next().unwrap_or_default();
            let index = lookup_index(if stem.is_empty() {
                "externaldata"
            } else {
                stem
            });
            Some(Lookup {
                short: index.clone(),
                index,
                what: format!("the rows of {}", uris.join(", ")),
                watchlist: false,
            })
        }
        _ => None,
    }
}

/// The lookup index standing for a watchlist: its alias in lower case, with characters
/// index names cannot hold replaced.
pub fn lookup_index(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(['_', '-']) {
        out.insert_str(0, "watchlist");
    }
    out
}

/// What runs after a correlation's `STATS` for one side: its `having`, its steps after
/// its summary, and (KQL name, new name) for aggregates renamed apart from the other
/// side's.
type SideAfter<'p> = (Option<&'p Predicate>, &'p [Stage], Vec<(String, String)>);

/// One side of a correlation: tables, row-wise stages, and an optional summary by the
/// join keys.
struct Side<'p> {
    tables: Vec<(String, Option<Window>)>,
    stages: &'p [Stage],
    agg: Option<(&'p [GroupKey], &'p [Aggregate], Option<&'p Predicate>)>,
    /// Distinct rows by the keys (an aggregate without aggregates).
    distinct_keys: Vec<GroupKey>,
    /// Row-wise steps after the summary (on its columns).
    post: &'p [Stage],
}

fn row_step(s: &Stage) -> bool {
    matches!(
        s,
        Stage::Filter { .. }
            | Stage::Compute { .. }
            | Stage::Project { .. }
            | Stage::Rename { .. }
            | Stage::Drop { .. }
            | Stage::Keep { .. }
            | Stage::Reorder { .. }
            | Stage::Sort { .. }
            | Stage::Parse { .. }
            | Stage::Expand { .. }
    )
}

fn plain_tables(source: &Source) -> Option<Vec<(String, Option<Window>)>> {
    match source {
        Source::Table { name, window, .. } => Some(vec![(name.clone(), window.clone())]),
        Source::Union {
            inputs,
            source_column: None,
            ..
        } => {
            let mut out = vec![];
            for i in inputs {
                if !i.stages.is_empty() {
                    return None;
                }
                out.extend(plain_tables(&i.source)?);
            }
            Some(out)
        }
        _ => None,
    }
}

fn side<'p>(
    source: &'p Source,
    stages: &'p [Stage],
    keys: &[String],
    which: &str,
) -> Result<Side<'p>, String> {
    let tables = plain_tables(source)
        .ok_or_else(|| format!("the {which} side does not read plain tables"))?;
    let summary = stages
        .iter()
        .position(|s| matches!(s, Stage::Aggregate { .. } | Stage::Distinct { .. }));
    let (rows, last, post) = match summary {
        Some(i) => (&stages[..i], Some(&stages[i]), &stages[i + 1..]),
        None => (stages, None, &stages[stages.len()..]),
    };
    let post_ok =
        |s: &Stage| row_step(s) && !matches!(s, Stage::Parse { .. } | Stage::Expand { .. });
    let blocking = rows
        .iter()
        .find(|s| !row_step(s))
        .or_else(|| post.iter().find(|s| !post_ok(s)));
    if let Some(s) = blocking {
        return Err(format!(
            "the {which} side has a `{}` step before the join",
            stage_name(s)
        ));
    }
    let key_set: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut out = Side {
        tables,
        stages: rows,
        agg: None,
        distinct_keys: vec![],
        post,
    };
    match last {
        Some(Stage::Aggregate {
            keys: group,
            aggregates,
            having,
            ..
        }) => {
            let names: BTreeSet<&str> = group.iter().map(|k| k.name.as_str()).collect();
            let plain = group.iter().all(|k| {
                matches!(&k.value, Scalar::Field { path } if path.path.is_empty() && path.column == k.name)
            });
            if names != key_set || !plain {
                return Err(format!(
                    "the {which} side is summarized by other columns than the join key"
                ));
            }
            out.agg = Some((group, aggregates, having.as_ref()));
        }
        Some(Stage::Distinct { columns, .. }) => {
            let names: BTreeSet<&str> = columns.iter().map(|a| a.name.as_str()).collect();
            if names != key_set {
                // Distinct rows over more columns: which keys exist is the same as
                // over the rows themselves (the columns it keeps are the rows' columns).
                if names.is_superset(&key_set) && post.is_empty() {
                    out.stages = &stages[..stages.len()];
                    return Ok(out);
                }
                return Err(format!(
                    "the {which} side is `distinct` over other columns than the join key"
                ));
            }
            out.distinct_keys = columns
                .iter()
                .map(|a| GroupKey {
                    name: a.name.clone(),
                    value: a.value.clone(),
                })
                .collect();
        }
        _ => {}
    }
    Ok(out)
}

/// The columns a pipeline's stages create (`extend`, `project`, `summarize`).
fn made_columns(p: &Pipeline) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in &p.stages {
        match s {
            Stage::Compute { columns, .. }
            | Stage::Project { columns, .. }
            | Stage::Distinct { columns, .. } => out.extend(columns.iter().map(|a| a.name.clone())),
            Stage::Aggregate {
                keys, aggregates, ..
            } => {
                out.extend(keys.iter().map(|k| k.name.clone()));
                out.extend(aggregates.iter().map(|a| a.name.clone()));
                out.extend(aggregates.iter().flat_map(|a| a.names.clone()));
            }
            Stage::Rename { renames, .. } => out.extend(renames.iter().map(|r| r.new.clone())),
            Stage::Parse { pattern, .. } => out.extend(pattern.iter().filter_map(|p| match p {
                ParsePiece::Capture { name, .. } => Some(name.clone()),
                _ => None,
            })),
            _ => {}
        }
    }
    out
}

fn stage_name(s: &Stage) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v["stage"].as_str().map(String::from))
        .unwrap_or_else(|| "?".into())
}

impl Tx<'_> {
    /// A join of two event streams as `FROM a, b | STATS ... BY key`.
    #[allow(clippy::too_many_arguments)]
    pub fn correlate(
        &mut self,
        left_source: &Source,
        left_stages: &[Stage],
        kind: JoinKind,
        right: &Pipeline,
        keys: &[JoinKeyPair],
        at: Span,
        rest: &[Stage],
    ) -> Result<(), String> {
        let lkeys: Vec<String> = keys.iter().map(|k| k.left.clone()).collect();
        let rkeys: Vec<String> = keys.iter().map(|k| k.right.clone()).collect();
        let left = side(left_source, left_stages, &lkeys, "left")?;
        let rside = side(&right.source, &right.stages, &rkeys, "right")?;
        if keys.is_empty() {
            return Err("the join has no keys".into());
        }
        let inner = matches!(
            kind,
            JoinKind::Inner | JoinKind::InnerUnique | JoinKind::LeftSemi | JoinKind::RightSemi
        );
        if !inner && (!left.post.is_empty() || !rside.post.is_empty()) {
            return Err(format!(
                "a `{kind:?}` join of a side with steps after its summary"
            ));
        }
        self.here = Some(at);
        let lookups = std::mem::replace(&mut self.lookups_allowed, false);
        let result = self.correlate_sides(&left, &rside, kind, keys, at, rest);
        self.lookups_allowed = lookups;
        result
    }

    fn correlate_sides(
        &mut self,
        left: &Side,
        right: &Side,
        kind: JoinKind,
        keys: &[JoinKeyPair],
        at: Span,
        rest: &[Stage],
    ) -> Result<(), String> {
        let all: Vec<(String, Option<Window>)> =
            left.tables.iter().chain(&right.tables).cloned().collect();
        let mut indices = vec![];
        for (t, _) in &all {
            for i in self.table_index(t, Some(at)).split(',') {
                indices.push(i.trim().to_string());
            }
        }
        dedup(&mut indices);
        let several = indices.len() > 1;
        let list: Vec<String> = indices.iter().map(|i| lit::index(i)).collect();
        let lnames: Vec<&str> = left.tables.iter().map(|(t, _)| t.as_str()).collect();
        let rnames: Vec<&str> = right.tables.iter().map(|(t, _)| t.as_str()).collect();
        self.comment(&format!(
            "join: rows of {} (left_row) and of {} (right_row), correlated by {}",
            lnames.join(", "),
            rnames.join(", "),
            keys.iter()
                .map(|k| if k.left == k.right {
                    k.left.clone()
                } else {
                    format!("{} == {}", k.left, k.right)
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
        self.push(format!("FROM {}", list.join(", ")));
        self.aggregates = true;

        // Each side's row-wise steps, in its own scope; computed columns never overwrite.
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let (lscope, lcond) = self.side_rows(left, several, &mut taken)?;
        let (rscope, rcond) = self.side_rows(right, several, &mut taken)?;
        let lrow = E::column("left_row", Ty::Bool);
        let rrow = E::column("right_row", Ty::Bool);
        self.push(format!(
            "EVAL left_row = {}, right_row = {}",
            lcond.clone().expr().text,
            rcond.clone().expr().text
        ));
        self.push("WHERE left_row OR right_row");

        // The keys.
        let mut pairs = vec![];
        for k in keys {
            self.scope = lscope.clone();
            let lk = self
                .field(&FieldPath::column(k.left.clone()))
                .map_err(|w| w.message())?;
            self.scope = rscope.clone();
            let rk = self
                .field(&FieldPath::column(k.right.clone()))
                .map_err(|w| w.message())?;
            pairs.push((k, lk, rk));
        }
        let mut disjoint = lnames.iter().all(|t| !rnames.contains(t));
        if !disjoint && pairs.iter().any(|(_, lk, rk)| lk.text != rk.text) {
            // A row of both sides is grouped under each side's key: one copy per side.
            self.comment("a row of both sides counts once as each side, under that side's key");
            self.push(
                "EVAL join_side = CASE(left_row AND right_row, [\"left\", \"right\"], left_row, \"left\", \"right\")",
            );
            self.push("MV_EXPAND join_side");
            self.push("EVAL left_row = join_side == \"left\", right_row = join_side == \"right\"");
            disjoint = true;
        }
        let mut by = vec![];
        let mut key_cols: Vec<(String, Col)> = vec![];
        for (k, lk, rk) in pairs {
            let (text, esql, ty) = if lk.text == rk.text {
                if lk.is_column() {
                    (lk.text.clone(), unquote(&lk.text), lk.ty)
                } else {
                    (
                        format!("{} = {}", lit::ident(&k.left), lk.text),
                        k.left.clone(),
                        lk.ty,
                    )
                }
            } else if disjoint {
                let (l, r) = if lk.ty == rk.ty {
                    (lk.clone(), rk.clone())
                } else {
                    (to_text(lk.clone()), to_text(rk.clone()))
                };
                let ty = l.ty;
                let case = expr::call("CASE", &[lrow.clone(), l, r], ty);
                (
                    format!("{} = {}", lit::ident(&k.left), case.text),
                    k.left.clone(),
                    ty,
                )
            } else {
                return Err(format!(
                    "the sides read the same rows and join `{}` with `{}`: one row cannot be grouped under two keys",
                    k.left, k.right
                ));
            };
            by.push(text);
            for n in [&k.left, &k.right] {
                key_cols.push((n.clone(), computed(&esql, ty)));
            }
        }
        dedup(&mut by);
        let key_names: BTreeSet<String> = key_cols.iter().map(|(n, _)| n.clone()).collect();

        // The aggregates of summarized sides, then the existence counts.
        let mut out = AggOut::default();
        // Per side: its `having`, its steps after the summary, and the names its
        // aggregates were given (KQL calls the right side's duplicates `Name1`).
        let mut after: Vec<SideAfter> = vec![];
        let mut renamed_counts: Vec<Option<String>> = vec![];
        for (s, scope, row) in [(left, &lscope, &lrow), (right, &rscope, &rrow)] {
            let mut renames = vec![];
            let mut count_name = None;
            if let Some((_, aggregates, h)) = s.agg {
                self.scope = scope.clone();
                for a in aggregates {
                    let mut a = a.clone();
                    let taken =
                        |n: &str| out.cols.iter().any(|(c, _)| c == n) || key_names.contains(n);
                    if !a.name.is_empty() && taken(&a.name) {
                        let mut n = format!("{}1", a.name);
                        while taken(&n) {
                            n.push('1');
                        }
                        renames.push((a.name.clone(), n.clone()));
                        a.name = n;
                    }
                    if a.function == AggregateFunction::Count
                        && a.condition.is_none()
                        && a.names.is_empty()
                        && a.args.iter().all(|x| matches!(x, Scalar::AllColumns))
                        && count_name.is_none()
                    {
                        count_name = Some(a.name.clone());
                    }
                    self.aggregate_items(&a, Some(row), None, &key_names, &mut out);
                }
                after.push((h, s.post, renames));
            } else {
                after.push((None, s.post, renames));
            }
            renamed_counts.push(count_name);
        }
        // How many rows each side has per key: a plain `count()` of the side already says.
        let mut counts = vec![];
        for (reused, which) in renamed_counts.into_iter().zip(["left", "right"]) {
            counts.push(match reused {
                Some(n) => n,
                None => {
                    let n = format!("{which}_rows");
                    out.items.push(format!("{n} = COUNT(*) WHERE {which}_row"));
                    out.cols.push((n.clone(), computed(&n, Ty::Num)));
                    n
                }
            });
        }
        let (lcount, rcount) = (lit::ident(&counts[0]), lit::ident(&counts[1]));

        // Columns used later: taken from the side that has them, as lists of values.
        let wanted: Vec<String> = self.inputs_of(rest).into_iter().collect();
        let defined: BTreeSet<String> = out.cols.iter().map(|(n, _)| n.clone()).collect();
        let mut value_cols = vec![];
        for n in wanted {
            if key_names.contains(&n) || defined.contains(&n) || n == "*" {
                continue;
            }
            let only_left = matches!(kind, JoinKind::LeftSemi | JoinKind::LeftAnti);
            let only_right = matches!(kind, JoinKind::RightSemi | JoinKind::RightAnti);
            let side = if only_left {
                Some(true)
            } else if only_right {
                Some(false)
            } else {
                self.side_of(&n, left, &lscope, right, &rscope)
            };
            let (scope, row, agg) = match side {
                Some(true) => (
                    &lscope,
                    &lrow,
                    left.agg.is_some() || !left.distinct_keys.is_empty(),
                ),
                Some(false) => (
                    &rscope,
                    &rrow,
                    right.agg.is_some() || !right.distinct_keys.is_empty(),
                ),
                None => continue,
            };
            if agg {
                continue; // a summarized side only has its keys and aggregates
            }
            self.scope = scope.clone();
            match self.field(&FieldPath::column(n.clone())) {
                Ok(e) => {
                    out.items.push(format!(
                        "{} = VALUES({}) WHERE {}",
                        lit::ident(&n),
                        e.text,
                        row.text
                    ));
                    value_cols.push(n.clone());
                    out.cols.push((n.clone(), computed(&n, e.ty)));
                }
                Err(why) => {
                    let code = why.code();
                    self.warn(
                        code,
                        Some(at),
                        format!("the column `{n}` is left out: {}", why.message()),
                    );
                }
            }
        }

        if !out.pre.is_empty() {
            self.push(format!("EVAL {}", out.pre.join(", ")));
        }
        let key_list: Vec<&str> = by
            .iter()
            .map(|b| b.split(" = ").next().unwrap_or(b))
            .collect();
        let many = |s: &Side| s.agg.is_none() && s.distinct_keys.is_empty();
        if !value_cols.is_empty() || many(left) || many(right) {
            let lists = if value_cols.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} hold the values of the matching rows",
                    value_cols.join(", ")
                )
            };
            self.comment(&format!(
                "one row per {} that both sides have, where KQL gives one row per matching pair{lists}",
                key_list.join(", ")
            ));
        }
        let mut line = format!("STATS {}", out.items.join(", "));
        line.push_str(" BY ");
        line.push_str(&by.join(", "));
        self.push(line);
        if !out.post.is_empty() {
            self.push(format!("EVAL {}", out.post.join(", ")));
        }
        let exists = match kind {
            JoinKind::Inner | JoinKind::InnerUnique | JoinKind::LeftSemi | JoinKind::RightSemi => {
                format!("{lcount} > 0 AND {rcount} > 0")
            }
            JoinKind::LeftOuter => format!("{lcount} > 0"),
            JoinKind::RightOuter => format!("{rcount} > 0"),
            JoinKind::FullOuter => String::new(),
            JoinKind::LeftAnti => format!("{lcount} > 0 AND {rcount} == 0"),
            JoinKind::RightAnti => format!("{rcount} > 0 AND {lcount} == 0"),
        };
        if !exists.is_empty() {
            self.push(format!("WHERE {exists}"));
        }
        let mut scope = Scope::default();
        for (n, c) in key_cols.into_iter().chain(out.cols) {
            scope.set(&n, c);
        }
        self.scope = scope;
        for (h, post, renames) in after {
            // The side's own names for its columns, while its steps run.
            let saved = self.scope.clone();
            for (kql, new) in &renames {
                if let Some(c) = saved.get(new).cloned() {
                    self.scope.set(kql, c);
                }
            }
            if let Some(h) = h {
                self.having(h, at);
            }
            for stage in post {
                self.here = Some(stage.span());
                match stage {
                    Stage::Filter { predicate, .. } => {
                        let p = self.pred(predicate, false);
                        if let P::E(e) = p {
                            self.push(format!("WHERE {}", e.text));
                        }
                    }
                    Stage::Compute { columns, .. } => {
                        let mut items = vec![];
                        for a in columns {
                            let e = self.value_or_null(&a.value, &format!("`{}`", a.name));
                            items.push(format!("{} = {}", lit::ident(&a.name), e.text));
                            self.scope.set(&a.name, computed(&a.name, e.ty));
                        }
                        if !items.is_empty() {
                            self.push(format!("EVAL {}", items.join(", ")));
                        }
                    }
                    _ => {}
                }
            }
            let added: Vec<(String, Col)> = self
                .scope
                .cols
                .iter()
                .filter(|(n, _)| saved.get(n).is_none())
                .cloned()
                .collect();
            self.scope = saved;
            for (n, c) in added {
                if !renames.iter().any(|(k, _)| *k == n) {
                    self.scope.set(&n, c);
                }
            }
        }

        // Later steps that compute on these lists no longer see one value per row.
        self.list_cols = value_cols.into_iter().collect();
        Ok(())
    }

    /// Which side has a column: `Some(true)` left, `Some(false)` right.
    fn side_of(
        &self,
        name: &str,
        left: &Side,
        lscope: &Scope,
        right: &Side,
        rscope: &Scope,
    ) -> Option<bool> {
        let knows = |scope: &Scope, side: &Side| -> bool {
            if scope.get(name).is_some() {
                return true;
            }
            scope.open
                && side.tables.iter().any(|(t, _)| {
                    !matches!(
                        self.source_field(t, &FieldPath::column(name.to_string()), false),
                        Field::Unmapped { .. }
                    )
                })
        };
        // Columns every Log Analytics table has: KQL keeps the left side's.
        let common = matches!(
            name,
            "TimeGenerated"
                | "Type"
                | "TenantId"
                | "SourceSystem"
                | "_ResourceId"
                | "_SubscriptionId"
        );
        if knows(lscope, left) || (common && lscope.open && left.agg.is_none()) {
            return Some(true);
        }
        if knows(rscope, right) {
            return Some(false);
        }
        // KQL names the right side's copy of a left column `Name1`.
        if let Some(base) = name.strip_suffix('1')
            && rscope.get(base).is_some()
        {
            return Some(false);
        }
        if lscope.open && left.agg.is_none() {
            return Some(true);
        }
        if rscope.open && right.agg.is_none() {
            return Some(false);
        }
        None
    }

    /// A side's filters and computed columns: its scope and its row condition.
    fn side_rows(
        &mut self,
        s: &Side,
        several: bool,
        taken: &mut BTreeSet<String>,
    ) -> Result<(Scope, P), String> {
        self.scope = Scope::of_tables(s.tables.iter().map(|(t, _)| t.clone()).collect());
        let mut conds = vec![self.tables_condition(&s.tables, several)];
        for (i, stage) in s.stages.iter().enumerate() {
            self.here = Some(stage.span());
            match stage {
                // Row-wise steps that add columns: harmless on the other side's rows.
                Stage::Parse { .. } | Stage::Expand { .. } => self.stage(stage, &s.stages[i + 1..]),
                Stage::Filter { predicate, .. } => conds.push(self.pred(predicate, false)),
                Stage::Compute { columns, .. } => self.side_assign(columns, taken),
                Stage::Project { columns, .. } => {
                    self.side_assign(
                        &columns
                            .iter()
                            .filter(|a| !matches!(&a.value, Scalar::Field { path } if path.path.is_empty() && path.column == a.name))
                            .cloned()
                            .collect::<Vec<_>>(),
                        taken,
                    );
                    // Only the listed columns remain.
                    let mut scope = Scope {
                        tables: self.scope.tables.clone(),
                        cols: vec![],
                        open: false,
                        lookup: false,
                    };
                    for a in columns {
                        if let Some(c) = self.scope.get(&a.name).cloned() {
                            scope.set(&a.name, c);
                        } else if let Ok(e) = self.field(&FieldPath::column(a.name.clone())) {
                            let col = match self.scope.tables.first() {
                                Some(t) if e.is_column() => Col {
                                    esql: unquote(&e.text),
                                    ty: e.ty,
                                    origin: Origin::Source {
                                        table: Some(t.clone()),
                                        path: FieldPath::column(a.name.clone()),
                                        first_element: false,
                                    },
                                    object: false,
                                },
                                _ => {
                                    let n = self.side_fresh(&a.name, taken);
                                    self.push(format!("EVAL {} = {}", lit::ident(&n), e.text));
                                    computed(&n, e.ty)
                                }
                            };
                            scope.set(&a.name, col);
                        } else {
                            self.warn(
                                Code::NotTranslated,
                                self.here,
                                format!(
                                    "the column `{}` cannot be read in Elastic and is left out",
                                    a.name
                                ),
                            );
                        }
                    }
                    self.scope = scope;
                }
                Stage::Rename { renames, .. } => {
                    for r in renames {
                        if let Some(c) = self.scope.get(&r.old).cloned() {
                            self.scope.set(&r.new, c);
                        } else if let Ok(e) = self.field(&FieldPath::column(r.old.clone()))
                            && e.is_column()
                        {
                            let c = computed(&unquote(&e.text), e.ty);
                            self.scope.set(&r.new, c);
                        }
                    }
                }
                Stage::Drop { columns, .. } => {
                    for c in columns {
                        if !c.contains('*') {
                            self.scope.cols.retain(|(n, _)| n != c);
                        }
                    }
                }
                _ => {}
            }
        }
        for k in &s.distinct_keys {
            if self.scope.get(&k.name).is_none()
                && !matches!(&k.value, Scalar::Field { path } if path.column == k.name)
            {
                return Err(format!("the distinct key `{}` is computed", k.name));
            }
        }
        Ok((self.scope.clone(), expr::and(conds)))
    }

    /// A side's `extend`: a new column under a name no other column of the combined
    /// rows has (KQL's `Name1` for a right-side duplicate).
    fn side_assign(&mut self, columns: &[Assign], taken: &mut BTreeSet<String>) {
        let mut items = vec![];
        for a in columns {
            let e = self.value_or_null(&a.value, &format!("`{}`", a.name));
            let n = self.side_fresh(&a.name, taken);
            items.push(format!("{} = {}", lit::ident(&n), e.text));
            self.scope.set(&a.name, computed(&n, e.ty));
        }
        if !items.is_empty() {
            self.push(format!("EVAL {}", items.join(", ")));
        }
    }

    fn side_fresh(&mut self, name: &str, taken: &mut BTreeSet<String>) -> String {
        let mut n = name.to_string();
        let mut i = 0;
        while taken.contains(&n) || n == "left_row" || n == "right_row" {
            i += 1;
            n = format!("{name}{i}");
        }
        taken.insert(n.clone());
        n
    }

    /// A join stage that was not written as a correlation: a `LOOKUP JOIN` when the
    /// right side is a watchlist, otherwise the left side alone, said.
    pub fn join(
        &mut self,
        kind: JoinKind,
        right: &Pipeline,
        keys: &[JoinKeyPair],
        span: Span,
        rest: &[Stage],
    ) {
        if let Some(lookup) = lookup_of(&right.source) {
            self.lookup_join(&lookup, kind, right, keys, span);
            return;
        }
        let reason = self.correlation_failure.take().unwrap_or_else(|| {
            "it is not the query's first join of two event streams, and only one can be written as a correlation".to_string()
        });
        // Columns the right side makes that later steps read.
        let right_cols = made_columns(right);
        let later = self.inputs_of(rest);
        let missing: Vec<String> = later
            .into_iter()
            .filter(|n| {
                self.scope.get(n).is_none()
                    && !keys.iter().any(|k| &k.left == n)
                    && (right_cols.contains(n) || !self.scope.open)
            })
            .collect();
        let message = format!(
            "ES|QL cannot join two event streams and this join cannot be written as a correlation ({reason}): the join is left out, so the rule matches more events"
        );
        if missing.is_empty() {
            self.warn(Code::NotTranslated, Some(span), message);
        } else {
            self.error(
                Code::Untranslatable,
                Some(span),
                format!(
                    "{message}; the columns {} come from the right side and do not exist here",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            for m in missing {
                self.scope.set(&m, computed(&m, Ty::Any));
            }
        }
    }

    /// `join (_GetWatchlist('w') | ...) on key` as `LOOKUP JOIN`.
    fn lookup_join(
        &mut self,
        lookup: &Lookup,
        kind: JoinKind,
        right: &Pipeline,
        keys: &[JoinKeyPair],
        span: Span,
    ) {
        let [key] = keys else {
            return self.warn(
                Code::NotTranslated,
                Some(span),
                "a join with a watchlist on several keys is left out".into(),
            );
        };
        let Some((lookup_key, filter, projected)) = self.watchlist_query(right, &key.right) else {
            return self.warn(
                Code::NotTranslated,
                Some(span),
                format!(
                    "the join with {} computes its key; it is left out",
                    lookup.what
                ),
            );
        };
        let left = match self.field(&FieldPath::column(key.left.clone())) {
            Ok(e) => e,
            Err(why) => {
                return self.warn(
                    Code::NotTranslated,
                    Some(span),
                    format!(
                        "the join with {} is left out: {}",
                        lookup.what,
                        why.message()
                    ),
                );
            }
        };
        let marker = self.lookup_join_command(lookup, &lookup_key, &left, false, span);
        let matched = lookup_match(&marker, filter.clone());
        match kind {
            JoinKind::Inner | JoinKind::InnerUnique | JoinKind::LeftSemi => {
                self.push(format!("WHERE {}", matched.expr().text));
            }
            JoinKind::LeftAnti => {
                let e = matched.expr();
                self.push(format!("WHERE {}", expr::not(&e).text));
            }
            JoinKind::LeftOuter if filter == P::Const(true) => {}
            _ => self.warn(
                Code::NotTranslated,
                Some(span),
                format!("a `{kind:?}` join with a watchlist has no LOOKUP JOIN form: the watchlist rows are joined without its filter"),
            ),
        }
        for p in projected {
            if self.scope.get(&p).is_none() {
                self.scope.set(
                    &p,
                    Col {
                        esql: p.clone(),
                        ty: Ty::Str,
                        origin: Origin::Lookup,
                        object: false,
                    },
                );
            }
        }
    }

    /// The lookup column a watchlist query yields, its row filter (over lookup
    /// columns), and the columns it projects.
    fn watchlist_query(&mut self, q: &Pipeline, column: &str) -> Option<(String, P, Vec<String>)> {
        let saved = std::mem::replace(
            &mut self.scope,
            Scope {
                lookup: true,
                ..Scope::default()
            },
        );
        let mut conds = vec![];
        let mut key = column.to_string();
        // `x in (externaldata(a, b) [...])`: KQL tests the first column.
        if key.is_empty()
            && let Source::External { columns, .. } = &q.source
            && let Some(first) = columns.first()
            && q.stages.iter().all(|s| {
                !matches!(
                    s,
                    Stage::Project { .. } | Stage::Distinct { .. } | Stage::Compute { .. }
                )
            })
        {
            key = first.name.clone();
        }
        let mut projected = vec![];
        let mut ok = !key.is_empty();
        for s in &q.stages {
            match s {
                Stage::Filter { predicate, .. } => {
                    let p = self.pred(predicate, false);
                    conds.push(p);
                }
                Stage::Project { columns, .. } | Stage::Distinct { columns, .. } => {
                    projected = columns.iter().map(|a| a.name.clone()).collect();
                    if let Some(a) = columns.iter().find(|a| a.name == column) {
                        match lookup_column(&a.value) {
                            Some(k) => key = k,
                            None => ok = false,
                        }
                    }
                }
                Stage::Compute { columns, .. } => {
                    if columns.iter().any(|a| a.name == column) {
                        match columns
                            .iter()
                            .find(|a| a.name == column)
                            .and_then(|a| lookup_column(&a.value))
                        {
                            Some(k) => key = k,
                            None => ok = false,
                        }
                    }
                }
                Stage::Reorder { .. } | Stage::Sort { .. } => {}
                _ => ok = false,
            }
        }
        self.scope = saved;
        (ok && !key.is_empty()).then(|| (key, expr::and(conds), projected))
    }

    /// The Elastic names of the fields the query reads (which a lookup key must not
    /// overwrite).
    fn read_fields(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        pipeline_reads(&self.cx.detection.query, &mut names);
        let mut out = BTreeSet::new();
        for n in names {
            let path = FieldPath::column(n.clone());
            for t in &self.scope.tables {
                match self.source_field(t, &path, false) {
                    Field::Mapped { name, .. } | Field::Unmapped { name, .. } => {
                        out.insert(name);
                    }
                    Field::NoEquivalent => {}
                }
            }
        }
        out
    }

    /// Writes `LOOKUP JOIN index ON key` for a watchlist; returns the lookup column that
    /// is non-null on matched rows.
    fn lookup_join_command(
        &mut self,
        lookup: &Lookup,
        key: &str,
        left: &E,
        lower: bool,
        span: Span,
    ) -> String {
        let index = &lookup.index;
        let what = &lookup.what;
        let mut left = to_text(left.clone());
        if lower {
            left = super::pred::lower(&left);
        }
        let lowered = if lower {
            format!(" (in lower case: the test ignores case, so `{key}` is compared in lower case)")
        } else {
            String::new()
        };
        // A column every row has, null when no row matched: every watchlist row has
        // `SearchKey` (and `_DTItemId`); rows loaded from a URL get `source_url`.
        let marker = if !lookup.watchlist {
            "source_url"
        } else if key == "SearchKey" {
            "_DTItemId"
        } else {
            "SearchKey"
        };
        self.warn(
            Code::SourceNote,
            Some(span),
            format!(
                "{what} are read with LOOKUP JOIN from the lookup index `{index}`: create it (index.mode: lookup) with those rows, with the columns `{key}`{lowered} and `{marker}` (set on every row); LOOKUP JOIN adds one row per matching entry, so `{key}` must be unique in it"
            ),
        );
        if unquote(&left.text) != key {
            self.push(format!("EVAL {} = {}", lit::ident(key), left.text));
        }
        let entry = format!(
            "{index} ({what}: columns {key}{}, {marker})",
            if lower { " in lower case" } else { "" }
        );
        if !self.lookup_indices.contains(&entry) {
            self.lookup_indices.push(entry);
        }
        self.push(format!(
            "LOOKUP JOIN {} ON {}",
            lit::index(index),
            lit::ident(key)
        ));
        marker.to_string()
    }

    /// Before a `WHERE` with `x in (watchlist ...)`: the `LOOKUP JOIN`s it needs, and
    /// the flag each test becomes.
    pub fn lookup_tests_for(&mut self, p: &Predicate) {
        match p {
            Predicate::And { all } => all.iter().for_each(|q| self.lookup_tests_for(q)),
            Predicate::Or { any } => any.iter().for_each(|q| self.lookup_tests_for(q)),
            Predicate::InQuery {
                value,
                query,
                column,
                test: ListTest::Equals,
                case_sensitive,
                at,
                ..
            } => {
                let Some(lookup) = lookup_of(&query.source) else {
                    return;
                };
                let Some((key, filter, _)) = self.watchlist_query(query, column) else {
                    return;
                };
                let Ok(left) = self.scalar(value) else { return };
                let same = unquote(&to_text(left.clone()).text) == key;
                let read = self.read_fields();
                let clash = self
                    .scope
                    .cols
                    .iter()
                    .find(|(_, c)| c.esql == key)
                    .map(|(n, _)| n.clone())
                    .or_else(|| read.contains(&key).then(|| key.clone()));
                if let Some(k) = &clash
                    && !same
                {
                    self.warn(
                        Code::NotTranslated,
                        Some(*at),
                        format!("the lookup key `{key}` would overwrite the column `{k}`; this test is left out"),
                    );
                    return;
                }
                // One lookup index is loaded one way: in lower case for `in~` (unless
                // that would overwrite the field the key is).
                let lower = !case_sensitive && clash.is_none() && !same;
                if !case_sensitive && !lower {
                    self.warn(
                        Code::CaseSemantics,
                        Some(*at),
                        format!("`in~` ignores case; LOOKUP JOIN on `{key}` matches it exactly"),
                    );
                }
                match self
                    .lookup_cases
                    .iter()
                    .find(|(i, _)| *i == lookup.index)
                    .map(|(_, l)| *l)
                {
                    Some(l) if l != lower => {
                        self.warn(
                            Code::NotTranslated,
                            Some(*at),
                            format!(
                                "the lookup index `{}` is also read by a test that {} case; this test is left out",
                                lookup.index,
                                if lower { "respects" } else { "ignores" }
                            ),
                        );
                        return;
                    }
                    Some(_) => {}
                    None => self.lookup_cases.push((lookup.index.clone(), lower)),
                }
                let marker = self.lookup_join_command(&lookup, &key, &left, lower, *at);
                let matched = lookup_match(&marker, filter);
                let test = match matched {
                    // The next LOOKUP JOIN would overwrite the marker: keep a flag.
                    P::E(e) if e.prec == expr::PRED && !self.several_lookups => e,
                    other => {
                        let mut flag = format!("in_{}", lookup.short.replace('-', "_"));
                        let taken = |tx: &Self, f: &str| {
                            tx.scope.get(f).is_some()
                                || tx.lookup_tests.iter().any(|(_, e)| unquote(&e.text) == f)
                        };
                        let base = flag.clone();
                        let mut i = 1;
                        while taken(self, &flag) {
                            flag = format!("{base}_{i}");
                            i += 1;
                        }
                        self.push(format!(
                            "EVAL {} = {}",
                            lit::ident(&flag),
                            other.expr().text
                        ));
                        self.scope.set(&flag, computed(&flag, Ty::Bool));
                        E::column(&flag, Ty::Bool)
                    }
                };
                self.lookup_tests
                    .push((p as *const Predicate as usize, test));
            }
            _ => {}
        }
    }

    /// `union`: tables (with their own filters) read together, or inputs that differ
    /// only in the table they read merged into one pipeline.
    pub fn union(&mut self, source: &Source) {
        let Source::Union {
            inputs,
            source_column,
            ..
        } = source
        else {
            return;
        };
        let mut flat = vec![];
        flatten_union(inputs, &mut flat);
        if source_column.is_none()
            && let Some(merged) = merge_all(&flat)
            && !merged.stages.is_empty()
        {
            self.pipeline(&merged);
            return;
        }
        // Every input a table with filters: one condition per table.
        let simple = flat.iter().all(|p| {
            matches!(p.source, Source::Table { .. })
                && p.stages.iter().all(|s| matches!(s, Stage::Filter { .. }))
        });
        if simple {
            let tables: Vec<(String, Option<Window>)> = flat
                .iter()
                .filter_map(|p| match &p.source {
                    Source::Table { name, window, .. } => Some((name.clone(), window.clone())),
                    _ => None,
                })
                .collect();
            let filtered = flat.iter().any(|p| !p.stages.is_empty());
            if !filtered {
                self.read_tables(&tables, None);
            } else {
                self.read_filtered_tables(&flat, &tables);
            }
            if let Some(c) = source_column {
                self.source_column(c, &tables);
            }
            return;
        }
        let Some((first, others)) = flat.split_first() else {
            return;
        };
        self.warn(
            Code::NotTranslated,
            None,
            format!(
                "this `union` combines {} different pipelines; ES|QL reads one stream, so only the first is written and the other {} left out (the rule matches fewer events)",
                flat.len(),
                if others.len() == 1 { "is" } else { "are" }
            ),
        );
        self.pipeline(first);
    }

    fn read_filtered_tables(&mut self, inputs: &[Pipeline], tables: &[(String, Option<Window>)]) {
        let mut indices = vec![];
        for (t, _) in tables {
            for i in self.table_index(t, None).split(',') {
                indices.push(i.trim().to_string());
            }
        }
        dedup(&mut indices);
        let several = indices.len() > 1;
        let list: Vec<String> = indices.iter().map(|i| lit::index(i)).collect();
        let metadata = if self.rule_form {
            " METADATA _id, _index, _version"
        } else {
            ""
        };
        self.push(format!("FROM {}{metadata}", list.join(", ")));
        // `x in (watchlist)` in a branch: its LOOKUP JOIN, before the conditions.
        let tests: Vec<&Predicate> = inputs
            .iter()
            .flat_map(|p| &p.stages)
            .filter_map(|s| match s {
                Stage::Filter { predicate, .. } => Some(predicate),
                _ => None,
            })
            .collect();
        let outer = self.several_lookups;
        self.several_lookups = tests
            .iter()
            .map(|q| super::query::lookup_test_count(q))
            .sum::<usize>()
            > 1;
        for (p, (t, _)) in inputs.iter().zip(tables) {
            self.scope = Scope::of_tables(vec![t.clone()]);
            for s in &p.stages {
                if let Stage::Filter { predicate, at } = s
                    && self.lookups_allowed
                {
                    self.here = Some(*at);
                    self.lookup_tests_for(predicate);
                }
            }
        }
        self.several_lookups = outer;
        let mut conds = vec![];
        for (p, (t, w)) in inputs.iter().zip(tables) {
            self.scope = Scope::of_tables(vec![t.clone()]);
            let mut parts = vec![self.table_filter(t, several || tables.len() > 1)];
            if let Some(w) = w {
                parts.push(self.window(t, w));
            }
            for s in &p.stages {
                if let Stage::Filter { predicate, at } = s {
                    self.here = Some(*at);
                    parts.push(self.pred(predicate, false));
                }
            }
            conds.push(expr::and(parts));
        }
        self.scope = Scope::of_tables(tables.iter().map(|(t, _)| t.clone()).collect());
        if let P::E(e) = expr::or(conds) {
            self.push(format!("WHERE {}", e.text));
        }
    }

    /// `union withsource=Column`: which table each row came from.
    fn source_column(&mut self, column: &str, tables: &[(String, Option<Window>)]) {
        let several = tables.len() > 1;
        let mut args = vec![];
        for (t, _) in tables {
            match self.table_filter(t, several) {
                P::E(e) => {
                    args.push(e);
                    args.push(E::string(t));
                }
                P::Const(_) => {
                    return self.warn(
                        Code::NotTranslated,
                        None,
                        format!("`withsource={column}`: the rows of {t} cannot be told apart; the column is left out"),
                    );
                }
            }
        }
        args.push(E::null());
        self.push(format!(
            "EVAL {} = {}",
            lit::ident(column),
            expr::call("CASE", &args, Ty::Str).text
        ));
        self.scope.set(column, computed(column, Ty::Str));
    }
}

/// The lookup column a watchlist query's value reads (`IPAddress`,
/// `tostring(IPAddress)`).
fn lookup_column(s: &Scalar) -> Option<String> {
    match s {
        Scalar::Field { path } if path.path.is_empty() => Some(path.column.clone()),
        Scalar::Call { function, args } if function == "tostring" && args.len() == 1 => {
            lookup_column(&args[0])
        }
        _ => None,
    }
}

/// A row matched the lookup (its marker column is set) and the watchlist filter holds.
fn lookup_match(marker: &str, filter: P) -> P {
    let found = P::E(expr::is_not_null(&E::column(marker, Ty::Str)));
    match filter {
        P::Const(true) => found,
        P::Const(false) => P::Const(false),
        // KQL conditions are never null: a missing lookup value reads as false.
        P::E(f) => expr::and(vec![
            found,
            P::E(expr::call("COALESCE", &[f, E::bool(false)], Ty::Bool)),
        ]),
    }
}

fn to_text(e: E) -> E {
    match e.ty {
        Ty::Str | Ty::Any | Ty::Null => e,
        _ => expr::call("TO_STRING", &[e], Ty::Str),
    }
}

fn flatten_union(inputs: &[Pipeline], out: &mut Vec<Pipeline>) {
    for p in inputs {
        match &p.source {
            Source::Union {
                inputs: inner,
                source_column: None,
                ..
            } if p.stages.is_empty() => flatten_union(inner, out),
            _ => out.push(p.clone()),
        }
    }
}

/// One pipeline equal to the union of several that differ only in the table they read
/// at one place (a `union` of a function called with two table names).
fn merge_all(inputs: &[Pipeline]) -> Option<Pipeline> {
    let (first, rest) = inputs.split_first()?;
    let mut merged = first.clone();
    for p in rest {
        merged = merge(&merged, p)?;
    }
    Some(merged)
}

fn merge(a: &Pipeline, b: &Pipeline) -> Option<Pipeline> {
    let mut differences = 0;
    let source = if a.source == b.source {
        a.source.clone()
    } else {
        differences += 1;
        union_of_tables(&a.source, &b.source)?
    };
    if a.stages.len() != b.stages.len() {
        return None;
    }
    let mut stages = vec![];
    for (sa, sb) in a.stages.iter().zip(&b.stages) {
        if differences > 0 && !same_rows_over_union(sa) {
            return None;
        }
        if sa == sb {
            stages.push(sa.clone());
            continue;
        }
        match (sa, sb) {
            (
                Stage::Join {
                    kind,
                    right: ra,
                    keys,
                    lookup,
                    at,
                },
                Stage::Join {
                    kind: kb,
                    right: rb,
                    keys: keys_b,
                    ..
                },
            ) if kind == kb
                && keys == keys_b
                && matches!(kind, JoinKind::Inner | JoinKind::InnerUnique)
                && differences == 0 =>
            {
                differences += 1;
                stages.push(Stage::Join {
                    kind: *kind,
                    right: merge(ra, rb)?,
                    keys: keys.clone(),
                    lookup: *lookup,
                    at: *at,
                });
            }
            _ => return None,
        }
    }
    Some(Pipeline { source, stages })
}

/// Steps that give the same rows applied to a union or to each input: the row-wise
/// ones, a sort (it orders the rows, it does not change them) and an inner join.
fn same_rows_over_union(s: &Stage) -> bool {
    s.is_row_wise()
        || matches!(
            s,
            Stage::Sort { .. }
                | Stage::Join {
                    kind: JoinKind::Inner,
                    ..
                }
        )
}

fn union_of_tables(a: &Source, b: &Source) -> Option<Source> {
    let mut inputs: Vec<Pipeline> = vec![];
    for s in [a, b] {
        match s {
            Source::Table { .. } => inputs.push(Pipeline {
                source: s.clone(),
                stages: vec![],
            }),
            Source::Union {
                inputs: inner,
                source_column: None,
                ..
            } if inner
                .iter()
                .all(|p| p.stages.is_empty() && matches!(p.source, Source::Table { .. })) =>
            {
                inputs.extend(inner.iter().cloned())
            }
            _ => return None,
        }
    }
    let mut unique: Vec<Pipeline> = vec![];
    for i in inputs {
        if !unique.contains(&i) {
            unique.push(i);
        }
    }
    Some(Source::Union {
        inputs: unique,
        fuzzy: true,
        source_column: None,
        inner: false,
    })
}

/// The columns a pipeline and the pipelines it joins read.
fn pipeline_reads(p: &Pipeline, out: &mut BTreeSet<String>) {
    if let Source::Union { inputs, .. } = &p.source {
        inputs.iter().for_each(|i| pipeline_reads(i, out));
    }
    for s in &p.stages {
        out.extend(super::query::stage_refs(s).0);
        if let Stage::Join { right, .. } = s {
            pipeline_reads(right, out);
        }
    }
}
