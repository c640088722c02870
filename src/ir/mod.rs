//! Stage 3: the detection IR. What a rule detects, independent of KQL syntax: where the
//! events come from, which of them match, what is computed and aggregated, and when an
//! alert fires. Plain typed data; built by [`crate::normalize`], read by the targets.
//!
//! A query is a [`Pipeline`]: a [`Source`] followed by [`Stage`]s, the shape every target
//! language shares (SPL, ES|QL and KQL are pipelines; a Sigma rule is a source with
//! filters, plus correlations for what follows).

pub mod visit;

use serde::Serialize;

/// Where a construct is in the query text (byte offsets), for diagnostics. Equal to every
/// other span and never serialised, so it does not change what IR values compare as.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

/// Everything kqlc knows about one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub query: Pipeline,
    pub alert: Alert,
}

/// A tabular computation: a source and the stages applied to it, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipeline {
    pub source: Source,
    pub stages: Vec<Stage>,
}

/// Where rows come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    /// A table (or a workspace function the rule calls by bare name, which reads like one).
    Table {
        name: String,
        /// `TimeGenerated > ago(1h)` (or `>=`) found right after the table: the query window.
        #[serde(skip_serializing_if = "Option::is_none")]
        window: Option<Window>,
        #[serde(skip)]
        at: Span,
    },
    /// Several inputs in one stream (`union`).
    Union {
        inputs: Vec<Pipeline>,
        /// `isfuzzy=true`: missing tables are ignored.
        fuzzy: bool,
        /// `withsource=Name`: a column naming each row's table.
        #[serde(skip_serializing_if = "Option::is_none")]
        source_column: Option<String>,
        /// `kind=inner`: only the columns all inputs share.
        #[serde(skip_serializing_if = "is_false", default)]
        inner: bool,
    },
    /// A Sentinel watchlist (`_GetWatchlist('name')`): a lookup table.
    Watchlist { name: String },
    /// Inline rows (`datatable`).
    Inline {
        columns: Vec<Column>,
        rows: Vec<Vec<Value>>,
    },
    /// Rows read from URLs (`externaldata`).
    External {
        columns: Vec<Column>,
        uris: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        options: Vec<(String, Value)>,
    },
    /// A function defined outside the query (a workspace function) that was not supplied
    /// with `--functions`.
    UnresolvedFunction { name: String, args: Vec<Scalar> },
    /// A source the IR cannot express; `kql` holds the original text.
    Unsupported(Unsupported),
}

