//! AST -> KQL text. Parsing the printed text gives the same AST (spans ignored): the
//! printer adds exactly the brackets precedence needs and writes one canonical spelling
//! per construct.

use std::fmt::{self, Display, Formatter, Write as _};

use super::ast::*;
use super::parser::is_plain_name;

/// Words Kusto does not accept bare after `.` although they are names elsewhere (checked
/// with Microsoft's parser): type names, string operators and a few others.
const RESERVED_AFTER_DOT: &[&str] = &[
    "boolean",
    "date",
    "datetime",
    "decimal",
    "double",
    "dynamic",
    "int",
    "long",
    "real",
    "string",
    "time",
    "timespan",
    "title",
    "materialize",
    "toscalar",
    "like",
    "likecs",
    "notlike",
    "notlikecs",
    "matches",
    "hasprefix",
    "hassuffix",
    "has_cs",
    "hasprefix_cs",
    "hassuffix_cs",
    "contains_cs",
    "containscs",
    "notcontains",
    "notcontainscs",
    "startswith_cs",
    "endswith_cs",
    "has_any",
    "has_all",
];

/// Precedence levels for printing, loosest first.
const P_PIPE: u8 = 0;
const P_OR: u8 = 1;
const P_AND: u8 = 2;
const P_COMPARE: u8 = 3;
const P_ADD: u8 = 4;
const P_MUL: u8 = 5;
const P_UNARY: u8 = 6;
const P_POSTFIX: u8 = 7;

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, statement) in self.statements.iter().enumerate() {
            if i > 0 {
                f.write_str(";\n")?;
            }
            write!(f, "{statement}")?;
        }
        Ok(())
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Let(l) => write!(f, "{l}"),
            Statement::Set(s) => {
                write!(f, "set {}", s.name)?;
                if let Some(v) = &s.value {
                    write!(f, " = {}", Prec(v, P_POSTFIX))?;
                }
                Ok(())
            }
            Statement::DeclareQueryParameters { params, .. } => {
                write!(f, "declare query_parameters(")?;
                comma_list(f, params)?;
                f.write_str(")")
            }
            Statement::Expr(e) => write!(f, "{}", Prec(e, P_PIPE)),
        }
    }
}

impl Display for Let {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "let {} = ", self.name)?;
        match &self.value {
            LetValue::Expr(e) => write!(f, "{}", Prec(e, P_PIPE)),
            LetValue::Function(func) => write!(f, "{func}"),
            LetValue::View(func) => write!(f, "view {func}"),
        }
    }
}

impl Display for Function {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        comma_list(f, &self.params)?;
        f.write_str(") {\n")?;
        for (i, statement) in self.body.iter().enumerate() {
            if i > 0 {
                f.write_str(";\n")?;
            }
            write!(f, "{statement}")?;
        }
        f.write_str("\n}")
    }
}

impl Display for Param {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.name)?;
        match &self.ty {
            ParamType::Scalar { ty } => f.write_str(ty.name())?,
            ParamType::AnyTable => f.write_str("(*)")?,
            ParamType::Table { columns } => {
                f.write_str("(")?;
                comma_list(f, columns)?;
                f.write_str(")")?;
            }
        }
        if let Some(d) = &self.default {
            write!(f, " = {}", Prec(d, P_PIPE))?;
        }
        Ok(())
    }
}

impl Display for ColumnDecl {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.ty.name())
    }
}

impl Display for Ident {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_name(f, &self.name)
    }
}

fn write_name(f: &mut Formatter<'_>, name: &str) -> fmt::Result {
    if is_plain_name(name) {
        f.write_str(name)
    } else {
        f.write_str("[")?;
        write_quoted(f, name)?;
        f.write_str("]")
    }
}

fn comma_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Prec(self, P_PIPE))
    }
}

/// An expression printed where an operand of at least this precedence is expected.
struct Prec<'a>(&'a Expr, u8);

