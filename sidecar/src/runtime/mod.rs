//! The data plane: listeners, connections, reloads. `run` starts everything from a config.
//!
//! - [`inbound`]: peers → mTLS (TLS 1.3) → policy → the app on loopback; HTTP ports per request.
//! - [`outbound`]: the app → an explicit loopback listener → policy → mTLS to the peer sidecar,
//!   whose identity must be the one the directory expects.
//! - [`reload`]: SIGHUP and file changes build a new [`generation::Generation`]; connections the
//!   new policy denies are closed at once.
//! - [`log`], [`metrics`], [`admin`]: what operators see.

pub mod admin;
pub mod generation;
mod http;
pub mod identity;
pub mod inbound;
pub mod log;
pub mod metrics;
pub mod outbound;
mod relay;
pub mod reload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use generation::Generation;
use log::{Event, LogSink};
use metrics::Metrics;

/// How long a TLS handshake may take (slow or stalled handshakes are cut).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dialling the app or a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection task shares.
pub struct Ctx {
    /// The config (fixed for the life of the process).
    pub config: Arc<Config>,
    /// The current generation.
    pub current: watch::Receiver<Arc<Generation>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Log lines.
    pub log: LogSink,
}

impl Ctx {
    /// The current generation (cheap: an `Arc` clone).
    pub fn generation(&self) -> Arc<Generation> {
        self.current.borrow().clone()
    }

    /// Emits a log event.
    pub fn emit(&self, event: Event) {
        self.log.emit(event, &self.metrics);
    }
}

/// Starts the sidecar and runs until SIGINT/SIGTERM. `Err` is a message for the operator.
pub async fn run(config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    let (policy, directory) = generation::load_rules(&config)?;
    let source = identity::start(&config.identity, &config.trust_domain).await?;
    let tls = match (&source, generation::load_tls_files(&config)) {
        (Some(source), _) => identity::material(source)?,
        (None, Some(tls)) => tls?,
        (None, None) => return Err("no identity configured".into()),
    };
    if tls.seconds_to_expiry() <= 0.0 {
        return Err(format!(
            "our certificate ({}) expired {:.0} s ago: renew it before starting",
            tls.id,
            -tls.seconds_to_expiry()
        ));
    }
    let first = Arc::new(Generation {
        policy,
        directory,
        tls,
    });
    let metrics = Arc::new(Metrics::new());
    metrics.cert_expiry.set(first.tls.seconds_to_expiry());
    let (tx, rx) = watch::channel(first.clone());
    let tx = Arc::new(tx);
    let log = LogSink::stdout().map_err(|e| format!("cannot start the log writer: {e}"))?;
    let ctx = Arc::new(Ctx {
        config: config.clone(),
        current: rx,
        metrics,
        log,
    });

    let mut bound: Vec<(String, SocketAddr)> = Vec::new();
    for port in &config.inbound {
        let Some(listen) = port.listen else { continue };
        let listener = bind(listen).await?;
        bound.push((format!("inbound:{}", port.port), local(&listener)));
        tokio::spawn(inbound::serve(ctx.clone(), port.clone(), listener));
    }
    if let Some(listen) = config.inbound_transparent {
        let listener = bind(listen).await?;
        bound.push(("inbound:transparent".into(), local(&listener)));
        tokio::spawn(inbound::serve_transparent(ctx.clone(), listener));
    }
    if let Some(listen) = config.outbound_transparent {
        let listener = bind(listen).await?;
        bound.push(("outbound:transparent".into(), local(&listener)));
        tokio::spawn(outbound::serve_transparent(ctx.clone(), listener));
    }
    for l in &config.outbound {
        let listener = bind(l.listen).await?;
        bound.push((
            format!("outbound:{}:{}", l.service, l.port),
            local(&listener),
        ));
        tokio::spawn(outbound::serve(ctx.clone(), l.clone(), listener));
    }
    if let Some(a) = &config.admin {
        let listener = bind(a.listen).await?;
        bound.push(("admin".into(), local(&listener)));
        tokio::spawn(admin::serve(ctx.clone(), listener));
    }
    if let Some(source) = source {
        tokio::spawn(identity::follow(ctx.clone(), source, tx.clone()));
    }
    tokio::spawn(reload::run(ctx.clone(), tx));
    tokio::spawn(expiry_gauge(ctx.clone()));

    let mut ready = Event::new("ready")
        .with("rampart.service", config.service.clone())
        .with("rampart.identity", first.tls.id.to_string())
        .with(
            "rampart.policy.version",
            first.policy.version().version.clone(),
        );
    for (name, addr) in &bound {
        ready = ready.with(&format!("rampart.listen.{name}"), addr.to_string());
    }
    ctx.emit(ready);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    ctx.emit(Event::new("stop"));
    // Give the log writer a moment to drain the last lines.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

fn local(l: &TcpListener) -> SocketAddr {
    l.local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// Keeps the expiry gauge current and says, once, when our certificate has expired.
async fn expiry_gauge(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut said = false;
    loop {
        tick.tick().await;
        let secs = ctx.generation().tls.seconds_to_expiry();
        ctx.metrics.cert_expiry.set(secs);
        if secs <= 0.0 && !said {
            said = true;
            ctx.emit(Event::new("certificate_expired").with(
                "error.message",
                "our certificate has expired: every connection is refused until a renewed one is loaded",
            ));
        } else if secs > 0.0 {
            said = false;
        }
    }
}

/// The destination a redirected connection was meant for (`SO_ORIGINAL_DST`, set by the
/// iptables REDIRECT rules `init-redirect` installs).
pub(crate) fn original_destination(tcp: &tokio::net::TcpStream) -> std::io::Result<SocketAddr> {
    let sock = socket2::SockRef::from(tcp);
    let local = tcp.local_addr()?;
    let addr = if local.is_ipv4() {
        sock.original_dst_v4()?
    } else {
        sock.original_dst_v6()?
    };
    addr.as_socket()
        .ok_or_else(|| std::io::Error::other("original destination is not an IP address"))
}

/// Refuses when our own certificate has expired (fail closed, with the reason).
pub(crate) fn own_cert_expired(g: &Generation) -> bool {
    g.tls.seconds_to_expiry() <= 0.0
}
