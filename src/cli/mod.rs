//! The command line: argument parsing (clap), walking inputs, printing results and
//! diagnostics, exit status. No stage logic lives here: it calls the library's stages.

mod batch;
mod inputs;
pub mod tree;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::diag::{self, Code};
use crate::load::{Rule, RuleFormat};
use crate::mapping::Mappings;
use crate::target::{Fidelity, Format, Target};

/// Exit status: every input processed.
pub const EXIT_OK: u8 = 0;
/// Exit status: some input could not be read, parsed or converted.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the command line itself is wrong.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "kqlc",
    version,
    about = "Translate Microsoft Sentinel KQL detections to Sigma, Splunk SPL and Elastic ES|QL",
    after_help = "Exit status:\n  \
        0  success (approximate translations are reported, not errors)\n  \
        1  some input could not be read, parsed or converted\n     \
        (convert --strict: also an approximate translation; check: outputs drifted)\n  \
        2  usage error"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse rule files and print each query's syntax tree (or what is wrong with it).
    Parse(ParseArgs),
    /// Print what each rule detects: its detection IR (sources, filters, aggregation,
    /// alert logic), with notes on what could not be carried into it.
    Ir(IrArgs),
    /// Translate rules to other languages.
    Convert(ConvertArgs),
    /// Convert and compare with committed outputs (`convert --out`); exit status 1 and a
    /// diff when they drifted. For CI.
    Check(CheckArgs),
    /// Explain a diagnostic code (`kqlc explain P001`), or list every code.
    Explain {
        /// The code to explain; every code when omitted.
        code: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct ParseArgs {
    /// Rule files (.yaml, .yml, .json, .kql) or directories to search recursively.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TreeFormat::Tree)]
    format: TreeFormat,
}

#[derive(Debug, clap::Args)]
struct IrArgs {
    /// Rule files (.yaml, .yml, .json, .kql) or directories to search recursively.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TreeFormat::Tree)]
    format: TreeFormat,
    /// Definitions of workspace functions the rules call (KQL `let` statements or
    /// `.create-or-alter function` commands).
    #[arg(long, value_name = "FILE")]
    functions: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ConvertArgs {
    /// Rule files (.yaml, .yml, .json, .kql) or directories to search recursively.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Target languages, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', required = true)]
    to: Vec<Target>,
    /// Write `DIR/<target>/<input's relative path>` instead of printing to stdout.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    options: ConvertOptions,
    /// Write a report of every rule and target (status, diagnostics): JSON, or Markdown
    /// when FILE ends in `.md`.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Exit with status 1 when a translation is approximated, not only when one fails.
    #[arg(long)]
    strict: bool,
    /// Print only the summary, not each rule's diagnostics.
    #[arg(long, short)]
    quiet: bool,
}

/// Options shared by `convert` and `check`.
#[derive(Debug, clap::Args)]
struct ConvertOptions {
    /// Definitions of workspace functions the rules call (KQL `let` statements or
    /// `.create-or-alter function` commands).
    #[arg(long, value_name = "FILE")]
    functions: Option<PathBuf>,
    /// Field and source mappings laid over the embedded ones (the format of
    /// targets/mappings.yaml).
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// Output forms, comma-separated: `savedsearch` writes SPL as a savedsearches.conf
    /// stanza (`.conf`), `elastic-rule` writes ES|QL as an Elastic detection rule
    /// (`.json`); add `query` to write the bare query as well. Sigma and KQL always
    /// write their query.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "query")]
    format: Vec<Format>,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Rule files or directories, as given to `convert`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The directory `convert --out` wrote (and that is committed).
    #[arg(long, value_name = "DIR", required = true)]
    against: PathBuf,
    /// Targets to check, comma-separated (default: those with a directory in the outputs).
    #[arg(long, value_enum, value_delimiter = ',')]
    to: Vec<Target>,
    #[command(flatten)]
    options: ConvertOptions,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TreeFormat {
    /// An indented tree, one node per line.
    Tree,
    /// JSON: an array with one object per rule.
    Json,
}

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    ExitCode::from(match cli.command {
        Command::Parse(args) => parse(&args),
        Command::Ir(args) => ir(&args),
        Command::Convert(args) => convert(&args),
        Command::Check(args) => check(&args),
        Command::Explain { code } => explain(code.as_deref()),
    })
}

fn explain(code: Option<&str>) -> u8 {
    let mut out = std::io::stdout().lock();
    match code {
        None => {
            for c in Code::ALL {
                let _ = writeln!(out, "{}  {}", c.as_str(), c.summary());
            }
            EXIT_OK
        }
        Some(id) => match Code::from_id(id) {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "{}: {}\n\n{}",
                    c.as_str(),
                    c.summary(),
                    c.explanation()
                );
                EXIT_OK
            }
            None => {
                eprintln!("error: unknown diagnostic code `{id}` (`kqlc explain` lists them)");
                EXIT_USAGE
            }
        },
    }
}

