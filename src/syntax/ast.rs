//! The typed KQL syntax tree.
//!
//! Plain data: no parser types, no behaviour beyond small helpers. Every node carries a
//! [`Span`] (byte offsets into the query text); spans compare equal whatever their value,
//! so `==` on two trees compares their structure only (the round-trip test relies on it).
//!
//! Spellings that mean the same thing are one node: `filter`/`where`, `limit`/`take`,
//! `order`/`sort`, `mvexpand`/`mv-expand`, `notcontains`/`!contains`, `double`/`real`,
//! `"a" 'b'` (adjacent strings are one literal) and `a.b`/`a['b']`/`a.['b']`.

use serde::Serialize;

/// Byte range in the query text. Equality ignores it (see module docs).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Eq for Span {}

/// A whole query: statements separated by `;`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    pub statements: Vec<Statement>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "statement", rename_all = "snake_case")]
pub enum Statement {
    Let(Let),
    /// `set name [= value]` (a request property).
    Set(SetOption),
    /// `declare query_parameters(name:type [= default], ...)`.
    DeclareQueryParameters {
        params: Vec<Param>,
        span: Span,
    },
    /// A tabular (or scalar) expression whose result the query returns.
    Expr(Expr),
}

/// `let name = value`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Let {
    pub name: Ident,
    pub value: LetValue,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LetValue {
    /// A scalar or tabular value: `let t = 1h;`, `let T = SigninLogs | where ...;`.
    Expr(Expr),
    /// `(params) { body }`: a function.
    Function(Function),
    /// `view (params) { body }`: a function that `union *` also sees.
    View(Function),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Function {
    pub params: Vec<Param>,
    /// Statements of the body; the last one is the returned expression.
    pub body: Vec<Statement>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    pub name: Ident,
    pub ty: ParamType,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ParamType {
    Scalar {
        ty: ScalarType,
    },
    /// `(*)`: any table.
    AnyTable,
    /// `(Col:type, ...)`: a table with at least these columns.
    Table {
        columns: Vec<ColumnDecl>,
    },
}

/// `Name:type` in a schema (datatable, externaldata, parse-kv, tabular parameters).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDecl {
    pub name: Ident,
    pub ty: ScalarType,
}

/// KQL's scalar types, under their canonical names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalarType {
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

impl ScalarType {
    /// Every spelling KQL accepts, with the type it names.
    pub const SPELLINGS: &'static [(&'static str, ScalarType)] = &[
        ("bool", ScalarType::Bool),
        ("boolean", ScalarType::Bool),
        ("datetime", ScalarType::DateTime),
        ("date", ScalarType::DateTime),
        ("decimal", ScalarType::Decimal),
        ("dynamic", ScalarType::Dynamic),
        ("guid", ScalarType::Guid),
        ("uniqueid", ScalarType::Guid),
        ("int", ScalarType::Int),
        ("long", ScalarType::Long),
        ("real", ScalarType::Real),
        ("double", ScalarType::Real),
        ("string", ScalarType::String),
        ("timespan", ScalarType::TimeSpan),
        ("time", ScalarType::TimeSpan),
    ];

    pub fn from_name(name: &str) -> Option<ScalarType> {
        Self::SPELLINGS
            .iter()
            .find(|(spelling, _)| *spelling == name)
            .map(|(_, ty)| *ty)
    }

    pub fn name(self) -> &'static str {
        match self {
            ScalarType::Bool => "bool",
            ScalarType::DateTime => "datetime",
            ScalarType::Decimal => "decimal",
            ScalarType::Dynamic => "dynamic",
            ScalarType::Guid => "guid",
            ScalarType::Int => "int",
            ScalarType::Long => "long",
            ScalarType::Real => "real",
            ScalarType::String => "string",
            ScalarType::TimeSpan => "timespan",
        }
    }
}

/// `set name [= value]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetOption {
    pub name: String,
    pub value: Option<Expr>,
    pub span: Span,
}

