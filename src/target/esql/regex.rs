//! KQL `matches regex` (RE2 syntax, unanchored search) as an ES|QL `RLIKE` pattern
//! (Lucene syntax, matched against the whole value).
//!
//! What maps exactly is translated: literals, `.`, classes (`[...]`, `\d`, `\w`, `\s` and
//! their negations, expanded to explicit ranges), groups, alternation, the quantifiers
//! `* + ? {n} {n,} {n,m}` (lazy forms match the same strings), `^`/`$`/`\A`/`\z` at the
//! edges of a top-level alternative, and the flags `(?i)` (the value is lower-cased and
//! so is the pattern) and `(?s)` at the start. The search becomes a full match by
//! wrapping each unanchored side with `.*`. RE2's `.` does not match a line break unless
//! `(?s)` is given, while Lucene's `.` matches any character, so `.` becomes a class that
//! excludes `\n`. Anything else (word boundaries, mid-pattern anchors, Unicode classes,
//! other flags) is refused with the reason, and the caller says so.

use super::lit;

/// A pattern ready for `RLIKE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lucene {
    pub pattern: String,
    /// The pattern is lower-cased: compare it with `TO_LOWER(value)`.
    pub lowercase: bool,
}

pub fn translate(re2: &str) -> Result<Lucene, String> {
    let chars: Vec<char> = re2.chars().collect();
    let mut pos = 0;
    let mut flags = Flags::default();
    // Leading flag groups: `(?i)`, `(?s)`, `(?is)`.
    while chars[pos..].starts_with(&['(', '?']) {
        let Some(close) = chars[pos..].iter().position(|&c| c == ')') else {
            break;
        };
        let body: String = chars[pos + 2..pos + close].iter().collect();
        if body.is_empty() || !body.chars().all(|c| c.is_ascii_alphabetic()) {
            break;
        }
        for f in body.chars() {
            match f {
                'i' => flags.case_insensitive = true,
                's' => flags.dot_all = true,
                // `(?m)` only changes `^`/`$`, which are refused inside the pattern anyway;
                // at the edges it would make them match at line breaks.
                'm' => flags.multi_line = true,
                'U' => {} // swaps greedy and lazy: the same strings match
                other => return Err(format!("the regex flag `{other}` has no Lucene equivalent")),
            }
        }
        pos += close + 1;
    }
    let mut parser = Parser {
        chars: &chars,
        pos,
        flags,
        depth: 0,
    };
    let alternatives = parser.top_level()?;
    let wrapped: Vec<String> = alternatives
        .into_iter()
        .map(|alt| {
            let mut s = String::new();
            if !alt.anchored_start {
                s.push_str(".*");
            }
            s.push_str(&alt.body);
            // `.*.*` (an empty search) is `.*`.
            let empty_search = s == ".*" && alt.body.is_empty();
            if !alt.anchored_end && !empty_search {
                s.push_str(".*");
            }
            if s.is_empty() {
                s.push_str("()");
            }
            s
        })
        .collect();
    let pattern = if wrapped.len() == 1 {
        wrapped.into_iter().next().unwrap_or_default()
    } else {
        wrapped
            .iter()
            .map(|w| format!("({w})"))
            .collect::<Vec<_>>()
            .join("|")
    };
    Ok(Lucene {
        pattern,
        lowercase: flags.case_insensitive,
    })
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    case_insensitive: bool,
    dot_all: bool,
    multi_line: bool,
}

struct Alternative {
    body: String,
    anchored_start: bool,
    anchored_end: bool,
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    flags: Flags,
    depth: usize,
}

