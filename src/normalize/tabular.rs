//! Tabular expressions and operators: AST -> `Pipeline`.

use std::collections::BTreeSet;

use crate::diag::Code;
use crate::ir::visit::predicate_columns;
use crate::ir::{
    Aggregate, AggregateFunction, Assign, Column, CompareOp, ExpandColumn, GroupKey, JoinKeyPair,
    JoinKind, ParseKind, ParsePiece, Pipeline, Predicate, Rename, Scalar, SortKey, Source, Stage,
    Type, Unsupported, Value, Window,
};
use crate::syntax::ast::{self, ExprKind, OperatorKind, Span};

use super::env::{Binding, Env, Function};
use super::predicate::{and, conjuncts};
use super::scalar::{TIME_COLUMNS, literal};
use super::{MAX_INLINE_DEPTH, Normalizer};

impl Normalizer<'_> {
    /// A tabular expression.
    pub(super) fn tabular(&mut self, e: &ast::Expr, env: &Env) -> Pipeline {
        match &e.kind {
            ExprKind::Pipeline { source, operators } => {
                let mut p = self.tabular(source, env);
                for op in operators {
                    p = self.operator(p, op, env);
                }
                p
            }
            ExprKind::Source { operator } => self.source_operator(operator, env),
            ExprKind::Name { name } => match env.get(name) {
                Some(Binding::Table(p)) => p.clone(),
                Some(Binding::Function(f)) if f.params.is_empty() => {
                    let f = f.clone();
                    self.inline_tabular(&f, &[], None, e.span, env)
                        .unwrap_or_else(|| self.unsupported_source(e, "this function"))
                }
                Some(Binding::Scalar(_)) => {
                    self.unsupported_source(e, "a scalar value used as a table")
                }
                _ => Pipeline::table(name.clone(), self.at(e.span)),
            },
            ExprKind::Call { name, args } => self.tabular_call(name, args, e, env),
            ExprKind::Member { target, member } => match &target.kind {
                // `database("x").T`: another database's table.
                ExprKind::Call { name, .. } | ExprKind::MethodCall { name, .. }
                    if name == "database" =>
                {
                    self.report(
                        Code::CrossDatabase,
                        e.span,
                        format!("`{e}` reads another database; translated as table `{member}`"),
                    );
                    Pipeline::table(member.clone(), self.at(e.span))
                }
                _ => self.unsupported_source(e, "this table reference"),
            },
            ExprKind::TablePattern { pattern } => {
                self.unsupported_source(e, &format!("tables matching `{pattern}`"))
            }
            _ => self.unsupported_source(e, "this expression where a table is expected"),
        }
    }

    fn unsupported_source(&mut self, e: &ast::Expr, what: &str) -> Pipeline {
        self.report(
            Code::UnsupportedSource,
            e.span,
            format!("unsupported: {what}"),
        );
        Pipeline {
            source: Source::Unsupported(unsupported(what, e.to_string(), e.span)),
            stages: vec![],
        }
    }

    fn tabular_call(
        &mut self,
        name: &str,
        args: &[ast::Expr],
        e: &ast::Expr,
        env: &Env,
    ) -> Pipeline {
        if let Some(Binding::Function(f)) = env.get(name) {
            let f = f.clone();
            return self
                .inline_tabular(&f, args, None, e.span, env)
                .unwrap_or_else(|| self.unsupported_source(e, "this function call"));
        }
        match (name, args) {
            ("_GetWatchlist", [alias]) => match self.scalar(alias, env) {
                Scalar::Literal {
                    value: Value::String(name),
                } => Pipeline {
                    source: Source::Watchlist { name },
                    stages: vec![],
                },
                _ => self.unsupported_source(e, "a watchlist whose name is not a constant"),
            },
            ("table", [t, ..]) => match self.scalar(t, env) {
                Scalar::Literal {
                    value: Value::String(name),
                } => Pipeline::table(name, self.at(e.span)),
                _ => self.unsupported_source(e, "`table()` with a name that is not a constant"),
            },
            ("materialize" | "view", [inner]) => self.tabular(inner, env),
            _ => {
                self.report(
                    Code::UnresolvedFunction,
                    e.span,
                    format!(
                        "`{name}` is not defined in the query: a workspace function? Supply its definition with --functions"
                    ),
                );
                Pipeline {
                    source: Source::UnresolvedFunction {
                        name: name.to_string(),
                        args: args.iter().map(|a| self.scalar(a, env)).collect(),
                    },
                    stages: vec![],
                }
            }
        }
    }

    /// Binds a function's parameters to the call's arguments (and, for `invoke`, its first
    /// tabular parameter to the input). `None` when the call does not fit.
    pub(super) fn bind_call(
        &mut self,
        f: &Function,
        args: &[ast::Expr],
        input: Option<Pipeline>,
        span: Span,
        env: &Env,
    ) -> Option<Env> {
        if self.depth >= MAX_INLINE_DEPTH {
            self.report(
                Code::TooDeep,
                span,
                "functions call each other too deeply to inline",
            );
            return None;
        }
        let mut call_env = if f.workspace {
            self.workspace.clone()
        } else {
            f.env.clone()
        };
        let mut params = f.params.iter();
        if let Some(input) = input {
            let first = params.next()?;
            call_env.bind(&first.name.name, Binding::Table(input));
        }
        let mut args = args.iter();
        for p in params {
            let binding = match (args.next(), &p.default, &p.ty) {
                (Some(a), _, ast::ParamType::Scalar { .. }) => Binding::Scalar(self.scalar(a, env)),
                (Some(a), _, _) => Binding::Table(self.tabular(a, env)),
                (None, Some(d), _) => Binding::Scalar(self.scalar(d, &f.env)),
                (None, None, _) => {
                    self.report(
                        Code::UnresolvedFunction,
                        span,
                        format!("missing argument for parameter `{}`", p.name.name),
                    );
                    return None;
                }
            };
            call_env.bind(&p.name.name, binding);
        }
        Some(call_env)
    }

    /// A function call that yields a table: the body, with the arguments bound.
    fn inline_tabular(
        &mut self,
        f: &Function,
        args: &[ast::Expr],
        input: Option<Pipeline>,
        span: Span,
        env: &Env,
    ) -> Option<Pipeline> {
        let call_env = self.bind_call(f, args, input, span, env)?;
        self.depth += 1;
        let outer_call = self.call_site;
        if f.workspace && outer_call.is_none() {
            self.call_site = Some(span);
        }
        let p = self.statements(&f.body, call_env, f.span);
        self.call_site = outer_call;
        self.depth -= 1;
        Some(p)
    }

    /// Operators that start a pipeline (`union`, `datatable`, ...).
    fn source_operator(&mut self, op: &ast::Operator, env: &Env) -> Pipeline {
        match &op.kind {
            OperatorKind::Union { options, tables } => {
                let inputs = tables.iter().map(|t| self.tabular(t, env)).collect();
                union(options, inputs)
            }
            OperatorKind::Datatable { schema, values } => {
                let columns: Vec<Column> = schema.iter().map(column).collect();
                let width = columns.len().max(1);
                let cells: Vec<Value> = values
                    .iter()
                    .map(|v| match self.scalar(v, env) {
                        Scalar::Literal { value } => value,
                        _ => Value::Null,
                    })
                    .collect();
                let rows = cells.chunks(width).map(<[Value]>::to_vec).collect();
                Pipeline {
                    source: Source::Inline { columns, rows },
                    stages: vec![],
                }
            }
            OperatorKind::ExternalData { schema, uris, with } => Pipeline {
                source: Source::External {
                    columns: schema.iter().map(column).collect(),
                    uris: uris
                        .iter()
                        .map(|u| match self.scalar(u, env) {
                            Scalar::Literal {
                                value: Value::String(s),
                            } => s,
                            other => format!("{other:?}"),
                        })
                        .collect(),
                    options: with
                        .iter()
                        .map(|o| {
                            let v = match &o.value.kind {
                                ExprKind::Literal { value } => literal(value),
                                _ => Value::String(o.value.to_string()),
                            };
                            (o.name.clone(), v)
                        })
                        .collect(),
                },
                stages: vec![],
            },
            _ => {
                let what = operator_name(op);
                self.report(
                    Code::UnsupportedOperator,
                    op.span,
                    format!("unsupported: `{what}`"),
                );
                Pipeline {
                    source: Source::Unsupported(unsupported(&what, op.to_string(), op.span)),
                    stages: vec![],
                }
            }
        }
    }

    /// Applies one operator to a pipeline.
    fn operator(&mut self, p: Pipeline, op: &ast::Operator, env: &Env) -> Pipeline {
        let scope = table_columns_in_scope(&p);
        let outer = std::mem::replace(&mut self.scope_tables, scope);
        let p = self.apply_operator(p, op, env);
        self.scope_tables = outer;
        p
    }

    fn apply_operator(&mut self, mut p: Pipeline, op: &ast::Operator, env: &Env) -> Pipeline {
        match &op.kind {
            OperatorKind::Where { predicate } => {
                let pred = self.predicate(predicate, env);
                add_filter(&mut p, pred, self.at(op.span));
            }
            OperatorKind::Extend { columns } => {
                let assigns = self.assigns(columns, env);
                match p.stages.last_mut() {
                    // `extend a = .. | extend b = ..` is one step when the second neither
                    // reads nor redefines what the first computes.
                    Some(Stage::Compute { columns, .. }) if independent(columns, &assigns) => {
                        columns.extend(assigns)
                    }
                    _ => p.stages.push(Stage::Compute {
                        columns: assigns,
                        at: self.at(op.span),
                    }),
                }
            }
            OperatorKind::Project { columns } => {
                let columns = self.assigns(columns, env);
                p.stages.push(Stage::Project {
                    columns,
                    at: self.at(op.span),
                });
            }
            OperatorKind::ProjectAway { columns } => p.stages.push(Stage::Drop {
                at: self.at(op.span),
                columns: columns.iter().map(|c| c.pattern.clone()).collect(),
            }),
            OperatorKind::ProjectKeep { columns } => p.stages.push(Stage::Keep {
                at: self.at(op.span),
                columns: columns.iter().map(|c| c.pattern.clone()).collect(),
            }),
            OperatorKind::ProjectRename { renames } => {
                let mut out = vec![];
                for r in renames {
                    match (r.names.as_slice(), &r.value.kind) {
                        ([new], ExprKind::Name { name }) => out.push(Rename {
                            new: new.name.clone(),
                            old: name.clone(),
                        }),
                        _ => {
                            return self.unsupported_stage(
                                p,
                                op,
                                "`project-rename` that is not `New = Old`",
                            );
                        }
                    }
                }
                p.stages.push(Stage::Rename {
                    renames: out,
                    at: self.at(op.span),
                });
            }
            OperatorKind::ProjectReorder { columns } => p.stages.push(Stage::Reorder {
                at: self.at(op.span),
                columns: columns.iter().map(|(c, _)| c.pattern.clone()).collect(),
            }),
            OperatorKind::Summarize { aggregates, by, .. } => {
                let mut generated = 0;
                let keys = by
                    .iter()
                    .map(|a| {
                        let value = self.scalar(&a.value, env);
                        GroupKey {
                            name: assigned_name(&a.names, &a.value, &value, &mut generated),
                            value,
                        }
                    })
                    .collect();
                let aggregates = aggregates.iter().map(|a| self.aggregate(a, env)).collect();
                p.stages.push(Stage::Aggregate {
                    at: self.at(op.span),
                    keys,
                    aggregates,
                    having: None,
                });
            }
            OperatorKind::Join { options, right, on }
            | OperatorKind::Lookup { options, right, on } => {
                let is_lookup = matches!(op.kind, OperatorKind::Lookup { .. });
                let kind_name = options
                    .iter()
                    .find(|o| o.name == "kind")
                    .map(|o| o.value.to_string());
                let kind = match (kind_name.as_deref(), is_lookup) {
                    (None, false) => JoinKind::InnerUnique,
                    (None, true) => JoinKind::LeftOuter,
                    (Some("innerunique"), _) => JoinKind::InnerUnique,
                    (Some("inner"), _) => JoinKind::Inner,
                    (Some("leftouter"), _) => JoinKind::LeftOuter,
                    (Some("rightouter"), _) => JoinKind::RightOuter,
                    (Some("fullouter" | "outer"), _) => JoinKind::FullOuter,
                    (Some("leftsemi" | "semi"), _) => JoinKind::LeftSemi,
                    (Some("leftanti" | "anti" | "leftantisemi"), _) => JoinKind::LeftAnti,
                    (Some("rightsemi"), _) => JoinKind::RightSemi,
                    (Some("rightanti" | "rightantisemi"), _) => JoinKind::RightAnti,
                    (Some(other), _) => {
                        let what = format!("join kind `{other}`");
                        return self.unsupported_stage(p, op, &what);
                    }
                };
                let keys = match on {
                    ast::JoinCondition::Keys { keys } => keys
                        .iter()
                        .map(|k| match k {
                            ast::JoinKey::Same { column } => JoinKeyPair {
                                left: column.name.clone(),
                                right: column.name.clone(),
                            },
                            ast::JoinKey::Pair { left, right } => JoinKeyPair {
                                left: left.name.clone(),
                                right: right.name.clone(),
                            },
                        })
                        .collect(),
                    ast::JoinCondition::Where { .. } => {
                        return self.unsupported_stage(
                            p,
                            op,
                            "`join ... where` (a join on a condition)",
                        );
                    }
                };
                let right = self.tabular(right, env);
                p.stages.push(Stage::Join {
                    kind,
                    right,
                    keys,
                    lookup: is_lookup,
                    at: self.at(op.span),
                });
            }
            OperatorKind::Union { options, tables } => {
                // `T | union U` is `union T, U`.
                let mut inputs = vec![p];
                inputs.extend(tables.iter().map(|t| self.tabular(t, env)));
                return union(options, inputs);
            }
            OperatorKind::MvExpand {
                items,
                limit,
                options,
            } => {
                let option = |name: &str| {
                    options
                        .iter()
                        .find(|o| o.name == name)
                        .map(|o| o.value.to_string())
                };
                let item_index = option("with_itemindex");
                let bag_as_array =
                    option("bagexpansion").or_else(|| option("kind")).as_deref() == Some("array");
                if let Some(other) = options.iter().find(|o| {
                    !matches!(o.name.as_str(), "with_itemindex" | "bagexpansion" | "kind")
                }) {
                    let what = format!("`mv-expand` option `{}`", other.name);
                    return self.unsupported_stage(p, op, &what);
                }
                let mut generated = 0;
                let columns = items
                    .iter()
                    .map(|item| {
                        let value = self.scalar(&item.value, env);
                        let names: Vec<ast::Ident> = item.name.iter().cloned().collect();
                        ExpandColumn {
                            name: assigned_name(&names, &item.value, &value, &mut generated),
                            value,
                            to_type: item.to_type.map(ir_type),
                        }
                    })
                    .collect();
                let limit = limit.as_ref().and_then(|l| match self.scalar(l, env) {
                    Scalar::Literal {
                        value: Value::Long(n),
                    } => Some(n),
                    _ => None,
                });
                p.stages.push(Stage::Expand {
                    columns,
                    limit,
                    item_index,
                    bag_as_array,
                    at: self.at(op.span),
                });
            }
            OperatorKind::Parse {
                drop_unmatched,
                options,
                source,
                pattern,
            } => {
                let kind = match options
                    .iter()
                    .find(|o| o.name == "kind")
                    .map(|o| o.value.to_string())
                    .as_deref()
                {
                    None | Some("simple") => ParseKind::Simple,
                    Some("regex") => ParseKind::Regex,
                    Some("relaxed") => ParseKind::Relaxed,
                    Some(_) => return self.unsupported_stage(p, op, "this `parse` kind"),
                };
                if options.iter().any(|o| o.name == "flags") {
                    return self.unsupported_stage(p, op, "`parse` with regex flags");
                }
                let source = self.scalar(source, env);
                let pattern = pattern
                    .iter()
                    .map(|part| match part {
                        ast::ParsePart::Text { value } => ParsePiece::Text {
                            text: value.value.clone(),
                        },
                        ast::ParsePart::Skip => ParsePiece::Skip,
                        ast::ParsePart::Capture { name, ty } => ParsePiece::Capture {
                            name: name.name.clone(),
                            ty: ty.map(ir_type),
                        },
                    })
                    .collect();
                p.stages.push(Stage::Parse {
                    at: self.at(op.span),
                    source,
                    kind,
                    pattern,
                    drop_unmatched: *drop_unmatched,
                });
            }
            OperatorKind::Sort { keys } => {
                let keys = keys.iter().map(|k| self.sort_key(k, env)).collect();
                p.stages.push(Stage::Sort {
                    keys,
                    at: self.at(op.span),
                });
            }
            OperatorKind::Take { count } => match self.constant_count(count, env) {
                Some(count) => p.stages.push(Stage::Limit {
                    count,
                    at: self.at(op.span),
                }),
                None => {
                    return self.unsupported_stage(
                        p,
                        op,
                        "`take` with a count that is not a constant",
                    );
                }
            },
            OperatorKind::Top { count, by } => match self.constant_count(count, env) {
                Some(count) => {
                    let key = self.sort_key(by, env);
                    p.stages.push(Stage::Top {
                        count,
                        key,
                        at: self.at(op.span),
                    });
                }
                None => {
                    return self.unsupported_stage(
                        p,
                        op,
                        "`top` with a count that is not a constant",
                    );
                }
            },
            OperatorKind::Distinct { columns } => {
                let columns = self.assigns(columns, env);
                p.stages.push(Stage::Distinct {
                    columns,
                    at: self.at(op.span),
                });
            }
            OperatorKind::Count => p.stages.push(Stage::Count {
                at: self.at(op.span),
            }),
            // Naming a result or asking for row order changes nothing a detection sees.
            OperatorKind::As { .. } => {}
            OperatorKind::Serialize { columns } => {
                if !columns.is_empty() {
                    let assigns = self.assigns(columns, env);
                    p.stages.push(Stage::Compute {
                        columns: assigns,
                        at: self.at(op.span),
                    });
                }
            }
            OperatorKind::Render { .. } => {
                self.report(
                    Code::PresentationDropped,
                    op.span,
                    "`render` only draws a chart; left out",
                );
            }
            OperatorKind::Invoke { function } => {
                let ExprKind::Call { name, args } = &function.kind else {
                    return self.unsupported_stage(p, op, "this `invoke`");
                };
                if let Some(Binding::Function(f)) = env.get(name) {
                    let f = f.clone();
                    return match self.inline_tabular(&f, args, Some(p.clone()), op.span, env) {
                        Some(result) => result,
                        None => self.unsupported_stage(p, op, "this `invoke`"),
                    };
                }
                self.report(
                    Code::UnresolvedFunction,
                    op.span,
                    format!(
                        "`invoke {name}()` calls a function not defined in the query: a workspace function? Supply its definition with --functions"
                    ),
                );
                let args = args.iter().map(|a| self.scalar(a, env)).collect();
                p.stages.push(Stage::UnresolvedInvoke {
                    at: self.at(op.span),
                    name: name.clone(),
                    args,
                });
            }
            _ => {
                let what = operator_name(op);
                return self.unsupported_stage(p, op, &format!("`{what}`"));
            }
        }
        p
    }

    fn unsupported_stage(&mut self, mut p: Pipeline, op: &ast::Operator, what: &str) -> Pipeline {
        self.report(
            Code::UnsupportedOperator,
            op.span,
            format!("unsupported: {what}"),
        );
        p.stages.push(Stage::Unsupported(unsupported(
            what.trim_matches('`'),
            op.to_string(),
            op.span,
        )));
        p
    }

    fn constant_count(&mut self, e: &ast::Expr, env: &Env) -> Option<i64> {
        match self.scalar(e, env) {
            Scalar::Literal {
                value: Value::Long(n),
            } => Some(n),
            _ => None,
        }
    }

    fn sort_key(&mut self, k: &ast::SortKey, env: &Env) -> SortKey {
        SortKey {
            value: self.scalar(&k.expr, env),
            // KQL sorts descending unless told otherwise.
            descending: k.order != Some(ast::SortOrder::Asc),
            nulls_first: k.nulls.map(|n| n == ast::NullsPosition::First),
        }
    }

    fn assigns(&mut self, columns: &[ast::Assignment], env: &Env) -> Vec<Assign> {
        let mut out = vec![];
        let mut generated = 0;
        for a in columns {
            let value = self.scalar(&a.value, env);
            if a.names.len() > 1 {
                self.report(
                    Code::UnsupportedExpression,
                    a.value.span,
                    "unsupported: assigning one value to several columns `(a, b) = ...`",
                );
            }
            out.push(Assign {
                name: assigned_name(&a.names, &a.value, &value, &mut generated),
                value,
            });
        }
        out
    }

    fn aggregate(&mut self, a: &ast::Assignment, env: &Env) -> Aggregate {
        let value = self.scalar(&a.value, env);
        let (function, args, limit, condition) = match &value {
            Scalar::Call { function, args } => classify_aggregate(function, args),
            _ => (
                AggregateFunction::Expression,
                vec![value.clone()],
                None,
                None,
            ),
        };
        let (name, names) = match a.names.as_slice() {
            [] => (default_aggregate_name(&function, &value), vec![]),
            [one] => (one.name.clone(), vec![]),
            many => (String::new(), many.iter().map(|n| n.name.clone()).collect()),
        };
        Aggregate {
            at: self.at(a.value.span),
            name,
            names,
            function,
            args,
            limit,
            condition,
        }
    }
}

