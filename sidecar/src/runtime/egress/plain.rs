//! Plain-HTTP egress, request by request: the app's connection is served by hyper and every
//! request on it is decided on its own (its Host header, or its absolute-form target, against
//! the current policy), so a kept-alive connection cannot reach a site its first request did
//! not name — not even one co-hosted at the same address.
//!
//! An allowed request reuses the upstream connection opened for the same destination (same
//! rule outcome: name and port, or address); a request for another allowed destination gets a
//! decision, a lookup and a dial of its own; a refused one gets a `403` with the reason
//! (`X-Rampart-Deny-Reason`, `X-Rampart-Deny-Rule`), a JSON line and the denial counter, and the
//! connection stays open for the next request. Used by the sidecar (towards the app; allowed
//! requests leave directly or, with `egress.gateway`, to the gateway as absolute-form requests
//! over mTLS) and by the gateway (towards the calling sidecars, each request decided again
//! with the caller's policy).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, HOST, UPGRADE};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rampart_egress::{decide, Decision, Denied, Dial, EgressPolicy, Mode, Seen};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::{decision_fields, deny, destination_of, resolved_fields, EgressRuntime};
use crate::config::egress::GatewayRef;
use crate::runtime::generation::Generation;
use crate::runtime::log::Event;
use crate::runtime::Ctx;

type Body = BoxBody<Bytes, hyper::Error>;

