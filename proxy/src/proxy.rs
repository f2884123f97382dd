//! The `ProxyHttp` implementation: each Pingora phase delegates to a named module.
//!
//! Request path, in order:
//! 1. `request_filter`: snapshot the runtime, identify listener/TLS/client, reject malformed
//!    requests (400), redirect plain HTTP, route (404). **Protection hooks (WAF, rate limits)
//!    belong at the end of this phase**, after routing, so they see the route's policy; a
//!    denial calls [`Edge::deny`] which writes the edge response and records why.
//! 2. `upstream_peer`: round robin with passive health; no healthy endpoint → 503.
//! 3. `upstream_request_filter`: forwarding headers and X-Request-Id.
//! 4. `response_filter`: secure headers, strip list, cookie hardening, X-Request-Id.
//! 5. `fail_to_proxy`: edge error pages (502/504/400) with the same header policy.
//! 6. `logging`: metrics and the JSON access line.

use crate::access_log::{self, AccessRecord};
use crate::config::WafMode;
use crate::errors;
use crate::forwarded::{self, ForwardInfo};
use crate::inspect::{self, BodyRefused, BodyReplay};
use crate::metrics::status_class;
use crate::routing::normalize_host;
use crate::runtime::{ListenerInfo, Route, Runtime};
use crate::state::Shared;
use crate::tls::TlsInfo;
use crate::upstream::Outcome;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use rampart_protect::denial::DenialReason;
use rampart_protect::shed::InFlightGuard;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub struct Edge {
    pub shared: Arc<Shared>,
}

/// Why the edge answered a request itself (for logs and metrics).
///
/// The one denial path: [`Edge::deny`] writes the response; when `counted` names a protect
/// reason the denial is counted once in `rampart_denials_total{reason,route,family}` and fed
/// to the alerter; `logging` puts it in the request's access-log line.
#[derive(Debug, Clone)]
pub struct Denial {
    /// Stage that decided: "edge", "waf", "limits", ...
    pub by: &'static str,
    /// Short machine-readable reason, e.g. "no_route", "malformed_host", "waf_block".
    pub reason: String,
    pub status: u16,
    /// The `rampart_denials_total` reason; `None` for answers that are not refusals
    /// (redirects, no route).
    pub counted: Option<DenialReason>,
    /// WAF rule family (the `family` label).
    pub family: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl Denial {
    /// A refusal by a protection stage, counted under `reason`.
    pub fn protect(by: &'static str, reason: DenialReason, status: u16) -> Self {
        Denial {
            by,
            reason: reason.as_str().to_string(),
            status,
            counted: Some(reason),
            family: None,
            retry_after: None,
        }
    }

    /// An edge answer that is not a refusal (redirect, no route).
    pub fn answer(reason: &str, status: u16) -> Self {
        Denial {
            by: "edge",
            reason: reason.to_string(),
            status,
            counted: None,
            family: None,
            retry_after: None,
        }
    }
}

/// Per-request state.
pub struct RequestCtx {
    start: Instant,
    started_at: SystemTime,
    pub request_id: String,
    pub runtime: Option<Arc<Runtime>>,
    pub listener: Option<Arc<ListenerInfo>>,
    pub route: Option<Arc<Route>>,
    pub https: bool,
    pub host: String,
    pub peer: Option<SocketAddr>,
    pub client_ip: Option<IpAddr>,
    tried: Vec<usize>,
    current: Option<usize>,
    upstream_addr: Option<SocketAddr>,
    upstream_start: Option<Instant>,
    connect_ms: Option<f64>,
    response_ms: Option<f64>,
    pub denial: Option<Denial>,
    /// Extra access-log fields from protection stages (`rampart.waf.*`, `rampart.limit.*`).
    pub log_fields: serde_json::Map<String, serde_json::Value>,
    counted_active: bool,
    /// Held while the request is in flight (load shedding counts these).
    _in_flight: Option<InFlightGuard>,
    /// The body read for inspection, replayed to the upstream.
    pub body: Option<BodyReplay>,
}

impl RequestCtx {
    fn new() -> Self {
        RequestCtx {
            start: Instant::now(),
            started_at: SystemTime::now(),
            request_id: new_request_id(),
            runtime: None,
            listener: None,
            route: None,
            https: false,
            host: String::new(),
            peer: None,
            client_ip: None,
            tried: Vec::new(),
            current: None,
            upstream_addr: None,
            upstream_start: None,
            connect_ms: None,
            response_ms: None,
            denial: None,
            log_fields: serde_json::Map::new(),
            counted_active: false,
            _in_flight: None,
            body: None,
        }
    }

