//! SPL expressions as small trees, printed with SPL's precedence: eval/where expressions
//! ([`E`]) and search expressions ([`S`]), whose `AND`/`OR` precedence differs (search
//! evaluates `OR` before `AND`, eval the other way round), so each has its own printer.

use super::text;

/// An eval/where expression.
#[derive(Debug, Clone, PartialEq)]
pub enum E {
    Field(String),
    /// A string literal (escaped when printed).
    Str(String),
    /// A number, as written.
    Num(String),
    Call(String, Vec<E>),
    Not(Box<E>),
    Neg(Box<E>),
    Bin(Op, Box<E>, Box<E>),
    And(Vec<E>),
    Or(Vec<E>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Mod => "%",
            Op::Concat => ".",
        }
    }

    fn precedence(self) -> u8 {
        match self {
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => CMP,
            Op::Add | Op::Sub | Op::Concat => ADD,
            Op::Mul | Op::Div | Op::Mod => MUL,
        }
    }
}

const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const CMP: u8 = 4;
const ADD: u8 = 5;
const MUL: u8 = 6;
const UNARY: u8 = 7;
const PRIMARY: u8 = 8;

impl E {
    pub fn field(name: &str) -> E {
        E::Field(name.to_string())
    }

    pub fn str(s: &str) -> E {
        E::Str(s.to_string())
    }

    pub fn num(n: f64) -> E {
        E::Num(text::number(n))
    }

    pub fn int(n: i64) -> E {
        E::Num(n.to_string())
    }

    pub fn call(name: &str, args: Vec<E>) -> E {
        E::Call(name.to_string(), args)
    }

    pub fn bin(op: Op, left: E, right: E) -> E {
        E::Bin(op, Box::new(left), Box::new(right))
    }

    pub fn eq(left: E, right: E) -> E {
        E::bin(Op::Eq, left, right)
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(e: E) -> E {
        match e {
            E::Not(inner) => *inner,
            e => E::Not(Box::new(e)),
        }
    }

    pub fn and(items: Vec<E>) -> E {
        let mut flat = vec![];
        for e in items {
            match e {
                E::And(inner) => flat.extend(inner),
                e => flat.push(e),
            }
        }
        if flat.len() == 1 {
            flat.pop().unwrap_or_else(|| E::call("true", vec![]))
        } else if flat.is_empty() {
            E::call("true", vec![])
        } else {
            E::And(flat)
        }
    }

    pub fn or(items: Vec<E>) -> E {
        let mut flat = vec![];
        for e in items {
            match e {
                E::Or(inner) => flat.extend(inner),
                e => flat.push(e),
            }
        }
        if flat.len() == 1 {
            flat.pop().unwrap_or_else(|| E::call("false", vec![]))
        } else if flat.is_empty() {
            E::call("false", vec![])
        } else {
            E::Or(flat)
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            E::Or(_) => OR,
            E::And(_) => AND,
            E::Not(_) => NOT,
            E::Bin(op, ..) => op.precedence(),
            E::Neg(_) => UNARY,
            E::Num(n) if n.starts_with('-') => UNARY,
            _ => PRIMARY,
        }
    }

    /// The expression as SPL text.
    pub fn print(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write_at(&self, min: u8, out: &mut String) {
        if self.precedence() < min {
            out.push('(');
            self.write(out);
            out.push(')');
        } else {
            self.write(out);
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            E::Field(name) => out.push_str(&text::eval_field(name)),
            E::Str(s) => out.push_str(&text::eval_string(s)),
            E::Num(n) => out.push_str(n),
            E::Call(name, args) => {
                out.push_str(name);
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    a.write(out);
                }
                out.push(')');
            }
            E::Not(inner) => {
                out.push_str("NOT ");
                inner.write_at(NOT + 1, out);
            }
            E::Neg(inner) => {
                out.push('-');
                inner.write_at(PRIMARY, out);
            }
            E::Bin(op, left, right) => {
                let p = op.precedence();
                // Comparisons do not chain; arithmetic is left-associative.
                left.write_at(if p == CMP { p + 1 } else { p }, out);
                // Comparisons read best tight (`count_>5`), arithmetic spaced (`a . "@" . b`).
                if p == CMP {
                    out.push_str(op.symbol());
                } else {
                    out.push(' ');
                    out.push_str(op.symbol());
                    out.push(' ');
                }
                right.write_at(p + 1, out);
            }
            E::And(items) | E::Or(items) => {
                let (p, word) = if matches!(self, E::And(_)) {
                    (AND, " AND ")
                } else {
                    (OR, " OR ")
                };
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(word);
                    }
                    e.write_at(p + 1, out);
                }
            }
        }
    }
}