/// The policy a request is decided with, read from the current generation; `Err` is a refusal
/// of every request (reason, text): the gateway's caller is no longer in the directory.
pub(crate) type PolicyOf =
    Box<dyn Fn(&Generation) -> Result<Arc<EgressPolicy>, (&'static str, String)> + Send + Sync>;

/// Where allowed requests go.
#[derive(Debug, Clone)]
pub(crate) enum Via {
    /// Resolved, vetted and dialled here (from the gateway's source address in gateway mode).
    Direct,
    /// Over mTLS to the egress gateway, which decides and dials again.
    Gateway(GatewayRef),
}

/// One plain-HTTP egress connection.
pub(crate) struct HttpEgress {
    pub ctx: Arc<Ctx>,
    pub rt: Arc<EgressRuntime>,
    pub via: Via,
    pub mode: Mode,
    /// The CONNECT this connection tunnels through: every request inside must name its target.
    pub tunnel: Option<Seen>,
    pub policy: PolicyOf,
    /// The start of every log line of this connection.
    pub event: Event,
}

/// An upstream connection and the destination it was dialled for.
struct Upstream {
    dial: Dial,
    sender: SendRequest<Incoming>,
}

impl HttpEgress {
    /// Serves the app's (or calling sidecar's) connection; `prefix` is what was read from it
    /// already (the first request's head, read to decide the connection's kind).
    pub(crate) async fn serve<S>(self, io: S, prefix: Vec<u8>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let io = tokio::io::join(std::io::Cursor::new(prefix).chain(read), write);
        let peek_timeout = self.rt.options.peek_timeout;
        let this = Arc::new(self);
        let slot: Arc<Mutex<Option<Upstream>>> = Arc::default();
        let service = service_fn(move |req| {
            let (this, slot) = (this.clone(), slot.clone());
            async move { Ok::<_, Infallible>(this.request(&slot, req).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(peek_timeout)
            .preserve_header_case(true)
            .max_buf_size(rampart_egress::peek::MAX_PEEK)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
            .await;
    }

    /// Decides one request and forwards it, or answers the refusal.
    async fn request(
        &self,
        slot: &Mutex<Option<Upstream>>,
        mut req: Request<Incoming>,
    ) -> Response<Body> {
        let ctx = &self.ctx;
        let event = self
            .event
            .clone()
            .with("http.request.method", req.method().as_str())
            .with("url.path", req.uri().path());
        let policy = match (self.policy)(&ctx.generation()) {
            Ok(p) => p,
            Err((reason, text)) => {
                deny(ctx, event, reason, None, text.clone());
                return forbidden(StatusCode::FORBIDDEN, reason, None, &text);
            }
        };
        let hosts = req
            .headers()
            .get_all(HOST)
            .iter()
            .map(HeaderValue::as_bytes);
        let target = req.uri().to_string();
        let decided = rampart_egress::peek::request(req.method().as_str(), &target, hosts, 0)
            .map_err(Denied::Unrecognized)
            .and_then(|seen| match &self.tunnel {
                Some(connect) => decide(&policy, self.mode, connect, Some(&seen)),
                None => decide(&policy, self.mode, &seen, None),
            });
        let decision = match decided {
            Ok(d) => d,
            Err(d) => {
                let status = match d {
                    Denied::Unrecognized(_) => StatusCode::BAD_REQUEST,
                    _ => StatusCode::FORBIDDEN,
                };
                super::denied(ctx, event, &d);
                return forbidden(status, d.reason(), d.rule(), &d.to_string());
            }
        };
        let event = decision_fields(event, &decision);
        let reuse = slot
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .filter(|u| u.dial == decision.dial && !u.sender.is_closed());
        let mut upstream = match reuse {
            Some(u) => u,
            None => match self.open(policy, &decision, event.clone()).await {
                Ok(u) => u,
                Err(refusal) => return refusal,
            },
        };
        let (host, port) = destination_of(&decision);
        *req.uri_mut() = match self.via {
            Via::Direct => origin_form(req.uri()),
            Via::Gateway(_) => absolute_form(&host, port, req.uri()),
        };
        for name in ["proxy-connection", "proxy-authorization"] {
            req.headers_mut().remove(name);
        }
        let app_upgrade = req
            .headers()
            .contains_key(UPGRADE)
            .then(|| hyper::upgrade::on(&mut req));
        if upstream.sender.ready().await.is_err() {
            return self.unavailable(event, "the destination closed the connection");
        }
        let mut resp = match upstream.sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => return self.unavailable(event, &format!("forwarding the request: {e}")),
        };
        if matches!(self.via, Via::Gateway(_)) {
            if let Some(reason) = header(&resp, "x-rampart-deny-reason") {
                let rule = header(&resp, "x-rampart-deny-rule");
                deny(
                    ctx,
                    event.with("rampart.egress.denied_by", "gateway"),
                    &reason,
                    rule.as_deref(),
                    format!("the egress gateway refused ({})", resp.status()),
                );
            }
        }
        match (resp.status(), app_upgrade) {
            (StatusCode::SWITCHING_PROTOCOLS, Some(app)) => {
                // The connection becomes the upgraded protocol's, end to end.
                let theirs = hyper::upgrade::on(&mut resp);
                tokio::spawn(async move {
                    if let (Ok(a), Ok(b)) = (app.await, theirs.await) {
                        let _ = tokio::io::copy_bidirectional(
                            &mut TokioIo::new(a),
                            &mut TokioIo::new(b),
                        )
                        .await;
                    }
                });
            }
            _ => {
                if let Ok(mut s) = slot.lock() {
                    *s = Some(upstream);
                }
            }
        }
        resp.map(BodyExt::boxed)
    }

    /// Opens an upstream connection for an allowed decision: resolve, vet and dial (or the
    /// gateway's tunnel), then an HTTP/1.1 client on it. Logs the allowed connection.
    async fn open(
        &self,
        policy: Arc<EgressPolicy>,
        decision: &Decision,
        event: Event,
    ) -> Result<Upstream, Response<Body>> {
        let ctx = &self.ctx;
        let refuse = |event: Event, reason: &str, rule: Option<&str>, text: String| {
            deny(ctx, event, reason, rule, text.clone());
            forbidden(StatusCode::FORBIDDEN, reason, rule, &text)
        };
        let (sender, event) = match &self.via {
            Via::Direct => {
                let Some(egress) = self.rt.egress(policy) else {
                    let text = super::no_resolver(ctx, event);
                    return Err(forbidden(
                        StatusCode::FORBIDDEN,
                        "resolver_unconfigured",
                        None,
                        &text,
                    ));
                };
                let c = match egress.connect(decision.clone()).await {
                    Ok(c) => c,
                    Err(d) => return Err(refuse(event, d.reason(), d.rule(), d.to_string())),
                };
                let event = resolved_fields(event, &c);
                (client(c.upstream).await, event)
            }
            Via::Gateway(gw) => {
                let g = ctx.generation();
                match super::via_gateway::tunnel(&g, ctx.tls.connector(), gw, &self.rt.options)
                    .await
                {
                    Ok((tls, via)) => (
                        client(tls).await,
                        event.with("rampart.egress.gateway", via.to_string()),
                    ),
                    Err(r) => {
                        let event = event.with("rampart.egress.denied_by", r.by());
                        return Err(refuse(event, r.reason(), r.rule(), r.to_string()));
                    }
                }
            }
        };
        let sender = match sender {
            Ok(s) => s,
            Err(e) => {
                return Err(self.unavailable(event, &format!("HTTP/1.1 to the destination: {e}")))
            }
        };
        ctx.metrics
            .connections
            .with_label_values(&["egress", "allow"])
            .inc();
        ctx.emit(event.with("rampart.decision", "allow"));
        Ok(Upstream {
            dial: decision.dial.clone(),
            sender,
        })
    }

    /// A `502` for an allowed request the destination did not take; logged as an error.
    fn unavailable(&self, event: Event, text: &str) -> Response<Body> {
        self.ctx.emit(
            event
                .with("rampart.decision", "allow")
                .with("error.message", text.to_string()),
        );
        forbidden(StatusCode::BAD_GATEWAY, "upstream_failed", None, text)
    }
}

/// An HTTP/1.1 client connection over `io` (upgrades allowed).
async fn client<S>(io: S) -> Result<SendRequest<Incoming>, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake(TokioIo::new(io))
        .await?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// A response header as text.
fn header(resp: &Response<Incoming>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The request target in origin form (what an origin server expects).
fn origin_form(uri: &Uri) -> Uri {
    uri.path_and_query()
        .map(|pq| Uri::from(pq.clone()))
        .unwrap_or_else(|| Uri::from_static("/"))
}

/// The request target in absolute form for `host:port` (what the gateway, an HTTP proxy,
/// expects).
fn absolute_form(host: &str, port: u16, uri: &Uri) -> Uri {
    let authority = match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("http://{authority}{path}")
        .parse()
        .unwrap_or_else(|_| origin_form(uri))
}

/// A refusal: `status`, `X-Rampart-Deny-Reason` (and `-Rule`), the explanation in the body.
fn forbidden(status: StatusCode, reason: &str, rule: Option<&str>, text: &str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(format!("egress denied: {text}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(reason) {
        h.insert("x-rampart-deny-reason", v);
    }
    if let Some(v) = rule.and_then(|r| HeaderValue::from_str(r).ok()) {
        h.insert("x-rampart-deny-rule", v);
    }
    resp
}