/// One rule (or one unreadable file) in `parse --format json`.
#[derive(Serialize)]
struct ParseReport {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ast: Option<serde_json::Value>,
    diagnostics: Vec<diag::Located>,
}

fn parse(args: &ParseArgs) -> u8 {
    let mut failed = false;
    let mut reports = vec![];
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for path in inputs::collect(&args.paths) {
        let outcome = inputs::load(&path);
        failed |= outcome.failed();
        for d in &outcome.diagnostics {
            let _ = write!(stderr, "{}", diag::render(d, &outcome.file));
        }
        if outcome.rules.is_empty() && outcome.failed() {
            reports.push(ParseReport {
                file: path.display().to_string(),
                rule: None,
                ok: false,
                ast: None,
                diagnostics: outcome
                    .diagnostics
                    .iter()
                    .map(|d| diag::Located::new(d, &outcome.file))
                    .collect(),
            });
        }
        for rule in &outcome.rules {
            let parsed = inputs::guarded(|| crate::parse_rule(rule));
            let ast = parsed
                .as_ref()
                .ok()
                .map(|q| serde_json::to_value(q).unwrap_or_default());
            if let Err(d) = &parsed {
                failed = true;
                let _ = write!(stderr, "{}", diag::render(d, &rule.file));
            }
            match args.format {
                TreeFormat::Tree => {
                    if let Some(ast) = &ast {
                        let _ = writeln!(stdout, "== {}", rule_title(rule));
                        let _ = write!(stdout, "{}", tree::render("query", ast));
                    }
                }
                TreeFormat::Json => reports.push(ParseReport {
                    file: rule.file.path.display().to_string(),
                    rule: rule.metadata.name.clone(),
                    ok: ast.is_some(),
                    ast,
                    diagnostics: parsed
                        .err()
                        .iter()
                        .map(|d| diag::Located::new(d, &rule.file))
                        .collect(),
                }),
            }
        }
    }
    if matches!(args.format, TreeFormat::Json) {
        let _ = serde_json::to_writer_pretty(&mut stdout, &reports);
        let _ = writeln!(stdout);
    }
    if failed { EXIT_FAILED } else { EXIT_OK }
}

/// Reads `--functions FILE`; on failure prints why and gives the exit status.
fn load_functions(path: Option<&PathBuf>) -> Result<crate::normalize::Functions, u8> {
    let Some(path) = path else {
        return Ok(crate::normalize::Functions::none());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "error[{}]: cannot read functions file `{}`: {e}",
                Code::ReadFailed.as_str(),
                path.display()
            );
            return Err(EXIT_FAILED);
        }
    };
    crate::normalize::Functions::parse(&text).map_err(|e| {
        let file = crate::load::SourceFile {
            path: path.clone(),
            text: text.as_str().into(),
        };
        let rule = crate::load::Rule {
            file: file.clone(),
            format: RuleFormat::Kql,
            metadata: Default::default(),
            query: text.clone(),
            query_map: crate::load::QueryMap::identity(text.len()),
        };
        eprint!(
            "{}",
            diag::render(&diag::Diagnostic::from_syntax(&e, &rule), &file)
        );
        EXIT_FAILED
    })
}

