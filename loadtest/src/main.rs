//! rampart-loadtest CLI. Example (flood from 127.0.0.2 while legit clients
//! on 127.0.0.10-11 send 200 req/s):
//!   rampart-loadtest --target http://127.0.0.1:8080 --scenario flood \
//!     --attack-sources 127.0.0.2 --attack-rate 1000 --legit-rate 200 --duration 20 --json out.json
#![forbid(unsafe_code)]

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rampart_loadtest::corpus::{self, LabelFilter, Placement};
use rampart_loadtest::http::Request;
use rampart_loadtest::reload::ChangePlan;
use rampart_loadtest::runner::Live;
use rampart_loadtest::target::{default_source, parse_sources};
use rampart_loadtest::{mix, run, LoadMode, Plan, Scenario, Target};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "rampart-loadtest",
    version,
    about = "Scenario load generator for the Rampart edge (loopback targets only)"
)]
struct Args {
    /// Target URL: http://127.0.0.1:PORT or https://localhost:PORT (loopback only).
    #[arg(long)]
    target: String,
    #[arg(long, value_enum, default_value = "benign")]
    scenario: Scenario,
    /// Run length in seconds (hard limit, max 3600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Most requests per class (legit, attack).
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
    /// Per-request timeout, milliseconds.
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u64,
    /// Keep-alive connections per source address and class.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
    /// Legit open-loop rate, requests/s over all legit sources.
    #[arg(long, default_value_t = 200.0)]
    legit_rate: f64,
    /// Closed loop with this many legit clients instead of the open loop.
    #[arg(long)]
    closed_loop: Option<usize>,
    /// Legit source addresses (comma-separated loopback addresses).
    #[arg(long, default_value = "127.0.0.10,127.0.0.11")]
    legit_sources: String,
    /// Legit requests from a corpus (benign records) instead of the built-in mix.
    #[arg(long)]
    legit_corpus: Option<PathBuf>,
    /// Attack source addresses (comma-separated loopback addresses).
    #[arg(long, default_value = "127.0.0.2")]
    attack_sources: String,
    /// Requests/s per attack source (flood, attack).
    #[arg(long, default_value_t = 1000.0)]
    attack_rate: f64,
    /// Corpus (request or value JSONL, .gz ok) replayed by the `attack` scenario.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Which corpus records the attack replays.
    #[arg(long, value_enum, default_value = "attack")]
    corpus_label: LabelFilter,
    /// Where value-shaped corpus records go (query arg, form or JSON body).
    #[arg(long, value_enum, default_value = "query")]
    value_placement: Placement,
    /// Most corpus records loaded.
    #[arg(long, default_value_t = 100_000)]
    corpus_limit: usize,
    /// Path the flood requests.
    #[arg(long, default_value = "/")]
    flood_path: String,
    /// Slowloris connections.
    #[arg(long, default_value_t = 200)]
    slowloris_connections: usize,
    /// Seconds between two header lines of a slowloris connection.
    #[arg(long, default_value_t = 1.0)]
    slowloris_interval: f64,
    /// reload: the edge's process id (gets SIGHUP per reload, SIGTERM at the end).
    #[arg(long)]
    reload_pid: Option<u32>,
    /// reload: the config file the edge runs from (each variant is copied over it).
    #[arg(long)]
    reload_config: Option<PathBuf>,
    /// reload: config variants used in turn (comma-separated files).
    #[arg(long, value_delimiter = ',')]
    reload_variants: Vec<PathBuf>,
    /// reload: how many reloads.
    #[arg(long, default_value_t = 20)]
    reloads: u32,
    /// reload: the edge's admin listener (ip:port), to confirm each reload.
    #[arg(long, default_value = "127.0.0.1:9901")]
    reload_admin: std::net::SocketAddr,
    /// reload: do not send SIGTERM after the last reload.
    #[arg(long)]
    no_sigterm: bool,
    /// CA (PEM) for https targets.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// TLS server name and Host header (default: the URL host).
    #[arg(long)]
    server_name: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn secs(v: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| format!("--{what} must be a positive number of seconds"))
}

