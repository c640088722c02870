//! KQL values as eval expressions: functions mapped one by one to eval functions (or to
//! a few eval functions that compute the same thing), with what differs said.

use super::Tr;
use super::expr::{E, Op};
use super::predicate::eval_value;
use super::scope::{Kind, Ref, Scope};
use super::text;
use crate::diag::Code;
use crate::ir::{ArithOp, Scalar, Value};

/// A boolean expression as a value eval can store.
pub(super) fn value_of((e, kind): (E, Kind)) -> E {
    if kind == Kind::Bool {
        E::call("if", vec![e, E::str("true"), E::str("false")])
    } else {
        e
    }
}

fn literal_string(s: &Scalar) -> Option<&str> {
    match s {
        Scalar::Literal {
            value: Value::String(v),
        } => Some(v),
        _ => None,
    }
}

fn literal_number(s: &Scalar) -> Option<f64> {
    match s {
        Scalar::Literal { value } => match value {
            Value::Long(n) => Some(*n as f64),
            Value::Real(r) => Some(*r),
            Value::TimeSpan(t) => Some(*t),
            _ => None,
        },
        Scalar::Negate { value } => literal_number(value).map(|n| -n),
        _ => None,
    }
}

/// Seconds per unit of `datetime_diff`/`datetime_add`, for the units whose boundaries are
/// multiples of the unit since 1970 (UTC).
fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "second" | "seconds" => 1.0,
        "minute" | "minutes" => 60.0,
        "hour" | "hours" => 3600.0,
        "day" | "days" => 86_400.0,
        "millisecond" | "milliseconds" => 0.001,
        _ => return None,
    })
}

