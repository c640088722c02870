//! `kqlc convert` and `kqlc check` end to end, as users' scripts and CI see them: help
//! text, exit statuses, what is written where, the report, progress only on a terminal,
//! and `check` catching drift.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn kqlc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kqlc"))
        .args(args)
        .current_dir(common::crate_dir())
        // Help text wraps at a fixed width, whatever the terminal running the tests.
        .env("COLUMNS", "100")
        .output()
        .expect("kqlc runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A rule every target translates exactly.
const EXACT_RULE: &str = "examples/rules/hunting/Audit-DetectCredentialAddedtoApp.kql";
/// A rule every target translates, some only approximately.
const APPROXIMATE_RULE: &str =
    "examples/rules/seeds/entra-connector-signin-outside-allowlisted-ip.yaml";

// ---- help text ----------------------------------------------------------------------

#[test]
fn help_text() {
    for (name, args) in [
        ("help", vec!["--help"]),
        ("convert_help", vec!["convert", "--help"]),
        ("check_help", vec!["check", "--help"]),
        ("parse_help", vec!["parse", "--help"]),
        ("ir_help", vec!["ir", "--help"]),
    ] {
        let out = kqlc(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        insta::assert_snapshot!(name, stdout(&out));
    }
}

#[test]
fn version() {
    let out = kqlc(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).trim(),
        format!("kqlc {}", env!("CARGO_PKG_VERSION"))
    );
}

// ---- exit statuses ------------------------------------------------------------------

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["convert", EXACT_RULE],
        vec!["convert", EXACT_RULE, "--to", "qradar"],
        vec!["convert", EXACT_RULE, "--to", "sigma", "--no-such-flag"],
        vec!["convert", "--to", "sigma"],
        vec!["check", EXACT_RULE],
        vec!["explain", "Z999"],
    ] {
        let out = kqlc(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} says why");
        assert!(stdout(&out).is_empty(), "{args:?} prints nothing on stdout");
    }
}

