//! The data plane: listeners, connections, reloads. `run` starts everything from a config.
//!
//! - [`inbound`]: peers → mTLS (TLS 1.3) → policy → the app on loopback; HTTP ports per request.
//! - [`outbound`]: the app → an explicit loopback listener → policy → mTLS to the peer sidecar,
//!   whose identity must be the one the directory expects.
//! - [`reload`]: SIGHUP and file changes build a new [`generation::Generation`] of rules (and,
//!   identity from files, publish the SVID files' new TLS configs); connections the new policy
//!   denies are closed at once.
//! - [`identity`]: identity from the CA, whose renewals publish new TLS configs.
//! - [`log`], [`metrics`]: what operators see; the admin listener (`/metrics`, `/healthz`,
//!   `/readyz`), the reload driver, the log writer and the SIGTERM drain are `rampart-ops`'s.

pub mod egress;
pub mod generation;
mod http;
pub mod identity;
pub mod inbound;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod outbound;
pub(crate) mod relay;
pub mod reload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rampart_ops::drain::{InFlight, Readiness};
use rampart_ops::reload::Generations;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::mtls::{MeshTls, SvidFiles};
use generation::Generation;
use log::{Event, LogSink};
use metrics::Metrics;

/// How long an outbound TLS handshake to a peer may take (inbound:
/// `inbound.limits.handshake_timeout_ms`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dialling the app or a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// On SIGTERM, how long open connections are given to finish before the process exits.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// What every connection task shares.
pub struct Ctx {
    /// The config (fixed for the life of the process).
    pub config: Arc<Config>,
    /// Our SVID's TLS configs: every new handshake takes the newest.
    pub tls: MeshTls,
    /// The live generation of rules; reloads swap it.
    pub generations: Generations<Generation>,
    /// Every new generation (open connections re-check their policy on each).
    pub current: watch::Receiver<Arc<Generation>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Log lines.
    pub log: LogSink,
    /// The egress path (`[egress]` in the config), if configured.
    pub egress: Option<Arc<egress::EgressRuntime>>,
    /// `/readyz`: our certificate is valid and we are not draining.
    pub ready: Readiness,
    /// Open connections, waited for on SIGTERM.
    pub in_flight: InFlight,
    /// Caps and the handshake deadline of the inbound listeners.
    pub limits: limits::Limits,
}

impl Ctx {
    /// The current generation (cheap: an atomic load and an `Arc` clone).
    pub fn generation(&self) -> Arc<Generation> {
        self.generations.load_full()
    }

    /// Emits a log event.
    pub fn emit(&self, event: Event) {
        self.log.send(&event);
    }
}