/// The tables whose columns are still the pipeline's columns (none once a stage reshapes
/// the rows).
fn table_columns_in_scope(p: &Pipeline) -> Vec<String> {
    let reshaped = p.stages.iter().any(|s| {
        matches!(
            s,
            Stage::Project { .. }
                | Stage::Keep { .. }
                | Stage::Aggregate { .. }
                | Stage::Distinct { .. }
                | Stage::Count { .. }
                | Stage::Join { .. }
                | Stage::Unsupported(_)
                | Stage::UnresolvedInvoke { .. }
        )
    });
    if reshaped {
        return vec![];
    }
    match &p.source {
        Source::Table { name, .. } => vec![name.clone()],
        Source::Union { inputs, .. } => inputs.iter().flat_map(table_columns_in_scope).collect(),
        _ => vec![],
    }
}

/// A `union` of `inputs` with its options.
fn union(options: &[ast::OperatorOption], inputs: Vec<Pipeline>) -> Pipeline {
    let option = |names: &[&str]| {
        options
            .iter()
            .find(|o| names.contains(&o.name.as_str()))
            .map(|o| o.value.to_string())
    };
    Pipeline {
        source: Source::Union {
            inputs,
            fuzzy: option(&["isfuzzy"]).as_deref() == Some("true"),
            source_column: option(&["withsource", "with_source"]),
            inner: option(&["kind"]).as_deref() == Some("inner"),
        },
        stages: vec![],
    }
}