/// A name as written, with `['...']` quoting removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expr {
    #[serde(flatten)]
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "expr", rename_all = "snake_case")]
pub enum ExprKind {
    Literal {
        value: Literal,
    },
    /// A column, a `let` name, a table, `$left`/`$right`.
    Name {
        name: String,
    },
    /// `*` where it stands for all columns: `arg_max(T, *)`, `* has "x"`.
    Star,
    /// `{name}`: a client-side query parameter, left for the caller to fill in.
    ClientParameter {
        name: String,
    },
    /// A table name with wildcards: `union Security*`.
    TablePattern {
        pattern: String,
    },
    /// `target.member`, `target['member']`, `target.['member']`.
    Member {
        target: Box<Expr>,
        member: String,
    },
    /// `target[index]` with a non-string index (`a[0]`, `a[-1]`, `a[i]`).
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
    },
    /// `name = value` where Kusto lets an expression be named: a call argument
    /// (`bag_unpack(x, columnsConflict='keep_source')`) or a `where` predicate. Only the
    /// value counts: `where IsBillable = true` keeps every row.
    Named {
        name: String,
        value: Box<Expr>,
    },
    /// `name(args)`.
    Call {
        name: String,
        args: Vec<Expr>,
    },
    /// `target.name(args)`, as in `cluster('c').database('d')`.
    MethodCall {
        target: Box<Expr>,
        name: String,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `a and b and c` / `a or b or c`, flattened.
    Logical {
        op: LogicalOp,
        operands: Vec<Expr>,
    },
    /// `x in (a, b)`, `x has_any (list)`: an operator whose right side is a list.
    List {
        op: ListOp,
        operand: Box<Expr>,
        items: Vec<Expr>,
    },
    /// `x between (low .. high)`, `x !between (...)`.
    Between {
        negated: bool,
        operand: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
    },
    /// `source | op | op ...`.
    Pipeline {
        source: Box<Expr>,
        operators: Vec<Operator>,
    },
    /// An operator that produces a table without input (`union`, `datatable`, `print`...),
    /// or a chain that starts with an operator (`mv-apply ... on (top 1 by x)`).
    Source {
        operator: Box<Operator>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnaryOp {
    Minus,
    Plus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogicalOp {
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    /// `==` (case-sensitive for strings).
    Eq,
    /// `!=` or `<>`.
    NotEq,
    /// `=~`: case-insensitive string equality.
    EqCi,
    /// `!~`.
    NotEqCi,
    Lt,
    Le,
    Gt,
    Ge,
    /// `has`, `!contains_cs`, `matches regex`, `like`...
    Str(StringOp),
    /// `Column:"value"` inside `search`.
    SearchField,
}

/// A string operator: which test, negated or not, case-sensitive or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StringOp {
    pub test: StringTest,
    pub negated: bool,
    pub case_sensitive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StringTest {
    /// Whole-term match.
    Has,
    /// A term starts with.
    HasPrefix,
    /// A term ends with.
    HasSuffix,
    Contains,
    StartsWith,
    EndsWith,
    /// `matches regex` (RE2, unanchored, always case-sensitive, never negated).
    MatchesRegex,
    /// `like` (SQL-style `%`/`_` wildcards; `likecs` is case-sensitive).
    Like,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListOp {
    /// `in` (case-sensitive).
    In,
    /// `!in`.
    NotIn,
    /// `in~`.
    InCi,
    /// `!in~`.
    NotInCi,
    HasAny,
    HasAll,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Literal {
    String(StringLit),
    Bool {
        value: bool,
    },
    /// A plain integer literal (KQL's integers are `long`), or `long(...)`.
    Long {
        value: i64,
    },
    /// `int(...)`.
    Int {
        value: i32,
    },
    /// `1.5`, `1e3`, `real(...)`.
    Real {
        value: Real,
    },
    /// `decimal(...)`, kept as written.
    Decimal {
        text: String,
    },
    /// A duration in ticks of 100 ns: `1h`, `1.5s`, `time(1.02:00:00)`.
    TimeSpan {
        ticks: i64,
    },
    /// `datetime(...)`, kept as written.
    DateTime {
        text: String,
    },
    /// `guid(...)`, kept as written.
    Guid {
        text: String,
    },
    Dynamic {
        value: Dynamic,
    },
    /// `int(null)`, `datetime(null)`, ...: the null of a type.
    Null {
        ty: ScalarType,
    },
    /// `typeof(string)`.
    Type {
        ty: ScalarType,
    },
}

/// A real number. Equal to itself even when NaN, so that trees holding `real(nan)`
/// compare equal.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(transparent)]
pub struct Real(pub f64);

impl PartialEq for Real {
    fn eq(&self, other: &Real) -> bool {
        self.0 == other.0 || self.0.to_bits() == other.0.to_bits()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StringLit {
    /// The decoded value.
    pub value: String,
    /// Written `h"..."`: kept out of logs; printed back obfuscated.
    pub obfuscated: bool,
}

/// The content of `dynamic(...)`: JSON-like constants.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Dynamic {
    Null,
    Array(Vec<Dynamic>),
    Object(Vec<(String, Dynamic)>),
    /// A scalar constant (string, number, bool, timespan, datetime, ...).
    Scalar(Box<Literal>),
}

/// One tabular operator in a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operator {
    #[serde(flatten)]
    pub kind: OperatorKind,
    pub span: Span,
}

/// `name=value` options of an operator: `kind=inner`, `hint.strategy=shuffle`, `isfuzzy=true`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorOption {
    pub name: String,
    pub value: Expr,
}

/// `[Name =] expr` or `(A, B) = expr` in extend, project, summarize, by-clauses...
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    /// Empty when no name is given; several for a tuple target.
    pub names: Vec<Ident>,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SortKey {
    pub expr: Expr,
    pub order: Option<SortOrder>,
    pub nulls: Option<NullsPosition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NullsPosition {
    First,
    Last,
}

/// A column name that may hold `*` wildcards (project-away, project-keep...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnPattern {
    pub pattern: String,
    pub span: Span,
}

/// `on` clause of join and lookup.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JoinKey {
    /// `on Col`: same name on both sides.
    Same { column: Ident },
    /// `$left.A == $right.B`.
    Pair { left: Ident, right: Ident },
}

/// `[Name =] expr [to typeof(type)]` in mv-expand and mv-apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpandItem {
    pub name: Option<Ident>,
    pub value: Expr,
    pub to_type: Option<ScalarType>,
}

/// One piece of a `parse` pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ParsePart {
    /// A string the text must contain.
    Text { value: StringLit },
    /// `*`: skip.
    Skip,
    /// `Column[:type]`: capture.
    Capture { name: Ident, ty: Option<ScalarType> },
}

/// One level of `top-nested`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopNestedLevel {
    pub count: Option<Expr>,
    pub of: Assignment,
    pub others: Option<Expr>,
    pub by: Assignment,
    pub order: Option<SortOrder>,
}

