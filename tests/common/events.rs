//! Synthetic events for a detection, for the differential test (`tests/kql_differential.rs`).
//!
//! Walks the detection IR to find the tables it reads (tables, union inputs, join right
//! sides, sub-queries, watchlists) and, for every predicate leaf, the source field it tests
//! (following `extend`/`project`/`project-rename`/`summarize by`/`mv-expand` back to the
//! table's own columns and dynamic paths). Each leaf gives the field candidate values: one
//! that satisfies it, then near misses (a term inside a longer word, prefix or suffix off by
//! one, a case variant), an empty string and a missing property. Rows are a base row (every
//! field at its first candidate), one row per single-field variation, and seeded random
//! combinations (at most 200 a table). Expanded columns are arrays of 0, 1 and several
//! elements. Times sit inside the window, outside it and exactly on its boundary, and no
//! two rows share a time (so `sort by TimeGenerated` has no ties). Join keys and
//! `in (sub-query)` columns share their candidates so that matches exist across tables,
//! plus one value of each side's own so that misses exist too. Columns only read
//! (projected, grouped by) get two default values; arithmetic makes a column numeric.

use std::cell::Cell;
use std::collections::BTreeMap;

use kqlc::ir::{
    AggregateFunction, CompareOp, Detection, ListTest, PathStep, Pipeline, Predicate, Scalar,
    Source, Stage, TextTest, Value,
};
use serde_json::{Map, Value as Json, json};

/// The instant used as `now()` for every run (`kql-run --now`).
pub const NOW: &str = "2026-01-01T12:00:00Z";

/// Most rows generated for one table (before hand-written rows are added).
const MAX_ROWS: usize = 200;
/// Seeded random combinations added after the single-field variations.
const RANDOM_ROWS: usize = 40;
/// Values shared by join keys and `in (sub-query)` columns that have no candidates.
const KEY_POOL: &[&str] = &["key-1", "key-2", "KEY-1", "key-3"];
/// Columns that hold event time even when no predicate says so.
const TIME_COLUMNS: &[&str] = &["TimeGenerated", "Timestamp"];

/// One step into a JSON row: an object key, or "each element" of an array.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Key(String),
    Each,
}

type Path = Vec<Step>;

/// A source field: the tables it may come from and its path in their rows.
#[derive(Debug, Clone)]
struct Origin {
    tables: Vec<String>,
    path: Path,
}

/// The JSON type a field holds; the first typed use decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Num,
    Bool,
    Time,
}

/// A candidate value for a field.
#[derive(Debug, Clone, PartialEq)]
enum Cand {
    /// The property is absent from the row.
    Missing,
    Null,
    Json(Json),
    /// Any non-empty value of the field's kind (what `isnotempty` wants).
    Something,
    /// A time, milliseconds since the epoch; `exact` times are not shifted per row (they
    /// sit on a boundary on purpose).
    Time {
        ms: i64,
        exact: bool,
    },
}

#[derive(Debug, Default, Clone)]
struct Field {
    kind: Option<Kind>,
    cands: Vec<Cand>,
}

/// Names visible at a point of a pipeline.
#[derive(Debug, Clone, Default)]
struct Scope {
    /// Columns the query defined: the source field each carries (`None`: computed).
    names: BTreeMap<String, Option<Origin>>,
    /// Tables whose own columns are still visible by name.
    open: Vec<String>,
}

impl Scope {
    fn open(tables: Vec<String>) -> Scope {
        Scope {
            names: BTreeMap::new(),
            open: tables,
        }
    }

    fn lookup(&self, column: &str) -> Option<Origin> {
        if let Some(o) = self.names.get(column) {
            return o.clone();
        }
        (!self.open.is_empty()).then(|| Origin {
            tables: self.open.clone(),
            path: vec![Step::Key(column.to_string())],
        })
    }
}

/// Generated rows per table name.
pub type Tables = BTreeMap<String, Vec<Map<String, Json>>>;

/// Rows for every table the detection reads.
pub fn generate(detection: &Detection) -> Tables {
    let mut g = Collector::default();
    g.pipeline(&detection.query);
    g.unify_links();
    g.fields
        .iter()
        .map(|(table, fields)| (table.clone(), build_rows(table, fields)))
        .collect()
}

/// Walks the IR and gathers, per table, the fields and their candidates.
#[derive(Default)]
struct Collector {
    fields: BTreeMap<String, BTreeMap<Path, Field>>,
    /// Fields whose values should overlap (join keys, `in (sub-query)`).
    links: Vec<(Origin, Origin)>,
}

impl Collector {
    fn pipeline(&mut self, p: &Pipeline) -> Scope {
        let mut scope = self.source(&p.source);
        for stage in &p.stages {
            self.stage(&mut scope, stage);
        }
        scope
    }

    fn source(&mut self, s: &Source) -> Scope {
        match s {
            Source::Table { name, window, .. } => {
                self.fields.entry(name.clone()).or_default();
                if let Some(w) = window {
                    let origin = Origin {
                        tables: vec![name.clone()],
                        path: vec![Step::Key(w.column.clone())],
                    };
                    let op = if w.inclusive {
                        CompareOp::Ge
                    } else {
                        CompareOp::Gt
                    };
                    let at = now_ms() - w.seconds * 1000;
                    self.add(&origin, Some(Kind::Time), time_cands(op, at));
                }
                Scope::open(vec![name.clone()])
            }
            Source::Union { inputs, .. } => {
                let mut merged = Scope::default();
                for input in inputs {
                    let s = self.pipeline(input);
                    for (k, v) in s.names {
                        merged.names.entry(k).or_insert(v);
                    }
                    merged.open.extend(s.open);
                }
                merged
            }
            Source::Watchlist { .. } => {
                self.fields.entry("Watchlist".into()).or_default();
                Scope::open(vec!["Watchlist".into()])
            }
            Source::Inline { columns, .. } | Source::External { columns, .. } => Scope {
                names: columns.iter().map(|c| (c.name.clone(), None)).collect(),
                open: vec![],
            },
            Source::UnresolvedFunction { .. } | Source::Unsupported(_) => Scope::default(),
        }
    }