    /// The header policy for edge responses to this request.
    fn policy<'a>(&'a self, rt: &'a Runtime) -> &'a crate::headers::HeaderPolicy {
        self.route
            .as_ref()
            .map(|r| &r.headers)
            .unwrap_or(&rt.default_headers)
    }
}

/// Short, printable, no separators that could confuse logs or headers.
fn is_sane_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn new_request_id() -> String {
    let v: u128 = rand::random();
    format!("{v:032x}")
}

fn tls_info(session: &Session) -> Option<TlsInfo<'_>> {
    session
        .digest()
        .and_then(|d| d.ssl_digest.as_deref())
        .map(TlsInfo::from_digest)
}

fn inet(addr: Option<&pingora_core::protocols::l4::socket::SocketAddr>) -> Option<SocketAddr> {
    addr.and_then(|a| a.as_inet()).copied()
}

impl Edge {
    /// Writes an edge response for a request the edge refuses, and records why. Protection
    /// stages (WAF, limits) call this and then return `Ok(true)` from `request_filter`.
    pub async fn deny(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        denial: Denial,
    ) -> Result<bool> {
        let rt = ctx
            .runtime
            .clone()
            .unwrap_or_else(|| self.shared.runtime.load_full());
        self.record_denial(ctx, &denial);
        ctx.denial = Some(denial.clone());
        errors::respond_denied(
            session,
            denial.status,
            ctx.policy(&rt),
            ctx.https,
            &ctx.request_id,
            denial.retry_after,
        )
        .await?;
        Ok(true)
    }

    /// Counts a refusal once (metric + alerter); `deny` and the body-phase refusals call it.
    fn record_denial(&self, ctx: &RequestCtx, denial: &Denial) {
        let Some(reason) = denial.counted else {
            return;
        };
        let mut d = rampart_protect::denial::Denial::new(reason).detail(denial.reason.clone());
        d.route = ctx.route.as_ref().map(|r| r.name.clone());
        d.family = denial.family.map(str::to_string);
        d.client = ctx.peer;
        self.shared.defences.denials.record(&d);
    }

    fn bad_request(reason: &str) -> Denial {
        Denial {
            reason: reason.to_string(),
            ..Denial::protect("edge", DenialReason::BadRequest, 400)
        }
    }

