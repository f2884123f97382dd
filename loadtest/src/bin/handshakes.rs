//! New TLS connections per second against a server on loopback, and the server's CPU per
//! connection: `full` handshakes (no resumption), `resumed` ones (shared client session
//! store; fails when the resumed fraction is below `--min-resumed`), or `keepalive` requests
//! (the per-request baseline). One `GET` per connection, read to its end. Prints one
//! `HANDSHAKES key=value ...` line; exit 1 when the run fails its mode's check, 2 on a set-up
//! error. `benches/edge/handshakes.sh` runs it against the edge and the peers side by side.
//!
//! ```text
//! handshakes --addr 127.0.0.1:18443 --ca ca.crt --name localhost --mode full \
//!     --conns 16 --duration 10 --server-pid PID [--server-pid PID2] [--tls12]
//! ```
#![forbid(unsafe_code)]

use clap::Parser;
use rampart_loadtest::handshake::{run, Mode, Options};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "handshakes",
    about = "New TLS connections per second (loopback only)"
)]
struct Args {
    /// The server's TLS address (loopback).
    #[arg(long)]
    addr: SocketAddr,
    /// The CA (PEM) the server's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    /// SNI and the name the certificate is verified for.
    #[arg(long, default_value = "localhost")]
    name: String,
    /// The request's Host header (default: --name).
    #[arg(long)]
    host: Option<String>,
    /// The request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// full | resumed | keepalive.
    #[arg(long, default_value = "full")]
    mode: Mode,
    /// TLS 1.2 instead of TLS 1.3.
    #[arg(long)]
    tls12: bool,
    /// Offer only this cipher suite (repeatable; rustls names, e.g. TLS13_AES_128_GCM_SHA256).
    #[arg(long = "suite")]
    suites: Vec<String>,
    /// Concurrent loops.
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Resumed mode: distinct clients (session stores) the loops are spread over.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Unmeasured seconds first.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measured seconds (the window ends then or at --count, whichever comes first).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Measured connections (requests in keepalive mode) after which the window ends.
    #[arg(long)]
    count: Option<u64>,
    /// A server process whose CPU (utime + stime) is counted over the window (repeatable).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Seconds each step of a connection (connect, handshake, answer) may take.
    #[arg(long, default_value_t = 5.0)]
    step_timeout: f64,
    /// Resumed mode: the least fraction of resumed handshakes accepted.
    #[arg(long, default_value_t = 0.99)]
    min_resumed: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.min_resumed) {
        return fail(&format!(
            "--min-resumed {} is not in [0, 1]",
            args.min_resumed
        ));
    }
    let roots = match CertificateDer::pem_file_iter(&args.ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
    {
        Ok(r) if !r.is_empty() => r,
        Ok(_) => return fail(&format!("{}: no certificate", args.ca.display())),
        Err(e) => return fail(&format!("{}: {e}", args.ca.display())),
    };
    let server_name = match ServerName::try_from(args.name.clone()) {
        Ok(n) => n,
        Err(e) => return fail(&format!("--name {}: {e}", args.name)),
    };
    let secs = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s).map_err(|e| format!("--{what} {s}: {e}"))
    };
    let (warmup, duration, step) = match (
        secs(args.warmup, "warmup"),
        secs(args.duration, "duration"),
        secs(args.step_timeout, "step-timeout"),
    ) {
        (Ok(w), Ok(d), Ok(s)) => (w, d, s),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return fail(&e),
    };
    let opts = Options {
        addr: args.addr,
        server_name,
        host: args.host.clone().unwrap_or_else(|| args.name.clone()),
        path: args.path.clone(),
        roots,
        mode: args.mode,
        tls12: args.tls12,
        suites: args.suites.clone(),
        conns: args.conns,
        clients: args.clients,
        warmup,
        duration,
        max_count: args.count,
        server_pids: args.server_pids.clone(),
        step,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("runtime: {e}")),
    };
    let report = match runtime.block_on(run(opts)) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    println!("{}", report.line());
    match report.check(args.min_resumed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("handshakes: FAILED: {e}");
            ExitCode::from(1)
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("handshakes: {message}");
    ExitCode::from(2)
}
