//! HTTP/1.1 ports: every request is decided on its own (method and path), the caller's
//! identity reaches the app in `x-forwarded-client-cert` (Envoy's format, `By=…;URI=…`), and
//! any such header the caller sent is removed first. Paths that are not in normal form are
//! refused with 400 before policy: policy must not guess how the app would read them.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{Entry, HeaderName, HeaderValue, CONNECTION};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus::IntCounter;
use rampart_tls::spiffe::SpiffeId;
use tokio::net::TcpStream;

use super::log::{base_event, DecisionFields};
use super::metrics::count;
use super::relay::{ByRecord, Lanes};
use super::{Ctx, Generation, CONNECT_TIMEOUT};
use crate::config::InboundPort;
use crate::policy::{Decision, HttpRequest, InboundRequest, PolicyVersion, Verdict};
use rampart_ops::json_key;
use rampart_ops::json_log::{millis, Fields, Fixed, Timestamp};

/// The app's answer streamed as it comes, or our own short answer (no box per response).
enum Body {
    App(Incoming),
    Own(Full<Bytes>),
}

/// The client side of a connection to the app, driven by the caller's connection's task
/// (see [`connection`]).
type AppConnection = hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Incoming>;

/// The lanes of a caller's connection's task ([`Lanes`]): the caller's connection (hyper's
/// server), the connections to the app (hyper's client), the rare events.
const CALLER: usize = 0;
const APP: usize = 1;
const EVENTS: usize = 2;

/// How long a connection may wait for a request head while none of its requests is in
/// flight: an idle keep-alive connection, or a head that trickles in (slowloris), is closed
/// after between `HEAD_TIMEOUT` and `HEAD_TIMEOUT + HEAD_CHECK`.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a connection checks that (one timer per connection: hyper's own header-read
/// timeout arms one for every request, ~1.8k instructions of the ~36k a request costs).
const HEAD_CHECK: Duration = Duration::from_secs(10);

/// A connection's requests, for its idle check.
#[derive(Default)]
struct Activity {
    /// Request heads received.
    heads: AtomicU64,
    /// Requests whose response body has not ended (or been dropped).
    in_flight: AtomicUsize,
}

/// The idle check, ticked every [`HEAD_CHECK`].
#[derive(Default)]
struct IdleCheck {
    heads: u64,
    idle_ticks: u32,
}

impl IdleCheck {
    /// True when the connection has waited for a head, with no request in flight, for at
    /// least [`HEAD_TIMEOUT`]: no new head and nothing in flight at each of the last
    /// `HEAD_TIMEOUT / HEAD_CHECK + 1` ticks (the first of them may come just after a request
    /// ended, hence the one more).
    fn expired(&mut self, activity: &Activity) -> bool {
        let heads = activity.heads.load(Relaxed);
        if heads != self.heads || activity.in_flight.load(Relaxed) > 0 {
            self.heads = heads;
            self.idle_ticks = 0;
            return false;
        }
        self.idle_ticks += 1;
        HEAD_CHECK * (self.idle_ticks - 1) >= HEAD_TIMEOUT
    }
}

/// A request of the connection in flight, from its head until its response body ends or is
/// dropped.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: Arc<Conn>) -> Self {
        conn.activity.heads.fetch_add(1, Relaxed);
        conn.activity.in_flight.fetch_add(1, Relaxed);
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.activity.in_flight.fetch_sub(1, Relaxed);
    }
}

/// A response body that keeps its request in flight. One match per frame straight to the
/// body that has it (an `Either` inside a wrapper was two layers, and boxed every error).
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut self.get_mut().body {
            Body::App(body) => Pin::new(body).poll_frame(cx),
            Body::Own(body) => match ready!(Pin::new(body).poll_frame(cx)) {
                Some(Ok(frame)) => Poll::Ready(Some(Ok(frame))),
                Some(Err(never)) => match never {},
                None => Poll::Ready(None),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Body::App(body) => body.is_end_stream(),
            Body::Own(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Body::App(body) => body.size_hint(),
            Body::Own(body) => body.size_hint(),
        }
    }
}