    fn stage(&mut self, scope: &mut Scope, stage: &Stage) {
        match stage {
            Stage::Filter { predicate, .. } => self.predicate(scope, predicate),
            Stage::Compute { columns, .. } => {
                for a in columns {
                    self.scalar(scope, &a.value);
                    let o = self.origin(scope, &a.value);
                    scope.names.insert(a.name.clone(), o);
                }
            }
            Stage::Project { columns, .. } => {
                let mut names = BTreeMap::new();
                for a in columns {
                    self.scalar(scope, &a.value);
                    names.insert(a.name.clone(), self.origin(scope, &a.value));
                }
                *scope = Scope {
                    names,
                    open: vec![],
                };
            }
            Stage::Drop { columns, .. } | Stage::Reorder { columns, .. } => {
                self.mention(scope, columns);
            }
            Stage::Keep { columns, .. } => {
                self.mention(scope, columns);
                let names = columns
                    .iter()
                    .filter(|c| !c.contains('*'))
                    .map(|c| (c.clone(), scope.lookup(c)))
                    .collect();
                *scope = Scope {
                    names,
                    open: vec![],
                };
            }
            Stage::Rename { renames, .. } => {
                for r in renames {
                    let o = scope.lookup(&r.old);
                    self.touch(o.as_ref());
                    scope.names.insert(r.old.clone(), None);
                    scope.names.insert(r.new.clone(), o);
                }
            }
            Stage::Aggregate {
                keys,
                aggregates,
                having,
                ..
            } => {
                let mut next = Scope::default();
                for a in aggregates {
                    a.args.iter().for_each(|s| self.scalar(scope, s));
                    if matches!(a.function, AggregateFunction::Sum | AggregateFunction::Avg) {
                        a.args.iter().for_each(|s| self.hint(scope, s, Kind::Num));
                    }
                    if let Some(c) = &a.condition {
                        self.predicate(scope, c);
                    }
                    // `arg_max(t, *)` keeps every column of the chosen row.
                    let star = a.args.iter().any(|s| matches!(s, Scalar::AllColumns));
                    if star
                        && matches!(
                            a.function,
                            AggregateFunction::ArgMax | AggregateFunction::ArgMin
                        )
                    {
                        next = scope.clone();
                    }
                }
                for a in aggregates {
                    next.names.insert(a.name.clone(), None);
                    for n in &a.names {
                        next.names.insert(n.clone(), None);
                    }
                }
                for k in keys {
                    self.scalar(scope, &k.value);
                    next.names
                        .insert(k.name.clone(), self.origin(scope, &k.value));
                }
                *scope = next;
                if let Some(h) = having {
                    self.predicate(scope, h);
                }
            }
            Stage::Join {
                kind, right, keys, ..
            } => {
                let right_scope = self.pipeline(right);
                for k in keys {
                    let l = scope.lookup(&k.left);
                    let r = right_scope.lookup(&k.right);
                    self.touch(l.as_ref());
                    self.touch(r.as_ref());
                    if let (Some(l), Some(r)) = (l, r) {
                        self.links.push((l, r));
                    }
                }
                *scope = join_scope(*kind, std::mem::take(scope), right_scope);
            }
            Stage::Expand { columns, .. } => {
                for c in columns {
                    self.scalar(scope, &c.value);
                    let o = self.origin(scope, &c.value).map(|mut o| {
                        o.path.push(Step::Each);
                        o
                    });
                    // The array must exist even when nothing tests its elements.
                    self.touch(o.as_ref());
                    scope.names.insert(c.name.clone(), o);
                }
            }
            Stage::Parse {
                source, pattern, ..
            } => {
                self.scalar(scope, source);
                if let Some(o) = self.origin(scope, source) {
                    self.add(&o, Some(Kind::Str), parse_cands(pattern));
                }
                for piece in pattern {
                    if let kqlc::ir::ParsePiece::Capture { name, .. } = piece {
                        scope.names.insert(name.clone(), None);
                    }
                }
            }
            Stage::Sort { keys, .. } => keys.iter().for_each(|k| self.scalar(scope, &k.value)),
            Stage::Top { key, .. } => self.scalar(scope, &key.value),
            Stage::Distinct { columns, .. } => {
                let mut names = BTreeMap::new();
                for a in columns {
                    self.scalar(scope, &a.value);
                    names.insert(a.name.clone(), self.origin(scope, &a.value));
                }
                if !columns.is_empty() {
                    *scope = Scope {
                        names,
                        open: vec![],
                    };
                }
            }
            Stage::Count { .. } => {
                *scope = Scope {
                    names: [("Count".to_string(), None)].into(),
                    open: vec![],
                }
            }
            Stage::Limit { .. } | Stage::UnresolvedInvoke { .. } | Stage::Unsupported(_) => {}
        }
    }

