//! pest pairs -> AST. The only module that sees pest types.
//!
//! One function per grammar rule. Binary operators arrive flat from the grammar and get
//! their precedence here by shunting-yard (iterative, so long chains cannot overflow the
//! stack); `and`/`or` chains become one n-ary node.

use pest::Parser as _;
use pest::error::InputLocation;
use pest::iterators::Pair;

use super::ast::*;
use super::error::{SyntaxError, SyntaxErrorKind};
use super::guard::MAX_CHAIN_HEIGHT;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/kql.pest"]
struct KqlGrammar;

type Result<T> = std::result::Result<T, SyntaxError>;

/// Parses query text that already passed [`super::guard::check`].
pub(super) fn parse_checked(text: &str) -> Result<Query> {
    match KqlGrammar::parse(Rule::query, text) {
        Ok(mut pairs) => {
            let query = pairs.next().expect("the query rule always yields one pair");
            Builder { text }.query(query)
        }
        Err(basic) => Err(from_pest_error(text, basic, detailed_attempts(text))),
    }
}

const STRUCTURAL_TOKENS: &[&str] = &[")", "]", "}", ",", "|", ";", "=", "..", ":", "=>"];

/// Parses again with pest's attempt tracking on, which also names the literal tokens
/// (`)`, `,`) that were expected; returns the farthest position reached and what was
/// expected there. Only failing queries pay for it. The switch is global, so parses
/// running at the same time on other threads may see it: they get slower, never wrong.
fn detailed_attempts(text: &str) -> Option<(usize, Vec<String>)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    pest::set_error_detail(true);
    let attempts = KqlGrammar::parse(Rule::query, text)
        .err()
        .and_then(|e| e.parse_attempts());
    if IN_FLIGHT.fetch_sub(1, Ordering::SeqCst) == 1 {
        pest::set_error_detail(false);
    }
    let attempts = attempts?;
    let mut words = vec![];
    for stack in attempts.call_stacks() {
        // pest does not export the attempt type; its Debug form is `Rule(name)` or `Token`.
        let deepest = format!("{:?}", stack.deepest);
        let rule = deepest
            .strip_prefix("Rule(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|name| {
                Rule::all_rules()
                    .iter()
                    .copied()
                    .find(|r| format!("{r:?}") == name)
            })
            .or(stack.parent);
        words.extend(rule.and_then(describe_rule).map(String::from));
    }
    for token in attempts.expected_tokens() {
        // Only punctuation that closes or separates says something a user can act on;
        // tokens inside literals and look-ahead guards do not.
        let token = token.to_string();
        if STRUCTURAL_TOKENS.contains(&token.as_str()) {
            words.push(format!("`{token}`"));
        }
    }
    Some((attempts.max_position, words))
}

/// Whether `name` can be written bare (a word that is not a keyword).
pub(super) fn is_plain_name(name: &str) -> bool {
    KqlGrammar::parse(Rule::ident, name)
        .ok()
        .and_then(|mut pairs| pairs.next())
        .is_some_and(|p| {
            p.as_str().len() == name.len()
                && p.into_inner()
                    .next()
                    .is_some_and(|inner| inner.as_rule() == Rule::word)
        })
}

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

fn from_pest_error(
    text: &str,
    err: pest::error::Error<Rule>,
    attempts: Option<(usize, Vec<String>)>,
) -> SyntaxError {
    let mut offset = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut words: Vec<String> = vec![];
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &err.variant {
        words.extend(
            positives
                .iter()
                .filter_map(|r| describe_rule(*r))
                .map(String::from),
        );
    }
    // A position inside a word (`wher|e`) is where a keyword test gave up, not where the
    // user went wrong.
    let inside_word = |p: usize| {
        let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        is_word(text[..p.min(text.len())].chars().next_back())
            && is_word(text[p.min(text.len())..].chars().next())
    };
    if let Some((position, detailed)) = attempts.filter(|(p, _)| *p >= offset && !inside_word(*p)) {
        if position > offset {
            words.clear();
            offset = position;
        }
        words.extend(detailed);
    }
    // "Found the end of the query": point at the end of the last token, not at the line
    // after it (YAML block scalars end with a line break).
    if text[offset.min(text.len())..].trim().is_empty() {
        offset = offset.min(text.trim_end().len());
    }
    let mut words = simplify_expected(words);
    // An operator can only start after `|`; elsewhere the word is noise from backtracking.
    let after_pipe = text[..offset].trim_end().ends_with('|');
    words.retain(|w| after_pipe || !w.starts_with("a query operator"));
    // After a complete operand, what could come is an operator, not a new expression.
    if ends_operand(&text[..offset]) {
        for w in &mut words {
            if w == "an expression" {
                *w = "an operator".to_string();
            }
        }
    }
    if words.is_empty() && text[..offset].trim_end().ends_with('|') {
        words.push("a query operator such as `where`".to_string());
    }
    let found = describe_found(text, offset);
    let end = (offset + found.1).min(text.len());
    let message = if words.is_empty() {
        format!("unexpected {}", found.0)
    } else {
        format!("expected {}, found {}", join_alternatives(&words), found.0)
    };
    SyntaxError {
        kind: SyntaxErrorKind::Unexpected,
        span: Span::new(offset, end.max(offset)),
        message,
        expected: words,
    }
}

/// Sorts and deduplicates, and says "an expression" instead of listing what may start one.
fn simplify_expected(mut words: Vec<String>) -> Vec<String> {
    const EXPRESSION_STARTS: &[&str] = &[
        "`(`",
        "`*`",
        "`true` or `false`",
        "a name",
        "a string literal",
        "a number",
        "a function call",
        "`-`",
        "`+`",
        "`{`",
        "`@`",
        "`h`",
        "`H`",
        "`'`",
        "`\"`",
        "`datetime`",
        "`dynamic`",
        "`typeof`",
        "a timespan such as `1h`",
    ];
    let starts_expression = words
        .iter()
        .any(|w| EXPRESSION_STARTS.contains(&w.as_str()));
    if starts_expression {
        words.retain(|w| !EXPRESSION_STARTS.contains(&w.as_str()));
        words.push("an expression".to_string());
    }
    let names_a_column = words.iter().any(|w| w.starts_with("a column"));
    if names_a_column {
        words.retain(|w| w != "an expression");
    }
    words.sort();
    words.dedup();
    words
}

/// Whether `before` ends with a complete operand (`x`, `1`, `')'`, `"s"`), not with an
/// operator or a keyword that needs an expression after it.
fn ends_operand(before: &str) -> bool {
    const NEEDS_EXPRESSION: &[&str] = &[
        "where",
        "filter",
        "extend",
        "project",
        "take",
        "limit",
        "by",
        "on",
        "of",
        "with",
        "to",
        "from",
        "step",
        "and",
        "or",
        "in",
        "has",
        "contains",
        "startswith",
        "endswith",
        "let",
        "print",
        "summarize",
        "top",
        "sample",
        "distinct",
        "as",
        "between",
        "regex",
        "like",
    ];
    let trimmed = before.trim_end();
    let Some(last) = trimmed.chars().next_back() else {
        return false;
    };
    if matches!(last, ')' | ']' | '"' | '\'' | '}') {
        return true;
    }
    if last.is_alphanumeric() || last == '_' {
        let word: String = trimmed
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return !NEEDS_EXPRESSION.contains(&word.as_str()) && !word.contains('-');
    }
    false
}

fn join_alternatives(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// What stands at `offset`, in words, and how many bytes it covers.
fn describe_found(text: &str, offset: usize) -> (String, usize) {
    let rest = &text[offset.min(text.len())..];
    let Some(first) = rest.chars().next() else {
        return ("the end of the query".to_string(), 0);
    };
    if first.is_alphanumeric() || first == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .take(40)
            .collect();
        return (format!("`{word}`"), word.len());
    }
    let shown = match first {
        '\n' => "a line break".to_string(),
        '`' => "`` ` ``".to_string(),
        c => format!("`{c}`"),
    };
    (shown, first.len_utf8())
}

