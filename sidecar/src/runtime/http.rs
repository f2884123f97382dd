//! HTTP/1.1 ports: every request is decided on its own (method and path), the caller's
//! identity reaches the app in `x-forwarded-client-cert` (Envoy's format, `By=…;URI=…`), and
//! any such header the caller sent is removed first. Paths that are not in normal form are
//! refused with 400 before policy: policy must not guess how the app would read them.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::IntCounter;
use rampart_tls::spiffe::SpiffeId;
use tokio::net::TcpStream;

use super::log::{base_event, DecisionFields};
use super::metrics::count;
use super::{Ctx, Generation, CONNECT_TIMEOUT};
use crate::config::InboundPort;
use crate::policy::pattern::is_normal_path;
use crate::policy::{Decision, HttpRequest, InboundRequest, PolicyVersion, Verdict};
use rampart_ops::json_log::{Fields, Fixed, Timestamp};

/// The app's answer streamed as it comes, or our own short answer (no box per response).
type Body = Either<Incoming, Full<Bytes>>;

const XFCC: HeaderName = HeaderName::from_static("x-forwarded-client-cert");
const DENIED: HeaderName = HeaderName::from_static("x-rampart-denied");
/// Hop-by-hop headers (RFC 9110 §7.6.1) that are not forwarded.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// A request line's fields that its connection fixes, serialised once per connection.
#[derive(serde::Serialize)]
struct ConnFields<'a> {
    #[serde(rename = "event.name")]
    event: &'static str,
    #[serde(rename = "rampart.direction")]
    direction: &'static str,
    #[serde(rename = "client.address")]
    client_address: IpAddr,
    #[serde(rename = "client.port")]
    client_port: u16,
    #[serde(rename = "server.port")]
    server_port: u16,
    #[serde(rename = "network.transport")]
    transport: &'static str,
    #[serde(
        rename = "rampart.caller.identity",
        skip_serializing_if = "Option::is_none"
    )]
    caller: Option<&'a str>,
    #[serde(rename = "rampart.callee.identity")]
    callee: &'a str,
    #[serde(rename = "network.protocol.name")]
    protocol: &'static str,
}

fn conn_fields<'a>(
    peer: SocketAddr,
    port: u16,
    caller: Option<&'a SpiffeId>,
    own: &'a SpiffeId,
) -> ConnFields<'a> {
    ConnFields {
        event: "rampart.sidecar.request",
        direction: "inbound",
        client_address: peer.ip(),
        client_port: peer.port(),
        server_port: port,
        transport: "tcp",
        caller: caller.map(SpiffeId::as_str),
        callee: own.as_str(),
        protocol: "http",
    }
}

/// A request line's own fields (after its connection's [`ConnFields`]): borrowed, written
/// straight into the line ([`RequestLine::write`]), no map and no `Serialize` pass.
struct RequestLine<'a> {
    timestamp: Timestamp,
    method: &'a str,
    path: &'a str,
    decision: Option<DecisionFields<'a>>,
    status: u16,
    /// Why a request was refused before policy (the decision has its own reason).
    reason: Option<&'a str>,
    error: Option<&'a str>,
    duration_ms: Option<f64>,
}

impl RequestLine<'_> {
    fn write(&self, f: &mut Fields<'_>) {
        f.timestamp("timestamp", self.timestamp)
            .str("http.request.method", self.method)
            .str("url.path", self.path);
        if let Some(decision) = &self.decision {
            f.flatten(decision);
        }
        f.value("http.response.status_code", &self.status);
        if let Some(reason) = self.reason {
            f.str("rampart.reason", reason);
        }
        if let Some(error) = self.error {
            f.str("error.message", error);
        }
        if let Some(ms) = self.duration_ms {
            f.value("rampart.duration_ms", &ms);
        }
    }
}

/// [`ConnFields`] and an admitting decision's fields (see `Conn::admitted_head`).
#[derive(serde::Serialize)]
struct HeadFields<'a> {
    #[serde(flatten)]
    conn: ConnFields<'a>,
    #[serde(flatten)]
    decision: DecisionFields<'a>,
}

