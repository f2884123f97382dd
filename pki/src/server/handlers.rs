//! One connection: TLS handshake (bounded by the handshake deadline), then
//! HTTP/1.1 over hyper, one request per connection (`connection: close`,
//! as the wire API always was). Renewals, edge certificates and Kubernetes
//! attestation are signed inline on the runtime (CPU only, ~100 µs; the
//! revocation list is a `stat` of a cached inode, re-read only when it
//! changed); join tokens are redeemed on the blocking pool (file lock and
//! write).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::api::{BootstrapRequest, BundleResponse, ErrorResponse, IssueResponse, RenewRequest};
use super::{blocking, CaService};
use crate::audit::Expected;
use crate::ca::IssuedCert;
use crate::csr;
use crate::error::{PkiError, Result};
use crate::spiffe::SpiffeId;

type Reply = (u16, &'static str, Vec<u8>);

/// The client certificate's identity and serial (mTLS callers).
#[derive(Clone)]
struct Peer {
    id: SpiffeId,
    serial: String,
}

/// Largest request body accepted (a CSR is about 500 bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Largest request head (hyper's minimum buffer).
const MAX_HEAD: usize = 16 * 1024;

/// This connection's announcement to the audit writer that it may soon
/// queue an issuance record (group commit), taken by the issuance.
type Announced = Arc<std::sync::Mutex<Option<Expected>>>;

/// Serves one accepted TCP connection to its end.
pub(super) async fn connection(
    service: Arc<CaService>,
    tcp: TcpStream,
    peer: SocketAddr,
    expected: Expected,
) {
    let limits = service.cfg.limits.clone();
    let acceptor = TlsAcceptor::from(service.tls.load_full());
    let handshake = tokio::time::timeout(
        Duration::from_millis(limits.handshake_timeout_ms),
        acceptor.accept(tcp),
    );
    let tls = match handshake.await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            service.metrics.connection_closed("handshake_timeout");
            tracing::debug!(%peer, "TLS handshake deadline passed");
            return;
        }
    };
    // Corked once the request is in (`handle`), so that the answer, its
    // close_notify and the FIN leave in one segment.
    let socket = tls
        .get_ref()
        .0
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(Arc::new);
    let peer_id = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|leaf| {
            let id = crate::inspect::check_svid(leaf).ok()?;
            let serial = crate::inspect::serial_hex(leaf).ok()?;
            Some(Peer { id, serial })
        });
    let expected: Announced = Arc::new(std::sync::Mutex::new(Some(expected)));
    let svc = {
        let service = Arc::clone(&service);
        service_fn(move |req: Request<Incoming>| {
            let (service, peer_id) = (Arc::clone(&service), peer_id.clone());
            let (expected, socket) = (Arc::clone(&expected), socket.clone());
            async move {
                let resp = handle(&service, req, peer_id, peer, &expected).await;
                // The request is read and one request is all a connection
                // carries: from here the kernel holds what is written (the
                // answer, then close_notify) until the shutdown that follows
                // (or 200 ms at most).
                if let Some(socket) = socket {
                    let _ = socket2::SockRef::from(socket.as_ref()).set_tcp_cork(true);
                }
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let conn = http1::Builder::new()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.handshake_timeout_ms))
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(tls), svc);
    match tokio::time::timeout(Duration::from_millis(limits.request_timeout_ms), conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTP connection error"),
        Err(_) => {
            service.metrics.connection_closed("request_timeout");
            tracing::debug!(%peer, "request deadline passed");
        }
    }
}

