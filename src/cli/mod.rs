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

fn rule_title(rule: &Rule) -> String {
    let path = rule.file.path.display();
    match (&rule.format, &rule.metadata.name) {
        (RuleFormat::ArmTemplate { index }, Some(name)) => format!("{path} [{index}] {name}"),
        (_, Some(name)) => format!("{path}: {name}"),
        _ => path.to_string(),
    }
}
