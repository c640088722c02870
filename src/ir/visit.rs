//! Walking IR values: the columns an expression reads.

use std::collections::BTreeSet;

use super::{Predicate, Scalar};

/// The columns (top-level names) a scalar reads from the current row. Sub-queries read
/// their own rows and are not looked into.
pub fn scalar_columns(s: &Scalar, out: &mut BTreeSet<String>) {
    match s {
        Scalar::Field { path } => {
            out.insert(path.column.clone());
        }
        Scalar::Literal { .. } | Scalar::Now { .. } | Scalar::Subquery { .. } => {}
        Scalar::AllColumns => {
            out.insert("*".to_string());
        }
        Scalar::Arith { left, right, .. } => {
            scalar_columns(left, out);
            scalar_columns(right, out);
        }
        Scalar::Negate { value } => scalar_columns(value, out),
        Scalar::Condition { predicate } => predicate_columns(predicate, out),
        Scalar::Choose {
            branches,
            otherwise,
        } => {
            for (p, v) in branches {
                predicate_columns(p, out);
                scalar_columns(v, out);
            }
            scalar_columns(otherwise, out);
        }
        Scalar::Bin { value, size } => {
            scalar_columns(value, out);
            scalar_columns(size, out);
        }
        Scalar::Call { args, .. } => args.iter().for_each(|a| scalar_columns(a, out)),
        Scalar::Element { value, index } => {
            scalar_columns(value, out);
            scalar_columns(index, out);
        }
    }
}

/// The columns a predicate reads from the current row.
pub fn predicate_columns(p: &Predicate, out: &mut BTreeSet<String>) {
    match p {
        Predicate::And { all } => all.iter().for_each(|q| predicate_columns(q, out)),
        Predicate::Or { any } => any.iter().for_each(|q| predicate_columns(q, out)),
        Predicate::Constant { .. } => {}
        Predicate::Compare { left, right, .. } => {
            scalar_columns(left, out);
            scalar_columns(right, out);
        }
        Predicate::Text { value, pattern, .. } => {
            scalar_columns(value, out);
            scalar_columns(pattern, out);
        }
        Predicate::Regex { value, .. }
        | Predicate::InList { value, .. }
        | Predicate::InQuery { value, .. }
        | Predicate::Cidr { value, .. }
        | Predicate::PrivateIp { value, .. }
        | Predicate::Empty { value, .. }
        | Predicate::Expr { value, .. } => scalar_columns(value, out),
        Predicate::Range {
            value, low, high, ..
        } => {
            scalar_columns(value, out);
            scalar_columns(low, out);
            scalar_columns(high, out);
        }
    }
}