async fn handle(
    service: &Arc<CaService>,
    req: Request<Incoming>,
    peer_id: Option<Peer>,
    peer: SocketAddr,
    expected: &Announced,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let (status, ctype, body) = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => {
            route(
                service,
                parts.method.as_str(),
                parts.uri.path(),
                b.to_bytes(),
                peer_id,
                peer,
                expected,
            )
            .await
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            error_reply(413, "too_large", "request body over 64 KiB")
        }
        Err(e) => error_reply(400, "bad_request", &e.to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    resp
}

async fn route(
    service: &Arc<CaService>,
    method: &str,
    path: &str,
    body: Bytes,
    peer_id: Option<Peer>,
    peer: SocketAddr,
    expected: &Announced,
) -> Reply {
    // Only an issuance queues a durable record; anything else ends the
    // announcement now.
    let expected = expected.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (method, path) {
        ("GET", "/v1/bundle") => {
            let revoked = service.revoked_now().await;
            let body = BundleResponse {
                trust_domain: service.trust_domain.to_string(),
                bundle_pem: service.bundle_pem().to_string(),
                revoked: Some(revoked),
            };
            (
                200,
                "application/json",
                serde_json::to_vec(&body).unwrap_or_default(),
            )
        }
        ("GET", "/metrics") => (
            200,
            "text/plain; version=0.0.4",
            service.metrics_text().into_bytes(),
        ),
        ("POST", "/v1/bootstrap") => issue(service, Caller::Token, body, peer, expected).await,
        ("POST", "/v1/attest/k8s") => issue(service, Caller::Kubernetes, body, peer, expected).await,
        ("POST", "/v1/renew") => match peer_id {
            Some(p) => issue(service, Caller::Renew(p.id, p.serial), body, peer, expected).await,
            None => no_client_cert(service, "renew", peer),
        },
        ("POST", "/v1/edge") => match peer_id {
            Some(p) => issue(service, Caller::Edge(p.id, p.serial), body, peer, expected).await,
            None => no_client_cert(service, "edge", peer),
        },
        (
            _,
            "/v1/bundle" | "/metrics" | "/v1/bootstrap" | "/v1/renew" | "/v1/edge"
            | "/v1/attest/k8s",
        ) => {
            error_reply(405, "method_not_allowed", "wrong method")
        }
        _ => error_reply(
            404,
            "not_found",
            "endpoints: POST /v1/bootstrap, POST /v1/renew, POST /v1/edge, GET /v1/bundle, GET /metrics",
        ),
    }
}

/// Who is asking, as established by the transport.
#[derive(Clone)]
enum Caller {
    /// Bootstrap: the join token in the body decides.
    Token,
    /// Bootstrap with a Kubernetes service-account token (JWT).
    Kubernetes,
    /// Renewal by the holder of this valid SVID (identity, serial).
    Renew(SpiffeId, String),
    /// Edge server certificate requested by this SVID (identity, serial).
    Edge(SpiffeId, String),
}

impl Caller {
    fn kind(&self) -> &'static str {
        match self {
            Caller::Token => "bootstrap",
            Caller::Kubernetes => "k8s",
            Caller::Renew(..) => "renew",
            Caller::Edge(..) => "edge",
        }
    }

    fn id(&self) -> Option<SpiffeId> {
        match self {
            Caller::Token | Caller::Kubernetes => None,
            Caller::Renew(id, _) | Caller::Edge(id, _) => Some(id.clone()),
        }
    }
}

fn no_client_cert(service: &CaService, kind: &str, peer: SocketAddr) -> Reply {
    let e = PkiError::CertificateNotValidNow(format!(
        "{kind} needs the current SVID as TLS client certificate"
    ));
    refuse(service, kind, None, &e, peer)
}