    /// Makes sure columns named by `project-away`/`project-reorder` exist.
    fn mention(&mut self, scope: &Scope, columns: &[String]) {
        for c in columns.iter().filter(|c| !c.contains('*')) {
            let o = scope.lookup(c);
            self.touch(o.as_ref());
        }
    }

    /// The source field a value carries, looking through conversions.
    fn origin(&self, scope: &Scope, s: &Scalar) -> Option<Origin> {
        match s {
            Scalar::Field { path } => {
                let mut o = scope.lookup(&path.column)?;
                for step in &path.path {
                    o.path.push(match step {
                        PathStep::Key(k) => Step::Key(k.clone()),
                        PathStep::Index(_) => Step::Each,
                    });
                }
                Some(o)
            }
            Scalar::Call { function, args } if args.len() == 1 && is_conversion(function) => {
                self.origin(scope, &args[0])
            }
            Scalar::Element { value, index } => {
                let mut o = self.origin(scope, value)?;
                o.path.push(match &**index {
                    Scalar::Literal {
                        value: Value::String(k),
                    } => Step::Key(k.clone()),
                    _ => Step::Each,
                });
                Some(o)
            }
            _ => None,
        }
    }

    /// Registers the fields a value reads and walks conditions and sub-queries inside it.
    fn scalar(&mut self, scope: &Scope, s: &Scalar) {
        match s {
            Scalar::Field { .. } => {
                let o = self.origin(scope, s);
                self.touch(o.as_ref());
            }
            Scalar::Literal { .. } | Scalar::AllColumns | Scalar::Now { .. } => {}
            Scalar::Arith { left, right, .. } => {
                self.scalar(scope, left);
                self.scalar(scope, right);
                // Operands of arithmetic are numbers, or times next to a time.
                let kind = if is_time_valued(left) || is_time_valued(right) {
                    Kind::Time
                } else {
                    Kind::Num
                };
                self.hint(scope, left, kind);
                self.hint(scope, right, kind);
            }
            Scalar::Negate { value } => {
                self.scalar(scope, value);
                self.hint(scope, value, Kind::Num);
            }
            Scalar::Condition { predicate } => self.predicate(scope, predicate),
            Scalar::Choose {
                branches,
                otherwise,
            } => {
                for (p, v) in branches {
                    self.predicate(scope, p);
                    self.scalar(scope, v);
                }
                self.scalar(scope, otherwise);
            }
            Scalar::Bin { value, size } => {
                self.scalar(scope, value);
                self.scalar(scope, size);
                let kind = if is_time_valued(size) {
                    Kind::Time
                } else {
                    Kind::Num
                };
                self.hint(scope, value, kind);
            }
            Scalar::Call { args, .. } => args.iter().for_each(|a| self.scalar(scope, a)),
            Scalar::Element { value, index } => {
                self.scalar(scope, value);
                self.scalar(scope, index);
            }
            Scalar::Subquery { query } => {
                self.pipeline(query);
            }
        }
    }

    fn predicate(&mut self, scope: &Scope, p: &Predicate) {
        match p {
            Predicate::And { all, .. } => all.iter().for_each(|q| self.predicate(scope, q)),
            Predicate::Or { any, .. } => any.iter().for_each(|q| self.predicate(scope, q)),
            Predicate::Constant { .. } => {}
            Predicate::InQuery {
                value,
                query,
                column,
                ..
            } => {
                self.scalar(scope, value);
                let sub = self.pipeline(query);
                let inner = sub.lookup(column);
                self.touch(inner.as_ref());
                if let (Some(outer), Some(inner)) = (self.origin(scope, value), inner) {
                    self.links.push((outer, inner));
                }
            }
            Predicate::Compare {
                left, op, right, ..
            } => {
                self.scalar(scope, left);
                self.scalar(scope, right);
                match (self.origin(scope, left), right) {
                    (Some(o), Scalar::Literal { value }) => {
                        let (kind, cands) = compare_cands(*op, value);
                        self.add(&o, kind, cands);
                    }
                    (Some(o), Scalar::Now { offset_seconds }) => {
                        let at = now_ms() + (offset_seconds * 1000.0) as i64;
                        self.add(&o, Some(Kind::Time), time_cands(*op, at));
                    }
                    (Some(l), _) => {
                        if let Some(r) = self.origin(scope, right) {
                            self.links.push((l, r));
                        }
                    }
                    _ => {}
                }
            }
            // Both cases of each pattern are generated, so case sensitivity needs nothing.
            Predicate::Text {
                value,
                test,
                pattern,
                negated,
                ..
            } => {
                self.scalar(scope, value);
                self.scalar(scope, pattern);
                if let (
                    Some(o),
                    Scalar::Literal {
                        value: Value::String(pat),
                    },
                ) = (self.origin(scope, value), pattern)
                {
                    let cands = text_cands(*test, pat, *negated);
                    self.add(&o, Some(Kind::Str), cands);
                }
            }
            Predicate::Regex {
                value,
                pattern,
                negated,
                ..
            } => {
                self.scalar(scope, value);
                if let Some(o) = self.origin(scope, value) {
                    self.add(&o, Some(Kind::Str), regex_cands(pattern, *negated));
                }
            }
            Predicate::InList {
                value,
                list,
                test,
                negated,
                ..
            } => {
                self.scalar(scope, value);
                if let Some(o) = self.origin(scope, value) {
                    let (kind, cands) = list_cands(*test, list, *negated);
                    self.add(&o, kind, cands);
                }
            }
            Predicate::Range {
                value,
                low,
                high,
                negated,
                ..
            } => {
                self.scalar(scope, value);
                self.scalar(scope, low);
                self.scalar(scope, high);
                if let Some(o) = self.origin(scope, value)
                    && let Some((kind, cands)) = range_cands(low, high, *negated)
                {
                    self.add(&o, Some(kind), cands);
                }
            }
            Predicate::Empty {
                value,
                null_only,
                negated,
                ..
            } => {
                self.scalar(scope, value);
                if let Some(o) = self.origin(scope, value) {
                    self.add(&o, None, empty_cands(*null_only, *negated));
                }
            }
            Predicate::Expr { value, negated, .. } => {
                self.scalar(scope, value);
                if let (Some(o), Scalar::Field { .. }) = (self.origin(scope, value), value) {
                    let b = !*negated;
                    let cands = vec![Cand::Json(json!(b)), Cand::Json(json!(!b)), Cand::Missing];
                    self.add(&o, Some(Kind::Bool), cands);
                }
            }
            Predicate::Cidr { value, .. } | Predicate::PrivateIp { value, .. } => {
                self.scalar(scope, value);
            }
        }
    }

