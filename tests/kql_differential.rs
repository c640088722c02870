//! Differential test of the KQL target on a real engine (duckdb-kql via `kql-run`).
//!
//! Each directory under `tests/differential/` is a case: a rule (`rule.kql` or
//! `rule.yaml`), optional workspace functions (`functions.kql`: given to kqlc, and to the
//! engine as `--prelude` for the original, unless `prelude.kql` gives the engine its own
//! version), an optional hand-written equivalent of the
//! original for when the engine cannot run the rule itself (`original.kql`), optional
//! hand-written rows (`data/<Table>.jsonl`, added to the generated ones), optional tables
//! to leave out (`absent-tables`, one name a line) and a `README` line. Events are
//! generated from the detection IR (`tests/common/events.rs`); the original query and the
//! KQL kqlc prints from the IR run over the same events and must return the same rows.
//!
//! Environment: `KQLC_DIFF_CASES=substring` runs only matching cases (and then does not
//! require 40), `KQLC_DIFF_OUT=dir` keeps each case's data and queries there, and
//! `KQLC_DIFF_JOBS=n` sets the number of parallel cases (default 2).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use common::events;
use kqlc::ir::{Detection, Pipeline, Scalar, Source, Stage};
use serde_json::Value as Json;

/// Cases that must run on both sides for the test to pass.
const MIN_CASES: usize = 40;

fn cases_dir() -> PathBuf {
    common::crate_dir().join("tests/differential")
}

/// One case directory.
struct Case {
    name: String,
    dir: PathBuf,
    rule: PathBuf,
}

fn discover() -> Vec<Case> {
    let filter = std::env::var("KQLC_DIFF_CASES").ok();
    let mut cases: Vec<Case> = std::fs::read_dir(cases_dir())
        .expect("tests/differential exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .filter_map(|dir| {
            let name = dir.file_name()?.to_string_lossy().into_owned();
            let rule = ["rule.kql", "rule.yaml"]
                .iter()
                .map(|f| dir.join(f))
                .find(|p| p.exists())?;
            Some(Case { name, dir, rule })
        })
        .filter(|c| filter.as_deref().is_none_or(|f| c.name.contains(f)))
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// What running one query gave.
#[derive(Debug)]
enum Run {
    Rows(Vec<Json>),
    /// Exit 3: duckdb-kql does not support a construct.
    Refused(String),
    /// Any other failure.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Same,
    Different,
    RefusedOriginal,
    RefusedConverted,
    /// The original failed, or kqlc could not read the rule: a problem of the case.
    CaseError,
    /// The converted query failed where the original ran: a kqlc bug.
    ConvertedError,
    /// Same rows, but the case exercises nothing (no row, or no event filtered out).
    Weak,
    /// kqlc left a function call unresolved although the case supplies its definition:
    /// the printed query is not self-contained (whatever the engine then does).
    Unresolved,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Different => "DIFFERENT",
            Verdict::RefusedOriginal => "engine refused original (exit 3)",
            Verdict::RefusedConverted => "engine refused converted (exit 3)",
            Verdict::CaseError => "CASE ERROR",
            Verdict::ConvertedError => "CONVERTED FAILED",
            Verdict::Weak => "WEAK (exercises nothing)",
            Verdict::Unresolved => "KQLC LEFT A FUNCTION UNRESOLVED",
        }
    }

    /// Whether both sides ran.
    fn ran(self) -> bool {
        matches!(self, Verdict::Same | Verdict::Different | Verdict::Weak)
    }

    fn fails(self) -> bool {
        matches!(
            self,
            Verdict::Different
                | Verdict::CaseError
                | Verdict::ConvertedError
                | Verdict::Weak
                | Verdict::Unresolved
        )
    }
}

struct Outcome {
    name: String,
    input_rows: usize,
    original_rows: Option<usize>,
    converted_rows: Option<usize>,
    verdict: Verdict,
    /// Why, and for differences the queries and rows.
    detail: String,
}