async fn issue(
    service: &Arc<CaService>,
    caller: Caller,
    body: Bytes,
    peer: SocketAddr,
    expected: Option<Expected>,
) -> Reply {
    let svc = Arc::clone(service);
    let kind = caller.kind();
    let claimed = caller.id();
    // Renewals, edge certificates and Kubernetes attestation are CPU only
    // (CSR check and one signature, ~100 us): signed inline on the runtime,
    // no hop to the blocking pool and back. A join token is redeemed under
    // a file lock with a write: that path stays on the blocking pool.
    let attested = match caller {
        Caller::Kubernetes => match attest_kubernetes(service, &body).await {
            Ok(attested) => Some(attested),
            Err(e) => return refuse(service, kind, None, &e, peer),
        },
        _ => None,
    };
    let result = match caller {
        Caller::Token => blocking(move || Ok(issue_blocking(&svc, &body, caller, None))).await,
        _ => Ok(issue_blocking(&svc, &body, caller, attested)),
    };
    let (id, result) = match result {
        Ok(r) => r,
        Err(e) => (claimed, Err(e)),
    };
    match result {
        Ok(issued) => {
            let Some(id) = id else {
                return error_reply(500, "internal", "no identity");
            };
            // No certificate leaves unaudited: the record is on disk first.
            let durable = service.audit.record_durable(
                "issued",
                json!({"kind": kind, "spiffe_id": id.as_str(), "serial": issued.serial, "not_after": issued.not_after.unix_timestamp(), "peer": peer.to_string()}),
                expected,
            ).await;
            if !durable {
                return error_reply(
                    503,
                    "audit_unavailable",
                    "the audit log cannot be written; nothing was issued",
                );
            }
            service.metrics.issued.with_label_values(&[kind]).inc();
            let leaf = crate::workloads::LiveLeaf {
                serial: issued.serial.clone(),
                root: issued.root_serial.clone(),
                not_after: issued.not_after.unix_timestamp(),
                issued_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            };
            match kind {
                "edge" => service.workloads.record(&format!("{id}#edge"), leaf),
                _ => service.workloads.record(id.as_str(), leaf),
            }
            let resp = IssueResponse {
                spiffe_id: id.to_string(),
                chain_pem: service.chain_pem(&issued.chain),
                bundle_pem: service.bundle_pem().to_string(),
                not_after: issued.not_after.unix_timestamp(),
                revoked: Some(service.revocations.cached().published()),
            };
            (
                200,
                "application/json",
                serde_json::to_vec(&resp).unwrap_or_default(),
            )
        }
        Err(e) => refuse(service, kind, id.as_ref(), &e, peer),
    }
}

/// Verifies a Kubernetes service-account token (which may wait for a JWKS
/// refresh when it names a new key) and returns the identity it proves.
async fn attest_kubernetes(
    service: &CaService,
    body: &[u8],
) -> Result<(SpiffeId, BootstrapRequest)> {
    let Some(attestor) = &service.k8s else {
        return Err(PkiError::NotAuthorized(
            "Kubernetes attestation is not configured ([attestation.kubernetes])".into(),
        ));
    };
    let req: BootstrapRequest =
        serde_json::from_slice(body).map_err(|e| PkiError::BadRequest(e.to_string()))?;
    Ok((attestor.attest(&req.token).await?, req))
}