/// The name of a grammar rule in a user's words; `None` for rules users never need to see.
fn describe_rule(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "the end of the query",
        Rule::statement | Rule::expr_stmt => "a statement",
        Rule::let_stmt | Rule::kw_let => "`let`",
        Rule::pipe_expr | Rule::scalar_expr | Rule::postfix_expr => "an expression",
        Rule::tabular_op | Rule::op_chain => "a query operator such as `where`",
        Rule::where_op
        | Rule::extend_op
        | Rule::project_op
        | Rule::project_away_op
        | Rule::project_keep_op
        | Rule::project_rename_op
        | Rule::project_reorder_op
        | Rule::summarize_op
        | Rule::join_op
        | Rule::lookup_op
        | Rule::mv_expand_op
        | Rule::mv_apply_op
        | Rule::parse_op
        | Rule::parse_where_op
        | Rule::parse_kv_op
        | Rule::top_op
        | Rule::top_nested_op
        | Rule::top_hitters_op
        | Rule::take_op
        | Rule::sort_op
        | Rule::distinct_op
        | Rule::count_op
        | Rule::as_op
        | Rule::serialize_op
        | Rule::make_series_op
        | Rule::invoke_op
        | Rule::render_op
        | Rule::getschema_op
        | Rule::sample_op
        | Rule::sample_distinct_op
        | Rule::reduce_op
        | Rule::fork_op
        | Rule::facet_op
        | Rule::partition_op
        | Rule::consume_op
        | Rule::scan_op => "a query operator such as `where`",
        Rule::binary_op | Rule::string_op => "an operator",
        Rule::list_op => "`in`",
        Rule::list_tail => "a list in brackets `(...)`",
        Rule::between_op | Rule::between_tail => "`between`",
        Rule::ident => "a name",
        Rule::word => "a name",
        Rule::function_name | Rule::call | Rule::call_parens => "a function call",
        Rule::name_or_call => "a name",
        Rule::string_lit | Rule::quoted_string | Rule::verbatim_string => "a string literal",
        Rule::long | Rule::real | Rule::hex_long => "a number",
        Rule::timespan => "a timespan such as `1h`",
        Rule::scalar_type => "a type name such as `string`",
        Rule::assignment | Rule::assignments | Rule::tuple_target => {
            "a column or `Name = expression`"
        }
        Rule::column_pattern | Rule::column_patterns | Rule::wildcard_name => "a column name",
        Rule::sort_key => "a sort column",
        Rule::sort_order => "`asc` or `desc`",
        Rule::nulls_position => "`nulls first` or `nulls last`",
        Rule::hint_options
        | Rule::join_options
        | Rule::union_options
        | Rule::expand_options
        | Rule::parse_options
        | Rule::search_options
        | Rule::consume_options => "an option such as `kind=inner`",
        Rule::join_on => "`on`",
        Rule::join_key => "a join key (`Column` or `$left.A == $right.B`)",
        Rule::by_clause | Rule::kw_by => "`by`",
        Rule::kw_on => "`on`",
        Rule::kw_with => "`with`",
        Rule::kw_of => "`of`",
        Rule::kw_to => "`to`",
        Rule::kw_from => "`from`",
        Rule::kw_step => "`step`",
        Rule::kw_as => "`as`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_typeof => "`typeof`",
        Rule::kw_limit => "`limit`",
        Rule::kw_in => "`in`",
        Rule::kw_where => "`where`",
        Rule::function_def | Rule::params | Rule::param => "a function parameter",
        Rule::body => "a function body `{ ... }`",
        Rule::column_decl => "a column declaration `Name:type`",
        Rule::dynamic_lit => "`dynamic(...)`",
        Rule::dynamic_array | Rule::dynamic_object | Rule::dynamic_scalar | Rule::dynamic_null => {
            "a dynamic value"
        }
        Rule::dynamic_pair => "a `\"key\": value` pair",
        Rule::parse_pattern | Rule::parse_capture | Rule::parse_skip => {
            "a parse pattern (strings, `Column:type` or `*`)"
        }
        Rule::expand_item => "a column to expand",
        Rule::render_prop => "a `name=value` property",
        Rule::with_options => "`with (...)`",
        Rule::paren_pipe => "`(`",
        Rule::args => "a function argument",
        Rule::star | Rule::distinct_all | Rule::any_table => "`*`",
        Rule::reorder_item => "a column name",
        Rule::table_pattern => "a table name",
        Rule::index => "`[`",
        Rule::member | Rule::method_call => "`.`",
        Rule::top_nested_level | Rule::kw_top_nested => "`top-nested`",
        Rule::series_agg => "an aggregation",
        Rule::limit_clause => "`limit`",
        Rule::sub_query => "a sub-query",
        Rule::in_tables => "`in (tables)`",
        Rule::set_stmt | Rule::kw_set => "`set`",
        Rule::declare_stmt => "`declare query_parameters(...)`",
        Rule::boolean => "`true` or `false`",
        _ => return None,
    })
}

fn invalid_literal(span: Span, message: String) -> SyntaxError {
    SyntaxError {
        kind: SyntaxErrorKind::InvalidLiteral,
        span,
        message,
        expected: vec![],
    }
}

// ---------------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------------

struct Builder<'t> {
    #[allow(dead_code)]
    text: &'t str,
}

/// The pair's extent without trailing whitespace: pest skips trivia before trying an
/// optional or repeated tail (`sort_key = { expr ~ order? }`), so a rule that ends in one
/// also covers the line break after it, and a code frame would underline the next line.
fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.start() + s.as_str().trim_end().len())
}

/// Operator precedence, loosest first.
const PREC_OR: u8 = 1;
const PREC_AND: u8 = 2;
const PREC_COMPARE: u8 = 3;
const PREC_ADD: u8 = 4;
const PREC_MUL: u8 = 5;

enum Infix {
    Binary(BinaryOp),
    Logical(LogicalOp),
}

impl Infix {
    fn precedence(&self) -> u8 {
        match self {
            Infix::Logical(LogicalOp::Or) => PREC_OR,
            Infix::Logical(LogicalOp::And) => PREC_AND,
            Infix::Binary(BinaryOp::Add | BinaryOp::Sub) => PREC_ADD,
            Infix::Binary(BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod) => PREC_MUL,
            Infix::Binary(_) => PREC_COMPARE,
        }
    }
}

/// An operand on the shunting-yard stack, with the height its chain has reached.
struct Operand {
    expr: Expr,
    height: u32,
}

impl<'t> Builder<'t> {
    fn query(&self, pair: Pair<'_, Rule>) -> Result<Query> {
        let span = span_of(&pair);
        let mut statements = Vec::new();
        for p in pair.into_inner() {
            if p.as_rule() == Rule::EOI {
                continue;
            }
            statements.push(self.statement(p)?);
        }
        Ok(Query { statements, span })
    }

    fn statement(&self, pair: Pair<'_, Rule>) -> Result<Statement> {
        let span = span_of(&pair);
        Ok(match pair.as_rule() {
            Rule::let_stmt => Statement::Let(self.let_stmt(pair)?),
            Rule::set_stmt => {
                let mut inner = pair.into_inner();
                let _kw = inner.next();
                let name = inner.next().unwrap().as_str().to_string();
                let value = inner.next().map(|v| self.option_value(v)).transpose()?;
                Statement::Set(SetOption { name, value, span })
            }
            Rule::declare_stmt => {
                let params = match pair.into_inner().find(|p| p.as_rule() == Rule::params) {
                    Some(p) => self.params(p)?,
                    None => vec![],
                };
                Statement::DeclareQueryParameters { params, span }
            }
            Rule::expr_stmt => Statement::Expr(self.pipe_expr(pair.into_inner().next().unwrap())?),
            r => unreachable!("statement rule {r:?}"),
        })
    }

    fn let_stmt(&self, pair: Pair<'_, Rule>) -> Result<Let> {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let _kw = inner.next();
        let name = self.ident(inner.next().unwrap())?;
        let value_pair = inner.next().unwrap();
        let value = match value_pair.as_rule() {
            Rule::function_def => LetValue::Function(self.function(value_pair)?),
            Rule::view_def => LetValue::View(self.function(value_pair)?),
            _ => LetValue::Expr(self.pipe_expr(value_pair)?),
        };
        Ok(Let { name, value, span })
    }