    /// Identifies listener, TLS and client; fills the context.
    fn identify(&self, session: &Session, ctx: &mut RequestCtx, rt: &Runtime) {
        let local = inet(session.server_addr());
        ctx.listener = local.and_then(|a| rt.listeners.get(&a.port()).cloned());
        ctx.https = ctx.listener.as_ref().is_some_and(|l| l.tls.is_some());
        ctx.peer = inet(session.client_addr());
        if let Some(peer) = ctx.peer {
            ctx.client_ip = Some(rt.trusted.client_ip(peer.ip(), session.req_header()));
            // A trusted proxy's request id is kept so one id follows the request end to end.
            if rt.trusted.contains(peer.ip()) {
                if let Some(id) = session
                    .req_header()
                    .headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| is_sane_request_id(v))
                {
                    ctx.request_id = id.to_string();
                }
            }
        }
        if let Some(l) = &ctx.listener {
            self.shared
                .metrics
                .active_requests
                .with_label_values(&[&l.name])
                .inc();
            self.shared
                .in_flight
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            ctx.counted_active = true;
        }
    }

    /// Malformed requests are refused here, before routing, and never forwarded. Returns the
    /// normalised host.
    fn validate(req: &RequestHeader) -> std::result::Result<String, Denial> {
        let path = req.uri.path();
        let asterisk_form = req.method == http::Method::OPTIONS && path == "*";
        if !(path.starts_with('/') || asterisk_form) {
            return Err(Self::bad_request("malformed_target"));
        }
        if let Some(reason) = Self::framing_problem(req) {
            return Err(Self::bad_request(reason));
        }
        if req.method == http::Method::CONNECT {
            return Err(Denial {
                reason: "connect_method".into(),
                ..Denial::protect("edge", DenialReason::BadRequest, 405)
            });
        }
        Self::request_host(req).map_err(Self::bad_request)
    }

    /// Plain listeners (without `insecure_plaintext`) only redirect to https.
    async fn redirect_to_https(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        listener: &ListenerInfo,
        rt: &Runtime,
    ) -> Result<bool> {
        let port = match listener.redirect_https_port {
            443 => String::new(),
            p => format!(":{p}"),
        };
        let req = session.req_header();
        let target = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let host = if ctx.host.contains(':') {
            format!("[{}]", ctx.host)
        } else {
            ctx.host.clone()
        };
        let location = format!("https://{host}{port}{target}");
        let (policy, id) = (&rt.default_headers, &ctx.request_id);
        errors::respond(session, 308, policy, false, id, Some(&location)).await?;
        ctx.denial = Some(Denial::answer("https_redirect", 308));
        Ok(true)
    }

    /// The protection stages, in order, once the route is known: head limits (414/431), load
    /// shedding and rate limits (503/429), body size (413) and buffering, the WAF (403).
    /// `Some(denial)` refuses the request; nothing has been sent upstream yet.
    async fn protect(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        route: &Route,
    ) -> Result<Option<Denial>> {
        if let Some((reason, status)) = inspect::head_limits(session.req_header(), &rt.limits) {
            return Ok(Some(Denial::protect("limits", reason, status)));
        }
        let client = ctx.client_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let defences = &self.shared.defences;
        match defences.admit_request(Some(&route.name), client).await {
            Ok(guard) => ctx._in_flight = Some(guard),
            Err(refusal) => {
                ctx.log_fields.extend(refusal.log_fields());
                ctx.log_fields.remove("rampart.denial.reason");
                // Counted by admit_request already.
                return Ok(Some(Denial {
                    by: "limits",
                    reason: refusal.reason.as_str().to_string(),
                    status: refusal.status,
                    counted: None,
                    family: None,
                    retry_after: Some(refusal.retry_after_secs),
                }));
            }
        }
        let mut replay = match inspect::buffer_body(session, &route.waf).await? {
            Ok(replay) => replay,
            Err(BodyRefused::TooLarge(detail)) => {
                ctx.log_fields
                    .insert("rampart.limit.detail".into(), detail.into());
                return Ok(Some(Denial::protect(
                    "limits",
                    DenialReason::BodyTooLarge,
                    413,
                )));
            }
        };
        let denial = self.waf(session, ctx, rt, route, &replay);
        if denial.is_none() && replay.rebuild {
            // A chunked body read whole past Pingora's replay window: Pingora reads it again
            // from a rebuilt session (see `h1_rebuild`).
            crate::h1_rebuild::rebuild(session, replay.take_for_rebuild()).await?;
        }
        ctx.body = Some(replay);
        Ok(denial)
    }

    /// Runs the route's WAF policy; logs and counts the decision.
    fn waf(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        route: &Route,
        body: &BodyReplay,
    ) -> Option<Denial> {
        let mode = route.waf.mode;
        if mode == WafMode::Off {
            ctx.log_fields
                .insert("rampart.waf.action".into(), "off".into());
            return None;
        }
        let verdict = inspect::inspect(&rt.waf_rules, session.req_header(), body, &route.waf);
        let action = match (verdict.block, mode) {
            (true, WafMode::Block) => "block",
            (true, _) => "detect",
            (false, _) => "pass",
        };
        let family = inspect::top_family(&verdict);
        self.shared
            .metrics
            .waf_decisions
            .with_label_values(&[action, rampart_protect::denial::family_label(family)])
            .inc();
        inspect::log_fields(&mut ctx.log_fields, action, &verdict, body);
        ctx.log_fields
            .insert("rampart.waf.mode".into(), mode.as_str().into());
        if action != "block" {
            return None;
        }
        Some(Denial {
            family,
            ..Denial::protect("waf", DenialReason::WafBlock, 403)
        })
    }

    /// Ambiguous body framing (request smuggling material): refused rather than normalised.
    fn framing_problem(req: &RequestHeader) -> Option<&'static str> {
        let te = req.headers.contains_key(http::header::TRANSFER_ENCODING);
        let mut cls = req.headers.get_all(http::header::CONTENT_LENGTH).iter();
        let first = cls.next();
        if te && first.is_some() {
            return Some("te_and_cl");
        }
        if let Some(first) = first {
            let valid = first
                .to_str()
                .is_ok_and(|v| v.trim().parse::<u64>().is_ok());
            if !valid || cls.any(|v| v != first) {
                return Some("bad_content_length");
            }
        }
        None
    }

    /// The request's host, or a reason it is malformed.
    fn request_host(req: &RequestHeader) -> std::result::Result<String, &'static str> {
        let mut hosts = req.headers.get_all(http::header::HOST).iter();
        let header = hosts.next();
        if hosts.next().is_some() {
            return Err("multiple_host");
        }
        let from_header = match header {
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(normalize_host)
                    .ok_or("malformed_host")?,
            ),
            None => None,
        };
        let from_uri = match req.uri.authority() {
            Some(a) => Some(normalize_host(a.as_str()).ok_or("malformed_host")?),
            None => None,
        };
        match (from_header, from_uri) {
            (Some(h), Some(u)) if h != u => Err("host_mismatch"),
            (_, Some(u)) => Ok(u),
            (Some(h), None) => Ok(h),
            (None, None) => Err("missing_host"),
        }
    }
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let rt = self.shared.runtime.load_full();
        ctx.runtime = Some(rt.clone());
        self.identify(session, ctx, &rt);
        let Some(listener) = ctx.listener.clone() else {
            return self
                .deny(session, ctx, Self::bad_request("unknown_listener"))
                .await;
        };
        if smuggled_content_length(session) {
            return self
                .deny(session, ctx, Self::bad_request("te_and_cl"))
                .await;
        }
        ctx.host = match Self::validate(session.req_header()) {
            Ok(host) => host,
            Err(denial) => return self.deny(session, ctx, denial).await,
        };
        if listener.tls.is_none() && !listener.insecure_plaintext {
            return self.redirect_to_https(session, ctx, &listener, &rt).await;
        }
        let Some(route) = rt
            .router
            .find(&ctx.host, session.req_header().uri.path())
            .cloned()
        else {
            let d = Denial::answer("no_route", 404);
            return self.deny(session, ctx, d).await;
        };
        ctx.route = Some(route.clone());
        match self.protect(session, ctx, &rt, &route).await? {
            Some(denial) => self.deny(session, ctx, denial).await,
            None => Ok(false),
        }
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(replay) = ctx.body.as_mut() else {
            return Ok(());
        };
        replay.emit(body);
        // A body without a usable Content-Length (chunked, h2) may grow past max_body while
        // streaming: stop forwarding and fail the request.
        if session.body_bytes_read() as u64 > replay.max_body {
            let d = Denial::protect("limits", DenialReason::BodyTooLarge, 413);
            self.record_denial(ctx, &d);
            ctx.log_fields.insert(
                "rampart.limit.detail".into(),
                "body grew past max_body".into(),
            );
            ctx.denial = Some(d);
            return Error::e_explain(ErrorType::HTTPStatus(413), "request body over max_body");
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(route) = ctx.route.clone() else {
            return Error::e_explain(ErrorType::HTTPStatus(404), "no route");
        };
        let Some(idx) = route.upstream.pick(&ctx.tried) else {
            self.shared
                .metrics
                .upstream_errors
                .with_label_values(&[&route.upstream.name, "no_healthy_endpoint"])
                .inc();
            return Error::e_explain(ErrorType::HTTPStatus(503), "no healthy upstream endpoint");
        };
        ctx.tried.push(idx);
        if let Some(replay) = ctx.body.as_mut() {
            replay.restart();
        }
        ctx.current = Some(idx);
        ctx.upstream_addr = Some(route.upstream.endpoints[idx].addr);
        ctx.upstream_start = Some(Instant::now());
        Ok(route.upstream.peer(idx))
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        #[cfg(unix)] _fd: std::os::unix::io::RawFd,
        #[cfg(windows)] _sock: std::os::windows::io::RawSocket,
        _digest: Option<&pingora_core::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let (Some(route), Some(idx)) = (&ctx.route, ctx.current) {
            route.upstream.record(idx, Outcome::Connected);
        }
        ctx.connect_ms = ctx
            .upstream_start
            .map(|s| s.elapsed().as_secs_f64() * 1000.0);
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let (Some(route), Some(idx)) = (&ctx.route, ctx.current) {
            let up = &route.upstream;
            self.shared
                .metrics
                .upstream_errors
                .with_label_values(&[&up.name, &error_kind(&e)])
                .inc();
            if up.record(idx, Outcome::ConnectFailed) {
                let ep = up.endpoints[idx].addr.to_string();
                self.shared
                    .metrics
                    .ejections
                    .with_label_values(&[&up.name, &ep])
                    .inc();
                tracing::warn!(upstream = %up.name, endpoint = %ep, "endpoint ejected after connect failures");
            }
            // Try another endpoint while untried healthy ones remain.
            e.set_retry(ctx.tried.len() < up.endpoints.len());
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let rt = ctx
            .runtime
            .clone()
            .unwrap_or_else(|| self.shared.runtime.load_full());
        if let (Some(peer), Some(client)) = (ctx.peer, ctx.client_ip) {
            let info = ForwardInfo {
                peer: peer.ip(),
                client,
                trusted_peer: rt.trusted.contains(peer.ip()),
                proto: if ctx.https { "https" } else { "http" },
                host: &ctx.host,
            };
            forwarded::apply(req, &info);
        }
        req.insert_header("x-request-id", ctx.request_id.as_str())?;
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.response_ms = ctx
            .upstream_start
            .map(|s| s.elapsed().as_secs_f64() * 1000.0);
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let rt = ctx
            .runtime
            .clone()
            .unwrap_or_else(|| self.shared.runtime.load_full());
        match &ctx.route {
            Some(route) => {
                route.headers.apply(resp, ctx.https);
                route.cookies.apply(resp);
            }
            None => rt.default_headers.apply(resp, ctx.https),
        }
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &ErrorSource::Upstream =>
            {
                504
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError
                    | ErrorType::ReadError
                    | ErrorType::ConnectionClosed
                    | ErrorType::HandshakeError => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if e.esource() == &ErrorSource::Upstream && !matches!(e.etype(), ErrorType::HTTPStatus(_)) {
            if let Some(route) = &ctx.route {
                // Connect failures were counted in fail_to_connect.
                if ctx.connect_ms.is_some() {
                    self.shared
                        .metrics
                        .upstream_errors
                        .with_label_values(&[&route.upstream.name, &error_kind(e)])
                        .inc();
                }
            }
        }
        if code == 400 && ctx.denial.is_none() {
            // The request body broke its framing (e.g. an invalid chunk size) while we read it.
            let d = Self::bad_request("malformed_body");
            self.record_denial(ctx, &d);
            ctx.denial = Some(d);
        }
        if code > 0 {
            let rt = ctx
                .runtime
                .clone()
                .unwrap_or_else(|| self.shared.runtime.load_full());
            if let Err(err) = errors::respond(
                session,
                code,
                ctx.policy(&rt),
                ctx.https,
                &ctx.request_id,
                None,
            )
            .await
            {
                tracing::debug!("could not send error response: {err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let m = &self.shared.metrics;
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        let route = ctx.route.as_ref().map(|r| r.name.as_str()).unwrap_or("");
        let elapsed = ctx.start.elapsed();
        m.requests
            .with_label_values(&[route, status_class(status)])
            .inc();
        m.duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        if ctx.counted_active {
            if let Some(l) = &ctx.listener {
                m.active_requests.with_label_values(&[&l.name]).dec();
            }
            self.shared
                .in_flight
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
        self.shared
            .access_log
            .send(Box::new(access_record(session, e, ctx, status, elapsed)));
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        // Every request is already in the access log with its error.
        true
    }
}

/// Content-Length sent together with Transfer-Encoding (request smuggling material). Pingora
/// drops the Content-Length before our filters run, so the raw head is checked.
fn smuggled_content_length(session: &Session) -> bool {
    if !session
        .req_header()
        .headers
        .contains_key(http::header::TRANSFER_ENCODING)
    {
        return false;
    }
    let Some(h1) = session.downstream_session.as_http1() else {
        return false;
    };
    let raw = h1.get_headers_raw_bytes();
    raw.split(|&b| b == b'\n')
        .any(|line| line.len() >= 15 && line[..15].eq_ignore_ascii_case(b"content-length:"))
}

fn error_kind(e: &Error) -> String {
    e.etype().as_str().to_ascii_lowercase()
}

fn access_record(
    session: &Session,
    e: Option<&Error>,
    ctx: &mut RequestCtx,
    status: u16,
    elapsed: std::time::Duration,
) -> AccessRecord {
    let req = session.req_header();
    let redact: &[String] = ctx
        .runtime
        .as_ref()
        .map(|r| r.redact_keys.as_slice())
        .unwrap_or(&[]);
    let tls = tls_info(session);
    let server = inet(session.server_addr());
    let mut extra = std::mem::take(&mut ctx.log_fields);
    if let Some(d) = &ctx.denial {
        extra.insert("rampart.denial.by".into(), d.by.into());
        extra.insert("rampart.denial.reason".into(), d.reason.clone().into());
    }
    let client_address = ctx.client_ip.map(|i| i.to_string()).unwrap_or_default();
    // Usually the same address: copy the text rather than format it twice.
    let peer_address = match ctx.peer {
        Some(p) if Some(p.ip()) == ctx.client_ip => client_address.clone(),
        Some(p) => p.ip().to_string(),
        None => String::new(),
    };
    AccessRecord {
        timestamp: Some(ctx.started_at),
        request_id: ctx.request_id.clone(),
        listener: ctx
            .listener
            .as_ref()
            .map(|l| l.name.clone())
            .unwrap_or_default(),
        client_address,
        client_port: ctx
            .peer
            .filter(|p| Some(p.ip()) == ctx.client_ip)
            .map(|p| p.port()),
        peer_address,
        peer_port: ctx.peer.map(|p| p.port()),
        server_address: if ctx.host.is_empty() {
            server.map(|s| s.ip().to_string()).unwrap_or_default()
        } else {
            ctx.host.clone()
        },
        method: access_log::cap(req.method.as_str(), 32),
        scheme: if ctx.https { "https" } else { "http" },
        path: access_log::cap(req.uri.path(), access_log::MAX_PATH),
        query: req
            .uri
            .query()
            .map(|q| access_log::cap(&access_log::redact_query(q, redact), access_log::MAX_PATH)),
        route: ctx
            .route
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        protocol: match req.version {
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_09 => "0.9",
            _ => "1.1",
        },
        user_agent: req
            .headers
            .get(http::header::USER_AGENT)
            .map(|v| access_log::cap(&String::from_utf8_lossy(v.as_bytes()), access_log::MAX_UA))
            .unwrap_or_default(),
        status,
        request_body_size: session.body_bytes_read(),
        response_body_size: session.body_bytes_sent(),
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        upstream_address: ctx.upstream_addr.map(|a| a.to_string()),
        upstream_connect_ms: ctx.connect_ms,
        upstream_response_ms: ctx.response_ms,
        tls_version: tls.map(|t| t.version.to_string()),
        tls_cipher: tls.map(|t| t.cipher.to_string()),
        tls_server_name: tls.and_then(|t| t.server_name.map(str::to_string)),
        error: e.map(|e| e.etype().as_str().to_string()),
        extra,
    }
}
