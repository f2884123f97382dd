//! The admin HTTP server (bind it to loopback): `/metrics` (Prometheus text), `/healthz` (the
//! process is up) and `/readyz` (200 once [`Readiness`] is set, 503 before and while draining).
//! HTTP/1.1 on hyper; GET and HEAD only; every response `Cache-Control: no-store` and
//! `X-Content-Type-Options: nosniff`.

use crate::drain::Readiness;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::Registry;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A connection gets this long to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// And this long in all.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// What the admin endpoints report.
#[derive(Clone)]
pub struct Admin {
    /// Rendered by `/metrics`.
    pub registry: Registry,
    /// Answered by `/readyz`.
    pub ready: Readiness,
}

/// Serves the admin endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, admin: Admin) {
    let admin = Arc::new(admin);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("admin accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(respond(&admin, &req)) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
        });
    }
}

fn respond(admin: &Admin, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let mut resp = text(StatusCode::OK, crate::metrics::render(&admin.registry));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(crate::metrics::TEXT_FORMAT),
            );
            resp
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if admin.ready.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn endpoints_over_a_real_socket() {
        tokio::time::timeout(Duration::from_secs(20), async {
            let registry = Registry::new();
            let c = crate::metrics::counter(&registry, "t_hits_total", "hits");
            c.inc();
            let ready = Readiness::new();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(serve(
                listener,
                Admin {
                    registry,
                    ready: ready.clone(),
                },
            ));
            let m = get(addr, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n").await;
            assert!(m.starts_with("HTTP/1.1 200"), "{m}");
            assert!(m.contains("t_hits_total 1"), "{m}");
            assert!(m.contains("version=0.0.4"), "{m}");
            let r = get(addr, "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n").await;
            assert!(r.starts_with("HTTP/1.1 503"), "{r}");
            ready.set(true);
            let r = get(addr, "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n").await;
            assert!(r.starts_with("HTTP/1.1 200"), "{r}");
            let h = get(addr, "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").await;
            assert!(h.starts_with("HTTP/1.1 200"), "{h}");
            assert!(h.contains("cache-control: no-store"), "{h}");
            let p = get(
                addr,
                "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
            assert!(p.starts_with("HTTP/1.1 405"), "{p}");
            let n = get(addr, "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n").await;
            assert!(n.starts_with("HTTP/1.1 404"), "{n}");
            let bad = get(addr, "GARBAGE\r\n\r\n").await;
            assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
        })
        .await
        .expect("admin test deadline");
    }
}