impl Tr<'_> {
    /// A value as an eval expression, and what it holds.
    pub(super) fn scalar(&mut self, scope: &Scope, s: &Scalar) -> (E, Kind) {
        match s {
            // `True`/`False` are boolean literals in Kusto, in any case; the IR can hold them
            // as column names.
            Scalar::Field { path }
                if path.path.is_empty()
                    && matches!(path.column.to_ascii_lowercase().as_str(), "true" | "false")
                    && !scope.columns.contains_key(&path.column) =>
            {
                (E::str(&path.column.to_ascii_lowercase()), Kind::Value)
            }
            Scalar::Field { path } => {
                let r = self.resolve(scope, path, None);
                (r.expr(), r.kind())
            }
            Scalar::Literal { value } => (eval_value(value), Kind::Value),
            Scalar::AllColumns => (E::str("*"), Kind::Value),
            Scalar::Arith { op, left, right } => {
                let l = value_of(self.scalar(scope, left));
                let r = value_of(self.scalar(scope, right));
                let op = match op {
                    ArithOp::Add => Op::Add,
                    ArithOp::Sub => Op::Sub,
                    ArithOp::Mul => Op::Mul,
                    ArithOp::Div => Op::Div,
                    ArithOp::Mod => Op::Mod,
                };
                (E::bin(op, l, r), Kind::Value)
            }
            Scalar::Negate { value } => {
                let v = value_of(self.scalar(scope, value));
                (E::Neg(Box::new(v)), Kind::Value)
            }
            Scalar::Condition { predicate } => (self.where_pred(scope, predicate), Kind::Bool),
            Scalar::Choose {
                branches,
                otherwise,
            } => {
                let mut args = vec![];
                let mut kinds = vec![];
                for (cond, value) in branches {
                    args.push(self.where_pred(scope, cond));
                    let v = self.scalar(scope, value);
                    kinds.push(v.1);
                    args.push(value_of(v));
                }
                let other = self.scalar(scope, otherwise);
                kinds.push(other.1);
                let other = value_of(other);
                let kind = if kinds.iter().all(|k| *k == kinds[0]) && kinds[0] != Kind::Bool {
                    kinds[0]
                } else {
                    Kind::Value
                };
                if args.len() == 2 {
                    args.push(other);
                    (E::call("if", args), kind)
                } else {
                    args.push(E::call("true", vec![]));
                    args.push(other);
                    (E::call("case", args), kind)
                }
            }
            Scalar::Now { offset_seconds } => (now(*offset_seconds), Kind::Value),
            Scalar::Bin { value, size } => {
                let v = value_of(self.scalar(scope, value));
                let size = value_of(self.scalar(scope, size));
                let floor = E::call("floor", vec![E::bin(Op::Div, v, size.clone())]);
                (E::bin(Op::Mul, floor, size), Kind::Value)
            }
            Scalar::Element { value, index } => {
                let (v, kind) = self.scalar(scope, value);
                // x["key"]: a key of a JSON object.
                if let Some(key) = literal_string(index) {
                    return (E::call("spath", vec![v, E::str(key)]), Kind::Json);
                }
                let i = value_of(self.scalar(scope, index));
                let e = match (kind, literal_number(index)) {
                    (Kind::Json, Some(n)) if n >= 0.0 => {
                        E::call("spath", vec![v, E::str(&format!("{{{}}}", n as i64))])
                    }
                    (Kind::Json, _) => {
                        E::call("mvindex", vec![E::call("spath", vec![v, E::str("{}")]), i])
                    }
                    _ => E::call("mvindex", vec![v, i]),
                };
                (
                    e,
                    if kind == Kind::Json {
                        Kind::Json
                    } else {
                        Kind::Value
                    },
                )
            }
            Scalar::Subquery { query } => self.scalar_subquery(query),
            Scalar::Call { function, args } => self.call(scope, function, args),
        }
    }

    /// The Splunk field (or JSON) a column argument names, for functions that take one.
    fn field_arg(&mut self, scope: &Scope, s: &Scalar) -> Option<Ref> {
        match s {
            Scalar::Field { path } => Some(self.resolve(scope, path, None)),
            Scalar::Call { function, args }
                if matches!(
                    function.as_str(),
                    "parse_json" | "todynamic" | "parsejson" | "tostring"
                ) && args.len() == 1 =>
            {
                self.field_arg(scope, &args[0])
            }
            _ => None,
        }
    }

    /// An array value as a multivalue expression (for counting and indexing).
    fn multivalue(&mut self, scope: &Scope, s: &Scalar) -> E {
        match self.field_arg(scope, s) {
            Some(Ref::Raw { path, .. }) => E::call(
                "spath",
                vec![E::field("_raw"), E::str(&format!("{path}{{}}"))],
            ),
            Some(Ref::Field(name, Kind::Json)) => {
                E::call("spath", vec![E::field(&name), E::str("{}")])
            }
            Some(r) if r.kind() == Kind::Json => E::call("spath", vec![r.expr(), E::str("{}")]),
            Some(r) => r.expr(),
            None => {
                let (e, kind) = self.scalar(scope, s);
                if kind == Kind::Json {
                    E::call("spath", vec![e, E::str("{}")])
                } else {
                    e
                }
            }
        }
    }

    fn call(&mut self, scope: &Scope, function: &str, args: &[Scalar]) -> (E, Kind) {
        let name = function.to_ascii_lowercase();
        let n = args.len();
        macro_rules! arg {
            ($i:expr) => {
                value_of(self.scalar(scope, &args[$i]))
            };
        }
        let value = |e: E| (e, Kind::Value);
        let boolean = |e: E| (e, Kind::Bool);
        match (name.as_str(), n) {
            ("tostring", 1) => {
                // Field values are text already (JSON included: its text).
                let (e, kind) = self.scalar(scope, &args[0]);
                (value_of((e, kind)), Kind::Value)
            }
            ("parse_json" | "todynamic" | "parsejson" | "toobject", 1) => {
                let (e, kind) = self.scalar(scope, &args[0]);
                (
                    e,
                    if kind == Kind::Multi {
                        Kind::Multi
                    } else {
                        Kind::Json
                    },
                )
            }
            ("toint" | "tolong" | "toreal" | "todouble" | "todecimal" | "tonumber", 1) => {
                value(E::call("tonumber", vec![arg!(0)]))
            }
            ("tobool" | "toboolean", 1) => {
                let v = arg!(0);
                boolean(E::or(vec![
                    E::eq(
                        E::call("lower", vec![E::call("tostring", vec![v.clone()])]),
                        E::str("true"),
                    ),
                    E::eq(E::call("tostring", vec![v]), E::str("1")),
                ]))
            }
            ("tolower", 1) => value(E::call("lower", vec![arg!(0)])),
            ("toupper", 1) => value(E::call("upper", vec![arg!(0)])),
            ("strlen" | "string_size", 1) => value(E::call("len", vec![arg!(0)])),
            ("trim", 2) | ("trim_start", 2) | ("trim_end", 2) => {
                let Some(re) = literal_string(&args[0]) else {
                    return self.untranslated(function, "a computed pattern");
                };
                let re = format!("(?:{re})");
                let pattern = match name.as_str() {
                    "trim" => format!("^{re}+|{re}+$"),
                    "trim_start" => format!("^{re}+"),
                    _ => format!("{re}+$"),
                };
                value(E::call(
                    "replace",
                    vec![arg!(1), E::str(&pattern), E::str("")],
                ))
            }
            ("substring", 2 | 3) => {
                let start = match literal_number(&args[1]) {
                    Some(s) => E::num(s.max(0.0) + 1.0),
                    None => E::bin(Op::Add, arg!(1), E::int(1)),
                };
                let mut a = vec![arg!(0), start];
                if n == 3 {
                    a.push(arg!(2));
                }
                value(E::call("substr", a))
            }
            ("strcat", _) if n > 0 => {
                // `.` gives null when a side is null; KQL reads a missing string as "".
                let parts: Vec<E> = args
                    .iter()
                    .map(|a| match a {
                        Scalar::Literal { .. } => value_of(self.scalar(scope, a)),
                        _ => E::call(
                            "coalesce",
                            vec![value_of(self.scalar(scope, a)), E::str("")],
                        ),
                    })
                    .collect();
                let mut it = parts.into_iter();
                let first = it.next().unwrap_or_else(|| E::str(""));
                value(it.fold(first, |acc, p| E::bin(Op::Concat, acc, p)))
            }
            ("strcat_delim", _) if n > 1 => {
                let delim = arg!(0);
                let parts: Vec<E> = (1..n)
                    .map(|i| E::call("coalesce", vec![arg!(i), E::str("")]))
                    .collect();
                let mut out = parts[0].clone();
                for p in parts.into_iter().skip(1) {
                    out = E::bin(Op::Concat, E::bin(Op::Concat, out, delim.clone()), p);
                }
                value(out)
            }
            ("strcat_array", 2) => {
                let arr = self.multivalue(scope, &args[0]);
                value(E::call("mvjoin", vec![arr, arg!(1)]))
            }
            ("split", 2) => (E::call("split", vec![arg!(0), arg!(1)]), Kind::Multi),
            ("split", 3) => value(E::call(
                "mvindex",
                vec![E::call("split", vec![arg!(0), arg!(1)]), arg!(2)],
            )),
            ("coalesce", _) if n > 0 => {
                // KQL's coalesce skips empty strings as well as nulls.
                let items = (0..n)
                    .map(|i| match &args[i] {
                        Scalar::Literal { .. } => arg!(i),
                        _ => E::call("nullif", vec![arg!(i), E::str("")]),
                    })
                    .collect();
                value(E::call("coalesce", items))
            }
            ("isempty" | "isnotempty" | "isnull" | "isnotnull" | "notempty" | "notnull", 1) => {
                let v = arg!(0);
                boolean(match name.as_str() {
                    "isempty" => E::or(vec![
                        E::call("isnull", vec![v.clone()]),
                        E::eq(v, E::str("")),
                    ]),
                    "isnotempty" | "notempty" => E::and(vec![
                        E::call("isnotnull", vec![v.clone()]),
                        E::bin(Op::Ne, v, E::str("")),
                    ]),
                    "isnull" => E::call("isnull", vec![v]),
                    _ => E::call("isnotnull", vec![v]),
                })
            }
            ("now", 0) => value(E::call("now", vec![])),
            ("ago", 1) => match literal_number(&args[0]) {
                Some(s) => value(now(-s)),
                None => value(E::bin(Op::Sub, E::call("now", vec![]), arg!(0))),
            },
            ("ingestion_time", 0) => value(E::field("_indextime")),
            ("todatetime" | "datetime", 1) => {
                if let Some(Ref::Field(f, _)) = self.field_arg(scope, &args[0])
                    && f == "_time"
                {
                    return value(E::field("_time"));
                }
                if let Scalar::Literal { value: v } = &args[0] {
                    let text = match v {
                        Value::String(s) | Value::DateTime(s) => Some(s.clone()),
                        _ => None,
                    };
                    if let Some(secs) = text.as_deref().and_then(super::predicate::epoch) {
                        return value(E::num(secs));
                    }
                }
                self.warn(
                    Code::TargetLimit,
                    None,
                    "`todatetime()` of text is read with strptime as `%Y-%m-%dT%H:%M:%S` (other layouts give null; a time without a zone is read in the Splunk user's time zone)",
                );
                value(E::call(
                    "strptime",
                    vec![arg!(0), E::str("%Y-%m-%dT%H:%M:%S")],
                ))
            }
            ("bin" | "floor", 2) => {
                let v = arg!(0);
                let size = arg!(1);
                value(E::bin(
                    Op::Mul,
                    E::call("floor", vec![E::bin(Op::Div, v, size.clone())]),
                    size,
                ))
            }
            ("startofday", 1) => value(floor_to(arg!(0), 86_400.0)),
            ("endofday", 1) => value(E::bin(
                Op::Add,
                floor_to(arg!(0), 86_400.0),
                E::num(86_399.999_999_9),
            )),
            ("startofweek", 1) => {
                // Weeks start on Sunday; 1970-01-01 was a Thursday.
                let days = E::call("floor", vec![E::bin(Op::Div, arg!(0), E::int(86_400))]);
                let weekday = E::bin(Op::Mod, E::bin(Op::Add, days.clone(), E::int(4)), E::int(7));
                value(E::bin(
                    Op::Mul,
                    E::bin(Op::Sub, days, weekday),
                    E::int(86_400),
                ))
            }
            ("hourofday", 1) => value(E::bin(
                Op::Mod,
                E::call("floor", vec![E::bin(Op::Div, arg!(0), E::int(3600))]),
                E::int(24),
            )),
            ("dayofweek", 1) => {
                // A timespan: days since Sunday.
                let days = E::call("floor", vec![E::bin(Op::Div, arg!(0), E::int(86_400))]);
                value(E::bin(
                    Op::Mul,
                    E::bin(Op::Mod, E::bin(Op::Add, days, E::int(4)), E::int(7)),
                    E::int(86_400),
                ))
            }
            ("startofmonth" | "startofyear", 1) => {
                self.warn(
                    Code::TargetLimit,
                    None,
                    format!("`{function}()` uses relative_time, which snaps to the Splunk user's time zone (KQL: UTC)"),
                );
                let snap = if name == "startofmonth" { "@mon" } else { "@y" };
                value(E::call("relative_time", vec![arg!(0), E::str(snap)]))
            }
            ("datetime_diff", 3) => {
                let Some(unit) = literal_string(&args[0]).and_then(unit_seconds) else {
                    return self.untranslated(function, "this unit");
                };
                let boundaries = |e: E| E::call("floor", vec![E::bin(Op::Div, e, E::num(unit))]);
                value(E::bin(Op::Sub, boundaries(arg!(1)), boundaries(arg!(2))))
            }
            ("datetime_add", 3) => {
                let Some(unit) = literal_string(&args[0]).and_then(unit_seconds) else {
                    return self.untranslated(function, "this unit");
                };
                value(E::bin(
                    Op::Add,
                    arg!(2),
                    E::bin(Op::Mul, arg!(1), E::num(unit)),
                ))
            }
            ("extract", 3 | 4) => {
                let Some(re) = literal_string(&args[0]) else {
                    return self.untranslated(function, "a computed pattern");
                };
                let Some(group) = literal_number(&args[1]) else {
                    return self.untranslated(function, "a computed group");
                };
                let s = arg!(2);
                // The text before the leftmost match and after it is dropped; the group is
                // what remains. No match: null, as in KQL.
                let (wrapped, group) = if group == 0.0 {
                    (format!("(?s)^.*?({re}).*$"), 1)
                } else {
                    (format!("(?s)^.*?(?:{re}).*$"), group as i64)
                };
                let extracted = E::call(
                    "if",
                    vec![
                        E::call("match", vec![s.clone(), E::str(re)]),
                        E::call(
                            "replace",
                            vec![s, E::str(&wrapped), E::str(&format!("\\{group}"))],
                        ),
                        E::call("null", vec![]),
                    ],
                );
                if n == 4 {
                    value(E::call("tonumber", vec![extracted]))
                } else {
                    value(extracted)
                }
            }
            ("replace_string", 3) => {
                let Some(find) = literal_string(&args[1]) else {
                    return self.untranslated(function, "a computed search text");
                };
                let Some(with) = literal_string(&args[2]) else {
                    return self.untranslated(function, "a computed replacement");
                };
                value(E::call(
                    "replace",
                    vec![
                        arg!(0),
                        E::str(&text::regex_escape(find)),
                        E::str(&with.replace('\\', "\\\\")),
                    ],
                ))
            }
            ("replace_regex", 3) => value(E::call("replace", vec![arg!(0), arg!(1), arg!(2)])),
            // The old argument order: replace(regex, rewrite, text).
            ("replace", 3) => value(E::call("replace", vec![arg!(2), arg!(0), arg!(1)])),
            ("indexof", 2) => {
                // The length of the text before the first occurrence, if there is one.
                if literal_string(&args[1]) == Some("") {
                    return value(E::int(0));
                }
                let (s, find) = (arg!(0), arg!(1));
                let parts = E::call("split", vec![s, find]);
                value(E::call(
                    "if",
                    vec![
                        E::bin(Op::Gt, E::call("mvcount", vec![parts.clone()]), E::int(1)),
                        E::call("len", vec![E::call("mvindex", vec![parts, E::int(0)])]),
                        E::int(-1),
                    ],
                ))
            }
            ("range", 2 | 3) => {
                // KQL's range includes its end; mvrange stops before it.
                let step = if n == 3 { arg!(2) } else { E::int(1) };
                let end = E::bin(Op::Add, arg!(1), step.clone());
                (E::call("mvrange", vec![arg!(0), end, step]), Kind::Multi)
            }
            ("ipv4_is_match", 2) => boolean(E::eq(arg!(0), arg!(1))),
            ("prev" | "next", 1..=3) => {
                let offset = if n >= 2 {
                    literal_number(&args[1])
                } else {
                    Some(1.0)
                };
                let Some(offset) = offset.filter(|o| *o >= 1.0 && o.fract() == 0.0) else {
                    return self.untranslated(function, "a computed offset");
                };
                let field = self.as_field(scope, &args[0]);
                let out = self.temp(&name);
                let count = self.temp("rows");
                let window = offset as i64;
                // `next` reads the rows after: the same, in reverse order.
                let reverse = name == "next";
                if reverse {
                    self.pending.push("reverse".into());
                }
                self.pending.push(format!(
                    "streamstats current=f window={window} first({field}) AS {out}, count AS {count}"
                ));
                if reverse {
                    self.pending.push("reverse".into());
                }
                // A full window holds exactly `offset` rows; fewer means there is none.
                let mut v = E::call(
                    "if",
                    vec![
                        E::eq(E::field(&count), E::int(window)),
                        E::field(&out),
                        E::call("null", vec![]),
                    ],
                );
                if n == 3 {
                    v = E::call("coalesce", vec![v, arg!(2)]);
                }
                value(v)
            }
            ("parse_path", 1) => {
                self.warn(
                    Code::TargetLimit,
                    None,
                    "`parse_path()` is split with regular expressions (directory, name, extension); UNC roots and alternate data streams are not told apart",
                );
                let p = arg!(0);
                let dir = E::call(
                    "replace",
                    vec![
                        p.clone(),
                        E::str(r"(?s)^(.*)[\\/][^\\/]*$|^[^\\/]*$"),
                        E::str(r"\1"),
                    ],
                );
                let file = E::call(
                    "replace",
                    vec![p.clone(), E::str(r"(?s)^.*[\\/]"), E::str("")],
                );
                let ext = E::call(
                    "replace",
                    vec![
                        file.clone(),
                        E::str(r"(?s)^.*\.([^.]*)$|^[^.]*$"),
                        E::str(r"\1"),
                    ],
                );
                let dir_name = E::call(
                    "replace",
                    vec![dir.clone(), E::str(r"(?s)^.*[\\/]"), E::str("")],
                );
                let root = E::call(
                    "replace",
                    vec![
                        p,
                        E::str(r"(?s)^([A-Za-z]:[\\/]|[\\/]).*$|^.*$"),
                        E::str(r"\1"),
                    ],
                );
                (
                    E::call(
                        "json_object",
                        vec![
                            E::str("RootPath"),
                            root,
                            E::str("DirectoryPath"),
                            dir,
                            E::str("DirectoryName"),
                            dir_name,
                            E::str("Filename"),
                            file,
                            E::str("Extension"),
                            ext,
                        ],
                    ),
                    Kind::Json,
                )
            }
            ("countof", 2) => {
                let Some(find) = literal_string(&args[1]) else {
                    return self.untranslated(function, "a computed search text");
                };
                if find.is_empty() || overlaps_itself(find) {
                    return self.untranslated(function, "a text that can overlap itself");
                }
                value(E::bin(
                    Op::Sub,
                    E::call(
                        "mvcount",
                        vec![E::call("split", vec![arg!(0), E::str(find)])],
                    ),
                    E::int(1),
                ))
            }
            ("array_length" | "arraylength", 1) => {
                let arr = self.multivalue(scope, &args[0]);
                value(E::call("mvcount", vec![arr]))
            }
            ("pack_array" | "array_concat", _) if n > 0 => {
                let items = (0..n).map(|i| self.multivalue(scope, &args[i])).collect();
                (E::call("mvappend", items), Kind::Multi)
            }
            ("array_slice", 3) => {
                let arr = self.multivalue(scope, &args[0]);
                (E::call("mvindex", vec![arr, arg!(1), arg!(2)]), Kind::Multi)
            }
            ("array_index_of", 2) => {
                let Some(find) = literal_string(&args[1]) else {
                    return self.untranslated(function, "a computed value");
                };
                let arr = self.multivalue(scope, &args[0]);
                let re = format!("^{}\\z", text::regex_escape(find));
                value(E::call(
                    "coalesce",
                    vec![E::call("mvfind", vec![arr, E::str(&re)]), E::int(-1)],
                ))
            }
            ("set_has_element", 2) => {
                let Some(find) = literal_string(&args[1]) else {
                    return self.untranslated(function, "a computed value");
                };
                let arr = self.multivalue(scope, &args[0]);
                let re = format!("^{}\\z", text::regex_escape(find));
                boolean(E::call(
                    "isnotnull",
                    vec![E::call("mvfind", vec![arr, E::str(&re)])],
                ))
            }
            ("pack" | "bag_pack", _) if n % 2 == 0 && n > 0 => {
                let items = (0..n).map(|i| arg!(i)).collect();
                (E::call("json_object", items), Kind::Json)
            }
            ("extractjson" | "extract_json", 2 | 3) => {
                let Some(path) = literal_string(&args[0]).and_then(json_path) else {
                    return self.untranslated(function, "this JSON path");
                };
                (E::call("spath", vec![arg!(1), E::str(&path)]), Kind::Json)
            }
            ("columnifexists" | "column_ifexists", 2) => {
                let Some(column) = literal_string(&args[0]) else {
                    return self.untranslated(function, "a computed column name");
                };
                let path = crate::ir::FieldPath::column(column);
                let field = self.resolve(scope, &path, None).expr();
                value(E::call("coalesce", vec![field, arg!(1)]))
            }
            (
                "abs" | "exp" | "sqrt" | "floor" | "ceiling" | "ceil" | "round" | "pow" | "log10",
                _,
            ) => {
                let f = match name.as_str() {
                    "ceiling" => "ceil",
                    "log10" => {
                        return value(E::call("log", vec![arg!(0), E::int(10)]));
                    }
                    f => f,
                };
                let items = (0..n).map(|i| arg!(i)).collect();
                value(E::call(f, items))
            }
            ("log", 1) => value(E::call("ln", vec![arg!(0)])),
            ("log2", 1) => value(E::call("log", vec![arg!(0), E::int(2)])),
            ("max_of" | "min_of", _) if n > 0 => {
                let items = (0..n).map(|i| arg!(i)).collect();
                value(E::call(if name == "max_of" { "max" } else { "min" }, items))
            }
            ("binary_and" | "binary_or" | "binary_xor", 2) => {
                let f = format!("bit_{}", &name["binary_".len()..]);
                value(E::call(&f, vec![arg!(0), arg!(1)]))
            }
            ("hash_sha256", 1) => value(E::call("sha256", vec![arg!(0)])),
            ("hash_md5", 1) => value(E::call("md5", vec![arg!(0)])),
            ("hash_sha1", 1) => value(E::call("sha1", vec![arg!(0)])),
            ("url_decode", 1) => value(E::call("urldecode", vec![arg!(0)])),
            ("ipv4_is_private", 1) => {
                let v = arg!(0);
                boolean(E::or(
                    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
                        .iter()
                        .map(|r| E::call("cidrmatch", vec![E::str(r), v.clone()]))
                        .collect(),
                ))
            }
            ("ipv4_is_in_range", 2) => boolean(E::call("cidrmatch", vec![arg!(1), arg!(0)])),
            ("geo_info_from_ip_address", 1) => {
                let ip = self.as_field(scope, &args[0]);
                let prefix = format!("{}_", self.temp("geo"));
                self.pending
                    .push(format!("iplocation prefix={prefix} {ip}"));
                self.warn(
                    Code::TargetLimit,
                    None,
                    "`geo_info_from_ip_address()` is `iplocation`, whose GeoIP database can place an address differently from Kusto's",
                );
                let f = |k: &str| E::field(&format!("{prefix}{k}"));
                (
                    E::call(
                        "json_object",
                        vec![
                            E::str("country"),
                            f("Country"),
                            E::str("state"),
                            f("Region"),
                            E::str("city"),
                            f("City"),
                            E::str("latitude"),
                            f("lat"),
                            E::str("longitude"),
                            f("lon"),
                        ],
                    ),
                    Kind::Json,
                )
            }
            ("parse_url", 1) => {
                self.warn(
                    Code::TargetLimit,
                    None,
                    "`parse_url()` is split with a regular expression; its `Query Parameters` are not split into a bag (null)",
                );
                let url = arg!(0);
                let part = |i: u8| {
                    E::call(
                        "replace",
                        vec![url.clone(), E::str(URL_RE), E::str(&format!("\\{i}"))],
                    )
                };
                let mut items = vec![];
                for (key, group) in [
                    ("Scheme", 1),
                    ("Host", 4),
                    ("Port", 5),
                    ("Path", 6),
                    ("Username", 2),
                    ("Password", 3),
                    ("Fragment", 8),
                ] {
                    items.push(E::str(key));
                    items.push(part(group));
                }
                items.push(E::str("Query Parameters"));
                items.push(E::call("null", vec![]));
                (E::call("json_object", items), Kind::Json)
            }
            ("endofweek", 1) => {
                let days = E::call("floor", vec![E::bin(Op::Div, arg!(0), E::int(86_400))]);
                let weekday = E::bin(Op::Mod, E::bin(Op::Add, days.clone(), E::int(4)), E::int(7));
                let start = E::bin(Op::Mul, E::bin(Op::Sub, days, weekday), E::int(86_400));
                value(E::bin(Op::Add, start, E::num(7.0 * 86_400.0 - 0.000_000_1)))
            }
            ("endofmonth" | "endofyear", 1) => {
                self.warn(
                    Code::TargetLimit,
                    None,
                    format!("`{function}()` uses relative_time, which snaps to the Splunk user's time zone (KQL: UTC)"),
                );
                let snap = if name == "endofmonth" {
                    "+1mon@mon"
                } else {
                    "+1y@y"
                };
                value(E::bin(
                    Op::Sub,
                    E::call("relative_time", vec![arg!(0), E::str(snap)]),
                    E::num(0.000_000_1),
                ))
            }
            ("parse_xml", 1) => {
                self.warn(
                    Code::TargetLimit,
                    None,
                    "`parse_xml()` is read with spath, which addresses XML attributes (`a{@x}`) and repeated elements differently from KQL's JSON form of the document",
                );
                (arg!(0), Kind::Json)
            }
            ("pack_all", 0 | 1) if !scope.open => {
                let mut items = vec![];
                for column in scope.order.clone() {
                    let r = self.resolve(scope, &crate::ir::FieldPath::column(&column), None);
                    items.push(E::str(&column));
                    items.push(r.expr());
                }
                (E::call("json_object", items), Kind::Json)
            }
            ("extract_all" | "extractall", 2) => {
                let Some(re) = literal_string(&args[0]) else {
                    return self.untranslated(function, "a computed pattern");
                };
                let group = self.temp("all");
                let Some(named) = name_single_group(re, &group) else {
                    return self.untranslated(function, "several capture groups");
                };
                let field = self.as_field(scope, &args[1]);
                self.pending.push(format!(
                    "rex field={field} max_match=0 {}",
                    text::rex_pattern(&named)
                ));
                (E::field(&group), Kind::Multi)
            }
            ("__matches_regex", 2) => boolean(E::call("match", vec![arg!(0), arg!(1)])),
            ("__unsupported", _) => {
                let kql = args
                    .first()
                    .and_then(literal_string)
                    .unwrap_or("?")
                    .to_string();
                self.fail(
                    Code::Untranslatable,
                    None,
                    format!(
                        "`{}` is not translated (the IR keeps it opaque)",
                        super::super::one_line(&kql)
                    ),
                );
                value(E::call("null", vec![]))
            }
            _ => self.untranslated(function, "this function"),
        }
    }

    /// `toscalar(T | ...)`: the sub-query's first value, joined onto every event (a
    /// constant key) before the command that reads it.
    fn scalar_subquery(&mut self, query: &crate::ir::Pipeline) -> (E, Kind) {
        let value = self.temp("scalar");
        let key = self.temp("one");
        let mut known = true;
        let (v, k) = (value.clone(), key.clone());
        let sub = self.subsearch(query, |tr, spl| {
            let Some(first) = spl.scope.order.first().cloned() else {
                known = false;
                return;
            };
            let r = tr.resolve(&spl.scope, &crate::ir::FieldPath::column(&first), None);
            spl.commands.push("head 1".into());
            spl.commands
                .push(format!("eval {v}={}, {k}=1", r.expr().print()));
            spl.commands.push(format!("fields {k}, {v}"));
        });
        if !known {
            self.warn(
                Code::NotTranslated,
                None,
                "`toscalar()` of a sub-query whose columns kqlc cannot tell is not translated: replaced by null()",
            );
            return (E::call("null", vec![]), Kind::Value);
        }
        self.warn(
            Code::TargetLimit,
            None,
            "`toscalar()` runs as a subsearch joined onto the events: Splunk stops it after 60 s",
        );
        let nl = format!("\n{}", "    ".repeat(self.depth + 1));
        self.pending.push(format!("eval {key}=1"));
        self.pending.push(format!("join type=left {key}{nl}{sub}"));
        self.pending.push(format!("fields - {key}"));
        (E::field(&value), Kind::Value)
    }

    /// A value as a field name, computed first (before the current command) when it is
    /// an expression.
    fn as_field(&mut self, scope: &Scope, s: &Scalar) -> String {
        if let Some(Ref::Field(name, _)) = self.field_arg(scope, s) {
            return name;
        }
        let e = value_of(self.scalar(scope, s));
        let t = self.temp("arg");
        self.pending
            .push(format!("eval {}={}", text::eval_field(&t), e.print()));
        t
    }

    fn untranslated(&mut self, function: &str, what: &str) -> (E, Kind) {
        self.warn(
            Code::NotTranslated,
            None,
            format!("`{function}()` with {what} has no SPL translation: replaced by null()"),
        );
        (E::call("null", vec![]), Kind::Value)
    }
}

