//! The egress path (S.N.7): connections the app makes to destinations outside the mesh
//! directory, decided by the policy's `[egress]` section through rampart-egress.
//!
//! - transparent mode: the redirected connection's original destination is not a directory
//!   address → [`handle`] with `Mode::Transparent` (SNI peek / Host);
//! - explicit proxy mode (`egress.proxy_listen`, for `HTTPS_PROXY` apps) → [`serve_proxy`]
//!   (CONNECT target, and the SNI inside must equal it; absolute-form requests).
//!
//! A raw IP no address rule names is denied whatever the SNI says; an allowed name is resolved
//! by our own DNSSEC-validating resolver (rampart-dns), vetted, and exactly the vetted address
//! is dialled — or, with `egress.gateway`, the connection goes over mTLS to the egress gateway
//! ([`gateway`]; the sidecar's side of it is [`via_gateway`]), which checks it again and dials from its fixed source address.
//!
//! Every decision is one JSON line (`rampart.sidecar.egress`) and counted in
//! `rampart_sidecar_connections_total{direction="egress"}` and, for denials,
//! `rampart_sidecar_denials_total{direction="egress",reason,rule}`.

mod gateway;
pub(crate) mod plain;
pub mod via_gateway;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rampart_dns::Resolver;
use rampart_egress::{
    Admitted, Connected, Decision, Denied, Dial, DialOptions, Egress, EgressPolicy, Mode, Seen,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::egress::EgressConfig;
use crate::runtime::generation::Generation;
use crate::runtime::log::Event;
use crate::runtime::relay::{ended_fields, relay, ByRecord};
use crate::runtime::Ctx;

/// Every reason code an egress denial is logged and counted with: rampart-egress's (and
/// rampart-dns's), and those of the sidecar and the gateway themselves.
pub const REASONS: &[&str] = &[
    "gateway_unavailable",
    "unexpected_peer_identity",
    "gateway_refused",
    "no_client_identity",
    "unknown_caller",
    "resolver_unconfigured",
];

/// What the egress path keeps for the life of the process: the resolver and dial options.
/// The policy comes from the current generation (reloaded with the rest of the policy file).
#[derive(Debug)]
pub struct EgressRuntime {
    /// The `[egress]` config.
    pub config: EgressConfig,
    /// Our resolver; `None` for a sidecar that leaves through a gateway without resolvers.
    pub resolver: Option<Arc<Resolver>>,
    /// Dial options (the gateway's carry its source address).
    pub options: DialOptions,
}

impl EgressRuntime {
    /// Builds the resolver (validation always on). `source` binds every outgoing
    /// connection (gateway mode).
    pub fn start(config: &EgressConfig, source: Option<std::net::IpAddr>) -> Result<Self, String> {
        let resolver = if config.resolvers.is_empty() {
            None
        } else {
            Some(Arc::new(
                Resolver::new(config.resolver_config())
                    .map_err(|e| format!("egress resolver: {e}"))?,
            ))
        };
        Ok(EgressRuntime {
            config: config.clone(),
            resolver,
            options: DialOptions {
                bind: source,
                connect_timeout: config.connect_timeout,
                peek_timeout: config.peek_timeout,
            },
        })
    }

    /// The egress path for one policy (needs the resolver).
    pub(crate) fn egress(&self, policy: Arc<EgressPolicy>) -> Option<Egress> {
        Some(Egress {
            policy,
            resolver: self.resolver.clone()?,
            options: self.options,
        })
    }
}

/// The policy that applies to this sidecar's own egress: its `[egress]` section, or nothing
/// allowed.
fn own_policy(g: &Generation) -> Arc<EgressPolicy> {
    g.policy.egress().cloned().unwrap_or_default()
}

/// Starts the explicit proxy listener when configured; returns what it bound.
pub async fn start_listeners(ctx: &Arc<Ctx>) -> Result<Vec<(String, SocketAddr)>, String> {
    let mut bound = Vec::new();
    let Some(rt) = ctx.egress.clone() else {
        return Ok(bound);
    };
    if let Some(listen) = rt.config.proxy_listen {
        let l = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        bound.push(("egress:proxy".to_string(), l.local_addr().unwrap_or(listen)));
        tokio::spawn(serve_proxy(ctx.clone(), rt.clone(), l));
    }
    if let Some(gw) = ctx.config.gateway.clone() {
        let l = TcpListener::bind(gw.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", gw.listen))?;
        bound.push(("gateway".to_string(), l.local_addr().unwrap_or(gw.listen)));
        tokio::spawn(gateway::serve(ctx.clone(), rt, l));
    }
    Ok(bound)
}

/// Explicit proxy mode: the app's `CONNECT` and absolute-form requests.
pub async fn serve_proxy(ctx: Arc<Ctx>, rt: Arc<EgressRuntime>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(handle(
                    ctx.clone(),
                    rt.clone(),
                    tcp,
                    peer,
                    Mode::ExplicitProxy,
                ));
            }
            Err(e) => {
                ctx.emit(
                    Event::new("error")
                        .with("error.message", format!("accept (egress proxy): {e}")),
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// The start of an egress log line.
pub(crate) fn event(mode: &str, client: SocketAddr, g: &Generation) -> Event {
    Event::new("egress")
        .with("rampart.direction", "egress")
        .with("rampart.egress.mode", mode)
        .with("client.address", client.ip().to_string())
        .with("client.port", client.port())
        .with("network.transport", "tcp")
        .with("rampart.policy.file", g.policy.version().file.clone())
        .with("rampart.policy.version", g.policy.version().version.clone())
}

/// Logs and counts a denial.
pub(crate) fn deny(ctx: &Ctx, event: Event, reason: &str, rule: Option<&str>, text: String) {
    ctx.metrics
        .connections
        .with_label_values(&["egress", "deny"])
        .inc();
    ctx.metrics
        .denials
        .with_label_values(&["egress", "enforce", reason, rule.unwrap_or("")])
        .inc();
    ctx.emit(
        event
            .with("rampart.decision", "deny")
            .with("rampart.reason.kind", reason)
            .with("rampart.reason", text)
            .maybe("rampart.rule", rule.map(str::to_string)),
    );
}

/// Logs and counts a refusal for want of a resolver (no `egress.resolvers`, and no gateway to
/// leave through); returns the explanation.
pub(crate) fn no_resolver(ctx: &Ctx, event: Event) -> String {
    let text = "no resolver configured (egress.resolvers) and no gateway".to_string();
    deny(ctx, event, "resolver_unconfigured", None, text.clone());
    text
}

/// Logs and counts a rampart-egress denial.
pub(crate) fn denied(ctx: &Ctx, event: Event, d: &Denied) {
    deny(ctx, event, d.reason(), d.rule(), d.to_string());
}

/// The fields of an admitted connection.
pub(crate) fn admitted_fields(event: Event, a: &Admitted) -> Event {
    decision_fields(event, &a.decision)
}

/// The fields of an allowed decision: destination, protocol, rule.
pub(crate) fn decision_fields(event: Event, d: &Decision) -> Event {
    let (host, port) = destination_of(d);
    event
        .with("server.address", host)
        .with("server.port", port)
        .with("network.protocol.name", d.protocol.as_str())
        .with("rampart.rule", d.rule.clone())
}

/// The fields of a dialled destination: the address, and the DNS verdict for names.
pub(crate) fn resolved_fields(event: Event, c: &Connected) -> Event {
    event
        .with("network.peer.address", c.peer.ip().to_string())
        .with("network.peer.port", c.peer.port())
        .maybe(
            "network.local.address",
            c.upstream.local_addr().ok().map(|a| a.ip().to_string()),
        )
        .maybe(
            "rampart.dns.security",
            c.resolved.as_ref().map(|r| r.security.as_str()),
        )
        .maybe(
            "rampart.dns.from_cache",
            c.resolved.as_ref().map(|r| r.from_cache),
        )
}

/// `host`, `port` of an allowed connection.
pub(crate) fn destination(a: &Admitted) -> (String, u16) {
    destination_of(&a.decision)
}

/// `host`, `port` of an allowed decision.
pub(crate) fn destination_of(d: &Decision) -> (String, u16) {
    match &d.dial {
        Dial::Name { host, port, .. } => (host.clone(), *port),
        Dial::Address(sa) => (sa.ip().to_string(), sa.port()),
    }
}

/// Whether a connection carries plain HTTP (served request by request, [`plain`]): a Host-led
/// request (transparent), an absolute-form one (explicit proxy), or a CONNECT tunnel whose
/// first bytes are a request. Returns the CONNECT the requests must stay inside.
pub(crate) fn plain_http(a: &Admitted) -> Option<Option<Seen>> {
    match (&a.seen, &a.inner) {
        (Seen::Http { .. } | Seen::Absolute { .. }, _) => Some(None),
        (Seen::Connect { .. }, Some(Seen::Http { .. })) => Some(Some(a.seen.clone())),
        _ => None,
    }
}

/// One egress connection of the app (transparent or explicit proxy mode).
pub async fn handle(
    ctx: Arc<Ctx>,
    rt: Arc<EgressRuntime>,
    mut app: TcpStream,
    app_peer: SocketAddr,
    mode: Mode,
) {
    let _in_flight = ctx.in_flight.guard();
    let started = Instant::now();
    let g = ctx.generation();
    let (mode_name, original) = match mode {
        Mode::Transparent { original_dst } => ("transparent", Some(original_dst.to_string())),
        Mode::ExplicitProxy => ("proxy", None),
    };
    let event = event(mode_name, app_peer, &g)
        .with("rampart.identity", ctx.tls.id().to_string())
        .maybe("rampart.destination", original);
    let policy = own_policy(&g);
    drop(g);
    let admitted =
        match rampart_egress::admit(&policy, rt.options.peek_timeout, &mut app, mode).await {
            Ok(a) => a,
            Err((d, answered)) => {
                if mode == Mode::ExplicitProxy && !answered {
                    let _ = app.write_all(&d.http_response()).await;
                }
                return denied(&ctx, event, &d);
            }
        };
    if let Some(tunnel) = plain_http(&admitted) {
        let via = match &rt.config.gateway {
            Some(gw) => plain::Via::Gateway(gw.clone()),
            None => plain::Via::Direct,
        };
        let engine = plain::HttpEgress {
            ctx: ctx.clone(),
            rt: rt.clone(),
            via,
            mode,
            tunnel,
            policy: Box::new(|g| Ok(own_policy(g))),
            event,
        };
        return engine.serve(app, admitted.prefix).await;
    }
    let event = admitted_fields(event, &admitted);
    let explicit_unanswered = mode == Mode::ExplicitProxy && !admitted.answered;
    if let Some(gw) = rt.config.gateway.clone() {
        let g = ctx.generation();
        match via_gateway::open(&g, ctx.tls.connector(), &gw, &admitted, &rt.options).await {
            Ok((tls, leftover, via)) => {
                drop(g);
                if !leftover.is_empty() && app.write_all(&leftover).await.is_err() {
                    return;
                }
                let event = event.with("rampart.egress.gateway", via.to_string());
                finish(
                    &ctx,
                    event,
                    started,
                    app,
                    &mut ByRecord(tls),
                    admitted,
                    false,
                )
                .await;
            }
            Err(refusal) => {
                if explicit_unanswered {
                    let r = rampart_egress::forbidden_response(
                        refusal.reason(),
                        refusal.rule(),
                        &refusal.to_string(),
                    );
                    let _ = app.write_all(&r).await;
                }
                deny(
                    &ctx,
                    event.with("rampart.egress.denied_by", refusal.by()),
                    refusal.reason(),
                    refusal.rule(),
                    refusal.to_string(),
                );
            }
        }
        return;
    }
    let Some(egress) = rt.egress(policy) else {
        no_resolver(&ctx, event);
        return;
    };
    match egress.connect(admitted.decision.clone()).await {
        Ok(c) => {
            let event = resolved_fields(event, &c);
            let mut upstream = c.upstream;
            finish(&ctx, event, started, app, &mut upstream, admitted, true).await;
        }
        Err(d) => {
            if explicit_unanswered {
                let _ = app.write_all(&d.http_response()).await;
            }
            denied(&ctx, event, &d);
        }
    }
}

/// Sends the prefix (when `send_prefix`), relays until either side ends or a reload's
/// policy denies the connection, then logs.
async fn finish<U: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    event: Event,
    started: Instant,
    mut app: TcpStream,
    upstream: &mut U,
    admitted: Admitted,
    send_prefix: bool,
) {
    if send_prefix && !admitted.prefix.is_empty() {
        if let Err(e) = upstream.write_all(&admitted.prefix).await {
            return ctx.emit(
                event
                    .with("rampart.decision", "allow")
                    .with("error.message", format!("writing to the destination: {e}")),
            );
        }
    }
    ctx.metrics
        .connections
        .with_label_values(&["egress", "allow"])
        .inc();
    let ended = relay(&mut app, upstream, ctx.current.clone(), |g| {
        admitted.still_allowed(&own_policy(g))
    })
    .await;
    let event = ended_fields(
        ctx,
        "egress",
        event.with("rampart.decision", "allow"),
        started,
        ended,
        || match rampart_egress::decide(
            &own_policy(&ctx.generation()),
            admitted.mode,
            &admitted.seen,
            admitted.inner.as_ref(),
        ) {
            Ok(_) => "allowed again".to_string(),
            Err(d) => d.to_string(),
        },
    );
    ctx.emit(event);
}
