//! Outbound, explicit mode: the app connects to a loopback listener that stands for one
//! directory service and port; we ask the policy, dial the address the directory gives,
//! originate mutual TLS, and check that the peer presents exactly the identity the directory
//! expects there before relaying a byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};

use super::log::Event;
use super::metrics::count;
use super::relay::{accept_each, ended_fields, relay, ByRecord};
use super::{Ctx, Generation, CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT};
use crate::config::OutboundListener;
use crate::mtls;

/// Accepts the app's connections on one explicit listener.
pub async fn serve(ctx: Arc<Ctx>, listener_cfg: OutboundListener, listener: TcpListener) {
    let cfg = Arc::new(listener_cfg);
    let what = || format!("on {}", cfg.listen);
    accept_each(&ctx, &listener, what, |tcp, peer| {
        let target = Target::Service {
            service: cfg.service.clone(),
            port: cfg.port,
        };
        tokio::spawn(handle(ctx.clone(), target, tcp, peer));
    })
    .await
}

/// Transparent mode: the app's redirected connections arrive here; the original destination
/// is looked up in the directory. A destination outside it is egress: handed to the egress
/// path (`super::egress`) when `[egress]` is configured, denied otherwise.
pub async fn serve_transparent(ctx: Arc<Ctx>, listener: TcpListener) {
    let what = || "(transparent outbound)".to_string();
    accept_each(&ctx, &listener, what, |tcp, peer| {
        let target = match super::original_destination(&tcp) {
            Ok(original) => {
                let g = ctx.generation();
                match g.directory.by_address(&original) {
                    Some((service, port)) => Target::Service {
                        service: service.name.clone(),
                        port,
                    },
                    None => match &ctx.egress {
                        Some(rt) => {
                            let mode = rampart_egress::Mode::Transparent {
                                original_dst: original,
                            };
                            let (ctx, rt) = (ctx.clone(), rt.clone());
                            tokio::spawn(super::egress::handle(ctx, rt, tcp, peer, mode));
                            return;
                        }
                        None => Target::Outside(original.to_string()),
                    },
                }
            }
            Err(e) => Target::Outside(format!("unknown (no original destination: {e})")),
        };
        tokio::spawn(handle(ctx.clone(), target, tcp, peer));
    })
    .await
}

/// Where the app wants to go.
enum Target {
    /// A directory service and port.
    Service { service: String, port: u16 },
    /// An address outside the directory.
    Outside(String),
}

fn decide(g: &Generation, target: &Target) -> crate::policy::Decision {
    match target {
        Target::Service { service, port } => g.policy.outbound_to(&g.directory, service, *port),
        Target::Outside(destination) => g
            .policy
            .outbound(&crate::policy::OutboundTarget::Outside { destination }),
    }
}

async fn handle(ctx: Arc<Ctx>, target: Target, mut app: TcpStream, app_peer: SocketAddr) {
    let _in_flight = ctx.in_flight.guard();
    let started = Instant::now();
    let g = ctx.generation();
    let ask = |g: &Generation| decide(g, &target);
    let decision = ask(&g);
    count(&ctx, "outbound", "connection", &decision);
    let (service_name, port, outside) = match &target {
        Target::Service { service, port } => (service.clone(), *port, None),
        Target::Outside(d) => (String::new(), 0, Some(d.clone())),
    };
    let expected = g
        .directory
        .service(&service_name)
        .map(|s| s.identity.clone());
    let address = g
        .directory
        .service(&service_name)
        .and_then(|s| s.address_for(port));
    let event = Event::new("connection")
        .with("rampart.direction", "outbound")
        .with("client.address", app_peer.ip().to_string())
        .with("client.port", app_peer.port())
        .with("network.transport", "tcp")
        .maybe(
            "rampart.service",
            (!service_name.is_empty()).then(|| service_name.clone()),
        )
        .maybe("server.port", (port != 0).then_some(port))
        .maybe("rampart.destination", outside)
        .with("rampart.caller.identity", ctx.tls.id().to_string())
        .maybe(
            "rampart.callee.identity",
            expected.as_ref().map(|e| e.to_string()),
        )
        .maybe("server.address", address.map(|a| a.to_string()))
        .decision(&decision);
    if !decision.verdict.passes() {
        ctx.emit(event);
        return;
    }
    if ctx.tls.expired() {
        ctx.metrics
            .handshake_failures
            .with_label_values(&["outbound", "own_certificate_expired"])
            .inc();
        ctx.emit(event.with(
            "rampart.reason",
            "our certificate has expired and no renewed one is loaded: refusing (fail closed)",
        ));
        return;
    }
    let (Some(expected), Some(address)) = (expected, address) else {
        ctx.emit(event.with("error.message", "service or port not in the directory"));
        return;
    };
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return ctx.emit(event.with("error.message", format!("{address} unreachable: {e}")))
        }
        Err(_) => {
            return ctx
                .emit(event.with("error.message", format!("{address} did not accept in time")))
        }
    };
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(service_name.clone())
        .unwrap_or_else(|_| ServerName::IpAddress(address.ip().into()));
    drop(g);
    let fail = |label: &str| {
        ctx.metrics
            .handshake_failures
            .with_label_values(&["outbound", label])
            .inc();
    };
    let tls = match mtls::connect_peer(ctx.tls.connector(), tcp, name, &expected, HANDSHAKE_TIMEOUT)
        .await
    {
        Ok(tls) => tls,
        Err(mtls::PeerFailure::Handshake(label, text)) => {
            fail(label);
            return ctx.emit(
                event
                    .with("rampart.reason.kind", label)
                    .with("error.message", text),
            );
        }
        Err(mtls::PeerFailure::Timeout) => {
            fail("timeout");
            return ctx.emit(event.with("error.message", "handshake did not finish in time"));
        }
        Err(mtls::PeerFailure::Unexpected(presented)) => {
            fail("unexpected_peer_identity");
            let shown = presented
                .map(|p| p.to_string())
                .unwrap_or_else(|| "no identity".into());
            return ctx.emit(
                event
                    .with("rampart.reason.kind", "unexpected_peer_identity")
                    .with("error.message", format!("peer at {address} presented {shown}, the directory expects {expected}: refused")),
            );
        }
    };
    let mut tls = ByRecord(tls);
    let ended = relay(&mut app, &mut tls, ctx.current.clone(), |g| {
        ask(g).verdict.passes()
    })
    .await;
    let event = ended_fields(&ctx, "outbound", event, started, ended, || {
        ask(&ctx.generation()).to_string()
    });
    ctx.emit(event);
}
