//! The `ProxyHttp` implementation: the request's path through the edge, each Pingora phase a
//! few lines that call the stages in `request/` in order.
//!
//! 1. `request_filter`: load the config generation, identify, validate (400), redirect plain
//!    HTTP (308), route (404), then the protection stages: limits (414/431/429/503), body
//!    (413), WAF (403). Nothing is forwarded before they pass.
//! 2. `request_body_filter`: replay the body read for inspection; enforce `max_body` on bodies
//!    without a usable length.
//! 3. `upstream_peer`: round robin with passive health; no healthy endpoint → 503.
//! 4. `upstream_request_filter`: forwarding headers and X-Request-Id.
//! 5. `response_filter`: secure headers, strip list, cookie hardening, X-Request-Id.
//! 6. `fail_to_proxy`: edge error pages (502/504/400) with the same header policy.
//! 7. `logging`: metrics and the JSON access line.

use crate::listener::framing::Malformed;
use crate::listener::hardened::framing_of;
use crate::policy::forward::{self, ForwardInfo};
use crate::policy::header_edit::{self, X_REQUEST_ID};
use crate::request::body::{self, BodyRefused, BodyReplay};
use crate::request::limits::Admitted;
use crate::request::RequestCtx;
use crate::request::{h1_rebuild, identify, limits, log, respond, validate, waf};
use crate::runtime::{ListenerInfo, Route, Runtime};
use crate::state::Shared;
use crate::upstream::Outcome;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::modules::http::HttpModules;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use rampart_ops::json_log::millis;
use rampart_protect::denial::{Denial, DenialReason};
use rampart_protect::shed::InFlightGuard;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// A boxed future, as `async_trait` types a phase's. Pingora boxes each phase's future per
/// request and awaits it at once, so the phases are implemented by hand ([`ready_phase`]):
/// - the work that awaits nothing runs when Pingora calls the method and the future returned
///   is [`done`]'s (zero-sized: no future allocated, moved or polled through a vtable). Five
///   phases await nothing at all; `request_filter` awaits nothing on its usual path (see
///   [`Step`]);
/// - what does await (an answer the edge writes itself, a body read, a fleet limit, a mesh
///   upstream's certificate check) is boxed only when it is taken, so a path most requests
///   never take costs them nothing.
type Phase<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// A phase that runs when Pingora calls it, implemented by hand (see [`Phase`]): the signature
/// `async_trait` gives the trait's method (a lifetime per borrowed argument, named in the
/// invocation), the body run when Pingora calls it.
macro_rules! ready_phase {
    (fn $name:ident<$($lt:lifetime),+>($this:ident, $($arg:ident: $ty:ty),* $(,)?) -> $out:ty $body:block) => {
        fn $name<'life0, $($lt,)+ 'async_trait>(
            &'life0 $this,
            $($arg: $ty),*
        ) -> Phase<'async_trait, $out>
        where
            'life0: 'async_trait,
            $($lt: 'async_trait,)+
            Self: 'async_trait,
        $body
    };
}

/// Pingora's default for phases that take only the session and the context, as ready
/// futures ([`ready_phase`]): the defaults' `async_trait` futures are allocated per request.
macro_rules! default_phases {
    ($($name:ident -> $out:ty = $value:expr;)+) => {$(
        ready_phase! {
            fn $name<'life1, 'life2>(self, _session: &'life1 mut Session, _ctx: &'life2 mut Ctx) -> $out {
                $value
            }
        }
    )+};
}

/// The future of a phase already done: zero-sized when it succeeded (its box allocates
/// nothing), a boxed ready error otherwise.
fn done<'t>(result: Result<()>) -> Phase<'t, Result<()>> {
    match result {
        Ok(()) => Box::pin(Done::default()),
        Err(e) => Box::pin(std::future::ready(Err(e))),
    }
}

/// A phase's success, ready at the first poll; zero-sized.
struct Done<T>(PhantomData<fn() -> T>);

impl<T> Default for Done<T> {
    fn default() -> Self {
        Done(PhantomData)
    }
}

/// What a phase returns when it succeeded.
trait Success {
    fn success() -> Self;
}

impl Success for () {
    fn success() -> Self {}
}

impl Success for Result<()> {
    fn success() -> Self {
        Ok(())
    }
}

/// `request_filter`'s success: the request goes on upstream (nothing answered).
impl Success for Result<bool> {
    fn success() -> Self {
        Ok(false)
    }
}

impl<T: Success> Future for Done<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
        Poll::Ready(T::success())
    }
}

