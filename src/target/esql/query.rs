//! The translator's state: the ES|QL commands written so far, the columns in scope and
//! what was said about the rule; and the translation of sources and stages.

use std::collections::BTreeSet;

use crate::diag::{Code, Diagnostic, Severity};
use crate::ir::visit::{predicate_columns, scalar_columns};
use crate::ir::*;
use crate::mapping::snake_case;
use crate::target::Context;

use super::expr::{self, E, P, Ty};
use super::lit;

/// One command of the query, with the comments written above it.
#[derive(Debug, Clone)]
pub struct Line {
    pub comments: Vec<String>,
    pub text: String,
}

/// Where a column's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A field of a table, unchanged: paths into it resolve through the mapping.
    Source {
        table: Option<String>,
        path: FieldPath,
        /// `mv-expand` of an array Elastic keeps as `field.0`, `field.1`...: the
        /// first element stands for each element.
        first_element: bool,
    },
    /// A column of a lookup index (watchlist): its name is the Sentinel name.
    Lookup,
    Computed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Col {
    /// The ES|QL column name.
    pub esql: String,
    pub ty: Ty,
    pub origin: Origin,
    /// The Elastic field is an object (`x.*`), not a value.
    pub object: bool,
}

/// The columns a stage can read.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Tables whose fields can still be read by their Sentinel names.
    pub tables: Vec<String>,
    /// Columns defined so far (Sentinel name, column); later entries shadow earlier ones.
    pub cols: Vec<(String, Col)>,
    /// Unknown names may still be fields of `tables` (false after `project`, `summarize`).
    pub open: bool,
    /// The rows are a lookup index (watchlist): names are used as they are.
    pub lookup: bool,
}

impl Scope {
    pub fn of_tables(tables: Vec<String>) -> Scope {
        Scope {
            tables,
            cols: vec![],
            open: true,
            lookup: false,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Col> {
        self.cols
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    pub fn set(&mut self, name: &str, col: Col) {
        self.cols.retain(|(n, _)| n != name);
        self.cols.push((name.to_string(), col));
    }

    /// Is some column (by ES|QL name) in use?
    pub fn uses_esql(&self, esql: &str) -> bool {
        self.cols.iter().any(|(_, c)| c.esql == esql)
    }
}

/// Why an expression could not be written.
#[derive(Debug, Clone)]
pub enum Why {
    /// The mapping says Elastic has no such field (T005).
    NoEquivalent(String),
    /// The field is an object in Elastic (Sentinel name, Elastic name): it has parts but
    /// no value.
    Object(String, String),
    /// Something else (T003), with the reason.
    Other(String),
}

impl Why {
    pub fn message(&self) -> String {
        match self {
            Why::NoEquivalent(f) => format!("Elastic has no equivalent of `{f}`"),
            Why::Object(f, e) => format!("`{f}` is an object in Elastic (`{e}.*`), not a value"),
            Why::Other(m) => m.clone(),
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Why::NoEquivalent(_) => Code::NoEquivalentField,
            _ => Code::NotTranslated,
        }
    }
}

/// A Sentinel field as the mapping names it in Elastic.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Mapped {
        name: String,
        object: bool,
    },
    NoEquivalent,
    /// Not known: the Sentinel name is kept (with the reason when the mapping gives
    /// something that is not a field name).
    Unmapped {
        name: String,
        why: Option<String>,
    },
}

pub struct Tx<'a> {
    pub cx: &'a Context<'a>,
    pub diags: Vec<Diagnostic>,
    pub lines: Vec<Line>,
    pending: Vec<String>,
    pub scope: Scope,
    /// The stage being translated, for diagnostics about its expressions.
    pub here: Option<Span>,
    /// Writing an Elastic rule (adds `METADATA _id, _index, _version` to non-aggregating
    /// queries, for alert de-duplication).
    pub rule_form: bool,
    /// Inside `STATS`: aggregate calls are allowed in expressions.
    pub in_stats: bool,
    /// A `LOOKUP JOIN` may be written before the current `WHERE` (false inside the
    /// sides of a correlation).
    pub lookups_allowed: bool,
    /// Resolved `in (watchlist)` tests, by the address of their predicate.
    pub lookup_tests: Vec<(usize, E)>,
    /// Lookup indices the query reads, for the rule's setup note.
    pub lookup_indices: Vec<String>,
    /// Lookup indices read by membership tests, and whether their keys are lower case.
    pub lookup_cases: Vec<(String, bool)>,
    /// The condition being written has several lookup tests (each LOOKUP JOIN
    /// overwrites the previous one's columns, so each test is kept as a flag).
    pub several_lookups: bool,
    /// A `STATS` or `LOOKUP JOIN`-free non-aggregating query (for `METADATA`).
    pub aggregates: bool,
    /// Reading a field Elastic has no equivalent of gives NULL (said) rather than
    /// failing the expression (in computed values, not in conditions).
    pub missing_is_null: bool,
    /// Why the last join could not be written as a correlation.
    pub correlation_failure: Option<String>,
    /// Columns that hold the values of several rows after a correlation (Sentinel names).
    pub list_cols: BTreeSet<String>,
    /// `list_cols` as they were before the current stage (which may clear them).
    pub stage_lists: BTreeSet<String>,
    said: BTreeSet<String>,
    fresh: usize,
}

/// The number of diagnostics of one kind kept per rule (long IOC lists repeat them).
const SAME_CODE_LIMIT: usize = 40;