    fn function(&self, pair: Pair<'_, Rule>) -> Result<Function> {
        let span = span_of(&pair);
        let mut params = vec![];
        let mut body = vec![];
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::params => params = self.params(p)?,
                Rule::body => {
                    for s in p.into_inner() {
                        body.push(match s.as_rule() {
                            Rule::pipe_expr => Statement::Expr(self.pipe_expr(s)?),
                            _ => self.statement(s)?,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(Function { params, body, span })
    }

    fn params(&self, pair: Pair<'_, Rule>) -> Result<Vec<Param>> {
        pair.into_inner().map(|p| self.param(p)).collect()
    }

    fn param(&self, pair: Pair<'_, Rule>) -> Result<Param> {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(inner.next().unwrap())?;
        let ty_pair = inner.next().unwrap();
        let ty = match ty_pair.as_rule() {
            Rule::any_table => ParamType::AnyTable,
            Rule::table_schema => ParamType::Table {
                columns: self.column_decls(ty_pair)?,
            },
            _ => ParamType::Scalar {
                ty: scalar_type(&ty_pair),
            },
        };
        let default = inner.next().map(|d| self.pipe_expr(d)).transpose()?;
        Ok(Param {
            name,
            ty,
            default,
            span,
        })
    }

    fn column_decls(&self, pair: Pair<'_, Rule>) -> Result<Vec<ColumnDecl>> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::column_decl)
            .map(|p| self.column_decl(p))
            .collect()
    }

    fn column_decl(&self, pair: Pair<'_, Rule>) -> Result<ColumnDecl> {
        let mut inner = pair.into_inner();
        let name = self.ident(inner.next().unwrap())?;
        let ty = scalar_type(&inner.next().unwrap());
        Ok(ColumnDecl { name, ty })
    }

    // ---- names ----------------------------------------------------------------

    fn ident(&self, pair: Pair<'_, Rule>) -> Result<Ident> {
        let span = span_of(&pair);
        let inner = match pair.as_rule() {
            Rule::ident => pair.into_inner().next().unwrap(),
            _ => pair,
        };
        let name = match inner.as_rule() {
            Rule::bracketed_name => {
                let lit = inner.into_inner().next().unwrap();
                self.string_lit(lit)?.value
            }
            _ => inner.as_str().to_string(),
        };
        Ok(Ident { name, span })
    }

    /// A name used as an expression.
    fn name_expr(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        let span = span_of(&pair);
        let name = self.ident(pair)?.name;
        Ok(Expr {
            kind: ExprKind::Name { name },
            span,
        })
    }

    // ---- tabular expressions ----------------------------------------------------

    fn pipe_expr(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let head = inner.next().unwrap();
        let source = match head.as_rule() {
            Rule::scalar_expr => self.scalar_expr(head)?,
            _ => {
                let op = self.operator(head)?;
                Expr {
                    span: op.span,
                    kind: ExprKind::Source {
                        operator: Box::new(op),
                    },
                }
            }
        };
        let operators: Vec<Operator> = inner.map(|p| self.operator(p)).collect::<Result<_>>()?;
        if operators.is_empty() {
            return Ok(source);
        }
        Ok(Expr {
            kind: ExprKind::Pipeline {
                source: Box::new(source),
                operators,
            },
            span,
        })
    }

    /// A chain that may start with an operator (`top 1 by x | project y`).
    fn sub_query(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        let inner = pair.into_inner().next().unwrap();
        match inner.as_rule() {
            Rule::op_chain => {
                let span = span_of(&inner);
                let mut ops = inner.into_inner();
                let first = self.operator(ops.next().unwrap())?;
                let source = Expr {
                    span: first.span,
                    kind: ExprKind::Source {
                        operator: Box::new(first),
                    },
                };
                let operators: Vec<Operator> =
                    ops.map(|p| self.operator(p)).collect::<Result<_>>()?;
                if operators.is_empty() {
                    return Ok(source);
                }
                Ok(Expr {
                    kind: ExprKind::Pipeline {
                        source: Box::new(source),
                        operators,
                    },
                    span,
                })
            }
            _ => self.pipe_expr(inner),
        }
    }

    fn options(&self, pair: Pair<'_, Rule>) -> Result<Vec<OperatorOption>> {
        pair.into_inner()
            .map(|opt| {
                let mut inner = opt.into_inner();
                let name = inner.next().unwrap().as_str().to_string();
                let value = self.option_value(inner.next().unwrap())?;
                Ok(OperatorOption { name, value })
            })
            .collect()
    }

    fn with_props(&self, pair: Pair<'_, Rule>) -> Result<Vec<OperatorOption>> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::render_prop)
            .map(|prop| {
                let mut inner = prop.into_inner();
                let name = inner.next().unwrap().as_str().to_string();
                let value = self.option_value(inner.next().unwrap())?;
                Ok(OperatorOption { name, value })
            })
            .collect()
    }

    fn option_value(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        match pair.as_rule() {
            Rule::ident => self.name_expr(pair),
            _ => self.literal(pair),
        }
    }

    fn assignments(&self, pair: Pair<'_, Rule>) -> Result<Vec<Assignment>> {
        pair.into_inner().map(|p| self.assignment(p)).collect()
    }

    fn assignment(&self, pair: Pair<'_, Rule>) -> Result<Assignment> {
        let mut inner = pair.into_inner();
        let first = inner.next().unwrap();
        if first.as_rule() == Rule::tuple_target {
            let names = first
                .into_inner()
                .map(|id| self.ident(id))
                .collect::<Result<_>>()?;
            let value = self.scalar_expr(inner.next().unwrap())?;
            return Ok(Assignment { names, value });
        }
        let first = self.scalar_expr(first)?;
        match inner.next() {
            None => Ok(Assignment {
                names: vec![],
                value: first,
            }),
            Some(value) => Ok(Assignment {
                names: vec![assigned_name(first)?],
                value: self.scalar_expr(value)?,
            }),
        }
    }

    fn column_patterns(&self, pair: Pair<'_, Rule>) -> Result<Vec<ColumnPattern>> {
        pair.into_inner().map(|p| self.column_pattern(p)).collect()
    }

    fn column_pattern(&self, pair: Pair<'_, Rule>) -> Result<ColumnPattern> {
        let span = span_of(&pair);
        let inner = pair.into_inner().next().unwrap();
        let pattern = match inner.as_rule() {
            Rule::bracketed_name => self.string_lit(inner.into_inner().next().unwrap())?.value,
            _ => inner.as_str().to_string(),
        };
        Ok(ColumnPattern { pattern, span })
    }

    fn sort_key(&self, pair: Pair<'_, Rule>) -> Result<SortKey> {
        let mut expr = None;
        let mut order = None;
        let mut nulls = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::sort_order => order = Some(sort_order(&p)),
                Rule::nulls_position => {
                    nulls = Some(if p.as_str().ends_with("first") {
                        NullsPosition::First
                    } else {
                        NullsPosition::Last
                    })
                }
                _ => expr = Some(self.scalar_expr(p)?),
            }
        }
        Ok(SortKey {
            expr: expr.unwrap(),
            order,
            nulls,
        })
    }

    fn join_condition(&self, pair: Pair<'_, Rule>) -> Result<JoinCondition> {
        if let Some(predicate) = pair
            .clone()
            .into_inner()
            .find(|p| p.as_rule() == Rule::scalar_expr)
        {
            return Ok(JoinCondition::Where {
                predicate: self.scalar_expr(predicate)?,
            });
        }
        let mut keys = vec![];
        for key in pair.into_inner().filter(|p| p.as_rule() == Rule::join_key) {
            let inner = key.into_inner().next().unwrap();
            let inner_rule = inner.as_rule();
            keys.push(match inner_rule {
                Rule::left_right_key | Rule::right_left_key => {
                    let mut ids = inner.into_inner();
                    let first = self.ident(ids.next().unwrap())?;
                    let second = self.ident(ids.next().unwrap())?;
                    let (left, right) = if inner_rule == Rule::left_right_key {
                        (first, second)
                    } else {
                        (second, first)
                    };
                    JoinKey::Pair { left, right }
                }
                _ => JoinKey::Same {
                    column: self.ident(inner)?,
                },
            });
        }
        Ok(JoinCondition::Keys { keys })
    }

    fn expand_item(&self, pair: Pair<'_, Rule>) -> Result<ExpandItem> {
        let mut name = None;
        let mut value = None;
        let mut to_type = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)?),
                Rule::scalar_expr => value = Some(self.scalar_expr(p)?),
                Rule::scalar_type => to_type = Some(scalar_type(&p)),
                _ => {}
            }
        }
        Ok(ExpandItem {
            name,
            value: value.unwrap(),
            to_type,
        })
    }

    fn operator(&self, pair: Pair<'_, Rule>) -> Result<Operator> {
        let span = span_of(&pair);
        let rule = pair.as_rule();
        // Keywords are atomic pairs; skip them, keep the arguments.
        let args: Vec<Pair<'_, Rule>> = pair
            .into_inner()
            .filter(|p| !is_keyword_rule(p.as_rule()))
            .collect();
        let mut args = args.into_iter();
        let mut next = || args.next();
        let kind = match rule {
            Rule::where_op => {
                let predicate = self.scalar_expr(next().unwrap())?;
                let predicate = match next() {
                    Some(value) => self.named(predicate, value)?,
                    None => predicate,
                };
                OperatorKind::Where { predicate }
            }
            Rule::extend_op => OperatorKind::Extend {
                columns: self.assignments(next().unwrap())?,
            },
            Rule::project_op => OperatorKind::Project {
                columns: self.assignments(next().unwrap())?,
            },
            Rule::project_away_op => OperatorKind::ProjectAway {
                columns: self.column_patterns(next().unwrap())?,
            },
            Rule::project_keep_op => OperatorKind::ProjectKeep {
                columns: self.column_patterns(next().unwrap())?,
            },
            Rule::project_rename_op => OperatorKind::ProjectRename {
                renames: self.assignments(next().unwrap())?,
            },
            Rule::project_reorder_op => {
                let mut columns = vec![];
                while let Some(item) = next() {
                    let mut inner = item.into_inner();
                    let pattern = self.column_pattern(inner.next().unwrap())?;
                    let order = inner.next().map(|o| sort_order(&o));
                    columns.push((pattern, order));
                }
                OperatorKind::ProjectReorder { columns }
            }
            Rule::summarize_op => {
                let options = self.options(next().unwrap())?;
                let mut aggregates = vec![];
                let mut by = vec![];
                while let Some(p) = next() {
                    match p.as_rule() {
                        Rule::summarize_aggs => {
                            aggregates = self.assignments(p.into_inner().next().unwrap())?
                        }
                        Rule::by_clause => by = self.by_clause(p)?,
                        r => unreachable!("summarize part {r:?}"),
                    }
                }
                OperatorKind::Summarize {
                    options,
                    aggregates,
                    by,
                }
            }
            Rule::join_op | Rule::lookup_op => {
                let options = self.options(next().unwrap())?;
                let right = Box::new(self.postfix_expr(next().unwrap())?);
                let on = self.join_condition(next().unwrap())?;
                if rule == Rule::join_op {
                    OperatorKind::Join { options, right, on }
                } else {
                    OperatorKind::Lookup { options, right, on }
                }
            }
            Rule::union_op => {
                let options = self.options(next().unwrap())?;
                let mut tables = vec![];
                while let Some(t) = next() {
                    tables.push(self.table_item(t)?);
                }
                OperatorKind::Union { options, tables }
            }
            Rule::mv_expand_op | Rule::mv_apply_op => {
                let options = self.options(next().unwrap())?;
                let mut items = vec![];
                let mut limit = None;
                let mut on = None;
                while let Some(p) = next() {
                    match p.as_rule() {
                        Rule::expand_item => items.push(self.expand_item(p)?),
                        Rule::limit_clause => {
                            limit = Some(
                                self.scalar_expr(
                                    p.into_inner()
                                        .find(|q| q.as_rule() == Rule::scalar_expr)
                                        .unwrap(),
                                )?,
                            )
                        }
                        Rule::sub_query => on = Some(Box::new(self.sub_query(p)?)),
                        r => unreachable!("mv-expand part {r:?}"),
                    }
                }
                match on {
                    Some(on) => OperatorKind::MvApply {
                        options,
                        items,
                        limit,
                        on,
                    },
                    None => OperatorKind::MvExpand {
                        options,
                        items,
                        limit,
                    },
                }
            }
            Rule::parse_op | Rule::parse_where_op => {
                let options = self.options(next().unwrap())?;
                let source = self.scalar_expr(next().unwrap())?;
                let mut pattern = vec![];
                for part in next().unwrap().into_inner() {
                    pattern.push(match part.as_rule() {
                        Rule::parse_skip => ParsePart::Skip,
                        Rule::string_lit => ParsePart::Text {
                            value: self.string_lit(part)?,
                        },
                        _ => {
                            let mut inner = part.into_inner();
                            let name = self.ident(inner.next().unwrap())?;
                            let ty = inner.next().map(|t| scalar_type(&t));
                            ParsePart::Capture { name, ty }
                        }
                    });
                }
                OperatorKind::Parse {
                    drop_unmatched: rule == Rule::parse_where_op,
                    options,
                    source,
                    pattern,
                }
            }
            Rule::parse_kv_op => {
                let source = self.scalar_expr(next().unwrap())?;
                let mut columns = vec![];
                let mut with = vec![];
                while let Some(p) = next() {
                    match p.as_rule() {
                        Rule::column_decl => columns.push(self.column_decl(p)?),
                        Rule::with_options => with = self.with_props(p)?,
                        r => unreachable!("parse-kv part {r:?}"),
                    }
                }
                OperatorKind::ParseKv {
                    source,
                    columns,
                    with,
                }
            }
            Rule::top_op => OperatorKind::Top {
                count: self.scalar_expr(next().unwrap())?,
                by: self.sort_key(next().unwrap())?,
            },
            Rule::top_nested_op => {
                let mut levels = vec![];
                while let Some(level) = next() {
                    levels.push(self.top_nested_level(level)?);
                }
                OperatorKind::TopNested { levels }
            }
            Rule::top_hitters_op => OperatorKind::TopHitters {
                count: self.scalar_expr(next().unwrap())?,
                of: self.scalar_expr(next().unwrap())?,
                by: next().map(|p| self.scalar_expr(p)).transpose()?,
            },
            Rule::take_op => OperatorKind::Take {
                count: self.scalar_expr(next().unwrap())?,
            },
            Rule::sort_op => {
                let mut keys = vec![];
                while let Some(k) = next() {
                    keys.push(self.sort_key(k)?);
                }
                OperatorKind::Sort { keys }
            }
            Rule::distinct_op => {
                let p = next().unwrap();
                OperatorKind::Distinct {
                    columns: match p.as_rule() {
                        Rule::distinct_all => vec![],
                        _ => self.assignments(p)?,
                    },
                }
            }
            Rule::count_op => OperatorKind::Count,
            Rule::as_op => OperatorKind::As {
                options: self.options(next().unwrap())?,
                name: self.ident(next().unwrap())?,
            },
            Rule::serialize_op => OperatorKind::Serialize {
                columns: match next() {
                    Some(p) => self.assignments(p)?,
                    None => vec![],
                },
            },
            Rule::getschema_op => OperatorKind::GetSchema,
            Rule::scan_op => {
                let options = self.options(next().unwrap())?;
                let mut declare = vec![];
                let mut steps = vec![];
                while let Some(p) = next() {
                    match p.as_rule() {
                        Rule::column_decl => declare.push(self.column_decl(p)?),
                        Rule::scan_step => steps.push(self.scan_step(p)?),
                        r => unreachable!("scan part {r:?}"),
                    }
                }
                OperatorKind::Scan {
                    options,
                    declare,
                    steps,
                }
            }
            Rule::consume_op => {
                let _ = next();
                OperatorKind::Consume
            }
            Rule::make_series_op => self.make_series(next().unwrap(), &mut next)?,
            Rule::evaluate_op => {
                let options = self.options(next().unwrap())?;
                let plugin = self.name_or_call(next().unwrap())?;
                let mut schema = None;
                while let Some(p) = next() {
                    schema
                        .get_or_insert_with(Vec::new)
                        .push(self.column_decl(p)?);
                }
                OperatorKind::Evaluate {
                    options,
                    plugin,
                    schema,
                }
            }
            Rule::invoke_op => OperatorKind::Invoke {
                function: self.name_or_call(next().unwrap())?,
            },
            Rule::render_op => {
                let chart = self.ident(next().unwrap())?;
                let mut with = vec![];
                while let Some(p) = next() {
                    let mut inner = p.into_inner();
                    let name = inner.next().unwrap().as_str().to_string();
                    let value = self.option_value(inner.next().unwrap())?;
                    with.push(OperatorOption { name, value });
                }
                OperatorKind::Render { chart, with }
            }
            Rule::sample_op => OperatorKind::Sample {
                count: self.scalar_expr(next().unwrap())?,
            },
            Rule::sample_distinct_op => OperatorKind::SampleDistinct {
                count: self.scalar_expr(next().unwrap())?,
                of: self.scalar_expr(next().unwrap())?,
            },
            Rule::search_op | Rule::find_op => {
                let options = self.options(next().unwrap())?;
                let mut tables = vec![];
                let mut predicate = None;
                let mut project = None;
                while let Some(p) = next() {
                    match p.as_rule() {
                        Rule::in_tables => {
                            for t in p.into_inner().filter(|t| !is_keyword_rule(t.as_rule())) {
                                tables.push(self.table_item(t)?);
                            }
                        }
                        Rule::scalar_expr => predicate = Some(self.scalar_expr(p)?),
                        Rule::find_project => {
                            let cols: Vec<Ident> = p
                                .into_inner()
                                .filter(|c| c.as_rule() == Rule::ident)
                                .map(|c| self.ident(c))
                                .collect::<Result<_>>()?;
                            project = Some(cols);
                        }
                        r => unreachable!("search part {r:?}"),
                    }
                }
                let predicate = predicate.unwrap();
                if rule == Rule::search_op {
                    OperatorKind::Search {
                        options,
                        tables,
                        predicate,
                    }
                } else {
                    OperatorKind::Find {
                        options,
                        tables,
                        predicate,
                        project,
                    }
                }
            }
            Rule::reduce_op => OperatorKind::Reduce {
                by: self.scalar_expr(next().unwrap())?,
                with: match next() {
                    Some(p) => self.with_props(p)?,
                    None => vec![],
                },
            },
            Rule::fork_op => {
                let mut branches = vec![];
                while let Some(p) = next() {
                    branches.push(self.sub_query(p)?);
                }
                OperatorKind::Fork { branches }
            }
            Rule::facet_op => {
                let mut by = vec![];
                let mut with = None;
                while let Some(p) = next() {
                    match p.as_rule() {
                        Rule::ident => by.push(self.ident(p)?),
                        _ => with = Some(Box::new(self.sub_query(p)?)),
                    }
                }
                OperatorKind::Facet { by, with }
            }
            Rule::partition_op => OperatorKind::Partition {
                options: self.options(next().unwrap())?,
                by: self.ident(next().unwrap())?,
                query: Box::new(self.sub_query(next().unwrap())?),
            },
            Rule::datatable_op | Rule::externaldata_op => {
                let mut schema = vec![];
                let mut values = vec![];
                let mut with = vec![];
                while let Some(p) = next() {
                    match p.as_rule() {
                        Rule::column_decl => schema.push(self.column_decl(p)?),
                        Rule::scalar_expr => values.push(self.scalar_expr(p)?),
                        Rule::with_options => with = self.with_props(p)?,
                        r => unreachable!("datatable part {r:?}"),
                    }
                }
                if rule == Rule::datatable_op {
                    OperatorKind::Datatable { schema, values }
                } else {
                    OperatorKind::ExternalData {
                        schema,
                        uris: values,
                        with,
                    }
                }
            }
            Rule::range_op => OperatorKind::Range {
                column: self.ident(next().unwrap())?,
                from: self.scalar_expr(next().unwrap())?,
                to: self.scalar_expr(next().unwrap())?,
                step: self.scalar_expr(next().unwrap())?,
            },
            Rule::print_op => OperatorKind::Print {
                columns: self.assignments(next().unwrap())?,
            },
            r => unreachable!("operator rule {r:?}"),
        };
        Ok(Operator { kind, span })
    }

    fn scan_step(&self, pair: Pair<'_, Rule>) -> Result<ScanStep> {
        let mut name = None;
        let mut optional = false;
        let mut options = vec![];
        let mut predicate = None;
        let mut assignments = vec![];
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)?),
                Rule::scan_optional => optional = true,
                Rule::scan_step_options => options = self.options(p)?,
                Rule::scalar_expr => predicate = Some(self.scalar_expr(p)?),
                Rule::assignments => assignments = self.assignments(p)?,
                _ => {}
            }
        }
        Ok(ScanStep {
            name: name.unwrap(),
            optional,
            options,
            predicate: predicate.unwrap(),
            assignments,
        })
    }

    fn by_clause(&self, pair: Pair<'_, Rule>) -> Result<Vec<Assignment>> {
        let assignments = pair
            .into_inner()
            .find(|p| p.as_rule() == Rule::assignments)
            .unwrap();
        self.assignments(assignments)
    }

    fn table_item(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        match pair.as_rule() {
            Rule::table_pattern => Ok(Expr {
                span: span_of(&pair),
                kind: ExprKind::TablePattern {
                    pattern: pair.as_str().to_string(),
                },
            }),
            _ => self.postfix_expr(pair),
        }
    }

    fn top_nested_level(&self, pair: Pair<'_, Rule>) -> Result<TopNestedLevel> {
        let mut count = None;
        let mut assignments = vec![];
        let mut others = None;
        let mut order = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::top_count => count = Some(self.scalar_expr(p.into_inner().next().unwrap())?),
                Rule::assignment => assignments.push(self.assignment(p)?),
                Rule::top_others => {
                    let e = p.into_inner().find(|q| q.as_rule() == Rule::scalar_expr);
                    others = Some(self.scalar_expr(e.unwrap())?);
                }
                Rule::sort_order => order = Some(sort_order(&p)),
                _ => {}
            }
        }
        let mut assignments = assignments.into_iter();
        Ok(TopNestedLevel {
            count,
            of: assignments.next().unwrap(),
            others,
            by: assignments.next().unwrap(),
            order,
        })
    }

    fn make_series<'i>(
        &self,
        options: Pair<'i, Rule>,
        next: &mut dyn FnMut() -> Option<Pair<'i, Rule>>,
    ) -> Result<OperatorKind> {
        let options = self.options(options)?;
        let mut aggregates = vec![];
        let mut on = None;
        let mut range = None;
        let mut by = vec![];
        while let Some(p) = next() {
            match p.as_rule() {
                Rule::series_agg => {
                    let mut inner = p.into_inner().filter(|q| !is_keyword_rule(q.as_rule()));
                    let aggregate = self.assignment(inner.next().unwrap())?;
                    let default = inner.next().map(|d| self.scalar_expr(d)).transpose()?;
                    aggregates.push(SeriesAggregate { aggregate, default });
                }
                Rule::scalar_expr => on = Some(self.scalar_expr(p)?),
                Rule::series_in_range => {
                    let mut e = p.into_inner().filter(|q| q.as_rule() == Rule::scalar_expr);
                    range = Some(SeriesRange::InRange {
                        start: self.scalar_expr(e.next().unwrap())?,
                        stop: self.scalar_expr(e.next().unwrap())?,
                        step: self.scalar_expr(e.next().unwrap())?,
                    });
                }
                Rule::series_from_to => {
                    let (mut from, mut to, mut step) = (None, None, None);
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::series_from => {
                                from = Some(self.scalar_expr(q.into_inner().next().unwrap())?)
                            }
                            Rule::series_to => {
                                to = Some(self.scalar_expr(q.into_inner().next().unwrap())?)
                            }
                            Rule::scalar_expr => step = Some(self.scalar_expr(q)?),
                            _ => {}
                        }
                    }
                    range = Some(SeriesRange::FromTo {
                        from,
                        to,
                        step: step.unwrap(),
                    });
                }
                Rule::by_clause => by = self.by_clause(p)?,
                r => unreachable!("make-series part {r:?}"),
            }
        }
        Ok(OperatorKind::MakeSeries {
            options,
            aggregates,
            on: on.unwrap(),
            range: range.unwrap(),
            by,
        })
    }

    // ---- scalar expressions ---------------------------------------------------

    fn scalar_expr(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        let mut inner = pair.into_inner().peekable();
        let first = self.operand(&mut inner)?;
        let mut operands: Vec<Operand> = vec![first];
        let mut operators: Vec<Infix> = vec![];
        while let Some(p) = inner.next() {
            match p.as_rule() {
                Rule::binary_op => {
                    let infix = infix_op(&p);
                    let prec = infix.precedence();
                    while operators.last().is_some_and(|top| top.precedence() >= prec) {
                        reduce(&mut operands, &mut operators)?;
                    }
                    operators.push(infix);
                    operands.push(self.operand(&mut inner)?);
                }
                Rule::list_tail | Rule::between_tail => {
                    // A postfix comparison: applies to everything that binds tighter.
                    while operators
                        .last()
                        .is_some_and(|top| top.precedence() >= PREC_COMPARE)
                    {
                        reduce(&mut operands, &mut operators)?;
                    }
                    let left = operands.pop().unwrap();
                    let applied = self.postfix_comparison(left.expr, p)?;
                    operands.push(checked(applied, left.height + 1)?);
                }
                r => unreachable!("scalar tail {r:?}"),
            }
        }
        while !operators.is_empty() {
            reduce(&mut operands, &mut operators)?;
        }
        Ok(operands.pop().unwrap().expr)
    }

    fn postfix_comparison(&self, operand: Expr, pair: Pair<'_, Rule>) -> Result<Expr> {
        let tail_span = span_of(&pair);
        let span = operand.span.to(tail_span);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let op_text = inner.next().unwrap().as_str();
        let kind = if rule == Rule::list_tail {
            let op = match op_text {
                "in" => ListOp::In,
                "!in" => ListOp::NotIn,
                "in~" => ListOp::InCi,
                "!in~" => ListOp::NotInCi,
                "has_any" => ListOp::HasAny,
                "has_all" => ListOp::HasAll,
                other => unreachable!("list operator {other}"),
            };
            let items = inner.map(|p| self.pipe_expr(p)).collect::<Result<_>>()?;
            ExprKind::List {
                op,
                operand: Box::new(operand),
                items,
            }
        } else {
            let low = self.scalar_expr(inner.next().unwrap())?;
            let high = self.scalar_expr(inner.next().unwrap())?;
            ExprKind::Between {
                negated: op_text.starts_with('!'),
                operand: Box::new(operand),
                low: Box::new(low),
                high: Box::new(high),
            }
        };
        Ok(Expr { kind, span })
    }

    /// One operand of a flat scalar expression: signs, a primary and its postfixes.
    fn operand<'i>(
        &self,
        pairs: &mut std::iter::Peekable<pest::iterators::Pairs<'i, Rule>>,
    ) -> Result<Operand> {
        let mut signs = vec![];
        while let Some(p) = pairs.next_if(|p| p.as_rule() == Rule::unary_op) {
            let op = if p.as_str() == "-" {
                UnaryOp::Minus
            } else {
                UnaryOp::Plus
            };
            signs.push((op, span_of(&p)));
        }
        let primary = self.primary(pairs.next().unwrap())?;
        let postfixes = std::iter::from_fn(|| {
            pairs.next_if(|p| matches!(p.as_rule(), Rule::member | Rule::index | Rule::method_call))
        });
        let Operand {
            mut expr,
            mut height,
        } = self.apply_postfixes(primary, postfixes)?;
        for (op, sign_span) in signs.into_iter().rev() {
            expr = Expr {
                span: sign_span.to(expr.span),
                kind: ExprKind::Unary {
                    op,
                    operand: Box::new(expr),
                },
            };
            height += 1;
        }
        checked(expr, height)
    }

    fn postfix_expr(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        Ok(self.postfix_chain(pair)?.expr)
    }

    fn postfix_chain(&self, pair: Pair<'_, Rule>) -> Result<Operand> {
        let mut inner = pair.into_inner();
        let primary = self.primary(inner.next().unwrap())?;
        self.apply_postfixes(primary, inner)
    }

    fn apply_postfixes<'i>(
        &self,
        mut expr: Expr,
        postfixes: impl Iterator<Item = Pair<'i, Rule>>,
    ) -> Result<Operand> {
        let mut height = 1;
        for p in postfixes {
            let span = expr.span.to(span_of(&p));
            let kind = match p.as_rule() {
                Rule::member => ExprKind::Member {
                    target: Box::new(expr),
                    member: p.into_inner().next().unwrap().as_str().to_string(),
                },
                Rule::index => {
                    let index = self.scalar_expr(p.into_inner().next().unwrap())?;
                    match index.kind {
                        ExprKind::Literal {
                            value: Literal::String(s),
                        } => ExprKind::Member {
                            target: Box::new(expr),
                            member: s.value,
                        },
                        _ => ExprKind::Index {
                            target: Box::new(expr),
                            index: Box::new(index),
                        },
                    }
                }
                Rule::method_call => {
                    let mut parts = p.into_inner();
                    let name = parts.next().unwrap().as_str().to_string();
                    let args = match parts.next() {
                        Some(a) => self.args(a)?,
                        None => vec![],
                    };
                    ExprKind::MethodCall {
                        target: Box::new(expr),
                        name,
                        args,
                    }
                }
                r => unreachable!("postfix {r:?}"),
            };
            expr = Expr { kind, span };
            height += 1;
            if height > MAX_CHAIN_HEIGHT {
                return Err(too_deep(expr.span));
            }
        }
        Ok(Operand { expr, height })
    }

    fn primary(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        let span = span_of(&pair);
        match pair.as_rule() {
            Rule::paren_pipe => self.pipe_expr(pair.into_inner().next().unwrap()),
            Rule::name_or_call => self.name_or_call(pair),
            Rule::ident => self.name_expr(pair),
            Rule::star => Ok(Expr {
                kind: ExprKind::Star,
                span,
            }),
            Rule::client_parameter => Ok(Expr {
                kind: ExprKind::ClientParameter {
                    name: pair.into_inner().next().unwrap().as_str().to_string(),
                },
                span,
            }),
            _ => self.literal(pair),
        }
    }

    /// `name = value` (a named argument or a named `where` predicate): `target` was read
    /// as an expression and must be a name.
    fn named(&self, target: Expr, value: Pair<'_, Rule>) -> Result<Expr> {
        let value_pair = value.into_inner().next().unwrap();
        let value = match value_pair.as_rule() {
            Rule::pipe_expr => self.pipe_expr(value_pair)?,
            _ => self.scalar_expr(value_pair)?,
        };
        let span = target.span.to(value.span);
        let name = assigned_name(target)?.name;
        Ok(Expr {
            kind: ExprKind::Named {
                name,
                value: Box::new(value),
            },
            span,
        })
    }

    /// `f(...)` is a call, a bare `f` a name. Also reads `call`, whose parentheses the
    /// grammar requires.
    fn name_or_call(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        let mut inner = pair.into_inner();
        let name_pair = inner.next().unwrap();
        let name = name_pair.as_str().to_string();
        match inner.next() {
            Some(parens) => {
                let span = span_of(&name_pair).to(span_of(&parens));
                let args = match parens.into_inner().next() {
                    Some(a) => self.args(a)?,
                    None => vec![],
                };
                Ok(Expr {
                    kind: ExprKind::Call { name, args },
                    span,
                })
            }
            None => Ok(Expr {
                kind: ExprKind::Name { name },
                span: span_of(&name_pair),
            }),
        }
    }

    fn args(&self, pair: Pair<'_, Rule>) -> Result<Vec<Expr>> {
        let mut args: Vec<Expr> = vec![];
        for a in pair.into_inner() {
            let arg = match a.as_rule() {
                Rule::star => Expr {
                    kind: ExprKind::Star,
                    span: span_of(&a),
                },
                // `= value` names the argument just read.
                Rule::named_value => {
                    let target = args.pop().unwrap();
                    self.named(target, a)?
                }
                _ => self.pipe_expr(a)?,
            };
            args.push(arg);
        }
        Ok(args)
    }

    // ---- literals ----------------------------------------------------------------

    fn literal(&self, pair: Pair<'_, Rule>) -> Result<Expr> {
        let span = span_of(&pair);
        let value = self.literal_value(pair)?;
        Ok(Expr {
            kind: ExprKind::Literal { value },
            span,
        })
    }

    fn literal_value(&self, pair: Pair<'_, Rule>) -> Result<Literal> {
        let span = span_of(&pair);
        let text = pair.as_str();
        Ok(match pair.as_rule() {
            Rule::string_lit => Literal::String(self.string_lit(pair)?),
            Rule::boolean => Literal::Bool {
                value: text == "true",
            },
            Rule::long => Literal::Long {
                value: text
                    .parse()
                    .map_err(|_| invalid_literal(span, format!("`{text}` does not fit a long")))?,
            },
            Rule::hex_long => Literal::Long {
                value: i64::from_str_radix(&text[2..], 16)
                    .map_err(|_| invalid_literal(span, format!("`{text}` does not fit a long")))?,
            },
            Rule::real => Literal::Real {
                value: Real(
                    text.parse()
                        .map_err(|_| invalid_literal(span, format!("`{text}` is not a number")))?,
                ),
            },
            Rule::timespan => {
                let mut inner = pair.into_inner();
                let number = inner.next().unwrap().as_str();
                let unit = inner.next().unwrap().as_str();
                Literal::TimeSpan {
                    ticks: timespan_ticks(number, unit).ok_or_else(|| {
                        invalid_literal(span, format!("`{text}` is too long a timespan"))
                    })?,
                }
            }
            Rule::datetime_lit | Rule::guid_lit | Rule::timespan_lit => {
                let raw = pair
                    .into_inner()
                    .next()
                    .unwrap()
                    .as_str()
                    .trim()
                    .to_string();
                let is_null = raw == "null";
                match rule_literal_type(text) {
                    ScalarType::DateTime if is_null => Literal::Null {
                        ty: ScalarType::DateTime,
                    },
                    ScalarType::DateTime => Literal::DateTime { text: raw },
                    ScalarType::Guid if is_null => Literal::Null {
                        ty: ScalarType::Guid,
                    },
                    ScalarType::Guid => Literal::Guid { text: raw },
                    _ if is_null => Literal::Null {
                        ty: ScalarType::TimeSpan,
                    },
                    _ => Literal::TimeSpan {
                        ticks: parse_time_content(&raw).ok_or_else(|| {
                            invalid_literal(span, format!("`{raw}` is not a timespan"))
                        })?,
                    },
                }
            }
            Rule::typeof_lit => {
                let ty = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::scalar_type)
                    .unwrap();
                Literal::Type {
                    ty: scalar_type(&ty),
                }
            }
            Rule::scalar_typed_lit => {
                let mut inner = pair.into_inner();
                let ty = ScalarType::from_name(inner.next().unwrap().as_str()).unwrap();
                let raw = inner.next().unwrap().as_str().trim();
                typed_literal(ty, raw).ok_or_else(|| {
                    invalid_literal(span, format!("`{raw}` is not a valid {} value", ty.name()))
                })?
            }
            Rule::dynamic_lit => {
                let value = pair
                    .into_inner()
                    .find(|p| !is_keyword_rule(p.as_rule()))
                    .unwrap();
                Literal::Dynamic {
                    value: self.dynamic(value)?,
                }
            }
            r => unreachable!("literal rule {r:?}"),
        })
    }

    fn dynamic(&self, pair: Pair<'_, Rule>) -> Result<Dynamic> {
        Ok(match pair.as_rule() {
            Rule::dynamic_null => Dynamic::Null,
            Rule::dynamic_array => Dynamic::Array(
                pair.into_inner()
                    .map(|p| self.dynamic(p))
                    .collect::<Result<_>>()?,
            ),
            Rule::dynamic_object => {
                let mut fields = vec![];
                for kv in pair.into_inner() {
                    let mut inner = kv.into_inner();
                    let key = self.string_lit(inner.next().unwrap())?.value;
                    let value = self.dynamic(inner.next().unwrap())?;
                    fields.push((key, value));
                }
                Dynamic::Object(fields)
            }
            Rule::dynamic_scalar => {
                let mut negative = false;
                let mut literal = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::unary_op => negative = p.as_str() == "-",
                        _ => literal = Some(self.literal_value(p)?),
                    }
                }
                let literal = literal.unwrap();
                let literal = if negative { negate(literal) } else { literal };
                match literal {
                    Literal::Dynamic { value } => value,
                    other => Dynamic::Scalar(Box::new(other)),
                }
            }
            r => unreachable!("dynamic rule {r:?}"),
        })
    }

    fn string_lit(&self, pair: Pair<'_, Rule>) -> Result<StringLit> {
        let mut value = String::new();
        let mut obfuscated = false;
        for part in pair.into_inner() {
            let text = part.as_str();
            let body = match part.as_rule() {
                Rule::obfuscated_string => {
                    obfuscated = true;
                    &text[1..]
                }
                _ => text,
            };
            decode_string_part(body, &mut value).map_err(|offset| {
                // `offset` is the backslash's position within `body`.
                let at = part.as_span().start() + (text.len() - body.len()) + offset;
                let escape: String = body[offset..].chars().take(2).collect();
                invalid_literal(
                    Span::new(at, at + escape.len()),
                    format!(
                        "invalid escape sequence `{escape}` (write `\\\\{}` for a backslash, or use a verbatim string @\"...\")",
                        &escape[1..]
                    ),
                )
            })?;
        }
        Ok(StringLit { value, obfuscated })
    }
}

