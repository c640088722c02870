//! ES|QL expressions as text with a precedence and a rough type, and the builders that
//! put them together with the parentheses the grammar needs.

use super::lit;

/// What kind of value an expression holds, as far as the translation needs to know:
/// enough to pick `TO_IP`/`TO_STRING`, to compare a keyword with a number the way KQL
/// converts, and to know when a missing value must count as an empty string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Ip,
    Num,
    Date,
    Bool,
    /// A time span literal (`1 hour`).
    Span,
    Null,
    Any,
}

/// Binding strength of an expression's outermost operator.
pub const OR: u8 = 1;
pub const AND: u8 = 2;
pub const NOT: u8 = 3;
/// Comparisons, `LIKE`, `RLIKE`, `IN`, `IS NULL`.
pub const PRED: u8 = 4;
pub const ADD: u8 = 5;
pub const MUL: u8 = 6;
pub const NEG: u8 = 7;
pub const ATOM: u8 = 9;

#[derive(Debug, Clone, PartialEq)]
pub struct E {
    pub text: String,
    pub ty: Ty,
    pub prec: u8,
}

impl E {
    pub fn new(text: impl Into<String>, ty: Ty, prec: u8) -> E {
        E {
            text: text.into(),
            ty,
            prec,
        }
    }

    pub fn atom(text: impl Into<String>, ty: Ty) -> E {
        E::new(text, ty, ATOM)
    }

    pub fn column(name: &str, ty: Ty) -> E {
        E::atom(lit::ident(name), ty)
    }

    pub fn string(s: &str) -> E {
        E::atom(lit::string(s), Ty::Str)
    }

    pub fn bool(b: bool) -> E {
        E::atom(if b { "TRUE" } else { "FALSE" }, Ty::Bool)
    }

    pub fn null() -> E {
        E::atom("NULL", Ty::Null)
    }

    pub fn long(n: i64) -> E {
        E::new(n.to_string(), Ty::Num, if n < 0 { NEG } else { ATOM })
    }

    /// The text, in parentheses if its operator binds less than `prec`.
    pub fn at(&self, prec: u8) -> String {
        if self.prec < prec {
            format!("({})", self.text)
        } else {
            self.text.clone()
        }
    }

    /// A plain column reference (not a computed expression)?
    pub fn is_column(&self) -> bool {
        self.prec == ATOM
            && !self.text.ends_with(')')
            && !self.text.starts_with('"')
            && !matches!(self.text.as_str(), "TRUE" | "FALSE" | "NULL")
            && !self.text.starts_with(|c: char| c.is_ascii_digit())
    }
}

pub fn call(function: &str, args: &[E], ty: Ty) -> E {
    let args: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
    E::atom(format!("{function}({})", args.join(", ")), ty)
}

pub fn cmp(left: &E, op: &str, right: &E) -> E {
    E::new(
        format!("{} {op} {}", left.at(ADD), right.at(ADD)),
        Ty::Bool,
        PRED,
    )
}

pub fn arith(left: &E, op: &str, right: &E, ty: Ty) -> E {
    let prec = if matches!(op, "+" | "-") { ADD } else { MUL };
    // Left-associative: the right operand needs to bind tighter.
    E::new(
        format!("{} {op} {}", left.at(prec), right.at(prec + 1)),
        ty,
        prec,
    )
}

pub fn neg(value: &E) -> E {
    E::new(format!("-{}", value.at(NEG + 1)), value.ty, NEG)
}

pub fn not(value: &E) -> E {
    E::new(format!("NOT {}", value.at(PRED)), Ty::Bool, NOT)
}

pub fn is_null(value: &E) -> E {
    E::new(format!("{} IS NULL", value.at(ADD)), Ty::Bool, PRED)
}

pub fn is_not_null(value: &E) -> E {
    E::new(format!("{} IS NOT NULL", value.at(ADD)), Ty::Bool, PRED)
}

/// `value [NOT] LIKE pattern` / `RLIKE`, the pattern given as its (unquoted) text.
pub fn matches(value: &E, op: &str, pattern: &str, negated: bool) -> E {
    let not = if negated { "NOT " } else { "" };
    E::new(
        format!("{} {not}{op} {}", value.at(ADD), lit::string(pattern)),
        Ty::Bool,
        PRED,
    )
}

