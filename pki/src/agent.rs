//! `rampart-pki agent`: delivery of an SVID to a workload in any language.
//! Bootstraps with a join token (or resumes from the files it wrote
//! before), keeps the key, and writes into one directory (a tmpfs in
//! Kubernetes), each file atomically (temporary file + rename):
//!
//! - `cert.pem`: the leaf then the intermediate;
//! - `key.pem`: the leaf's PKCS#8 key, 0600;
//! - `bundle.pem`: every trusted root;
//! - `revoked.json`: the CA's deny-list (`{"spiffe_ids":[…],"serials":[…]}`).
//!
//! The key is written before the certificate, so a reader that sees a new
//! `cert.pem` finds its key. Renewal follows `rampart-identity`'s
//! `SvidSource` (2/3 of life ± jitter, backoff while the CA is down); the
//! bundle is refreshed on its schedule. A restarted agent resumes from
//! `cert.pem`/`key.pem`/`bundle.pem` while the certificate is valid (no new
//! token). `--metrics-listen` serves `/metrics` with the leaf's expiry.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use prometheus::{Gauge, IntGauge, Registry};
use rampart_identity::{CaEndpoint, SourceSettings, SvidSource};
use rampart_tls::{BundleHandle, Identity, SpiffeId, TrustDomain};

use crate::error::{PkiError, Result};
use crate::keystore::{pem_encode, write_file_0600, write_file_public};

/// What the agent is told.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The CA service (`host:port`).
    pub ca: String,
    /// The identity to hold.
    pub spiffe_id: SpiffeId,
    /// File holding a join token (needed only without a valid stored SVID).
    pub token_file: Option<PathBuf>,
    /// Roots to authenticate the CA with at first start (later: `OUT/bundle.pem`).
    pub bundle_file: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Requested lifetime (the CA caps it).
    pub ttl: Option<Duration>,
    /// How often the bundle is refreshed.
    pub bundle_refresh: Duration,
}

/// Files of the output directory.
pub fn paths(out: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    (
        out.join("cert.pem"),
        out.join("key.pem"),
        out.join("bundle.pem"),
        out.join("revoked.json"),
    )
}

/// Starts the agent: resumes or bootstraps, writes the files once, and
/// returns the source (its renewal loop not yet spawned).
pub async fn start(opts: &AgentOptions) -> Result<Arc<SvidSource>> {
    std::fs::create_dir_all(&opts.out).map_err(|e| PkiError::io(&opts.out, e))?;
    let (cert, key, bundle, _) = paths(&opts.out);
    let mut settings = SourceSettings::new(
        CaEndpoint::parse(&opts.ca).map_err(|e| PkiError::BadRequest(e.to_string()))?,
        opts.spiffe_id.clone(),
    );
    settings.ttl = opts.ttl;
    settings.bundle_refresh = opts.bundle_refresh;
    // The persisted bundle (kept current by this agent) wins over the
    // provisioning one, which may predate a root rotation.
    let roots = match (bundle.exists(), &opts.bundle_file) {
        (true, _) => rampart_tls::pem::load_certs(&bundle)?,
        (false, Some(f)) => rampart_tls::pem::load_certs(f)?,
        (false, None) => {
            return Err(PkiError::BadRequest(format!(
                "no trust bundle: give --bundle-file (e.g. the output of `rampart-pki bundle`); {} does not exist yet",
                bundle.display()
            )))
        }
    };
    let stored = if cert.exists() && key.exists() {
        match Identity::load(&cert, &key) {
            Ok(id) if id.spiffe_id == opts.spiffe_id && id.seconds_to_expiry() > 0.0 => Some(id),
            Ok(_) => {
                tracing::warn!("stored SVID expired or for another identity; bootstrapping");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "stored SVID unreadable; bootstrapping");
                None
            }
        }
    } else {
        None
    };
    let source = match stored {
        Some(id) => {
            let td = TrustDomain::parse(opts.spiffe_id.trust_domain_str())?;
            let handle = BundleHandle::new(td, roots)?;
            SvidSource::from_identity(settings, handle, id)?
        }
        None => {
            let token_file = opts.token_file.as_ref().ok_or_else(|| {
                PkiError::BadRequest(
                    "no valid SVID in the output directory and no --token-file".into(),
                )
            })?;
            let token =
                std::fs::read_to_string(token_file).map_err(|e| PkiError::io(token_file, e))?;
            SvidSource::bootstrap(settings, roots, token.trim()).await?
        }
    };
    write_files(&opts.out, &source)?;
    Ok(source)
}

