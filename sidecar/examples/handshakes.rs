//! New mTLS connections per second against a server on loopback, and the server's CPU per
//! full handshake.
//!
//! Every connection is a full TLS 1.3 handshake with a client certificate (no resumption, no
//! tickets), then one HTTP/1.1 request with `Connection: close` read to the end, then close —
//! so our inbound sidecar and the HAProxy pair's inbound listener do the same work: accept,
//! handshake, verify the client's chain, dial the app, relay one answer. The client is the
//! bottleneck on a 2-core machine, so the figure that compares servers is the server's CPU
//! per connection: its utime + stime from `/proc/PID/stat` over the run, divided by the
//! connections served.
//!
//! ```text
//! cargo run --release -p rampart-sidecar --example handshakes -- ADDR --ca CA.pem --cert C.pem \
//!     --key K.pem (--spiffe TRUST_DOMAIN | --name localhost) [--conns 16] [--seconds 10] \
//!     [--server-pid PID]
//! ```
//! `sidecar/bench/handshakes.sh` runs it against our pair and the HAProxy pair side by side.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rampart_tls::spiffe::TrustDomain;
use rampart_tls::{BundleHandle, PeerPolicy, Profile, SpiffeServerVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

mod common;
use common::{clock_ticks, cpu_seconds};

/// Bounds on one connection (a hang is a failure, not a stall of the run).
const STEP: Duration = Duration::from_secs(5);
const MAX_SECONDS: u64 = 60;

#[derive(Parser)]
struct Args {
    /// The server's mTLS address (loopback).
    addr: SocketAddr,
    /// The CA (PEM) the server's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    /// Our client certificate (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// Our private key (PEM, PKCS#8).
    #[arg(long)]
    key: PathBuf,
    /// Verify the server as a SPIFFE SVID of this trust domain (our sidecar).
    #[arg(long, conflicts_with = "name")]
    spiffe: Option<String>,
    /// Verify the server by this DNS name and send it as SNI (HAProxy, stunnel, Envoy).
    #[arg(long)]
    name: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Measured seconds (after one second of warm-up), at most 60.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The server process whose CPU is counted.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Cargo passes `--bench` to bench targets; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => fail(&format!("cannot start the runtime: {e}")),
    };
    if let Err(e) = runtime.block_on(run(args)) {
        fail(&e);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("handshakes: {message}");
    std::process::exit(2)
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn client_config(args: &Args) -> Result<(Arc<ClientConfig>, ServerName<'static>), String> {
    let roots = certs(&args.ca)?;
    let chain = certs(&args.cert)?;
    let key = PrivateKeyDer::from_pem_file(&args.key)
        .map_err(|e| format!("{}: {e}", args.key.display()))?;
    let builder = Profile::Mesh.client_builder().map_err(|e| e.to_string())?;
    let (builder, name) = match (&args.spiffe, &args.name) {
        (Some(td), _) => {
            let td = TrustDomain::parse(td).map_err(|e| format!("--spiffe {td}: {e}"))?;
            let bundle = BundleHandle::new(td, roots).map_err(|e| e.to_string())?;
            let verifier = SpiffeServerVerifier::new(bundle, PeerPolicy::AnyInTrustDomain);
            let name = ServerName::IpAddress(args.addr.ip().into());
            (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier)),
                name,
            )
        }
        (None, Some(host)) => {
            let mut store = rustls::RootCertStore::empty();
            for root in roots {
                store.add(root).map_err(|e| e.to_string())?;
            }
            let verifier = WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                rampart_tls::provider(),
            )
            .build()
            .map_err(|e| e.to_string())?;
            let name = ServerName::try_from(host.clone()).map_err(|e| format!("--name: {e}"))?;
            (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier),
                name,
            )
        }
        (None, None) => return Err("give --spiffe TRUST_DOMAIN or --name HOST".into()),
    };
    let mut config = builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| e.to_string())?;
    config.resumption = Resumption::disabled();
    Ok((Arc::new(config), name))
}

/// One connection: handshake, one request, the answer to its end.
async fn one(
    addr: SocketAddr,
    connector: &TlsConnector,
    name: &ServerName<'static>,
) -> Result<(), String> {
    let tcp = tokio::time::timeout(STEP, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timeout".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let mut tls = tokio::time::timeout(STEP, connector.connect(name.clone(), tcp))
        .await
        .map_err(|_| "handshake timeout".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    let exchange = async {
        tls.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::with_capacity(512);
        tls.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(STEP, exchange)
        .await
        .map_err(|_| "request timeout".to_string())?
        .map_err(|e| format!("request: {e}"))?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "answer: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(60)])
        ));
    }
    Ok(())
}

async fn run(args: Args) -> Result<(), String> {
    if args.seconds == 0 || args.seconds > MAX_SECONDS {
        return Err(format!("--seconds must be 1..={MAX_SECONDS}"));
    }
    if !args.addr.ip().is_loopback() {
        return Err("the address must be on loopback".into());
    }
    let (config, name) = client_config(&args)?;
    let connector = TlsConnector::from(config);
    // A first connection says at once whether the set-up is right.
    one(args.addr, &connector, &name).await?;

    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let last_error = Arc::new(std::sync::Mutex::new(String::new()));
    let warmup = Duration::from_secs(1);
    let end = Instant::now() + warmup + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.conns.max(1) {
        let (ok, failed, last_error) = (ok.clone(), failed.clone(), last_error.clone());
        let (connector, name, addr) = (connector.clone(), name.clone(), args.addr);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                match one(addr, &connector, &name).await {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if let Ok(mut last) = last_error.lock() {
                            *last = e;
                        }
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(warmup).await;
    let ticks = clock_ticks();
    let cpu0 = match args.server_pid {
        Some(pid) => Some(cpu_seconds(pid, ticks)?),
        None => None,
    };
    let (ok0, failed0) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let started = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let elapsed = started.elapsed().as_secs_f64();
    let (ok1, failed1) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let cpu = match (args.server_pid, cpu0) {
        (Some(pid), Some(c0)) => Some(cpu_seconds(pid, ticks)? - c0),
        _ => None,
    };
    for t in tasks {
        let _ = tokio::time::timeout(STEP * 3, t).await;
    }
    let done = ok1 - ok0;
    let mut line = format!(
        "HANDSHAKES ok={done} failed={} seconds={elapsed:.2} per_second={:.0}",
        failed1 - failed0,
        done as f64 / elapsed
    );
    if let Some(cpu) = cpu {
        line.push_str(&format!(
            " server_cpu_seconds={cpu:.2} server_cpu_per_connection_us={:.0} connections_per_server_cpu_second={:.0}",
            cpu / done.max(1) as f64 * 1e6,
            done as f64 / cpu.max(1e-9)
        ));
    }
    println!("{line}");
    if failed1 > failed0 {
        let last = last_error.lock().map(|l| l.clone()).unwrap_or_default();
        eprintln!("last failure: {last}");
    }
    Ok(())
}