/// The serialised [`HeadFields`] of one admitting rule; the `Arc`s identify it (and, held,
/// keep its address from being reused by another).
struct AdmittedHead {
    policy: Arc<PolicyVersion>,
    set: Arc<str>,
    rule: Arc<str>,
    head: Fixed,
}

struct Conn {
    ctx: Arc<Ctx>,
    /// `rampart_sidecar_requests_total{direction="inbound",result="allow"}`, looked up once.
    allowed: IntCounter,
    /// The request lines' connection fields ([`ConnFields`]), serialised once.
    fixed: Fixed,
    /// The head of the lines of requests one rule admits: [`ConnFields`] and the decision's
    /// fields, serialised once and kept while the same rule of the same policy admits.
    admitted_head: Mutex<Option<AdmittedHead>>,
    port: Arc<InboundPort>,
    peer: SocketAddr,
    caller: Option<SpiffeId>,
    own: SpiffeId,
    /// The `x-forwarded-client-cert` value the app gets (`By=…;URI=…`), made once per
    /// connection: the caller and we do not change while it lasts.
    xfcc: Option<HeaderValue>,
    /// The connection to the app, reused request after request (HTTP/1.1 serves one request
    /// at a time per connection, so it is taken out and put back; no lock is held across an
    /// await).
    app: Mutex<Option<SendRequest<Incoming>>>,
    /// The last request's method and path, re-checked when the policy changes.
    last: Mutex<Option<(http::Method, String)>>,
    /// The decision for every request of this connection, while the generation that made it
    /// is current, when that generation's rules for this port read neither methods nor paths
    /// (`Policy::inbound_reads_http`): caller, port and source are the connection's.
    decided: Mutex<Option<(Arc<Generation>, Arc<Decision>)>>,
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Serves one inbound TLS connection as HTTP/1.1.
pub async fn connection(
    ctx: Arc<Ctx>,
    port: Arc<InboundPort>,
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    caller: Option<SpiffeId>,
) {
    let own = ctx.tls.id();
    let xfcc = caller
        .as_ref()
        .and_then(|caller| HeaderValue::from_str(&format!("By={own};URI={caller}")).ok());
    let fixed =
        Fixed::new(&conn_fields(peer, port.port, caller.as_ref(), &own)).unwrap_or_default();
    let conn = Arc::new(Conn {
        fixed,
        admitted_head: Mutex::new(None),
        ctx: ctx.clone(),
        port: port.clone(),
        peer,
        caller,
        own,
        xfcc,
        allowed: ctx
            .metrics
            .requests
            .with_label_values(&["inbound", Verdict::Allow.as_str()]),
        app: Mutex::new(None),
        last: Mutex::new(None),
        decided: Mutex::new(None),
    });
    let service = {
        let conn = conn.clone();
        service_fn(move |req| {
            let conn = conn.clone();
            async move { Ok::<_, Infallible>(conn.request(req).await) }
        })
    };
    // `half_close`: while a request is with the app, hyper would otherwise try a read on the
    // caller's connection at every poll to notice an early close (a few per request, each
    // through rustls and tokio's readiness); a caller that has gone is noticed when its
    // answer is written, and a caller that only shut its sending side still gets the answer.
    let server = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(64 * 1024)
        .half_close(true)
        .serve_connection(TokioIo::new(tls), service);
    tokio::pin!(server);
    let mut current = ctx.current.clone();
    current.mark_unchanged();
    loop {
        tokio::select! {
            _ = &mut server => return,
            changed = current.changed() => {
                if changed.is_err() {
                    let _ = (&mut server).await;
                    return;
                }
                // Decided again under the new generation (and the old one not kept alive).
                if let Ok(mut decided) = conn.decided.lock() {
                    *decided = None;
                }
                if let Some(reason) = conn.revoked() {
                    ctx.metrics.closed_by_policy.with_label_values(&["inbound"]).inc();
                    ctx.emit(
                        base_event("connection_closed", &port, peer, conn.caller.as_ref(), &conn.own)
                            .with("rampart.closed_by_policy", true)
                            .with("rampart.closed.reason", reason),
                    );
                    return;
                }
            }
        }
    }
}

impl Conn {
    /// `Some(explanation)` when the new policy denies the last request of this connection.
    fn revoked(&self) -> Option<String> {
        let g = self.ctx.generation();
        if let Some(caller) = &self.caller {
            if self.ctx.tls.is_revoked(caller) {
                return Some(format!(
                    "caller {caller} is revoked (trust bundle deny-list)"
                ));
            }
        }
        let last = self.last.lock().ok()?.clone()?;
        let d = g.policy.inbound(&InboundRequest {
            caller: self.caller.as_ref(),
            port: self.port.port,
            source: Some(self.peer.ip()),
            http: Some(HttpRequest {
                method: last.0.as_str(),
                path: &last.1,
            }),
        });
        (!d.verdict.passes()).then(|| d.to_string())
    }