fn plan(args: &Args) -> Result<Plan, String> {
    let target = Target::parse(
        &args.target,
        args.ca.as_deref(),
        args.server_name.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let mut legit_sources =
        parse_sources(&args.legit_sources, &target).map_err(|e| e.to_string())?;
    if legit_sources.is_empty() {
        legit_sources.push(default_source(&target));
    }
    let attack_sources = parse_sources(&args.attack_sources, &target).map_err(|e| e.to_string())?;
    let legit_requests = match &args.legit_corpus {
        Some(path) => {
            corpus::load(path, LabelFilter::Benign, args.corpus_limit)
                .map_err(|e| e.to_string())?
                .requests
        }
        None => mix::benign_mix(),
    };
    let attack_requests = match args.scenario {
        Scenario::Attack => {
            let path = args
                .corpus
                .as_ref()
                .ok_or("the attack scenario needs --corpus FILE")?;
            let c = corpus::load(path, args.corpus_label, args.corpus_limit)
                .map_err(|e| e.to_string())?;
            eprintln!(
                "corpus: {} requests loaded, {} records skipped",
                c.requests.len(),
                c.skipped
            );
            c.requests
        }
        _ => vec![Request::get(&args.flood_path)],
    };
    let duration = secs(args.duration, "duration")?;
    let change = match args.scenario {
        Scenario::Reload => {
            let pid = args
                .reload_pid
                .ok_or("the reload scenario needs --reload-pid")?;
            let config_path = args
                .reload_config
                .clone()
                .ok_or("the reload scenario needs --reload-config FILE")?;
            // Spread the reloads over the run, leaving a tenth (at least 1 s) for the drain.
            let tail = (duration / 10).max(Duration::from_secs(1));
            let interval = duration.saturating_sub(tail) / (args.reloads.max(1) + 1);
            Some(ChangePlan {
                pid,
                config_path,
                variants: args.reload_variants.clone(),
                reloads: args.reloads,
                interval,
                admin: args.reload_admin,
                sigterm: !args.no_sigterm,
            })
        }
        _ => None,
    };
    Ok(Plan {
        target,
        scenario: args.scenario,
        duration,
        max_requests: args.max_requests,
        request_timeout: Duration::from_millis(args.timeout_ms.max(1)),
        max_connections: args.max_connections,
        legit_sources,
        legit_mode: match args.closed_loop {
            Some(concurrency) => LoadMode::Closed { concurrency },
            None => LoadMode::Open {
                rate: args.legit_rate,
            },
        },
        legit_requests,
        attack_sources,
        attack_rate: args.attack_rate,
        attack_requests,
        slowloris_connections: args.slowloris_connections,
        slowloris_interval: secs(args.slowloris_interval, "slowloris-interval")?,
        change,
    })
}

fn progress(
    live: &Live,
    duration: Duration,
    quiet: bool,
) -> Option<(ProgressBar, tokio::task::JoinHandle<()>)> {
    if quiet {
        return None;
    }
    let bar = ProgressBar::new(duration.as_millis() as u64);
    if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    let (legit, attack, slow) = (
        live.legit.clone(),
        live.attack.clone(),
        live.slowloris.clone(),
    );
    let b = bar.clone();
    let ticker = tokio::spawn(async move {
        let start = std::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            b.set_position(start.elapsed().as_millis() as u64);
            b.set_message(format!(
                "legit {} ok / {} fail | attack {} allowed / {} blocked | slowloris held {}",
                legit.ok.load(Ordering::Relaxed),
                legit.not_ok.load(Ordering::Relaxed),
                attack.ok.load(Ordering::Relaxed),
                attack.not_ok.load(Ordering::Relaxed),
                slow.held.load(Ordering::Relaxed),
            ));
        }
    });
    Some((bar, ticker))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rampart-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    let live = Live::default();
    let bar = progress(&live, plan.duration, args.quiet);
    let report = run(plan, &live).await;
    if let Some((bar, ticker)) = bar {
        ticker.abort();
        bar.finish_and_clear();
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rampart-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("rampart-loadtest: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