fn precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Pipeline { .. } | ExprKind::Source { .. } => P_PIPE,
        ExprKind::Logical {
            op: LogicalOp::Or, ..
        } => P_OR,
        ExprKind::Logical {
            op: LogicalOp::And, ..
        } => P_AND,
        ExprKind::Binary { op, .. } => binary_precedence(*op),
        ExprKind::List { .. } | ExprKind::Between { .. } => P_COMPARE,
        ExprKind::Unary { .. } => P_UNARY,
        _ => P_POSTFIX,
    }
}

fn binary_precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Add | BinaryOp::Sub => P_ADD,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => P_MUL,
        _ => P_COMPARE,
    }
}

impl Display for Prec<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Prec(e, min) = *self;
        if precedence(e) < min {
            write!(f, "({})", Prec(e, P_PIPE))
        } else {
            write_expr(f, e)
        }
    }
}

fn write_expr(f: &mut Formatter<'_>, e: &Expr) -> fmt::Result {
    match &e.kind {
        ExprKind::Literal { value } => write!(f, "{value}"),
        ExprKind::Name { name } => write_name(f, name),
        ExprKind::Star => f.write_str("*"),
        ExprKind::TablePattern { pattern } => f.write_str(pattern),
        ExprKind::Member { target, member } => {
            write_postfix_target(f, target)?;
            if is_plain_name(member) && !RESERVED_AFTER_DOT.contains(&member.as_str()) {
                write!(f, ".{member}")
            } else {
                f.write_str("[")?;
                write_quoted(f, member)?;
                f.write_str("]")
            }
        }
        ExprKind::Index { target, index } => {
            write_postfix_target(f, target)?;
            write!(f, "[{}]", Prec(index, P_OR))
        }
        ExprKind::ClientParameter { name } => write!(f, "{{{name}}}"),
        ExprKind::Named { name, value } => {
            write_name(f, name)?;
            write!(f, " = {}", Prec(value, P_PIPE))
        }
        ExprKind::Call { name, args } => {
            write!(f, "{name}(")?;
            write_args(f, args)?;
            f.write_str(")")
        }
        ExprKind::MethodCall { target, name, args } => {
            write_postfix_target(f, target)?;
            write!(f, ".{name}(")?;
            write_args(f, args)?;
            f.write_str(")")
        }
        ExprKind::Unary { op, operand } => {
            let sign = match op {
                UnaryOp::Minus => "-",
                UnaryOp::Plus => "+",
            };
            let inner = Prec(operand, P_UNARY).to_string();
            // `- -x`, not `--x`.
            let space = if inner.starts_with(['-', '+']) {
                " "
            } else {
                ""
            };
            write!(f, "{sign}{space}{inner}")
        }
        ExprKind::Binary { op, left, right } => {
            let p = binary_precedence(*op);
            // Comparisons do not chain in KQL: a comparison operand is bracketed.
            let left_min = if p == P_COMPARE { p + 1 } else { p };
            write!(f, "{}", Prec(left, left_min))?;
            match op {
                BinaryOp::SearchField => f.write_str(":")?,
                _ => write!(f, " {} ", binary_op_text(*op))?,
            }
            write!(f, "{}", Prec(right, p + 1))
        }
        ExprKind::Logical { op, operands } => {
            let (word, p) = match op {
                LogicalOp::And => ("and", P_AND),
                LogicalOp::Or => ("or", P_OR),
            };
            for (i, operand) in operands.iter().enumerate() {
                if i > 0 {
                    write!(f, " {word} ")?;
                }
                write!(f, "{}", Prec(operand, p + 1))?;
            }
            Ok(())
        }
        ExprKind::List { op, operand, items } => {
            let word = match op {
                ListOp::In => "in",
                ListOp::NotIn => "!in",
                ListOp::InCi => "in~",
                ListOp::NotInCi => "!in~",
                ListOp::HasAny => "has_any",
                ListOp::HasAll => "has_all",
            };
            write!(f, "{} {word} (", Prec(operand, P_ADD))?;
            write_args(f, items)?;
            f.write_str(")")
        }
        ExprKind::Between {
            negated,
            operand,
            low,
            high,
        } => {
            let word = if *negated { "!between" } else { "between" };
            write!(
                f,
                "{} {word} ({} .. {})",
                Prec(operand, P_ADD),
                Prec(low, P_OR),
                Prec(high, P_OR)
            )
        }
        ExprKind::Pipeline { source, operators } => {
            // A pipeline as the source of another pipeline keeps its brackets; a source
            // operator (`union ...`, `top 1 by x` in mv-apply) starts the chain bare.
            match source.kind {
                ExprKind::Source { .. } => write!(f, "{}", Prec(source, P_PIPE))?,
                _ => write!(f, "{}", Prec(source, P_OR))?,
            }
            for op in operators {
                write!(f, "\n| {op}")?;
            }
            Ok(())
        }
        ExprKind::Source { operator } => write!(f, "{operator}"),
    }
}