/// `proxy_upstream_filter`'s answer, Pingora's default one (go upstream), ready at the first
/// poll; zero-sized (the default's `async_trait` future is allocated per request).
struct GoUpstream;

impl Future for GoUpstream {
    type Output = Result<bool>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<bool>> {
        Poll::Ready(Ok(true))
    }
}

/// Connected to the upstream endpoint: passive health and the connect time.
fn connected(ctx: &mut RequestCtx) {
    if let (Some(route), Some(idx)) = (&ctx.route, ctx.current) {
        route.upstream.record(idx, Outcome::Connected);
    }
    ctx.connect_ms = ctx.upstream_start.map(|s| millis(s.elapsed()));
}

/// The per-request state as Pingora holds it: boxed, so the futures Pingora builds and moves
/// per request carry a pointer instead of the whole context (several hundred bytes copied at
/// each move).
pub type Ctx = Box<RequestCtx>;

pub struct Edge {
    pub shared: Arc<Shared>,
}

impl Edge {
    fn runtime(&self, ctx: &RequestCtx) -> Arc<Runtime> {
        ctx.runtime
            .clone()
            .unwrap_or_else(|| self.shared.runtime.load_full())
    }

    /// `request_filter` up to its first await, run when Pingora calls the phase: load the
    /// config generation, identify, validate (400), redirect plain HTTP (308), route (404),
    /// then the protection stages: head limits (414/431), load shedding and the local rate
    /// limit (503/429), body (413), WAF (403). A request that passes them all with nothing to
    /// await (no fleet limit, no body to read, no first chunk line pending) is done here
    /// ([`Step::Forward`]); anything else goes on in [`Self::filter_rest`].
    fn filter_now(&self, session: &mut Session, ctx: &mut RequestCtx) -> Step {
        let rt = self.shared.runtime.load_full();
        ctx.runtime = Some(rt.clone());
        identify::identify(&self.shared, session, ctx, &rt);
        if let Some(stream) = framing_of(session) {
            stream.begin_request();
        }
        let Some(listener) = ctx.listener.clone() else {
            return Step::Deny(validate::bad_request("unknown_listener"));
        };
        ctx.host = match validate::request(session) {
            Ok(host) => host,
            Err(reason) => return Step::Deny(validate::bad_request(reason)),
        };
        if let Some(denial) = framing_problem(session) {
            return Step::Deny(denial);
        }
        if listener.tls.is_none() && !listener.insecure_plaintext {
            return Step::Redirect(listener);
        }
        let path = session.req_header().uri.path();
        let Some(route) = rt.router.find(&ctx.host, path).cloned() else {
            return Step::NoRoute;
        };
        ctx.route = Some(route.clone());
        if let Some(denial) = limits::head(session.req_header(), &rt.limits) {
            return Step::Deny(denial);
        }
        match limits::admit(&self.shared, ctx, &rt, &route) {
            Admitted::Yes => self.body(session, ctx, &rt, &route),
            Admitted::No(counted) => Step::Refuse(counted),
            Admitted::Fleet(guard) => Step::Fleet(route, guard),
        }
    }

    /// Admitted: the body stage, decided without reading (no body, a declared length over
    /// `max_body`, ...), else read in [`Self::filter_rest`].
    fn body(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        route: &Arc<Route>,
    ) -> Step {
        match body::unread(session, &route.waf) {
            Some(body) => self.inspect(session, ctx, rt, route, body),
            None => Step::ReadBody(route.clone()),
        }
    }

    /// The body read (or refused for its size), the WAF.
    fn inspect(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        route: &Route,
        body: Result<BodyReplay, BodyRefused>,
    ) -> Step {
        let replay = match body {
            Ok(replay) => replay,
            Err(refused) => return Step::Deny(refused.into_denial(&mut ctx.log_fields)),
        };
        let denial = waf::check(&self.shared, session, ctx, rt, route, &replay);
        if denial.is_none() && replay.rebuild {
            // A chunked body read whole past Pingora's replay window: Pingora reads it again
            // from a rebuilt session (see `h1_rebuild`).
            return Step::Rebuild(replay);
        }
        ctx.body = Some(replay);
        match denial {
            Some(denial) => Step::Deny(denial),
            None => before_forward(session),
        }
    }