/// The period a rule looks back over (whole seconds: a sub-second `ago()` stays a filter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The time column compared (`TimeGenerated`, `Timestamp`).
    pub column: String,
    pub seconds: i64,
    /// `>=` rather than `>`.
    pub inclusive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: Type,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    Bool,
    DateTime,
    Decimal,
    Dynamic,
    Guid,
    Int,
    Long,
    Real,
    String,
    TimeSpan,
}

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Keep the rows where the predicate holds.
    Filter {
        predicate: Predicate,
        #[serde(skip)]
        at: Span,
    },
    /// Add (or replace) computed columns, in order (`extend`).
    Compute {
        columns: Vec<Assign>,
        #[serde(skip)]
        at: Span,
    },
    /// Keep exactly these columns, in this order, computed from the input (`project`).
    Project {
        columns: Vec<Assign>,
        #[serde(skip)]
        at: Span,
    },
    /// Remove the columns matching these patterns (`project-away`).
    Drop {
        columns: Vec<String>,
        #[serde(skip)]
        at: Span,
    },
    /// Keep the columns matching these patterns (`project-keep`).
    Keep {
        columns: Vec<String>,
        #[serde(skip)]
        at: Span,
    },
    /// `new = old` renames (`project-rename`).
    Rename {
        renames: Vec<Rename>,
        #[serde(skip)]
        at: Span,
    },
    /// Put these columns (patterns) first, in this order (`project-reorder`).
    Reorder {
        columns: Vec<String>,
        #[serde(skip)]
        at: Span,
    },
    /// Group rows and compute aggregates (`summarize`), then keep groups where `having`
    /// holds (a `where` on aggregate results right after).
    Aggregate {
        keys: Vec<GroupKey>,
        aggregates: Vec<Aggregate>,
        #[serde(skip_serializing_if = "Option::is_none")]
        having: Option<Predicate>,
        #[serde(skip)]
        at: Span,
    },
    /// Combine with another pipeline on equal keys.
    Join {
        kind: JoinKind,
        right: Pipeline,
        keys: Vec<JoinKeyPair>,
        /// Written `lookup`: the right side's key columns are not added to the output.
        #[serde(skip_serializing_if = "is_false", default)]
        lookup: bool,
        #[serde(skip)]
        at: Span,
    },
    /// One row per element of a dynamic array (or property bag) column (`mv-expand`).
    Expand {
        columns: Vec<ExpandColumn>,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<i64>,
        /// `with_itemindex=Name`: a column holding each element's position.
        #[serde(skip_serializing_if = "Option::is_none")]
        item_index: Option<String>,
        /// `bagexpansion=array` (or `kind=array`): a property bag's entries become
        /// `[key, value]` arrays rather than one-entry bags.
        #[serde(skip_serializing_if = "is_false", default)]
        bag_as_array: bool,
        #[serde(skip)]
        at: Span,
    },
    /// Extract columns from a string (`parse`, `parse-where`).
    Parse {
        source: Scalar,
        kind: ParseKind,
        pattern: Vec<ParsePiece>,
        /// `parse-where`: rows that do not match are dropped.
        drop_unmatched: bool,
        #[serde(skip)]
        at: Span,
    },
    Sort {
        keys: Vec<SortKey>,
        #[serde(skip)]
        at: Span,
    },
    /// At most this many rows (`take`).
    Limit {
        count: i64,
        #[serde(skip)]
        at: Span,
    },
    /// The first `count` rows by a key (`top`).
    Top {
        count: i64,
        key: SortKey,
        #[serde(skip)]
        at: Span,
    },
    /// Distinct rows over these columns (all columns when empty).
    Distinct {
        columns: Vec<Assign>,
        #[serde(skip)]
        at: Span,
    },
    /// One row holding the number of rows (`count`).
    Count {
        #[serde(skip)]
        at: Span,
    },
    /// A function defined outside the query, applied to the rows (`invoke F()`), that was
    /// not supplied with `--functions`.
    UnresolvedInvoke {
        name: String,
        args: Vec<Scalar>,
        #[serde(skip)]
        at: Span,
    },
    /// A stage the IR cannot express; `kql` holds the original text so the KQL target
    /// can still print it.
    Unsupported(Unsupported),
}