/// Writes key, then certificate, bundle and deny-list, each atomically.
pub fn write_files(out: &Path, source: &SvidSource) -> Result<()> {
    let (cert, key, bundle, revoked) = paths(out);
    let id = source.identity();
    let key_der = match id.key() {
        rustls_pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => return Err(PkiError::Crypto("SVID key is not PKCS#8")),
    };
    write_file_0600(&key, pem_encode("PRIVATE KEY", &key_der).as_bytes())?;
    let chain: String = id
        .chain
        .iter()
        .map(|c| pem_encode("CERTIFICATE", c))
        .collect();
    write_file_public(&cert, chain.as_bytes())?;
    let roots: String = source
        .bundle()
        .roots()
        .iter()
        .map(|c| pem_encode("CERTIFICATE", c))
        .collect();
    write_file_public(&bundle, roots.as_bytes())?;
    let list = rampart_identity::api::RevokedList::from_list(&source.bundle().revocations());
    let json = serde_json::to_vec(&list).map_err(|e| PkiError::BadRequest(e.to_string()))?;
    write_file_public(&revoked, &json)
}

/// The agent's metrics.
pub struct AgentMetrics {
    registry: Registry,
    expiry: Gauge,
    renewals: IntGauge,
    failures: IntGauge,
}

impl AgentMetrics {
    fn new() -> Self {
        use rampart_ops::metrics::{gauge, gauge_f64};
        let registry = Registry::new();
        AgentMetrics {
            expiry: gauge_f64(
                &registry,
                "rampart_pki_agent_svid_seconds_to_expiry",
                "Seconds until the SVID in the output directory expires",
            ),
            renewals: gauge(
                &registry,
                "rampart_pki_agent_renewals",
                "Renewals since the agent started",
            ),
            failures: gauge(
                &registry,
                "rampart_pki_agent_consecutive_renewal_failures",
                "Renewal attempts failed in a row (0 after a success)",
            ),
            registry,
        }
    }

    fn render(&self, source: &SvidSource) -> String {
        let st = source.status().borrow().clone();
        self.expiry.set(source.seconds_to_expiry());
        self.renewals
            .set(i64::try_from(st.renewals).unwrap_or(i64::MAX));
        self.failures.set(i64::from(st.consecutive_failures));
        rampart_ops::metrics::render(&self.registry)
    }
}

/// Serves `/metrics` on `listener` until the task is dropped.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    source: Arc<SvidSource>,
) -> Result<()> {
    let metrics = Arc::new(AgentMetrics::new());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let (metrics, source) = (Arc::clone(&metrics), Arc::clone(&source));
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let body = if req.uri().path() == "/metrics" {
                    metrics.render(&source)
                } else {
                    "see /metrics\n".to_string()
                };
                async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(tcp), svc);
            let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
        });
    }
}

/// Keeps the files current: after every renewal, and when the bundle or
/// deny-list changes. Runs until the task is dropped.
pub async fn keep_files_current(out: PathBuf, source: Arc<SvidSource>) {
    let mut status = source.status();
    let mut last_roots = source.bundle().roots();
    let mut last_revoked = source.bundle().revocations();
    loop {
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let roots = source.bundle().roots();
                let revoked = source.bundle().revocations();
                if roots == last_roots && revoked == last_revoked {
                    continue;
                }
                last_roots = roots;
                last_revoked = revoked;
            }
        }
        let (out, src) = (out.clone(), Arc::clone(&source));
        match tokio::task::spawn_blocking(move || write_files(&out, &src)).await {
            Ok(Ok(())) => tracing::info!(
                seconds_to_expiry = source.seconds_to_expiry(),
                "SVID files written"
            ),
            Ok(Err(e)) => tracing::error!(error = %e, "writing the SVID files failed"),
            Err(e) => tracing::error!(error = %e, "writer task failed"),
        }
    }
}

/// The metrics address argument, parsed.
pub fn parse_listen(s: &str) -> Result<SocketAddr> {
    s.parse()
        .map_err(|_| PkiError::BadRequest(format!("--metrics-listen {s:?}: expected IP:PORT")))
}