    /// Says what kind a plain field read by a value holds (if nothing said so before).
    fn hint(&mut self, scope: &Scope, s: &Scalar, kind: Kind) {
        if let Scalar::Field { .. } = s
            && let Some(o) = self.origin(scope, s)
        {
            self.add(&o, Some(kind), vec![]);
        }
    }

    /// Makes sure a field exists (it gets default values if nothing tests it).
    fn touch(&mut self, o: Option<&Origin>) {
        if let Some(o) = o {
            self.add(o, None, vec![]);
        }
    }

    fn add(&mut self, o: &Origin, kind: Option<Kind>, cands: Vec<Cand>) {
        for table in &o.tables {
            let f = self
                .fields
                .entry(table.clone())
                .or_default()
                .entry(o.path.clone())
                .or_default();
            if let [Step::Key(c)] = o.path.as_slice()
                && TIME_COLUMNS.contains(&c.as_str())
            {
                f.kind = Some(Kind::Time);
            }
            if f.kind.is_none() {
                f.kind = kind;
            }
            for c in &cands {
                if !f.cands.contains(c) {
                    f.cands.push(c.clone());
                }
            }
        }
    }

    /// Linked fields share their candidates (the pool when neither has any), then each
    /// side gets one value of its own, so that some rows find no match (anti joins, `!in`,
    /// misses of `in`).
    fn unify_links(&mut self) {
        for _ in 0..2 {
            for (a, b) in self.links.clone() {
                let mut all = self.cands_of(&a);
                all.extend(self.cands_of(&b));
                if all.is_empty() {
                    all = KEY_POOL.iter().map(|k| Cand::Json(json!(k))).collect();
                }
                let kind = self.kind_of(&a).or(self.kind_of(&b));
                self.add(&a, kind, all.clone());
                self.add(&b, kind, all);
            }
        }
        for (i, (a, b)) in self.links.clone().into_iter().enumerate() {
            for (side, o) in [("left", &a), ("right", &b)] {
                let own = match self.kind_of(o) {
                    Some(Kind::Num) => json!(900_000 + 2 * i + usize::from(side == "right")),
                    None | Some(Kind::Str) => json!(format!("only-{side}-{i}")),
                    _ => continue,
                };
                self.add(o, None, vec![Cand::Json(own)]);
            }
        }
    }

    fn cands_of(&self, o: &Origin) -> Vec<Cand> {
        o.tables
            .iter()
            .filter_map(|t| self.fields.get(t)?.get(&o.path))
            .flat_map(|f| f.cands.clone())
            .collect()
    }

    fn kind_of(&self, o: &Origin) -> Option<Kind> {
        o.tables
            .iter()
            .filter_map(|t| self.fields.get(t)?.get(&o.path))
            .find_map(|f| f.kind)
    }
}

/// Names visible after a join.
fn join_scope(kind: kqlc::ir::JoinKind, left: Scope, right: Scope) -> Scope {
    use kqlc::ir::JoinKind as K;
    match kind {
        K::LeftSemi | K::LeftAnti => left,
        K::RightSemi | K::RightAnti => right,
        _ => {
            let mut out = left;
            for (k, v) in right.names {
                out.names.entry(k).or_insert(v);
            }
            // Unknown names after the join are looked for on the left first.
            if out.open.is_empty() {
                out.open = right.open;
            }
            out
        }
    }
}

/// Whether a value is a time or a duration (so the other operand is a time).
fn is_time_valued(s: &Scalar) -> bool {
    matches!(
        s,
        Scalar::Now { .. }
            | Scalar::Literal {
                value: Value::TimeSpan(_) | Value::DateTime(_)
            }
    )
}

/// Functions that keep the value they convert (for finding which field a test reads).
fn is_conversion(f: &str) -> bool {
    matches!(
        f,
        "tostring"
            | "tolower"
            | "toupper"
            | "trim"
            | "parse_json"
            | "todynamic"
            | "tolong"
            | "toint"
            | "toreal"
            | "todouble"
            | "tobool"
            | "todatetime"
    )
}

fn now_ms() -> i64 {
    parse_time(NOW).expect("NOW parses")
}

const MINUTE_MS: i64 = 60_000;