/// Something the IR does not model, with where it was and its KQL text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsupported {
    /// What it is, in a few words (`make-series`, `evaluate autocluster`).
    pub construct: String,
    pub kql: String,
    /// Byte range in the query text.
    pub span: (u32, u32),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assign {
    pub name: String,
    pub value: Scalar,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rename {
    pub new: String,
    pub old: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupKey {
    pub name: String,
    pub value: Scalar,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    pub name: String,
    /// `(A, B) = arg_max(T, X)`: names for each output column, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    pub function: AggregateFunction,
    /// The aggregated expressions (`dcount(x)`: `[x]`; `arg_max(t, *)`: `[t, *]`).
    pub args: Vec<Scalar>,
    /// `make_set(x, 10)`: the size limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// `countif(p)`, `dcountif(x, p)`: only rows where this holds count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Predicate>,
    #[serde(skip)]
    pub at: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFunction {
    Count,
    DistinctCount,
    Sum,
    Avg,
    Min,
    Max,
    /// `make_set`: distinct values.
    MakeSet,
    /// `make_list`: all values.
    MakeList,
    /// `arg_max(by, cols...)`: the row with the largest `by`.
    ArgMax,
    ArgMin,
    /// `any`/`take_any`: some value.
    Any,
    /// Any other aggregate, by name.
    Other(String),
    /// An expression over aggregates (`round(avg(x), 2)`, `count() * 2`): `args[0]` holds
    /// it, with the aggregate calls as `Scalar::Call`s.
    Expression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinKind {
    /// KQL's default: the left side de-duplicated on the keys, then inner.
    InnerUnique,
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
    /// Left rows with a match (columns of the left only).
    LeftSemi,
    /// Left rows without a match.
    LeftAnti,
    RightSemi,
    RightAnti,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinKeyPair {
    pub left: String,
    pub right: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpandColumn {
    pub name: String,
    pub value: Scalar,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_type: Option<Type>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParseKind {
    Simple,
    Regex,
    Relaxed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "piece", rename_all = "snake_case")]
pub enum ParsePiece {
    Text {
        text: String,
    },
    Skip,
    Capture {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        ty: Option<Type>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SortKey {
    pub value: Scalar,
    pub descending: bool,
    /// Where empty values go; `None`: the engine's default for the order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nulls_first: Option<bool>,
}

/// A condition on a row. Negation sits on the leaves (`negated`); `And`/`Or` are flat.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "predicate", rename_all = "snake_case")]
pub enum Predicate {
    And {
        all: Vec<Predicate>,
    },
    Or {
        any: Vec<Predicate>,
    },
    /// Always true or always false (after folding constants).
    Constant {
        value: bool,
    },
    /// `a == b`, `a < b`, `a =~ b`...: two values compared.
    Compare {
        left: Scalar,
        op: CompareOp,
        right: Scalar,
        /// For strings; `=~`/`!~` are case-insensitive.
        case_sensitive: bool,
        #[serde(skip)]
        at: Span,
    },
    /// A string test: term, substring, prefix, suffix, `like` (the pattern is a constant
    /// string in almost every rule, but may be a column).
    Text {
        value: Scalar,
        test: TextTest,
        pattern: Scalar,
        case_sensitive: bool,
        negated: bool,
        #[serde(skip)]
        at: Span,
    },
    /// `matches regex` (RE2, unanchored, case-sensitive unless the pattern says `(?i)`).
    Regex {
        value: Scalar,
        pattern: String,
        negated: bool,
        #[serde(skip)]
        at: Span,
    },
    /// `in`/`!in`/`in~`/`!in~` with constants, or `has_any`/`has_all`.
    InList {
        value: Scalar,
        list: Vec<Value>,
        test: ListTest,
        case_sensitive: bool,
        negated: bool,
        #[serde(skip)]
        at: Span,
    },
    /// `x in (T | project c)`: membership in another pipeline's column (a semi-join);
    /// a watchlist when the pipeline reads one. `has_any (T | ...)` tests terms.
    InQuery {
        value: Scalar,
        query: Box<Pipeline>,
        column: String,
        test: ListTest,
        case_sensitive: bool,
        negated: bool,
        #[serde(skip)]
        at: Span,
    },
    /// `x between (low .. high)`.
    Range {
        value: Scalar,
        low: Scalar,
        high: Scalar,
        negated: bool,
        #[serde(skip)]
        at: Span,
    },
    /// `ipv4_is_in_range(x, "10.0.0.0/8")`, `ipv4_is_in_any_range(...)`.
    Cidr {
        value: Scalar,
        ranges: Vec<String>,
        negated: bool,
        #[serde(skip)]
        at: Span,
    },
    /// `ipv4_is_private(x)`: RFC 1918 ranges.
    PrivateIp {
        value: Scalar,
        negated: bool,
        #[serde(skip)]
        at: Span,
    },
    /// `isempty(x)` (null or "") / `isnotempty(x)`, `isnull`/`isnotnull`.
    Empty {
        value: Scalar,
        /// `isnull` tests only null; `isempty` tests null or empty.
        null_only: bool,
        negated: bool,
        #[serde(skip)]
        at: Span,
    },
    /// A boolean expression kqlc does not classify further (`array_length(x) > 2` is a
    /// Compare; this is for boolean functions and columns).
    Expr {
        value: Scalar,
        negated: bool,
        #[serde(skip)]
        at: Span,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextTest {
    /// A whole term (runs of letters and digits).
    Term,
    /// A term starting with.
    TermPrefix,
    /// A term ending with.
    TermSuffix,
    Substring,
    Prefix,
    Suffix,
    /// SQL `like` (`%`, `_`).
    Like,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListTest {
    /// Equal to one of the values.
    Equals,
    /// Has one of the terms.
    AnyTerm,
    /// Has all of the terms.
    AllTerms,
}

/// A value computed per row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scalar {
    /// A column, or a path into a dynamic column (`InitiatedBy.user.ipAddress`).
    Field {
        path: FieldPath,
    },
    Literal {
        value: Value,
    },
    /// `*` as an argument (`arg_max(t, *)`).
    AllColumns,
    /// Arithmetic.
    Arith {
        op: ArithOp,
        left: Box<Scalar>,
        right: Box<Scalar>,
    },
    Negate {
        value: Box<Scalar>,
    },
    /// A condition used as a value (`extend Flag = x > 5`).
    Condition {
        predicate: Box<Predicate>,
    },
    /// `iff`/`case`: the first branch whose condition holds, else `otherwise`.
    Choose {
        branches: Vec<(Predicate, Scalar)>,
        otherwise: Box<Scalar>,
    },
    /// `now()` offset by a duration (`ago(1h)` is `now - 1h`).
    Now {
        offset_seconds: f64,
    },
    /// `bin(x, size)` / `floor`: round down to a multiple.
    Bin {
        value: Box<Scalar>,
        size: Box<Scalar>,
    },
    /// Any other function, by its KQL name (`tolower`, `strcat`, `split`...).
    Call {
        function: String,
        args: Vec<Scalar>,
    },
    /// `x[0]`, `split(a, "@")[1]`: an element of an array value.
    Element {
        value: Box<Scalar>,
        index: Box<Scalar>,
    },
    /// A scalar sub-query (`toscalar(T | count)`).
    Subquery {
        query: Box<Pipeline>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// A column and a path into it: `InitiatedBy['user'].ipAddress` is column `InitiatedBy`,
/// path `user`, `ipAddress`.
///
/// `tostring(parse_json(tostring(InitiatedBy.user)).ipAddress)` is the same path, with
/// one difference kept in `decoded`: the value after `user` went through
/// `parse_json(tostring(...))`, which also parses it when it is JSON *text* (Sentinel
/// keeps some nested values as text, e.g. AuditLogs `modifiedProperties[].newValue`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FieldPath {
    pub column: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<PathStep>,
    /// Positions `i` where the value reached by `path[..i]` is decoded from JSON text
    /// (`parse_json(tostring(v))`) before the rest of the path is read.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub decoded: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum PathStep {
    Key(String),
    Index(i64),
}

/// A constant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Real(f64),
    String(String),
    /// A duration in seconds.
    TimeSpan(f64),
    /// As written in `datetime(...)`.
    DateTime(String),
    Guid(String),
    /// A dynamic array or bag, as JSON.
    Dynamic(serde_json::Value),
}

/// When the rule raises an alert, from its metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Alert {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u64>,
    /// Alert when the number of result rows compares so with the threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<crate::load::Severity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tactics: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<crate::load::EntityMapping>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_details: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Trigger {
    pub op: CompareOp,
    pub threshold: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Stage {
    /// Whether the stage works row by row, each output row made from one input row: it
    /// gives the same rows applied to a union as applied to each of its inputs.
    pub fn is_row_wise(&self) -> bool {
        matches!(
            self,
            Stage::Filter { .. }
                | Stage::Compute { .. }
                | Stage::Project { .. }
                | Stage::Drop { .. }
                | Stage::Keep { .. }
                | Stage::Rename { .. }
                | Stage::Reorder { .. }
                | Stage::Expand { .. }
                | Stage::Parse { .. }
        )
    }

    /// Where the operator this stage comes from is, in the query text.
    pub fn span(&self) -> Span {
        match self {
            Stage::Unsupported(u) => Span {
                start: u.span.0,
                end: u.span.1,
            },
            Stage::Filter { at, .. }
            | Stage::Compute { at, .. }
            | Stage::Project { at, .. }
            | Stage::Drop { at, .. }
            | Stage::Keep { at, .. }
            | Stage::Rename { at, .. }
            | Stage::Reorder { at, .. }
            | Stage::Aggregate { at, .. }
            | Stage::Join { at, .. }
            | Stage::Expand { at, .. }
            | Stage::Parse { at, .. }
            | Stage::Sort { at, .. }
            | Stage::Limit { at, .. }
            | Stage::Top { at, .. }
            | Stage::Distinct { at, .. }
            | Stage::Count { at }
            | Stage::UnresolvedInvoke { at, .. } => *at,
        }
    }
}

impl Predicate {
    /// Where the condition is in the query text (`None` for `and`/`or`/constants).
    pub fn span(&self) -> Option<Span> {
        match self {
            Predicate::And { .. } | Predicate::Or { .. } | Predicate::Constant { .. } => None,
            Predicate::Compare { at, .. }
            | Predicate::Text { at, .. }
            | Predicate::Regex { at, .. }
            | Predicate::InList { at, .. }
            | Predicate::InQuery { at, .. }
            | Predicate::Range { at, .. }
            | Predicate::Cidr { at, .. }
            | Predicate::PrivateIp { at, .. }
            | Predicate::Empty { at, .. }
            | Predicate::Expr { at, .. } => Some(*at),
        }
    }
}

impl FieldPath {
    pub fn column(name: impl Into<String>) -> FieldPath {
        FieldPath {
            column: name.into(),
            path: vec![],
            decoded: vec![],
        }
    }

    /// `a.b[0].c`, as KQL writes it.
    pub fn dotted(&self) -> String {
        let mut out = self.column.clone();
        for step in &self.path {
            match step {
                PathStep::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                PathStep::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

impl Pipeline {
    pub fn table(name: impl Into<String>, at: Span) -> Pipeline {
        Pipeline {
            source: Source::Table {
                name: name.into(),
                window: None,
                at,
            },
            stages: vec![],
        }
    }
}
