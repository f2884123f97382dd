//! The operator's channel to the running service: HTTP/1.1 (hyper) on the
//! Unix socket `CA_DIR/admin.sock` (0600 in the 0700 CA directory, so only
//! the CA's user reaches it). `rampart-pki rotate …` uses it.
//!
//! - `POST /v1/admin/rotate/intermediate`
//! - `POST /v1/admin/rotate/root` (normal: the new root is distributed for
//!   `bundle_propagation_secs` first), `…/root?emergency` (used at once), or
//!   `…/root?emergency&break_workloads` (the old root also leaves the bundle
//!   at once).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use rampart_identity::IdentityError;

use super::CaService;
use crate::error::{PkiError, Result};

/// The admin socket of the CA in `ca_dir`.
pub fn socket_path(ca_dir: &Path) -> PathBuf {
    ca_dir.join("admin.sock")
}

/// Binds the socket (replacing a stale one left by a crash).
pub(super) async fn bind(ca_dir: &Path) -> Result<UnixListener> {
    let path = socket_path(ca_dir);
    if path.exists() {
        if UnixStream::connect(&path).await.is_ok() {
            return Err(PkiError::BadCaDir {
                path: ca_dir.to_path_buf(),
                why: "another rampart-pki serve already runs on this CA directory (admin.sock answers)".into(),
            });
        }
        let _ = std::fs::remove_file(&path);
    }
    let listener = UnixListener::bind(&path).map_err(|e| PkiError::io(&path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| PkiError::io(&path, e))?;
    }
    Ok(listener)
}

pub(super) async fn serve(
    service: Arc<CaService>,
    listener: UnixListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let service = Arc::clone(&service);
                async move { Ok::<_, Infallible>(handle(&service, req).await) }
            });
            let conn = http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), svc);
            // Rotations take a second or two (key generation, disk syncs).
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
    let _ = std::fs::remove_file(socket_path(&service.cfg.ca_dir));
}

async fn handle(service: &Arc<CaService>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let query = req.uri().query().unwrap_or("").to_string();
    let flag = |name: &str| query.split('&').any(|p| p == name);
    let result = match (req.method().as_str(), req.uri().path()) {
        ("POST", "/v1/admin/rotate/intermediate") => service.rotate_intermediate().await,
        ("POST", "/v1/admin/rotate/root") if flag("emergency") => {
            service
                .emergency_root_rotation(flag("break_workloads"))
                .await
        }
        ("POST", "/v1/admin/rotate/root") => {
            let propagation = Duration::from_secs(service.cfg.rotation.bundle_propagation_secs);
            service.begin_root_rotation(propagation).await
        }
        _ => {
            return reply(
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "message": "POST /v1/admin/rotate/intermediate or /v1/admin/rotate/root[?emergency[&break_workloads]]"}),
            )
        }
    };
    let _ = req.into_body().collect().await;
    match result {
        Ok(events) => {
            let (on_old_root, live) = service.workloads_on_old_root();
            reply(
                StatusCode::OK,
                json!({
                    "events": events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
                    "live_workloads": live,
                    "workloads_on_old_root": on_old_root,
                }),
            )
        }
        Err(e) => reply(
            StatusCode::CONFLICT,
            json!({"error": e.reason(), "message": e.to_string()}),
        ),
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r
}

/// Client side (the CLI): one POST to the admin socket of `ca_dir`;
/// returns the answer's JSON. The whole exchange has one deadline (90 s:
/// a rotation generates keys and syncs several files).
pub async fn post(ca_dir: &Path, path_and_query: &str) -> Result<serde_json::Value> {
    let sock = socket_path(ca_dir);
    let exchange = async {
        let stream = UnixStream::connect(&sock).await.map_err(|e| {
            unavailable(format!(
                "no running service answers on {} ({e}); rotation runs against `rampart-pki serve`",
                sock.display()
            ))
        })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let req = Request::post(path_and_query)
            .header(hyper::header::HOST, "rampart-pki-admin")
            .body(Full::new(Bytes::new()))
            .map_err(|e| PkiError::BadRequest(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .to_bytes();
        driver.abort();
        Ok::<_, PkiError>((status, body))
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(90), exchange)
        .await
        .map_err(|_| unavailable("the service did not answer within 90 s".into()))??;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| unavailable(format!("bad admin answer: {e}")))?;
    if !status.is_success() {
        return Err(IdentityError::CaRefused {
            status: status.as_u16(),
            reason: value["error"].as_str().unwrap_or("unknown").to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        }
        .into());
    }
    Ok(value)
}

fn unavailable(why: String) -> PkiError {
    IdentityError::CaUnavailable(why).into()
}