/// The name on the left of `=`; anything else there is an error.
fn assigned_name(target: Expr) -> Result<Ident> {
    match target.kind {
        ExprKind::Name { name } => Ok(Ident {
            name,
            span: target.span,
        }),
        _ => Err(SyntaxError {
            kind: SyntaxErrorKind::Unexpected,
            span: target.span,
            message: "expected a column name before `=`".to_string(),
            expected: vec!["a column name".to_string()],
        }),
    }
}

/// Pops one operator and its operands and pushes the combined expression.
fn reduce(operands: &mut Vec<Operand>, operators: &mut Vec<Infix>) -> Result<()> {
    let op = operators.pop().unwrap();
    let right = operands.pop().unwrap();
    let left = operands.pop().unwrap();
    let span = left.expr.span.to(right.expr.span);
    let combined = match op {
        Infix::Logical(logical) => {
            // Flatten `a or b or c` into one node: constant height for long chains.
            let mut operands_list = match left.expr.kind {
                ExprKind::Logical {
                    op,
                    operands: items,
                } if op == logical => items,
                kind => vec![Expr {
                    kind,
                    span: left.expr.span,
                }],
            };
            let right_height = right.height;
            match right.expr.kind {
                ExprKind::Logical {
                    op,
                    operands: items,
                } if op == logical => operands_list.extend(items),
                kind => operands_list.push(Expr {
                    kind,
                    span: right.expr.span,
                }),
            }
            let height = left.height.max(right_height);
            return push_checked(
                operands,
                Expr {
                    kind: ExprKind::Logical {
                        op: logical,
                        operands: operands_list,
                    },
                    span,
                },
                height,
            );
        }
        Infix::Binary(op) => Expr {
            kind: ExprKind::Binary {
                op,
                left: Box::new(left.expr),
                right: Box::new(right.expr),
            },
            span,
        },
    };
    push_checked(operands, combined, left.height.max(right.height) + 1)
}

