#![forbid(unsafe_code)]
//! `rampart-waf-lab`: check one request, list the rules, or measure them on corpora.
//!
//! The lab of the WAF library: corpus readers, CRS test loader and the eval report live here so
//! the edge links none of them (clap, flate2, serde_yaml).

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rampart-waf-lab",
    version,
    about = "Rampart WAF engine: check requests, evaluate rules on corpora"
)]
struct Args {
    /// Load rules from this directory instead of the built-in set.
    #[arg(long, global = true)]
    rules: Option<PathBuf>,
    /// Policy TOML (paranoia, threshold, exclusions, limits).
    #[arg(long, global = true)]
    policy: Option<PathBuf>,
    /// Override the policy's paranoia level (1-4).
    #[arg(long, global = true)]
    paranoia: Option<u8>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the verdict for one request (JSON: method, path, query, headers, body).
    Check { request: PathBuf },
    /// Run corpora (request / value JSONL, optionally .gz; CRS go-ftw YAML dirs) and report.
    Eval(cli::eval::EvalArgs),
    /// List the loaded rules.
    Rules,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rampart-waf-lab: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let rules = match &args.rules {
        Some(dir) => rampart_waf::RuleSet::load_dir(dir),
        None => rampart_waf::RuleSet::builtin(),
    }
    .map_err(|e| e.to_string())?;
    let mut policy = match &args.policy {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            toml::from_str::<rampart_waf::Policy>(&text)
                .map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => rampart_waf::Policy::default(),
    };
    if let Some(p) = args.paranoia {
        policy.paranoia = p;
    }
    policy.validate().map_err(|e| e.to_string())?;
    match args.cmd {
        Cmd::Check { request } => cli::check::run(&rules, &policy, &request),
        Cmd::Eval(e) => cli::eval::run(&rules, &policy, &e),
        Cmd::Rules => {
            for (id, fam, pl, score, msg) in rules.rules() {
                println!("{id}\t{fam}\tPL{pl}\t{score}\t{msg}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