/// Whether `later` can be computed in the same step as `earlier`.
fn independent(earlier: &[Assign], later: &[Assign]) -> bool {
    let mut read = BTreeSet::new();
    for a in later {
        crate::ir::visit::scalar_columns(&a.value, &mut read);
    }
    earlier.iter().all(|e| {
        !read.contains(&e.name) && !read.contains("*") && later.iter().all(|l| l.name != e.name)
    })
}

/// Adds a filter: merged with a filter before it, moved before computed columns it does
/// not read, folded into a window or an aggregate's `having` when it is one.
fn add_filter(p: &mut Pipeline, predicate: Predicate, span: crate::ir::Span) {
    let mut remaining = vec![];
    for part in conjuncts(predicate) {
        if p.stages.iter().all(|s| matches!(s, Stage::Filter { .. }))
            && let Source::Table { window, .. } = &mut p.source
            && window.is_none()
            && let Some(w) = as_window(&part)
        {
            *window = Some(w);
            continue;
        }
        remaining.push(part);
    }
    if remaining.is_empty() {
        return;
    }
    let predicate = and(remaining);
    let mut read = BTreeSet::new();
    predicate_columns(&predicate, &mut read);
    // A filter on aggregate results right after the aggregation is its `having`.
    if let Some(Stage::Aggregate {
        keys,
        aggregates,
        having,
        ..
    }) = p.stages.last_mut()
    {
        let outputs: BTreeSet<&str> = keys
            .iter()
            .map(|k| k.name.as_str())
            .chain(aggregates.iter().map(|a| a.name.as_str()))
            .chain(
                aggregates
                    .iter()
                    .flat_map(|a| a.names.iter().map(String::as_str)),
            )
            .collect();
        if read.iter().all(|c| outputs.contains(c.as_str())) {
            *having = Some(match having.take() {
                Some(h) => and(vec![h, predicate]),
                None => predicate,
            });
            return;
        }
    }
    // Move before `extend`s whose columns it does not read (so filters sit next to
    // their source), and merge with a filter already there.
    let mut at = p.stages.len();
    while at > 0 {
        match &p.stages[at - 1] {
            Stage::Compute { columns, .. }
                if !read.contains("*") && columns.iter().all(|c| !read.contains(&c.name)) =>
            {
                at -= 1
            }
            _ => break,
        }
    }
    if at > 0
        && let Stage::Filter {
            predicate: before, ..
        } = &mut p.stages[at - 1]
    {
        *before = and(vec![before.clone(), predicate]);
        return;
    }
    p.stages.insert(
        at,
        Stage::Filter {
            predicate,
            at: span,
        },
    );
}