#[test]
fn kql_target_returns_the_same_rows_as_the_original() {
    let started = Instant::now();
    let cases = discover();
    let filtered = std::env::var("KQLC_DIFF_CASES").is_ok();
    let jobs: usize = std::env::var("KQLC_DIFF_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(2);
    let outcomes = run_parallel(&cases, jobs);
    print_summary(&outcomes);
    let ran = outcomes.iter().filter(|o| o.verdict.ran()).count();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.verdict.fails()).collect();
    println!(
        "{} cases, {ran} ran on both sides, {} failed; {:.1} s",
        outcomes.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    for o in &failed {
        println!("\n=== {} — {}\n{}", o.name, o.verdict.label(), o.detail);
    }
    assert!(
        filtered || ran >= MIN_CASES,
        "only {ran} cases ran on both sides; at least {MIN_CASES} must"
    );
    assert!(
        failed.is_empty(),
        "{} case(s) failed: {}",
        failed.len(),
        failed
            .iter()
            .map(|o| format!("{} ({})", o.name, o.verdict.label()))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// Runs the cases on `jobs` threads; outcomes in case order.
fn run_parallel(cases: &[Case], jobs: usize) -> Vec<Outcome> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..cases.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(case) = cases.get(i) else { break };
                    let outcome = run_case(case);
                    results.lock().unwrap()[i] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|o| o.expect("every case ran"))
        .collect()
}

/// Everything needed to run one case.
struct Prepared {
    detection: Detection,
    converted: String,
    original: PathBuf,
    prelude: Option<PathBuf>,
    tables: events::Tables,
    /// Functions were supplied (`functions.kql`), so none may stay unresolved.
    has_functions: bool,
}

fn prepare(case: &Case) -> Result<Prepared, String> {
    let loaded = kqlc::load::load_file(&case.rule).map_err(|e| format!("load: {e:?}"))?;
    let rule = loaded.rules.first().ok_or("no rule in the file")?;
    let functions_path = case.dir.join("functions.kql");
    let functions = if functions_path.exists() {
        let text = std::fs::read_to_string(&functions_path).map_err(|e| e.to_string())?;
        kqlc::normalize::Functions::parse(&text).map_err(|e| format!("functions: {e:?}"))?
    } else {
        kqlc::normalize::Functions::none()
    };
    let (detection, notes) =
        kqlc::normalize_rule(rule, &functions).map_err(|d| kqlc::diag::render(&d, &rule.file))?;
    let cx = kqlc::target::Context {
        rule,
        detection: &detection,
        notes: &notes,
        mappings: kqlc::mapping::Mappings::embedded(),
        format: kqlc::target::Format::Query,
    };
    let translation = kqlc::target::translate(kqlc::target::Target::Kql, &cx);
    // A hand-written equivalent replaces the rule for the engine when the rule cannot run
    // there as written; it is self-contained (no prelude).
    let hand = case.dir.join("original.kql");
    // The engine's prelude: `prelude.kql` when the functions file is in a form the engine
    // does not read (`.create-or-alter function`), else the functions file itself.
    let prelude_path = case.dir.join("prelude.kql");
    let (original, prelude) = if hand.exists() {
        (hand, None)
    } else if prelude_path.exists() {
        (case.rule.clone(), Some(prelude_path))
    } else {
        (
            case.rule.clone(),
            functions_path.exists().then_some(functions_path.clone()),
        )
    };
    let mut tables = events::generate(&detection);
    add_hand_rows(&case.dir, &mut tables)?;
    for absent in read_lines(&case.dir.join("absent-tables")) {
        tables.remove(&absent);
    }
    Ok(Prepared {
        detection,
        converted: translation.text,
        original,
        prelude,
        tables,
        has_functions: functions_path.exists(),
    })
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Adds `data/<Table>.jsonl` rows to the generated ones.
fn add_hand_rows(dir: &Path, tables: &mut events::Tables) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir.join("data")) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let Some(table) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let rows = tables.entry(table.to_string()).or_default();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str(line) {
                Ok(Json::Object(m)) => rows.push(m),
                _ => return Err(format!("{}:{}: not a JSON object", path.display(), i + 1)),
            }
        }
    }
    Ok(())
}