/// Returns the identity concerned (when known) and the outcome.
fn issue_blocking(
    service: &CaService,
    body: &[u8],
    caller: Caller,
    attested: Option<(SpiffeId, BootstrapRequest)>,
) -> (Option<SpiffeId>, Result<IssuedCert>) {
    match caller {
        Caller::Edge(id, serial) => {
            let r = (|| {
                service.revocations.current()?.check(&id, Some(&serial))?;
                if !service.cfg.edge.identities.iter().any(|e| e == id.as_str()) {
                    return Err(PkiError::NotAuthorized(format!(
                        "{id} is not listed in [edge] identities"
                    )));
                }
                let req: RenewRequest = serde_json::from_slice(body)
                    .map_err(|e| PkiError::BadRequest(e.to_string()))?;
                let ttl = service.ttl(req.ttl_secs)?;
                let csr = csr::parse_pem(&req.csr)?;
                csr.require_edge()?;
                service
                    .limiter
                    .check(&format!("{id}#edge"))
                    .map_err(|retry_after_secs| PkiError::RateLimited {
                        id: id.to_string(),
                        retry_after_secs,
                    })?;
                service
                    .issuer
                    .load()
                    .issue_edge(&csr.dns_names, &csr.public_key, ttl)
            })();
            (Some(id), r)
        }
        Caller::Renew(id, serial) => {
            let r = (|| {
                service.revocations.current()?.check(&id, Some(&serial))?;
                let req: RenewRequest = serde_json::from_slice(body)
                    .map_err(|e| PkiError::BadRequest(e.to_string()))?;
                let ttl = service.ttl(req.ttl_secs)?;
                let csr = csr::parse_pem(&req.csr)?;
                csr.require_svid_for(&id)?;
                service.cfg.issuance.reserved_ids.check(&id)?;
                service.rate_check(&id)?;
                service.issuer.load().issue_svid(&id, &csr.public_key, ttl)
            })();
            (Some(id), r)
        }
        Caller::Kubernetes => {
            let Some((id, req)) = attested else {
                return (
                    None,
                    Err(PkiError::NotAuthorized("no attested identity".into())),
                );
            };
            let r = (|| {
                let ttl = service.ttl(req.ttl_secs)?;
                let csr = csr::parse_pem(&req.csr)?;
                csr.require_svid_for(&id)?;
                service.cfg.issuance.reserved_ids.check(&id)?;
                service.revocations.current()?.check(&id, None)?;
                service.rate_check(&id)?;
                service.issuer.load().issue_svid(&id, &csr.public_key, ttl)
            })();
            (Some(id), r)
        }
        Caller::Token => {
            let req: BootstrapRequest = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => return (None, Err(PkiError::BadRequest(e.to_string()))),
            };
            let mut bound = None;
            let mut issued = None;
            let r = service.tokens.redeem(&req.token, |id| {
                bound = Some(id.clone());
                let ttl = service.ttl(req.ttl_secs)?;
                let csr = csr::parse_pem(&req.csr)?;
                csr.require_svid_for(id)?;
                service.cfg.issuance.reserved_ids.check(id)?;
                service.revocations.current()?.check(id, None)?;
                service.rate_check(id)?;
                // Issue before the token is consumed: a failure here leaves
                // the token usable; a lost race discards the certificate.
                issued = Some(service.issuer.load().issue_svid(id, &csr.public_key, ttl)?);
                Ok(())
            });
            match (r, issued) {
                (Ok(id), Some(cert)) => (Some(id), Ok(cert)),
                (Ok(id), None) => (Some(id), Err(PkiError::Crypto("issuance lost"))),
                (Err(e), _) => (bound, Err(e)),
            }
        }
    }
}

impl CaService {
    fn ttl(&self, requested: Option<u64>) -> Result<Duration> {
        let max = self.cfg.issuance.max_ttl_secs;
        let secs = requested.unwrap_or(self.cfg.issuance.default_ttl_secs);
        if secs > max {
            return Err(PkiError::LifetimeOverCap {
                requested_secs: secs,
                max_secs: max,
            });
        }
        if secs == 0 {
            return Err(PkiError::LifetimeZero);
        }
        Ok(Duration::from_secs(secs))
    }

    fn rate_check(&self, id: &SpiffeId) -> Result<()> {
        self.limiter
            .check(id.as_str())
            .map_err(|retry_after_secs| PkiError::RateLimited {
                id: id.to_string(),
                retry_after_secs,
            })
    }
}

fn refuse(
    service: &CaService,
    kind: &str,
    id: Option<&SpiffeId>,
    e: &PkiError,
    peer: SocketAddr,
) -> Reply {
    service
        .metrics
        .refused
        .with_label_values(&[e.reason()])
        .inc();
    service.audit.record(
        "refused",
        json!({"kind": kind, "reason": e.reason(), "message": e.to_string(), "spiffe_id": id.map(|i| i.as_str()), "peer": peer.to_string()}),
    );
    tracing::info!(kind, reason = e.reason(), %peer, "refused: {e}");
    error_reply(e.http_status(), e.reason(), &e.to_string())
}

fn error_reply(status: u16, reason: &str, message: &str) -> Reply {
    let body = ErrorResponse {
        error: reason.to_string(),
        message: message.to_string(),
    };
    (
        status,
        "application/json",
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}