/// `TimeGenerated > ago(1h)` (or `>=`, or mirrored) is the query window.
fn as_window(p: &Predicate) -> Option<Window> {
    let Predicate::Compare {
        left, op, right, ..
    } = p
    else {
        return None;
    };
    let (column, offset, op) = match (left, right) {
        (Scalar::Field { path }, Scalar::Now { offset_seconds }) => (path, offset_seconds, *op),
        _ => return None,
    };
    if !column.path.is_empty() || !TIME_COLUMNS.contains(&column.column.as_str()) || *offset >= 0.0
    {
        return None;
    }
    let inclusive = match op {
        CompareOp::Gt => false,
        CompareOp::Ge => true,
        _ => return None,
    };
    // A sub-second window stays a filter: the window is whole seconds.
    if offset.fract() != 0.0 {
        return None;
    }
    Some(Window {
        column: column.column.clone(),
        seconds: -*offset as i64,
        inclusive,
    })
}

/// (function, arguments, size limit, condition) of an aggregate call.
fn classify_aggregate(
    function: &str,
    args: &[Scalar],
) -> (
    AggregateFunction,
    Vec<Scalar>,
    Option<i64>,
    Option<Predicate>,
) {
    let limit_of = |a: Option<&Scalar>| match a {
        Some(Scalar::Literal {
            value: Value::Long(n),
        }) => Some(*n),
        _ => None,
    };
    let condition_of = |a: Option<&Scalar>| match a {
        Some(Scalar::Condition { predicate }) => Some((**predicate).clone()),
        Some(Scalar::Literal {
            value: Value::Bool(b),
        }) => Some(Predicate::Constant { value: *b }),
        Some(other) => Some(Predicate::Expr {
            at: Default::default(),
            value: other.clone(),
            negated: false,
        }),
        None => None,
    };
    let first = |n: usize| args.iter().take(n).cloned().collect::<Vec<_>>();
    match function.to_ascii_lowercase().as_str() {
        "count" => (AggregateFunction::Count, first(1), None, None),
        "countif" => (
            AggregateFunction::Count,
            vec![],
            None,
            condition_of(args.first()),
        ),
        "dcount" => (AggregateFunction::DistinctCount, first(1), None, None),
        "dcountif" => (
            AggregateFunction::DistinctCount,
            first(1),
            None,
            condition_of(args.get(1)),
        ),
        "sum" => (AggregateFunction::Sum, first(1), None, None),
        "sumif" => (
            AggregateFunction::Sum,
            first(1),
            None,
            condition_of(args.get(1)),
        ),
        "avg" => (AggregateFunction::Avg, first(1), None, None),
        "avgif" => (
            AggregateFunction::Avg,
            first(1),
            None,
            condition_of(args.get(1)),
        ),
        "min" => (AggregateFunction::Min, first(1), None, None),
        "minif" => (
            AggregateFunction::Min,
            first(1),
            None,
            condition_of(args.get(1)),
        ),
        "max" => (AggregateFunction::Max, first(1), None, None),
        "maxif" => (
            AggregateFunction::Max,
            first(1),
            None,
            condition_of(args.get(1)),
        ),
        "make_set" | "makeset" => (
            AggregateFunction::MakeSet,
            first(1),
            limit_of(args.get(1)),
            None,
        ),
        "make_set_if" => (
            AggregateFunction::MakeSet,
            first(1),
            limit_of(args.get(2)),
            condition_of(args.get(1)),
        ),
        "make_list" | "makelist" => (
            AggregateFunction::MakeList,
            first(1),
            limit_of(args.get(1)),
            None,
        ),
        "make_list_if" => (
            AggregateFunction::MakeList,
            first(1),
            limit_of(args.get(2)),
            condition_of(args.get(1)),
        ),
        "arg_max" => (AggregateFunction::ArgMax, args.to_vec(), None, None),
        "arg_min" => (AggregateFunction::ArgMin, args.to_vec(), None, None),
        "any" | "take_any" => (AggregateFunction::Any, args.to_vec(), None, None),
        _ if is_aggregate_name(function) => (
            AggregateFunction::Other(function.to_string()),
            args.to_vec(),
            None,
            None,
        ),
        _ => (
            AggregateFunction::Expression,
            vec![Scalar::Call {
                function: function.to_string(),
                args: args.to_vec(),
            }],
            None,
            None,
        ),
    }
}