/// `make-series` aggregate: `[Name =] agg [default = value]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesAggregate {
    pub aggregate: Assignment,
    pub default: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "range", rename_all = "snake_case")]
pub enum SeriesRange {
    /// `[from a] [to b] step s`.
    FromTo {
        from: Option<Expr>,
        to: Option<Expr>,
        step: Expr,
    },
    /// `in range(start, stop, step)`.
    InRange { start: Expr, stop: Expr, step: Expr },
}

/// How `join`/`lookup` pair rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JoinCondition {
    /// `on A, $left.B == $right.C`.
    Keys { keys: Vec<JoinKey> },
    /// `where predicate` over both sides.
    Where { predicate: Expr },
}

/// One `step` of `scan`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanStep {
    pub name: Ident,
    pub optional: bool,
    /// `output=all|last|none`.
    pub options: Vec<OperatorOption>,
    pub predicate: Expr,
    /// `=> Col = expr, ...`.
    pub assignments: Vec<Assignment>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "operator", rename_all = "snake_case")]
pub enum OperatorKind {
    /// `where` / `filter`.
    Where {
        predicate: Expr,
    },
    Extend {
        columns: Vec<Assignment>,
    },
    Project {
        columns: Vec<Assignment>,
    },
    ProjectAway {
        columns: Vec<ColumnPattern>,
    },
    ProjectKeep {
        columns: Vec<ColumnPattern>,
    },
    /// `project-rename New = Old, ...` (Kusto's syntax admits any assignment here).
    ProjectRename {
        renames: Vec<Assignment>,
    },
    ProjectReorder {
        columns: Vec<(ColumnPattern, Option<SortOrder>)>,
    },
    Summarize {
        options: Vec<OperatorOption>,
        aggregates: Vec<Assignment>,
        by: Vec<Assignment>,
    },
    Join {
        options: Vec<OperatorOption>,
        right: Box<Expr>,
        on: JoinCondition,
    },
    Lookup {
        options: Vec<OperatorOption>,
        right: Box<Expr>,
        on: JoinCondition,
    },
    Union {
        options: Vec<OperatorOption>,
        tables: Vec<Expr>,
    },
    MvExpand {
        options: Vec<OperatorOption>,
        items: Vec<ExpandItem>,
        limit: Option<Expr>,
    },
    MvApply {
        options: Vec<OperatorOption>,
        items: Vec<ExpandItem>,
        limit: Option<Expr>,
        /// The sub-query applied to each expanded record set.
        on: Box<Expr>,
    },
    /// `parse` and `parse-where` (which drops rows that do not match).
    Parse {
        drop_unmatched: bool,
        options: Vec<OperatorOption>,
        source: Expr,
        pattern: Vec<ParsePart>,
    },
    ParseKv {
        source: Expr,
        columns: Vec<ColumnDecl>,
        with: Vec<OperatorOption>,
    },
    Top {
        count: Expr,
        by: SortKey,
    },
    TopNested {
        levels: Vec<TopNestedLevel>,
    },
    TopHitters {
        count: Expr,
        of: Expr,
        by: Option<Expr>,
    },
    /// `take` / `limit`.
    Take {
        count: Expr,
    },
    /// `sort` / `order`.
    Sort {
        keys: Vec<SortKey>,
    },
    /// `distinct a, b` or `distinct *` (an empty list).
    Distinct {
        columns: Vec<Assignment>,
    },
    Count,
    As {
        options: Vec<OperatorOption>,
        name: Ident,
    },
    Serialize {
        columns: Vec<Assignment>,
    },
    MakeSeries {
        options: Vec<OperatorOption>,
        aggregates: Vec<SeriesAggregate>,
        on: Expr,
        range: SeriesRange,
        by: Vec<Assignment>,
    },
    Evaluate {
        options: Vec<OperatorOption>,
        plugin: Expr,
        /// `: (Col:type, ...)`: the declared output schema.
        schema: Option<Vec<ColumnDecl>>,
    },
    Invoke {
        function: Expr,
    },
    Render {
        chart: Ident,
        with: Vec<OperatorOption>,
    },
    GetSchema,
    Sample {
        count: Expr,
    },
    SampleDistinct {
        count: Expr,
        of: Expr,
    },
    Search {
        options: Vec<OperatorOption>,
        tables: Vec<Expr>,
        predicate: Expr,
    },
    Find {
        options: Vec<OperatorOption>,
        tables: Vec<Expr>,
        predicate: Expr,
        /// `project a, b` / `project-smart` (None: default columns).
        project: Option<Vec<Ident>>,
    },
    Reduce {
        by: Expr,
        with: Vec<OperatorOption>,
    },
    Fork {
        branches: Vec<Expr>,
    },
    Facet {
        by: Vec<Ident>,
        with: Option<Box<Expr>>,
    },
    Partition {
        options: Vec<OperatorOption>,
        by: Ident,
        query: Box<Expr>,
    },
    Consume,
    Scan {
        options: Vec<OperatorOption>,
        declare: Vec<ColumnDecl>,
        steps: Vec<ScanStep>,
    },
    // Operators that only start a pipeline.
    Datatable {
        schema: Vec<ColumnDecl>,
        values: Vec<Expr>,
    },
    ExternalData {
        schema: Vec<ColumnDecl>,
        uris: Vec<Expr>,
        with: Vec<OperatorOption>,
    },
    Range {
        column: Ident,
        from: Expr,
        to: Expr,
        step: Expr,
    },
    Print {
        columns: Vec<Assignment>,
    },
}