/// Times around `at` for `field op at`: a satisfying one first, the boundary itself, and
/// one on the other side.
fn time_cands(op: CompareOp, at: i64) -> Vec<Cand> {
    let t = |ms, exact| Cand::Time { ms, exact };
    let (after, on, before) = (
        t(at + 10 * MINUTE_MS, false),
        t(at, true),
        t(at - 10 * MINUTE_MS, false),
    );
    match op {
        CompareOp::Gt | CompareOp::Ge => vec![after, on, before],
        CompareOp::Lt | CompareOp::Le => vec![before, on, after],
        CompareOp::Eq => vec![on, after],
        CompareOp::Ne => vec![after, on],
    }
}

/// Candidates for `field op literal`.
fn compare_cands(op: CompareOp, value: &Value) -> (Option<Kind>, Vec<Cand>) {
    let j = |v: Json| Cand::Json(v);
    match value {
        Value::String(s) => {
            let near = vec![
                j(json!(s)),
                j(json!(flip_case(s))),
                j(json!(format!("{s}x"))),
                j(json!(format!("x{s}"))),
                j(json!(chop_last(s))),
                j(json!("")),
                Cand::Missing,
            ];
            let cands = match op {
                CompareOp::Ne => std::iter::once(j(json!(format!("{s}-other"))))
                    .chain(near)
                    .collect(),
                _ => near,
            };
            (Some(Kind::Str), cands)
        }
        Value::Long(n) => {
            let n = *n;
            let order = match op {
                CompareOp::Eq => [n, n + 1, n - 1],
                CompareOp::Ne => [n + 1, n, n - 1],
                CompareOp::Gt => [n + 1, n, n - 1],
                CompareOp::Ge => [n, n - 1, n + 1],
                CompareOp::Lt => [n - 1, n, n + 1],
                CompareOp::Le => [n, n + 1, n - 1],
            };
            let mut cands: Vec<Cand> = order.iter().map(|v| j(json!(v))).collect();
            cands.push(Cand::Missing);
            (Some(Kind::Num), cands)
        }
        Value::Real(r) => {
            let r = *r;
            let order = match op {
                CompareOp::Eq | CompareOp::Ge | CompareOp::Le => [r, r + 0.5, r - 0.5],
                CompareOp::Ne | CompareOp::Gt => [r + 0.5, r, r - 0.5],
                CompareOp::Lt => [r - 0.5, r, r + 0.5],
            };
            let mut cands: Vec<Cand> = order.iter().map(|v| j(json!(v))).collect();
            cands.push(Cand::Missing);
            (Some(Kind::Num), cands)
        }
        Value::Bool(b) => {
            let first = if op == CompareOp::Ne { !*b } else { *b };
            (
                Some(Kind::Bool),
                vec![j(json!(first)), j(json!(!first)), Cand::Missing],
            )
        }
        Value::DateTime(text) => match parse_time(text) {
            Some(at) => (Some(Kind::Time), time_cands(op, at)),
            None => (None, vec![]),
        },
        _ => (None, vec![]),
    }
}

/// Candidates for a string test: a satisfying value first (for a negated test, one that
/// contains nothing like the pattern), then matches in the other case, near misses, an
/// empty string and a missing property.
fn text_cands(test: TextTest, p: &str, negated: bool) -> Vec<Cand> {
    let hit = |p: &str| match test {
        TextTest::Term => format!("pre {p} post"),
        TextTest::TermPrefix => format!("pre {p}fix post"),
        TextTest::TermSuffix => format!("pre pre{p} post"),
        TextTest::Substring => format!("ab{p}cd"),
        TextTest::Prefix => format!("{p}rest"),
        TextTest::Suffix => format!("start{p}"),
        TextTest::Like => p.replace('%', "xx").replace('_', "y"),
    };
    let mut near = vec![hit(p), hit(&flip_case(p))];
    near.extend(match test {
        // "DirSyncServer" has "sync" inside a word: not the term.
        TextTest::Term => vec![format!("x{p}y"), p.to_string(), chop_last(p)],
        TextTest::TermPrefix => vec![format!("x{p}"), chop_last(p)],
        TextTest::TermSuffix => vec![format!("{p}x"), chop_first(p)],
        TextTest::Substring => vec![chop_last(p), chop_first(p)],
        TextTest::Prefix => vec![format!("x{p}"), chop_last(p)],
        TextTest::Suffix => vec![format!("{p}x"), chop_first(p)],
        TextTest::Like => vec![format!("x{}", hit(p))],
    });
    near.push(String::new());
    let mut cands: Vec<Cand> = near.into_iter().map(|s| Cand::Json(json!(s))).collect();
    cands.push(Cand::Missing);
    if negated {
        cands.insert(0, Cand::Json(json!("zz-neutral")));
    }
    cands
}

/// A string the regex likely matches (simple patterns only), and misses.
fn regex_cands(pattern: &str, negated: bool) -> Vec<Cand> {
    let example = regex_example(pattern);
    let mut cands: Vec<Cand> = [
        example.clone(),
        flip_case(&example),
        chop_last(&example),
        String::new(),
    ]
    .into_iter()
    .map(|s| Cand::Json(json!(s)))
    .collect();
    cands.push(Cand::Missing);
    if negated {
        cands.insert(0, Cand::Json(json!("zz-neutral")));
    }
    cands
}