/// A search expression (base search, `search` command).
#[derive(Debug, Clone, PartialEq)]
pub enum S {
    /// One printed term: `field="value"`, `field IN (...)`, `earliest=-1h`, a subsearch.
    Term(String),
    Not(Box<S>),
    And(Vec<S>),
    Or(Vec<S>),
}

impl S {
    pub fn term(t: impl Into<String>) -> S {
        S::Term(t.into())
    }

    /// `field=value` with a value already printed (quoted string or number).
    pub fn cmp(field: &str, op: &str, value: String) -> S {
        S::Term(format!("{field}{op}{value}"))
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(s: S) -> S {
        match s {
            S::Not(inner) => *inner,
            s => S::Not(Box::new(s)),
        }
    }

    pub fn and(items: Vec<S>) -> S {
        let mut flat = vec![];
        for s in items {
            match s {
                S::And(inner) => flat.extend(inner),
                s => flat.push(s),
            }
        }
        if flat.len() == 1 {
            flat.pop().unwrap_or_else(|| S::Term(String::new()))
        } else {
            S::And(flat)
        }
    }

    pub fn or(items: Vec<S>) -> S {
        let mut flat = vec![];
        for s in items {
            match s {
                S::Or(inner) => flat.extend(inner),
                s => flat.push(s),
            }
        }
        if flat.len() == 1 {
            flat.pop().unwrap_or_else(|| S::Term(String::new()))
        } else {
            S::Or(flat)
        }
    }

    pub fn print(&self) -> String {
        match self {
            S::Term(t) => t.clone(),
            S::Not(inner) => match **inner {
                S::Term(_) => format!("NOT {}", inner.print()),
                _ => format!("NOT ({})", inner.print()),
            },
            // Groups are always bracketed when nested: search reads `a OR b c` as
            // `(a OR b) c`, which few readers expect.
            S::And(items) => items
                .iter()
                .map(|s| match s {
                    S::Or(_) => format!("({})", s.print()),
                    _ => s.print(),
                })
                .collect::<Vec<_>>()
                .join(" "),
            S::Or(items) => items
                .iter()
                .map(|s| match s {
                    S::And(_) => format!("({})", s.print()),
                    _ => s.print(),
                })
                .collect::<Vec<_>>()
                .join(" OR "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_precedence() {
        let e = E::and(vec![
            E::or(vec![
                E::eq(E::field("a"), E::str("x")),
                E::eq(E::field("b.c"), E::int(1)),
            ]),
            E::not(E::eq(E::field("d"), E::str("y"))),
        ]);
        assert_eq!(e.print(), r#"(a=="x" OR 'b.c'==1) AND NOT d=="y""#);
        let arith = E::bin(
            Op::Sub,
            E::field("a"),
            E::bin(Op::Sub, E::field("b"), E::int(1)),
        );
        assert_eq!(arith.print(), "a - (b - 1)");
    }

    #[test]
    fn search_grouping() {
        let s = S::and(vec![
            S::term("a=1"),
            S::or(vec![
                S::term("b=2"),
                S::and(vec![S::term("c=3"), S::term("d=4")]),
            ]),
            S::not(S::or(vec![S::term("e=5"), S::term("f=6")])),
        ]);
        assert_eq!(s.print(), "a=1 (b=2 OR (c=3 d=4)) NOT (e=5 OR f=6)");
    }
}
