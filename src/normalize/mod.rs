//! Stage 3: KQL syntax tree -> detection IR.
//!
//! Inlines `let` values and functions (scalar, tabular, with parameters), resolves
//! workspace functions from `--functions`, classifies conditions into typed predicates
//! (negation on the leaves, constants folded), finds the query window and thresholds,
//! and reads the alert logic from the rule's metadata. What the IR cannot express
//! becomes an explicit `Unsupported` node and a diagnostic with its position.

mod env;
mod predicate;
mod scalar;
mod tabular;

use crate::diag::{Code, Diagnostic};
use crate::ir::{Alert, CompareOp, Detection, Pipeline, Source, Trigger};
use crate::load::{Rule, TriggerOperator};
use crate::syntax::ast::{self, Span};

pub use env::Functions;
use env::{Binding, Env};

/// Normalizes a rule's parsed query. Diagnostics say what could not be carried into the
/// IR (each also leaves an `Unsupported` node or a documented stand-in in the IR).
pub fn normalize(
    rule: &Rule,
    query: &ast::Query,
    functions: &Functions,
) -> (Detection, Vec<Diagnostic>) {
    let env = functions.env();
    let mut n = Normalizer {
        rule,
        diagnostics: vec![],
        depth: 0,
        workspace: env.clone(),
        call_site: None,
        scope_tables: vec![],
    };
    let pipeline = n.statements(&query.statements, env, query.span);
    let alert = alert(rule);
    (
        Detection {
            query: pipeline,
            alert,
        },
        n.diagnostics,
    )
}

/// Deepest nesting of function calls inlined into each other.
const MAX_INLINE_DEPTH: usize = 64;

struct Normalizer<'r> {
    rule: &'r Rule,
    diagnostics: Vec<Diagnostic>,
    /// Current depth of inlined function calls.
    depth: usize,
    /// The workspace functions (`--functions`): they call each other in any order.
    workspace: Env,
    /// While inlining a workspace function: where the rule calls it. Positions inside the
    /// function's body are in the functions file, so the rule's call stands for them.
    call_site: Option<Span>,
    /// The tables whose columns the current operator reads (while their columns are
    /// still the table's: no `project`/`summarize` in between).
    scope_tables: Vec<String>,
}

impl Normalizer<'_> {
    /// Whether `name` is a column of a table in scope, per the embedded mappings (the only
    /// schemas kqlc knows).
    fn is_known_column(&self, name: &str) -> bool {
        let mappings = crate::mapping::Mappings::embedded();
        self.scope_tables
            .iter()
            .filter_map(|t| mappings.table(t))
            .any(|t| t.fields.contains_key(name))
    }

    /// A position in the rule's query for the IR (the call site inside workspace functions).
    fn at(&self, span: Span) -> crate::ir::Span {
        let span = self.call_site.unwrap_or(span);
        crate::ir::Span {
            start: span.start,
            end: span.end,
        }
    }

    /// A diagnostic at a place in the query.
    fn report(&mut self, code: Code, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        let span = self.call_site.unwrap_or(span);
        let start = self.rule.query_map.to_file(span.start as usize);
        let end = self.rule.query_map.to_file(span.end as usize);
        // Warnings: the IR still holds the construct (as `Unsupported` or a stand-in);
        // whether a target can carry it over is the target's to say.
        self.diagnostics
            .push(Diagnostic::warning(code, message).at(start, end));
        self.diagnostics.last_mut().unwrap()
    }

    /// Reads statements in order (binding `let`s) and returns the last query statement.
    fn statements(&mut self, statements: &[ast::Statement], mut env: Env, span: Span) -> Pipeline {
        let mut result = None;
        for statement in statements {
            match statement {
                ast::Statement::Let(l) => {
                    let binding = self.binding(&l.value, &env);
                    env.bind(&l.name.name, binding);
                }
                ast::Statement::Set(_) => {}
                ast::Statement::DeclareQueryParameters { params, .. } => {
                    for p in params {
                        let value = match &p.default {
                            Some(d) => Binding::Scalar(self.scalar(d, &env)),
                            None => {
                                self.report(
                                    Code::UnboundParameter,
                                    p.span,
                                    format!(
                                        "query parameter `{}` has no default value",
                                        p.name.name
                                    ),
                                );
                                continue;
                            }
                        };
                        env.bind(&p.name.name, value);
                    }
                }
                ast::Statement::Expr(e) => {
                    if result.is_some() {
                        self.report(
                            Code::SeveralResults,
                            e.span,
                            "the query returns several results; only the last one is translated",
                        );
                    }
                    result = Some(self.tabular(e, &env));
                }
            }
        }
        result.unwrap_or_else(|| {
            self.report(
                Code::NoResult,
                span,
                "the query only defines names and returns nothing",
            );
            Pipeline {
                source: Source::Unsupported(crate::ir::Unsupported {
                    construct: "no result".into(),
                    kql: String::new(),
                    span: (span.start, span.end),
                }),
                stages: vec![],
            }
        })
    }

    /// What a `let` binds: a function, a table, or a scalar value.
    fn binding(&mut self, value: &ast::LetValue, env: &Env) -> Binding {
        match value {
            ast::LetValue::Function(f) | ast::LetValue::View(f) => {
                Binding::Function(env::Function {
                    params: f.params.clone(),
                    body: f.body.clone(),
                    env: env.clone(),
                    span: f.span,
                    workspace: false,
                })
            }
            ast::LetValue::Expr(e) => {
                if self.is_tabular(e, env) {
                    Binding::Table(self.tabular(e, env))
                } else {
                    Binding::Scalar(self.scalar(e, env))
                }
            }
        }
    }

    /// Whether an expression denotes a table (KQL decides by meaning, not syntax).
    fn is_tabular(&self, e: &ast::Expr, env: &Env) -> bool {
        use ast::ExprKind as K;
        match &e.kind {
            K::Pipeline { .. } | K::Source { .. } | K::TablePattern { .. } => true,
            K::Name { name } => !matches!(env.get(name), Some(Binding::Scalar(_))),
            K::Call { name, .. } => match env.get(name) {
                Some(Binding::Function(f)) => {
                    let body_env = if f.workspace { &self.workspace } else { &f.env };
                    f.body.last().is_some_and(
                        |s| matches!(s, ast::Statement::Expr(b) if self.is_tabular(b, body_env)),
                    )
                }
                Some(Binding::Table(_)) => true,
                Some(Binding::Scalar(_)) => false,
                None => scalar::is_tabular_function(name) || !scalar::is_scalar_function(name),
            },
            K::MethodCall { .. } => true,
            K::Member { target, .. } => {
                matches!(target.kind, K::Call { ref name, .. } if name == "database")
            }
            _ => false,
        }
    }
}

/// The alert logic from the rule's metadata.
fn alert(rule: &Rule) -> Alert {
    let m = &rule.metadata;
    Alert {
        frequency_seconds: m.query_frequency.as_ref().map(|d| d.seconds),
        period_seconds: m.query_period.as_ref().map(|d| d.seconds),
        trigger: m.trigger_operator.map(|op| Trigger {
            op: match op {
                TriggerOperator::GreaterThan => CompareOp::Gt,
                TriggerOperator::LessThan => CompareOp::Lt,
                TriggerOperator::Equal => CompareOp::Eq,
                TriggerOperator::NotEqual => CompareOp::Ne,
            },
            threshold: m.trigger_threshold.unwrap_or(0),
        }),
        severity: m.severity,
        tactics: m.tactics.clone(),
        techniques: m.techniques.clone(),
        entities: m.entity_mappings.clone(),
        custom_details: m.custom_details.clone(),
    }
}