fn push_checked(operands: &mut Vec<Operand>, expr: Expr, height: u32) -> Result<()> {
    operands.push(checked(expr, height)?);
    Ok(())
}

fn checked(expr: Expr, height: u32) -> Result<Operand> {
    if height > MAX_CHAIN_HEIGHT {
        return Err(too_deep(expr.span));
    }
    Ok(Operand { expr, height })
}

fn too_deep(span: Span) -> SyntaxError {
    SyntaxError {
        kind: SyntaxErrorKind::TooDeep,
        span,
        message: format!(
            "expression chain too long: more than {MAX_CHAIN_HEIGHT} nested operators in one expression"
        ),
        expected: vec![],
    }
}

fn infix_op(pair: &Pair<'_, Rule>) -> Infix {
    let text = pair.as_str();
    let op = match text {
        "and" => return Infix::Logical(LogicalOp::And),
        "or" => return Infix::Logical(LogicalOp::Or),
        "+" => BinaryOp::Add,
        "-" => BinaryOp::Sub,
        "*" => BinaryOp::Mul,
        "/" => BinaryOp::Div,
        "%" => BinaryOp::Mod,
        "==" => BinaryOp::Eq,
        "!=" | "<>" => BinaryOp::NotEq,
        "=~" => BinaryOp::EqCi,
        "!~" => BinaryOp::NotEqCi,
        "<" => BinaryOp::Lt,
        "<=" => BinaryOp::Le,
        ">" => BinaryOp::Gt,
        ">=" => BinaryOp::Ge,
        ":" => BinaryOp::SearchField,
        word => BinaryOp::Str(string_op(word)),
    };
    Infix::Binary(op)
}

