//! ES|QL lexical forms: string literals, identifiers, index names, and the pattern
//! languages of `LIKE` (wildcards) and `RLIKE` (Lucene regular expressions). Every value
//! from a rule goes through one of these, so no value can break out of its literal.

/// A string literal holding exactly `s`.
///
/// Inside `"..."` only `\\`, `\"`, `\n`, `\r` and `\t` are escapes (anything else after a
/// backslash is a syntax error). A value with backslashes and no quote or line break is
/// written as a triple-quoted string, which takes backslashes literally (the form the
/// ES|QL documentation recommends for patterns); triple-quoted strings cannot hold a line
/// break, and a quote next to the closing `"""` would be ambiguous, so those use `"..."`.
pub fn string(s: &str) -> String {
    if s.contains('\\') && !s.contains(['"', '\n', '\r']) {
        return format!("\"\"\"{s}\"\"\"");
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Words the ES|QL expression grammar reserves: a column with such a name must be quoted.
const RESERVED: &[&str] = &[
    "and", "as", "asc", "by", "desc", "false", "first", "in", "is", "last", "like", "not", "null",
    "nulls", "on", "or", "rlike", "true", "where", "with",
];

/// A column name as ES|QL reads it: dotted names of plain parts unquoted
/// (`azure.signinlogs.category`, `@timestamp`), anything else in backquotes with
/// backquotes doubled.
pub fn ident(name: &str) -> String {
    let plain_part = |part: &str| {
        let mut chars = part.chars();
        let body_ok = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let ok = match chars.next() {
            Some(c) if c.is_ascii_alphabetic() => chars.all(body_ok),
            // `_` and `@` may only start a name that has more after them.
            Some('_' | '@') => {
                let rest: Vec<char> = chars.collect();
                !rest.is_empty() && rest.into_iter().all(body_ok)
            }
            _ => false,
        };
        ok && !RESERVED.contains(&part.to_ascii_lowercase().as_str())
    };
    if name.is_empty() {
        // Never an empty quoted name (a syntax error).
        "`_`".to_string()
    } else if name.split('.').all(plain_part) {
        name.to_string()
    } else {
        format!("`{}`", name.replace('`', "``"))
    }
}

/// An index pattern for `FROM` or `LOOKUP JOIN`: unquoted when made of the characters
/// index names use, otherwise quoted.
pub fn index(pattern: &str) -> String {
    let plain = !pattern.is_empty()
        && pattern
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*+:".contains(c))
        && !pattern.starts_with(['-', '+', '_']);
    if plain {
        pattern.to_string()
    } else {
        string(pattern)
    }
}

/// The `LIKE` pattern text matching `s` literally: `*` and `?` are wildcards and `\` is
/// the escape character (which must be followed by `*`, `?` or `\`).
pub fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Lucene regular-expression text matching `s` literally. Lucene reserves
/// `. ? + * | { } [ ] ( ) " \` and, with the optional operators ES|QL enables, also
/// `# @ & < > ~`; a backslash before any other punctuation still means that character,
/// so every ASCII punctuation character is escaped. Letters and digits never are
/// (`\d`, `\w`, `\s` are classes in Lucene).
pub fn regex_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        regex_char(c, &mut out);
    }
    out
}

/// One literal character in a Lucene regular expression (also inside a class).
pub fn regex_char(c: char, out: &mut String) {
    if c.is_ascii_punctuation() {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_every_special_character() {
        assert_eq!(string("a\"b"), r#""a\"b""#);
        assert_eq!(string("C:\\Windows"), r#""""C:\Windows""""#);
        assert_eq!(string("a\\\"b"), r#""a\\\"b""#);
        assert_eq!(string("line\nbreak\\"), r#""line\nbreak\\""#);
        assert_eq!(string("tab\there"), r#""tab\there""#);
    }

    #[test]
    fn identifiers_are_quoted_when_needed() {
        assert_eq!(
            ident("azure.signinlogs.category"),
            "azure.signinlogs.category"
        );
        assert_eq!(ident("@timestamp"), "@timestamp");
        assert_eq!(ident("count_"), "count_");
        assert_eq!(ident("target_resources.0.id"), "`target_resources.0.id`");
        assert_eq!(ident("a b"), "`a b`");
        assert_eq!(ident("by"), "`by`");
        assert_eq!(ident("x`y"), "`x``y`");
        assert_eq!(ident("_"), "`_`");
    }

    #[test]
    fn patterns_escape_their_metacharacters() {
        assert_eq!(like_literal("a*b?c\\d"), "a\\*b\\?c\\\\d");
        assert_eq!(regex_literal("a.b@c"), "a\\.b\\@c");
        assert_eq!(regex_literal("On-Prem"), "On\\-Prem");
    }
}