fn is_aggregate_name(name: &str) -> bool {
    matches!(
        name,
        "stdev"
            | "stdevif"
            | "variance"
            | "variance_if"
            | "percentile"
            | "percentiles"
            | "make_bag"
            | "make_bag_if"
            | "hll"
            | "hll_merge"
            | "tdigest"
            | "anyif"
            | "take_anyif"
            | "count_distinct"
            | "count_distinctif"
            | "binary_all_or"
            | "binary_all_and"
            | "make_set_with_nulls"
            | "buildschema"
    )
}

/// KQL's name for an unnamed aggregate: `count_`, `dcount_User`, `set_Ip`,
/// `dcountif_User`, `percentile_Duration_95`; the inner aggregate's name for an
/// expression over one (`round(avg(n), 2)` is `avg_n`). Checked against Kusto.Language.
fn default_aggregate_name(function: &AggregateFunction, value: &Scalar) -> String {
    let Scalar::Call {
        function: written,
        args: written_args,
    } = value
    else {
        return "Column1".into();
    };
    let written = written.to_ascii_lowercase();
    let arg = written_args
        .first()
        .and_then(column_name)
        .unwrap_or_default();
    match written.as_str() {
        "count" if written_args.is_empty() => "count_".into(),
        "countif" => "countif_".into(),
        "make_set" | "makeset" | "make_set_if" => format!("set_{arg}"),
        "make_list" | "makelist" | "make_list_if" => format!("list_{arg}"),
        "take_any" => arg,
        // arg_max/arg_min name their outputs after the columns they return.
        "arg_max" | "arg_min" => String::new(),
        "percentile" => {
            let p = match written_args.get(1) {
                Some(Scalar::Literal {
                    value: Value::Long(n),
                }) => n.to_string(),
                Some(Scalar::Literal {
                    value: Value::Real(r),
                }) => r.to_string().replace('.', "_"),
                _ => String::new(),
            };
            format!("percentile_{arg}_{p}")
        }
        _ if *function == AggregateFunction::Expression => written_args
            .iter()
            .find_map(|a| match a {
                Scalar::Call { .. } => Some(default_aggregate_name(
                    &AggregateFunction::Other(String::new()),
                    a,
                )),
                _ => None,
            })
            .unwrap_or_else(|| "Column1".into()),
        f => format!("{f}_{arg}"),
    }
}