/// `a.b`, `f(x).b`: a postfix target; literals are bracketed so `1.b` is never a number.
fn write_postfix_target(f: &mut Formatter<'_>, target: &Expr) -> fmt::Result {
    match target.kind {
        ExprKind::Literal { .. } => write!(f, "({})", Prec(target, P_PIPE)),
        _ => write!(f, "{}", Prec(target, P_POSTFIX)),
    }
}

fn write_args(f: &mut Formatter<'_>, args: &[Expr]) -> fmt::Result {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", Prec(a, P_PIPE))?;
    }
    Ok(())
}

fn binary_op_text(op: BinaryOp) -> String {
    match op {
        BinaryOp::Add => "+".into(),
        BinaryOp::Sub => "-".into(),
        BinaryOp::Mul => "*".into(),
        BinaryOp::Div => "/".into(),
        BinaryOp::Mod => "%".into(),
        BinaryOp::Eq => "==".into(),
        BinaryOp::NotEq => "!=".into(),
        BinaryOp::EqCi => "=~".into(),
        BinaryOp::NotEqCi => "!~".into(),
        BinaryOp::Lt => "<".into(),
        BinaryOp::Le => "<=".into(),
        BinaryOp::Gt => ">".into(),
        BinaryOp::Ge => ">=".into(),
        BinaryOp::SearchField => ":".into(),
        BinaryOp::Str(s) => string_op_text(s),
    }
}

/// The canonical spelling of a string operator.
pub fn string_op_text(op: StringOp) -> String {
    let base = match op.test {
        StringTest::MatchesRegex => return "matches regex".into(),
        StringTest::Like => {
            return match (op.negated, op.case_sensitive) {
                (false, false) => "like",
                (true, false) => "notlike",
                (false, true) => "likecs",
                (true, true) => "notlikecs",
            }
            .into();
        }
        StringTest::Has => "has",
        StringTest::HasPrefix => "hasprefix",
        StringTest::HasSuffix => "hassuffix",
        StringTest::Contains => "contains",
        StringTest::StartsWith => "startswith",
        StringTest::EndsWith => "endswith",
    };
    format!(
        "{}{base}{}",
        if op.negated { "!" } else { "" },
        if op.case_sensitive { "_cs" } else { "" }
    )
}

// ---- literals ----------------------------------------------------------------------

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => {
                if s.obfuscated {
                    f.write_str("h")?;
                }
                write_string(f, &s.value)
            }
            Literal::Bool { value } => write!(f, "{value}"),
            Literal::Long { value } => write!(f, "{value}"),
            Literal::Int { value } => write!(f, "int({value})"),
            Literal::Real { value } => write_real(f, value.0),
            Literal::Decimal { text } => write!(f, "decimal({text})"),
            Literal::TimeSpan { ticks } => write_timespan(f, *ticks),
            Literal::DateTime { text } => write!(f, "datetime({text})"),
            Literal::Guid { text } => write!(f, "guid({text})"),
            Literal::Dynamic { value } => write!(f, "dynamic({value})"),
            Literal::Null { ty } => write!(f, "{}(null)", ty.name()),
            Literal::Type { ty } => write!(f, "typeof({})", ty.name()),
        }
    }
}

fn write_real(f: &mut Formatter<'_>, value: f64) -> fmt::Result {
    if value.is_nan() {
        f.write_str("real(nan)")
    } else if value.is_infinite() {
        f.write_str(if value > 0.0 {
            "real(+inf)"
        } else {
            "real(-inf)"
        })
    } else if value < 0.0 || (value == 0.0 && value.is_sign_negative()) {
        // Only reachable inside dynamic(...) or from later stages.
        write!(f, "real({value:?})")
    } else {
        // Debug formatting always keeps a `.` or an exponent, so it reads back as real.
        write!(f, "{value:?}")
    }
}