    /// `request_filter` from where [`Self::filter_now`] stopped: answers of the edge's own,
    /// and the stages that await (the fleet limit, the body read, the rebuild of a long
    /// chunked body, a first chunk line), each followed by the steps after it.
    async fn filter_rest(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        mut step: Step,
    ) -> Result<bool> {
        let shared = &*self.shared;
        loop {
            step = match step {
                Step::Forward => return Ok(false),
                Step::Deny(denial) => {
                    shared.metrics.count_malformed(&denial);
                    return respond::deny(shared, session, ctx, denial).await;
                }
                Step::Refuse(counted) => {
                    return respond::refuse(shared, session, ctx, counted).await
                }
                Step::Redirect(listener) => {
                    let rt = self.runtime(ctx);
                    return respond::redirect_to_https(session, ctx, &listener, &rt).await;
                }
                Step::NoRoute => return respond::no_route(shared, session, ctx).await,
                Step::Fleet(route, guard) => {
                    let rt = self.runtime(ctx);
                    match limits::admit_fleet(shared, ctx, &rt, &route, guard).await {
                        Some(counted) => Step::Refuse(counted),
                        None => self.body(session, ctx, &rt, &route),
                    }
                }
                Step::ReadBody(route) => {
                    let body = body::buffer_body(session, &route.waf).await?;
                    let rt = self.runtime(ctx);
                    self.inspect(session, ctx, &rt, &route, body)
                }
                Step::Rebuild(mut replay) => {
                    h1_rebuild::rebuild(session, replay.take_for_rebuild()).await?;
                    ctx.body = Some(replay);
                    before_forward(session)
                }
                Step::FirstChunk => {
                    // A chunked body about to be streamed (nothing read it for inspection)
                    // whose first chunk line has not arrived: read it before the head leaves,
                    // so a broken first chunk is refused with nothing forwarded. The bytes go
                    // to Pingora's retry buffer, which it sends first.
                    session.enable_retry_buffering();
                    session
                        .read_request_body()
                        .await
                        .map_err(|e| e.into_down())?;
                    forward_or_deny(session)
                }
            }
        }
    }

    /// `request_body_filter`: replays the body read for inspection; enforces `max_body` on
    /// bodies without a usable length.
    fn request_body(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(replay) = ctx.body.as_mut() else {
            return Ok(());
        };
        replay.emit(body);
        // A body without a usable Content-Length (chunked, h2) may grow past max_body while
        // streaming: stop forwarding and fail the request.
        if session.body_bytes_read() as u64 > replay.max_body {
            let d = Denial::new(DenialReason::BodyTooLarge);
            respond::record_denial(&self.shared, ctx, d);
            ctx.log_fields.insert(
                "rampart.limit.detail".into(),
                "body grew past max_body".into(),
            );
            return Error::e_explain(ErrorType::HTTPStatus(413), "request body over max_body");
        }
        Ok(())
    }

    /// `upstream_request_filter`: forwarding headers and X-Request-Id.
    fn upstream_request(
        &self,
        session: &Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let rt = self.runtime(ctx);
        let id = ctx.request_id_header().clone();
        if let (Some(peer), Some(client)) = (ctx.peer, ctx.client_ip) {
            let info = ForwardInfo {
                peer: peer.ip(),
                client,
                trusted_peer: rt.trusted.contains(peer.ip()),
                proto: if ctx.https { "https" } else { "http" },
                host: &ctx.host,
            };
            header_edit::request(req, |h| {
                let _ = h.try_reserve(forward::ADDED + 1);
                let conn = framing_of(session).map(|s| s.forward_values());
                forward::apply(h, &info, conn);
                header_edit::set(h, &X_REQUEST_ID, id);
            });
        } else {
            header_edit::request(req, |h| header_edit::set(h, &X_REQUEST_ID, id));
        }
        Ok(())
    }