const XFCC: HeaderName = HeaderName::from_static("x-forwarded-client-cert");
const DENIED: HeaderName = HeaderName::from_static("x-rampart-denied");
/// Hop-by-hop headers of a caller's request (RFC 9110 §7.6.1) that are not forwarded to the
/// app, besides `connection` and the names it lists. (Texts: a name's text compared by its
/// length first is cheaper than `HeaderName`'s comparison.)
const HOP_BY_HOP: [&str; 5] = ["keep-alive", "proxy-connection", "te", "trailer", "upgrade"];
/// An app's answer loses `connection`, the fields it names, and `keep-alive`,
/// `proxy-connection`, `te` and `upgrade` even when not named (RFC 9110 §7.6.1; no upgrade is
/// ever in progress: a caller's `upgrade` is removed from its request), nothing else: the app's
/// connection is not the caller's, so an app closing its own (`connection: close`) must not
/// close the caller's mesh connection. (Not `trailer`: it announces the trailer fields of a
/// chunked answer, which hyper then forwards.)
const ANSWER_HOP_BY_HOP: [&str; 4] = ["keep-alive", "proxy-connection", "te", "upgrade"];
/// Fields a `connection` option never removes, on either side: a message without them is not
/// the message the other side sent, whatever it lists. `host` (routing: an HTTP/1.1 request
/// without one is invalid, RFC 9112 §3.2), `content-length` and `transfer-encoding` (framing: a
/// `HEAD` or `304` answer's length, which hyper otherwise drops) and `x-forwarded-client-cert`
/// (the caller's identity, ours to set). Listing them is the sender's error (RFC 9110 §7.6.1:
/// not for fields meant for every recipient). Other end-to-end fields a sender lists (its own
/// `authorization` or `cookie`) are removed as RFC 9110 says: only the sender's own fields go,
/// and nothing on the caller's side of the mesh adds fields for it (the client sidecar relays
/// bytes).
const NEVER_HOP_BY_HOP: [HeaderName; 4] = [
    http::header::HOST,
    http::header::CONTENT_LENGTH,
    http::header::TRANSFER_ENCODING,
    XFCC,
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
/// straight into the line by `Fields` ([`RequestLine::write`]), no map and no `Serialize` pass.
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
    /// This request's own fields, after the connection's (or connection-and-rule's) [`Fixed`]
    /// ones.
    fn write(&self, f: &mut Fields<'_>) {
        f.timestamp(json_key!("timestamp"), self.timestamp)
            .str(json_key!("http.request.method"), self.method)
            .str(json_key!("url.path"), self.path);
        if let Some(decision) = &self.decision {
            f.flatten(decision);
        }
        f.uint(
            json_key!("http.response.status_code"),
            u64::from(self.status),
        )
        .str(json_key!("rampart.reason"), self.reason)
        .str(json_key!("error.message"), self.error);
        if let Some(ms) = self.duration_ms {
            f.float(json_key!("rampart.duration_ms"), ms);
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

/// What a connection's requests share, under one lock: taken once as a request is decided
/// (the decision, the request kept for re-checks, the app connection taken out) and once as
/// its answer comes (the app connection put back, the line's ready-made head). No lock is held
/// across an await.
#[derive(Default)]
struct Shared {
    /// The connection to the app, reused request after request (HTTP/1.1 serves one request
    /// at a time per connection, so it is taken out and put back).
    app: Option<SendRequest<Incoming>>,
    /// The last request's method and path, re-checked when the policy changes.
    last: Option<(http::Method, String)>,
    /// The decision for every request of this connection, while the generation that made it
    /// is current, when that generation's rules for this port read neither methods nor paths
    /// (`Policy::inbound_reads_http`): caller, port and source are the connection's.
    decided: Option<(Arc<Generation>, Arc<Decision>)>,
    /// The head of the lines of requests one rule admits: [`ConnFields`] and the decision's
    /// fields, serialised once and kept while the same rule of the same policy admits.
    admitted_head: Option<AdmittedHead>,
}

impl Shared {
    /// Keeps the request for policy re-checks; most connections repeat one request, so the
    /// stored copy stays when it is the same.
    fn remember(&mut self, method: &http::Method, path: &str) {
        if self
            .last
            .as_ref()
            .is_none_or(|(m, p)| m != method || p != path)
        {
            self.last = Some((method.clone(), path.to_owned()));
        }
    }
}

struct Conn {
    ctx: Arc<Ctx>,
    /// Requests received and in flight, for the idle check.
    activity: Activity,
    /// `rampart_sidecar_requests_total{direction="inbound",result="allow"}`, looked up once.
    allowed: IntCounter,
    /// The request lines' connection fields ([`ConnFields`]), serialised once.
    fixed: Fixed,
    /// See [`Shared`].
    shared: Mutex<Shared>,
    port: Arc<InboundPort>,
    peer: SocketAddr,
    caller: Option<SpiffeId>,
    own: SpiffeId,
    /// The `x-forwarded-client-cert` value the app gets (`By=…;URI=…`), made once per
    /// connection: the caller and we do not change while it lasts.
    xfcc: Option<HeaderValue>,
    /// A newly dialled connection to the app, for [`connection`] to drive in the lane
    /// `app_lane` wakes; `has_dialled` says there is one (the lane, polled a few times per
    /// request, reads the flag, not the lock).
    dialled: Mutex<Option<AppConnection>>,
    has_dialled: AtomicBool,
    app_lane: Waker,
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::Own(Full::new(Bytes::from(body))));
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
    let mut lanes = Lanes::<3>::new();
    let conn = Arc::new(Conn {
        activity: Activity::default(),
        fixed,
        shared: Mutex::new(Shared::default()),
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
        dialled: Mutex::new(None),
        has_dialled: AtomicBool::new(false),
        app_lane: lanes.waker(APP),
    });
    let service = {
        let conn = conn.clone();
        service_fn(move |req| {
            let in_flight = InFlight::start(conn.clone());
            async move {
                let resp = in_flight.0.request(req).await;
                Ok::<_, Infallible>(resp.map(|body| Tracked {
                    body,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    // `half_close`: while a request is with the app, hyper would otherwise try a read on the
    // caller's connection at every poll to notice an early close (a few per request, each
    // through rustls and tokio's readiness); a caller that has gone is noticed when its
    // answer is written, and a caller that only shut its sending side still gets the answer.
    // `writev(false)`: a response's head and body are copied into one buffer and leave as one
    // plain write into one TLS record (rustls's vectored write gathers the slices itself).
    // No header-read timeout of hyper's: `IdleCheck` below does its work per connection.
    let server = hyper::server::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .half_close(true)
        .writev(false)
        .serve_connection(TokioIo::new(ByRecord(tls)), service);
    tokio::pin!(server);
    let mut current = ctx.current.clone();
    current.mark_unchanged();
    // The connection's rare events: the idle check and a new generation. Ends when the
    // connection is to be closed now; once the sender is gone (shutting down), never: the
    // connection is served to its end.
    // Off tokio's co-operative budget (`unconstrained`), as the relay's policy lane: the
    // caller's and the app's lanes, polled before it, may spend the whole budget at every poll
    // (a body of many tiny records), and the timer and `changed()` would then answer
    // `Pending` for ever. One check per wake-up: it cannot hold the thread.
    let events = tokio::task::coop::unconstrained(async {
        let mut idle = IdleCheck::default();
        let check = tokio::time::sleep(HEAD_CHECK);
        tokio::pin!(check);
        loop {
            tokio::select! {
                biased;
                () = &mut check => {
                    if idle.expired(&conn.activity) {
                        return;
                    }
                    check.as_mut().reset(tokio::time::Instant::now() + HEAD_CHECK);
                }
                changed = current.changed() => {
                    if changed.is_err() {
                        std::future::pending::<()>().await;
                    }
                    // Decided again under the new generation (and the old one not kept alive).
                    conn.shared().decided = None;
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
    });
    tokio::pin!(events);
    // The connections to the app this connection dialled (one at a time; an earlier one may
    // still be closing), driven here, in the caller's connection's task: a request handed to
    // the app connection, and its response handed back, cross no task (`Lanes`), and each of
    // the three lanes is polled only when its own waker fired — the caller's connection is not
    // polled when the app's socket wakes the task, nor the app's when the caller's does, nor
    // the rare events at each request.
    let mut apps: Vec<AppConnection> = Vec::new();
    // Ends when the caller's connection ends, or when it is to be closed (idle or revoked:
    // dropped, with its connections to the app).
    std::future::poll_fn(|cx| {
        lanes.poll(cx, |lane, cx| match lane {
            CALLER => server.as_mut().poll(cx).map(drop),
            APP => {
                // Taken only when there is one: `take` on the empty slot still moved the whole
                // (large) connection value, at every poll of the lane (three per request).
                if conn.has_dialled.load(Ordering::Acquire) {
                    conn.has_dialled.store(false, Relaxed);
                    if let Ok(mut dialled) = conn.dialled.lock() {
                        apps.extend(dialled.take());
                    }
                }
                apps.retain_mut(|app| Pin::new(app).poll(cx).is_pending());
                Poll::Pending
            }
            EVENTS => events.as_mut().poll(cx),
            _ => Poll::Pending,
        })
    })
    .await;
}

impl Conn {
    /// The requests' shared state. A panic while it was held (none is known) leaves nothing
    /// half-done in it (each field is replaced whole), so a poisoned lock is used as it is.
    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

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
        let last = self.shared().last.clone()?;
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
        if let Some(refusal) = path_refusal(path) {
            self.ctx
                .metrics
                .requests
                .with_label_values(&["inbound", "bad_request"])
                .inc();
            let mut line = self.line(&method, path, 400, started);
            line.reason = Some(refusal.reason());
            line.duration_ms = None;
            self.log(None, None, line);
            return text(StatusCode::BAD_REQUEST, refusal.body().into());
        }
        // One lock: the decision, the request kept, the app connection taken out.
        let (decision, reuse) = {
            let mut shared = self.shared();
            let decision = self.decide(&mut shared, method.as_str(), path);
            shared.remember(&method, path);
            let reuse = if decision.verdict.passes() {
                shared.app.take()
            } else {
                None
            };
            (decision, reuse)
        };
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
            self.log(None, Some(&*decision), line);
            return resp;
        }

        // The caller's own x-forwarded-client-cert is never trusted: `insert` replaces every
        // value it sent, `remove` takes them all.
        let headers = req.headers_mut();
        strip_hop_by_hop(headers);
        match &self.xfcc {
            Some(v) => {
                headers.insert(XFCC, v.clone());
            }
            None => {
                headers.remove(&XFCC);
            }
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

        // The request goes to hyper from here: through a future of its own (`forward(req)`)
        // it was moved once more per request.
        let (sent, keep) = match self.app_sender(reuse).await {
            Ok(mut sender) => {
                let sent = sender
                    .send_request(req)
                    .await
                    .map_err(|e| format!("app {}: {e}", self.port.app));
                let keep = (sent.is_ok() && !sender.is_closed()).then_some(sender);
                (sent, keep)
            }
            Err(why) => (Err(why), None),
        };
        let (resp, status, error) = match sent {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                strip_answer_hop_by_hop(resp.headers_mut());
                (resp.map(Body::App), status, None)
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
        // One lock: the app connection put back, the line's ready-made head.
        let mut shared = self.shared();
        if keep.is_some() {
            shared.app = keep;
        }
        self.log(Some(&mut shared), Some(&*decision), line);
        resp
    }

    /// The current policy's decision on a request (see `Shared::decided`).
    fn decide(&self, shared: &mut Shared, method: &str, path: &str) -> Arc<Decision> {
        // A guard, not an owned `Arc`: no reference count taken for the usual request, whose
        // decision is the connection's.
        let g = self.ctx.generations.load();
        if let Some((at, decision)) = &shared.decided {
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
            shared.decided = Some((Arc::clone(&g), decision.clone()));
        }
        decision
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
    /// ready-made with the connection's (most requests: kept in `shared`, when given), the
    /// others are serialised each time.
    fn log<'a>(
        &'a self,
        shared: Option<&mut Shared>,
        decision: Option<&'a Decision>,
        mut line: RequestLine<'a>,
    ) {
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
        let (
            Some((d, rule)),
            Some(Shared {
                admitted_head: cached,
                ..
            }),
        ) = (admitted, shared)
        else {
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

    /// The app connection, ready for a request: the one kept from the last request (`reuse`),
    /// or a new one.
    async fn app_sender(
        &self,
        reuse: Option<SendRequest<Incoming>>,
    ) -> Result<SendRequest<Incoming>, String> {
        let mut sender = match reuse {
            Some(s) if !s.is_closed() => s,
            // Boxed: a dial is rare (once per connection); inline, its state (the connect
            // timeout and hyper's handshake) would make every request's future larger, and
            // every move of it (hyper moves the service's future into place per request).
            _ => Box::pin(self.dial_app()).await?,
        };
        if !sender.is_ready() {
            sender
                .ready()
                .await
                .map_err(|e| format!("app connection: {e}"))?;
        }
        Ok(sender)
    }

    async fn dial_app(&self) -> Result<SendRequest<Incoming>, String> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.port.app))
            .await
            .map_err(|_| format!("app {} did not accept in time", self.port.app))?
            .map_err(|e| format!("app {} unreachable: {e}", self.port.app))?;
        let _ = stream.set_nodelay(true);
        // `writev(false)`: a request's head and body leave in one plain write.
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .writev(false)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("app {}: {e}", self.port.app))?;
        // Driven by the caller's connection's task (see `connection`), woken to take it.
        if let Ok(mut dialled) = self.dialled.lock() {
            *dialled = Some(conn);
        }
        self.has_dialled.store(true, Ordering::Release);
        self.app_lane.wake_by_ref();
        Ok(sender)
    }
}

/// The request's duration in ms, the double nearest its nanoseconds / 10^6 (shared with the edge).
fn ms(started: Instant) -> f64 {
    millis(started.elapsed())
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    strip_hop_by_hop_of(headers, &HOP_BY_HOP, lengths(&HOP_BY_HOP));
}

/// An app's answer's hop-by-hop fields (see [`ANSWER_HOP_BY_HOP`]).
fn strip_answer_hop_by_hop(headers: &mut http::HeaderMap) {
    strip_hop_by_hop_of(headers, &ANSWER_HOP_BY_HOP, lengths(&ANSWER_HOP_BY_HOP));
}

/// Bit `n` set for each of `names` that is `n` bytes long (compile time; each under 64).
const fn lengths(names: &[&str]) -> u64 {
    let mut mask = 0;
    let mut i = 0;
    while i < names.len() {
        assert!(names[i].len() < 64);
        mask |= 1 << names[i].len();
        i += 1;
    }
    mask
}

/// Removes `connection`, the names it lists but [`NEVER_HOP_BY_HOP`], and `names` (which hold
/// `keep-alive`). One pass over the message's names finds them (most requests carry none; an
/// app's answer usually only `connection: keep-alive`: then one removal, no list built).
/// `lengths` is [`lengths`]`(names)`: a name of another length is not compared with them
/// (most fields of a message: nginx's answer has none of their lengths but `connection`'s).
fn strip_hop_by_hop_of(headers: &mut http::HeaderMap, names: &[&str], lengths: u64) {
    let (mut connection, mut named) = (false, false);
    for name in headers.keys() {
        if *name == CONNECTION {
            connection = true;
        } else {
            let name = name.as_str();
            if name.len() < 64 && lengths >> name.len() & 1 == 1 && names.contains(&name) {
                named = true;
            }
        }
    }
    if connection {
        // Its values are taken as it is removed (one lookup for both).
        let mut listed: Vec<HeaderName> = Vec::new();
        if let Entry::Occupied(entry) = headers.entry(CONNECTION) {
            for value in entry.remove_entry_mult().1 {
                for option in value.as_bytes().split(|&b| b == b',') {
                    let option = option.trim_ascii();
                    // `keep-alive` is in `names`: removed below when present.
                    if option.eq_ignore_ascii_case(b"keep-alive") {
                        continue;
                    }
                    if let Ok(name) = HeaderName::from_bytes(option) {
                        if !NEVER_HOP_BY_HOP.contains(&name) {
                            listed.push(name);
                        }
                    }
                }
            }
        }
        for name in listed {
            headers.remove(name);
        }
    }
    if named {
        for name in names {
            headers.remove(*name);
        }
    }
}

/// Why a path is refused before policy (400): the policy could not judge it the way the app
/// will read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathRefusal {
    /// A `.` or `..` segment, an empty segment but a trailing one, a backslash, or an encoded
    /// dot, slash, backslash or NUL (`%2e`, `%2f`, `%5c`, `%00`, either case) that an app might
    /// decode into one.
    NotNormal,
    /// A `.` or `..` segment carrying path parameters (`..;x`, `.;`): Tomcat-, Jetty- and
    /// Spring-style apps drop the parameters and read `..`, so `/public/..;/admin` is `/admin`
    /// to them while the policy sees a segment `..;` under `/public`.
    DotSegmentParameters,
}

impl PathRefusal {
    /// The request line's `rampart.reason`.
    fn reason(self) -> &'static str {
        match self {
            PathRefusal::NotNormal => "path not in normal form",
            PathRefusal::DotSegmentParameters => "dot segment with parameters",
        }
    }

    /// The 400's body.
    fn body(self) -> &'static str {
        match self {
            PathRefusal::NotNormal => {
                "bad request: the path has dot segments, empty segments or encoded separators\n"
            }
            PathRefusal::DotSegmentParameters => {
                "bad request: the path has a dot segment with parameters (`..;`), which apps may read as `..`\n"
            }
        }
    }
}

/// Whether a path is refused before policy ([`PathRefusal`]), in one pass over the bytes (per
/// request). Not refused (the app's own decoding decides what they mean): other `;` parameters
/// (`/admin;x=1`), overlong UTF-8 escapes (`%c0%ae`), double encodings (`%252e`), `%u002e`.
fn path_refusal(path: &str) -> Option<PathRefusal> {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return (path != "*").then_some(PathRefusal::NotNormal);
    }
    // A segment, up to its first `;` (its parameters), as a dot segment.
    let dot_segment = |segment: &[u8]| {
        let name = segment.split(|&c| c == b';').next().unwrap_or_default();
        match name {
            b"." | b".." if name.len() < segment.len() => Some(PathRefusal::DotSegmentParameters),
            b"." | b".." => Some(PathRefusal::NotNormal),
            _ => None,
        }
    };
    // The current segment starts at `seg`; the end of the path closes the last one.
    let mut seg = 1;
    for i in 1..=b.len() {
        let Some(&c) = b.get(i) else {
            return dot_segment(&b[seg..]);
        };
        match c {
            b'/' => {
                if i == seg {
                    return Some(PathRefusal::NotNormal);
                }
                if let Some(refusal) = dot_segment(&b[seg..i]) {
                    return Some(refusal);
                }
                seg = i + 1;
            }
            b'\\' => return Some(PathRefusal::NotNormal),
            b'%' => {
                if let (Some(&h), Some(&l)) = (b.get(i + 1), b.get(i + 2)) {
                    if matches!(
                        (h, l.to_ascii_lowercase()),
                        (b'2', b'e' | b'f') | (b'5', b'c') | (b'0', b'0')
                    ) {
                        return Some(PathRefusal::NotNormal);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check as it was written before the one-pass scan (three passes: the backslash, the
    /// encoded separators, then `is_normal_path`'s segments): the reference.
    fn path_is_unambiguous_reference(path: &str) -> bool {
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
        crate::policy::pattern::is_normal_path(rest)
    }

    /// A `.` or `..` segment with parameters, found by splitting (the reference for
    /// [`PathRefusal::DotSegmentParameters`]).
    fn dot_segment_parameters_reference(path: &str) -> bool {
        path.split('/').any(|segment| {
            segment.contains(';') && matches!(segment.split(';').next(), Some(".") | Some(".."))
        })
    }

    /// The one-pass check refuses what the three passes refused and, besides, exactly the dot
    /// segments with parameters, on every path of up to 5 bytes over 16 bytes that matter (and
    /// two that do not) and on 200,000 seeded longer ones.
    #[test]
    fn path_check_in_one_pass_answers_as_the_three_passes() {
        const ALPHABET: &[u8] = b"/.%2eEfF5cC0;\\a*";
        let check = |path: &str| {
            let old = path_is_unambiguous_reference(path);
            let params = path.starts_with('/') && dot_segment_parameters_reference(path);
            let got = path_refusal(path);
            assert_eq!(got.is_none(), old && !params, "{path:?}: {got:?}");
            if old && params {
                assert_eq!(got, Some(PathRefusal::DotSegmentParameters), "{path:?}");
            }
        };
        check("");
        let mut buf = Vec::new();
        for len in 1..=5u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                buf.clear();
                for _ in 0..len {
                    buf.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                check(std::str::from_utf8(&buf).unwrap());
            }
        }
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            buf.clear();
            buf.push(b'/');
            let len = 1 + next() % 24;
            for _ in 0..len {
                buf.push(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
            }
            check(std::str::from_utf8(&buf).unwrap());
        }
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for ok in [
            "/",
            "/a",
            "/a/b/",
            "/v1/payments/42",
            "/50%25off",
            "/a%20b",
            "/admin;x=1",
            "/a/...;x",
            "/a/.x;y",
            "*",
        ] {
            assert_eq!(path_refusal(ok), None, "{ok}");
        }
        for bad in [
            "/a/../b",
            "/a/./b",
            "/a//b",
            "/%2e%2e/x",
            "/%2e%2e;/x",
            "/a%2Fb",
            "/a\\b",
            "a",
            "/x%00",
            "/%2E%2E/x",
            "/a%5Cb",
            "/a%5cb",
        ] {
            assert_eq!(path_refusal(bad), Some(PathRefusal::NotNormal), "{bad}");
        }
        for params in ["/public/..;/admin", "/a/.;x/b", "/..;", "/a/..;x=1", "/.;/"] {
            assert_eq!(
                path_refusal(params),
                Some(PathRefusal::DotSegmentParameters),
                "{params}"
            );
        }
    }

    /// A request's whole line after the fixed `head` fields, as the server writes it.
    fn line_bytes<T: serde::Serialize>(head: &T, line: &RequestLine<'_>) -> Vec<u8> {
        Fixed::new(head).unwrap().line_fields(|f| line.write(f))
    }

    /// The exact bytes of a few request lines (escapes, a NaN duration, no decision, a deny
    /// with its reason, no fixed fields, an admitting rule's ready-made head), pinned.
    #[test]
    fn request_line_bytes_are_pinned() {
        use crate::policy::{DenyReason, Direction, Mode, PolicyVersion, RuleRef};
        let policy = Arc::new(PolicyVersion {
            file: "/etc/p \"x\".toml".into(),
            version: "sha256:00".into(),
        });
        let rule = Some(RuleRef {
            set: "api".into(),
            rule: "reads".into(),
            mode: Mode::Enforce,
            line: 3,
        });
        let allow = Decision {
            direction: Direction::Inbound,
            verdict: Verdict::Allow,
            policy: policy.clone(),
            rule: rule.clone(),
            reason: None,
            audit: None,
        };
        let deny = Decision {
            direction: Direction::Inbound,
            verdict: Verdict::Deny,
            policy,
            rule,
            reason: Some(DenyReason::NoClientIdentity),
            audit: None,
        };
        let caller = SpiffeId::parse("spiffe://mesh.local/ns/a/sa/b").unwrap();
        let own = SpiffeId::parse("spiffe://mesh.local/ns/a/sa/me").unwrap();
        let v4: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let v6: SocketAddr = "[::1]:40001".parse().unwrap();
        let at = |nanos: u64| {
            Timestamp::at(
                std::time::UNIX_EPOCH + Duration::from_nanos(1_765_000_000_123_456_789 + nanos),
            )
        };
        let request =
            |timestamp, method, path, decision, status, reason, error, duration_ms| RequestLine {
                timestamp,
                method,
                path,
                decision,
                status,
                reason,
                error,
                duration_ms,
            };
        let lines = [
            line_bytes(
                &conn_fields(v4, 8080, Some(&caller), &own),
                &request(
                    at(0),
                    "GET",
                    "/v1/x",
                    Some(DecisionFields::of(&allow)),
                    200,
                    None,
                    None,
                    Some(0.25),
                ),
            ),
            line_bytes(
                &conn_fields(v6, 8443, None, &own),
                &request(
                    at(1),
                    "PROPFIND",
                    "/a\"b\\c\td\u{1}\u{7f}/caf\u{e9}",
                    None,
                    400,
                    Some("ambiguous \"path\""),
                    None,
                    Some(f64::NAN),
                ),
            ),
            line_bytes(
                &serde_json::Map::new(),
                &request(
                    at(2),
                    "POST",
                    "/",
                    Some(DecisionFields::of(&deny)),
                    u16::MAX,
                    None,
                    Some("app 127.0.0.1:1: refused\n"),
                    None,
                ),
            ),
            line_bytes(
                &HeadFields {
                    conn: conn_fields(v4, 8080, Some(&caller), &own),
                    decision: DecisionFields::of(&allow),
                },
                &request(
                    at(3),
                    "GET",
                    "/v1/payments/42?x=1&y=%20",
                    None,
                    204,
                    None,
                    None,
                    Some(12345.678),
                ),
            ),
        ];
        let pinned: [&str; 4] = [
            "{\"event.name\":\"rampart.sidecar.request\",\"rampart.direction\":\"inbound\",\"client.address\":\"127.0.0.1\",\"client.port\":40000,\"server.port\":8080,\"network.transport\":\"tcp\",\"rampart.caller.identity\":\"spiffe://mesh.local/ns/a/sa/b\",\"rampart.callee.identity\":\"spiffe://mesh.local/ns/a/sa/me\",\"network.protocol.name\":\"http\",\"timestamp\":\"2025-12-06T05:46:40.123456Z\",\"http.request.method\":\"GET\",\"url.path\":\"/v1/x\",\"rampart.decision\":\"allow\",\"rampart.rule\":\"reads\",\"rampart.rule_set\":\"api\",\"rampart.policy.file\":\"/etc/p \\\"x\\\".toml\",\"rampart.policy.version\":\"sha256:00\",\"http.response.status_code\":200,\"rampart.duration_ms\":0.25}",
            "{\"event.name\":\"rampart.sidecar.request\",\"rampart.direction\":\"inbound\",\"client.address\":\"::1\",\"client.port\":40001,\"server.port\":8443,\"network.transport\":\"tcp\",\"rampart.callee.identity\":\"spiffe://mesh.local/ns/a/sa/me\",\"network.protocol.name\":\"http\",\"timestamp\":\"2025-12-06T05:46:40.123456Z\",\"http.request.method\":\"PROPFIND\",\"url.path\":\"/a\\\"b\\\\c\\td\\u0001\u{7f}/café\",\"http.response.status_code\":400,\"rampart.reason\":\"ambiguous \\\"path\\\"\",\"rampart.duration_ms\":null}",
            "{\"timestamp\":\"2025-12-06T05:46:40.123456Z\",\"http.request.method\":\"POST\",\"url.path\":\"/\",\"rampart.decision\":\"deny\",\"rampart.rule\":\"reads\",\"rampart.rule_set\":\"api\",\"rampart.reason\":\"rule reads: no client certificate: the caller presented no identity\",\"rampart.reason.kind\":\"no_client_identity\",\"rampart.policy.file\":\"/etc/p \\\"x\\\".toml\",\"rampart.policy.version\":\"sha256:00\",\"http.response.status_code\":65535,\"error.message\":\"app 127.0.0.1:1: refused\\n\"}",
            "{\"event.name\":\"rampart.sidecar.request\",\"rampart.direction\":\"inbound\",\"client.address\":\"127.0.0.1\",\"client.port\":40000,\"server.port\":8080,\"network.transport\":\"tcp\",\"rampart.caller.identity\":\"spiffe://mesh.local/ns/a/sa/b\",\"rampart.callee.identity\":\"spiffe://mesh.local/ns/a/sa/me\",\"network.protocol.name\":\"http\",\"rampart.decision\":\"allow\",\"rampart.rule\":\"reads\",\"rampart.rule_set\":\"api\",\"rampart.policy.file\":\"/etc/p \\\"x\\\".toml\",\"rampart.policy.version\":\"sha256:00\",\"timestamp\":\"2025-12-06T05:46:40.123456Z\",\"http.request.method\":\"GET\",\"url.path\":\"/v1/payments/42?x=1&y=%20\",\"http.response.status_code\":204,\"rampart.duration_ms\":12345.678}",
        ];
        let lines = lines.map(|l| String::from_utf8(l).unwrap());
        assert_eq!(lines, pinned, "{lines:#?}");
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
        let line = line_bytes(&fields(), &request(Some(DecisionFields::of(&decision))));
        // The ready-made head of an admitting rule gives the same object.
        let head = HeadFields {
            conn: fields(),
            decision: DecisionFields::of(&decision),
        };
        let with_head = line_bytes(&head, &request(None));
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
    fn idle_connections_expire_after_the_head_timeout_and_busy_ones_never() {
        let ticks_to_expire =
            |activity: &Activity, idle: &mut IdleCheck| (1..=10).find(|_| idle.expired(activity));
        // Nothing ever comes: closed at the 4th tick (30 s of waiting at least, 40 at most).
        let quiet = Activity::default();
        assert_eq!(ticks_to_expire(&quiet, &mut IdleCheck::default()), Some(4));
        assert_eq!(HEAD_CHECK * 3, HEAD_TIMEOUT);
        // A head between two ticks starts the count again.
        let mut idle = IdleCheck::default();
        assert!(!idle.expired(&quiet) && !idle.expired(&quiet) && !idle.expired(&quiet));
        quiet.heads.fetch_add(1, Relaxed);
        assert!(!idle.expired(&quiet));
        assert_eq!(ticks_to_expire(&quiet, &mut idle), Some(4));
        // A request in flight (the app is slow, or its long body still streams) is never
        // idle, however long it lasts; once it ends, the count starts.
        let busy = Activity::default();
        busy.heads.fetch_add(1, Relaxed);
        busy.in_flight.fetch_add(1, Relaxed);
        let mut idle = IdleCheck::default();
        assert_eq!(ticks_to_expire(&busy, &mut idle), None);
        busy.in_flight.fetch_sub(1, Relaxed);
        assert_eq!(ticks_to_expire(&busy, &mut idle), Some(4));
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
        // `keep-alive` listed (skipped while reading the list) and present: removed too.
        let mut h = http::HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Keep-Alive"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-keep"]);
    }

    /// Each hop-by-hop name goes alone (no `connection` field), on its side; a name of any
    /// other text, of every length from 1 to 70 bytes (those of the hop-by-hop names among
    /// them), stays: the length filter before the comparison passes exactly what it must.
    #[test]
    fn every_hop_by_hop_name_goes_and_no_other_name_of_any_length() {
        type Strip = fn(&mut http::HeaderMap);
        let sides: [(Strip, &[&str]); 2] = [
            (strip_hop_by_hop, &HOP_BY_HOP),
            (strip_answer_hop_by_hop, &ANSWER_HOP_BY_HOP),
        ];
        for (strip, names) in sides {
            for name in names {
                let mut h = http::HeaderMap::new();
                h.insert(HeaderName::from_static(name), HeaderValue::from_static("1"));
                h.insert("x-keep", HeaderValue::from_static("1"));
                strip(&mut h);
                assert_eq!(h.keys().collect::<Vec<_>>(), ["x-keep"], "{name}");
            }
            for len in 1..=70 {
                let mut h = http::HeaderMap::new();
                for other in ["x".repeat(len), format!("{}z", "t".repeat(len - 1))] {
                    h.insert(
                        HeaderName::from_bytes(other.as_bytes()).unwrap(),
                        HeaderValue::from_static("1"),
                    );
                }
                let before = h.len();
                strip(&mut h);
                assert_eq!(h.len(), before, "a name of {len} bytes removed");
            }
        }
    }

    /// A `connection` option naming `host`, `content-length`, `transfer-encoding` or
    /// `x-forwarded-client-cert` (any case, any list) removes nothing, on either side; the
    /// other names it lists (`authorization` here) still go.
    #[test]
    fn connection_options_never_remove_framing_routing_or_identity_fields() {
        for strip in [strip_hop_by_hop, strip_answer_hop_by_hop] {
            let mut h = http::HeaderMap::new();
            h.append(CONNECTION, HeaderValue::from_static("Host, content-length"));
            h.append(
                CONNECTION,
                HeaderValue::from_static(
                    "TRANSFER-ENCODING,x-forwarded-client-cert ,authorization",
                ),
            );
            for (name, value) in [
                ("host", "payments"),
                ("content-length", "1234"),
                ("transfer-encoding", "chunked"),
                ("x-forwarded-client-cert", "By=a;URI=b"),
                ("authorization", "Bearer t"),
            ] {
                h.insert(name, HeaderValue::from_static(value));
            }
            strip(&mut h);
            let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
            left.sort_unstable();
            assert_eq!(
                left,
                [
                    "content-length",
                    "host",
                    "transfer-encoding",
                    "x-forwarded-client-cert"
                ]
            );
        }
    }

    /// An app's answer: `connection` (whatever it says), the names it lists, and `keep-alive`,
    /// `proxy-connection`, `te` and `upgrade` named or not go; `trailer` (the trailer fields of a
    /// chunked answer) and every other field stay. A lone
    /// `connection: close` takes a field named `close` with it.
    #[test]
    fn an_apps_hop_by_hop_fields_are_not_forwarded() {
        let mut h = http::HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("close, X-Hop"));
        h.append(CONNECTION, HeaderValue::from_static("x-other"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("x-other", HeaderValue::from_static("1"));
        h.append(CONNECTION, HeaderValue::from_static("Keep-Alive, upgrade"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        h.insert("trailer", HeaderValue::from_static("x-checksum"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_answer_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["trailer", "x-keep"]);
        // Not named in `connection`: removed all the same (and no `connection` needed).
        let mut h = http::HeaderMap::new();
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        h.insert("proxy-connection", HeaderValue::from_static("close"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("trailer", HeaderValue::from_static("x-checksum"));
        strip_answer_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["trailer"]);
        for (lone, kept) in [
            ("keep-alive", &["close", "x-keep"][..]),
            ("Keep-Alive", &["close", "x-keep"]),
            (" keep-alive ,keep-alive", &["close", "x-keep"]),
            ("close", &["x-keep"]),
        ] {
            let mut h = http::HeaderMap::new();
            h.insert(CONNECTION, HeaderValue::from_static(lone));
            h.insert("close", HeaderValue::from_static("1"));
            h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
            h.insert("x-keep", HeaderValue::from_static("1"));
            strip_answer_hop_by_hop(&mut h);
            let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
            left.sort_unstable();
            assert_eq!(left, kept, "{lone}");
        }
        // Nothing hop-by-hop: nothing removed.
        let mut h = http::HeaderMap::new();
        h.insert("x-keep", HeaderValue::from_static("1"));
        h.insert("content-length", HeaderValue::from_static("2"));
        strip_answer_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2);
    }
}
