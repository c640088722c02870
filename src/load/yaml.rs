//! Sentinel analytics rules (Scheduled, NRT) and hunting queries in YAML.
//!
//! serde_yaml reads the values; it gives no positions, so the query's place in the file
//! is found again here: the top-level `query:` key, then the scalar after it read with
//! the same rules as libyaml (the parser under serde_yaml), recording where each byte of
//! the value comes from. The text rebuilt that way must equal the value serde_yaml
//! returned, or the map falls back to the key's position.

use super::metadata::{Dialect, FieldReport};
use super::node::Node;
use super::position::QueryMapBuilder;
use super::{
    LoadError, LoadErrorKind, Loaded, Metadata, QueryMap, Rule, RuleFormat, RuleKind, SourceFile,
};

/// Deepest flow-bracket nesting accepted before the YAML parser runs. serde_yaml refuses
/// more than 128 levels itself, without overflowing the stack, but only after libyaml
/// has scanned them, and libyaml's scan is quadratic in flow depth: 100,000 nested
/// `{a: ` took 24 s to refuse. Real rules nest less than 10 levels.
const MAX_NESTING: usize = 1000;

pub(super) fn load(file: SourceFile) -> Result<Loaded, LoadError> {
    let shared = file.text.clone();
    let text: &str = &shared;
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    if text[bom..].trim().is_empty() {
        return Err(missing(
            "the file is empty: expected a Sentinel rule with a `query` field",
        ));
    }
    check_nesting(text)?;
    // serde_yaml reads a byte-order mark as content (the file then looks like two
    // documents), so it gets the text after it.
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text[bom..]).map_err(|e| yaml_error(text, bom, &e))?;
    let fields = match Node::from_yaml(&value) {
        Node::Map(fields) => fields,
        Node::Null => {
            return Err(missing(
                "the file holds no YAML value (only comments?): expected a Sentinel rule with a `query` field",
            ));
        }
        other => {
            return Err(missing(&format!(
                "expected a mapping of rule fields (id, name, query, ...), found {}",
                other.describe()
            )));
        }
    };
    let query = match fields.iter().find(|(k, _)| k == "query") {
        Some((_, Node::String(query))) => query.clone(),
        Some((_, other)) => {
            return Err(LoadError {
                kind: LoadErrorKind::MissingQuery,
                message: format!("`query` is {}, expected the query text", other.describe()),
                span: first_key(text, "query"),
            });
        }
        None => {
            let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            let found = if names.is_empty() {
                "the mapping is empty".to_string()
            } else {
                format!("found fields: {}", names.join(", "))
            };
            return Err(missing(&format!("no `query` field; {found}")));
        }
    };

    let span_of = |key: &str| first_key(text, key);
    let mut report = FieldReport::new(&span_of, String::new());
    let mut metadata = Metadata::from_fields(&fields, Dialect::Yaml, &mut report);
    if metadata.kind.is_none() {
        // Detections written before `kind` existed are scheduled; a hunting query has
        // neither a kind nor a schedule.
        let scheduled = fields.iter().any(|(k, _)| k == "queryFrequency");
        metadata.kind = Some(if scheduled {
            RuleKind::Scheduled
        } else {
            RuleKind::Hunting
        });
    }
    let query_map = locate_query(text, &query);
    let rule = Rule {
        format: RuleFormat::SentinelYaml,
        metadata,
        query,
        query_map,
        file,
    };
    Ok(Loaded {
        rules: vec![rule],
        errors: report.errors,
    })
}

fn missing(message: &str) -> LoadError {
    LoadError {
        kind: LoadErrorKind::MissingQuery,
        message: message.to_string(),
        span: None,
    }
}

/// A serde_yaml error with its place as a byte span. libyaml's index counts bytes in
/// the text it was given, which starts after the byte-order mark.
fn yaml_error(text: &str, bom: usize, e: &serde_yaml::Error) -> LoadError {
    let span = e.location().map(|location| {
        let mut at = (location.index() + bom).min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
        (at, end)
    });
    LoadError {
        kind: LoadErrorKind::Yaml,
        message: format!("invalid YAML: {e}"),
        span,
    }
}