/// Reads a string operator's spelling (`!has_cs`, `notcontains`, `matches regex`, `likecs`).
pub(super) fn string_op(word: &str) -> StringOp {
    let (test, negated, case_sensitive) = match word {
        "matches regex" => (StringTest::MatchesRegex, false, true),
        "like" => (StringTest::Like, false, false),
        "notlike" => (StringTest::Like, true, false),
        "likecs" => (StringTest::Like, false, true),
        "notlikecs" => (StringTest::Like, true, true),
        "containscs" => (StringTest::Contains, false, true),
        "notcontains" => (StringTest::Contains, true, false),
        "notcontainscs" => (StringTest::Contains, true, true),
        _ => {
            let negated = word.starts_with('!');
            let rest = word.trim_start_matches('!');
            let case_sensitive = rest.ends_with("_cs");
            let base = rest.trim_end_matches("_cs");
            let test = match base {
                "has" => StringTest::Has,
                "hasprefix" => StringTest::HasPrefix,
                "hassuffix" => StringTest::HasSuffix,
                "contains" => StringTest::Contains,
                "startswith" => StringTest::StartsWith,
                "endswith" => StringTest::EndsWith,
                other => unreachable!("string operator {other}"),
            };
            (test, negated, case_sensitive)
        }
    };
    StringOp {
        test,
        negated,
        case_sensitive,
    }
}