/// Best-effort example of a simple regex: first alternative, classes and escapes replaced
/// by one character, quantifiers and anchors dropped.
pub fn regex_example(pattern: &str) -> String {
    let pattern = pattern.trim_start_matches("(?i)");
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    let mut depth = 0;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('d') => out.push('1'),
                Some('w') => out.push('a'),
                Some('s') => out.push(' '),
                Some(other) => out.push(other),
                None => {}
            },
            '[' => {
                let mut first = None;
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    if first.is_none() && d != '^' {
                        first = Some(d);
                    }
                }
                out.push(first.unwrap_or('a'));
            }
            '{' => {
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                }
            }
            '(' => {
                depth += 1;
                if chars.peek() == Some(&'?') {
                    chars.next();
                    chars.next();
                }
            }
            ')' => depth -= 1,
            '|' if depth == 0 => break,
            '|' => {
                // Skip the other alternatives of this group.
                let mut level = 0;
                for d in chars.by_ref() {
                    match d {
                        '(' => level += 1,
                        ')' if level == 0 => {
                            depth -= 1;
                            break;
                        }
                        ')' => level -= 1,
                        _ => {}
                    }
                }
            }
            '^' | '$' | '*' | '+' | '?' => {}
            '.' => out.push('a'),
            other => out.push(other),
        }
    }
    out
}

fn list_cands(test: ListTest, list: &[Value], negated: bool) -> (Option<Kind>, Vec<Cand>) {
    let strings: Vec<&str> = list
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let numbers: Vec<f64> = list
        .iter()
        .filter_map(|v| match v {
            Value::Long(n) => Some(*n as f64),
            Value::Real(r) => Some(*r),
            _ => None,
        })
        .collect();
    let mut kind = Some(Kind::Str);
    let mut values: Vec<Json> = match test {
        _ if strings.is_empty() && !numbers.is_empty() => {
            kind = Some(Kind::Num);
            let mut v: Vec<Json> = numbers.iter().map(|n| number(*n)).collect();
            v.push(number(numbers[0] + 1.0));
            v
        }
        ListTest::Equals => {
            let mut v: Vec<Json> = strings.iter().map(|s| json!(s)).collect();
            if let Some(s) = strings.first() {
                v.push(json!(flip_case(s)));
                v.push(json!(format!("{s}x")));
                v.push(json!(chop_last(s)));
            }
            v
        }
        ListTest::AnyTerm => {
            let mut v: Vec<Json> = strings
                .iter()
                .map(|t| json!(format!("pre {t} post")))
                .collect();
            if let Some(t) = strings.first() {
                v.push(json!(format!("pre {} post", flip_case(t))));
                v.push(json!(format!("x{t}y")));
            }
            v
        }
        ListTest::AllTerms => {
            let mut v = vec![json!(strings.join(" "))];
            v.extend(strings.iter().map(|t| json!(t)));
            v.push(json!(flip_case(&strings.join(" "))));
            if let [first, rest @ ..] = strings.as_slice() {
                v.push(json!(format!("x{first}y {}", rest.join(" "))));
            }
            v
        }
    };
    if kind == Some(Kind::Str) {
        values.push(json!(""));
    }
    let mut cands: Vec<Cand> = values.into_iter().map(Cand::Json).collect();
    cands.push(Cand::Missing);
    if negated {
        let neutral = if kind == Some(Kind::Num) {
            number(numbers.iter().cloned().fold(0.0, f64::max) + 100.0)
        } else {
            json!("zz-neutral")
        };
        cands.insert(0, Cand::Json(neutral));
    }
    (kind, cands)
}

fn range_cands(low: &Scalar, high: &Scalar, negated: bool) -> Option<(Kind, Vec<Cand>)> {
    let as_num = |s: &Scalar| match s {
        Scalar::Literal {
            value: Value::Long(n),
        } => Some(*n as f64),
        Scalar::Literal {
            value: Value::Real(r),
        } => Some(*r),
        _ => None,
    };
    let as_time = |s: &Scalar| match s {
        Scalar::Literal {
            value: Value::DateTime(t),
        } => parse_time(t),
        Scalar::Now { offset_seconds } => Some(now_ms() + (offset_seconds * 1000.0) as i64),
        _ => None,
    };
    let (kind, mut cands) = if let (Some(l), Some(h)) = (as_num(low), as_num(high)) {
        let v = [l, l - 1.0, (l + h) / 2.0, h, h + 1.0];
        (
            Kind::Num,
            v.iter().map(|n| Cand::Json(number(*n))).collect(),
        )
    } else if let Some(l) = as_time(low)
        && let Some(h) = as_time(high).or(match high {
            // `between (start .. 1h)`: the high bound is an offset from the low one.
            Scalar::Literal {
                value: Value::TimeSpan(s),
            } => Some(l + (s * 1000.0) as i64),
            _ => None,
        })
    {
        let t = |ms, exact| Cand::Time { ms, exact };
        let mid = l + (h - l) / 2;
        let v = vec![
            t(mid, false),
            t(l, true),
            t(l - MINUTE_MS, false),
            t(h, true),
            t(h + MINUTE_MS, false),
        ];
        (Kind::Time, v)
    } else {
        return None;
    };
    if negated {
        let last = cands.pop().unwrap();
        cands.insert(0, last);
    }
    if kind == Kind::Num {
        cands.push(Cand::Missing);
    }
    Some((kind, cands))
}

fn empty_cands(null_only: bool, negated: bool) -> Vec<Cand> {
    let empty = Cand::Json(json!(""));
    match (null_only, negated) {
        (false, false) => vec![Cand::Missing, empty, Cand::Something],
        (false, true) => vec![Cand::Something, empty, Cand::Missing],
        (true, false) => vec![Cand::Missing, Cand::Null, empty, Cand::Something],
        (true, true) => vec![Cand::Something, empty, Cand::Missing, Cand::Null],
    }
}

