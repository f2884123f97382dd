//! The egress gateway (S.N.8): a mode of the same binary (`[gateway]` in the config) that the
//! mesh's sidecars send their allowed external traffic to, so the organisation's egress leaves
//! from a few known addresses.
//!
//! Wire: the sidecar opens mutual TLS to the gateway (the directory gives its address and the
//! identity it must present), then speaks explicit-proxy HTTP/1.1 inside it: `CONNECT
//! host:port` followed at once by the app's first bytes (a ClientHello), or — for plain HTTP —
//! the app's requests in absolute form, one by one on a kept-alive connection, each decided
//! again here (see [`super::plain`]). The gateway:
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
//!
//! The sidecar side (opening mTLS to the gateway, CONNECT) is [`super::via_gateway`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rampart_egress::{forbidden_response, Mode, Seen};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::plain::{HttpEgress, Via};
use super::{
    admitted_fields, denied, deny, no_resolver, plain_http, resolved_fields, EgressRuntime,
};
use crate::mtls;
use crate::runtime::generation::Generation;
use crate::runtime::log::Event;
use crate::runtime::relay::{ended_fields, relay, ByRecord};
use crate::runtime::{Ctx, HANDSHAKE_TIMEOUT};

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
    let event =
        super::event("gateway", peer, &g).with("rampart.identity", ctx.tls.id().to_string());
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
        no_resolver(&ctx, event);
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
    if let Some(connect) = plain_http(&admitted) {
        // Plain HTTP: every request is decided again with the caller's policy.
        if connect.is_some() && tls.write_all(rampart_egress::CONNECT_OK).await.is_err() {
            return;
        }
        let text = format!("{caller} is no longer a service of the directory (or is revoked)");
        let for_policy = ctx.clone();
        let engine = HttpEgress {
            ctx: ctx.clone(),
            rt: rt.clone(),
            via: Via::Direct,
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
        return engine.serve(ByRecord(tls), admitted.prefix).await;
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
    let event = resolved_fields(event, &c).with("rampart.decision", "allow");
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
    let ended = relay(
        &mut ByRecord(tls),
        &mut upstream,
        ctx.current.clone(),
        still,
    )
    .await;
    let event = ended_fields(&ctx, "egress", event, started, ended, || {
        "the reloaded gateway policy no longer allows this caller and destination".into()
    });
    ctx.emit(event);
}