#[test]
fn exact_translation_exits_0_even_when_strict() {
    let out = kqlc(&[
        "convert",
        EXACT_RULE,
        "--to",
        "sigma,spl,esql,kql",
        "--strict",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn approximation_is_an_error_only_when_strict() {
    let out = kqlc(&["convert", APPROXIMATE_RULE, "--to", "sigma"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The approximation is still said, on stderr and in the output.
    assert!(stderr(&out).contains("warning["), "{}", stderr(&out));
    assert!(stdout(&out).contains("kqlc:"), "{}", stdout(&out));

    let strict = kqlc(&["convert", APPROXIMATE_RULE, "--to", "sigma", "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    // Same output either way: --strict changes only the status.
    assert_eq!(stdout(&strict), stdout(&out));
}

#[test]
fn failed_conversion_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("series.kql");
    std::fs::write(
        &rule,
        "SigninLogs | make-series count() on TimeGenerated step 1h",
    )
    .unwrap();
    let out = kqlc(&["convert", path_arg(&rule), "--to", "spl"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("error[T010]"), "{}", stderr(&out));
}

// ---- where outputs go ---------------------------------------------------------------

#[test]
fn one_input_prints_to_stdout_in_target_order() {
    let out = kqlc(&["convert", EXACT_RULE, "--to", "kql,sigma"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let sigma = text.find("logsource:").expect("a Sigma rule");
    let kql = text.find("\nAuditLogs\n").expect("a KQL query");
    assert!(
        sigma < kql,
        "targets in a fixed order (sigma, spl, esql, kql):\n{text}"
    );
    // One rule to stdout: no summary table on stderr.
    assert!(!stderr(&out).contains("approximated"), "{}", stderr(&out));
}

#[test]
fn out_dir_mirrors_inputs_per_target() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = kqlc(&[
        "convert",
        "examples/rules",
        "--to",
        "sigma,spl,esql,kql",
        "--format",
        "query,savedsearch,elastic-rule",
        "--out",
        path_arg(out_dir.path()),
        "--quiet",
    ]);
    assert!(stdout(&out).is_empty(), "nothing on stdout with --out");
    for rel in [
        "sigma/seeds/cisco-firewall-block-but-success-logon.yml",
        "spl/seeds/cisco-firewall-block-but-success-logon.spl",
        "spl/seeds/cisco-firewall-block-but-success-logon.conf",
        "esql/seeds/cisco-firewall-block-but-success-logon.esql",
        "esql/seeds/cisco-firewall-block-but-success-logon.json",
        "kql/seeds/cisco-firewall-block-but-success-logon.kql",
        "kql/hunting/Audit-DetectCredentialAddedtoApp.kql",
        // An ARM export holds several rules: one output each, numbered.
        "kql/arm/workspace-export.0.kql",
        "kql/arm/workspace-export.1.kql",
    ] {
        let p = out_dir.path().join(rel);
        assert!(p.is_file(), "{rel} written");
        assert!(!std::fs::read_to_string(&p).unwrap().is_empty(), "{rel}");
    }
    // The Elastic rule is JSON.
    let rule: Value = serde_json::from_str(
        &std::fs::read_to_string(
            out_dir
                .path()
                .join("esql/seeds/cisco-firewall-block-but-success-logon.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(rule["language"], "esql");
}

#[test]
fn converting_again_rewrites_changed_outputs_only() {
    let out_dir = tempfile::tempdir().unwrap();
    let args = [
        "convert",
        "examples/rules/seeds",
        "--to",
        "spl,kql",
        "--out",
        path_arg(out_dir.path()),
        "--quiet",
    ];
    kqlc(&args);
    let edited = out_dir
        .path()
        .join("spl/tap-added-to-entra-connector-account.spl");
    let kept = out_dir
        .path()
        .join("kql/tap-added-to-entra-connector-account.kql");
    let original = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, "edited by hand").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
    let set_mtime = |p: &Path| {
        std::fs::File::options()
            .append(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap()
    };
    set_mtime(&kept);
    kqlc(&args);
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), original);
    let mtime = std::fs::metadata(&kept).unwrap().modified().unwrap();
    assert_eq!(mtime, old, "an unchanged output is not rewritten");
}

#[test]
fn bad_input_does_not_stop_a_batch() {
    let inputs = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    std::fs::copy(exact_rule_path(), inputs.path().join("good.kql")).unwrap();
    std::fs::write(inputs.path().join("bad.kql"), "SigninLogs | where (").unwrap();
    std::fs::write(
        inputs.path().join("noquery.yaml"),
        "name: x\nseverity: High\n",
    )
    .unwrap();
    std::fs::write(inputs.path().join("garbage.yaml"), b"\xff\xfe\x00binary").unwrap();
    let out = kqlc(&[
        "convert",
        path_arg(inputs.path()),
        "--to",
        "sigma,kql",
        "--out",
        path_arg(out_dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.kql:1:"), "{err}");
    assert!(err.contains("noquery.yaml"), "{err}");
    assert!(err.contains("garbage.yaml"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out_dir.path().join("sigma/good.yml").is_file());
    assert!(out_dir.path().join("kql/good.kql").is_file());
    assert!(!out_dir.path().join("kql/bad.kql").exists());
    // The summary counts the three bad files as failed for each target.
    assert!(
        err.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["kql", "1", "0", "3"]),
        "{err}"
    );
}

#[test]
fn inputs_writing_the_same_output_are_reported() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        a.path().join("rule.kql"),
        "SigninLogs | where ResultType == 0",
    )
    .unwrap();
    std::fs::write(
        b.path().join("rule.kql"),
        "AuditLogs | where Result == 'success'",
    )
    .unwrap();
    let out = kqlc(&[
        "convert",
        path_arg(a.path()),
        path_arg(b.path()),
        "--to",
        "kql",
        "--out",
        path_arg(out_dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("two inputs write"),
        "{}",
        stderr(&out)
    );
    let written = std::fs::read_to_string(out_dir.path().join("kql/rule.kql")).unwrap();
    assert!(
        written.contains("AuditLogs"),
        "the later input is kept: {written}"
    );
}

fn exact_rule_path() -> PathBuf {
    common::crate_dir().join(EXACT_RULE)
}

// ---- the report ---------------------------------------------------------------------

#[test]
fn json_report_has_every_rule_target_and_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = kqlc(&[
        "convert",
        "examples/rules",
        "--to",
        "sigma,spl,esql,kql",
        "--out",
        path_arg(&dir.path().join("out")),
        "--report",
        path_arg(&report),
        "--quiet",
    ]);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let rules = report["rules"].as_array().unwrap();
    // 12 files, the ARM export holding two rules.
    assert_eq!(rules.len(), 13);
    let mut counted = std::collections::BTreeMap::<(String, String), usize>::new();
    for rule in rules {
        let targets = rule["targets"].as_array().unwrap();
        let names: Vec<&str> = targets
            .iter()
            .map(|t| t["target"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sigma", "spl", "esql", "kql"], "{}", rule["file"]);
        for t in targets {
            let status = t["status"].as_str().unwrap().to_string();
            *counted
                .entry((t["target"].as_str().unwrap().to_string(), status.clone()))
                .or_default() += 1;
            let diagnostics = t["diagnostics"].as_array().unwrap();
            if status == "exact" {
                // (The KQL target keeps what the IR could not resolve verbatim, so the
                // normalizer's warnings do not make it approximate.)
                assert!(
                    diagnostics.iter().all(|d| d["severity"] == "note"
                        || (t["target"] == "kql" && d["code"].as_str().unwrap().starts_with('U'))),
                    "an exact translation has only notes: {t}"
                );
            } else {
                assert!(
                    diagnostics
                        .iter()
                        .any(|d| d["severity"] == "warning" || d["severity"] == "error"),
                    "a {status} translation says why: {t}"
                );
            }
            for d in diagnostics {
                assert!(d["code"].as_str().unwrap().len() == 4, "{d}");
                assert!(!d["message"].as_str().unwrap().is_empty(), "{d}");
                assert_eq!(d["file"], rule["file"], "{d}");
            }
        }
    }
    // The summary is the count of the per-rule statuses.
    for s in report["summary"].as_array().unwrap() {
        let target = s["target"].as_str().unwrap().to_string();
        for (key, status) in [
            ("exact", "exact"),
            ("approximate", "approximate"),
            ("failed", "failed"),
        ] {
            let n = counted
                .get(&(target.clone(), status.to_string()))
                .copied()
                .unwrap_or(0);
            assert_eq!(s[key].as_u64().unwrap() as usize, n, "{target} {key}");
        }
    }
    // The exit status agrees: some ES|QL translation of the examples fails.
    let failed: u64 = report["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["failed"].as_u64().unwrap())
        .sum();
    assert_eq!(out.status.code(), Some(if failed > 0 { 1 } else { 0 }));

    // A diagnostic is placed in its rule file: the Entra connector seed's watchlist.
    let seed = rules
        .iter()
        .find(|r| {
            r["file"]
                .as_str()
                .unwrap()
                .ends_with("entra-connector-signin-outside-allowlisted-ip.yaml")
        })
        .unwrap();
    let positioned = seed["targets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["diagnostics"].as_array().unwrap())
        .filter(|d| d["line"].as_u64().is_some() && d["column"].as_u64().is_some())
        .count();
    assert!(positioned > 0, "{seed}");
}

#[test]
fn markdown_report_lists_rules_and_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.md");
    kqlc(&[
        "convert",
        "examples/rules/seeds",
        "--to",
        "sigma,spl",
        "--out",
        path_arg(&dir.path().join("out")),
        "--report",
        path_arg(&report),
        "--quiet",
    ]);
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.starts_with("# kqlc conversion report"), "{md}");
    assert!(
        md.contains("| target | exact | approximated | failed |"),
        "{md}"
    );
    assert!(md.contains("| rule | file | sigma | spl |"), "{md}");
    assert!(
        md.contains("| Cisco - firewall block but success logon to Microsoft Entra ID |"),
        "{md}"
    );
    // Each diagnostic with its code and position.
    assert!(md.contains("- **sigma**: `T"), "{md}");
    assert!(md.contains("(line "), "{md}");
}

// ---- progress -----------------------------------------------------------------------

#[test]
fn no_progress_output_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let out = kqlc(&[
        "convert",
        "examples/rules",
        "--to",
        "kql",
        "--out",
        path_arg(dir.path()),
        "--quiet",
    ]);
    let err = stderr(&out);
    assert!(!err.contains("converting"), "{err}");
    assert!(!err.contains('\r') && !err.contains('\u{1b}'), "{err:?}");
    // Only the summary table.
    assert!(err.trim_start().starts_with("target   exact"), "{err}");
}

/// On a terminal the bar shows. `script` (util-linux) runs kqlc on a pseudo-terminal.
#[test]
fn progress_bar_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{} convert {} --to sigma,spl,esql,kql --out {} --quiet",
        env!("CARGO_BIN_EXE_kqlc"),
        common::corpus_dir().display(),
        dir.path().display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(common::crate_dir())
        .output()
        .expect("`script` (util-linux) runs");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains("converting"), "{seen}");
    assert!(seen.contains("target   exact"), "{seen}");
}

// ---- check --------------------------------------------------------------------------

#[test]
fn check_passes_on_fresh_outputs_and_reports_drift() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let outs = path_arg(&out_dir);
    kqlc(&[
        "convert",
        "examples/rules/seeds",
        "--to",
        "sigma,esql",
        "--out",
        outs,
        "--quiet",
    ]);
    let check = || kqlc(&["check", "examples/rules/seeds", "--against", outs]);

    let clean = check();
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert!(
        stderr(&clean).contains("outputs match"),
        "{}",
        stderr(&clean)
    );

    // A changed line shows as a unified diff.
    let changed = out_dir.join("sigma/sync-account-interactive-signin.yml");
    let text = std::fs::read_to_string(&changed).unwrap();
    std::fs::write(&changed, text.replacen("level:", "level: low #", 1)).unwrap();
    // A missing output, and one that no rule produces.
    std::fs::remove_file(out_dir.join("esql/cisco-firewall-block-but-success-logon.esql")).unwrap();
    std::fs::write(out_dir.join("esql/stale.esql"), "FROM x").unwrap();

    let drift = check();
    assert_eq!(drift.status.code(), Some(1));
    let diff = stdout(&drift);
    assert!(
        diff.contains("changed: ") && diff.contains("sync-account-interactive-signin.yml"),
        "{diff}"
    );
    assert!(diff.contains("-level: low #"), "{diff}");
    assert!(diff.lines().any(|l| l.starts_with("+level:")), "{diff}");
    assert!(
        diff.contains("missing: ") && diff.contains("cisco-firewall-block-but-success-logon.esql"),
        "{diff}"
    );
    assert!(
        diff.contains("extra: ") && diff.contains("stale.esql"),
        "{diff}"
    );
    assert!(
        stderr(&drift).contains("3 outputs drifted"),
        "{}",
        stderr(&drift)
    );
}

#[test]
fn check_without_outputs_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = kqlc(&["check", EXACT_RULE, "--against", path_arg(dir.path())]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// The committed examples are what kqlc writes today (regenerate with the command in
/// the README).
#[test]
fn committed_examples_are_current() {
    let out = kqlc(&[
        "check",
        "examples/rules",
        "--against",
        "examples/out",
        "--format",
        "query,savedsearch,elastic-rule",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "examples/out drifted; regenerate it (see README):\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}