impl<'a> Tx<'a> {
    pub fn new(cx: &'a Context<'a>) -> Tx<'a> {
        Tx {
            cx,
            diags: vec![],
            lines: vec![],
            pending: vec![],
            scope: Scope::default(),
            here: None,
            rule_form: cx.format == crate::target::Format::ElasticRule,
            in_stats: false,
            lookups_allowed: true,
            lookup_tests: vec![],
            lookup_indices: vec![],
            lookup_cases: vec![],
            several_lookups: false,
            aggregates: false,
            list_cols: BTreeSet::new(),
            stage_lists: BTreeSet::new(),
            correlation_failure: None,
            missing_is_null: false,
            said: BTreeSet::new(),
            fresh: 0,
        }
    }

    // ---- output ----

    pub fn push(&mut self, text: impl Into<String>) {
        let comments = std::mem::take(&mut self.pending);
        self.lines.push(Line {
            comments,
            text: text.into(),
        });
    }

    pub fn comment(&mut self, text: &str) {
        self.pending
            .push(format!("// {}", crate::target::one_line(text)));
    }

    /// Comments not yet attached to a command (at the end of the query).
    pub fn take_pending(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pending)
    }

    pub fn say(&mut self, severity: Severity, code: Code, span: Option<Span>, message: String) {
        let key = format!("{}|{}|{:?}", code.as_str(), message, span.map(|s| s.start));
        if !self.said.insert(key) {
            return;
        }
        if self.diags.iter().filter(|d| d.code == code).count() >= SAME_CODE_LIMIT {
            return;
        }
        let d = self.cx.diagnostic(severity, code, span, message);
        let level = match d.severity {
            Severity::Error => "error",
            _ => "warning",
        };
        let place = d
            .line_column(&self.cx.rule.file.text)
            .map(|(l, c)| format!(" {l}:{c}"))
            .unwrap_or_default();
        self.pending.push(format!(
            "// {level}[{}]{place}: {}",
            code.as_str(),
            crate::target::one_line(&d.message)
        ));
        self.diags.push(d);
    }

    pub fn warn(&mut self, code: Code, span: Option<Span>, message: String) {
        self.say(Severity::Warning, code, span, message);
    }

    pub fn error(&mut self, code: Code, span: Option<Span>, message: String) {
        self.say(Severity::Error, code, span, message);
    }

    pub fn fresh(&mut self, base: &str) -> String {
        loop {
            self.fresh += 1;
            let name = format!("{base}{}", self.fresh);
            if self.scope.get(&name).is_none() && !self.scope.uses_esql(&name) {
                return name;
            }
        }
    }

    /// Saves the output state, to try a translation and undo it.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            diags: self.diags.clone(),
            lines: self.lines.clone(),
            pending: self.pending.clone(),
            scope: self.scope.clone(),
            said: self.said.clone(),
            lookup_tests: self.lookup_tests.clone(),
            lookup_indices: self.lookup_indices.clone(),
            lookup_cases: self.lookup_cases.clone(),
            aggregates: self.aggregates,
            list_cols: self.list_cols.clone(),
        }
    }

    pub fn restore(&mut self, c: Checkpoint) {
        self.diags = c.diags;
        self.lines = c.lines;
        self.pending = c.pending;
        self.scope = c.scope;
        self.said = c.said;
        self.lookup_tests = c.lookup_tests;
        self.lookup_indices = c.lookup_indices;
        self.lookup_cases = c.lookup_cases;
        self.aggregates = c.aggregates;
        self.list_cols = c.list_cols;
    }

    // ---- fields ----

    /// A Sentinel field of a table, as the mapping names it in Elastic.
    pub fn source_field(&self, table: &str, path: &FieldPath, element: bool) -> Field {
        let Some(mapping) = self.cx.mappings.table(table) else {
            return Field::Unmapped {
                name: path.dotted(),
                why: None,
            };
        };
        // Tables stored like another one (the mapping draft's `inherits_columns_from`,
        // which targets/mappings.yaml does not carry): their own entries, then the other's.
        let mut mappings = vec![mapping];
        if let Some((_, parent)) = INHERITS.iter().find(|(t, _)| *t == table)
            && let Some(m) = self.cx.mappings.table(parent)
        {
            mappings.push(m);
        }
        let camel = mappings.iter().any(|m| keeps_json_keys(m, &path.column));
        let pick = |key: &str| {
            mappings
                .iter()
                .find_map(|m| m.fields.get(key).and_then(|f| f.elastic.clone()))
        };
        // The mapping writes array elements as `Column[].key`.
        let mut keys = vec![path.dotted()];
        let mut bracketed = path.column.clone();
        for step in &path.path {
            match step {
                PathStep::Key(k) => {
                    bracketed.push('.');
                    bracketed.push_str(k);
                }
                PathStep::Index(_) => bracketed.push_str("[]"),
            }
        }
        keys.push(bracketed.clone());
        if element && let Some(rest) = bracketed.strip_prefix(&path.column) {
            keys.push(format!("{}[]{rest}", path.column));
        }
        // The element an `<i>` in the mapping stands for: an index in the path, or the
        // first element after `mv-expand`.
        let index = path
            .path
            .iter()
            .find_map(|s| match s {
                PathStep::Index(i) => Some(*i),
                _ => None,
            })
            .or(element.then_some(0));
        for key in &keys {
            if let Some(value) = pick(key) {
                return match value {
                    None => Field::NoEquivalent,
                    Some(name) => clean_mapped(&name, index, path),
                };
            }
        }
        match pick(&path.column) {
            Some(None) => Field::NoEquivalent,
            Some(Some(base)) => {
                let mut name = base;
                let object = name.ends_with(".*");
                if object {
                    name.truncate(name.len() - 2);
                }
                let mut steps = path.path.iter().peekable();
                // `Column[0].x` where the mapping says `<i>`: the index fills it.
                if name.contains("<i>")
                    && let Some(PathStep::Index(i)) = steps.peek()
                {
                    name = name.replace("<i>", &i.to_string());
                    steps.next();
                }
                for step in steps {
                    match step {
                        PathStep::Key(k) => {
                            name.push('.');
                            name.push_str(&if camel { k.clone() } else { snake_case(k) });
                        }
                        PathStep::Index(i) => name.push_str(&format!(".{i}")),
                    }
                }
                match clean_mapped(&name, index, path) {
                    Field::Mapped { name, object: o } => Field::Mapped {
                        name,
                        object: o || (object && path.path.is_empty()),
                    },
                    other => other,
                }
            }
            None => Field::Unmapped {
                name: path.dotted(),
                why: None,
            },
        }
    }

    /// The mapping's Elastic text for a whole column, as written (`x.<i>.*`).
    pub fn raw_mapping(&self, table: &str, column: &str) -> Option<String> {
        let mut tables = vec![table];
        if let Some((_, parent)) = INHERITS.iter().find(|(t, _)| *t == table) {
            tables.push(parent);
        }
        tables.iter().find_map(|t| {
            self.cx
                .mappings
                .table(t)?
                .fields
                .get(column)?
                .elastic
                .clone()
                .flatten()
        })
    }

    /// Where a path's values come from, when it reads a table's field.
    fn source_origin(&self, path: &FieldPath) -> Option<Origin> {
        match self.scope.get(&path.column) {
            Some(Col {
                origin:
                    Origin::Source {
                        table,
                        path: base,
                        first_element,
                    },
                ..
            }) => {
                let mut full = base.clone();
                full.path.extend(path.path.iter().cloned());
                Some(Origin::Source {
                    table: table.clone(),
                    path: full,
                    first_element: *first_element,
                })
            }
            Some(_) => None,
            None if self.scope.open && !self.scope.lookup => Some(Origin::Source {
                table: self.scope.tables.first().cloned(),
                path: path.clone(),
                first_element: false,
            }),
            None => None,
        }
    }

    /// A plain column's current expression, without saying anything.
    fn field_quiet(&mut self, name: &str) -> Option<E> {
        let before = (self.diags.len(), self.pending.len(), self.said.clone());
        let r = self.field(&FieldPath::column(name.to_string())).ok();
        self.diags.truncate(before.0);
        self.pending.truncate(before.1);
        self.said = before.2;
        r
    }

    /// A field read in the current scope.
    pub fn field(&mut self, path: &FieldPath) -> Result<E, Why> {
        if let Some(col) = self.scope.get(&path.column).cloned() {
            if col.object && path.path.is_empty() {
                return Err(Why::Object(path.column.clone(), col.esql.clone()));
            }
            if path.path.is_empty() {
                return Ok(E::column(&col.esql, col.ty));
            }
            // `parts[1]` of a computed array (`split()`): one of its values.
            if let (Origin::Computed, [PathStep::Index(i)]) = (&col.origin, path.path.as_slice())
                && !col.object
            {
                let v = E::column(&col.esql, col.ty);
                let ty = match col.ty {
                    Ty::Any | Ty::Null => Ty::Str,
                    t => t,
                };
                return Ok(match *i {
                    0 => expr::call("MV_FIRST", &[v], ty),
                    -1 => expr::call("MV_LAST", &[v], ty),
                    i => expr::call("MV_SLICE", &[v, E::long(i), E::long(i)], ty),
                });
            }
            return match &col.origin {
                Origin::Source {
                    table: Some(table),
                    path: base,
                    first_element,
                } => {
                    let mut full = base.clone();
                    full.path.extend(path.path.iter().cloned());
                    let table = table.clone();
                    let element = *first_element;
                    self.mapped_field(&[table], &full, element)
                }
                Origin::Lookup | Origin::Source { table: None, .. } => {
                    let mut name = col.esql.clone();
                    for step in &path.path {
                        match step {
                            PathStep::Key(k) => {
                                name.push('.');
                                name.push_str(k);
                            }
                            PathStep::Index(i) => name.push_str(&format!(".{i}")),
                        }
                    }
                    Ok(E::column(&name, Ty::Any))
                }
                Origin::Computed => Err(Why::Other(format!(
                    "`{}` is a computed value: ES|QL has no paths into computed values",
                    path.dotted()
                ))),
            };
        }
        if self.scope.lookup {
            return Ok(E::column(&path.dotted(), Ty::Str));
        }
        if !self.scope.open {
            return Err(Why::Other(format!(
                "`{}` is not a column at this point of the query",
                path.dotted()
            )));
        }
        let tables = self.scope.tables.clone();
        self.mapped_field(&tables, path, false)
    }

    /// A field of the scope's tables: one name, or `COALESCE` over a union whose tables
    /// call it differently.
    fn mapped_field(
        &mut self,
        tables: &[String],
        path: &FieldPath,
        element: bool,
    ) -> Result<E, Why> {
        let mut names: Vec<String> = vec![];
        let mut no_equivalent = 0;
        for table in tables {
            match self.source_field(table, path, element) {
                Field::Mapped { name, object } => {
                    if object {
                        return Err(Why::Object(path.dotted(), name));
                    }
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                Field::NoEquivalent => no_equivalent += 1,
                Field::Unmapped { name, why } => {
                    if self.cx.mappings.table(table).is_some() {
                        let why = why.map(|w| format!(": {w}")).unwrap_or_default();
                        self.warn(
                            Code::UnmappedField,
                            self.here,
                            format!(
                                "the mapping does not say what `{}` of {table} is called in Elastic{why}; the Sentinel name is kept",
                                path.dotted()
                            ),
                        );
                    }
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        if names.is_empty() {
            if no_equivalent > 0 {
                return Err(Why::NoEquivalent(path.dotted()));
            }
            // No table known (a source kqlc could not map): keep the name.
            return Ok(E::column(&path.dotted(), field_type(&path.dotted())));
        }
        let ty = field_type(&names[0]);
        if names.len() == 1 {
            return Ok(E::column(&names[0], ty));
        }
        let args: Vec<E> = names.iter().map(|n| E::column(n, field_type(n))).collect();
        Ok(expr::call("COALESCE", &args, ty))
    }

    // ---- sources ----

    /// `FROM` for tables, with the filters that select each table's rows.
    pub fn read_tables(&mut self, tables: &[(String, Option<Window>)], span: Option<Span>) {
        let mut indices: Vec<String> = vec![];
        for (table, _) in tables {
            let index = self.table_index(table, span);
            for i in index.split(',') {
                let i = i.trim().to_string();
                if !i.is_empty() && !indices.contains(&i) {
                    indices.push(i);
                }
            }
        }
        let metadata = if self.rule_form {
            " METADATA _id, _index, _version"
        } else {
            ""
        };
        let list: Vec<String> = indices.iter().map(|i| lit::index(i)).collect();
        self.push(format!("FROM {}{metadata}", list.join(", ")));
        self.scope = Scope::of_tables(tables.iter().map(|(t, _)| t.clone()).collect());
        if let P::E(e) = self.tables_condition(tables, indices.len() > 1) {
            self.push(format!("WHERE {}", e.text));
        }
    }

    /// What selects the rows of some tables: the time window, and each table's category
    /// within a shared data stream (its dataset when several indices are read).
    pub fn tables_condition(&mut self, tables: &[(String, Option<Window>)], several: bool) -> P {
        let windows: Vec<Option<P>> = tables
            .iter()
            .map(|(t, w)| w.as_ref().map(|w| self.window(t, w)))
            .collect();
        if windows.windows(2).all(|w| w[0] == w[1]) {
            let window = windows.first().cloned().flatten().unwrap_or(P::Const(true));
            let selection = match self.category_in(tables) {
                Some(e) => P::E(e),
                None => {
                    let parts = tables
                        .iter()
                        .map(|(t, _)| self.table_filter(t, several))
                        .collect();
                    expr::or(parts)
                }
            };
            return expr::and(vec![window, selection]);
        }
        let parts = tables
            .iter()
            .zip(windows)
            .map(|((t, _), w)| {
                expr::and(vec![
                    w.unwrap_or(P::Const(true)),
                    self.table_filter(t, several),
                ])
            })
            .collect();
        expr::or(parts)
    }

    /// `category IN ("A", "B")` when every table selects its rows by the same field.
    fn category_in(&self, tables: &[(String, Option<Window>)]) -> Option<E> {
        let mut field = None;
        let mut values = vec![];
        for (t, _) in tables {
            let filter = &self.cx.mappings.table(t)?.elastic.as_ref()?.filter;
            if filter.len() != 1 {
                return None;
            }
            let (f, v) = filter.iter().next()?;
            if field.get_or_insert(f.clone()) != f {
                return None;
            }
            if !values.contains(v) {
                values.push(v.clone());
            }
        }
        let field = E::column(&field?, Ty::Str);
        let items: Vec<E> = values.iter().map(|v| E::string(v)).collect();
        Some(if items.len() == 1 {
            expr::cmp(&field, "==", &items[0])
        } else {
            expr::in_list(&field, &items, false)
        })
    }

    /// The index pattern of a table (a placeholder, said, when the mapping has none).
    pub fn table_index(&mut self, table: &str, span: Option<Span>) -> String {
        let mapping = self.cx.mappings.table(table);
        if let Some(note) = mapping.and_then(|m| m.note.clone()) {
            self.warn(Code::SourceNote, span, format!("{table}: {note}"));
        }
        match mapping.and_then(|m| m.elastic.as_ref()) {
            Some(e) => e.index.clone(),
            None => {
                let placeholder = placeholder_index(table);
                self.warn(
                    Code::UnmappedSource,
                    span,
                    format!(
                        "the mapping does not say which Elastic index holds {table}: `{placeholder}` is a placeholder and field names are kept as in Sentinel (give the index with --mapping)"
                    ),
                );
                placeholder
            }
        }
    }

    /// What selects a table's documents: its mapping's field values (which exist only in
    /// its data stream), or its dataset when several indices are read.
    pub fn table_filter(&mut self, table: &str, several: bool) -> P {
        let mut parts = vec![];
        let elastic = self
            .cx
            .mappings
            .table(table)
            .and_then(|m| m.elastic.clone());
        if let Some(e) = &elastic {
            for (field, value) in &e.filter {
                parts.push(P::E(expr::cmp(
                    &E::column(field, Ty::Str),
                    "==",
                    &E::string(value),
                )));
            }
        }
        if several && parts.is_empty() {
            let index = elastic
                .as_ref()
                .map(|e| e.index.clone())
                .unwrap_or_else(|| placeholder_index(table));
            match dataset_filter(&index) {
                Some(p) => parts.push(p),
                None => self.warn(
                    Code::NotTranslated,
                    self.here,
                    format!(
                        "the rows of {table} (index `{index}`) cannot be told apart from the other indices read (no `logs-<dataset>-*` pattern): its conditions also apply to them"
                    ),
                ),
            }
        }
        expr::and(parts)
    }

    /// `TimeGenerated > ago(1h)` as `@timestamp > NOW() - 1 hour`.
    pub fn window(&mut self, table: &str, w: &Window) -> P {
        let field = match self.source_field(table, &FieldPath::column(w.column.clone()), false) {
            Field::Mapped { name, .. } => name,
            _ => "@timestamp".to_string(),
        };
        let now = E::new("NOW()", Ty::Date, expr::ATOM);
        let value = match expr::span(w.seconds.unsigned_abs() as f64) {
            Some(s) => expr::arith(&now, "-", &s, Ty::Date),
            None => now,
        };
        let op = if w.inclusive { ">=" } else { ">" };
        P::E(expr::cmp(&E::column(&field, Ty::Date), op, &value))
    }

    // ---- pipelines ----

    pub fn pipeline(&mut self, p: &Pipeline) {
        // `x in (T | ...)` as a semi-join of two streams, when it can be correlated.
        if let Some(semi) = super::join::semi_join(p)
            && self.correlated(&semi)
        {
            return;
        }
        if self.correlated(p) {
            return;
        }
        let stages = &p.stages;
        self.source(&p.source);
        for (i, stage) in stages.iter().enumerate() {
            self.stage(stage, &stages[i + 1..]);
        }
    }

    /// Writes a pipeline whose first join reads another event stream as a correlation
    /// of the two sides; false (and nothing written) when that is not possible.
    fn correlated(&mut self, p: &Pipeline) -> bool {
        let stages = &p.stages;
        let Some(j) = stages.iter().position(|s| matches!(s, Stage::Join { .. })) else {
            return false;
        };
        let Stage::Join {
            kind,
            right,
            keys,
            at,
            ..
        } = &stages[j]
        else {
            return false;
        };
        if super::join::reads_lookup(right) {
            return false;
        }
        let saved = self.checkpoint();
        match self.correlate(
            &p.source,
            &stages[..j],
            *kind,
            right,
            keys,
            *at,
            &stages[j + 1..],
        ) {
            Ok(()) => {
                for (i, stage) in stages.iter().enumerate().skip(j + 1) {
                    self.stage(stage, &stages[i + 1..]);
                }
                true
            }
            Err(why) => {
                self.restore(saved);
                self.correlation_failure = Some(why);
                false
            }
        }
    }

    pub fn source(&mut self, source: &Source) {
        match source {
            Source::Table { name, window, at } => {
                self.here = Some(*at);
                self.read_tables(&[(name.clone(), window.clone())], Some(*at));
            }
            Source::Union { .. } => self.union(source),
            Source::Watchlist { name } => {
                let index = super::join::lookup_index(name);
                self.warn(
                    Code::SourceNote,
                    None,
                    format!(
                        "the watchlist `{name}` is read from the lookup index `{index}`, which must be created with the watchlist's rows"
                    ),
                );
                self.lookup_indices
                    .push(format!("{index} (watchlist {name})"));
                self.push(format!("FROM {}", lit::index(&index)));
                self.scope = Scope {
                    lookup: true,
                    ..Scope::default()
                };
            }
            Source::Inline { columns, rows } => self.row_source(columns, rows),
            Source::External { uris, .. } => {
                self.error(
                    Code::Untranslatable,
                    None,
                    format!(
                        "`externaldata` reads rows from {}: ES|QL cannot read URLs (load them into an index first)",
                        uris.join(", ")
                    ),
                );
                self.push("ROW kqlc_untranslatable = TRUE");
            }
            Source::UnresolvedFunction { name, .. } => {
                self.error(
                    Code::Untranslatable,
                    None,
                    format!(
                        "the rows come from `{name}`, a workspace function whose definition was not supplied (give it with --functions FILE): what it reads is unknown"
                    ),
                );
                self.push(format!("FROM {}", lit::index(&placeholder_index(name))));
                self.scope = Scope::of_tables(vec![]);
            }
            Source::Unsupported(u) => {
                self.error(
                    Code::Untranslatable,
                    Some(Span {
                        start: u.span.0,
                        end: u.span.1,
                    }),
                    format!(
                        "the source `{}` ({}) has no ES|QL equivalent",
                        u.kql, u.construct
                    ),
                );
                self.push("ROW kqlc_untranslatable = TRUE");
                self.scope = Scope::of_tables(vec![]);
            }
        }
    }

    /// `datatable` as the query's source: one row is a `ROW`; more cannot be written.
    fn row_source(&mut self, columns: &[Column], rows: &[Vec<Value>]) {
        self.scope = Scope::default();
        if rows.len() == 1 {
            let mut items = vec![];
            for (c, v) in columns.iter().zip(&rows[0]) {
                let value = self.value(v).unwrap_or_else(|_| E::null());
                items.push(format!("{} = {}", lit::ident(&c.name), value.text));
                self.scope.set(
                    &c.name,
                    Col {
                        esql: c.name.clone(),
                        ty: value.ty,
                        origin: Origin::Computed,
                        object: false,
                    },
                );
            }
            self.push(format!("ROW {}", items.join(", ")));
        } else {
            self.error(
                Code::Untranslatable,
                None,
                format!(
                    "a `datatable` of {} rows as the source: ES|QL's ROW makes one row",
                    rows.len()
                ),
            );
            self.push("ROW kqlc_untranslatable = TRUE");
        }
    }

    pub fn stage(&mut self, stage: &Stage, rest: &[Stage]) {
        let span = stage.span();
        self.here = Some(span);
        self.stage_lists = self.list_cols.clone();
        self.list_check(stage, span);
        match stage {
            Stage::Filter { predicate, .. } => self.filter(predicate, span),
            Stage::Compute { columns, .. } => self.compute(columns),
            Stage::Project { columns, .. } => self.project(columns),
            Stage::Drop { columns, .. } => self.drop_columns(columns),
            Stage::Keep { columns, .. } => self.keep_patterns(columns),
            Stage::Rename { renames, .. } => self.rename(renames),
            // Column order does not change what a detection finds.
            Stage::Reorder { .. } => {}
            Stage::Aggregate {
                keys,
                aggregates,
                having,
                ..
            } => self.aggregate(keys, aggregates, having.as_ref(), span, rest),
            Stage::Join {
                kind, right, keys, ..
            } => self.join(*kind, right, keys, span, rest),
            Stage::Expand {
                columns,
                limit,
                item_index,
                bag_as_array,
                ..
            } => {
                if let Some(name) = item_index {
                    self.warn(
                        Code::NotTranslated,
                        Some(span),
                        format!("`with_itemindex={name}` (each element's position) is not produced: MV_EXPAND has no index"),
                    );
                }
                if *bag_as_array {
                    self.warn(
                        Code::NotTranslated,
                        Some(span),
                        "`bagexpansion=array` (property bag entries as [key, value] arrays) is not kept: MV_EXPAND expands values".into(),
                    );
                }
                self.expand(columns, *limit, span, rest)
            }
            Stage::Parse {
                source,
                kind,
                pattern,
                drop_unmatched,
                ..
            } => self.parse(source, *kind, pattern, *drop_unmatched, span),
            Stage::Sort { keys, .. } => self.sort(keys),
            Stage::Limit { count, .. } => self.push(format!("LIMIT {}", (*count).max(0))),
            Stage::Top { count, key, .. } => {
                self.sort(std::slice::from_ref(key));
                self.push(format!("LIMIT {}", (*count).max(0)));
            }
            Stage::Distinct { columns, .. } => self.distinct(columns, span),
            Stage::Count { .. } => {
                self.aggregates = true;
                self.push("STATS Count = COUNT(*)");
                self.scope = Scope::default();
                self.scope.set("Count", computed("Count", Ty::Num));
            }
            Stage::UnresolvedInvoke { name, .. } => self.warn(
                Code::NotTranslated,
                Some(span),
                format!(
                    "`invoke {name}()` applies a workspace function whose definition was not supplied (give it with --functions FILE); what it does to the rows is unknown and is left out, so this translation may match more events"
                ),
            ),
            Stage::Unsupported(u) => self.error(
                Code::Untranslatable,
                Some(span),
                format!(
                    "`{}` ({}) has no ES|QL equivalent and is left out",
                    crate::target::one_line(&u.kql),
                    u.construct
                ),
            ),
        }
    }

    /// A step that computes per row on a column holding the values of several rows
    /// (after a correlation) no longer means what it meant in KQL.
    fn list_check(&mut self, stage: &Stage, span: Span) {
        if self.list_cols.is_empty() {
            return;
        }
        let reads = match stage {
            Stage::Filter { .. }
            | Stage::Compute { .. }
            | Stage::Aggregate { .. }
            | Stage::Parse { .. } => stage_refs(stage).0,
            Stage::Project { columns, .. } => {
                let mut out = BTreeSet::new();
                for a in columns {
                    if !matches!(&a.value, Scalar::Field { path } if path.path.is_empty()) {
                        scalar_columns(&a.value, &mut out);
                    }
                }
                out
            }
            _ => BTreeSet::new(),
        };
        let lists: Vec<String> = reads
            .intersection(&self.list_cols)
            .map(|c| format!("`{c}`"))
            .collect();
        if !lists.is_empty() {
            self.warn(
                Code::NotTranslated,
                Some(span),
                format!(
                    "this step reads {} per matching row in KQL; after the join's correlation they hold the values of all matching rows, on which ES|QL's functions and comparisons are null",
                    lists.join(", ")
                ),
            );
        }
        match stage {
            Stage::Aggregate { .. } | Stage::Distinct { .. } | Stage::Count { .. } => {
                self.list_cols.clear()
            }
            Stage::Project { columns, .. } => {
                let kept: BTreeSet<String> = columns
                    .iter()
                    .filter(|a| matches!(&a.value, Scalar::Field { path } if path.path.is_empty() && self.list_cols.contains(&path.column)))
                    .map(|a| a.name.clone())
                    .collect();
                self.list_cols = kept;
            }
            _ => {}
        }
    }

    fn filter(&mut self, predicate: &Predicate, span: Span) {
        let parts: Vec<&Predicate> = match predicate {
            Predicate::And { all } => all.iter().collect(),
            p => vec![p],
        };
        // Conditions that need a LOOKUP JOIN come after the others (fewer rows to join).
        let allowed = self.lookups_allowed;
        let (lookup, plain): (Vec<&Predicate>, Vec<&Predicate>) = parts
            .into_iter()
            .partition(|q| allowed && has_watchlist_test(q));
        if !plain.is_empty() || lookup.is_empty() {
            let p = expr::and(plain.iter().map(|q| self.pred(q, false)).collect());
            self.where_line(p, span);
        }
        if !lookup.is_empty() {
            let outer = self.several_lookups;
            self.several_lookups = lookup.iter().map(|q| lookup_test_count(q)).sum::<usize>() > 1;
            for q in &lookup {
                self.lookup_tests_for(q);
            }
            self.several_lookups = outer;
            let p = expr::and(lookup.iter().map(|q| self.pred(q, false)).collect());
            self.where_line(p, span);
        }
    }

    fn where_line(&mut self, p: P, span: Span) {
        match p {
            P::Const(true) => {}
            P::Const(false) => {
                self.error(
                    Code::Untranslatable,
                    Some(span),
                    "nothing is left of this condition in ES|QL: the query would match no event"
                        .to_string(),
                );
                self.push("WHERE FALSE");
            }
            P::E(e) => self.push(format!("WHERE {}", e.text)),
        }
    }

    /// An expression as a column value (`NULL`, said, when it cannot be written).
    pub fn value_or_null(&mut self, value: &Scalar, what: &str) -> E {
        // Inside a value, a field Elastic does not have is null (said), not the end of
        // the whole value.
        let outer = std::mem::replace(&mut self.missing_is_null, true);
        let r = self.scalar(value);
        self.missing_is_null = outer;
        match r {
            Ok(e) => e,
            Err(why) => {
                let code = why.code();
                self.warn(
                    code,
                    self.here,
                    format!("{what}: {}; it is NULL in this translation", why.message()),
                );
                E::null()
            }
        }
    }

    fn compute(&mut self, columns: &[Assign]) {
        let mut items = vec![];
        for a in columns {
            if let Some(item) = self.assign(a) {
                items.push(item);
            }
        }
        if !items.is_empty() {
            self.push(format!("EVAL {}", items.join(", ")));
        }
    }

    /// `name = value` for `EVAL`, updating the scope; `None` when nothing needs writing
    /// (`extend X = tostring(X)` of a keyword field).
    fn assign(&mut self, a: &Assign) -> Option<String> {
        let what = format!("`{}`", a.name);
        let same_column = |s: &Scalar| matches!(s, Scalar::Field { path } if path.path.is_empty() && path.column == a.name);
        if same_column(&a.value) {
            return None;
        }
        // A path into a field (`p = parse_json(AdditionalFields)`): paths through the new
        // column read the field's parts.
        if let Some(path) = super::pred::as_path(&a.value)
            && let Some(origin) = self.source_origin(&path)
        {
            match self.scalar(&a.value) {
                Ok(e) if e.is_column() => {
                    self.scope.set(
                        &a.name,
                        Col {
                            esql: a.name.clone(),
                            ty: e.ty,
                            origin,
                            object: false,
                        },
                    );
                    return (unquote(&e.text) != a.name)
                        .then(|| format!("{} = {}", lit::ident(&a.name), e.text));
                }
                Err(Why::Object(_, esql)) => {
                    self.scope.set(
                        &a.name,
                        Col {
                            esql,
                            ty: Ty::Any,
                            origin,
                            object: true,
                        },
                    );
                    return None;
                }
                _ => {}
            }
        }
        let value = self.value_or_null(&a.value, &what);
        // `x = tostring(x)` of a keyword, `x = parse_json(x)`: the same column.
        if let Scalar::Call { args, .. } = &a.value
            && args.len() == 1
            && same_column(&args[0])
            && value.is_column()
            && self
                .field_quiet(&a.name)
                .is_some_and(|e| e.text == value.text)
        {
            return None;
        }
        self.scope.set(&a.name, computed(&a.name, value.ty));
        Some(format!("{} = {}", lit::ident(&a.name), value.text))
    }

    fn project(&mut self, columns: &[Assign]) {
        let mut evals = vec![];
        let mut keep: Vec<String> = vec![];
        let mut new_scope = Scope {
            tables: self.scope.tables.clone(),
            cols: vec![],
            open: false,
            lookup: false,
        };
        // Values are read before any is assigned (`project a = b, b = a`).
        let assigned: BTreeSet<&str> = columns
            .iter()
            .filter(|a| !matches!(&a.value, Scalar::Field { path } if path.path.is_empty() && path.column == a.name))
            .map(|a| a.name.as_str())
            .collect();
        for a in columns {
            match &a.value {
                Scalar::Field { path } if path.path.is_empty() && path.column == a.name => {
                    match self.field(path) {
                        Ok(e) if e.is_column() => {
                            let esql = unquote(&e.text);
                            let col = self.scope.get(&a.name).cloned().unwrap_or(Col {
                                esql: esql.clone(),
                                ty: e.ty,
                                origin: Origin::Source {
                                    table: self.scope.tables.first().cloned(),
                                    path: path.clone(),
                                    first_element: false,
                                },
                                object: false,
                            });
                            keep.push(lit::ident(&esql));
                            new_scope.set(&a.name, col);
                        }
                        Ok(e) => {
                            evals.push(format!("{} = {}", lit::ident(&a.name), e.text));
                            keep.push(lit::ident(&a.name));
                            new_scope.set(&a.name, computed(&a.name, e.ty));
                        }
                        Err(Why::Object(..)) => {
                            if let Some(Col { esql, .. }) = self.object_col(path) {
                                keep.push(format!("{}.*", lit::ident(&esql)));
                                new_scope.set(
                                    &a.name,
                                    Col {
                                        esql,
                                        ty: Ty::Any,
                                        origin: Origin::Source {
                                            table: self.scope.tables.first().cloned(),
                                            path: path.clone(),
                                            first_element: false,
                                        },
                                        object: true,
                                    },
                                );
                            }
                        }
                        Err(why) => {
                            let code = why.code();
                            self.warn(
                                code,
                                self.here,
                                format!("the column `{}` is left out: {}", a.name, why.message()),
                            );
                        }
                    }
                }
                value => {
                    let mut reads = BTreeSet::new();
                    scalar_columns(value, &mut reads);
                    let clash = reads
                        .iter()
                        .any(|r| r != &a.name && assigned.contains(r.as_str()));
                    if clash {
                        self.warn(
                            Code::NotTranslated,
                            self.here,
                            format!(
                                "`{}` reads a column this `project` also assigns; ES|QL assigns in order, so it may see the new value",
                                a.name
                            ),
                        );
                    }
                    let e = self.value_or_null(value, &format!("`{}`", a.name));
                    evals.push(format!("{} = {}", lit::ident(&a.name), e.text));
                    keep.push(lit::ident(&a.name));
                    let col = match value {
                        Scalar::Field { path } if e.is_column() => Col {
                            esql: a.name.clone(),
                            ty: e.ty,
                            origin: match self.scope.get(&path.column).map(|c| c.origin.clone()) {
                                Some(o) => o,
                                None => Origin::Computed,
                            },
                            object: false,
                        },
                        _ => computed(&a.name, e.ty),
                    };
                    new_scope.set(&a.name, col);
                }
            }
        }
        if !evals.is_empty() {
            self.push(format!("EVAL {}", evals.join(", ")));
        }
        if self.rule_form && !self.aggregates {
            keep.extend(["_id", "_index", "_version"].map(String::from));
        }
        dedup(&mut keep);
        if keep.is_empty() {
            keep.push("@timestamp".into());
        }
        self.push(format!("KEEP {}", keep.join(", ")));
        self.scope = new_scope;
    }

    /// The column of an object-valued field (for `KEEP field.*`).
    fn object_col(&self, path: &FieldPath) -> Option<Col> {
        if let Some(c) = self.scope.get(&path.column)
            && c.object
        {
            return Some(c.clone());
        }
        for t in &self.scope.tables {
            if let Field::Mapped { name, .. } = self.source_field(t, path, false) {
                return Some(Col {
                    esql: name,
                    ty: Ty::Any,
                    origin: Origin::Computed,
                    object: true,
                });
            }
        }
        None
    }

    /// The ES|QL names of columns matching `project-away`/`project-keep` patterns.
    fn pattern_columns(&mut self, patterns: &[String]) -> Vec<(String, String)> {
        let mut out = vec![];
        for pattern in patterns {
            if pattern.contains('*') {
                let names: Vec<(String, String)> = self
                    .scope
                    .cols
                    .iter()
                    .filter(|(n, _)| wildcard(pattern, n))
                    .map(|(n, c)| (n.clone(), c.esql.clone()))
                    .collect();
                out.extend(names);
            } else if let Ok(e) = self.field(&FieldPath::column(pattern.clone()))
                && e.is_column()
            {
                out.push((pattern.clone(), unquote(&e.text)));
            }
        }
        out
    }

    fn drop_columns(&mut self, patterns: &[String]) {
        let cols = self.pattern_columns(patterns);
        if cols.is_empty() {
            return;
        }
        let mut names: Vec<String> = cols.iter().map(|(_, e)| lit::ident(e)).collect();
        dedup(&mut names);
        self.push(format!("DROP {}", names.join(", ")));
        for (n, _) in cols {
            self.scope.cols.retain(|(k, _)| k != &n);
        }
    }

    fn keep_patterns(&mut self, patterns: &[String]) {
        let cols = self.pattern_columns(patterns);
        let assigns: Vec<Assign> = cols
            .iter()
            .map(|(n, _)| Assign {
                name: n.clone(),
                value: Scalar::Field {
                    path: FieldPath::column(n.clone()),
                },
            })
            .collect();
        if patterns.iter().any(|p| p.contains('*')) && self.scope.open {
            self.warn(
                Code::NotTranslated,
                self.here,
                format!(
                    "`project-keep {}`: only the columns known at this point are kept",
                    patterns.join(", ")
                ),
            );
        }
        self.project(&assigns);
    }

    fn rename(&mut self, renames: &[Rename]) {
        let mut items = vec![];
        for r in renames {
            match self.field(&FieldPath::column(r.old.clone())) {
                Ok(e) if e.is_column() => {
                    items.push(format!("{} AS {}", e.text, lit::ident(&r.new)));
                    let mut col = self
                        .scope
                        .get(&r.old)
                        .cloned()
                        .unwrap_or_else(|| computed(&r.new, e.ty));
                    col.esql = r.new.clone();
                    self.scope.cols.retain(|(n, _)| n != &r.old);
                    self.scope.set(&r.new, col);
                }
                Ok(_) | Err(_) => self.warn(
                    Code::NotTranslated,
                    self.here,
                    format!(
                        "`{}` cannot be renamed: it is not a column in Elastic",
                        r.old
                    ),
                ),
            }
        }
        if !items.is_empty() {
            self.push(format!("RENAME {}", items.join(", ")));
        }
    }

    fn sort(&mut self, keys: &[SortKey]) {
        let mut items = vec![];
        for k in keys {
            let e = match self.scalar(&k.value) {
                Ok(e) => e,
                Err(why) => {
                    self.warn(
                        Code::NotTranslated,
                        self.here,
                        format!("a sort key is left out: {}", why.message()),
                    );
                    continue;
                }
            };
            let e = if e.is_column() {
                e
            } else {
                let name = self.fresh("sort_key");
                self.push(format!("EVAL {} = {}", lit::ident(&name), e.text));
                E::column(&name, e.ty)
            };
            // KQL puts nulls first ascending and last descending; ES|QL the opposite
            // by default. Counts are never null, so their order needs no clause.
            let nulls_first = k.nulls_first.unwrap_or(!k.descending);
            let default_first = k.descending;
            let never_null = e.text == "@timestamp"
                || self.scope.cols.iter().any(|(_, c)| {
                    lit::ident(&c.esql) == e.text
                        && c.origin == Origin::Computed
                        && c.ty == Ty::Num
                        && self.aggregates
                });
            let nulls = if nulls_first == default_first || never_null {
                ""
            } else if nulls_first {
                " NULLS FIRST"
            } else {
                " NULLS LAST"
            };
            let order = if k.descending { " DESC" } else { " ASC" };
            items.push(format!("{}{order}{nulls}", e.text));
        }
        if !items.is_empty() {
            self.push(format!("SORT {}", items.join(", ")));
        }
    }

    fn distinct(&mut self, columns: &[Assign], span: Span) {
        if columns.is_empty() {
            if self.scope.open {
                self.error(
                    Code::Untranslatable,
                    Some(span),
                    "`distinct *` over all columns: the columns are not known here".into(),
                );
                return;
            }
            let keys: Vec<GroupKey> = self
                .scope
                .cols
                .iter()
                .map(|(n, _)| GroupKey {
                    name: n.clone(),
                    value: Scalar::Field {
                        path: FieldPath::column(n.clone()),
                    },
                })
                .collect();
            self.aggregate(&keys, &[], None, span, &[]);
            return;
        }
        let keys: Vec<GroupKey> = columns
            .iter()
            .map(|a| GroupKey {
                name: a.name.clone(),
                value: a.value.clone(),
            })
            .collect();
        self.aggregate(&keys, &[], None, span, &[]);
    }

    fn expand(&mut self, columns: &[ExpandColumn], limit: Option<i64>, span: Span, rest: &[Stage]) {
        if columns.len() > 1 {
            self.warn(
                Code::NotTranslated,
                Some(span),
                "`mv-expand` of several arrays pairs their elements; ES|QL's MV_EXPAND expands one column at a time, which gives every combination".into(),
            );
        }
        if limit.is_some() {
            self.warn(
                Code::NotTranslated,
                Some(span),
                "`mv-expand limit` has no ES|QL equivalent: every element is expanded".into(),
            );
        }
        for c in columns {
            // An array Elastic keeps as `field.0`, `field.1`...
            if let Scalar::Field { path } = &c.value
                && path.path.is_empty()
                && self.scope.get(&path.column).is_none()
                && self.scope.open
            {
                let indexed = self.scope.tables.iter().find_map(|t| {
                    self.raw_mapping(t, &path.column)
                        .filter(|m| m.contains("<i>"))
                        .map(|m| (t.clone(), m))
                });
                if let Some((table, pattern)) = indexed {
                    let first = pattern.replace("<i>", "0");
                    self.warn(
                        Code::MatchesFewer,
                        Some(span),
                        format!(
                            "Elastic keeps the elements of `{}` as `{}`: ES|QL cannot expand them, so only the first element (`{}`) is examined and events whose match is in a later element are missed",
                            path.column,
                            pattern.trim_end_matches(".*"),
                            first.trim_end_matches(".*")
                        ),
                    );
                    self.scope.set(
                        &c.name,
                        Col {
                            esql: first.trim_end_matches(".*").to_string(),
                            ty: Ty::Any,
                            origin: Origin::Source {
                                table: Some(table),
                                path: path.clone(),
                                first_element: true,
                            },
                            object: true,
                        },
                    );
                    continue;
                }
            }
            // An array of objects whose properties are read later: Elastic keeps each
            // property as a multi-valued field, which MV_EXPAND expands.
            if let Some(path) = super::pred::as_path(&c.value)
                && let Some(origin) = self.source_origin(&path)
            {
                let props = property_paths(rest, &c.name);
                if let Some(first) = props.first() {
                    let mut full = path.clone();
                    full.path.extend(first.iter().cloned());
                    if let Ok(e) = self.field(&full)
                        && e.is_column()
                    {
                        if props.len() > 1 {
                            let shown: Vec<String> = props
                                .iter()
                                .map(|p| {
                                    let mut f = FieldPath::column(c.name.clone());
                                    f.path = p.clone();
                                    format!("`{}`", f.dotted())
                                })
                                .collect();
                            self.warn(
                                Code::NotTranslated,
                                Some(span),
                                format!(
                                    "`mv-expand {}` is followed by {}: Elastic keeps each property of the array's objects as its own multi-valued field, so ES|QL expands {} and the others hold the values of every element, not of the same one",
                                    c.name,
                                    shown.join(", "),
                                    shown[0]
                                ),
                            );
                        }
                        self.push(format!("MV_EXPAND {}", e.text));
                        self.scope.set(
                            &c.name,
                            Col {
                                esql: unquote(&e.text),
                                ty: Ty::Any,
                                origin,
                                object: true,
                            },
                        );
                        continue;
                    }
                }
            }
            let e = self.value_or_null(&c.value, &format!("`mv-expand {}`", c.name));
            let name = if e.is_column() && c.name == unquote(&e.text) {
                c.name.clone()
            } else if e.is_column()
                && matches!(&c.value, Scalar::Field { path } if path.column == c.name && path.path.is_empty())
            {
                unquote(&e.text)
            } else {
                self.push(format!("EVAL {} = {}", lit::ident(&c.name), e.text));
                c.name.clone()
            };
            self.push(format!("MV_EXPAND {}", lit::ident(&name)));
            let mut ty = e.ty;
            if let Some(t) = c.to_type {
                let (f, t2) = conversion(t);
                if let Some(f) = f {
                    self.push(format!("EVAL {0} = {f}({0})", lit::ident(&name)));
                    ty = t2;
                }
            }
            let mut col = self
                .scope
                .get(&c.name)
                .cloned()
                .unwrap_or_else(|| computed(&name, ty));
            col.esql = name;
            col.ty = ty;
            self.scope.set(&c.name, col);
        }
    }

    fn parse(
        &mut self,
        source: &Scalar,
        kind: ParseKind,
        pattern: &[ParsePiece],
        drop_unmatched: bool,
        span: Span,
    ) {
        let e = self.value_or_null(source, "the text `parse` reads");
        let input = if e.is_column() {
            e.text.clone()
        } else {
            let name = self.fresh("parse_input");
            self.push(format!("EVAL {} = {}", lit::ident(&name), e.text));
            lit::ident(&name)
        };
        let mut text = String::new();
        let mut captures = vec![];
        for piece in pattern {
            match piece {
                ParsePiece::Text { text: t } => {
                    if kind == ParseKind::Regex {
                        text.push_str(t);
                    } else if t.contains("%{") || t.contains('%') && t.contains('{') {
                        self.error(
                            Code::Untranslatable,
                            Some(span),
                            format!(
                                "the `parse` text `{t}` cannot be written as a DISSECT pattern"
                            ),
                        );
                        return;
                    } else {
                        text.push_str(t);
                    }
                }
                ParsePiece::Skip => {
                    if kind == ParseKind::Regex {
                        text.push_str(".*?");
                    } else {
                        text.push_str("%{?}");
                    }
                }
                ParsePiece::Capture { name, ty } => {
                    if kind == ParseKind::Regex {
                        let body = match ty {
                            Some(Type::Int | Type::Long) => "-?[0-9]+",
                            Some(Type::Real | Type::Decimal) => "-?[0-9.]+",
                            _ => ".*?",
                        };
                        text.push_str(&format!("(?<{}>{body})", grok_name(name)));
                    } else {
                        text.push_str(&format!("%{{{}}}", grok_name(name)));
                    }
                    captures.push((name.clone(), *ty));
                }
            }
        }
        let command = if kind == ParseKind::Regex {
            "GROK"
        } else {
            "DISSECT"
        };
        self.push(format!("{command} {input} {}", lit::string(&text)));
        let mut converts = vec![];
        for (name, ty) in &captures {
            let g = grok_name(name);
            let mut col_ty = Ty::Str;
            if let Some(t) = ty
                && let (Some(f), t2) = conversion(*t)
            {
                converts.push(format!("{} = {f}({})", lit::ident(name), lit::ident(&g)));
                col_ty = t2;
            } else if &g != name {
                converts.push(format!("{} = {}", lit::ident(name), lit::ident(&g)));
            }
            self.scope.set(name, computed(name, col_ty));
        }
        if !converts.is_empty() {
            self.push(format!("EVAL {}", converts.join(", ")));
        }
        if kind == ParseKind::Regex || captures.iter().any(|(n, _)| grok_name(n) != *n) {
            self.warn(
                Code::NotTranslated,
                Some(span),
                format!(
                    "`parse{}` is written as {command}, whose pattern language differs in details (greediness, anchoring): check the extracted columns",
                    if kind == ParseKind::Regex { " kind=regex" } else { "" }
                ),
            );
        }
        if drop_unmatched && let Some((first, _)) = captures.first() {
            self.push(format!("WHERE {} IS NOT NULL", lit::ident(first)));
        }
    }

    /// The columns the rest of a pipeline reads from its input (not ones it computes
    /// first), with the alert's entity and detail columns when no later step chooses
    /// the output columns.
    pub fn inputs_of(&self, rest: &[Stage]) -> BTreeSet<String> {
        let mut defined = BTreeSet::new();
        let mut out = BTreeSet::new();
        let mut closed = false;
        for s in rest {
            let (refs, closing) = stage_refs(s);
            out.extend(refs.into_iter().filter(|r| !defined.contains(r)));
            defined.extend(stage_defs(s));
            if closing {
                closed = true;
                break;
            }
        }
        if !closed {
            out.extend(
                self.alert_columns()
                    .into_iter()
                    .filter(|c| !defined.contains(c)),
            );
        }
        out.remove("*");
        out
    }

    /// Entity and custom-detail columns of the rule.
    pub fn alert_columns(&self) -> Vec<String> {
        let alert = &self.cx.detection.alert;
        let mut out = vec![];
        for e in &alert.entities {
            for (_, c) in &e.field_mappings {
                out.push(c.clone());
            }
        }
        for (_, c) in &alert.custom_details {
            out.push(c.clone());
        }
        dedup(&mut out);
        out
    }
}

/// Saved translator state.
pub struct Checkpoint {
    diags: Vec<Diagnostic>,
    lines: Vec<Line>,
    pending: Vec<String>,
    scope: Scope,
    said: BTreeSet<String>,
    lookup_tests: Vec<(usize, E)>,
    lookup_indices: Vec<String>,
    lookup_cases: Vec<(String, bool)>,
    aggregates: bool,
    list_cols: BTreeSet<String>,
}

pub fn computed(name: &str, ty: Ty) -> Col {
    Col {
        esql: name.to_string(),
        ty,
        origin: Origin::Computed,
        object: false,
    }
}

/// An identifier's name without its backquotes.
pub fn unquote(text: &str) -> String {
    match text.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
        Some(inner) => inner.replace("``", "`"),
        None => text.to_string(),
    }
}

pub fn dedup(items: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}

/// The paths into column `name` (`name.a.b`) the stages read, until `name` is
/// assigned again.
fn property_paths(stages: &[Stage], name: &str) -> Vec<Vec<PathStep>> {
    let mut out: Vec<Vec<PathStep>> = vec![];
    for s in stages {
        let mut found = vec![];
        let mut visit = |x: &Scalar| scalar_paths(x, name, &mut found);
        match s {
            Stage::Filter { predicate, .. } => predicate_paths(predicate, name, &mut found),
            Stage::Compute { columns, .. }
            | Stage::Project { columns, .. }
            | Stage::Distinct { columns, .. } => columns.iter().for_each(|a| visit(&a.value)),
            Stage::Aggregate {
                keys, aggregates, ..
            } => {
                keys.iter().for_each(|k| visit(&k.value));
                aggregates.iter().flat_map(|a| &a.args).for_each(&mut visit);
            }
            Stage::Sort { keys, .. } => keys.iter().for_each(|k| visit(&k.value)),
            Stage::Expand { columns, .. } => columns.iter().for_each(|c| visit(&c.value)),
            Stage::Parse { source, .. } => visit(source),
            _ => {}
        }
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
        if stage_defs(s).contains(name) || matches!(s, Stage::Aggregate { .. }) {
            break;
        }
    }
    out
}

fn scalar_paths(s: &Scalar, name: &str, out: &mut Vec<Vec<PathStep>>) {
    if let Some(p) = super::pred::as_path(s)
        && p.column == name
    {
        if !p.path.is_empty() {
            out.push(p.path);
        }
        return;
    }
    match s {
        Scalar::Arith { left, right, .. } => {
            scalar_paths(left, name, out);
            scalar_paths(right, name, out);
        }
        Scalar::Negate { value } => scalar_paths(value, name, out),
        Scalar::Condition { predicate } => predicate_paths(predicate, name, out),
        Scalar::Choose {
            branches,
            otherwise,
        } => {
            for (p, v) in branches {
                predicate_paths(p, name, out);
                scalar_paths(v, name, out);
            }
            scalar_paths(otherwise, name, out);
        }
        Scalar::Bin { value, size } => {
            scalar_paths(value, name, out);
            scalar_paths(size, name, out);
        }
        Scalar::Call { args, .. } => args.iter().for_each(|a| scalar_paths(a, name, out)),
        Scalar::Element { value, index } => {
            scalar_paths(value, name, out);
            scalar_paths(index, name, out);
        }
        _ => {}
    }
}

fn predicate_paths(p: &Predicate, name: &str, out: &mut Vec<Vec<PathStep>>) {
    match p {
        Predicate::And { all } => all.iter().for_each(|q| predicate_paths(q, name, out)),
        Predicate::Or { any } => any.iter().for_each(|q| predicate_paths(q, name, out)),
        Predicate::Constant { .. } => {}
        Predicate::Compare { left, right, .. } => {
            scalar_paths(left, name, out);
            scalar_paths(right, name, out);
        }
        Predicate::Text { value, pattern, .. } => {
            scalar_paths(value, name, out);
            scalar_paths(pattern, name, out);
        }
        Predicate::Range {
            value, low, high, ..
        } => {
            scalar_paths(value, name, out);
            scalar_paths(low, name, out);
            scalar_paths(high, name, out);
        }
        Predicate::Regex { value, .. }
        | Predicate::InList { value, .. }
        | Predicate::InQuery { value, .. }
        | Predicate::Cidr { value, .. }
        | Predicate::PrivateIp { value, .. }
        | Predicate::Empty { value, .. }
        | Predicate::Expr { value, .. } => scalar_paths(value, name, out),
    }
}

/// The columns a stage reads, and whether it chooses the output columns.
pub fn stage_refs(stage: &Stage) -> (BTreeSet<String>, bool) {
    let mut out = BTreeSet::new();
    let closing = match stage {
        Stage::Filter { predicate, .. } => {
            predicate_columns(predicate, &mut out);
            false
        }
        Stage::Compute { columns, .. } => {
            columns
                .iter()
                .for_each(|a| scalar_columns(&a.value, &mut out));
            false
        }
        Stage::Project { columns, .. } | Stage::Distinct { columns, .. } => {
            columns
                .iter()
                .for_each(|a| scalar_columns(&a.value, &mut out));
            !columns.is_empty()
        }
        Stage::Aggregate {
            keys,
            aggregates,
            having,
            ..
        } => {
            keys.iter().for_each(|k| scalar_columns(&k.value, &mut out));
            for a in aggregates {
                a.args.iter().for_each(|s| scalar_columns(s, &mut out));
                if let Some(c) = &a.condition {
                    predicate_columns(c, &mut out);
                }
            }
            let _ = having;
            // `arg_max(t, *)` passes every column through.
            !aggregates
                .iter()
                .any(|a| a.args.iter().any(|x| matches!(x, Scalar::AllColumns)))
        }
        Stage::Count { .. } => true,
        Stage::Keep { columns, .. } => {
            out.extend(columns.iter().filter(|c| !c.contains('*')).cloned());
            !columns.iter().any(|c| c.contains('*'))
        }
        Stage::Sort { keys, .. } => {
            keys.iter().for_each(|k| scalar_columns(&k.value, &mut out));
            false
        }
        Stage::Top { key, .. } => {
            scalar_columns(&key.value, &mut out);
            false
        }
        Stage::Expand { columns, .. } => {
            columns
                .iter()
                .for_each(|c| scalar_columns(&c.value, &mut out));
            false
        }
        Stage::Parse { source, .. } => {
            scalar_columns(source, &mut out);
            false
        }
        Stage::Rename { renames, .. } => {
            out.extend(renames.iter().map(|r| r.old.clone()));
            false
        }
        Stage::Join { keys, .. } => {
            out.extend(keys.iter().map(|k| k.left.clone()));
            false
        }
        Stage::Drop { .. }
        | Stage::Reorder { .. }
        | Stage::Limit { .. }
        | Stage::UnresolvedInvoke { .. }
        | Stage::Unsupported(_) => false,
    };
    (out, closing)
}

/// The columns a stage makes.
pub fn stage_defs(stage: &Stage) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match stage {
        Stage::Compute { columns, .. } => out.extend(columns.iter().map(|a| a.name.clone())),
        Stage::Project { columns, .. } | Stage::Distinct { columns, .. } => out.extend(
            columns
                .iter()
                .filter(|a| !matches!(&a.value, Scalar::Field { path } if path.path.is_empty() && path.column == a.name))
                .map(|a| a.name.clone()),
        ),
        Stage::Aggregate {
            keys, aggregates, ..
        } => {
            out.extend(keys.iter().map(|k| k.name.clone()));
            for a in aggregates {
                out.insert(a.name.clone());
                out.extend(a.names.iter().cloned());
            }
        }
        Stage::Count { .. } => {
            out.insert("Count".into());
        }
        Stage::Rename { renames, .. } => out.extend(renames.iter().map(|r| r.new.clone())),
        Stage::Expand { columns, .. } => out.extend(
            columns
                .iter()
                .filter(|c| !matches!(&c.value, Scalar::Field { path } if path.path.is_empty() && path.column == c.name))
                .map(|c| c.name.clone()),
        ),
        Stage::Parse { pattern, .. } => out.extend(pattern.iter().filter_map(|p| match p {
            ParsePiece::Capture { name, .. } => Some(name.clone()),
            _ => None,
        })),
        _ => {}
    }
    out
}

/// How many membership tests against a lookup index a condition has.
pub fn lookup_test_count(p: &Predicate) -> usize {
    match p {
        Predicate::And { all } => all.iter().map(lookup_test_count).sum(),
        Predicate::Or { any } => any.iter().map(lookup_test_count).sum(),
        Predicate::InQuery { query, .. } => usize::from(super::join::reads_lookup(query)),
        _ => 0,
    }
}

/// Does a condition test membership in a watchlist?
fn has_watchlist_test(p: &Predicate) -> bool {
    match p {
        Predicate::And { all } => all.iter().any(has_watchlist_test),
        Predicate::Or { any } => any.iter().any(has_watchlist_test),
        Predicate::InQuery { query, .. } => super::join::reads_lookup(query),
        _ => false,
    }
}

/// Tables whose columns Elastic stores like another table's.
const INHERITS: &[(&str, &str)] = &[("AADNonInteractiveUserSignInLogs", "SigninLogs")];

/// Does the mapping keep the JSON keys of a column as they are (AuditLogs'
/// `initiated_by.user.userPrincipalName`) rather than in snake_case?
fn keeps_json_keys(mapping: &crate::mapping::TableMapping, column: &str) -> bool {
    let prefix = format!("{column}.");
    mapping.fields.iter().any(|(k, f)| {
        k.starts_with(&prefix)
            && f.elastic
                .as_ref()
                .and_then(|e| e.as_ref())
                .is_some_and(|e| {
                    let last = k.rsplit('.').next().unwrap_or_default();
                    last.chars().any(|c| c.is_ascii_uppercase()) && e.ends_with(last)
                })
    })
}

/// A mapped name made usable: `.*` marks an object, `<i>` takes the element index;
/// anything still not a field name (`a/b`, `x{}`) is not a field.
fn clean_mapped(name: &str, index: Option<i64>, path: &FieldPath) -> Field {
    let mut name = name.to_string();
    let mut object = false;
    if let Some(n) = name.strip_suffix(".*") {
        name = n.to_string();
        object = true;
    }
    if name.contains("<i>") {
        match index {
            Some(i) => name = name.replace("<i>", &i.to_string()),
            None => {
                return Field::Unmapped {
                    name: path.dotted(),
                    why: Some(format!(
                        "Elastic keeps it as an array `{name}`: name an element (`[0]`) or mv-expand it"
                    )),
                };
            }
        }
    }
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@".contains(c));
    if plain {
        Field::Mapped { name, object }
    } else {
        Field::Unmapped {
            name: path.dotted(),
            why: Some(format!(
                "the mapping gives `{name}`, which is not a single field"
            )),
        }
    }
}

/// The type an Elastic field most likely has (ECS conventions and the fields the
/// embedded mapping uses); keyword unless known.
pub fn field_type(name: &str) -> Ty {
    let last = name.rsplit('.').next().unwrap_or(name);
    if name == "@timestamp" || name.ends_with("_datetime") || name.ends_with(".created_at") {
        return Ty::Date;
    }
    if last == "ip" || name.ends_with(".ip") {
        return Ty::Ip;
    }
    const NUMERIC: &[&str] = &[
        "azure.signinlogs.properties.status.error_code",
        "azure.signinlogs.properties.autonomous_system_number",
        "azure.signinlogs.properties.processing_time_ms",
        "event.duration",
        "event.severity",
        "log.syslog.facility.code",
        "log.syslog.severity.code",
    ];
    if NUMERIC.contains(&name) || matches!(last, "port" | "pid" | "bytes" | "packets") {
        return Ty::Num;
    }
    const BOOLEAN: &[&str] = &[
        "azure.signinlogs.properties.is_interactive",
        "azure.signinlogs.properties.device_detail.is_compliant",
        "azure.signinlogs.properties.device_detail.is_managed",
        "entityanalytics_entra_id.user.account_enabled",
    ];
    if BOOLEAN.contains(&name) {
        return Ty::Bool;
    }
    Ty::Str
}

/// Multi-valued ECS fields: comparing them with `==` is null when a document has
/// several values.
pub fn multi_valued(name: &str) -> bool {
    matches!(name, "event.type" | "event.category" | "tags") || name.starts_with("related.")
}

/// An index pattern standing for a table kqlc has no index for, in the form of the
/// Elastic integrations' data streams (`logs-sentinel.devicenetworkevents-*`, dataset
/// `sentinel.devicenetworkevents`), so that its rows can still be told apart.
pub fn placeholder_index(table: &str) -> String {
    let name: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("logs-sentinel.{name}-*")
}

/// `event.dataset == "x"` for an index pattern `logs-x-*` (what the Elastic
/// integrations set on every document of the data stream).
fn dataset_filter(index: &str) -> Option<P> {
    let patterns: Vec<&str> = index.split(',').map(str::trim).collect();
    let mut parts = vec![];
    for p in patterns {
        let rest = p.strip_prefix("logs-")?;
        let dataset = field_dataset(rest)?;
        let field = E::column("event.dataset", Ty::Str);
        parts.push(P::E(if dataset.contains('*') {
            expr::matches(&field, "LIKE", &dataset, false)
        } else {
            expr::cmp(&field, "==", &E::string(&dataset))
        }));
    }
    Some(expr::or(parts))
}

fn field_dataset(rest: &str) -> Option<String> {
    if let Some(d) = rest.strip_suffix("-*") {
        return (!d.is_empty()).then(|| d.to_string());
    }
    if rest.ends_with('*') {
        return Some(rest.to_string());
    }
    None
}

/// KQL `like`-free wildcard matching for `project-away`/`project-keep` patterns.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

/// The conversion function for a KQL type, and the resulting type.
pub fn conversion(t: Type) -> (Option<&'static str>, Ty) {
    match t {
        Type::Int => (Some("TO_INTEGER"), Ty::Num),
        Type::Long => (Some("TO_LONG"), Ty::Num),
        Type::Real | Type::Decimal => (Some("TO_DOUBLE"), Ty::Num),
        Type::Bool => (Some("TO_BOOLEAN"), Ty::Bool),
        Type::DateTime => (Some("TO_DATETIME"), Ty::Date),
        Type::String | Type::Guid => (Some("TO_STRING"), Ty::Str),
        Type::Dynamic | Type::TimeSpan => (None, Ty::Any),
    }
}

/// A GROK/DISSECT capture name (letters, digits and `_`).
fn grok_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.starts_with(|c: char| c.is_ascii_alphabetic()) {
        n
    } else {
        format!("c{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_kql_column_patterns() {
        assert!(wildcard("Tenant*", "TenantId"));
        assert!(wildcard("*Id", "TenantId"));
        assert!(wildcard("T*n*d", "TenantId"));
        assert!(!wildcard("Tenant*", "Id"));
        assert!(wildcard("exact", "exact"));
    }

    #[test]
    fn datasets_come_from_integration_index_patterns() {
        assert_eq!(
            dataset_filter("logs-cisco_asa.log-*").map(|p| p.expr().text),
            Some("event.dataset == \"cisco_asa.log\"".to_string())
        );
        assert!(dataset_filter("my-index").is_none());
    }
}