    /// `response_filter`: secure headers, strip list, cookie hardening, X-Request-Id.
    fn response(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // During the SIGTERM drain, `Connection: close`: Pingora closes a keep-alive connection
        // as soon as its request is answered then, and a client told `keep-alive` would send its
        // next request onto the closing connection and lose it (end of stream or a reset), where
        // `close` makes it open a new one, refused at once (the listener is closed) before
        // anything was sent. The edge's own responses always close (`request::respond`).
        if session.is_process_shutting_down() {
            session.set_keepalive(None);
        }
        if session
            .req_header()
            .headers
            .contains_key(http::header::UPGRADE)
        {
            if let Some(stream) = framing_of(session) {
                stream.responded(resp.status.as_u16());
            }
        }
        let rt;
        let (policy, cookies) = match &ctx.route {
            Some(route) => (&route.headers, Some(&route.cookies)),
            None => {
                rt = self.runtime(ctx);
                (&rt.default_headers, None)
            }
        };
        header_edit::response(resp, |h| {
            policy.apply_to(h, ctx.https, Some(ctx.request_id_header()));
            if let Some(cookies) = cookies {
                cookies.apply(h);
            }
        });
        Ok(())
    }
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Box::default()
    }

    /// No downstream modules. Pingora's default adds its response-compression module at level
    /// 0, which changes nothing (disabled, it neither reads `Accept-Encoding` nor touches a
    /// response) yet costs every request a module context (two allocations) and two boxed
    /// filter futures; the edge does not compress.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    default_phases! {
        // Nothing to do.
        early_request_filter -> Result<()> = done(Ok(()));
        // Every request that passed `request_filter` goes upstream.
        proxy_upstream_filter -> Result<bool> = Box::pin(GoUpstream);
    }

    ready_phase! {
        fn request_filter<'life1, 'life2>(
            self,
            session: &'life1 mut Session,
            ctx: &'life2 mut Ctx,
        ) -> Result<bool> {
            match self.filter_now(session, ctx) {
                Step::Forward => Box::pin(Done::default()),
                step => Box::pin(self.filter_rest(session, ctx, step)),
            }
        }
    }

    ready_phase! {
        fn request_body_filter<'life1, 'life2, 'life3>(
            self,
            session: &'life1 mut Session,
            body: &'life2 mut Option<Bytes>,
            _end_of_stream: bool,
            ctx: &'life3 mut Ctx,
        ) -> Result<()> {
            done(self.request_body(session, body, ctx))
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let ctx = &mut **ctx;
        let Some(route) = &ctx.route else {
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

    #[allow(clippy::too_many_arguments)]
    fn connected_to_upstream<'life0, 'life1, 'life2, 'life3, 'life4, 'async_trait>(
        &'life0 self,
        _session: &'life1 mut Session,
        _reused: bool,
        _peer: &'life2 HttpPeer,
        #[cfg(unix)] _fd: std::os::unix::io::RawFd,
        #[cfg(windows)] _sock: std::os::windows::io::RawSocket,
        digest: Option<&'life3 pingora_core::protocols::Digest>,
        ctx: &'life4 mut Ctx,
    ) -> Phase<'async_trait, Result<()>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        'life4: 'async_trait,
        Self: 'async_trait,
    {
        // Only a mesh upstream awaits anything (its SPIFFE ID is checked before a request byte
        // is sent); every other connection is recorded at once.
        if ctx.route.as_ref().is_some_and(|r| r.upstream.is_mesh()) {
            return Box::pin(async move {
                if let (Some(route), Some(idx)) = (&ctx.route, ctx.current) {
                    let metrics = &self.shared.metrics;
                    let tried = ctx.tried.len();
                    crate::upstream::admit_connection(metrics, &route.upstream, idx, digest, tried)
                        .await?;
                }
                connected(ctx);
                Ok(())
            });
        }
        connected(ctx);
        done(Ok(()))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
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

    ready_phase! {
        fn upstream_request_filter<'life1, 'life2, 'life3>(
            self,
            session: &'life1 mut Session,
            req: &'life2 mut RequestHeader,
            ctx: &'life3 mut Ctx,
        ) -> Result<()> {
            done(self.upstream_request(session, req, ctx))
        }
    }

    ready_phase! {
        fn upstream_response_filter<'life1, 'life2, 'life3>(
            self,
            _session: &'life1 mut Session,
            _resp: &'life2 mut ResponseHeader,
            ctx: &'life3 mut Ctx,
        ) -> Result<()> {
            ctx.response_ms = ctx
                .upstream_start
                .map(|s| millis(s.elapsed()));
            done(Ok(()))
        }
    }

    ready_phase! {
        fn response_filter<'life1, 'life2, 'life3>(
            self,
            session: &'life1 mut Session,
            resp: &'life2 mut ResponseHeader,
            ctx: &'life3 mut Ctx,
        ) -> Result<()> {
            done(self.response(session, resp, ctx))
        }
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let mut code = respond::error_status(e);
        if e.esource() == &ErrorSource::Upstream && !matches!(e.etype(), ErrorType::HTTPStatus(_)) {
            // Connect failures were counted in fail_to_connect.
            if let (Some(route), Some(_)) = (&ctx.route, ctx.connect_ms) {
                self.shared
                    .metrics
                    .upstream_errors
                    .with_label_values(&[&route.upstream.name, &error_kind(e)])
                    .inc();
            }
        }
        let malformed = framing_of(session).and_then(|s| s.malformed());
        if ctx.denial.is_none() && (code == 400 || code == 0 && malformed.is_some()) {
            // The request body broke its framing while it was read: the hardened stream names
            // how (a read it failed), else Pingora's own parser found it.
            code = 400;
            let d = validate::bad_request(malformed.map_or("malformed_body", |m| m.reason()));
            self.shared.metrics.count_malformed(&d);
            respond::record_denial(&self.shared, ctx, d);
        }
        if code > 0 {
            let rt = self.runtime(ctx);
            let (policy, id) = (ctx.policy(&rt), ctx.request_id_header());
            if let Err(err) = respond::respond(session, code, policy, ctx.https, id, None).await {
                tracing::debug!("could not send error response: {err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    ready_phase! {
        fn logging<'life1, 'life2, 'life3>(
            self,
            session: &'life1 mut Session,
            e: Option<&'life2 Error>,
            ctx: &'life3 mut Ctx,
        ) -> () {
            log::finish(&self.shared, session, e, ctx);
            Box::pin(Done::default())
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, _error: &Error) -> bool {
        // Every request is already in the access log with its error.
        true
    }
}

/// Where `request_filter` stands after the steps that await nothing ([`Edge::filter_now`]):
/// done, or what [`Edge::filter_rest`] must await before going on. Every path but
/// [`Step::Forward`] is cold (an answer of the edge's own) or configured (a fleet limit, a body
/// to inspect).
enum Step {
    /// Every stage passed: the request goes upstream.
    Forward,
    /// Refused here: count and answer it.
    Deny(Denial),
    /// Refused by the defences (counted there): answer it.
    Refuse(Denial),
    /// A plain listener: redirect to https.
    Redirect(Arc<ListenerInfo>),
    /// No route matches: 404.
    NoRoute,
    /// Admitted locally with its in-flight slot; the fleet limit is still to ask.
    Fleet(Arc<Route>, InFlightGuard),
    /// The body must be read for inspection.
    ReadBody(Arc<Route>),
    /// Passed, with a chunked body read whole past Pingora's replay window: rebuild the
    /// session to forward it.
    Rebuild(BodyReplay),
    /// A chunked body about to stream whose first chunk line has not arrived.
    FirstChunk,
}

/// The last steps before the head leaves: a first chunk line still to read, else
/// [`forward_unless`] the framing read so far is malformed.
fn before_forward(session: &mut Session) -> Step {
    let (pending, problem) = framing_of(session).map_or((false, None), |s| s.before_forward());
    if pending && !session.is_body_done() {
        return Step::FirstChunk;
    }
    forward_unless(problem)
}

/// Everything read so far, body included, before the head leaves.
fn forward_or_deny(session: &Session) -> Step {
    forward_unless(framing_of(session).and_then(|s| s.request_problem()))
}

/// Forward, unless the framing is malformed.
fn forward_unless(problem: Option<Malformed>) -> Step {
    match problem {
        Some(problem) => Step::Deny(framing_denial(problem)),
        None => Step::Forward,
    }
}

/// The framing the client sent, as the hardened stream read it (see `listener::framing`).
fn framing_problem(session: &Session) -> Option<Denial> {
    framing_of(session)?.request_problem().map(framing_denial)
}

fn framing_denial(problem: Malformed) -> Denial {
    validate::bad_request(problem.reason())
}

fn error_kind(e: &Error) -> String {
    e.etype().as_str().to_ascii_lowercase()
}