    async fn request(&self, mut req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        // A clone of the URI shares hyper's buffer (a reference count, no copy).
        let uri = req.uri().clone();
        let path = uri.path();
        if !path_is_unambiguous(path) {
            self.ctx
                .metrics
                .requests
                .with_label_values(&["inbound", "bad_request"])
                .inc();
            let mut line = self.line(&method, path, 400, started);
            line.reason = Some("path not in normal form");
            line.duration_ms = None;
            self.log(None, line);
            return text(
                StatusCode::BAD_REQUEST,
                "bad request: the path has dot segments, empty segments or encoded separators\n"
                    .into(),
            );
        }
        let decision = self.decide(method.as_str(), path);
        self.remember(&method, path);
        if decision.verdict == Verdict::Allow {
            self.allowed.inc();
        } else {
            count(&self.ctx, "inbound", "request", &decision);
        }
        if !decision.verdict.passes() {
            let mut resp = text(
                StatusCode::FORBIDDEN,
                format!("denied by rampart-sidecar: {decision}\n"),
            );
            if let Some(reason) = &decision.reason {
                resp.headers_mut()
                    .insert(DENIED, HeaderValue::from_static(reason.label()));
            }
            let line = self.line(&method, path, 403, started);
            self.log(Some(&*decision), line);
            return resp;
        }

        // The caller's own x-forwarded-client-cert is never trusted.
        let headers = req.headers_mut();
        while headers.remove(&XFCC).is_some() {}
        strip_hop_by_hop(headers);
        if let Some(v) = &self.xfcc {
            headers.insert(XFCC, v.clone());
        }
        if req.uri().authority().is_some() {
            let origin = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            if let Ok(uri) = origin.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
        }

        let (resp, status, error) = match self.forward(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (resp.map(Either::Left), status, None)
            }
            Err(why) => (
                text(
                    StatusCode::BAD_GATEWAY,
                    "bad gateway: the app did not answer\n".into(),
                ),
                502,
                Some(why),
            ),
        };
        let mut line = self.line(&method, path, status, started);
        line.error = error.as_deref();
        self.log(Some(&*decision), line);
        resp
    }

    /// The current policy's decision on a request (see `Conn::decided`).
    fn decide(&self, method: &str, path: &str) -> Arc<Decision> {
        let g = self.ctx.generation();
        if let Some((at, decision)) = self.decided.lock().ok().as_deref().and_then(Option::as_ref) {
            if Arc::ptr_eq(at, &g) {
                return decision.clone();
            }
        }
        let decision = Arc::new(g.policy.inbound(&InboundRequest {
            caller: self.caller.as_ref(),
            port: self.port.port,
            source: Some(self.peer.ip()),
            http: Some(HttpRequest { method, path }),
        }));
        if !g.policy.inbound_reads_http(self.port.port) {
            if let Ok(mut decided) = self.decided.lock() {
                *decided = Some((g, decision.clone()));
            }
        }
        decision
    }

