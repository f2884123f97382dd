//! HTTP/1.1 ports: every request is decided on its own (method and path), the caller's
//! identity reaches the app in `x-forwarded-client-cert` (Envoy's format, `By=…;URI=…`), and
//! any such header the caller sent is removed first. Paths that are not in normal form are
//! refused with 400 before policy: policy must not guess how the app would read them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rampart_tls::spiffe::SpiffeId;
use tokio::net::TcpStream;

use super::log::base_event;
use super::metrics::count;
use super::{Ctx, CONNECT_TIMEOUT};
use crate::config::InboundPort;
use crate::policy::pattern::is_normal_path;
use crate::policy::{HttpRequest, InboundRequest};

type Body = BoxBody<Bytes, hyper::Error>;

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

struct Conn {
    ctx: Arc<Ctx>,
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
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
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
    let conn = Arc::new(Conn {
        ctx: ctx.clone(),
        port: port.clone(),
        peer,
        caller,
        own,
        xfcc,
        app: Mutex::new(None),
        last: Mutex::new(None),
    });
    let service = {
        let conn = conn.clone();
        service_fn(move |req| {
            let conn = conn.clone();
            async move { Ok::<_, Infallible>(conn.request(req).await) }
        })
    };
    let server = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(64 * 1024)
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
        let path = req.uri().path().to_owned();
        let event = base_event(
            "request",
            &self.port,
            self.peer,
            self.caller.as_ref(),
            &self.own,
        )
        .with("network.protocol.name", "http")
        .with("http.request.method", method.as_str())
        .with("url.path", path.clone());
        if !path_is_unambiguous(&path) {
            self.ctx
                .metrics
                .requests
                .with_label_values(&["inbound", "bad_request"])
                .inc();
            self.ctx.emit(
                event
                    .with("http.response.status_code", 400)
                    .with("rampart.reason", "path not in normal form"),
            );
            return text(
                StatusCode::BAD_REQUEST,
                "bad request: the path has dot segments, empty segments or encoded separators\n"
                    .into(),
            );
        }
        let g = self.ctx.generation();
        let decision = g.policy.inbound(&InboundRequest {
            caller: self.caller.as_ref(),
            port: self.port.port,
            source: Some(self.peer.ip()),
            http: Some(HttpRequest {
                method: method.as_str(),
                path: &path,
            }),
        });
        drop(g);
        count(&self.ctx, "inbound", "request", &decision);
        if let Ok(mut last) = self.last.lock() {
            // Most connections repeat one request: keep the stored copy when it is the same.
            if last
                .as_ref()
                .is_none_or(|(m, p)| *m != method || *p != path)
            {
                *last = Some((method, path));
            }
        }
        let event = event.decision(&decision);
        if !decision.verdict.passes() {
            let mut resp = text(
                StatusCode::FORBIDDEN,
                format!("denied by rampart-sidecar: {decision}\n"),
            );
            if let Some(reason) = &decision.reason {
                resp.headers_mut()
                    .insert(DENIED, HeaderValue::from_static(reason.label()));
            }
            self.ctx.emit(
                event
                    .with("http.response.status_code", 403)
                    .with("rampart.duration_ms", ms(started)),
            );
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

        let resp = match self.forward(req).await {
            Ok(resp) => resp.map(|b| b.boxed()),
            Err(why) => {
                self.ctx.emit(
                    event
                        .with("http.response.status_code", 502)
                        .with("error.message", why)
                        .with("rampart.duration_ms", ms(started)),
                );
                return text(
                    StatusCode::BAD_GATEWAY,
                    "bad gateway: the app did not answer\n".into(),
                );
            }
        };
        self.ctx.emit(
            event
                .with("http.response.status_code", resp.status().as_u16())
                .with("rampart.duration_ms", ms(started)),
        );
        resp
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