/// A string `parse` matches: the pattern's texts with words for the captures; then one
/// without its first text, an empty string and a missing property.
fn parse_cands(pattern: &[kqlc::ir::ParsePiece]) -> Vec<Cand> {
    use kqlc::ir::ParsePiece as P;
    let render = |skip_first_text: bool| {
        let mut out = String::new();
        let mut skip = skip_first_text;
        for (i, piece) in pattern.iter().enumerate() {
            match piece {
                P::Text { .. } if skip => skip = false,
                P::Text { text } => out.push_str(text),
                P::Skip => out.push_str("skip"),
                P::Capture { ty: Some(ty), .. } if is_numeric(*ty) => {
                    out.push_str(&format!("{}", 2000 + i))
                }
                P::Capture { .. } => out.push_str(&format!("cap{i}")),
            }
        }
        out
    };
    vec![
        Cand::Json(json!(render(false))),
        Cand::Json(json!(render(true))),
        Cand::Json(json!("")),
        Cand::Missing,
    ]
}

fn is_numeric(t: kqlc::ir::Type) -> bool {
    use kqlc::ir::Type as T;
    matches!(t, T::Int | T::Long | T::Real | T::Decimal)
}

fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// The same text with ASCII letters in the other case.
fn flip_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

fn chop_last(s: &str) -> String {
    let mut c = s.chars();
    c.next_back();
    c.as_str().to_string()
}

fn chop_first(s: &str) -> String {
    let mut c = s.chars();
    c.next();
    c.as_str().to_string()
}

// ---------------------------------------------------------------------------------------
// Rows

/// A table's fields as a tree: nested objects, arrays, and leaves with candidates.
#[derive(Debug)]
enum Shape {
    Leaf { kind: Kind, cands: Vec<Cand> },
    Object(BTreeMap<String, Shape>),
    Array(Box<Shape>),
}

fn shape_of(column: &str, fields: &BTreeMap<Path, Field>) -> Shape {
    let mut root = Shape::Object(BTreeMap::new());
    // Longer paths first, so that a leaf on a prefix of a nested path (`project Obj` beside
    // `Obj.a`) gives way to the object.
    let mut paths: Vec<(&Path, &Field)> = fields.iter().collect();
    paths.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    for (path, field) in paths {
        insert(&mut root, path, field, column);
    }
    root
}

fn insert(node: &mut Shape, path: &[Step], field: &Field, column: &str) {
    let Some((first, rest)) = path.split_first() else {
        if let Shape::Object(m) = node
            && m.is_empty()
        {
            *node = leaf(field, column);
        }
        return;
    };
    match first {
        Step::Key(k) => {
            if !matches!(node, Shape::Object(_)) {
                *node = Shape::Object(BTreeMap::new());
            }
            let Shape::Object(m) = node else {
                unreachable!()
            };
            let child = m
                .entry(k.clone())
                .or_insert_with(|| Shape::Object(BTreeMap::new()));
            let name = if column.is_empty() {
                k.as_str()
            } else {
                column
            };
            insert(child, rest, field, name);
        }
        Step::Each => {
            if !matches!(node, Shape::Array(_)) {
                *node = Shape::Array(Box::new(Shape::Object(BTreeMap::new())));
            }
            let Shape::Array(elem) = node else {
                unreachable!()
            };
            insert(elem, rest, field, column);
        }
    }
}

/// A leaf for a field: its candidates, converted to its kind, or defaults.
fn leaf(field: &Field, column: &str) -> Shape {
    let is_time = TIME_COLUMNS.contains(&column);
    let kind = field
        .kind
        .or(is_time.then_some(Kind::Time))
        .unwrap_or(Kind::Str);
    let mut cands: Vec<Cand> = vec![];
    for c in &field.cands {
        if let Some(c) = convert(c, kind)
            && !cands.contains(&c)
        {
            cands.push(c);
        }
    }
    if !cands
        .iter()
        .any(|c| matches!(c, Cand::Json(_) | Cand::Time { .. }))
    {
        // Nothing tests the field's value: defaults, with a second value so that groups
        // and distinct have something to tell apart.
        cands.extend(defaults(kind));
    }
    Shape::Leaf { kind, cands }
}

fn defaults(kind: Kind) -> Vec<Cand> {
    match kind {
        Kind::Str => vec![Cand::Json(json!("alpha")), Cand::Json(json!("beta"))],
        Kind::Num => vec![Cand::Json(json!(1)), Cand::Json(json!(2))],
        Kind::Bool => vec![Cand::Json(json!(true)), Cand::Json(json!(false))],
        Kind::Time => vec![Cand::Time {
            ms: now_ms() - 10 * MINUTE_MS,
            exact: false,
        }],
    }
}

/// A candidate as a value of `kind`; `None` when it has no such form.
fn convert(c: &Cand, kind: Kind) -> Option<Cand> {
    let c = match (c, kind) {
        (Cand::Json(Json::String(s)), Kind::Num) => Cand::Json(number(s.parse().ok()?)),
        (Cand::Json(Json::String(s)), Kind::Bool) => Cand::Json(json!(s.parse::<bool>().ok()?)),
        (Cand::Json(Json::String(s)), Kind::Time) => Cand::Time {
            ms: parse_time(s)?,
            exact: true,
        },
        (Cand::Json(Json::Number(n)), Kind::Str) => Cand::Json(json!(n.to_string())),
        (Cand::Json(Json::Bool(b)), Kind::Str) => Cand::Json(json!(b.to_string())),
        (Cand::Json(Json::Number(_) | Json::Bool(_)), Kind::Time) => return None,
        (Cand::Time { ms, .. }, Kind::Str) => Cand::Json(json!(format_time(*ms))),
        (Cand::Time { .. }, Kind::Num | Kind::Bool) => return None,
        (other, _) => other.clone(),
    };
    Some(c)
}