/// Keyword tokens are pairs of their own; builders skip them.
fn is_keyword_rule(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_and
            | Rule::kw_as
            | Rule::kw_asc
            | Rule::kw_by
            | Rule::kw_consume
            | Rule::kw_count
            | Rule::kw_datatable
            | Rule::kw_declare
            | Rule::kw_default
            | Rule::kw_desc
            | Rule::kw_distinct
            | Rule::kw_dynamic
            | Rule::kw_evaluate
            | Rule::kw_extend
            | Rule::kw_externaldata
            | Rule::kw_facet
            | Rule::kw_filter
            | Rule::kw_find
            | Rule::kw_first
            | Rule::kw_fork
            | Rule::kw_from
            | Rule::kw_getschema
            | Rule::kw_in
            | Rule::kw_invoke
            | Rule::kw_join
            | Rule::kw_last
            | Rule::kw_let
            | Rule::kw_limit
            | Rule::kw_lookup
            | Rule::kw_make_series
            | Rule::kw_mv_apply
            | Rule::kw_mv_expand
            | Rule::kw_mvexpand
            | Rule::kw_null
            | Rule::kw_nulls
            | Rule::kw_of
            | Rule::kw_on
            | Rule::kw_or
            | Rule::kw_order
            | Rule::kw_others
            | Rule::kw_parse
            | Rule::kw_parse_kv
            | Rule::kw_parse_where
            | Rule::kw_partition
            | Rule::kw_print
            | Rule::kw_project
            | Rule::kw_project_away
            | Rule::kw_project_keep
            | Rule::kw_project_rename
            | Rule::kw_project_reorder
            | Rule::kw_project_smart
            | Rule::kw_query_parameters
            | Rule::kw_range
            | Rule::kw_reduce
            | Rule::kw_render
            | Rule::kw_sample
            | Rule::kw_sample_distinct
            | Rule::kw_scan
            | Rule::kw_search
            | Rule::kw_serialize
            | Rule::kw_set
            | Rule::kw_sort
            | Rule::kw_step
            | Rule::kw_summarize
            | Rule::kw_take
            | Rule::kw_to
            | Rule::kw_top
            | Rule::kw_top_hitters
            | Rule::kw_top_nested
            | Rule::kw_typeof
            | Rule::kw_union
            | Rule::kw_view
            | Rule::kw_where
            | Rule::kw_with
    )
}

