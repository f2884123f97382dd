//! The egress gateway (S.N.8): a mode of the same binary (`[gateway]` in the config) that the
//! mesh's sidecars send their allowed external traffic to, so the organisation's egress leaves
//! from a few known addresses.
//!
//! Wire: the sidecar opens mutual TLS to the gateway (the directory gives its address and the
//! identity it must present), then speaks explicit-proxy HTTP/1.1 inside it: `CONNECT
//! host:port` followed at once by the app's first bytes (a ClientHello), or — for plain HTTP —
//! the app's requests in absolute form, one by one on a kept-alive connection, each decided
//! again here (see `crate::egress::plain`). The gateway:
//! 1. takes the caller's SPIFFE ID from its client certificate and finds its service in the
//!    directory (unknown callers are refused);
//! 2. decides with that service's `[gateway.SERVICE]` egress policy, from what it sees itself
//!    (CONNECT target, the SNI inside must equal it);
//! 3. resolves and vets through its own resolver, and dials exactly the vetted address with
//!    the socket bound to `gateway.source` before connecting.
//!
//! The gateway answers `200` only once the destination is dialled (the sidecar does not wait
//! for it before sending the first bytes); every refusal, DNSSEC and vetting included, is a
//! `403` with `X-Rampart-Deny-Reason`/`-Rule`, which the sidecar logs as the gateway's reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rampart_egress::{forbidden_response, Admitted, DialOptions, Mode, Seen};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client;

use crate::egress::config::GatewayRef;
use crate::egress::{admitted_fields, denied, deny, destination, EgressRuntime};
use crate::mtls;
use crate::runtime::generation::Generation;
use crate::runtime::log::Event;
use crate::runtime::relay::ended_fields;
use crate::runtime::relay::relay;
use crate::runtime::{Ctx, HANDSHAKE_TIMEOUT};

/// Most bytes of the gateway's answer head the sidecar reads.
const MAX_ANSWER: usize = 8 * 1024;

/// Why the gateway did not carry a connection, as the sidecar sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayRefusal {
    /// The gateway could not be reached or spoke nonsense.
    #[error("egress gateway unavailable: {0}")]
    Unavailable(String),
    /// The peer at the gateway's address is not the gateway's identity.
    #[error("egress gateway identity: {0}")]
    Identity(String),
    /// The gateway refused, with its reason.
    #[error("the egress gateway refused ({status}): {text}")]
    Denied {
        status: u16,
        reason: String,
        rule: Option<String>,
        text: String,
    },
}

impl GatewayRefusal {
    /// Reason code (log, metric label): the gateway's own for its denials.
    pub fn reason(&self) -> &str {
        match self {
            GatewayRefusal::Unavailable(_) => "gateway_unavailable",
            GatewayRefusal::Identity(_) => "unexpected_peer_identity",
            GatewayRefusal::Denied { reason, .. } => reason,
        }
    }

    /// The gateway's rule, when it named one.
    pub fn rule(&self) -> Option<&str> {
        match self {
            GatewayRefusal::Denied { rule, .. } => rule.as_deref(),
            _ => None,
        }
    }

    /// Who decided: the gateway, or this sidecar (could not use the gateway).
    pub fn by(&self) -> &'static str {
        match self {
            GatewayRefusal::Denied { .. } => "gateway",
            _ => "sidecar",
        }
    }
}

/// Sidecar side: opens mutual TLS to the gateway the directory names (checking its identity).
/// Plain HTTP is then sent as absolute-form requests (see [`crate::egress`]); everything else
/// through [`open`].
pub async fn tunnel(
    g: &Generation,
    connector: &rampart_tls::LatestConnector,
    gw: &GatewayRef,
    options: &DialOptions,
) -> Result<(client::TlsStream<TcpStream>, SocketAddr), GatewayRefusal> {
    let unavailable = GatewayRefusal::Unavailable;
    let service = g
        .directory
        .service(&gw.service)
        .ok_or_else(|| unavailable(format!("service {} is not in the directory", gw.service)))?;
    let address = service.address_for(gw.port).ok_or_else(|| {
        unavailable(format!(
            "service {} has no port {} in the directory",
            gw.service, gw.port
        ))
    })?;
    let tcp = match tokio::time::timeout(options.connect_timeout, TcpStream::connect(address)).await
    {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(unavailable(format!("{address}: {e}"))),
        Err(_) => return Err(unavailable(format!("{address} did not accept in time"))),
    };
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(service.name.clone())
        .unwrap_or_else(|_| ServerName::IpAddress(address.ip().into()));
    let tls = match mtls::connect_peer(connector, tcp, name, &service.identity, HANDSHAKE_TIMEOUT)
        .await
    {
        Ok(t) => t,
        Err(mtls::PeerFailure::Handshake(label, text)) => {
            return Err(unavailable(format!("{address}: handshake {label}: {text}")))
        }
        Err(mtls::PeerFailure::Timeout) => {
            return Err(unavailable(format!("{address}: handshake timed out")))
        }
        Err(mtls::PeerFailure::Unexpected(presented)) => {
            return Err(GatewayRefusal::Identity(format!(
                "{address} presented {}, the directory expects {}",
                presented
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "no identity".into()),
                service.identity
            )))
        }
    };
    Ok((tls, address))
}

