//! Predicate algebra: negation moved to the leaves, `and`/`or` flattened, constants folded.

use crate::ir::{CompareOp, Predicate};

/// `not p`, with the negation pushed to the leaves (De Morgan).
pub fn negate(p: Predicate) -> Predicate {
    match p {
        Predicate::And { all } => or(all.into_iter().map(negate).collect()),
        Predicate::Or { any } => and(any.into_iter().map(negate).collect()),
        Predicate::Constant { value } => Predicate::Constant { value: !value },
        Predicate::Compare {
            left,
            op,
            right,
            case_sensitive,
            at,
        } => Predicate::Compare {
            left,
            op: negate_op(op),
            right,
            case_sensitive,
            at,
        },
        mut leaf => {
            if let Predicate::Text { negated, .. }
            | Predicate::Regex { negated, .. }
            | Predicate::InList { negated, .. }
            | Predicate::InQuery { negated, .. }
            | Predicate::Range { negated, .. }
            | Predicate::Cidr { negated, .. }
            | Predicate::PrivateIp { negated, .. }
            | Predicate::Empty { negated, .. }
            | Predicate::Expr { negated, .. } = &mut leaf
            {
                *negated = !*negated;
            }
            leaf
        }
    }
}

/// The comparison that holds exactly when `op` does not. (For nulls both sides are
/// false in KQL, so the rewrite keeps rows with nulls out either way.)
pub fn negate_op(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Eq => CompareOp::Ne,
        CompareOp::Ne => CompareOp::Eq,
        CompareOp::Lt => CompareOp::Ge,
        CompareOp::Le => CompareOp::Gt,
        CompareOp::Gt => CompareOp::Le,
        CompareOp::Ge => CompareOp::Lt,
    }
}

/// `a op b` written as `b op' a`.
pub fn mirror_op(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        other => other,
    }
}

/// A flat conjunction: nested `and`s merged, `true` dropped, `false` absorbing.
pub fn and(parts: Vec<Predicate>) -> Predicate {
    let mut all = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Predicate::And { all: inner } => all.extend(inner),
            Predicate::Constant { value: true } => {}
            Predicate::Constant { value: false } => return Predicate::Constant { value: false },
            other => all.push(other),
        }
    }
    match all.len() {
        0 => Predicate::Constant { value: true },
        1 => all.pop().unwrap(),
        _ => Predicate::And { all },
    }
}

/// A flat disjunction: nested `or`s merged, `false` dropped, `true` absorbing.
pub fn or(parts: Vec<Predicate>) -> Predicate {
    let mut any = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Predicate::Or { any: inner } => any.extend(inner),
            Predicate::Constant { value: false } => {}
            Predicate::Constant { value: true } => return Predicate::Constant { value: true },
            other => any.push(other),
        }
    }
    match any.len() {
        0 => Predicate::Constant { value: false },
        1 => any.pop().unwrap(),
        _ => Predicate::Or { any },
    }
}

/// The conjuncts of a predicate.
pub fn conjuncts(p: Predicate) -> Vec<Predicate> {
    match p {
        Predicate::And { all } => all,
        Predicate::Constant { value: true } => vec![],
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{FieldPath, Scalar, TextTest};

    fn text(col: &str, negated: bool) -> Predicate {
        Predicate::Text {
            value: Scalar::Field {
                path: FieldPath::column(col),
            },
            test: TextTest::Term,
            pattern: Scalar::Literal {
                value: crate::ir::Value::String("x".into()),
            },
            case_sensitive: false,
            negated,
            at: Default::default(),
        }
    }

    #[test]
    fn de_morgan_reaches_the_leaves() {
        let p = and(vec![
            text("a", false),
            or(vec![text("b", false), text("c", true)]),
        ]);
        let n = negate(p);
        assert_eq!(
            n,
            or(vec![
                text("a", true),
                and(vec![text("b", true), text("c", false)])
            ])
        );
    }

    #[test]
    fn constants_fold() {
        assert_eq!(
            and(vec![text("a", false), Predicate::Constant { value: true }]),
            text("a", false)
        );
        assert_eq!(
            or(vec![text("a", false), Predicate::Constant { value: true }]),
            Predicate::Constant { value: true }
        );
        assert_eq!(and(vec![]), Predicate::Constant { value: true });
    }
}
