//! The differential request-smuggling probe against proxies on loopback: each `--target`
//! forwards to the recording upstream this tool runs on `--upstream`; every case of
//! `rampart_loadtest::probe::cases` goes through each target and is judged by what reached the
//! upstream. Prints the summary and per-class tables as Markdown.
//!   smuggle-probe --upstream 127.0.0.1:44080 --target nginx=127.0.0.1:44081 \
//!     --target haproxy=127.0.0.1:44082 --markdown probe.md
#![forbid(unsafe_code)]

use clap::Parser;
use rampart_loadtest::probe::{cases, markdown, recorder::Recorder, run_case, Baseline};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "smuggle-probe",
    about = "Differential request-smuggling probe (loopback only)"
)]
struct Args {
    /// Where the recording upstream listens (the targets' upstream), a loopback address.
    #[arg(long)]
    upstream: SocketAddr,
    /// A proxy to probe, `NAME=127.0.0.1:PORT` (repeatable).
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// The request path of every case.
    #[arg(long, default_value = "/probe")]
    path: String,
    /// How long the client and the recorder wait for a byte, milliseconds.
    #[arg(long, default_value_t = 3000)]
    wait_ms: u64,
    /// Write the Markdown tables here (else stdout).
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
}

fn parse_target(text: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("--target {text}: expected NAME=ADDRESS"))?;
    let addr: SocketAddr = addr.parse().map_err(|e| format!("--target {text}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--target {text}: only loopback targets are allowed"
        ));
    }
    Ok((name.to_string(), addr))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let targets: Result<Vec<_>, String> = args.targets.iter().map(|t| parse_target(t)).collect();
    let targets = match targets {
        Ok(t) => t,
        Err(e) => {
            eprintln!("smuggle-probe: {e}");
            return ExitCode::from(2);
        }
    };
    if !args.upstream.ip().is_loopback() {
        eprintln!("smuggle-probe: --upstream must be a loopback address");
        return ExitCode::from(2);
    }
    let rec = match Recorder::start(args.upstream).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("smuggle-probe: --upstream {}: {e}", args.upstream);
            return ExitCode::from(1);
        }
    };
    let wait = Duration::from_millis(args.wait_ms);
    let all = cases(&args.path);
    let mut runs = Vec::new();
    for (name, addr) in &targets {
        let base = Baseline::learn(*addr, &rec, &args.path, wait).await;
        eprintln!("{name}: adds {:?}", base.added);
        let mut outcomes = Vec::new();
        for case in &all {
            let o = run_case(*addr, &rec, case, &base, wait).await;
            if o.verdict.is_defect() {
                eprintln!(
                    "{name} / {} / {}: {}",
                    case.class,
                    case.name,
                    o.verdict.short()
                );
            }
            outcomes.push(o);
        }
        runs.push((name.clone(), outcomes));
    }
    let text = markdown(&all, &runs);
    match &args.markdown {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("smuggle-probe: {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}