/// One rule in `ir --format json`.
#[derive(Serialize)]
struct IrReport {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ir: Option<serde_json::Value>,
    diagnostics: Vec<diag::Located>,
}

fn ir(args: &IrArgs) -> u8 {
    let functions = match load_functions(args.functions.as_ref()) {
        Ok(f) => f,
        Err(status) => return status,
    };
    let mut failed = false;
    let mut reports = vec![];
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for path in inputs::collect(&args.paths) {
        let outcome = inputs::load(&path);
        failed |= outcome.failed();
        for d in &outcome.diagnostics {
            let _ = write!(stderr, "{}", diag::render(d, &outcome.file));
        }
        for rule in &outcome.rules {
            let result = inputs::guarded(|| crate::normalize_rule(rule, &functions));
            let (detection, diagnostics) = match result {
                Ok((detection, notes)) => (Some(detection), notes),
                Err(d) => {
                    failed = true;
                    (None, vec![d])
                }
            };
            for d in &diagnostics {
                let _ = write!(stderr, "{}", diag::render(d, &rule.file));
            }
            let value = detection
                .as_ref()
                .map(|d| serde_json::to_value(d).unwrap_or_default());
            match args.format {
                TreeFormat::Tree => {
                    if let Some(value) = &value {
                        let _ = writeln!(stdout, "== {}", rule_title(rule));
                        let _ = write!(stdout, "{}", tree::render("detection", value));
                    }
                }
                TreeFormat::Json => reports.push(IrReport {
                    file: rule.file.path.display().to_string(),
                    rule: rule.metadata.name.clone(),
                    ok: value.is_some(),
                    ir: value,
                    diagnostics: diagnostics
                        .iter()
                        .map(|d| diag::Located::new(d, &rule.file))
                        .collect(),
                }),
            }
        }
    }
    if matches!(args.format, TreeFormat::Json) {
        let _ = serde_json::to_writer_pretty(&mut stdout, &reports);
        let _ = writeln!(stdout);
    }
    if failed { EXIT_FAILED } else { EXIT_OK }
}

/// The embedded mappings, with `--mapping FILE` laid over them.
fn load_mappings(path: Option<&PathBuf>) -> Result<std::borrow::Cow<'static, Mappings>, u8> {
    let Some(path) = path else {
        return Ok(std::borrow::Cow::Borrowed(Mappings::embedded()));
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!(
            "error[{}]: cannot read mapping file `{}`: {e}",
            Code::ReadFailed.as_str(),
            path.display()
        );
        EXIT_FAILED
    })?;
    Mappings::with_overrides(&text)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| {
            eprintln!(
                "error[{}]: invalid mapping file `{}`: {e}",
                Code::YamlSyntax.as_str(),
                path.display()
            );
            EXIT_FAILED
        })
}

/// Runs a conversion job with the shared options; `None` (after printing why) when an
/// option file cannot be read.
fn run_job(
    paths: &[PathBuf],
    targets: &[Target],
    options: &ConvertOptions,
    progress: bool,
) -> Result<Vec<batch::FileResult>, u8> {
    let functions = load_functions(options.functions.as_ref())?;
    let mappings = load_mappings(options.mapping.as_ref())?;
    let job = batch::Job {
        paths,
        targets,
        formats: &options.format,
        functions: &functions,
        mappings: &mappings,
    };
    Ok(with_big_stack(|| batch::run(&job, progress)))
}

/// Runs `f` on rayon threads with room for deeply nested (but accepted) queries.
fn with_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new().stack_size(64 << 20).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

fn sorted_targets(targets: &[Target]) -> Vec<Target> {
    let mut t = targets.to_vec();
    t.sort();
    t.dedup();
    t
}