pub fn in_list(value: &E, items: &[E], negated: bool) -> E {
    let items: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
    let not = if negated { "NOT " } else { "" };
    E::new(
        format!("{} {not}IN ({})", value.at(ADD), items.join(", ")),
        Ty::Bool,
        PRED,
    )
}

/// A condition, or a constant left by folding (a dropped part, an empty list).
#[derive(Debug, Clone, PartialEq)]
pub enum P {
    Const(bool),
    E(E),
}

impl P {
    pub fn expr(self) -> E {
        match self {
            P::Const(b) => E::bool(b),
            P::E(e) => e,
        }
    }
}

pub fn and(parts: Vec<P>) -> P {
    let mut kept = vec![];
    for p in parts {
        match p {
            P::Const(true) => {}
            P::Const(false) => return P::Const(false),
            P::E(e) => kept.push(e),
        }
    }
    join(kept, " AND ", AND, true)
}

pub fn or(parts: Vec<P>) -> P {
    let mut kept = vec![];
    for p in parts {
        match p {
            P::Const(false) => {}
            P::Const(true) => return P::Const(true),
            P::E(e) => kept.push(e),
        }
    }
    join(kept, " OR ", OR, false)
}

fn join(mut parts: Vec<E>, op: &str, prec: u8, empty: bool) -> P {
    match parts.len() {
        0 => P::Const(empty),
        1 => P::E(parts.remove(0)),
        _ => P::E(E::new(
            parts
                .iter()
                .map(|p| p.at(prec))
                .collect::<Vec<_>>()
                .join(op),
            Ty::Bool,
            prec,
        )),
    }
}

/// A time span literal for a number of seconds, in the largest unit that divides it.
pub fn span(seconds: f64) -> Option<E> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    let millis = (seconds * 1000.0).round();
    if (millis / 1000.0 - seconds).abs() > 1e-9 || millis > 9.0e15 {
        return None;
    }
    let millis = millis as i64;
    const UNITS: &[(i64, &str)] = &[
        (86_400_000, "day"),
        (3_600_000, "hour"),
        (60_000, "minute"),
        (1000, "second"),
        (1, "millisecond"),
    ];
    for &(size, unit) in UNITS {
        if millis % size == 0 && (millis > 0 || size == 1000) {
            let n = millis / size;
            let plural = if n == 1 { "" } else { "s" };
            return Some(E::atom(format!("{n} {unit}{plural}"), Ty::Span));
        }
    }
    None
}

/// A time span for Elastic's date math (`1h`, `5m`, `14d`), as rule fields use.
pub fn date_math(seconds: u64) -> String {
    for (size, unit) in [(86_400, "d"), (3_600, "h"), (60, "m")] {
        if seconds > 0 && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_get_the_parentheses_they_need() {
        let a = E::column("a", Ty::Bool);
        let b = E::column("b", Ty::Bool);
        let c = E::column("c", Ty::Bool);
        let ab = or(vec![P::E(a.clone()), P::E(b.clone())]).expr();
        assert_eq!(and(vec![P::E(ab), P::E(c)]).expr().text, "(a OR b) AND c");
        assert_eq!(
            not(&and(vec![P::E(a), P::E(b)]).expr()).text,
            "NOT (a AND b)"
        );
        let x = E::column("x", Ty::Num);
        let sum = arith(&x, "+", &E::long(1), Ty::Num);
        assert_eq!(arith(&x, "-", &sum, Ty::Num).text, "x - (x + 1)");
        assert_eq!(cmp(&sum, "==", &E::long(-1)).text, "x + 1 == -1");
    }

    #[test]
    fn spans_use_the_largest_exact_unit() {
        assert_eq!(span(3600.0).unwrap().text, "1 hour");
        assert_eq!(span(1_209_600.0).unwrap().text, "14 days");
        assert_eq!(span(90.0 * 60.0).unwrap().text, "90 minutes");
        assert_eq!(span(0.5).unwrap().text, "500 milliseconds");
        assert_eq!(span(0.0).unwrap().text, "0 seconds");
        assert_eq!(date_math(86_400), "1d");
        assert_eq!(date_math(5400), "90m");
    }
}
