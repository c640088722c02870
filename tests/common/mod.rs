//! Shared test helpers: where the shared material and the validators are.
#![allow(dead_code)]

pub mod events;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the project (read-only material). Relative, as tests run in the
/// crate directory: paths that end up in outputs and snapshots stay the same on every
/// machine.
pub fn shared_dir() -> PathBuf {
    PathBuf::from("../shared")
}

pub fn corpus_dir() -> PathBuf {
    shared_dir().join("corpus")
}

pub fn seeds_dir() -> PathBuf {
    shared_dir().join("seeds/rules")
}

/// The installed validators: `$KQLC_VALIDATORS`, or `.validators/` in the project
/// (what `scripts/install-validators` makes). Tests that need them fail loudly when
/// they are missing rather than skipping.
pub fn validator(name: &str) -> PathBuf {
    let dir = std::env::var_os("KQLC_VALIDATORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join(".validators"));
    let bin = dir.join("bin").join(name);
    assert!(
        bin.exists() && dir.join(".venv-validators").exists(),
        "validator {} is not installed; run scripts/install-validators (or set KQLC_VALIDATORS)",
        bin.display()
    );
    bin
}

/// Runs a validator over JSONL `{"id", "query"}` lines on stdin; returns its JSON lines.
pub fn run_validator(
    name: &str,
    args: &[&str],
    items: &[(String, String)],
) -> Vec<serde_json::Value> {
    let mut child = Command::new(validator(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("validator starts");
    let mut stdin = child.stdin.take().unwrap();
    let input: String = items
        .iter()
        .map(|(id, query)| serde_json::json!({"id": id, "query": query}).to_string() + "\n")
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("validator runs");
    writer.join().unwrap().expect("validator reads its input");
    let stdout = String::from_utf8(output.stdout).expect("validator prints UTF-8");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("validator prints JSON lines"))
        .collect();
    assert_eq!(
        lines.len(),
        items.len(),
        "validator {name} answered {} of {} inputs; stderr: {}",
        lines.len(),
        items.len(),
        String::from_utf8_lossy(&output.stderr)
    );
    lines
}

/// Every query in the corpus: each `.kql` file, and every string under a `query` key in
/// each YAML file (Sentinel rules have one at the top; msticpy files hold many).
pub fn corpus_queries() -> Vec<(String, String)> {
    let root = corpus_dir();
    let mut out = vec![];
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    for path in files {
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        match path.extension().and_then(|e| e.to_str()) {
            Some("kql") => {
                let bytes = std::fs::read(&path).unwrap();
                out.push((rel, String::from_utf8_lossy(&bytes).into_owned()));
            }
            Some("yaml" | "yml") => {
                let text = std::fs::read_to_string(&path).unwrap();
                let text = text.trim_start_matches('\u{feff}');
                let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
                    continue; // one corpus file is malformed YAML; the loader tests cover it
                };
                let mut found = vec![];
                collect_queries(&value, "", &mut found);
                let many = found.len() > 1;
                for (key, query) in found {
                    let id = if many {
                        format!("{rel}#{key}")
                    } else {
                        rel.clone()
                    };
                    out.push((id, query));
                }
            }
            _ => {}
        }
    }
    out
}

fn collect_queries(value: &serde_yaml::Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (k, v) in map {
                let key = k.as_str().unwrap_or("?");
                let here = format!("{path}/{key}");
                match (key, v) {
                    ("query", serde_yaml::Value::String(q)) => out.push((here, q.clone())),
                    _ => collect_queries(v, &here, out),
                }
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_queries(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