const UNITS: &[(i64, &str)] = &[
    (864_000_000_000, "d"),
    (36_000_000_000, "h"),
    (600_000_000, "m"),
    (10_000_000, "s"),
    (10_000, "ms"),
    (10, "microsecond"),
    (1, "tick"),
];

fn write_timespan(f: &mut Formatter<'_>, ticks: i64) -> fmt::Result {
    let (per, unit) = UNITS
        .iter()
        .find(|(per, _)| ticks % per == 0)
        .copied()
        .unwrap_or((1, "tick"));
    if ticks < 0 {
        write!(f, "time(-{}{unit})", (ticks / per).unsigned_abs())
    } else {
        write!(f, "{}{unit}", ticks / per)
    }
}

impl Display for Dynamic {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Dynamic::Null => f.write_str("null"),
            Dynamic::Array(items) => {
                f.write_str("[")?;
                comma_list(f, items)?;
                f.write_str("]")
            }
            Dynamic::Object(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_quoted(f, k)?;
                    write!(f, ": {v}")?;
                }
                f.write_str("}")
            }
            Dynamic::Scalar(lit) => match lit.as_ref() {
                // Inside dynamic(...) a sign is part of the number.
                Literal::Long { value } => write!(f, "{value}"),
                Literal::Real { value } if value.0.is_finite() => write!(f, "{:?}", value.0),
                other => write!(f, "{other}"),
            },
        }
    }
}

/// A string literal: verbatim `@"..."` when that avoids escaping backslashes, otherwise
/// `"..."` with escapes.
fn write_string(f: &mut Formatter<'_>, value: &str) -> fmt::Result {
    let verbatim_ok = value.contains('\\') && !value.chars().any(|c| c.is_control());
    if verbatim_ok {
        f.write_str("@\"")?;
        f.write_str(&value.replace('"', "\"\""))?;
        f.write_str("\"")
    } else {
        write_quoted(f, value)
    }
}

/// `"..."` with every character that needs it escaped.
fn write_quoted(f: &mut Formatter<'_>, value: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

// ---- operators -----------------------------------------------------------------------

impl Display for OperatorOption {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, Prec(&self.value, P_POSTFIX))
    }
}

impl Display for Assignment {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.names.as_slice() {
            [] => {}
            [one] => write!(f, "{one} = ")?,
            many => {
                f.write_str("(")?;
                comma_list(f, many)?;
                f.write_str(") = ")?;
            }
        }
        write!(f, "{}", Prec(&self.value, P_OR))
    }
}

impl Display for SortKey {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Prec(&self.expr, P_OR))?;
        if let Some(order) = self.order {
            write!(f, " {order}")?;
        }
        if let Some(nulls) = self.nulls {
            write!(
                f,
                " nulls {}",
                match nulls {
                    NullsPosition::First => "first",
                    NullsPosition::Last => "last",
                }
            )?;
        }
        Ok(())
    }
}

impl Display for SortOrder {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        })
    }
}

impl Display for ColumnPattern {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.pattern.contains('*') && is_plain_name(&self.pattern.replace('*', "x")) {
            f.write_str(&self.pattern)
        } else {
            write_name(f, &self.pattern)
        }
    }
}

impl Display for JoinKey {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            JoinKey::Same { column } => write!(f, "{column}"),
            JoinKey::Pair { left, right } => write!(f, "$left.{left} == $right.{right}"),
        }
    }
}

impl Display for ExpandItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            write!(f, "{name} = ")?;
        }
        write!(f, "{}", Prec(&self.value, P_OR))?;
        if let Some(ty) = self.to_type {
            write!(f, " to typeof({})", ty.name())?;
        }
        Ok(())
    }
}

fn write_options(f: &mut Formatter<'_>, options: &[OperatorOption]) -> fmt::Result {
    for o in options {
        write!(f, " {o}")?;
    }
    Ok(())
}

