//! The command line: argument parsing (clap), walking inputs, printing results and
//! diagnostics, exit status. No stage logic lives here: it calls the library's stages.

mod inputs;
pub mod tree;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::diag::{self, Code};
use crate::load::{Rule, RuleFormat};
use crate::mapping::Mappings;
use crate::target::{Context, Fidelity, Format, Target};

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
    after_help = "Exit status: 0 success, 1 some input could not be read or parsed, 2 usage error."
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
    /// Definitions of workspace functions the rules call (KQL `let` statements or
    /// `.create-or-alter function` commands).
    #[arg(long, value_name = "FILE")]
    functions: Option<PathBuf>,
    /// Field and source mappings laid over the embedded ones (the format of
    /// targets/mappings.yaml).
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// Output forms, comma-separated: `savedsearch` writes SPL as a savedsearches.conf
    /// stanza, `elastic-rule` writes ES|QL as an Elastic detection rule; other targets
    /// write their query.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "query")]
    format: Vec<Format>,
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

/// The form a target is written in, given the `--format` list.
fn format_for(target: Target, formats: &[Format]) -> Format {
    let wanted = match target {
        Target::Spl => Format::Savedsearch,
        Target::Esql => Format::ElasticRule,
        _ => return Format::Query,
    };
    if formats.contains(&wanted) {
        wanted
    } else {
        Format::Query
    }
}

fn convert(args: &ConvertArgs) -> u8 {
    let functions = match load_functions(args.functions.as_ref()) {
        Ok(f) => f,
        Err(status) => return status,
    };
    let mappings = match load_mappings(args.mapping.as_ref()) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let mut targets = args.to.clone();
    targets.sort();
    targets.dedup();
    let mut failed = false;
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for (path, relative) in inputs::collect_with_relative(&args.paths) {
        let outcome = inputs::load(&path);
        failed |= outcome.failed();
        for d in &outcome.diagnostics {
            let _ = write!(stderr, "{}", diag::render(d, &outcome.file));
        }
        let several = outcome.rules.len() > 1;
        for (index, rule) in outcome.rules.iter().enumerate() {
            let normalized = inputs::guarded(|| crate::normalize_rule(rule, &functions));
            let (detection, notes) = match normalized {
                Ok(ok) => ok,
                Err(d) => {
                    failed = true;
                    let _ = write!(stderr, "{}", diag::render(&d, &rule.file));
                    continue;
                }
            };
            for d in &notes {
                let _ = write!(stderr, "{}", diag::render(d, &rule.file));
            }
            for &target in &targets {
                let format = format_for(target, &args.format);
                let cx = Context {
                    rule,
                    detection: &detection,
                    notes: &notes,
                    mappings: &mappings,
                    format,
                };
                let translation = inputs::guarded(|| Ok(crate::target::translate(target, &cx)));
                let translation = match translation {
                    Ok(t) => t,
                    Err(d) => {
                        failed = true;
                        let _ = write!(stderr, "{}", diag::render(&d, &rule.file));
                        continue;
                    }
                };
                // The IR's notes were printed once above; print only what the target added.
                for d in translation.diagnostics.iter().skip(notes.len()) {
                    let _ = write!(stderr, "{}", diag::render(d, &rule.file));
                }
                failed |= translation.fidelity == Fidelity::Failed;
                match &args.out {
                    None => {
                        let _ = write!(stdout, "{}", translation.text);
                    }
                    Some(dir) => {
                        let file =
                            output_path(dir, target, format, &relative, several.then_some(index));
                        if let Err(e) = write_file(&file, &translation.text) {
                            failed = true;
                            let _ = writeln!(
                                stderr,
                                "error[{}]: cannot write `{}`: {e}",
                                Code::WriteFailed.as_str(),
                                file.display()
                            );
                        }
                    }
                }
            }
        }
    }
    if failed { EXIT_FAILED } else { EXIT_OK }
}

/// `DIR/<target>/<relative path>.<ext>`; a file holding several rules gets one output
/// per rule, numbered.
fn output_path(
    dir: &std::path::Path,
    target: Target,
    form: Format,
    relative: &std::path::Path,
    index: Option<usize>,
) -> PathBuf {
    let mut path = dir.join(target.name()).join(relative);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match index {
        Some(i) => format!("{stem}.{i}.{}", target.extension(form)),
        None => format!("{stem}.{}", target.extension(form)),
    };
    path.set_file_name(name);
    path
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