/// Sidecar side: opens mTLS to the gateway and asks it to carry `admitted`. Returns the
/// stream, bytes that followed the gateway's `200` (already the destination's), and the
/// gateway's address.
pub async fn open(
    g: &Generation,
    connector: &rampart_tls::LatestConnector,
    gw: &GatewayRef,
    admitted: &Admitted,
    options: &DialOptions,
) -> Result<(client::TlsStream<TcpStream>, Vec<u8>, SocketAddr), GatewayRefusal> {
    let unavailable = GatewayRefusal::Unavailable;
    let (mut tls, address) = tunnel(g, connector, gw, options).await?;
    let io = |e: std::io::Error| unavailable(format!("{address}: {e}"));
    let (host, port) = destination(admitted);
    let target = match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
    request.extend_from_slice(&admitted.prefix);
    tls.write_all(&request).await.map_err(io)?;
    let deadline = options.connect_timeout + options.peek_timeout;
    let mut buf = Vec::with_capacity(512);
    let head_len = loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let status = resp.code.unwrap_or(0);
                if status == 200 {
                    break n;
                }
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(str::to_string)
                };
                let body = String::from_utf8_lossy(buf.get(n..).unwrap_or_default());
                return Err(GatewayRefusal::Denied {
                    status,
                    reason: header("x-rampart-deny-reason")
                        .unwrap_or_else(|| "gateway_refused".into()),
                    rule: header("x-rampart-deny-rule"),
                    text: body
                        .trim()
                        .trim_start_matches("egress denied: ")
                        .to_string(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_ANSWER => {}
            _ => return Err(unavailable(format!("{address}: not an HTTP answer"))),
        }
        let mut chunk = [0u8; 2048];
        let n = match tokio::time::timeout(deadline, tls.read(&mut chunk)).await {
            Ok(Ok(0)) => {
                return Err(unavailable(format!(
                    "{address} closed the connection without an answer"
                )))
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(io(e)),
            Err(_) => return Err(unavailable(format!("{address}: no answer in time"))),
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let leftover = buf.get(head_len..).unwrap_or_default().to_vec();
    Ok((tls, leftover, address))
}

/// Gateway side: accepts the sidecars' mTLS connections.
pub async fn serve(ctx: Arc<Ctx>, rt: Arc<EgressRuntime>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(connection(ctx.clone(), rt.clone(), tcp, peer));
            }
            Err(e) => {
                ctx.emit(
                    Event::new("error").with("error.message", format!("accept (gateway): {e}")),
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// The egress policy for a caller, by its service in the directory (`None`: not a caller of
/// this mesh, or revoked).
fn caller_policy(
    ctx: &Ctx,
    g: &Generation,
    caller: &rampart_tls::spiffe::SpiffeId,
) -> Option<(String, Arc<rampart_egress::EgressPolicy>)> {
    if ctx.tls.is_revoked(caller) {
        return None;
    }
    let service = g
        .directory
        .services()
        .iter()
        .find(|s| &s.identity == caller)?;
    let policy = g
        .policy
        .gateway_egress(&service.name)
        .cloned()
        .unwrap_or_default();
    Some((service.name.clone(), policy))
}

async fn connection(ctx: Arc<Ctx>, rt: Arc<EgressRuntime>, tcp: TcpStream, peer: SocketAddr) {
    let _in_flight = ctx.in_flight.guard();
    let started = Instant::now();
    let g = ctx.generation();
    let event = crate::egress::event("gateway", peer, &g)
        .with("rampart.identity", ctx.tls.id().to_string());
    drop(g);
    let mut tls =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, ctx.tls.acceptor().accept(tcp)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                let (label, text) = mtls::classify_handshake_error(&e);
                ctx.metrics
                    .handshake_failures
                    .with_label_values(&["gateway", label])
                    .inc();
                return ctx.emit(
                    event
                        .with("rampart.reason.kind", label)
                        .with("error.message", text),
                );
            }
            Err(_) => {
                ctx.metrics
                    .handshake_failures
                    .with_label_values(&["gateway", "timeout"])
                    .inc();
                return ctx.emit(event.with("error.message", "handshake did not finish in time"));
            }
        };
    let Some(caller) = mtls::peer_id(tls.get_ref().1) else {
        let text = "no client certificate: the gateway carries only mesh workloads' traffic";
        let _ = tls
            .write_all(&forbidden_response("no_client_identity", None, text))
            .await;
        return deny(&ctx, event, "no_client_identity", None, text.into());
    };
    let event = event.with("rampart.caller.identity", caller.to_string());
    let Some((service, policy)) = caller_policy(&ctx, &ctx.generation(), &caller) else {
        let text = format!("{caller} is no service of the directory (or is revoked)");
        let _ = tls
            .write_all(&forbidden_response("unknown_caller", None, &text))
            .await;
        return deny(&ctx, event, "unknown_caller", None, text);
    };
    let event = event.with("rampart.caller.service", service.clone());
    let Some(egress) = rt.egress(policy) else {
        crate::egress::no_resolver(&ctx, event);
        return;
    };
    // The calling sidecar sends its first bytes right after the CONNECT: nothing is answered
    // until the destination is dialled, so every refusal reaches it as a 403 with the reason.
    let admitted = match rampart_egress::admit_with(
        &egress.policy,
        egress.options.peek_timeout,
        &mut tls,
        Mode::ExplicitProxy,
        false,
    )
    .await
    {
        Ok(a) => a,
        Err((d, answered)) => {
            if !answered {
                let _ = tls.write_all(&d.http_response()).await;
            }
            return denied(&ctx, event, &d);
        }
    };
    if let Some(connect) = crate::egress::plain_http(&admitted) {
        // Plain HTTP: every request is decided again with the caller's policy.
        if connect.is_some() && tls.write_all(rampart_egress::CONNECT_OK).await.is_err() {
            return;
        }
        let text = format!("{caller} is no longer a service of the directory (or is revoked)");
        let for_policy = ctx.clone();
        let engine = crate::egress::plain::HttpEgress {
            ctx: ctx.clone(),
            rt: rt.clone(),
            via: crate::egress::plain::Via::Direct,
            mode: Mode::ExplicitProxy,
            tunnel: connect,
            policy: Box::new(move |g| {
                caller_policy(&for_policy, g, &caller)
                    .filter(|(s, _)| *s == service)
                    .map(|(_, p)| p)
                    .ok_or(("unknown_caller", text.clone()))
            }),
            event,
        };
        return engine.serve(tls, admitted.prefix).await;
    }
    let event = admitted_fields(event, &admitted);
    let c = match egress.connect(admitted.decision.clone()).await {
        Ok(c) => c,
        Err(d) => {
            if !admitted.answered {
                let _ = tls.write_all(&d.http_response()).await;
            }
            return denied(&ctx, event, &d);
        }
    };
    let event = crate::egress::resolved_fields(event, &c).with("rampart.decision", "allow");
    let mut upstream = c.upstream;
    if matches!(admitted.seen, Seen::Connect { .. }) {
        if let Err(e) = tls.write_all(rampart_egress::CONNECT_OK).await {
            return ctx.emit(event.with("error.message", format!("answering the caller: {e}")));
        }
    }
    if !admitted.prefix.is_empty() {
        if let Err(e) = upstream.write_all(&admitted.prefix).await {
            return ctx
                .emit(event.with("error.message", format!("writing to the destination: {e}")));
        }
    }
    ctx.metrics
        .connections
        .with_label_values(&["egress", "allow"])
        .inc();
    let still = |g: &Generation| {
        caller_policy(&ctx, g, &caller)
            .is_some_and(|(s, p)| s == service && admitted.still_allowed(&p))
    };
    let ended = relay(&mut tls, &mut upstream, ctx.current.clone(), still).await;
    let event = ended_fields(&ctx, "egress", event, started, ended, || {
        "the reloaded gateway policy no longer allows this caller and destination".into()
    });
    ctx.emit(event);
}