/// Starts the sidecar and runs until SIGINT/SIGTERM. `Err` is a message for the operator.
pub async fn run(config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    let first = Generation::load(&config)?;
    let tls = match identity::start(&config.identity).await? {
        Some(source) => MeshTls::from_source(source),
        None => match SvidFiles::of(&config.identity) {
            Some(files) => {
                MeshTls::from_files(&files, &config.trust_domain).map_err(|e| e.to_string())?
            }
            None => return Err("no identity configured".into()),
        },
    };
    if tls.expired() {
        return Err(format!(
            "our certificate ({}) expired {:.0} s ago: renew it before starting",
            tls.id(),
            -tls.seconds_to_expiry()
        ));
    }
    let metrics = Arc::new(Metrics::new());
    metrics.cert_expiry.set(tls.seconds_to_expiry());
    let generations = Generations::new(first, metrics.reloads.clone());
    let first = generations.load_full();
    let source = tls.source().cloned();
    let log = log::stdout(&metrics).map_err(|e| format!("cannot start the log writer: {e}"))?;
    let egress = config
        .egress
        .as_ref()
        .map(|e| egress::EgressRuntime::start(e, config.gateway.as_ref().map(|g| g.source)))
        .transpose()?
        .map(Arc::new);
    let ctx = Arc::new(Ctx {
        config: config.clone(),
        tls,
        current: generations.subscribe(),
        generations,
        metrics,
        log,
        egress,
        ready: Readiness::new(),
        in_flight: InFlight::new(),
        limits: limits::Limits::new(&config.inbound_limits)?,
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
        let at = local(&listener);
        bound.push(("inbound:transparent".into(), at));
        tokio::spawn(inbound::serve_transparent(ctx.clone(), listener));
        if let Some(v6) = crate::redirect::bind_ipv6_counterpart(at)? {
            bound.push(("inbound:transparent6".into(), local(&v6)));
            tokio::spawn(inbound::serve_transparent(ctx.clone(), v6));
        }
    }
    if let Some(listen) = config.outbound_transparent {
        let listener = bind(listen).await?;
        let at = local(&listener);
        bound.push(("outbound:transparent".into(), at));
        tokio::spawn(outbound::serve_transparent(ctx.clone(), listener));
        // ip6tables redirects the app's IPv6 connections to [::1] on the same port.
        if let Some(v6) = crate::redirect::bind_ipv6_counterpart(at)? {
            bound.push(("outbound:transparent6".into(), local(&v6)));
            tokio::spawn(outbound::serve_transparent(ctx.clone(), v6));
        }
    }
    for l in &config.outbound {
        let listener = bind(l.listen).await?;
        bound.push((
            format!("outbound:{}:{}", l.service, l.port),
            local(&listener),
        ));
        tokio::spawn(outbound::serve(ctx.clone(), l.clone(), listener));
    }
    bound.extend(egress::start_listeners(&ctx).await?);
    if let Some(a) = &config.admin {
        let listener = bind(a.listen).await?;
        bound.push(("admin".into(), local(&listener)));
        tokio::spawn(rampart_ops::admin::serve(
            listener,
            rampart_ops::admin::Admin {
                registry: ctx.metrics.registry().clone(),
                ready: ctx.ready.clone(),
            },
        ));
    }
    if let Some(source) = source {
        tokio::spawn(identity::follow(ctx.clone(), source));
    }
    reload::start(&ctx);
    ctx.ready.set(true);
    tokio::spawn(expiry_gauge(ctx.clone()));

    let mut ready = Event::new("ready")
        .with("rampart.service", config.service.clone())
        .with("rampart.identity", ctx.tls.id().to_string())
        .with(
            "rampart.policy.version",
            first.policy.version().version.clone(),
        );
    for (name, addr) in &bound {
        ready = ready.with(&format!("rampart.listen.{name}"), addr.to_string());
    }
    ctx.emit(ready);

    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let drain = rampart_ops::drain::Drain {
        ready: ctx.ready.clone(),
        in_flight: ctx.in_flight.clone(),
        settle: Duration::from_millis(100),
        name: "rampart-sidecar",
    };
    let stop = |ctx: &Ctx, signal: &str| {
        ctx.emit(
            Event::new("stop")
                .with("rampart.stop.signal", signal.to_string())
                .with("rampart.stop.open_connections", ctx.in_flight.count()),
        );
        ctx.log.flush(Duration::from_secs(2));
    };
    let on_term = {
        let ctx = ctx.clone();
        move || stop(&ctx, "SIGTERM")
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => stop(&ctx, "SIGINT"),
        _ = rampart_ops::drain::on_sigterm_within(term, drain, Some(DRAIN_LIMIT), on_term) => {}
    }
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
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut said = false;
    loop {
        tick.tick().await;
        let secs = ctx.tls.seconds_to_expiry();
        ctx.metrics.cert_expiry.set(secs);
        if secs <= 0.0 && !said {
            said = true;
            ctx.ready.set(false);
            ctx.emit(Event::new("certificate_expired").with(
                "error.message",
                "our certificate has expired: every connection is refused until a renewed one is loaded",
            ));
        } else if secs > 0.0 && said {
            // A renewed certificate arrived after expiry: ready again.
            said = false;
            ctx.ready.set(true);
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
