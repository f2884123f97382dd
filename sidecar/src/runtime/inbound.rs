//! Inbound: a peer's sidecar connects to one of our mTLS listeners; we take its SPIFFE ID from
//! the verified certificate, ask the policy, and forward plain text to the app on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rampart_tls::spiffe::SpiffeId;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::log::{base_event, Event};
use super::metrics::count;
use super::relay::{accept_each, ended_fields, relay, ByRecord};
use super::{Ctx, CONNECT_TIMEOUT};
use crate::config::{InboundPort, Protocol};
use crate::mtls;
use crate::policy::InboundRequest;

/// Accepts connections for one app port until the process ends.
pub async fn serve(ctx: Arc<Ctx>, port: InboundPort, listener: TcpListener) {
    let port = Arc::new(port);
    let what = || format!("on port {}", port.port);
    accept_each(&ctx, &listener, what, |tcp, peer| {
        tokio::spawn(handle(ctx.clone(), port.clone(), tcp, peer));
    })
    .await
}

/// Transparent mode: peers' connections to any app port arrive here, redirected; the app
/// port is the original destination's port.
pub async fn serve_transparent(ctx: Arc<Ctx>, listener: TcpListener) {
    let ports: Vec<Arc<InboundPort>> = ctx.config.inbound.iter().cloned().map(Arc::new).collect();
    let what = || "(transparent inbound)".to_string();
    accept_each(&ctx, &listener, what, |tcp, peer| {
        let original = super::original_destination(&tcp);
        let port = original
            .as_ref()
            .ok()
            .and_then(|o| ports.iter().find(|p| p.port == o.port()).cloned());
        match port {
            Some(port) => {
                tokio::spawn(handle(ctx.clone(), port, tcp, peer));
            }
            None => {
                let what = match original {
                    Ok(o) => format!("port {} is not an inbound port of this sidecar", o.port()),
                    Err(e) => format!("no original destination (not redirected?): {e}"),
                };
                ctx.metrics
                    .connections
                    .with_label_values(&["inbound", "deny"])
                    .inc();
                ctx.metrics
                    .denials
                    .with_label_values(&["inbound", "enforce", "no_rule_for_port", ""])
                    .inc();
                ctx.emit(
                    Event::new("connection")
                        .with("rampart.direction", "inbound")
                        .with("client.address", peer.ip().to_string())
                        .with("client.port", peer.port())
                        .with("rampart.decision", "deny")
                        .with("rampart.reason.kind", "no_rule_for_port")
                        .with("rampart.reason", what),
                );
            }
        }
    })
    .await
}

async fn handle(ctx: Arc<Ctx>, port: Arc<InboundPort>, tcp: TcpStream, peer: SocketAddr) {
    let _in_flight = ctx.in_flight.guard();
    let own = ctx.tls.id();
    if ctx.tls.expired() {
        ctx.metrics
            .handshake_failures
            .with_label_values(&["inbound", "own_certificate_expired"])
            .inc();
        ctx.emit(
            base_event("handshake_failure", &port, peer, None, &own)
                .with("rampart.reason.kind", "own_certificate_expired")
                .with("rampart.reason", "our certificate has expired and no renewed one is loaded: refusing (fail closed)"),
        );
        return;
    }
    // The caps (rampart-protect) before the handshake; the place is held until the end.
    let Some(admitted) = ctx.limits.admit(&ctx, peer, port.port) else {
        return;
    };
    let tls = match admitted.handshake(ctx.tls.acceptor().accept(tcp)).await {
        Ok(tls) => tls,
        Err(e) => return handshake_failed(&ctx, &port, peer, &own, &e),
    };
    let caller = mtls::peer_id(tls.get_ref().1);
    match port.protocol {
        Protocol::Tcp => tcp_connection(ctx, port, tls, peer, caller).await,
        Protocol::Http => super::http::connection(ctx, port, tls, peer, caller).await,
    }
}

fn handshake_failed(
    ctx: &Ctx,
    port: &InboundPort,
    peer: SocketAddr,
    own: &SpiffeId,
    e: &std::io::Error,
) {
    let (label, text) = mtls::classify_handshake_error(e);
    ctx.metrics
        .handshake_failures
        .with_label_values(&["inbound", label])
        .inc();
    ctx.metrics
        .connections
        .with_label_values(&["inbound", "handshake_failure"])
        .inc();
    ctx.emit(
        base_event("handshake_failure", port, peer, None, own)
            .with("rampart.reason.kind", label)
            .with("rampart.reason", text),
    );
}

async fn tcp_connection(
    ctx: Arc<Ctx>,
    port: Arc<InboundPort>,
    mut tls: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    caller: Option<SpiffeId>,
) {
    let started = Instant::now();
    let generation = ctx.generation();
    let ask = |g: &super::Generation| {
        g.policy.inbound(&InboundRequest {
            caller: caller.as_ref(),
            port: port.port,
            source: Some(peer.ip()),
            http: None,
        })
    };
    let decision = ask(&generation);
    count(&ctx, "inbound", "connection", &decision);
    let event =
        base_event("connection", &port, peer, caller.as_ref(), &ctx.tls.id()).decision(&decision);
    if !decision.verdict.passes() {
        let _ = tls.shutdown().await;
        ctx.emit(event.with(
            "rampart.duration_ms",
            rampart_ops::json_log::millis(started.elapsed()),
        ));
        return;
    }
    let app = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(port.app)).await {
        Ok(Ok(app)) => app,
        Ok(Err(e)) => {
            ctx.emit(event.with(
                "error.message",
                format!("app {} unreachable: {e}", port.app),
            ));
            return;
        }
        Err(_) => {
            ctx.emit(event.with(
                "error.message",
                format!("app {} did not accept in time", port.app),
            ));
            return;
        }
    };
    let _ = app.set_nodelay(true);
    let mut app = app;
    let revoked = |_: &super::Generation| caller.as_ref().is_some_and(|c| ctx.tls.is_revoked(c));
    // app first: `Done` then counts (to the peer, from the peer), like every direction.
    let mut tls = ByRecord(tls);
    let ended = relay(&mut app, &mut tls, ctx.current.clone(), |g| {
        ask(g).verdict.passes() && !revoked(g)
    })
    .await;
    let event = ended_fields(&ctx, "inbound", event, started, ended, || {
        let g = ctx.generation();
        if revoked(&g) {
            "the caller's identity is revoked (trust bundle deny-list)".to_string()
        } else {
            ask(&g).to_string()
        }
    });
    ctx.emit(event);
}