/// Builds JSON values from a shape; numbers times so that no two rows share one.
struct Builder {
    rng: Cell<u64>,
    /// Milliseconds subtracted from the next non-boundary time.
    tick: Cell<i64>,
}

impl Builder {
    fn cand(&self, kind: Kind, c: &Cand) -> Option<Json> {
        match c {
            Cand::Missing => None,
            Cand::Null => Some(Json::Null),
            Cand::Json(v) => Some(v.clone()),
            Cand::Something => match kind {
                Kind::Str => Some(json!("some-value")),
                _ => self.cand(kind, defaults(kind).first()?),
            },
            Cand::Time { ms, exact } => {
                let ms = if *exact {
                    *ms
                } else {
                    self.tick.set(self.tick.get() + 1);
                    ms - self.tick.get()
                };
                Some(json!(format_time(ms)))
            }
        }
    }

    /// The base value (every leaf at its first candidate).
    fn base(&self, s: &Shape) -> Option<Json> {
        match s {
            Shape::Leaf { kind, cands } => self.cand(*kind, cands.first()?),
            Shape::Object(m) => Some(Json::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.base(v)?)))
                    .collect(),
            )),
            Shape::Array(elem) => Some(Json::Array(self.base(elem).into_iter().collect())),
        }
    }

    /// Values that differ from the base in one place each.
    fn variations(&self, s: &Shape) -> Vec<Option<Json>> {
        match s {
            Shape::Leaf { kind, cands } => {
                cands.iter().skip(1).map(|c| self.cand(*kind, c)).collect()
            }
            Shape::Object(m) => {
                let mut out = vec![];
                for (k, child) in m {
                    for v in self.variations(child) {
                        let Some(Json::Object(mut base)) = self.base(s) else {
                            unreachable!()
                        };
                        match v {
                            Some(v) => base.insert(k.clone(), v),
                            None => base.remove(k),
                        };
                        out.push(Some(Json::Object(base)));
                    }
                }
                out
            }
            Shape::Array(elem) => {
                let base = self.base(elem);
                let others: Vec<Json> = self.variations(elem).into_iter().flatten().collect();
                // Arrays of 0, 1 and several elements, and one per element variation.
                let mut out = vec![Some(json!([])), None];
                let several: Vec<Json> = base
                    .iter()
                    .cloned()
                    .chain(others.iter().take(2).cloned())
                    .collect();
                out.push(Some(Json::Array(several)));
                out.extend(others.into_iter().map(|o| Some(json!([o]))));
                out
            }
        }
    }

    fn random(&self, s: &Shape) -> Option<Json> {
        match s {
            Shape::Leaf { kind, cands } => {
                let c = &cands[self.next(cands.len())];
                self.cand(*kind, c)
            }
            Shape::Object(m) => Some(Json::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.random(v)?)))
                    .collect(),
            )),
            Shape::Array(elem) => {
                let n = self.next(4);
                Some(Json::Array(
                    (0..n).filter_map(|_| self.random(elem)).collect(),
                ))
            }
        }
    }

    /// xorshift64: a fixed sequence, so the data are the same on every run.
    fn next(&self, bound: usize) -> usize {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        (x % bound.max(1) as u64) as usize
    }
}

fn build_rows(table: &str, fields: &BTreeMap<Path, Field>) -> Vec<Map<String, Json>> {
    let shape = shape_of("", fields);
    let seed = table.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    });
    let b = Builder {
        rng: Cell::new(seed | 1),
        tick: Cell::new(0),
    };
    let as_row = |v: Option<Json>| match v {
        Some(Json::Object(m)) => Some(m),
        _ => None,
    };
    let mut rows: Vec<Map<String, Json>> = vec![];
    rows.extend(as_row(b.base(&shape)));
    rows.extend(b.variations(&shape).into_iter().filter_map(as_row));
    rows.truncate(MAX_ROWS - RANDOM_ROWS.min(MAX_ROWS / 4));
    let target = (rows.len() + RANDOM_ROWS).min(MAX_ROWS);
    while rows.len() < target {
        rows.extend(as_row(b.random(&shape)));
    }
    // Every column must appear in some row, or the engine does not know it.
    rows.retain(|r| !r.is_empty());
    rows
}

// ---------------------------------------------------------------------------------------
// Time

/// Milliseconds since the epoch of `2026-01-01`, `2026-01-01 10:00`, `2026-01-01T10:00:00Z`.
pub fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim().trim_end_matches('Z').replace(' ', "T");
    let (date, time) = t.split_once('T').unwrap_or((&t, "00:00:00"));
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut parts = time.split(':');
    let h: i64 = parts.next().unwrap_or("0").parse().ok()?;
    let min: i64 = parts.next().unwrap_or("0").parse().ok()?;
    let sec: f64 = parts.next().unwrap_or("0").parse().ok()?;
    let days = days_from_civil(y, m, day);
    Some(((days * 24 + h) * 60 + min) * 60_000 + (sec * 1000.0).round() as i64)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}