/// A URL's parts (KQL's parse_url): 1 scheme, 2 user, 3 password, 4 host, 5 port, 6 path,
/// 7 query, 8 fragment.
const URL_RE: &str = r"(?s)^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://(?:([^:@/?#]*)(?::([^@/?#]*))?@)?([^:/?#]*)(?::([0-9]*))?)?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$";

/// `now()` offset by seconds, as a relative time when it is a whole one.
pub(super) fn now(offset: f64) -> E {
    if offset == 0.0 {
        return E::call("now", vec![]);
    }
    match text::relative_time(-offset) {
        Some(rel) if offset < 0.0 => {
            E::call("relative_time", vec![E::call("now", vec![]), E::str(&rel)])
        }
        _ if offset < 0.0 => E::bin(Op::Sub, E::call("now", vec![]), E::num(-offset)),
        _ => E::bin(Op::Add, E::call("now", vec![]), E::num(offset)),
    }
}

/// A time rounded down to a multiple of `unit` seconds (UTC boundaries).
fn floor_to(t: E, unit: f64) -> E {
    E::bin(
        Op::Mul,
        E::call("floor", vec![E::bin(Op::Div, t, E::num(unit))]),
        E::num(unit),
    )
}

/// A regex with its only capture group named `name` (or the whole match when it has
/// none), for `rex`; `None` with several groups.
fn name_single_group(re: &str, name: &str) -> Option<String> {
    let chars: Vec<char> = re.chars().collect();
    let mut groups = vec![];
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class && chars.get(i + 1) != Some(&'?') => groups.push(i),
            _ => {}
        }
        i += 1;
    }
    match groups.as_slice() {
        [] => Some(format!("(?<{name}>{re})")),
        [at] => {
            let mut out: String = chars[..=*at].iter().collect();
            out.push_str(&format!("?<{name}>"));
            out.extend(&chars[at + 1..]);
            Some(out)
        }
        _ => None,
    }
}