/// Refuses text whose flow brackets (`[`, `{`) nest deeper than [`MAX_NESTING`], before
/// the parser sees it. Block nesting needs no check: libyaml handles it in linear time
/// and serde_yaml stops it at 128 levels. Counting ignores quoting and comments, so it
/// overestimates: the bound is far above what a rule needs.
fn check_nesting(text: &str) -> Result<(), LoadError> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(LoadError {
                        kind: LoadErrorKind::Yaml,
                        message: format!(
                            "invalid YAML: brackets nest more than {MAX_NESTING} levels deep"
                        ),
                        span: Some((i, i + 1)),
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Where a top-level key `key:` is written (the key's byte range), first occurrence.
fn first_key(text: &str, key: &str) -> Option<(usize, usize)> {
    top_level_keys(text, key).first().map(|k| (k.start, k.end))
}

#[derive(Debug, Clone, Copy)]
struct KeyAt {
    start: usize,
    end: usize,
    /// Just after the `:`.
    value: usize,
}

/// Every line that starts (at column 0) with `key:`, `"key":` or `'key':`.
fn top_level_keys(text: &str, key: &str) -> Vec<KeyAt> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut line_start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    loop {
        if let Some(k) = key_at(text, line_start, key) {
            found.push(k);
        }
        // The next line: after `\n`, or after a `\r` not followed by `\n`.
        let Some(offset) = b[line_start..]
            .iter()
            .position(|&c| c == b'\n' || c == b'\r')
        else {
            break;
        };
        let brk = line_start + offset;
        line_start = brk
            + if b[brk] == b'\r' && at(b, brk + 1) == b'\n' {
                2
            } else {
                1
            };
    }
    found
}

fn key_at(text: &str, start: usize, key: &str) -> Option<KeyAt> {
    let b = text.as_bytes();
    let rest = text.get(start..)?;
    let end = if rest.starts_with(key) {
        start + key.len()
    } else {
        let quote = *rest.as_bytes().first()?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let inner = rest.get(1..)?;
        if !inner.starts_with(key) || at(b, start + 1 + key.len()) != quote {
            return None;
        }
        start + key.len() + 2
    };
    let mut p = end;
    while is_blank(at(b, p)) {
        p += 1;
    }
    if at(b, p) != b':' || !is_blankz(b, p + 1) {
        return None;
    }
    Some(KeyAt {
        start,
        end,
        value: p + 1,
    })
}

/// The exact map for the top-level `query` value, or an approximate one at its key.
fn locate_query(text: &str, query: &str) -> QueryMap {
    let keys = top_level_keys(text, "query");
    for key in &keys {
        if let Some(builder) = read_value(text, key.value) {
            if builder.text() == query {
                return builder.finish();
            }
        }
    }
    QueryMap::approximate(keys.first().map_or(0, |k| k.start))
}

/// Reads the scalar that starts after a top-level key's `:` (on the same line or a
/// later one). None when it is not a scalar kqlc can follow, or is malformed.
fn read_value(text: &str, from: usize) -> Option<QueryMapBuilder> {
    let b = text.as_bytes();
    let mut p = from;
    // Separation: blanks, a comment, line breaks.
    loop {
        while is_blank(at(b, p)) {
            p += 1;
        }
        if at(b, p) == b'#' {
            while !is_breakz(b, p) {
                p += 1;
            }
        }
        match line_break(b, p) {
            Some((len, _)) => p += len,
            None => break,
        }
    }
    match at(b, p) {
        b'|' | b'>' => block_scalar(text, p, 0),
        b'\'' => flow_scalar(text, p, true),
        b'"' => flow_scalar(text, p, false),
        // Anchors, tags, aliases, reserved indicators, flow collections, document end.
        b'&' | b'!' | b'*' | b'%' | b'@' | b'`' | b'[' | b'{' | 0 => None,
        b'-' | b'?' | b':' if is_blankz(b, p + 1) => None,
        _ => plain_scalar(text, p, 1),
    }
}

/// A line break produced by the scalar: where it is in the file and what it reads as.
#[derive(Debug, Clone, Copy)]
struct Break {
    at: usize,
    ch: char,
    /// Bytes in the file (2 for CRLF).
    len: usize,
}

impl Break {
    fn is_newline(self) -> bool {
        self.ch == '\n'
    }
}

/// Reads the line break at `p`, as libyaml does: CRLF, CR, LF and NEL read as `\n`;
/// LS and PS stay themselves.
fn read_break(b: &[u8], p: usize) -> Option<(usize, Break)> {
    line_break(b, p).map(|(len, ch)| (len, Break { at: p, ch, len }))
}

/// A block scalar (`|`, `>`, with chomping and indentation indicators) whose indicator
/// is at `p`; `parent_indent` is the indentation of the mapping holding the key.
fn block_scalar(text: &str, mut p: usize, parent_indent: usize) -> Option<QueryMapBuilder> {
    let b = text.as_bytes();
    let literal = at(b, p) == b'|';
    p += 1;
    let mut chomping = Chomping::Clip;
    let mut increment = 0usize;
    for _ in 0..2 {
        match at(b, p) {
            b'+' | b'-' if chomping == Chomping::Clip => {
                chomping = if at(b, p) == b'+' {
                    Chomping::Keep
                } else {
                    Chomping::Strip
                };
                p += 1;
            }
            b'0' if increment == 0 => return None,
            d @ b'1'..=b'9' if increment == 0 => {
                increment = usize::from(d - b'0');
                p += 1;
            }
            _ => break,
        }
    }
    while is_blank(at(b, p)) {
        p += 1;
    }
    if at(b, p) == b'#' {
        while !is_breakz(b, p) {
            p += 1;
        }
    }
    if !is_breakz(b, p) {
        return None;
    }
    if let Some((len, _)) = line_break(b, p) {
        p += len;
    }
    let mut builder = QueryMapBuilder::new(p);
    let mut indent = if increment > 0 {
        parent_indent + increment
    } else {
        0
    };
    let mut line_start = p;
    let mut leading_break: Option<Break> = None;
    let mut trailing: Vec<Break> = Vec::new();
    let mut leading_blank = false;
    p = block_breaks(
        b,
        p,
        &mut line_start,
        &mut indent,
        &mut trailing,
        parent_indent,
    )?;
    while p - line_start == indent && p < b.len() {
        let trailing_blank = is_blank(at(b, p));
        // Folding: a break between two lines of text that do not start with a blank
        // reads as a space, or as nothing when empty lines follow it.
        let folds = |lb: Break| !literal && lb.is_newline() && !leading_blank && !trailing_blank;
        match leading_break.take() {
            Some(lb) if folds(lb) && trailing.is_empty() => builder.produce(' ', lb.at, lb.len),
            Some(lb) if folds(lb) => {}
            Some(lb) => builder.produce(lb.ch, lb.at, lb.len),
            None => {}
        }
        for t in trailing.drain(..) {
            builder.produce(t.ch, t.at, t.len);
        }
        leading_blank = is_blank(at(b, p));
        let content = p;
        while !is_breakz(b, p) {
            p += 1;
        }
        builder.copy(text, content, p);
        let Some((len, brk)) = read_break(b, p) else {
            break;
        };
        leading_break = Some(brk);
        p += len;
        line_start = p;
        p = block_breaks(
            b,
            p,
            &mut line_start,
            &mut indent,
            &mut trailing,
            parent_indent,
        )?;
    }
    if chomping != Chomping::Strip {
        if let Some(lb) = leading_break {
            builder.produce(lb.ch, lb.at, lb.len);
        }
    }
    if chomping == Chomping::Keep {
        for t in trailing {
            builder.produce(t.ch, t.at, t.len);
        }
    }
    Some(builder)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chomping {
    Strip,
    Clip,
    Keep,
}

/// Skips indentation and empty lines (libyaml's `scan_block_scalar_breaks`), collecting
/// the breaks; sets the indentation from the first text line when it is not yet known.
fn block_breaks(
    b: &[u8],
    mut p: usize,
    line_start: &mut usize,
    indent: &mut usize,
    breaks: &mut Vec<Break>,
    parent_indent: usize,
) -> Option<usize> {
    let mut max_indent = 0;
    loop {
        while (*indent == 0 || p - *line_start < *indent) && at(b, p) == b' ' {
            p += 1;
        }
        max_indent = max_indent.max(p - *line_start);
        if (*indent == 0 || p - *line_start < *indent) && at(b, p) == b'\t' {
            // libyaml: "found a tab character where an indentation space is expected".
            return None;
        }
        let Some((len, brk)) = read_break(b, p) else {
            break;
        };
        breaks.push(brk);
        p += len;
        *line_start = p;
    }
    if *indent == 0 {
        *indent = max_indent.max(parent_indent + 1);
    }
    Some(p)
}

/// A single- or double-quoted scalar whose opening quote is at `p`.
fn flow_scalar(text: &str, mut p: usize, single: bool) -> Option<QueryMapBuilder> {
    let b = text.as_bytes();
    let quote = at(b, p);
    p += 1;
    let mut builder = QueryMapBuilder::new(p);
    let mut line_start = usize::MAX;
    let mut leading_break: Option<Break> = None;
    let mut trailing: Vec<Break> = Vec::new();
    loop {
        if p == line_start && is_document_marker(b, p) {
            return None;
        }
        if p >= b.len() {
            return None;
        }
        let mut leading_blanks = false;
        while !is_blankz(b, p) {
            let c = at(b, p);
            if single && c == b'\'' && at(b, p + 1) == b'\'' {
                builder.produce('\'', p, 2);
                p += 2;
            } else if c == quote {
                break;
            } else if !single && c == b'\\' && line_break(b, p + 1).is_some() {
                // An escaped line break joins the lines without a space.
                let (len, _) = line_break(b, p + 1)?;
                p += 1 + len;
                line_start = p;
                leading_blanks = true;
                break;
            } else if !single && c == b'\\' {
                let (ch, len) = escape(b, p)?;
                builder.produce(ch, p, len);
                p += len;
            } else {
                let start = p;
                while !is_blankz(b, p) && at(b, p) != quote && at(b, p) != b'\\' {
                    p += 1;
                }
                if p == start {
                    // A lone `'` inside a single-quoted scalar never gets here: it is
                    // either `''` or the closing quote.
                    p += 1;
                }
                builder.copy(text, start, p);
            }
        }
        if at(b, p) == quote {
            break;
        }
        let mut whitespace: Option<(usize, usize)> = None;
        while is_blank(at(b, p)) || line_break(b, p).is_some() {
            if is_blank(at(b, p)) {
                if !leading_blanks {
                    let start = whitespace.map_or(p, |(s, _)| s);
                    whitespace = Some((start, p + 1));
                }
                p += 1;
            } else {
                let (len, brk) = read_break(b, p)?;
                if leading_blanks {
                    trailing.push(brk);
                } else {
                    whitespace = None;
                    leading_break = Some(brk);
                    leading_blanks = true;
                }
                p += len;
                line_start = p;
            }
        }
        if leading_blanks {
            join_breaks(&mut builder, &mut leading_break, &mut trailing);
        } else if let Some((start, end)) = whitespace {
            builder.copy(text, start, end);
        }
    }
    Some(builder)
}

/// Line folding in flow and plain scalars: one break reads as a space; a break followed
/// by empty lines reads as those lines' breaks.
fn join_breaks(
    builder: &mut QueryMapBuilder,
    leading_break: &mut Option<Break>,
    trailing: &mut Vec<Break>,
) {
    match leading_break.take() {
        Some(lb) if lb.is_newline() && trailing.is_empty() => builder.produce(' ', lb.at, lb.len),
        Some(lb) if lb.is_newline() => {}
        Some(lb) => builder.produce(lb.ch, lb.at, lb.len),
        None => {}
    }
    for t in trailing.drain(..) {
        builder.produce(t.ch, t.at, t.len);
    }
}

/// A double-quoted scalar's escape at `p` (the backslash): the character and the
/// escape's length. libyaml's set: no `\'`, no surrogate code points.
fn escape(b: &[u8], p: usize) -> Option<(char, usize)> {
    let simple = match at(b, p + 1) {
        b'0' => '\0',
        b'a' => '\x07',
        b'b' => '\x08',
        b't' | b'\t' => '\t',
        b'n' => '\n',
        b'v' => '\x0b',
        b'f' => '\x0c',
        b'r' => '\r',
        b'e' => '\x1b',
        b' ' => ' ',
        b'"' => '"',
        b'/' => '/',
        b'\\' => '\\',
        b'N' => '\u{85}',
        b'_' => '\u{a0}',
        b'L' => '\u{2028}',
        b'P' => '\u{2029}',
        b'x' => return hex_escape(b, p, 2),
        b'u' => return hex_escape(b, p, 4),
        b'U' => return hex_escape(b, p, 8),
        _ => return None,
    };
    Some((simple, 2))
}

fn hex_escape(b: &[u8], p: usize, digits: usize) -> Option<(char, usize)> {
    let hex = b.get(p + 2..p + 2 + digits)?;
    let hex = std::str::from_utf8(hex).ok()?;
    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let value = u32::from_str_radix(hex, 16).ok()?;
    Some((char::from_u32(value)?, 2 + digits))
}

/// A plain (unquoted) scalar starting at `p`; continuation lines must be indented at
/// least `indent` columns.
fn plain_scalar(text: &str, mut p: usize, indent: usize) -> Option<QueryMapBuilder> {
    let b = text.as_bytes();
    let mut builder = QueryMapBuilder::new(p);
    let mut line_start = usize::MAX;
    let mut leading_blanks = false;
    let mut leading_break: Option<Break> = None;
    let mut trailing: Vec<Break> = Vec::new();
    let mut whitespace: Option<(usize, usize)> = None;
    loop {
        if p == line_start && is_document_marker(b, p) {
            break;
        }
        if at(b, p) == b'#' {
            break;
        }
        while !is_blankz(b, p) {
            if at(b, p) == b':' && is_blankz(b, p + 1) {
                break;
            }
            if leading_blanks {
                join_breaks(&mut builder, &mut leading_break, &mut trailing);
                leading_blanks = false;
            } else if let Some((start, end)) = whitespace.take() {
                builder.copy(text, start, end);
            }
            let start = p;
            p += 1;
            while !is_blankz(b, p) && at(b, p) != b':' {
                p += 1;
            }
            builder.copy(text, start, p);
        }
        if !(is_blank(at(b, p)) || line_break(b, p).is_some()) {
            break;
        }
        while is_blank(at(b, p)) || line_break(b, p).is_some() {
            if is_blank(at(b, p)) {
                if leading_blanks && p - line_start < indent && at(b, p) == b'\t' {
                    // libyaml: "found a tab character that violates indentation".
                    return None;
                }
                if !leading_blanks {
                    let start = whitespace.map_or(p, |(s, _)| s);
                    whitespace = Some((start, p + 1));
                }
                p += 1;
            } else {
                let (len, brk) = read_break(b, p)?;
                if leading_blanks {
                    trailing.push(brk);
                } else {
                    whitespace = None;
                    leading_break = Some(brk);
                    leading_blanks = true;
                }
                p += len;
                line_start = p;
            }
        }
        if line_start != usize::MAX && p - line_start < indent {
            break;
        }
    }
    Some(builder)
}

/// The byte at `p`, or 0 past the end (libyaml reads a NUL there).
fn at(b: &[u8], p: usize) -> u8 {
    b.get(p).copied().unwrap_or(0)
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// A line break at `p`: its length and what it reads as.
fn line_break(b: &[u8], p: usize) -> Option<(usize, char)> {
    match (at(b, p), at(b, p + 1), at(b, p + 2)) {
        (b'\r', b'\n', _) => Some((2, '\n')),
        (b'\r' | b'\n', _, _) => Some((1, '\n')),
        (0xC2, 0x85, _) => Some((2, '\n')),
        (0xE2, 0x80, 0xA8) => Some((3, '\u{2028}')),
        (0xE2, 0x80, 0xA9) => Some((3, '\u{2029}')),
        _ => None,
    }
}

/// A line break or the end of the text.
fn is_breakz(b: &[u8], p: usize) -> bool {
    at(b, p) == 0 || line_break(b, p).is_some()
}

/// A blank, a line break or the end of the text.
fn is_blankz(b: &[u8], p: usize) -> bool {
    is_blank(at(b, p)) || is_breakz(b, p)
}

/// `---` or `...` followed by a blank or a break.
fn is_document_marker(b: &[u8], p: usize) -> bool {
    let three = b.get(p..p + 3);
    (three == Some(b"---") || three == Some(b"...")) && is_blankz(b, p + 3)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;

    fn load_text(text: &str) -> Result<Loaded, LoadError> {
        load(SourceFile {
            path: PathBuf::from("rule.yaml"),
            text: Arc::from(text),
        })
    }

    /// Loads `text`, checks the query against serde_yaml's value and that the map is
    /// exact: each query byte maps to the same byte in the file, or to what produced it
    /// (an escape's backslash, a `''`, a line break).
    fn exact(text: &str) -> Rule {
        let loaded = load_text(text).unwrap();
        let rule = loaded.rules.into_iter().next().unwrap();
        let body = text.strip_prefix('\u{feff}').unwrap_or(text);
        let value: serde_yaml::Value = serde_yaml::from_str(body).unwrap();
        assert_eq!(Some(rule.query.as_str()), value["query"].as_str());
        assert!(
            !rule.query_map.is_approximate(),
            "approximate map for {text:?}"
        );
        let file = text.as_bytes();
        for (o, &q) in rule.query.as_bytes().iter().enumerate() {
            let f = rule.query_map.to_file(o);
            assert!(
                file[f] == q || matches!(file[f], b'\\' | b'\'' | b'\r' | b'\n' | 0xC2 | 0xE2),
                "query byte {o} ({:?}) maps to file byte {f} ({:?}) in {text:?}",
                q as char,
                file[f] as char
            );
        }
        rule
    }

    fn offsets(rule: &Rule) -> Vec<usize> {
        (0..rule.query.len())
            .map(|o| rule.query_map.to_file(o))
            .collect()
    }

    #[test]
    fn literal_block() {
        let text = "name: x\nquery: |\n  A\n  | where B\n\n  | take 1\nseverity: Low\n";
        let rule = exact(text);
        assert_eq!(rule.query, "A\n| where B\n\n| take 1\n");
        assert_eq!(rule.query_map.to_file(2), text.find("| where").unwrap());
        assert_eq!(rule.query_map.to_file(12), text.find("\n\n").unwrap() + 1);
        assert_eq!(rule.query_map.to_file(13), text.find("| take").unwrap());
    }

    #[test]
    fn literal_block_chomping_and_indentation_indicator() {
        exact("query: |-\n  A\n  B\n\n\nid: x\n");
        let keep = exact("query: |+\n  A\n\n\nid: x\n");
        assert_eq!(keep.query, "A\n\n\n");
        let rule = exact("query: |2\n    indented\n  A\n");
        assert_eq!(rule.query, "  indented\nA\n");
        exact("query: |-2 # comment\n   x\n  y\nid: 1\n");
        exact("query: |\n\n\n  A\n   B\n  \tC\n");
        exact("query: |\n  A\n    \n  B\n");
    }

    #[test]
    fn folded_block() {
        let text = "query: >\n  SigninLogs\n  | where A\n\n  | take 1\n    more\n  end\n";
        let rule = exact(text);
        assert_eq!(rule.query, "SigninLogs | where A\n| take 1\n  more\nend\n");
        // The folded space maps to the line break it replaced.
        assert_eq!(
            rule.query_map.to_file(10),
            text.find("\n  | where").unwrap()
        );
        exact("query: >-\n  a\n  b\n\n\n");
        exact("query: >+\n  a\n  b\n\n\n");
    }

    #[test]
    fn single_quoted() {
        let text = "query: 'SigninLogs\n  | where A == ''x''\n\n  | take 1  '\nid: 1\n";
        let rule = exact(text);
        assert_eq!(rule.query, "SigninLogs | where A == 'x'\n| take 1  ");
        let quote = rule.query.find('\'').unwrap();
        assert_eq!(rule.query_map.to_file(quote), text.find("''x").unwrap());
        assert_eq!(rule.query_map.to_file(quote + 1), text.find("x''").unwrap());
        exact("query: ''\n");
        exact("query:\n  'on the next line'\n");
    }

    #[test]
    fn double_quoted() {
        let text = "query: \"A | where B == \\\"x\\\"\\n| take \\\n    1 \\u00e9\\t\\U0001F600\n\n  end\"\n";
        let rule = exact(text);
        assert_eq!(rule.query, "A | where B == \"x\"\n| take 1 é\t😀\nend");
        let escaped_quote = rule.query.find('"').unwrap();
        assert_eq!(
            rule.query_map.to_file(escaped_quote),
            text.find("\\\"x").unwrap()
        );
        let e_acute = rule.query.find('é').unwrap();
        assert_eq!(
            rule.query_map.to_file(e_acute),
            text.find("\\u00e9").unwrap()
        );
        assert_eq!(
            rule.query_map.to_file(e_acute + 1),
            text.find("\\u00e9").unwrap()
        );
        exact("query: \"a\\x41\\/\\\\\\ \\N\\_\\L\\P\"\n");
    }

    #[test]
    fn plain_multi_line() {
        let text = "query: SigninLogs\n  | where A == 1\n\n  | take 1 # comment\nid: x\n";
        let rule = exact(text);
        assert_eq!(rule.query, "SigninLogs | where A == 1\n| take 1");
        exact("query:   a b:c d   \n   e\nid: 1\n");
    }

    #[test]
    fn crlf_and_bom() {
        let text = "\u{feff}id: 1\r\nquery: |\r\n  A\r\n  | take 1\r\n\r\nname: n\r\n";
        let rule = exact(text);
        assert_eq!(rule.query, "A\n| take 1\n");
        let offsets = offsets(&rule);
        // `\n` maps to the `\r` of each CRLF.
        assert_eq!(text.as_bytes()[offsets[1]], b'\r');
        assert_eq!(offsets[2], text.find("| take").unwrap());
        exact("query: 'a\r\n  b\r\n\r\n  c'\r\n");
        exact("query: >\r\n  a\r\n  b\r\n");
    }

    #[test]
    fn quoted_key_and_space_before_colon() {
        exact("\"query\": |\n  A\n");
        exact("'query' : |\n  A\n");
    }

    #[test]
    fn a_query_key_inside_another_value_is_skipped() {
        let text = "description: |\n  text\nquery: |\n  A\nnotes: 'x\nquery: y'\n";
        let rule = exact(text);
        assert_eq!(rule.query_map.to_file(0), text.find("  A").unwrap() + 2);
    }

    #[test]
    fn unusual_layout_falls_back_to_the_key() {
        // An anchor before the value: not followed, so the map is approximate.
        let text = "id: 1\nquery: &q |\n  A\n";
        let loaded = load_text(text).unwrap();
        let rule = &loaded.rules[0];
        assert_eq!(rule.query, "A\n");
        assert!(rule.query_map.is_approximate());
        assert_eq!(rule.query_map.to_file(1), text.find("query").unwrap());
    }

    #[test]
    fn kinds() {
        let rule = |t: &str| load_text(t).unwrap().rules.remove(0);
        assert_eq!(rule("query: A\n").metadata.kind, Some(RuleKind::Hunting));
        assert_eq!(
            rule("query: A\nqueryFrequency: 1h\n").metadata.kind,
            Some(RuleKind::Scheduled)
        );
        assert_eq!(
            rule("query: A\nkind: NRT\n").metadata.kind,
            Some(RuleKind::Nrt)
        );
    }

    #[test]
    fn missing_query_says_what_was_found() {
        let err = load_text("id: 1\nname: x\n").unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::MissingQuery);
        assert_eq!(err.message, "no `query` field; found fields: id, name");
        let err = load_text("query: [a, b]\n").unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::MissingQuery);
        assert!(err.message.contains("a list"), "{}", err.message);
        assert_eq!(err.span, Some((0, 5)));
        let err = load_text("- a\n- b\n").unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::MissingQuery);
        let err = load_text("# only a comment\n").unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::MissingQuery);
        let err = load_text(" \n\n").unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::MissingQuery);
    }

    #[test]
    fn yaml_error_has_a_span() {
        let text = "id: 1\nquery: |\n  A\nname: 'unterminated\n";
        let err = load_text(text).unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::Yaml);
        let (start, _) = err.span.unwrap();
        assert!(start >= text.find("name").unwrap(), "{err:?}");
        // The same error after a byte-order mark is 3 bytes further.
        let with_bom = format!("\u{feff}{text}");
        let err_bom = load_text(&with_bom).unwrap_err();
        assert_eq!(err_bom.span.map(|(s, _)| s), Some(start + 3));
    }

    #[test]
    fn nesting_bound() {
        let ok = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert!(check_nesting(&ok).is_ok());
        let deep = "{a: ".repeat(MAX_NESTING + 1);
        let err = check_nesting(&deep).unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::Yaml);
        assert_eq!(err.span, Some((4 * MAX_NESTING, 4 * MAX_NESTING + 1)));
        // Below the bound, serde_yaml's own limit answers.
        let err = load_text(&ok).unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::Yaml);
        assert!(err.message.contains("recursion limit"), "{}", err.message);
    }

    #[test]
    fn invalid_fields_point_at_their_key() {
        let text = "query: A\nseverity: Extreme\n";
        let loaded = load_text(text).unwrap();
        assert_eq!(loaded.errors.len(), 1);
        assert_eq!(loaded.errors[0].span, Some((9, 17)));
        assert_eq!(loaded.rules[0].metadata.severity, None);
    }
}