fn run_case(case: &Case) -> Outcome {
    let mut outcome = Outcome {
        name: case.name.clone(),
        input_rows: 0,
        original_rows: None,
        converted_rows: None,
        verdict: Verdict::CaseError,
        detail: String::new(),
    };
    let prepared = match prepare(case) {
        Ok(p) => p,
        Err(e) => {
            outcome.detail = e;
            return outcome;
        }
    };
    let work = work_dir(&case.name);
    let data = work.path().join("data");
    write_tables(&data, &prepared.tables);
    let converted_path = work.path().join("converted.kql");
    std::fs::write(&converted_path, &prepared.converted).unwrap();
    outcome.input_rows = input_rows(&prepared.detection.query, &prepared.tables);

    let original = run_engine(&prepared.original, &data, prepared.prelude.as_deref());
    let converted = run_engine(&converted_path, &data, None);
    let original_text = query_text(&prepared.original);
    let queries = format!(
        "original ({}):\n{}\nconverted:\n{}data: {}",
        prepared.original.display(),
        indent(&original_text),
        indent(&prepared.converted),
        data.display()
    );
    match (original, converted) {
        (Run::Refused(m), _) => {
            outcome.verdict = Verdict::RefusedOriginal;
            outcome.detail = m;
        }
        (Run::Failed(m), _) => {
            outcome.verdict = Verdict::CaseError;
            outcome.detail = format!("original failed: {m}\n{queries}");
        }
        (Run::Rows(o), Run::Refused(m)) => {
            outcome.original_rows = Some(o.len());
            outcome.verdict = Verdict::RefusedConverted;
            outcome.detail = m;
        }
        (Run::Rows(o), Run::Failed(m)) => {
            outcome.original_rows = Some(o.len());
            outcome.verdict = Verdict::ConvertedError;
            outcome.detail = format!("converted failed: {m}\n{queries}");
        }
        (Run::Rows(o), Run::Rows(c)) => {
            outcome.original_rows = Some(o.len());
            outcome.converted_rows = Some(c.len());
            match compare(&prepared.detection, &o, &c) {
                Err(diff) => {
                    outcome.verdict = Verdict::Different;
                    outcome.detail = format!("{diff}\n{queries}");
                }
                Ok(()) => match weakness(&prepared.detection, o.len(), outcome.input_rows) {
                    Some(why) => {
                        outcome.verdict = Verdict::Weak;
                        outcome.detail = format!("{why}\n{queries}");
                    }
                    None => outcome.verdict = Verdict::Same,
                },
            }
        }
    }
    if prepared.has_functions && has_unresolved(&prepared.detection) {
        outcome.detail = format!(
            "the IR still calls a workspace function (engine: {}; {})\n{queries}",
            outcome.verdict.label(),
            outcome.detail.lines().next().unwrap_or("")
        );
        outcome.verdict = Verdict::Unresolved;
    }
    outcome
}