/// The name KQL gives an unnamed column (checked against Kusto.Language): a column keeps
/// its name (`x.y` is `x_y`); a conversion or rounding keeps its argument's name
/// (`tostring(x)` is `x`); `strlen(x)` is `strlen_x`; anything else is `Column1`,
/// `Column2`... counted over the operator's unnamed columns.
fn assigned_name(
    names: &[ast::Ident],
    _expr: &ast::Expr,
    value: &Scalar,
    generated: &mut usize,
) -> String {
    if let Some(n) = names.first() {
        return n.name.clone();
    }
    column_name(value).unwrap_or_else(|| {
        *generated += 1;
        format!("Column{generated}")
    })
}

/// Functions whose unnamed result keeps the name of the column they read.
const NAME_KEEPING: &[&str] = &[
    "tostring",
    "tolong",
    "toint",
    "toreal",
    "todouble",
    "tobool",
    "todatetime",
    "todynamic",
    "parse_json",
    "totimespan",
    "todecimal",
    "toguid",
    "bin",
    "floor",
    "round",
];

fn column_name(value: &Scalar) -> Option<String> {
    match value {
        Scalar::Field { path } if path.path.is_empty() => Some(path.column.clone()),
        Scalar::Field { path } => Some(
            std::iter::once(path.column.clone())
                .chain(path.path.iter().map(|s| match s {
                    crate::ir::PathStep::Key(k) => k.clone(),
                    crate::ir::PathStep::Index(i) => i.to_string(),
                }))
                .collect::<Vec<_>>()
                .join("_"),
        ),
        Scalar::Call { function, args } if args.len() == 1 => {
            let f = function.to_ascii_lowercase();
            if NAME_KEEPING.contains(&f.as_str()) {
                column_name(&args[0])
            } else if f == "strlen" {
                column_name(&args[0]).map(|c| format!("strlen_{c}"))
            } else {
                None
            }
        }
        Scalar::Call { function, args }
            if args.len() == 2
                && matches!(
                    function.to_ascii_lowercase().as_str(),
                    "bin" | "floor" | "round"
                ) =>
        {
            column_name(&args[0])
        }
        Scalar::Bin { value, .. } => column_name(value),
        _ => None,
    }
}