fn write_with(f: &mut Formatter<'_>, props: &[OperatorOption]) -> fmt::Result {
    if props.is_empty() {
        return Ok(());
    }
    f.write_str(" with (")?;
    comma_list(f, props)?;
    f.write_str(")")
}

impl Display for Operator {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            OperatorKind::Where { predicate } => match &predicate.kind {
                ExprKind::Named { name, value } => {
                    f.write_str("where ")?;
                    write_name(f, name)?;
                    write!(f, " = {}", Prec(value, P_OR))
                }
                _ => write!(f, "where {}", Prec(predicate, P_OR)),
            },
            OperatorKind::Extend { columns } => {
                f.write_str("extend ")?;
                comma_list(f, columns)
            }
            OperatorKind::Project { columns } => {
                f.write_str("project ")?;
                comma_list(f, columns)
            }
            OperatorKind::ProjectAway { columns } => {
                f.write_str("project-away ")?;
                comma_list(f, columns)
            }
            OperatorKind::ProjectKeep { columns } => {
                f.write_str("project-keep ")?;
                comma_list(f, columns)
            }
            OperatorKind::ProjectRename { renames } => {
                f.write_str("project-rename ")?;
                comma_list(f, renames)
            }
            OperatorKind::ProjectReorder { columns } => {
                f.write_str("project-reorder ")?;
                for (i, (pattern, order)) in columns.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{pattern}")?;
                    if let Some(order) = order {
                        write!(f, " {order}")?;
                    }
                }
                Ok(())
            }
            OperatorKind::Summarize {
                options,
                aggregates,
                by,
            } => {
                f.write_str("summarize")?;
                write_options(f, options)?;
                if !aggregates.is_empty() {
                    f.write_str(" ")?;
                    comma_list(f, aggregates)?;
                }
                if !by.is_empty() {
                    f.write_str(" by ")?;
                    comma_list(f, by)?;
                }
                Ok(())
            }
            OperatorKind::Join { options, right, on }
            | OperatorKind::Lookup { options, right, on } => {
                let word = if matches!(self.kind, OperatorKind::Join { .. }) {
                    "join"
                } else {
                    "lookup"
                };
                f.write_str(word)?;
                write_options(f, options)?;
                write!(f, " {}", Prec(right, P_POSTFIX))?;
                match on {
                    JoinCondition::Keys { keys } => {
                        f.write_str(" on ")?;
                        comma_list(f, keys)
                    }
                    JoinCondition::Where { predicate } => {
                        write!(f, " where {}", Prec(predicate, P_OR))
                    }
                }
            }
            OperatorKind::Union { options, tables } => {
                f.write_str("union")?;
                write_options(f, options)?;
                f.write_str(" ")?;
                write_tables(f, tables)
            }
            OperatorKind::MvExpand {
                options,
                items,
                limit,
            } => {
                f.write_str("mv-expand")?;
                write_options(f, options)?;
                f.write_str(" ")?;
                comma_list(f, items)?;
                if let Some(limit) = limit {
                    write!(f, " limit {}", Prec(limit, P_OR))?;
                }
                Ok(())
            }
            OperatorKind::MvApply {
                options,
                items,
                limit,
                on,
            } => {
                f.write_str("mv-apply")?;
                write_options(f, options)?;
                f.write_str(" ")?;
                comma_list(f, items)?;
                if let Some(limit) = limit {
                    write!(f, " limit {}", Prec(limit, P_OR))?;
                }
                write!(f, " on ({})", Prec(on, P_PIPE))
            }
            OperatorKind::Parse {
                drop_unmatched,
                options,
                source,
                pattern,
            } => {
                f.write_str(if *drop_unmatched {
                    "parse-where"
                } else {
                    "parse"
                })?;
                write_options(f, options)?;
                write!(f, " {} with", Prec(source, P_OR))?;
                for part in pattern {
                    match part {
                        ParsePart::Text { value } => {
                            write!(f, " {}", Literal::String(value.clone()))?
                        }
                        ParsePart::Skip => f.write_str(" *")?,
                        ParsePart::Capture { name, ty } => {
                            write!(f, " {name}")?;
                            if let Some(ty) = ty {
                                write!(f, ":{}", ty.name())?;
                            }
                        }
                    }
                }
                Ok(())
            }
            OperatorKind::ParseKv {
                source,
                columns,
                with,
            } => {
                write!(f, "parse-kv {} as (", Prec(source, P_OR))?;
                comma_list(f, columns)?;
                f.write_str(")")?;
                write_with(f, with)
            }
            OperatorKind::Top { count, by } => write!(f, "top {} by {by}", Prec(count, P_OR)),
            OperatorKind::TopNested { levels } => {
                for (i, level) in levels.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str("top-nested")?;
                    if let Some(count) = &level.count {
                        write!(f, " {}", Prec(count, P_OR))?;
                    }
                    write!(f, " of {}", level.of)?;
                    if let Some(others) = &level.others {
                        write!(f, " with others = {}", Prec(others, P_OR))?;
                    }
                    write!(f, " by {}", level.by)?;
                    if let Some(order) = level.order {
                        write!(f, " {order}")?;
                    }
                }
                Ok(())
            }
            OperatorKind::TopHitters { count, of, by } => {
                write!(f, "top-hitters {} of {}", Prec(count, P_OR), Prec(of, P_OR))?;
                if let Some(by) = by {
                    write!(f, " by {}", Prec(by, P_OR))?;
                }
                Ok(())
            }
            OperatorKind::Take { count } => write!(f, "take {}", Prec(count, P_OR)),
            OperatorKind::Sort { keys } => {
                f.write_str("sort by ")?;
                comma_list(f, keys)
            }
            OperatorKind::Distinct { columns } => {
                if columns.is_empty() {
                    f.write_str("distinct *")
                } else {
                    f.write_str("distinct ")?;
                    comma_list(f, columns)
                }
            }
            OperatorKind::Count => f.write_str("count"),
            OperatorKind::As { options, name } => {
                f.write_str("as")?;
                write_options(f, options)?;
                write!(f, " {name}")
            }
            OperatorKind::Serialize { columns } => {
                f.write_str("serialize")?;
                if !columns.is_empty() {
                    f.write_str(" ")?;
                    comma_list(f, columns)?;
                }
                Ok(())
            }
            OperatorKind::MakeSeries {
                options,
                aggregates,
                on,
                range,
                by,
            } => {
                f.write_str("make-series")?;
                write_options(f, options)?;
                for (i, agg) in aggregates.iter().enumerate() {
                    f.write_str(if i > 0 { ", " } else { " " })?;
                    write!(f, "{}", agg.aggregate)?;
                    if let Some(d) = &agg.default {
                        write!(f, " default = {}", Prec(d, P_OR))?;
                    }
                }
                write!(f, " on {}", Prec(on, P_OR))?;
                match range {
                    SeriesRange::FromTo { from, to, step } => {
                        if let Some(from) = from {
                            write!(f, " from {}", Prec(from, P_OR))?;
                        }
                        if let Some(to) = to {
                            write!(f, " to {}", Prec(to, P_OR))?;
                        }
                        write!(f, " step {}", Prec(step, P_OR))?;
                    }
                    SeriesRange::InRange { start, stop, step } => write!(
                        f,
                        " in range({}, {}, {})",
                        Prec(start, P_OR),
                        Prec(stop, P_OR),
                        Prec(step, P_OR)
                    )?,
                }
                if !by.is_empty() {
                    f.write_str(" by ")?;
                    comma_list(f, by)?;
                }
                Ok(())
            }
            OperatorKind::Evaluate {
                options,
                plugin,
                schema,
            } => {
                f.write_str("evaluate")?;
                write_options(f, options)?;
                write!(f, " {}", Prec(plugin, P_POSTFIX))?;
                if let Some(schema) = schema {
                    f.write_str(" : (")?;
                    comma_list(f, schema)?;
                    f.write_str(")")?;
                }
                Ok(())
            }
            OperatorKind::Invoke { function } => {
                write!(f, "invoke {}", Prec(function, P_POSTFIX))
            }
            OperatorKind::Render { chart, with } => {
                write!(f, "render {chart}")?;
                write_with(f, with)
            }
            OperatorKind::GetSchema => f.write_str("getschema"),
            OperatorKind::Sample { count } => write!(f, "sample {}", Prec(count, P_OR)),
            OperatorKind::SampleDistinct { count, of } => write!(
                f,
                "sample-distinct {} of {}",
                Prec(count, P_OR),
                Prec(of, P_OR)
            ),
            OperatorKind::Search {
                options,
                tables,
                predicate,
            } => {
                f.write_str("search")?;
                write_options(f, options)?;
                if !tables.is_empty() {
                    f.write_str(" in (")?;
                    write_tables(f, tables)?;
                    f.write_str(")")?;
                }
                write!(f, " {}", Prec(predicate, P_OR))
            }
            OperatorKind::Find {
                options,
                tables,
                predicate,
                project,
            } => {
                f.write_str("find")?;
                write_options(f, options)?;
                if !tables.is_empty() {
                    f.write_str(" in (")?;
                    write_tables(f, tables)?;
                    f.write_str(")")?;
                }
                write!(f, " where {}", Prec(predicate, P_OR))?;
                match project {
                    None => Ok(()),
                    Some(cols) if cols.is_empty() => f.write_str(" project-smart"),
                    Some(cols) => {
                        f.write_str(" project ")?;
                        comma_list(f, cols)
                    }
                }
            }
            OperatorKind::Reduce { by, with } => {
                write!(f, "reduce by {}", Prec(by, P_OR))?;
                write_with(f, with)
            }
            OperatorKind::Fork { branches } => {
                f.write_str("fork")?;
                for b in branches {
                    write!(f, " ({})", Prec(b, P_PIPE))?;
                }
                Ok(())
            }
            OperatorKind::Facet { by, with } => {
                f.write_str("facet by ")?;
                comma_list(f, by)?;
                if let Some(with) = with {
                    write!(f, " with ({})", Prec(with, P_PIPE))?;
                }
                Ok(())
            }
            OperatorKind::Partition { options, by, query } => {
                f.write_str("partition")?;
                write_options(f, options)?;
                write!(f, " by {by} ({})", Prec(query, P_PIPE))
            }
            OperatorKind::Consume => f.write_str("consume"),
            OperatorKind::Scan {
                options,
                declare,
                steps,
            } => {
                f.write_str("scan")?;
                write_options(f, options)?;
                if !declare.is_empty() {
                    f.write_str(" declare (")?;
                    comma_list(f, declare)?;
                    f.write_str(")")?;
                }
                f.write_str(" with (")?;
                for step in steps {
                    write!(f, "\n    step {}", step.name)?;
                    if step.optional {
                        f.write_str(" optional")?;
                    }
                    write_options(f, &step.options)?;
                    write!(f, ": {}", Prec(&step.predicate, P_OR))?;
                    if !step.assignments.is_empty() {
                        f.write_str(" => ")?;
                        comma_list(f, &step.assignments)?;
                    }
                    f.write_str(";")?;
                }
                f.write_str("\n)")
            }
            OperatorKind::Datatable { schema, values } => {
                f.write_str("datatable(")?;
                comma_list(f, schema)?;
                f.write_str(") [")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Prec(v, P_OR))?;
                }
                f.write_str("]")
            }
            OperatorKind::ExternalData { schema, uris, with } => {
                f.write_str("externaldata(")?;
                comma_list(f, schema)?;
                f.write_str(") [")?;
                for (i, v) in uris.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Prec(v, P_OR))?;
                }
                f.write_str("]")?;
                write_with(f, with)
            }
            OperatorKind::Range {
                column,
                from,
                to,
                step,
            } => write!(
                f,
                "range {column} from {} to {} step {}",
                Prec(from, P_OR),
                Prec(to, P_OR),
                Prec(step, P_OR)
            ),
            OperatorKind::Print { columns } => {
                f.write_str("print ")?;
                comma_list(f, columns)
            }
        }
    }
}

fn write_tables(f: &mut Formatter<'_>, tables: &[Expr]) -> fmt::Result {
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", Prec(t, P_POSTFIX))?;
    }
    Ok(())
}