/// Whether the IR still holds a call of a function kqlc could not inline.
fn has_unresolved(detection: &Detection) -> bool {
    let json = serde_json::to_string(&detection.query).unwrap_or_default();
    json.contains(r#""source":"unresolved_function""#)
        || json.contains(r#""stage":"unresolved_invoke""#)
}

/// The query a file holds (a YAML rule's `query`).
fn query_text(path: &Path) -> String {
    match kqlc::load::load_file(path) {
        Ok(loaded) if !loaded.rules.is_empty() => loaded.rules[0].query.clone(),
        _ => std::fs::read_to_string(path).unwrap_or_default(),
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Where a case's data and queries go: `KQLC_DIFF_OUT/<case>` (kept) or a temporary dir.
fn work_dir(case: &str) -> WorkDir {
    match std::env::var_os("KQLC_DIFF_OUT") {
        Some(out) => {
            let dir = PathBuf::from(out).join(case);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            WorkDir::Kept(dir)
        }
        None => WorkDir::Temp(tempfile::tempdir().unwrap()),
    }
}

enum WorkDir {
    Kept(PathBuf),
    Temp(tempfile::TempDir),
}

impl WorkDir {
    fn path(&self) -> &Path {
        match self {
            WorkDir::Kept(p) => p,
            WorkDir::Temp(t) => t.path(),
        }
    }
}

fn write_tables(dir: &Path, tables: &events::Tables) {
    std::fs::create_dir_all(dir).unwrap();
    for (table, rows) in tables {
        let text: String = rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        std::fs::write(dir.join(format!("{table}.jsonl")), text).unwrap();
    }
}

fn run_engine(query: &Path, data: &Path, prelude: Option<&Path>) -> Run {
    let mut cmd = Command::new(common::validator("kql-run"));
    cmd.arg("--data").arg(data).arg("--now").arg(events::NOW);
    if let Some(p) = prelude {
        cmd.arg("--prelude").arg(p);
    }
    cmd.arg(query);
    let out = cmd.output().expect("kql-run starts");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match out.status.code() {
        Some(0) => {
            let stdout = String::from_utf8(out.stdout).expect("kql-run prints UTF-8");
            let rows: Result<Vec<Json>, String> = stdout.lines().map(parse_row).collect();
            match rows {
                Ok(rows) => Run::Rows(rows),
                Err(e) => Run::Failed(e),
            }
        }
        Some(3) => Run::Refused(refusal_message(&stderr)),
        code => Run::Failed(format!("exit {code:?}: {stderr}")),
    }
}

/// One output line. Python's json writes NaN and Infinity bare (`avgif` over no row);
/// they become strings so that the row still compares.
fn parse_row(line: &str) -> Result<Json, String> {
    serde_json::from_str(line).or_else(|_| {
        let fixed = line
            .replace(": NaN", ": \"NaN\"")
            .replace(": -Infinity", ": \"-Infinity\"")
            .replace(": Infinity", ": \"Infinity\"");
        serde_json::from_str(&fixed)
            .map_err(|e| format!("kql-run printed a line that is not JSON ({e}): {line}"))
    })
}

/// The engine's reason, from its JSON error line.
fn refusal_message(stderr: &str) -> String {
    serde_json::from_str::<Json>(stderr)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(String::from))
        .unwrap_or_else(|| stderr.to_string())
}

// ---------------------------------------------------------------------------------------
// Comparison

/// A row in a canonical text form: keys sorted, numbers without `.0`, arrays sorted
/// (`make_set` order is the engine's hash order, not part of the result).
fn canonical(v: &Json) -> String {
    match v {
        Json::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            Some(f) => format!("{f}"),
            None => n.to_string(),
        },
        Json::Array(items) => {
            let mut parts: Vec<String> = items.iter().map(canonical).collect();
            parts.sort();
            format!("[{}]", parts.join(","))
        }
        Json::Object(m) => {
            let sorted: BTreeMap<&String, String> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let parts: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", Json::String((*k).clone())))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

fn columns(rows: &[Json]) -> Vec<String> {
    rows.first()
        .and_then(Json::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Same rows (as a sequence when the query fixes their order, else as a multiset) and
/// the same columns in the same order.
fn compare(detection: &Detection, original: &[Json], converted: &[Json]) -> Result<(), String> {
    let (oc, cc) = (columns(original), columns(converted));
    if !original.is_empty() && !converted.is_empty() && oc != cc {
        return Err(format!(
            "columns differ:\n  original:  {oc:?}\n  converted: {cc:?}"
        ));
    }
    let o: Vec<String> = original.iter().map(canonical).collect();
    let c: Vec<String> = converted.iter().map(canonical).collect();
    let ordered = order_keys(&detection.query).filter(|keys| unique_on(original, keys));
    if let Some(keys) = &ordered
        && o != c
    {
        let (mut so, mut sc) = (o.clone(), c.clone());
        so.sort();
        sc.sort();
        if so == sc {
            return Err(format!(
                "same rows in a different order (sorted by {keys:?})"
            ));
        }
    }
    let (mut so, mut sc) = (o, c);
    so.sort();
    sc.sort();
    if so == sc {
        return Ok(());
    }
    let only_o = multiset_minus(&so, &sc);
    let only_c = multiset_minus(&sc, &so);
    let show = |rows: &[String]| -> String {
        let mut s: String = rows.iter().take(10).map(|r| format!("    {r}\n")).collect();
        if rows.len() > 10 {
            s.push_str(&format!("    ... {} more\n", rows.len() - 10));
        }
        s
    };
    Err(format!(
        "rows differ: {} original, {} converted\n  only in original ({}):\n{}  only in converted ({}):\n{}",
        so.len(),
        sc.len(),
        only_o.len(),
        show(&only_o),
        only_c.len(),
        show(&only_c)
    ))
}

fn multiset_minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut counts: BTreeMap<&String, i64> = BTreeMap::new();
    for x in b {
        *counts.entry(x).or_default() += 1;
    }
    a.iter()
        .filter(|x| {
            let c = counts.entry(x).or_default();
            *c -= 1;
            *c < 0
        })
        .cloned()
        .collect()
}

/// The columns a query's final order is sorted by, when it ends with `sort`/`top` (then
/// only stages that keep order). `None`: the order is the engine's.
fn order_keys(p: &Pipeline) -> Option<Vec<String>> {
    for stage in p.stages.iter().rev() {
        let keys: Vec<&Scalar> = match stage {
            Stage::Sort { keys, .. } => keys.iter().map(|k| &k.value).collect(),
            Stage::Top { key, .. } => vec![&key.value],
            Stage::Limit { .. }
            | Stage::Filter { .. }
            | Stage::Compute { .. }
            | Stage::Project { .. }
            | Stage::Drop { .. }
            | Stage::Keep { .. }
            | Stage::Rename { .. }
            | Stage::Reorder { .. } => continue,
            _ => return None,
        };
        return keys
            .into_iter()
            .map(|k| match k {
                Scalar::Field { path } if path.path.is_empty() => Some(path.column.clone()),
                _ => None,
            })
            .collect();
    }
    None
}

/// Whether every row has these columns and no two rows share their values (no ties).
fn unique_on(rows: &[Json], keys: &[String]) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    rows.iter().all(|r| {
        let values: Option<Vec<String>> = keys.iter().map(|k| r.get(k).map(canonical)).collect();
        values.is_some_and(|v| seen.insert(v))
    })
}

/// Why a case that returned the same rows does not test anything, if it does not.
fn weakness(detection: &Detection, original_rows: usize, input_rows: usize) -> Option<String> {
    if original_rows == 0 {
        return Some("the original returned no row: nothing is compared".into());
    }
    if filters_rows(&detection.query) == Some(true) && original_rows >= input_rows {
        return Some(format!(
            "a filter case kept every event ({original_rows} of {input_rows}): no event tests a miss"
        ));
    }
    None
}

/// For pipelines that only drop, reshape or order rows: whether they filter.
/// `None` for pipelines that aggregate, join, expand or combine.
fn filters_rows(p: &Pipeline) -> Option<bool> {
    let mut filters = match &p.source {
        Source::Table { window, .. } => window.is_some(),
        Source::Watchlist { .. } => false,
        Source::Union { inputs, .. } => {
            let parts: Option<Vec<bool>> = inputs.iter().map(filters_rows).collect();
            parts?.into_iter().any(|f| f)
        }
        _ => return None,
    };
    for stage in &p.stages {
        match stage {
            Stage::Filter { .. } | Stage::Limit { .. } | Stage::Top { .. } => filters = true,
            Stage::Parse { drop_unmatched, .. } => filters |= *drop_unmatched,
            Stage::Compute { .. }
            | Stage::Project { .. }
            | Stage::Drop { .. }
            | Stage::Keep { .. }
            | Stage::Rename { .. }
            | Stage::Reorder { .. }
            | Stage::Sort { .. } => {}
            _ => return None,
        }
    }
    Some(filters)
}

/// Rows in the tables a pipeline reads directly (its source, union inputs).
fn input_rows(p: &Pipeline, tables: &events::Tables) -> usize {
    match &p.source {
        Source::Table { name, .. } => tables.get(name).map_or(0, Vec::len),
        Source::Watchlist { .. } => tables.get("Watchlist").map_or(0, Vec::len),
        Source::Union { inputs, .. } => inputs.iter().map(|i| input_rows(i, tables)).sum(),
        _ => 0,
    }
}

fn print_summary(outcomes: &[Outcome]) {
    let width = outcomes
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "\n{:<width$}  {:>6}  {:>8}  {:>9}  verdict",
        "case", "events", "original", "converted"
    );
    let n = |v: Option<usize>| v.map_or("-".to_string(), |v| v.to_string());
    for o in outcomes {
        let note = match o.verdict {
            Verdict::RefusedOriginal | Verdict::RefusedConverted => {
                format!(": {}", o.detail.lines().next().unwrap_or(""))
            }
            _ => String::new(),
        };
        println!(
            "{:<width$}  {:>6}  {:>8}  {:>9}  {}{note}",
            o.name,
            o.input_rows,
            n(o.original_rows),
            n(o.converted_rows),
            o.verdict.label()
        );
    }
}

#[test]
fn event_times_round_trip() {
    let t = events::parse_time(events::NOW).unwrap();
    assert_eq!(events::format_time(t), "2026-01-01T12:00:00.000Z");
    assert_eq!(events::parse_time("2026-01-01"), Some(t - 12 * 3_600_000));
}

#[test]
fn regex_examples_match_simple_patterns() {
    assert_eq!(events::regex_example(r"^Sync_[a-z0-9]+$"), "Sync_a");
    assert_eq!(events::regex_example(r"(?i)foo(bar|baz)\d"), "foobar1");
}
