//! `kqlc parse` end to end: output, positions in the rule file, and bad input. Every bad
//! input gets a clear error with its file, line and column and exit status 1; nothing
//! panics, hangs or overflows the stack, and one bad file never stops the others.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kqlc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kqlc"))
        .args(args)
        .output()
        .expect("kqlc runs")
}

fn kqlc_path(args: &[&str], path: &Path) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.push(path.to_str().unwrap());
    kqlc(&all)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Runs `kqlc parse` on a file and checks: exit 1, the code, and `name:line:col`.
fn fails_with(path: &Path, code: &str, line_col: Option<&str>) -> String {
    let out = kqlc_path(&["parse"], path);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status for {}: {err}",
        path.display()
    );
    assert!(
        err.contains(&format!("[{code}]")),
        "expected {code} for {}:\n{err}",
        path.display()
    );
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "names the file: {err}");
    if let Some(lc) = line_col {
        assert!(
            err.contains(&format!("{name}:{lc}")),
            "expected {name}:{lc} in:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn parses_a_seed_rule() {
    let out = kqlc(&[
        "parse",
        "../shared/seeds/rules/sync-account-interactive-signin.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "== ../shared/seeds/rules/sync-account-interactive-signin.yaml: Interactive"
        )
    );
    assert!(
        text.contains("invoke call name=\"ExcludeAllowlistedIPs\""),
        "{text}"
    );
}

#[test]
fn json_format_is_json() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.kql", "SigninLogs | where ResultType == 0");
    write(
        dir.path(),
        "bad.kql",
        "SigninLogs\n| where ResultType = = 0",
    );
    let out = kqlc_path(&["parse", "--format", "json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let items: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("stdout is JSON");
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 2);
    // Sorted by file name: bad.kql, good.kql.
    assert_eq!(items[0]["ok"], false);
    assert_eq!(items[0]["diagnostics"][0]["code"], "P001");
    assert_eq!(items[0]["diagnostics"][0]["line"], 2);
    assert_eq!(items[0]["diagnostics"][0]["column"], 22);
    assert_eq!(items[1]["ok"], true);
    assert_eq!(items[1]["ast"]["statements"][0]["expr"], "pipeline");
}

#[test]
fn error_position_is_in_the_rule_file() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "id: 1\nname: Broken\nseverity: High\nquery: |\n  SigninLogs\n  | where ResultType == 0\n  | summarize count() by\nkind: Scheduled\n";
    let path = write(dir.path(), "broken.yaml", yaml);
    // The query's line 3 is the file's line 7; the error is at its end.
    let err = fails_with(&path, "P001", Some("7:25"));
    assert!(
        err.contains("| summarize count() by"),
        "code frame shows the line:\n{err}"
    );
    assert!(err.contains('^'), "caret under the place:\n{err}");
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails_with(&write(d, "empty.yaml", ""), "L005", None);
    let err = fails_with(&write(d, "noquery.yaml", "id: x\nname: y\n"), "L005", None);
    assert!(err.contains("name"), "lists the fields found: {err}");
    fails_with(
        &write(d, "malformed.yaml", "name: a\nquery: |\n  T\n bad: [\n"),
        "L003",
        None,
    );
    fails_with(
        &write(d, "latin1.kql", b"T | where a == '\xe9'"),
        "L002",
        Some("1:17"),
    );
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fails_with(&write(d, "garbage.kql", &garbage), "L002", None);
    fails_with(
        &write(d, "empty.kql", "// nothing but a comment\n"),
        "P006",
        None,
    );
    fails_with(
        &write(
            d,
            "huge.kql",
            format!("print x = '{}'", "a".repeat(10 << 20)),
        ),
        "P004",
        None,
    );
    let nested = format!("T | where {}a{}", "(".repeat(100_000), ")".repeat(100_000));
    fails_with(&write(d, "nested.kql", nested), "P003", Some("1:51"));
    fails_with(
        &write(d, "unterminated.kql", "T\n| where a == \"abc\n"),
        "P002",
        Some("2:14"),
    );
    fails_with(&write(d, "fence.kql", "print ```abc"), "P002", Some("1:7"));
    fails_with(
        &write(d, "garbage.json", "{\"resources\": [ {]"),
        "L004",
        None,
    );
    fails_with(&d.join("does-not-exist.yaml"), "L001", None);
}

#[test]
fn one_bad_file_does_not_stop_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a-good.kql", "SigninLogs | take 1");
    write(d, "b-bad.kql", "SigninLogs | wher x");
    std::fs::create_dir(d.join("sub")).unwrap();
    write(
        &d.join("sub"),
        "c-good.yaml",
        "name: C\nquery: AuditLogs | take 1\n",
    );
    write(d, "notes.md", "not a rule");
    let out = kqlc_path(&["parse"], d);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("a-good.kql"), "{text}");
    assert!(text.contains("c-good.yaml: C"), "{text}");
    assert!(stderr(&out).contains("b-bad.kql:1:14"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("notes.md"));
}

#[test]
fn exit_status_contract() {
    assert_eq!(kqlc(&[]).status.code(), Some(2), "no subcommand");
    assert_eq!(kqlc(&["parse"]).status.code(), Some(2), "no path");
    assert_eq!(
        kqlc(&["parse", "--format", "xml", "x.kql"]).status.code(),
        Some(2)
    );
    assert_eq!(kqlc(&["--help"]).status.code(), Some(0));
    assert_eq!(kqlc(&["--version"]).status.code(), Some(0));
    let explain = kqlc(&["explain", "P002"]);
    assert_eq!(explain.status.code(), Some(0));
    assert!(stdout(&explain).contains("multi-line"));
    assert_eq!(kqlc(&["explain", "Z999"]).status.code(), Some(2));
}