fn scalar_type(pair: &Pair<'_, Rule>) -> ScalarType {
    ScalarType::from_name(pair.as_str()).expect("grammar only admits known type names")
}

fn sort_order(pair: &Pair<'_, Rule>) -> SortOrder {
    if pair.as_str() == "asc" {
        SortOrder::Asc
    } else {
        SortOrder::Desc
    }
}

/// Which type a `datetime(...)`/`guid(...)`/`time(...)` literal names, from its text.
fn rule_literal_type(text: &str) -> ScalarType {
    if text.starts_with("date") {
        ScalarType::DateTime
    } else if text.starts_with("guid") || text.starts_with("uniqueid") {
        ScalarType::Guid
    } else {
        ScalarType::TimeSpan
    }
}

fn negate(literal: Literal) -> Literal {
    match literal {
        Literal::Long { value } => Literal::Long {
            value: value.wrapping_neg(),
        },
        Literal::Int { value } => Literal::Int {
            value: value.wrapping_neg(),
        },
        Literal::Real { value } => Literal::Real {
            value: Real(-value.0),
        },
        Literal::TimeSpan { ticks } => Literal::TimeSpan { ticks: -ticks },
        other => other,
    }
}

/// `long(5)`, `real(+inf)`, `bool(null)`...
fn typed_literal(ty: ScalarType, raw: &str) -> Option<Literal> {
    if raw == "null" {
        return Some(Literal::Null { ty });
    }
    Some(match ty {
        ScalarType::Bool => Literal::Bool {
            value: match raw {
                "true" => true,
                "false" => false,
                _ => return None,
            },
        },
        ScalarType::Int => Literal::Int {
            value: i32::try_from(parse_integer(raw)?).ok()?,
        },
        ScalarType::Long => Literal::Long {
            value: parse_integer(raw)?,
        },
        ScalarType::Real => Literal::Real {
            value: Real(match raw.replace(' ', "").as_str() {
                "nan" => f64::NAN,
                "+inf" | "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                other => other.parse().ok()?,
            }),
        },
        ScalarType::Decimal => {
            raw.parse::<f64>().ok()?;
            Literal::Decimal {
                text: raw.to_string(),
            }
        }
        _ => return None,
    })
}

/// `5`, `-5`, `0x1F` (hex reads as the 64-bit pattern, as Kusto does).
fn parse_integer(raw: &str) -> Option<i64> {
    let raw = raw.replace(' ', "");
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, raw.trim_start_matches('+').to_string()),
    };
    let value = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()? as i64,
        None => digits.parse().ok()?,
    };
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

const TICKS_PER_SECOND: f64 = 10_000_000.0;

/// Ticks (100 ns) in `number unit`.
pub(super) fn timespan_ticks(number: &str, unit: &str) -> Option<i64> {
    let n: f64 = number.parse().ok()?;
    let per_unit = match unit {
        "d" | "day" | "days" => 86_400.0 * TICKS_PER_SECOND,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0 * TICKS_PER_SECOND,
        "m" | "min" | "minute" | "minutes" => 60.0 * TICKS_PER_SECOND,
        "s" | "sec" | "second" | "seconds" => TICKS_PER_SECOND,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 10_000.0,
        "microsecond" | "microseconds" => 10.0,
        "tick" | "ticks" => 1.0,
        _ => return None,
    };
    let ticks = (n * per_unit).round();
    (ticks.abs() < i64::MAX as f64).then_some(ticks as i64)
}

/// The content of `time(...)`: `1d`, `2` (days), `1.02:03:04.5`, `02:03`.
fn parse_time_content(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let (negative, raw) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest.trim()),
        None => (false, raw),
    };
    let ticks = if let Some(pos) = raw.find(|c: char| c.is_ascii_alphabetic()) {
        timespan_ticks(&raw[..pos], &raw[pos..])?
    } else if raw.contains(':') {
        let (days, clock) = match raw.split_once('.') {
            Some((d, rest)) if rest.contains(':') && !d.contains(':') => {
                (d.parse::<i64>().ok()?, rest)
            }
            _ => (0, raw),
        };
        let mut parts = clock.split(':');
        let hours: i64 = parts.next()?.parse().ok()?;
        let minutes: i64 = parts.next()?.parse().ok()?;
        let seconds: f64 = match parts.next() {
            Some(s) => s.parse().ok()?,
            None => 0.0,
        };
        if parts.next().is_some() {
            return None;
        }
        let whole = ((days * 24 + hours) * 60 + minutes) as f64 * 60.0 + seconds;
        (whole * TICKS_PER_SECOND).round() as i64
    } else {
        timespan_ticks(raw, "d")?
    };
    Some(if negative { -ticks } else { ticks })
}

/// Appends the decoded value of one string token (with its quotes) to `out`.
/// On an invalid escape, returns the byte offset of the backslash within `token`.
fn decode_string_part(token: &str, out: &mut String) -> std::result::Result<(), usize> {
    if let Some(body) = token
        .strip_prefix("```")
        .or_else(|| token.strip_prefix("~~~"))
    {
        out.push_str(&body[..body.len() - 3]);
        return Ok(());
    }
    if let Some(verbatim) = token.strip_prefix('@') {
        let quote = &verbatim[..1];
        let body = &verbatim[1..verbatim.len() - 1];
        out.push_str(&body.replace(&format!("{quote}{quote}"), quote));
        return Ok(());
    }
    let body = &token[1..token.len() - 1];
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err(i + 1);
        };
        match e {
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            '0' => out.push('\0'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            'u' | 'U' | 'x' => {
                let max = match e {
                    'u' => 4,
                    'U' => 8,
                    _ => 4,
                };
                let mut code = 0u32;
                let mut digits = 0;
                while digits < max {
                    match chars.peek() {
                        Some((_, d)) if d.is_ascii_hexdigit() => {
                            code = code * 16 + d.to_digit(16).unwrap();
                            digits += 1;
                            chars.next();
                        }
                        _ => break,
                    }
                }
                out.push(char::from_u32(code).ok_or(i + 1)?);
            }
            _ => return Err(i + 1),
        }
    }
    Ok(())
}
#[doc(hidden)]
pub fn recognize_only(text: &str) -> bool {
    KqlGrammar::parse(Rule::query, text).is_ok()
}
