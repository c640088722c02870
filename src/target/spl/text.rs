//! SPL lexical rules: quoting values and field names, escaping regular expressions, and
//! the names kqlc makes up (lookups, macros, temporary fields). Nothing taken from a rule
//! reaches the output without passing through one of these functions.

/// Characters a field name from the mapping may hold (JSON paths: `a.b{}.c`, `_time`).
fn mapped_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '{' | '}' | '@' | ':' | '-')
}

/// A field name from the mapping, if it is one field (not `a/b` or a description).
pub fn mapped_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.chars().all(mapped_name_char)
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '@');
    ok.then(|| name.to_string())
}

/// A column name from the query as a Splunk field name: letters, digits and `_` (KQL
/// allows any text in `['...']`); a leading digit gets a `_` in front.
pub fn column_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A dotted KQL path (`AdditionalFields.Foo`) kept as a Splunk JSON field name.
pub fn dotted_name(column: &str, keys: &[String]) -> String {
    let mut out = column_name(column);
    for k in keys {
        out.push('.');
        out.push_str(&column_name(k));
    }
    out
}

/// Words eval reads as operators, not field names.
const EVAL_WORDS: &[&str] = &[
    "and", "or", "not", "xor", "like", "in", "true", "false", "null",
];

/// A field name in an eval or where expression: single-quoted unless it is a plain
/// identifier (`'properties.ipAddress'`, `count_`).
pub fn eval_field(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !EVAL_WORDS.contains(&name.to_ascii_lowercase().as_str());
    if plain {
        name.to_string()
    } else {
        // Field names are made of mapped_name_char / column_name characters: no quote
        // or backslash can occur, but escape anyway so no name can end the quotes.
        format!("'{}'", name.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

fn is_control(c: char) -> bool {
    c.is_control()
}

/// The body of a double-quoted SPL string: backslash and quote escaped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Characters a literal cannot hold as they are: control characters (a line-continued
/// savedsearches.conf value cannot hold them, and eval documents no escape for them) and
/// backticks (three start a comment, one a macro, wherever they are in the search).
fn needs_encoding(c: char) -> bool {
    is_control(c) || c == '`'
}

/// A string literal in eval/where: `"..."` with `\\` and `\"`. Text with control
/// characters or backticks is written as `urldecode("...%0A...")`.
pub fn eval_string(s: &str) -> String {
    if !s.chars().any(needs_encoding) {
        return quoted(s);
    }
    let mut encoded = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_encoding(c) || c == '%' || c == '+' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                encoded.push_str(&format!("%{b:02X}"));
            }
        } else {
            encoded.push(c);
        }
    }
    format!("urldecode({})", quoted(&encoded))
}

/// A value compared in a search (`field="value"`), when search can compare it exactly
/// (case aside): not with a `*`, which search reads as a wildcard and cannot escape, nor
/// control characters, nor the empty string or surrounding spaces (search does not tell
/// those apart from a missing field or trimmed text).
pub fn search_string(s: &str) -> Option<String> {
    let exact =
        !s.is_empty() && !s.contains('*') && !s.chars().any(needs_encoding) && s.trim() == s;
    exact.then(|| quoted(s))
}

/// A wildcard pattern in a search (`"*value*"`), or a value from the mapping; callers
/// check for control characters and backticks, which are dropped here as a last resort.
pub fn search_pattern(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !needs_encoding(*c)).collect();
    quoted(&clean)
}

/// Whether search can hold a text in a wildcard pattern.
pub fn search_safe(s: &str) -> bool {
    !s.is_empty() && !s.contains('*') && !s.chars().any(needs_encoding)
}

/// A plain quoted string for command options (lookup names, `path=`), from text kqlc
/// controls or has sanitized.
pub fn option_string(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !needs_encoding(*c)).collect();
    quoted(&clean)
}

/// Whether a text has no letter case (digits, punctuation): then search's case-insensitive
/// comparison is exact.
pub fn caseless(s: &str) -> bool {
    s.chars()
        .all(|c| c.to_lowercase().eq(c.to_uppercase()) && c.to_lowercase().eq(std::iter::once(c)))
}