fn convert(args: &ConvertArgs) -> u8 {
    let targets = sorted_targets(&args.to);
    let results = match run_job(&args.paths, &targets, &args.options, true) {
        Ok(r) => r,
        Err(status) => return status,
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let mut failed = false;
    let mut approximated = false;
    let mut rule_count = 0;
    let mut outputs = vec![];
    for file in &results {
        failed |= file.failed();
        if !args.quiet {
            for d in &file.load_diagnostics {
                let _ = write!(stderr, "{}", diag::render(d, &file.file));
            }
        }
        for rule in &file.rules {
            rule_count += 1;
            if !args.quiet {
                for d in rule.error.iter().chain(&rule.notes) {
                    let _ = write!(stderr, "{}", diag::render(d, &rule.rule.file));
                }
            }
            for t in rule.per_target() {
                approximated |= t.fidelity == Fidelity::Approximate;
                if !args.quiet {
                    // The IR's notes were printed once above; here what the target added.
                    for d in t.diagnostics.iter().skip(rule.notes.len()) {
                        let _ = write!(stderr, "{}", diag::render(d, &rule.rule.file));
                    }
                }
            }
            for (format, t) in &rule.translations {
                if t.fidelity == Fidelity::Failed && t.text.is_empty() {
                    continue;
                }
                match &args.out {
                    None => {
                        let _ = write!(stdout, "{}", t.text);
                    }
                    Some(dir) => {
                        let path =
                            batch::output_path(dir, t.target, *format, &file.relative, rule.index);
                        outputs.push((path, t.text.as_str()));
                    }
                }
            }
        }
    }
    // Two inputs with the same relative path (`kqlc convert a/ b/`) map to one output:
    // the later one is written, as the inputs are ordered, and the clash is reported.
    let mut last = std::collections::HashMap::new();
    for (i, (path, _)) in outputs.iter().enumerate() {
        if last.insert(path.as_path(), i).is_some() {
            failed = true;
            let _ = writeln!(
                stderr,
                "error[{}]: two inputs write `{}`; the later one is kept",
                Code::WriteFailed.as_str(),
                path.display()
            );
        }
    }
    let outputs: Vec<_> = outputs
        .iter()
        .enumerate()
        .filter(|(i, (path, _))| last[path.as_path()] == *i)
        .map(|(_, o)| o.clone())
        .collect();
    for (path, e) in write_files(&outputs) {
        failed = true;
        let _ = writeln!(
            stderr,
            "error[{}]: cannot write `{}`: {e}",
            Code::WriteFailed.as_str(),
            path.display()
        );
    }
    let tallies = batch::tally(&results, &targets);
    if args.out.is_some() || rule_count > 1 || args.quiet {
        let _ = write!(stderr, "\n{}", batch::summary_table(&tallies));
    }
    if let Some(path) = &args.report {
        let text = if path.extension().is_some_and(|e| e == "md") {
            batch::report_markdown(&results, &targets)
        } else {
            batch::report_json(&results, &targets)
        };
        if let Err(e) = write_file(path, &text) {
            let _ = writeln!(
                stderr,
                "error[{}]: cannot write report `{}`: {e}",
                Code::WriteFailed.as_str(),
                path.display()
            );
            failed = true;
        }
    }
    if failed || (args.strict && approximated) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

fn check(args: &CheckArgs) -> u8 {
    let targets = if args.to.is_empty() {
        [Target::Sigma, Target::Spl, Target::Esql, Target::Kql]
            .into_iter()
            .filter(|t| args.against.join(t.name()).is_dir())
            .collect()
    } else {
        sorted_targets(&args.to)
    };
    if targets.is_empty() {
        eprintln!(
            "error: `{}` holds no output directory (sigma, spl, esql, kql); run `kqlc convert --out` first",
            args.against.display()
        );
        return EXIT_USAGE;
    }
    let results = match run_job(&args.paths, &targets, &args.options, true) {
        Ok(r) => r,
        Err(status) => return status,
    };
    let mut stdout = std::io::stdout().lock();
    let mut produced = std::collections::BTreeSet::new();
    let mut drifted = 0;
    let mut failed = false;
    for file in &results {
        // A translation that failed is an outcome the committed outputs record (its text
        // says why, or there is no file); an input that cannot be read or parsed is not.
        failed |= file.unreadable();
        for rule in &file.rules {
            for (format, t) in &rule.translations {
                // `convert` writes nothing for these; the failure itself is reported.
                if t.fidelity == Fidelity::Failed && t.text.is_empty() {
                    continue;
                }
                let path = batch::output_path(
                    &args.against,
                    t.target,
                    *format,
                    &file.relative,
                    rule.index,
                );
                produced.insert(path.clone());
                let committed = std::fs::read_to_string(&path).ok();
                if committed.as_deref() == Some(t.text.as_str()) {
                    continue;
                }
                drifted += 1;
                let old = committed.as_deref().unwrap_or("");
                let label = if committed.is_some() {
                    "changed"
                } else {
                    "missing"
                };
                let _ = writeln!(stdout, "{label}: {}", path.display());
                let diff = similar::TextDiff::from_lines(old, t.text.as_str());
                let _ = write!(
                    stdout,
                    "{}",
                    diff.unified_diff().context_radius(2).header(
                        &format!("{} (committed)", path.display()),
                        &format!("{} (now)", path.display())
                    )
                );
            }
        }
    }
    // Committed outputs that nothing produces any more.
    for target in &targets {
        for entry in walkdir::WalkDir::new(args.against.join(target.name()))
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
        {
            if !produced.contains(entry.path()) {
                drifted += 1;
                let _ = writeln!(
                    stdout,
                    "extra: {} (no rule produces it)",
                    entry.path().display()
                );
            }
        }
    }
    let rules: usize = results.iter().map(|f| f.rules.len()).sum();
    if drifted == 0 && !failed {
        eprintln!(
            "check: {rules} rules, {} targets: outputs match",
            targets.len()
        );
        EXIT_OK
    } else {
        if drifted > 0 {
            eprintln!(
                "check: {drifted} outputs drifted from {}",
                args.against.display()
            );
        }
        let unreadable = results.iter().filter(|f| f.unreadable()).count();
        if failed {
            eprintln!("check: {unreadable} input files could not be read or parsed");
        }
        EXIT_FAILED
    }
}

/// Writes the outputs of a batch, in parallel: on a disk, creating thousands of files
/// costs more than converting the rules. Each directory is created once. Returns the
/// files that could not be written, in input order.
fn write_files<'a>(outputs: &'a [(PathBuf, &str)]) -> Vec<(&'a Path, std::io::Error)> {
    use rayon::prelude::*;
    let dirs: std::collections::BTreeSet<&Path> =
        outputs.iter().filter_map(|(p, _)| p.parent()).collect();
    let mut dir_errors = std::collections::BTreeMap::new();
    for dir in dirs {
        if let Err(e) = std::fs::create_dir_all(dir) {
            dir_errors.insert(dir, e.to_string());
        }
    }
    outputs
        .par_iter()
        .filter_map(|(path, text)| {
            let result = match path.parent().and_then(|d| dir_errors.get(d)) {
                Some(e) => Err(std::io::Error::other(e.clone())),
                // An unchanged output is left alone: cheaper than truncating and
                // rewriting it, and its modification time stays meaningful.
                None if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) => Ok(()),
                None => std::fs::write(path, text),
            };
            result.err().map(|e| (path.as_path(), e))
        })
        .collect()
}

fn write_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

fn rule_title(rule: &Rule) -> String {
    let path = rule.file.path.display();
    match (&rule.format, &rule.metadata.name) {
        (RuleFormat::ArmTemplate { index }, Some(name)) => format!("{path} [{index}] {name}"),
        (_, Some(name)) => format!("{path}: {name}"),
        _ => path.to_string(),
    }
}
