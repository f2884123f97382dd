//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process runs), `/readyz`
//! (our certificate is valid).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::Ctx;

/// Serves the admin endpoints until the process ends.
pub async fn serve(ctx: Arc<Ctx>, listener: TcpListener) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(answer(&ctx, req.uri().path())) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

fn answer(ctx: &Ctx, path: &str) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/metrics" => (StatusCode::OK, ctx.metrics.render()),
        "/healthz" => (StatusCode::OK, "ok\n".to_string()),
        "/readyz" => {
            let secs = ctx.generation().tls.seconds_to_expiry();
            if secs > 0.0 {
                (
                    StatusCode::OK,
                    format!("ready: certificate valid for {secs:.0} s\n"),
                )
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: certificate expired {:.0} s ago\n", -secs),
                )
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            "not found: /metrics /healthz /readyz\n".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp
}
