//! The Splunk target: snapshots of the seed rules (search and savedsearches.conf), the
//! SPL checker over every output for the seeds and the corpus, how much of the corpus
//! converts without an "unsupported" diagnostic, and escaping of any literal.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use kqlc::diag::{Code, Severity};
use kqlc::load::Rule;
use kqlc::mapping::Mappings;
use kqlc::normalize::Functions;
use kqlc::target::{Context, Fidelity, Format, Target, Translation, translate};

fn convert(rule: &Rule, format: Format) -> Option<Translation> {
    let (detection, notes) = kqlc::normalize_rule(rule, &Functions::none()).ok()?;
    let cx = Context {
        rule,
        detection: &detection,
        notes: &notes,
        mappings: Mappings::embedded(),
        format,
    };
    Some(translate(Target::Spl, &cx))
}

/// A bare query, as the corpus test reads it.
fn query(kql: &str) -> Translation {
    let loaded = kqlc::load::load_bytes(Path::new("q.kql"), kql.as_bytes()).unwrap();
    convert(&loaded.rules[0], Format::Query).expect("the query normalizes")
}

fn seed_rules() -> Vec<(String, Rule)> {
    let mut paths: Vec<_> = std::fs::read_dir(common::seeds_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let mut loaded = kqlc::load::load_file(&p).unwrap();
            // Snapshots name the file as the tests see it, not by absolute path.
            let mut rule = loaded.rules.remove(0);
            rule.file.path = Path::new("seeds").join(p.file_name().unwrap());
            (name, rule)
        })
        .collect()
}