/// A literal text as a PCRE pattern matching exactly that text.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '\\' | '.' | '^' | '$' | '|' | '?' | '*' | '+' | '(' | ')' | '[' | ']' | '{' | '}'
            | '#' => {
                out.push('\\');
                out.push(c);
            }
            c if is_control(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02X}", c as u32))
            }
            c if is_control(c) => out.push_str(&format!("\\x{{{:X}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A regular expression from the rule for a `rex` command argument, which SPL passes to
/// PCRE as written: quotes become `\x22` so the pattern holds none, and control
/// characters become `\xHH`.
pub fn rex_pattern(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 2);
    out.push('"');
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // Keep an escape pair together; a lone trailing backslash is made literal.
                match chars.next() {
                    Some('"') => out.push_str("\\x22"),
                    Some('`') => out.push_str("\\x60"),
                    Some(n) if is_control(n) => {
                        out.push_str(&format!("\\x{{{:X}}}", n as u32));
                    }
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => out.push_str("\\\\"),
                }
            }
            '"' => out.push_str("\\x22"),
            '`' => out.push_str("\\x60"),
            c if is_control(c) => out.push_str(&format!("\\x{{{:X}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A name for something the user must create (a lookup, a macro): letters, digits, `_`,
/// `-` and `.`, starting with a letter or `_`.
pub fn object_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// Text inside a ```...``` comment: no backticks (three would end it).
pub fn comment_text(s: &str) -> String {
    s.replace('`', "'")
}

/// A duration as a Splunk relative time (`-1h`, `-90m`, `-14d`), in whole seconds.
pub fn relative_time(seconds: f64) -> Option<String> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds.fract() == 0.0 && seconds < 1e12) {
        return None;
    }
    let s = seconds as u64;
    Some(format!("-{}", unit(s)))
}

/// `3600` -> `1h`: the largest unit that divides the duration.
pub fn unit(s: u64) -> String {
    if s > 0 && s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s > 0 && s % 3_600 == 0 {
        format!("{}h", s / 3_600)
    } else if s > 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A number as SPL writes it.
pub fn number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else if n.is_finite() {
        let text = format!("{n}");
        if text.contains('e') || text.contains('E') {
            format!("{n:.6}")
        } else {
            text
        }
    } else {
        "0".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(eval_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(eval_string("a\nb%+"), r#"urldecode("a%0Ab%25%2B")"#);
        assert_eq!(eval_string("```x"), r#"urldecode("%60%60%60x")"#);
        assert_eq!(search_string("a*b"), None);
        assert_eq!(search_string(""), None);
        assert_eq!(search_string("x y").as_deref(), Some("\"x y\""));
    }

    #[test]
    fn field_names_are_quoted_in_eval() {
        assert_eq!(eval_field("count_"), "count_");
        assert_eq!(eval_field("properties.ipAddress"), "'properties.ipAddress'");
        assert_eq!(eval_field("in"), "'in'");
        assert_eq!(column_name("Account Name"), "Account_Name");
        assert_eq!(column_name("1x"), "_1x");
        assert_eq!(mapped_name("a.b/c"), None);
    }

    #[test]
    fn regexes_are_escaped() {
        assert_eq!(regex_escape("a.b*c(d)"), r"a\.b\*c\(d\)");
        assert_eq!(regex_escape("\n"), r"\x0A");
        assert_eq!(rex_pattern(r#"a"b\d"#), r#""a\x22b\d""#);
        assert_eq!(rex_pattern("x\\"), r#""x\\""#);
    }

    #[test]
    fn durations() {
        assert_eq!(relative_time(3600.0).as_deref(), Some("-1h"));
        assert_eq!(relative_time(5400.0).as_deref(), Some("-90m"));
        assert_eq!(relative_time(0.5), None);
        assert!(caseless("0-50074"));
        assert!(!caseless("Sync"));
    }
}
