//! Connection caps on the inbound listeners (`rampart-protect`'s [`ConnLimiter`]): all peers
//! together, per address, new connections per address per second; checked when a connection
//! is accepted, before its TLS handshake. Each refusal is a `connection_refused` log line and
//! counts in `rampart_sidecar_connections_refused_total{reason}`.
//!
//! A connection is *stalled* until its handshake is done: at the per-address cap a new
//! connection evicts that address's oldest stalled one (a client stalling handshakes from an
//! address shared with good callers cannot lock them out), and refuses only when every
//! connection of the address is established. The handshake itself has a deadline
//! (`inbound.limits.handshake_timeout_ms`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rampart_protect::conn_limit::{ConnGuard, ConnLimitConfig, ConnLimiter};
use rampart_protect::denial::DenialReason;
use rampart_protect::ratelimit::Rate;

use super::log::Event;
use super::Ctx;
use crate::config::InboundLimits;
use crate::mtls;

/// The inbound listeners' limiter.
pub struct Limits {
    limiter: ConnLimiter,
    handshake_timeout: Duration,
}

impl Limits {
    /// The limiter for `config`. `Err` is a message for the operator.
    pub fn new(config: &InboundLimits) -> Result<Self, String> {
        let rate = config.new_per_ip_per_second;
        let limiter = ConnLimiter::new(&ConnLimitConfig {
            max_connections: config.max_connections,
            max_per_ip: config.max_per_ip,
            new_per_ip: Rate::per_second(rate, rate.saturating_mul(2)),
            ..ConnLimitConfig::default()
        })
        .map_err(|e| format!("inbound.limits: {e}"))?;
        Ok(Limits {
            limiter,
            handshake_timeout: config.handshake_timeout,
        })
    }

    /// Admits a new connection from `peer` for app port `port`, or logs and counts why not (the
    /// caller then drops the connection). An evicted stalled connection is logged here too.
    pub fn admit(&self, ctx: &Ctx, peer: SocketAddr, port: u16) -> Option<Admitted> {
        match self.limiter.admit(peer.ip(), Some(peer)) {
            Ok(admission) => {
                if let Some(evicted) = admission.evicted {
                    ctx.emit(
                        refused(ctx, DenialReason::ConnEvictedStalled, evicted.peer, port)
                            .with("rampart.evicted.stalled_on", evicted.stalled_on),
                    );
                }
                ctx.metrics.inbound_open.inc();
                Some(Admitted {
                    guard: admission.guard,
                    handshake_timeout: self.handshake_timeout,
                    open: ctx.metrics.inbound_open.clone(),
                })
            }
            Err(reason) => {
                ctx.emit(refused(ctx, reason, Some(peer), port));
                None
            }
        }
    }

    /// Open inbound connections now.
    pub fn active(&self) -> usize {
        self.limiter.active()
    }
}

/// Counts a refusal and builds its log line.
fn refused(ctx: &Ctx, reason: DenialReason, peer: Option<SocketAddr>, port: u16) -> Event {
    let label = reason.as_str();
    ctx.metrics
        .connections_refused
        .with_label_values(&[label])
        .inc();
    ctx.metrics
        .connections
        .with_label_values(&["inbound", "refused"])
        .inc();
    let why = match reason {
        DenialReason::ConnCapGlobal => {
            "the sidecar holds inbound.limits.max_connections open connections"
        }
        DenialReason::ConnCapPerIp => {
            "this address holds inbound.limits.max_per_ip established connections"
        }
        DenialReason::ConnRate => {
            "this address opens connections faster than inbound.limits.new_per_ip_per_second"
        }
        DenialReason::ConnEvictedStalled => mtls::EVICTED,
        _ => "connection limit",
    };
    Event::new("connection_refused")
        .with("rampart.direction", "inbound")
        .with("server.port", port)
        .maybe("client.address", peer.map(|p| p.ip().to_string()))
        .maybe("client.port", peer.map(|p| p.port()))
        .with("rampart.decision", "deny")
        .with("rampart.reason.kind", label)
        .with("rampart.reason", why)
}

/// An admitted connection's place under the caps; given back when dropped.
pub struct Admitted {
    guard: ConnGuard,
    handshake_timeout: Duration,
    open: prometheus::IntGauge,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl Admitted {
    /// Runs the TLS handshake `accept` under the deadline; an eviction (see the module doc)
    /// ends it too. Errors are `TimedOut` (deadline) or `ConnectionAborted` ([`mtls::EVICTED`]), as
    /// `mtls::classify_handshake_error` labels them. Once it is done the connection counts as
    /// established and is never evicted.
    pub async fn handshake<T>(&self, accept: impl Future<Output = io::Result<T>>) -> io::Result<T> {
        let slot = self.guard.slot().clone();
        let evicted = std::future::poll_fn(|cx| {
            if slot.register(cx) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        });
        let result = tokio::select! {
            r = tokio::time::timeout(self.handshake_timeout, accept) => match r {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("handshake did not finish within {:?}", self.handshake_timeout),
                )),
            },
            () = evicted => Err(io::Error::new(io::ErrorKind::ConnectionAborted, mtls::EVICTED)),
        };
        if result.is_ok() {
            self.guard.slot().established();
        }
        result
    }
}
