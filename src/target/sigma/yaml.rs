//! YAML text for Sigma documents, written by hand so that every value read from a rule is
//! quoted for the readers that load Sigma: pySigma reads YAML 1.1 (PyYAML), where `yes`,
//! `off` or `y` are booleans, `0x1F` or `1_000` are numbers and `2024-01-01` is a date,
//! and PyYAML refuses some characters anywhere in a document, comments included.

use std::fmt::Write;

/// A string as a YAML scalar: plain when that is unambiguous in YAML 1.1, otherwise
/// single-quoted, or double-quoted with escapes when it holds characters single quotes
/// cannot carry (line breaks, control and non-printable characters).
pub fn string(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else if s.chars().all(single_quotable) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        double_quoted(s)
    }
}

/// A mapping key: like [`string`], but `|` may appear inside (Sigma's `Field|modifier`).
pub fn key(s: &str) -> String {
    let unpiped = s.replace('|', "_");
    if !s.starts_with('|') && !s.ends_with('|') && is_plain_safe(&unpiped) {
        s.to_string()
    } else {
        string(s)
    }
}

/// A number YAML 1.1 reads back as the same float (it needs a `.`: `1e5` is a string).
pub fn float(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let text = format!("{f}");
    Some(if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    })
}

/// Text made safe for a `#` comment: on one line, with the characters YAML readers refuse
/// written as `\u{..}`.
pub fn comment_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\t' || (c != '\n' && c != '\r' && printable(c) && !is_break(c)) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    out
}

/// Text on several lines as a literal block (`|-`), when every character can stand in
/// one and the text does not start with a space (the block's indentation would change).
pub fn literal_block(text: &str) -> Option<String> {
    let fits = text.contains('\n')
        && !text.starts_with(' ')
        && text
            .chars()
            .all(|c| c == '\n' || c == '\t' || (printable(c) && !is_break(c) && c != '\u{feff}'));
    if !fits {
        return None;
    }
    let mut out = String::from("|-");
    for line in text.lines() {
        out.push('\n');
        if !line.is_empty() {
            out.push_str("  ");
            out.push_str(line);
        }
    }
    Some(out)
}

/// Words that YAML 1.1 (or 1.2) reads as something other than a string.
fn is_keyword(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
    )
}

/// Plain scalars are allowed only for text that cannot be read as anything but this
/// string: it starts with a letter (so no number, date, indicator or `.inf`), holds only
/// letters, digits and a few punctuation marks that mean nothing to YAML in block context,
/// and is not a YAML keyword.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && !s.ends_with(' ')
        && !s.contains("  ")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _-./@()+,".contains(c))
        && !is_keyword(s)
}

/// Characters PyYAML accepts in a document (its reader refuses the others anywhere).
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

/// Characters YAML folds or treats as line breaks.
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn single_quotable(c: char) -> bool {
    c != '\t' && c != '\u{feff}' && printable(c) && !is_break(c)
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if !single_quotable(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_11_keywords_and_numbers_are_quoted() {
        for s in [
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "true",
            "null",
            "~",
            "0",
            "50126",
            "1e5",
            "0x1F",
            "1_000",
            "12:30",
            ".inf",
            "2024-01-01",
            "",
            " a",
            "a ",
            "-a",
            "*a",
            "%x%",
            "a: b",
            "a #b",
            "!tag",
            "&x",
            "'q'",
        ] {
            assert_ne!(string(s), s, "{s:?} must be quoted");
        }
        for s in ["Browser", "Sync_", "Azure CLI", "a.b-c/d@e", "high"] {
            assert_eq!(string(s), s);
        }
    }

    #[test]
    fn quoting_escapes_what_it_must() {
        assert_eq!(string("it's"), "'it''s'");
        assert_eq!(string("C:\\Windows"), "'C:\\Windows'");
        assert_eq!(string("a\nb"), "\"a\\nb\"");
        assert_eq!(string("a\u{7f}b\u{2028}"), "\"a\\x7fb\\u2028\"");
        assert_eq!(string("tab\there"), "\"tab\\there\"");
        assert_eq!(
            key("UserPrincipalName|startswith"),
            "UserPrincipalName|startswith"
        );
        assert_eq!(key("Field Name|re"), "Field Name|re");
        assert_eq!(key("on|re"), "on|re");
        assert_eq!(key("a:b|re"), "'a:b|re'");
    }

    #[test]
    fn floats_read_back_as_floats() {
        assert_eq!(float(1.5).unwrap(), "1.5");
        assert_eq!(float(1e20).unwrap(), "100000000000000000000.0");
        assert_eq!(float(f64::NAN), None);
    }

    #[test]
    fn comments_hold_no_refused_characters() {
        assert_eq!(comment_text("a\u{7f}b\nc"), "a\\u{7f}b\\u{a}c");
    }
}