/// Whether a text can overlap itself (`aa` in `aaa`), where counting by splitting differs
/// from KQL's count.
fn overlaps_itself(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    (1..chars.len()).any(|k| chars[k..] == chars[..chars.len() - k])
}

/// A JSONPath (`$.a.b[0]`, `$['a']`) as an spath path (`a.b{0}`).
fn json_path(p: &str) -> Option<String> {
    let rest = p.strip_prefix('$')?;
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !out.is_empty() {
                    out.push('.');
                }
            }
            '[' => {
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    inner.push(c);
                }
                let inner = inner.trim();
                if let Ok(i) = inner.parse::<i64>() {
                    out.push_str(&format!("{{{i}}}"));
                } else {
                    let key = inner.trim_matches(|c| c == '\'' || c == '"');
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        assert_eq!(json_path("$.a.b[0].c").as_deref(), Some("a.b{0}.c"));
        assert_eq!(json_path("$['a'].b").as_deref(), Some("a.b"));
        assert_eq!(json_path("a"), None);
    }

    #[test]
    fn single_groups_are_named() {
        assert_eq!(
            name_single_group(r"a(\d+)b", "x").as_deref(),
            Some(r"a(?<x>\d+)b")
        );
        assert_eq!(
            name_single_group(r"[(]\(x", "x").as_deref(),
            Some(r"(?<x>[(]\(x)")
        );
        assert_eq!(name_single_group("(a)(b)", "x"), None);
    }

    #[test]
    fn self_overlap() {
        assert!(overlaps_itself("aa"));
        assert!(overlaps_itself("abab"));
        assert!(!overlaps_itself(","));
        assert!(!overlaps_itself("ab"));
    }
}