fn column(c: &ast::ColumnDecl) -> Column {
    Column {
        name: c.name.name.clone(),
        ty: ir_type(c.ty),
    }
}

pub fn ir_type(t: ast::ScalarType) -> Type {
    match t {
        ast::ScalarType::Bool => Type::Bool,
        ast::ScalarType::DateTime => Type::DateTime,
        ast::ScalarType::Decimal => Type::Decimal,
        ast::ScalarType::Dynamic => Type::Dynamic,
        ast::ScalarType::Guid => Type::Guid,
        ast::ScalarType::Int => Type::Int,
        ast::ScalarType::Long => Type::Long,
        ast::ScalarType::Real => Type::Real,
        ast::ScalarType::String => Type::String,
        ast::ScalarType::TimeSpan => Type::TimeSpan,
    }
}

fn unsupported(construct: &str, kql: String, span: Span) -> Unsupported {
    Unsupported {
        construct: construct.to_string(),
        kql,
        span: (span.start, span.end),
    }
}

/// The operator's keyword (`make-series`, `evaluate bag_unpack`).
fn operator_name(op: &ast::Operator) -> String {
    let text = op.to_string();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("").to_string();
    match (&op.kind, first.as_str()) {
        (OperatorKind::Evaluate { plugin, .. }, _) => match &plugin.kind {
            ExprKind::Call { name, .. } => format!("evaluate {name}"),
            _ => first,
        },
        _ => first,
    }
}