    /// Keeps the request for policy re-checks; most connections repeat one request, so the
    /// stored copy stays when it is the same.
    fn remember(&self, method: &http::Method, path: &str) {
        if let Ok(mut last) = self.last.lock() {
            if last.as_ref().is_none_or(|(m, p)| m != method || p != path) {
                *last = Some((method.clone(), path.to_owned()));
            }
        }
    }

    /// The request's log line (typed, borrowed: serialised without copies or a map).
    fn line<'a>(
        &'a self,
        method: &'a http::Method,
        path: &'a str,
        status: u16,
        started: Instant,
    ) -> RequestLine<'a> {
        RequestLine {
            timestamp: Timestamp::now(),
            method: method.as_str(),
            path,
            decision: None,
            status,
            reason: None,
            error: None,
            duration_ms: Some(ms(started)),
        }
    }

    /// Queues the request's line with the decision's fields: those of an admitting rule come
    /// ready-made with the connection's (most requests), the others are serialised each time.
    fn log<'a>(&'a self, decision: Option<&'a Decision>, mut line: RequestLine<'a>) {
        let admitted = decision.and_then(|d| match d {
            Decision {
                verdict: Verdict::Allow,
                rule: Some(rule),
                reason: None,
                audit: None,
                ..
            } => Some((d, rule)),
            _ => None,
        });
        let (Some((d, rule)), Ok(mut cached)) = (admitted, self.admitted_head.lock()) else {
            line.decision = decision.map(DecisionFields::of);
            return self.ctx.log.send_fields(&self.fixed, |f| line.write(f));
        };
        let same = cached.as_ref().is_some_and(|c| {
            Arc::ptr_eq(&c.policy, &d.policy)
                && Arc::ptr_eq(&c.set, &rule.set)
                && Arc::ptr_eq(&c.rule, &rule.rule)
        });
        if !same {
            let head = HeadFields {
                conn: self.conn_fields(),
                decision: DecisionFields::of(d),
            };
            *cached = Fixed::new(&head).ok().map(|head| AdmittedHead {
                policy: d.policy.clone(),
                set: rule.set.clone(),
                rule: rule.rule.clone(),
                head,
            });
        }
        match cached.as_ref() {
            Some(c) => self.ctx.log.send_fields(&c.head, |f| line.write(f)),
            None => {
                line.decision = decision.map(DecisionFields::of);
                self.ctx.log.send_fields(&self.fixed, |f| line.write(f))
            }
        }
    }

    /// The fields every request line of this connection carries.
    fn conn_fields(&self) -> ConnFields<'_> {
        conn_fields(self.peer, self.port.port, self.caller.as_ref(), &self.own)
    }

    async fn forward(&self, req: Request<Incoming>) -> Result<Response<Incoming>, String> {
        let reuse = self.app.lock().ok().and_then(|mut slot| slot.take());
        let mut sender = match reuse {
            Some(s) if !s.is_closed() => s,
            _ => self.dial_app().await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| format!("app connection: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("app {}: {e}", self.port.app))?;
        if !sender.is_closed() {
            if let Ok(mut slot) = self.app.lock() {
                *slot = Some(sender);
            }
        }
        Ok(resp)
    }

    async fn dial_app(&self) -> Result<SendRequest<Incoming>, String> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.port.app))
            .await
            .map_err(|_| format!("app {} did not accept in time", self.port.app))?
            .map_err(|e| format!("app {} unreachable: {e}", self.port.app))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("app {}: {e}", self.port.app))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // Most requests carry none: one pass over the names, no lookups.
    let hop_by_hop = |name: &HeaderName| *name == CONNECTION || HOP_BY_HOP.contains(&name.as_str());
    if !headers.keys().any(hop_by_hop) {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// A path the policy can judge the way the app will read it: normal form, and no encoded
/// dot, slash or backslash that an app might decode into one.
fn path_is_unambiguous(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return path == "*";
    };
    if path.contains('\\') {
        return false;
    }
    let encoded_separator = path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'e' | b'f') | (b'5', b'c') | (b'0', b'0')
            )
    });
    if encoded_separator {
        return false;
    }
    is_normal_path(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_paths_are_refused() {
        for ok in ["/", "/a", "/a/b/", "/v1/payments/42", "/50%25off", "/a%20b"] {
            assert!(path_is_unambiguous(ok), "{ok}");
        }
        for bad in [
            "/a/../b",
            "/a/./b",
            "/a//b",
            "/%2e%2e/x",
            "/a%2Fb",
            "/a\\b",
            "a",
            "/x%00",
            "/%2E%2E/x",
            "/a%5Cb",
            "/a%5cb",
        ] {
            assert!(!path_is_unambiguous(bad), "{bad}");
        }
    }

    #[test]
    fn request_line_has_the_decision_and_request_fields() {
        use crate::policy::{AuditOutcome, DenyReason, Direction, Mode, PolicyVersion, RuleRef};
        let rule = |set: &str, name: &str| RuleRef {
            set: set.into(),
            rule: name.into(),
            mode: Mode::Enforce,
            line: 3,
        };
        let decision = Decision {
            direction: Direction::Inbound,
            verdict: Verdict::Allow,
            policy: Arc::new(PolicyVersion {
                file: "/etc/p.toml".into(),
                version: "sha256:00".into(),
            }),
            rule: Some(rule("api", "reads")),
            reason: None,
            audit: Some(AuditOutcome {
                verdict: Verdict::AuditDeny,
                rule: Some(rule("next", "strict")),
                reason: Some(DenyReason::NoClientIdentity),
            }),
        };
        let caller = SpiffeId::parse("spiffe://mesh.local/ns/a/sa/b").unwrap();
        let own = SpiffeId::parse("spiffe://mesh.local/ns/a/sa/me").unwrap();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let fields = || conn_fields(peer, 8080, Some(&caller), &own);
        let request = |decision| RequestLine {
            timestamp: Timestamp::at(std::time::UNIX_EPOCH),
            method: "GET",
            path: "/v1/x",
            decision,
            status: 200,
            reason: None,
            error: None,
            duration_ms: Some(0.25),
        };
        let fixed = Fixed::new(&fields()).unwrap();
        let line = fixed.line_fields(|f| request(Some(DecisionFields::of(&decision))).write(f));
        // The ready-made head of an admitting rule gives the same object.
        let head = HeadFields {
            conn: fields(),
            decision: DecisionFields::of(&decision),
        };
        let with_head = Fixed::new(&head)
            .unwrap()
            .line_fields(|f| request(None).write(f));
        let parse = |line: &[u8]| serde_json::from_slice::<serde_json::Value>(line).unwrap();
        assert_eq!(parse(&with_head), parse(&line));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        for (key, want) in [
            ("event.name", "rampart.sidecar.request"),
            ("client.address", "127.0.0.1"),
            ("rampart.caller.identity", "spiffe://mesh.local/ns/a/sa/b"),
            ("timestamp", "1970-01-01T00:00:00.000000Z"),
            ("http.request.method", "GET"),
            ("url.path", "/v1/x"),
            ("rampart.decision", "allow"),
            ("rampart.rule", "reads"),
            ("rampart.rule_set", "api"),
            ("rampart.policy.version", "sha256:00"),
        ] {
            assert_eq!(v[key], want, "{key} in {v}");
        }
        assert_eq!(v["http.response.status_code"], 200);
        assert_eq!(v["rampart.duration_ms"], 0.25);
        let would = v["rampart.audit.would_deny"].as_str().unwrap();
        assert!(would.starts_with("rule strict: "), "{would}");
        assert!(v.get("rampart.reason").is_none() && v.get("error.message").is_none());
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = http::HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }
}