/// Deeper nesting than this is refused (the parser recurses per group).
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn top_level(&mut self) -> Result<Vec<Alternative>, String> {
        let mut out = vec![];
        loop {
            let mut alt = Alternative {
                body: String::new(),
                anchored_start: false,
                anchored_end: false,
            };
            if self.eat_start_anchor() {
                if self.flags.multi_line {
                    return Err(
                        "`^` with the multi-line flag `(?m)` has no Lucene equivalent".into(),
                    );
                }
                alt.anchored_start = true;
            }
            let (body, end) = self.sequence(true)?;
            alt.body = body;
            if end {
                if self.flags.multi_line {
                    return Err(
                        "`$` with the multi-line flag `(?m)` has no Lucene equivalent".into(),
                    );
                }
                alt.anchored_end = true;
            }
            out.push(alt);
            match self.peek() {
                Some('|') => self.pos += 1,
                None => return Ok(out),
                Some(c) => return Err(format!("unexpected `{c}` in the regex")),
            }
        }
    }

    fn eat_start_anchor(&mut self) -> bool {
        if self.peek() == Some('^') {
            self.pos += 1;
            return true;
        }
        if self.chars[self.pos..].starts_with(&['\\', 'A']) {
            self.pos += 2;
            return true;
        }
        false
    }

    /// A sequence up to `|`, `)` or the end. At the top level, a final `$`/`\z` is
    /// reported as an end anchor.
    fn sequence(&mut self, top: bool) -> Result<(String, bool), String> {
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Ok((out, false));
            };
            match c {
                '|' | ')' => return Ok((out, false)),
                '$' => {
                    self.pos += 1;
                    if top && matches!(self.peek(), None | Some('|')) {
                        return Ok((out, true));
                    }
                    return Err("`$` inside the regex has no Lucene equivalent".into());
                }
                '^' => return Err("`^` inside the regex has no Lucene equivalent".into()),
                '*' | '+' | '?' => return Err(format!("`{c}` has nothing to repeat")),
                _ => {}
            }
            if self.chars[self.pos..].starts_with(&['\\', 'z']) {
                self.pos += 2;
                if top && matches!(self.peek(), None | Some('|')) {
                    return Ok((out, true));
                }
                return Err("`\\z` inside the regex has no Lucene equivalent".into());
            }
            let atom = self.atom()?;
            out.push_str(&atom);
            self.quantifier(&mut out)?;
        }
    }

    /// A quantifier after an atom, if any (a lazy `?` after it is dropped: it changes
    /// which match is found, not whether one is).
    fn quantifier(&mut self, out: &mut String) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(q @ ('*' | '+' | '?')) => {
                    self.pos += 1;
                    out.push(q);
                }
                Some('{') => {
                    let Some((text, len)) = self.repetition() else {
                        return Ok(()); // a literal `{`, read as an atom next
                    };
                    self.pos += len;
                    out.push_str(&text);
                }
                _ => return Ok(()),
            }
            if self.peek() == Some('?') {
                self.pos += 1;
            }
            if matches!(self.peek(), Some('*' | '+')) {
                return Err("a repeated quantifier (`**`, `+*`) is not valid RE2".into());
            }
        }
    }

    /// `{n}`, `{n,}`, `{n,m}` starting at the current `{`: its Lucene text and length.
    fn repetition(&self) -> Option<(String, usize)> {
        let rest = &self.chars[self.pos..];
        let close = rest.iter().position(|&c| c == '}')?;
        let inner: String = rest[1..close].iter().collect();
        let (low, high) = match inner.split_once(',') {
            Some((l, h)) => (l, Some(h)),
            None => (inner.as_str(), None),
        };
        let number =
            |s: &str| !s.is_empty() && s.len() <= 4 && s.chars().all(|c| c.is_ascii_digit());
        if !number(low) || high.is_some_and(|h| !h.is_empty() && !number(h)) {
            return None;
        }
        Some((format!("{{{inner}}}"), close + 1))
    }

    fn atom(&mut self) -> Result<String, String> {
        let c = self.chars[self.pos];
        self.pos += 1;
        match c {
            '.' => Ok(if self.flags.dot_all {
                ".".into()
            } else {
                "[^\n]".into()
            }),
            '(' => self.group(),
            '[' => self.class(),
            '\\' => self.escape(),
            '{' | '}' | ']' => Ok(self.literal(c)),
            c => Ok(self.literal(c)),
        }
    }

    fn literal(&self, c: char) -> String {
        let mut out = String::new();
        if self.flags.case_insensitive {
            let lower: Vec<char> = c.to_lowercase().collect();
            if lower.len() > 1 {
                out.push('(');
                lower.iter().for_each(|&l| lit::regex_char(l, &mut out));
                out.push(')');
                return out;
            }
            lit::regex_char(lower[0], &mut out);
        } else {
            lit::regex_char(c, &mut out);
        }
        out
    }

    fn group(&mut self) -> Result<String, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("the regex nests too deeply".into());
        }
        if self.peek() == Some('?') {
            self.pos += 1;
            match self.peek() {
                Some(':') => self.pos += 1,
                Some('P') if self.chars.get(self.pos + 1) == Some(&'<') => self.skip_name()?,
                Some('<') => self.skip_name()?,
                _ => return Err("inline flags inside the regex have no Lucene equivalent".into()),
            }
        }
        let mut alternatives = vec![];
        loop {
            let (body, _) = self.sequence(false)?;
            alternatives.push(if body.is_empty() { "()".into() } else { body });
            match self.peek() {
                Some('|') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err("an unclosed `(` in the regex".into()),
            }
        }
        self.depth -= 1;
        Ok(format!("({})", alternatives.join("|")))
    }

    /// Skips a group name `P<name>` or `<name>` (names do not matter for matching).
    fn skip_name(&mut self) -> Result<(), String> {
        let close = self.chars[self.pos..]
            .iter()
            .position(|&c| c == '>')
            .ok_or("an unclosed group name in the regex")?;
        self.pos += close + 1;
        Ok(())
    }

    fn escape(&mut self) -> Result<String, String> {
        let Some(c) = self.peek() else {
            return Err("a trailing `\\` in the regex".into());
        };
        self.pos += 1;
        if let Some(class) = class_escape(c) {
            return Ok(format!("[{}]", self.class_items_text(class)));
        }
        match c {
            'D' | 'W' | 'S' => {
                let class = class_escape(c.to_ascii_lowercase()).unwrap_or_default();
                Ok(format!("[^{}]", self.class_items_text(class)))
            }
            'Q' => {
                let mut out = String::new();
                while self.pos < self.chars.len() {
                    if self.chars[self.pos..].starts_with(&['\\', 'E']) {
                        self.pos += 2;
                        break;
                    }
                    let ch = self.chars[self.pos];
                    self.pos += 1;
                    out.push_str(&self.literal(ch));
                }
                Ok(format!("({out})"))
            }
            _ => {
                let ch = self.escaped_char(c)?;
                Ok(self.literal(ch))
            }
        }
    }

    /// The character an escape other than a class stands for.
    fn escaped_char(&mut self, c: char) -> Result<char, String> {
        match c {
            'n' => Ok('\n'),
            't' => Ok('\t'),
            'r' => Ok('\r'),
            'f' => Ok('\u{c}'),
            'v' => Ok('\u{b}'),
            'a' => Ok('\u{7}'),
            'x' => self.hex_escape(),
            c if c.is_ascii_punctuation() => Ok(c),
            'b' | 'B' => Err("word boundaries (`\\b`, `\\B`) have no Lucene equivalent".into()),
            'p' | 'P' => Err("Unicode classes (`\\p{..}`) have no Lucene equivalent".into()),
            c => Err(format!("the regex escape `\\{c}` has no Lucene equivalent")),
        }
    }

    fn hex_escape(&mut self) -> Result<char, String> {
        let digits: String = if self.peek() == Some('{') {
            let close = self.chars[self.pos..]
                .iter()
                .position(|&c| c == '}')
                .ok_or("an unclosed `\\x{` in the regex")?;
            let d = self.chars[self.pos + 1..self.pos + close].iter().collect();
            self.pos += close + 1;
            d
        } else {
            let d: String = self.chars[self.pos..].iter().take(2).collect();
            self.pos += d.chars().count();
            d
        };
        u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("the regex escape `\\x{digits}` is not a character"))
    }

    /// A bracketed class, after its `[`.
    fn class(&mut self) -> Result<String, String> {
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.pos += 1;
        }
        let mut items: Vec<(char, char)> = vec![];
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err("an unclosed `[` in the regex".into());
            };
            if c == ']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            if self.chars[self.pos..].starts_with(&['[', ':']) {
                return Err("POSIX classes (`[:alpha:]`) have no Lucene equivalent here".into());
            }
            self.pos += 1;
            let low = if c == '\\' {
                let Some(e) = self.peek() else {
                    return Err("a trailing `\\` in the regex".into());
                };
                self.pos += 1;
                if let Some(class) = class_escape(e) {
                    items.extend_from_slice(class);
                    continue;
                }
                if matches!(e, 'D' | 'W' | 'S') {
                    return Err("a negated class escape inside `[...]` is not translated".into());
                }
                self.escaped_char(e)?
            } else {
                c
            };
            // A range `a-z` (a `-` before `]` is literal).
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                self.pos += 1;
                let hc = self.chars[self.pos];
                self.pos += 1;
                let high = if hc == '\\' {
                    let e = self.peek().ok_or("a trailing `\\` in the regex")?;
                    self.pos += 1;
                    self.escaped_char(e)?
                } else {
                    hc
                };
                if high < low {
                    return Err(format!("the class range `{low}-{high}` is out of order"));
                }
                items.push((low, high));
            } else {
                items.push((low, low));
            }
        }
        let text = self.class_items_text(&items);
        Ok(if negated {
            format!("[^{text}]")
        } else {
            format!("[{text}]")
        })
    }

    /// Class members as Lucene text; with `(?i)` every letter range also gets its
    /// lower-case range (the value is lower-cased, so upper-case never meets the class).
    fn class_items_text(&self, items: &[(char, char)]) -> String {
        let mut all: Vec<(char, char)> = items.to_vec();
        if self.flags.case_insensitive {
            for &(low, high) in items {
                let (l, h) = (low.max('A'), high.min('Z'));
                if l <= h {
                    all.push((l.to_ascii_lowercase(), h.to_ascii_lowercase()));
                }
                if low == high && !low.is_ascii() {
                    all.extend(low.to_lowercase().map(|c| (c, c)));
                }
            }
        }
        let mut out = String::new();
        for (low, high) in all {
            lit::regex_char(low, &mut out);
            if high != low {
                out.push('-');
                lit::regex_char(high, &mut out);
            }
        }
        out
    }
}