/// The search string of an output, as Splunk runs it: ```comments``` removed (Splunk
/// replaces them with a space before parsing; the checker does not know them), and in a
/// .conf stanza the `search =` value with its line continuations joined.
fn search_text(output: &str, format: Format) -> String {
    let search = match format {
        Format::Savedsearch => {
            let mut lines = output.lines().skip_while(|l| !l.starts_with("search = "));
            let mut out = String::new();
            let first = lines.next().expect("the stanza has a search");
            let mut line = first.trim_start_matches("search = ").to_string();
            loop {
                match line.strip_suffix(" \\") {
                    Some(head) => {
                        out.push_str(head);
                        out.push('\n');
                        line = lines.next().unwrap_or_default().to_string();
                    }
                    None => {
                        out.push_str(&line);
                        break;
                    }
                }
            }
            out
        }
        _ => output.to_string(),
    };
    strip_comments(&search)
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("```") {
        out.push_str(&rest[..start]);
        match rest[start + 3..].find("```") {
            Some(end) => {
                out.push(' ');
                rest = &rest[start + 3 + end + 3..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// The checker does not know macros (`` `name` ``, `` `name(args)` ``), which Splunk
/// expands before parsing (the Splunk Security Content detections end with one each). A
/// workspace-function placeholder written as a macro is replaced by a neutral term (or
/// command, after a pipe).
fn stand_in_macros(search: &str) -> String {
    let mut out = String::new();
    let mut rest = search;
    while let Some(start) = rest.find('`') {
        let (before, after) = rest.split_at(start);
        let Some(end) = after[1..].find('`') else {
            break;
        };
        out.push_str(before);
        if before.trim_end().ends_with('|') {
            out.push_str("search kqlc_macro_placeholder=*");
        } else {
            out.push_str("kqlc_macro_placeholder=*");
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn validate(items: &[(String, String)]) -> Vec<(String, String)> {
    let results = common::run_validator("spl-validate", &[], items);
    items
        .iter()
        .zip(results)
        .filter(|(_, r)| r["valid"] != serde_json::Value::Bool(true))
        .map(|((id, q), r)| (id.clone(), format!("{}\n{q}", r["errors"])))
        .collect()
}

#[test]
fn seed_snapshots() {
    for (name, rule) in seed_rules() {
        let query = convert(&rule, Format::Query).unwrap();
        insta::assert_snapshot!(format!("{name}"), query.text);
        let stanza = convert(&rule, Format::Savedsearch).unwrap();
        insta::assert_snapshot!(format!("{name}.conf"), stanza.text);
        assert_ne!(query.fidelity, Fidelity::Failed, "{name}");
    }
}

#[test]
fn seeds_pass_the_checker() {
    let mut items = vec![];
    for (name, rule) in seed_rules() {
        for format in [Format::Query, Format::Savedsearch] {
            let t = convert(&rule, format).unwrap();
            items.push((
                format!("{name} {format:?}"),
                stand_in_macros(&search_text(&t.text, format)),
            ));
        }
    }
    let invalid = validate(&items);
    assert!(invalid.is_empty(), "{invalid:#?}");
}

/// What each seed must say about itself.
#[test]
fn seeds_say_what_is_missing() {
    let rules: BTreeMap<String, Rule> = seed_rules().into_iter().collect();
    let sync = convert(&rules["sync-account-interactive-signin"], Format::Query).unwrap();
    assert!(
        sync.text.contains("| `ExcludeAllowlistedIPs`"),
        "{}",
        sync.text
    );
    assert!(
        sync.diagnostics
            .iter()
            .any(|d| d.code == Code::NotTranslated
                && d.message.contains("ExcludeAllowlistedIPs")
                && d.message.contains("macro"))
    );
    assert_eq!(sync.fidelity, Fidelity::Approximate);

    let cisco = convert(
        &rules["cisco-firewall-block-but-success-logon"],
        Format::Query,
    )
    .unwrap();
    assert!(
        cisco
            .diagnostics
            .iter()
            .any(|d| d.code == Code::NoEquivalentField && d.message.contains("`Account`"))
    );
    // One search over both sign-in tables: the same sourcetype, a category filter.
    assert!(cisco
        .text
        .contains(r#"sourcetype="azure:monitor:aad" category IN ("SignInLogs", "NonInteractiveUserSignInLogs")"#));

    let entra = convert(
        &rules["entra-connector-signin-outside-allowlisted-ip"],
        Format::Query,
    )
    .unwrap();
    assert!(
        entra
            .text
            .contains("inputlookup EntraConnect_HighValueAssets")
    );
    assert!(
        entra
            .text
            .contains("values(properties.appDisplayName) AS Apps")
    );
    assert!(entra.text.contains("eval Apps=mvindex(Apps, 0, 9)"));
    assert!(entra.text.contains("earliest=-1h"));

    let stanza = convert(
        &rules["tap-added-to-entra-connector-account"],
        Format::Savedsearch,
    )
    .unwrap();
    for line in [
        "cron_schedule = 0 * * * *",
        "dispatch.earliest_time = -1d",
        "counttype = number of events",
        "relation = greater than",
        "quantity = 0",
        "alert.severity = 5",
        r#"action.correlationsearch.annotations = {"mitre_attack":["T1098","T1556"]}"#,
    ] {
        assert!(
            stanza.text.lines().any(|l| l == line),
            "{line}\n{}",
            stanza.text
        );
    }
    // The dispatch window is the search's: the base search does not repeat it.
    assert!(!search_text(&stanza.text, Format::Savedsearch).contains("earliest=-1d"));
}

/// Search compares case-insensitively and reads `*` as a wildcard; where does neither.
#[test]
fn case_and_wildcards_follow_kql() {
    let t = query(r#"SigninLogs | where AppDisplayName =~ "Azure Portal""#);
    assert!(
        t.text
            .contains(r#"properties.appDisplayName="Azure Portal""#),
        "{}",
        t.text
    );
    let t = query(r#"SigninLogs | where AppDisplayName == "Azure Portal""#);
    assert!(
        t.text
            .contains(r#"where 'properties.appDisplayName'=="Azure Portal""#),
        "{}",
        t.text
    );
    let t = query(r#"SigninLogs | where ResultType == "50126""#);
    assert!(t.text.contains(r#"resultType="50126""#), "{}", t.text);
    let t = query(r#"SigninLogs | where UserAgent contains "a*b""#);
    assert!(
        t.text
            .contains(r#"where match('properties.userAgent', "(?i)a\\*b")"#),
        "{}",
        t.text
    );
    let t = query(r#"SigninLogs | where UserAgent startswith "curl""#);
    assert!(
        t.text.contains(r#"properties.userAgent="curl*""#),
        "{}",
        t.text
    );
}

/// `has` is a whole-term match: a regex with term boundaries, not a substring.
#[test]
fn has_is_a_term_match() {
    let t = query(r#"SigninLogs | where UserDisplayName has "sync""#);
    assert!(
        t.text.contains(
            r#"match('properties.userDisplayName', "(?i)(^|[^a-zA-Z0-9])sync([^a-zA-Z0-9]|$)")"#
        ),
        "{}",
        t.text
    );
    assert_eq!(t.fidelity, Fidelity::Exact);
}

/// A missing string is "" in KQL: `!=` keeps events without the field.
#[test]
fn missing_fields_compare_as_empty() {
    let t = query(r#"SigninLogs | where AppDisplayName !~ "Azure Portal""#);
    assert!(
        t.text
            .contains(r#"NOT properties.appDisplayName="Azure Portal""#),
        "{}",
        t.text
    );
    let t = query(r#"SigninLogs | where AppDisplayName != "Azure Portal""#);
    assert!(
        t.text.contains(r#"where isnull('properties.appDisplayName') OR 'properties.appDisplayName'!="Azure Portal""#),
        "{}",
        t.text
    );
    let t = query(r#"SigninLogs | where UserAgent !contains "curl""#);
    assert!(
        t.text.contains(r#"NOT properties.userAgent="*curl*""#),
        "{}",
        t.text
    );
}

#[test]
fn summarize_and_time_window() {
    let t = query(
        "SigninLogs | where TimeGenerated > ago(2h) | summarize count() by IPAddress, bin(TimeGenerated, 1h) | where count_ > 10",
    );
    let text = &t.text;
    assert!(text.contains("earliest=-2h"), "{text}");
    assert!(
        text.contains("eval TimeGenerated=floor(_time / 3600) * 3600"),
        "{text}"
    );
    assert!(
        text.contains("stats count AS count_ by properties.ipAddress, TimeGenerated"),
        "{text}"
    );
    assert!(text.contains("where count_>10"), "{text}");
    let t = query("SigninLogs | summarize arg_max(TimeGenerated, *) by UserPrincipalName");
    assert!(
        t.text
            .contains("| sort 0 -_time\n| dedup properties.userPrincipalName"),
        "{}",
        t.text
    );
}

#[test]
fn unsupported_constructs_are_loud() {
    let t = query("SigninLogs | make-series count() on TimeGenerated step 1h");
    assert_eq!(t.fidelity, Fidelity::Failed);
    assert!(t.diagnostics.iter().any(|d| d.code == Code::Untranslatable));
    // Each diagnostic is in the comment block too.
    assert!(t.text.starts_with("```"));
    assert!(t.text.contains("T010"));
}

/// What counts as "unsupported" for SPL: a failed translation, or a T003/T010 diagnostic.
fn unsupported(t: &Translation) -> Vec<String> {
    let mut out = vec![];
    for d in &t.diagnostics {
        if matches!(d.code, Code::NotTranslated | Code::Untranslatable) {
            out.push(format!("{}: {}", d.code.as_str(), construct(&d.message)));
        }
    }
    if out.is_empty() && t.fidelity == Fidelity::Failed {
        out.push("failed".into());
    }
    out
}

/// The construct a message is about: its first code span.
fn construct(message: &str) -> String {
    let mut parts = message.split('`');
    match (parts.next(), parts.next()) {
        (Some(_), Some(code)) => {
            let code = code.split('(').next().unwrap_or(code);
            if message.contains("workspace function") {
                "workspace function (macro placeholder)".into()
            } else {
                code.to_string()
            }
        }
        _ => message.chars().take(60).collect(),
    }
}

#[test]
fn corpus_converts_and_passes_the_checker() {
    let mut normalized = 0usize;
    let mut clean = 0usize;
    let mut failed = 0usize;
    let mut correlations = 0usize;
    let mut subsearch_joins = 0usize;
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut constructs: BTreeMap<String, usize> = BTreeMap::new();
    let mut items = vec![];
    for (id, kql) in common::corpus_queries() {
        let loaded = kqlc::load::load_bytes(Path::new("q.kql"), kql.as_bytes()).unwrap();
        let rule = &loaded.rules[0];
        let Ok((detection, notes)) = kqlc::normalize_rule(rule, &Functions::none()) else {
            continue;
        };
        normalized += 1;
        let cx = Context {
            rule,
            detection: &detection,
            notes: &notes,
            mappings: Mappings::embedded(),
            format: Format::Query,
        };
        let t = std::panic::catch_unwind(|| translate(Target::Spl, &cx))
            .unwrap_or_else(|_| panic!("the SPL target panicked on {id}"));
        for d in &t.diagnostics {
            if matches!(d.code, Code::NotTranslated | Code::Untranslatable) {
                *codes.entry(d.code.as_str()).or_default() += 1;
            }
        }
        correlations += t.text.matches("| multisearch").count();
        subsearch_joins += t.text.matches("| join type=").count();
        let issues = unsupported(&t);
        if issues.is_empty() {
            clean += 1;
        }
        let mut seen = std::collections::BTreeSet::new();
        for i in issues {
            if seen.insert(i.clone()) {
                *constructs.entry(i).or_default() += 1;
            }
        }
        if t.fidelity == Fidelity::Failed {
            failed += 1;
            continue;
        }
        assert!(
            t.diagnostics.iter().all(|d| d.severity != Severity::Error),
            "{id}: an error diagnostic without Failed fidelity"
        );
        items.push((
            id.clone(),
            stand_in_macros(&search_text(&t.text, Format::Query)),
        ));
        let cx = Context {
            format: Format::Savedsearch,
            ..cx
        };
        let stanza = translate(Target::Spl, &cx);
        items.push((
            format!("{id} (savedsearch)"),
            stand_in_macros(&search_text(&stanza.text, Format::Savedsearch)),
        ));
    }
    let share = clean as f64 / normalized as f64;
    println!(
        "{normalized} corpus queries normalize; {clean} convert to SPL with no unsupported diagnostic ({:.1}%); {failed} failed (not checked)",
        share * 100.0
    );
    println!("T003/T010 diagnostics: {codes:?}");
    println!(
        "joins: {correlations} written as stats-based correlations (multisearch + eventstats), {subsearch_joins} as `join` with a subsearch"
    );
    let mut ranked: Vec<_> = constructs.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("most frequent remaining constructs (queries):");
    for (what, n) in ranked.iter().take(25) {
        println!("  {n:5}  {what}");
    }
    let invalid = validate(&items);
    println!(
        "{} outputs checked, {} rejected",
        items.len(),
        invalid.len()
    );
    for (id, why) in invalid.iter().take(10) {
        println!("--- {id}: {why}");
    }
    assert!(
        invalid.is_empty(),
        "{} outputs rejected by spl-validate",
        invalid.len()
    );
    assert!(
        share >= 0.85,
        "only {:.1}% convert without unsupported constructs",
        share * 100.0
    );
}

/// A KQL string literal holding exactly `s`.
fn kql_literal(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The string literals of an SPL search, decoded: `"..."` with `\\` and `\"` escapes,
/// and `urldecode("...")` read as the text it gives.
fn spl_literals(spl: &str) -> Vec<String> {
    let mut out = vec![];
    let chars: Vec<char> = spl.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '"' {
            i += 1;
            continue;
        }
        let start = i;
        let mut text = String::new();
        i += 1;
        while i < chars.len() && chars[i] != '"' {
            if chars[i] == '\\' && i + 1 < chars.len() {
                i += 1;
            }
            text.push(chars[i]);
            i += 1;
        }
        i += 1;
        let before: String = chars[..start].iter().collect();
        if before.ends_with("urldecode(") {
            let bytes = text.as_bytes();
            let mut decoded = vec![];
            let mut j = 0;
            while j < bytes.len() {
                if bytes[j] == b'%' && j + 3 <= bytes.len() {
                    decoded.push(u8::from_str_radix(&text[j + 1..j + 3], 16).unwrap());
                    j += 3;
                } else {
                    decoded.push(bytes[j]);
                    j += 1;
                }
            }
            text = String::from_utf8(decoded).unwrap();
        }
        out.push(text);
    }
    out
}

/// A PCRE pattern written by the target for a literal, read back as the literal.
fn regex_literal(re: &str) -> Option<String> {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let n = *chars.get(i + 1)?;
            if n == 'x' {
                if chars.get(i + 2) == Some(&'{') {
                    let end = chars[i..].iter().position(|c| *c == '}')? + i;
                    let hex: String = chars[i + 3..end].iter().collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    i = end + 1;
                } else {
                    let hex: String = chars[i + 2..i + 4].iter().collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    i += 4;
                }
                continue;
            }
            if n.is_ascii_alphanumeric() {
                return None;
            }
            out.push(n);
            i += 2;
            continue;
        }
        if "^$.|?*+()[]{}".contains(c) {
            return None;
        }
        out.push(c);
        i += 1;
    }
    Some(out)
}

/// Any text used as a KQL literal in `==`, `has`, `contains`, `startswith` and `in`
/// gives SPL the checker accepts, where the literal reads back as the same text, and
/// nothing outside a literal holds a backtick (a comment or a macro).
#[test]
fn literals_are_escaped() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use std::cell::RefCell;

    let alphabet: Vec<char> = vec![
        '"', '\\', '|', '[', ']', '(', ')', '{', '}', '*', '?', '\n', '\r', '\t', '`', '$', '=',
        '%', '+', '#', '\'', ' ', 'a', 'Z', '0', '.', '^', '-', 'é', 'ß', '日', '😀', '\u{7f}',
        '\u{1}', ',', ';', '@', '<', '>',
    ];
    let text = proptest::collection::vec(proptest::sample::select(alphabet), 0..12)
        .prop_map(|cs| cs.into_iter().collect::<String>());
    let ops = proptest::sample::select(vec!["==", "has", "contains", "startswith", "in"]);
    let config = Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let outputs = RefCell::new(vec![]);
    runner
        .run(&(text, ops), |(s, op)| {
            let kql = match op {
                "in" => format!(
                    "SigninLogs | where AppDisplayName in ({}, \"zz\")",
                    kql_literal(&s)
                ),
                op => format!("SigninLogs | where AppDisplayName {op} {}", kql_literal(&s)),
            };
            let t = query(&kql);
            prop_assert_ne!(t.fidelity, Fidelity::Failed, "{}", kql);
            let search = strip_comments(&t.text);
            prop_assert!(
                !search.contains('`'),
                "a backtick outside a comment: {}",
                search
            );
            let literals = spl_literals(&search);
            let lower_free = |x: &str| x.to_string();
            let found = literals.iter().any(|l| match op {
                "==" | "in" => *l == s,
                "has" => l
                    .strip_prefix("(?i)(^|[^a-zA-Z0-9])")
                    .and_then(|r| r.strip_suffix("([^a-zA-Z0-9]|$)"))
                    .and_then(regex_literal)
                    .is_some_and(|r| r == s),
                "contains" => {
                    l.strip_prefix('*')
                        .and_then(|r| r.strip_suffix('*'))
                        .map(lower_free)
                        == Some(s.clone())
                        || l.strip_prefix("(?i)")
                            .and_then(regex_literal)
                            .is_some_and(|r| r == s)
                }
                _ => {
                    l.strip_suffix('*').map(lower_free) == Some(s.clone())
                        || l.strip_prefix("(?i)^")
                            .and_then(regex_literal)
                            .is_some_and(|r| r == s)
                }
            });
            prop_assert!(
                found,
                "`{}` does not read back from:\n{}\nliterals: {:?}",
                s,
                search,
                literals
            );
            outputs.borrow_mut().push((format!("{op} {s:?}"), search));
            Ok(())
        })
        .unwrap();
    let outputs = outputs.into_inner();
    assert!(outputs.len() >= 300);
    let invalid = validate(&outputs);
    assert!(invalid.is_empty(), "{invalid:#?}");
}

/// Corpus queries with a character or token inserted or removed: whatever still
/// normalizes translates without a panic, in both forms.
#[test]
fn mutated_corpus_queries_never_panic() {
    let queries = common::corpus_queries();
    let mut state: u64 = 0x1234_5678;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let junk = [
        "\"", "`", "*", "\\\\", "'", "(", ")", "|", "[", "]", "\n", " has ", " in ", "0", "-1",
        "é", "```",
    ];
    let mut translated = 0;
    for round in 0..3 {
        for (id, kql) in &queries {
            let bytes: Vec<char> = kql.chars().collect();
            if bytes.is_empty() {
                continue;
            }
            let at = (next() as usize) % bytes.len();
            let mut m: String = bytes[..at].iter().collect();
            m.push_str(junk[(next() as usize) % junk.len()]);
            let skip = if round == 2 { (next() as usize) % 5 } else { 0 };
            m.extend(bytes[(at + skip).min(bytes.len())..].iter());
            let loaded = kqlc::load::load_bytes(Path::new("q.kql"), m.as_bytes()).unwrap();
            for format in [Format::Query, Format::Savedsearch] {
                let r = std::panic::catch_unwind(|| convert(&loaded.rules[0], format));
                assert!(r.is_ok(), "panic on mutated {id}:\n{m}");
                translated += usize::from(matches!(r, Ok(Some(_))));
            }
        }
    }
    assert!(
        translated > 1000,
        "only {translated} mutated queries normalized"
    );
}

/// The commands of a search's main pipeline after its first (`| multisearch ...`): lines
/// that start with `| ` at the left margin.
fn tail_commands(search: &str) -> Vec<String> {
    search
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// The `eval` that tags one side's events in a `multisearch` (`eval kqlc_sideN=0, ...`).
fn side_tag(search: &str, n: u8) -> Vec<(String, String)> {
    let line = search
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("| eval kqlc_side") && l.contains(&format!("={n},")))
        .unwrap_or_else(|| panic!("no side {n} tag in:\n{search}"));
    line.trim_start_matches("| eval ")
        .trim_end_matches(']')
        .split(", ")
        .map(|a| {
            let (k, v) = a.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

type Event = BTreeMap<String, String>;

/// A reading of the few commands a correlation's tail holds, over events as field maps:
/// `fillnull value="" f...`, `eventstats max(f) AS m` / `count(eval(f=N)) AS m` /
/// `count(eval(f==N)) AS m` `by k...`, `where a=N AND b(=|>)N`, `eval x=y`,
/// `fields - f...`. It panics on anything else, so the test fails if the tail changes
/// shape.
fn run_tail(commands: &[String], mut events: Vec<Event>) -> Vec<Event> {
    for c in commands {
        let (word, rest) = c.split_once(' ').unwrap();
        match word {
            "fillnull" => {
                let fields = rest.strip_prefix("value=\"\" ").unwrap();
                for e in &mut events {
                    for f in fields.split(' ') {
                        e.entry(f.to_string()).or_default();
                    }
                }
            }
            "eventstats" => {
                let (aggs, by) = rest.split_once(" by ").unwrap();
                let by: Vec<&str> = by.split(", ").collect();
                let key = |e: &Event| by.iter().map(|b| e.get(*b).cloned()).collect::<Vec<_>>();
                for agg in aggs.split(", ") {
                    let (call, out) = agg.split_once(" AS ").unwrap();
                    let values: Vec<(Vec<Option<String>>, i64)> = events
                        .iter()
                        .map(|e| {
                            let v = if let Some(f) = call.strip_prefix("max(") {
                                e[f.trim_end_matches(')')].parse().unwrap()
                            } else {
                                let cond = call
                                    .strip_prefix("count(eval(")
                                    .and_then(|c| c.strip_suffix("))"))
                                    .unwrap_or_else(|| panic!("unknown aggregate {call}"));
                                let (f, n) = cond
                                    .split_once("==")
                                    .or_else(|| cond.split_once('='))
                                    .unwrap();
                                i64::from(e[f] == n)
                            };
                            (key(e), v)
                        })
                        .collect();
                    let max = call.starts_with("max(");
                    let per_key = |k: &Vec<Option<String>>| {
                        let vs = values.iter().filter(|(x, _)| x == k).map(|(_, v)| *v);
                        if max { vs.max().unwrap() } else { vs.sum() }
                    };
                    let results: Vec<i64> = events.iter().map(|e| per_key(&key(e))).collect();
                    for (e, r) in events.iter_mut().zip(results) {
                        e.insert(out.to_string(), r.to_string());
                    }
                }
            }
            "where" => {
                let tests: Vec<(String, char, i64)> = rest
                    .split(" AND ")
                    .map(|t| {
                        let at = t.find(['=', '>']).unwrap();
                        (
                            t[..at].to_string(),
                            t.as_bytes()[at] as char,
                            t[at + 1..].parse().unwrap(),
                        )
                    })
                    .collect();
                events.retain(|e| {
                    tests.iter().all(|(f, op, n)| {
                        let v: i64 = e[f].parse().unwrap();
                        if *op == '=' { v == *n } else { v > *n }
                    })
                });
            }
            "eval" => {
                for a in rest.split(", ") {
                    let (x, y) = a.split_once('=').unwrap();
                    for e in &mut events {
                        let v = e[y].clone();
                        e.insert(x.to_string(), v);
                    }
                }
            }
            "fields" => {
                for f in rest.strip_prefix("- ").unwrap().split(", ") {
                    for e in &mut events {
                        e.remove(f);
                    }
                }
            }
            other => panic!("unexpected command `{other}` in the correlation"),
        }
    }
    events
}

/// Events of both sides with keys from a small set (some missing), as the tags leave
/// them: `side`, `key` (absent when the key is missing) and an `id`.
fn tagged_events(seed: u64, side: &str, key: &str) -> Vec<Event> {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let keys = ["a", "A", "b", "c", ""];
    (0..40)
        .map(|id| {
            let mut e = Event::new();
            e.insert("id".into(), id.to_string());
            e.insert(side.into(), (next() % 2).to_string());
            let k = next() % 6;
            if let Some(v) = keys.get(k as usize) {
                e.insert(key.into(), v.to_string());
            }
            e
        })
        .collect()
}

/// KQL's key for an event: a missing string is "".
fn kql_key(e: &Event, key: &str) -> String {
    e.get(key).cloned().unwrap_or_default()
}

/// Semi and anti joins of two event searches: one search over both sides, each left
/// event kept on its own by whether a right event has its key. The tail is run over
/// tagged events and gives exactly the left rows KQL's `leftsemi`/`leftanti` give.
#[test]
fn semi_and_anti_joins_are_correlations() {
    let right = r#"(AuditLogs | where OperationName == "Add member to role" | extend Actor = tostring(InitiatedBy.user.userPrincipalName))"#;
    for (kind, anti) in [("leftsemi", false), ("leftanti", true)] {
        let t = query(&format!(
            "SigninLogs | where ResultType == \"0\" | join kind={kind} {right} on $left.UserPrincipalName == $right.Actor"
        ));
        let search = strip_comments(&t.text);
        assert!(search.starts_with("| multisearch\n    [search sourcetype=\"azure:monitor:aad\" category=\"SignInLogs\" resultType=\"0\"\n"), "{search}");
        assert!(!search.contains("| join"), "{search}");
        assert!(
            !t.diagnostics
                .iter()
                .any(|d| d.code == Code::TargetLimit && d.severity == Severity::Warning),
            "{:?}",
            t.diagnostics
        );
        assert_eq!(t.fidelity, Fidelity::Exact, "{}", t.text);
        let left = side_tag(&search, 0);
        let right_tag = side_tag(&search, 1);
        assert_eq!(left[1].1, "'properties.userPrincipalName'");
        assert_eq!(right_tag[1].1, "Actor");
        assert!(
            search.contains("| eval Actor='properties.initiatedBy.user.userPrincipalName'\n"),
            "{search}"
        );
        let (side, key) = (left[0].0.clone(), left[1].0.clone());
        let tail = tail_commands(&search);
        for seed in 1..30u64 {
            let events = tagged_events(seed * 7919, &side, &key);
            let right_keys: Vec<String> = events
                .iter()
                .filter(|e| e[&side] == "1")
                .map(|e| kql_key(e, &key))
                .collect();
            let expected: Vec<String> = events
                .iter()
                .filter(|e| e[&side] == "0" && right_keys.contains(&kql_key(e, &key)) != anti)
                .map(|e| e["id"].clone())
                .collect();
            let got = run_tail(&tail, events);
            let ids: Vec<String> = got.iter().map(|e| e["id"].clone()).collect();
            assert_eq!(ids, expected, "{kind} seed {seed}\n{search}");
            // Left rows keep their own fields, without the tags.
            assert!(
                got.iter().all(|e| e.len() <= 2 && !e.contains_key(&side)),
                "{got:?}"
            );
        }
    }
}

/// `summarize ... by key | join (events) on key` (the cisco seed's shape): the right
/// events whose key has left events, each with that key's left aggregates, for the
/// default `innerunique` and for `inner` (the left has one row per key, so both give one
/// row per matching right row).
#[test]
fn aggregated_left_join_is_a_correlation() {
    let rules: BTreeMap<String, Rule> = seed_rules().into_iter().collect();
    let cisco = convert(
        &rules["cisco-firewall-block-but-success-logon"],
        Format::Query,
    )
    .unwrap();
    let search = strip_comments(&cisco.text);
    assert!(!search.contains("| join"), "{search}");
    assert!(
        !cisco
            .diagnostics
            .iter()
            .any(|d| d.code == Code::TargetLimit && d.severity == Severity::Warning)
    );
    let left = side_tag(&search, 0);
    let right = side_tag(&search, 1);
    assert_eq!(left[1].1, "src_ip");
    assert_eq!(right[1].1, "'properties.ipAddress'");
    let (side, key) = (left[0].0.clone(), left[1].0.clone());
    let tail: Vec<String> = tail_commands(&search)
        .into_iter()
        .filter(|c| !c.starts_with("eval AccountName"))
        .collect();
    for seed in 1..30u64 {
        let events = tagged_events(seed * 104_729, &side, &key);
        let mut expected = vec![];
        for e in events.iter().filter(|e| e[&side] == "1") {
            let k = kql_key(e, &key);
            let n = events
                .iter()
                .filter(|l| l[&side] == "0" && kql_key(l, &key) == k)
                .count();
            if n > 0 {
                expected.push((e["id"].clone(), k, n.to_string()));
            }
        }
        let got: Vec<(String, String, String)> = run_tail(&tail, events)
            .into_iter()
            .map(|e| (e["id"].clone(), e["SourceIP"].clone(), e["count_"].clone()))
            .collect();
        assert_eq!(got, expected, "seed {seed}\n{search}");
    }
    for kind in ["inner", "innerunique"] {
        let t = query(&format!(
            "SigninLogs | where ResultType != \"0\" | summarize Failures = count(), Apps = make_set(AppDisplayName) by IPAddress | where Failures > 5 | join kind={kind} (AuditLogs | extend IP = tostring(InitiatedBy.user.ipAddress)) on $left.IPAddress == $right.IP | project IPAddress, Failures, Apps, OperationName"
        ));
        let search = strip_comments(&t.text);
        assert!(
            search.contains("| eventstats count(eval(kqlc_side"),
            "{search}"
        );
        assert!(
            search.contains("==0)) AS Failures, values(eval(if(kqlc_side"),
            "{search}"
        );
        assert!(search.contains("| where Failures>5"), "{search}");
        assert!(
            search.ends_with("| table IPAddress, Failures, Apps, OperationName"),
            "{search}"
        );
        assert!(!search.contains("| join"), "{search}");
    }
}

/// Joins whose result is not one a stats-based correlation gives stay `join` (and say
/// its limits).
#[test]
fn other_joins_stay_join() {
    let subsearch = |t: &Translation| {
        strip_comments(&t.text).contains("| join type=")
            && t.diagnostics
                .iter()
                .any(|d| d.code == Code::TargetLimit && d.severity == Severity::Warning)
    };
    for kql in [
        // innerunique of two event searches: one left row per key with all its columns.
        "SigninLogs | join (AuditLogs | extend UPN = tostring(InitiatedBy.user.userPrincipalName)) on $left.UserPrincipalName == $right.UPN",
        // inner: one row per matching pair.
        "SigninLogs | join kind=inner (AuditLogs | extend UPN = tostring(InitiatedBy.user.userPrincipalName)) on $left.UserPrincipalName == $right.UPN",
        // the left has several rows per join key.
        "SigninLogs | summarize count() by UserPrincipalName, IPAddress | join kind=inner (AuditLogs | extend UPN = tostring(InitiatedBy.user.userPrincipalName)) on $left.UserPrincipalName == $right.UPN",
        // outer joins keep unmatched rows with the other side's columns.
        "SigninLogs | join kind=leftouter (AuditLogs | extend UPN = tostring(InitiatedBy.user.userPrincipalName)) on $left.UserPrincipalName == $right.UPN",
        // the right side's keys depend on a condition on its aggregates.
        "SigninLogs | join kind=leftsemi (AuditLogs | extend UPN = tostring(InitiatedBy.user.userPrincipalName) | summarize n = count() by UPN | where n > 3) on $left.UserPrincipalName == $right.UPN",
    ] {
        let t = query(kql);
        assert!(subsearch(&t), "{kql}\n{}", t.text);
    }
    // The seed whose joins pair several rows per key keeps both joins.
    let rules: BTreeMap<String, Rule> = seed_rules().into_iter().collect();
    let t = convert(
        &rules["unfamiliar-signin-portal-auditlogs-correlation"],
        Format::Query,
    )
    .unwrap();
    assert_eq!(
        strip_comments(&t.text)
            .matches("| join type=inner max=0")
            .count(),
        2
    );
}