/// RE2's Perl classes as ranges.
fn class_escape(c: char) -> Option<&'static [(char, char)]> {
    match c {
        'd' => Some(&[('0', '9')]),
        'w' => Some(&[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')]),
        's' => Some(&[
            ('\t', '\t'),
            ('\n', '\n'),
            ('\u{c}', '\u{c}'),
            ('\r', '\r'),
            (' ', ' '),
        ]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lucene(re: &str) -> String {
        translate(re).unwrap().pattern
    }

    #[test]
    fn searches_become_full_matches() {
        assert_eq!(lucene("abc"), ".*abc.*");
        assert_eq!(lucene("^abc$"), "abc");
        assert_eq!(lucene("^a|b$"), "(a.*)|(.*b)");
        assert_eq!(lucene(""), ".*");
    }

    #[test]
    fn classes_and_escapes_are_spelled_out() {
        assert_eq!(lucene(r"^\d{3}\.x$"), r"[0-9]{3}\.x");
        assert_eq!(lucene(r"^a.b$"), "a[^\n]b");
        assert_eq!(lucene(r"(?s)^a.b$"), "a.b");
        assert_eq!(
            lucene(r"^[a-f\d_]+$"),
            r"[a\-f0\-9\_]+"
                .replace(r"a\-f", "a-f")
                .replace(r"0\-9", "0-9")
        );
        assert_eq!(lucene(r"^(?:ab|cd)*?$"), "(ab|cd)*");
        assert_eq!(lucene(r"^@$"), r"\@");
    }

    #[test]
    fn case_insensitive_patterns_are_lowercased() {
        let l = translate(r"(?i)^Ab[C-E]$").unwrap();
        assert!(l.lowercase);
        assert_eq!(l.pattern, "ab[C-Ec-e]");
    }

    #[test]
    fn what_lucene_lacks_is_refused() {
        assert!(translate(r"\bword\b").is_err());
        assert!(translate(r"a^b").is_err());
        assert!(translate(r"\p{L}").is_err());
        assert!(translate(r"(?i:x)").is_err());
        assert!(translate("(unclosed").is_err());
    }
}
