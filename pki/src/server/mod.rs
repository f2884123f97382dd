//! `rampart-pki serve`: the CA as an HTTPS service (rustls + hyper).
//!
//! - `POST /v1/bootstrap`: join token + CSR → SVID for the token's identity.
//! - `POST /v1/renew`: over mTLS with the current, valid SVID + CSR for the
//!   same identity → a new SVID.
//! - `GET /v1/bundle`: every trusted root. `GET /metrics`: Prometheus.
//!
//! Issuance reads the active issuer through arc-swap (no lock); rotation
//! runs in a background task and swaps issuer, bundle and the service's own
//! TLS certificate atomically. Every issuance and refusal is audited.

pub use rampart_identity::api;
pub mod admin;
mod conns;
mod handlers;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use serde_json::json;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::{AuditLog, AuditSink};
use crate::ca::{Ca, Issuer, RotationEvent};
use crate::config::ServeConfig;
use crate::error::{PkiError, Result};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::spiffe::{SpiffeId, TrustDomain};
use crate::tls::{BundleHandle, Identity, PeerPolicy, RejectHook, SpiffeClientVerifier};
use crate::token::TokenStore;

/// The SPIFFE ID the CA service presents: `spiffe://DOMAIN/rampart/pki`.
pub fn service_id(td: &TrustDomain) -> Result<SpiffeId> {
    Ok(rampart_identity::api::ca_service_id(td)?)
}

/// Shared state of a running CA service.
pub struct CaService {
    cfg: ServeConfig,
    trust_domain: TrustDomain,
    ca: Mutex<Ca>,
    issuer: ArcSwap<Issuer>,
    bundle_pem: ArcSwap<String>,
    root_expiry: ArcSwap<Vec<(String, OffsetDateTime)>>,
    bundle: BundleHandle,
    tokens: TokenStore,
    revocations: crate::revocation::Watch,
    k8s: Option<Arc<crate::attest::KubernetesAttestor>>,
    audit: AuditSink,
    limiter: RateLimiter,
    metrics: Arc<Metrics>,
    tls: ArcSwap<ServerConfig>,
    server_cert_renew_at: AtomicI64,
    server_cert_issuer: ArcSwap<String>,
    workloads: crate::workloads::Workloads,
    /// During an emergency root drain: the new root certified by the old
    /// one, appended to every chain handed out (see
    /// [`Ca::cross_certificate`]).
    cross: ArcSwap<Option<CertificateDer<'static>>>,
}

/// A started service: its address and a handle to stop it.
pub struct RunningServer {
    /// Bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The service state (rotation controls, metrics).
    pub service: Arc<CaService>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting and waits for the background tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let service = Arc::clone(&self.service);
        let _ = tokio::task::spawn_blocking(move || {
            service.audit.flush();
            if let Err(e) = service.workloads.close() {
                tracing::error!(error = %e, "saving the live workloads failed");
            }
        })
        .await;
    }
}

/// Opens the CA and starts serving.
pub async fn start(cfg: ServeConfig) -> Result<RunningServer> {
    let protection = cfg.key_protection()?;
    let dir = cfg.ca_dir.clone();
    let leaf_bound = Duration::from_secs(cfg.issuance.max_ttl_secs);
    let ca = blocking(move || Ca::open_with_leaf_bound(&dir, protection, leaf_bound)).await?;
    let trust_domain = ca.trust_domain()?;
    let bundle = BundleHandle::new(trust_domain.clone(), ca.trust_bundle())?;
    let metrics = Arc::new(Metrics::new().map_err(|e| PkiError::BadRequest(e.to_string()))?);
    let audit_path = cfg.audit_path();
    let audit = AuditSink::spawn(blocking(move || AuditLog::open(&audit_path)).await?)?;
    let tokens = TokenStore::open(&cfg.ca_dir)?;
    let ca_dir = cfg.ca_dir.clone();
    let workloads =
        blocking(move || crate::workloads::Workloads::open(&ca_dir, leaf_bound)).await?;
    let revocations = crate::revocation::Watch::new(&cfg.ca_dir)?;
    let k8s = match &cfg.attestation.kubernetes {
        Some(k) => Some(
            crate::attest::KubernetesAttestor::start(k, trust_domain.clone(), Arc::clone(&metrics))
                .await?,
        ),
        None => None,
    };
    let issuer = ca.issuer();
    let issuer_serial = issuer.serial().to_string();
    let bundle_pem = ca.trust_bundle_pem();
    let root_expiry = roots_of(&ca);
    let limiter = RateLimiter::new(cfg.rate_limit.per_minute, cfg.rate_limit.burst);
    let cross = ca.cross_certificate().cloned();
    let (tls, renew_at) = server_tls(
        &cfg,
        &trust_domain,
        &issuer,
        cross.as_ref(),
        &bundle,
        &audit,
        &metrics,
    )?;
    let service = Arc::new(CaService {
        trust_domain,
        ca: Mutex::new(ca),
        issuer: ArcSwap::new(issuer),
        bundle_pem: ArcSwap::from_pointee(bundle_pem),
        root_expiry: ArcSwap::from_pointee(root_expiry),
        bundle,
        tokens,
        revocations,
        k8s,
        audit,
        limiter,
        metrics,
        tls: ArcSwap::new(tls),
        server_cert_renew_at: AtomicI64::new(renew_at),
        server_cert_issuer: ArcSwap::from_pointee(issuer_serial),
        workloads,
        cross: ArcSwap::from_pointee(cross),
        cfg,
    });
    service.refresh_expiry_metrics();
    // The full chain check runs beside the service, never in front of it.
    service.audit.background_check()?;
    let listener = TcpListener::bind(service.cfg.listen)
        .await
        .map_err(|e| PkiError::io(format!("listen {}", service.cfg.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| PkiError::io("listener", e))?;
    let admin_listener = admin::bind(&service.cfg.ca_dir).await?;
    let (shutdown, rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(accept_loop(Arc::clone(&service), listener, rx.clone())),
        tokio::spawn(admin::serve(
            Arc::clone(&service),
            admin_listener,
            rx.clone(),
        )),
        tokio::spawn(rotation_loop(Arc::clone(&service), rx)),
    ];
    tracing::info!(%addr, trust_domain = %service.trust_domain, "rampart-pki serving");
    Ok(RunningServer {
        addr,
        service,
        shutdown,
        tasks,
    })
}

fn roots_of(ca: &Ca) -> Vec<(String, OffsetDateTime)> {
    ca.roots()
        .iter()
        .map(|r| (r.serial.clone(), r.not_after))
        .collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        PkiError::Crypto(if e.is_panic() {
            "worker panicked"
        } else {
            "worker cancelled"
        })
    })?
}

/// Issues the service's own SVID and builds its TLS config (client
/// certificates optional: bootstrap has none; renew requires one).
fn server_tls(
    cfg: &ServeConfig,
    td: &TrustDomain,
    issuer: &Issuer,
    cross: Option<&CertificateDer<'static>>,
    bundle: &BundleHandle,
    audit: &AuditSink,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<ServerConfig>, i64)> {
    let id = service_id(td)?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let ttl = Duration::from_secs(cfg.issuance.server_cert_ttl_secs);
    let issued = issuer.issue_service_svid(&id, &cfg.service_names(), &key, ttl)?;
    let now = OffsetDateTime::now_utc();
    let renew_at = now.unix_timestamp() + (issued.not_after - now).whole_seconds() / 2;
    let mut chain = issued.chain;
    chain.extend(cross.cloned());
    let identity = Identity::new(chain, key.serialize_der())?;
    let (audit, metrics) = (audit.clone(), Arc::clone(metrics));
    let hook: RejectHook = Arc::new(move |cert, err| {
        let reason = match err {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
            | rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext {
                ..
            }) => "certificate_expired",
            _ => "client_certificate_rejected",
        };
        let id = crate::inspect::check_svid(cert).map(|i| i.to_string()).ok();
        metrics.refused.with_label_values(&[reason]).inc();
        audit.record(
            "refused",
            json!({"kind": "renew", "reason": reason, "spiffe_id": id, "message": err.to_string()}),
        );
    });
    let verifier = SpiffeClientVerifier::new(bundle.clone(), PeerPolicy::AnyInTrustDomain)
        .optional()
        .with_reject_hook(hook);
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    // TLS 1.3, and TLS 1.2 for standard tools (curl, openssl s_client); the
    // intermediate profile's suites, TLS_AES_128_GCM_SHA256 preferred: its
    // SHA-256 transcript and key schedule run on the CPU's SHA extensions,
    // where SHA-384 (AES_256_GCM_SHA384, ring's first) has none (~4 % of a
    // renewal's CPU time in perf).
    let profile = rampart_tls::Profile::Intermediate;
    let mut provider = (*profile.provider()).clone();
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(profile.versions())
        .map_err(rampart_tls::TlsError::from)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.chain.clone(), key_der)
        .map_err(rampart_tls::TlsError::from)?;
    config.ignore_client_order = true;
    // A renewal authenticated by a resumed session would skip the verifier
    // (a revoked or superseded leaf would renew); one request per
    // connection gains nothing from resuming anyway.
    rampart_tls::config::full_handshakes_only(&mut config);
    Ok((Arc::new(config), renew_at))
}

async fn accept_loop(
    service: Arc<CaService>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = &service.cfg.limits;
    let conns = conns::ConnTable::new(limits.max_connections, limits.max_connections_per_ip);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // Over a cap: close at once (the client retries). One address can
        // hold at most max_connections_per_ip, so it cannot starve others.
        let slot = match conns.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(reason) => {
                service.metrics.connection_closed(reason);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = Arc::clone(&service);
        let expected = service.audit.expect();
        tokio::spawn(async move {
            let _slot = slot;
            handlers::connection(service, tcp, peer, expected).await;
        });
    }
}

async fn rotation_loop(service: Arc<CaService>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(service.cfg.rotation.check_interval_ms);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let policy = service.cfg.rotation_policy();
        let me = Arc::clone(&service);
        let step = service.with_ca(move |ca| {
            let mut events = ca.tick(&policy)?;
            events.extend(me.retire_root_left_by_workloads(ca)?);
            Ok(events)
        });
        if let Err(e) = step.await {
            service.metrics.rotation_failures.inc();
            tracing::error!(error = %e, "rotation failed; will retry");
        }
        let due = OffsetDateTime::now_utc().unix_timestamp()
            >= service.server_cert_renew_at.load(Ordering::Relaxed);
        if due {
            if let Err(e) = service.reissue_server_cert() {
                tracing::error!(error = %e, "renewing the service certificate failed");
            }
        }
        service.refresh_expiry_metrics();
    }
}

impl CaService {
    /// Runs a CA operation under the CA lock (on a blocking thread), then
    /// publishes the resulting issuer and bundle and audits the events.
    async fn with_ca<T>(self: &Arc<Self>, op: T) -> Result<Vec<RotationEvent>>
    where
        T: FnOnce(&mut Ca) -> Result<Vec<RotationEvent>> + Send + 'static,
    {
        let me = Arc::clone(self);
        let events = blocking(move || {
            let mut ca = me.ca.lock().unwrap_or_else(|p| p.into_inner());
            let events = op(&mut ca)?;
            if !events.is_empty() {
                me.bundle.update(ca.trust_bundle())?;
                me.bundle_pem.store(Arc::new(ca.trust_bundle_pem()));
                me.issuer.store(ca.issuer());
                me.root_expiry.store(Arc::new(roots_of(&ca)));
                me.cross.store(Arc::new(ca.cross_certificate().cloned()));
            }
            Ok(events)
        })
        .await?;
        for ev in &events {
            tracing::info!(event = ?ev, "CA rotation");
            let label = match ev {
                RotationEvent::IntermediateRotated { .. } => "intermediate_rotated",
                RotationEvent::RootIntroduced { .. } => "root_introduced",
                RotationEvent::RootActivated { .. } => "root_activated",
                RotationEvent::RootRetired { .. } => "root_retired",
            };
            self.metrics.rotations.with_label_values(&[label]).inc();
            self.audit
                .record("rotation", json!({"detail": format!("{ev:?}")}));
        }
        // Any change of issuer (intermediate rotation, root activation)
        // moves the service's own certificate to the new chain at once.
        let retired = events
            .iter()
            .any(|e| matches!(e, RotationEvent::RootRetired { .. }));
        if retired || *self.server_cert_issuer.load_full() != self.issuer.load().serial() {
            self.reissue_server_cert()?;
        }
        Ok(events)
    }

    /// Rotates the intermediate now (operators and tests).
    pub async fn rotate_intermediate(self: &Arc<Self>) -> Result<Vec<RotationEvent>> {
        self.with_ca(|ca| ca.rotate_intermediate().map(|e| vec![e]))
            .await
    }

    /// Emergency root rotation (see [`Ca::emergency_root_rotation`]); the
    /// old root leaves the bundle once no live workload holds a leaf under
    /// it (checked now and at every rotation check).
    pub async fn emergency_root_rotation(
        self: &Arc<Self>,
        break_workloads: bool,
    ) -> Result<Vec<RotationEvent>> {
        let me = Arc::clone(self);
        self.with_ca(move |ca| {
            let mut events = ca.emergency_root_rotation(break_workloads)?;
            events.extend(me.retire_root_left_by_workloads(ca)?);
            Ok(events)
        })
        .await
    }

    /// Live workloads whose newest leaf chains to a root other than the
    /// active one (those an old root still waits for), and the total.
    pub fn workloads_on_old_root(&self) -> (usize, usize) {
        let active = self.issuer.load().root_serial().to_string();
        let (total, per_root) = self.workloads.count();
        let old = per_root
            .iter()
            .filter(|(root, _)| **root != active)
            .map(|(_, n)| n)
            .sum();
        (old, total)
    }

    /// Updates the workload gauges; retires the old root of an emergency
    /// rotation once no live workload holds a leaf under it (the registry
    /// must be complete: see [`crate::workloads`]).
    fn retire_root_left_by_workloads(&self, ca: &mut Ca) -> Result<Vec<RotationEvent>> {
        if let Err(e) = self.workloads.sync() {
            // Counting goes on from memory; the next check saves again.
            tracing::error!(error = %e, "saving the live workloads failed");
        }
        let (total, per_root) = self.workloads.count();
        self.metrics.live_workloads.reset();
        for (root, n) in &per_root {
            self.metrics
                .live_workloads
                .with_label_values(&[root])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let old_root = match ca.root_rotation() {
            Some(crate::ca::RootRotation::Draining { old_root, .. }) => Some(old_root.clone()),
            _ => None,
        };
        let left = old_root
            .as_deref()
            .map_or(0, |r| per_root.get(r).copied().unwrap_or(0));
        self.metrics
            .workloads_on_old_root
            .set(i64::try_from(left).unwrap_or(i64::MAX));
        if left == 0 && self.workloads.complete() && ca.emergency_draining_root().is_some() {
            tracing::info!(
                live_workloads = total,
                "every live workload holds a leaf under the new root: the old root leaves the bundle"
            );
            return ca.retire_emergency_root();
        }
        Ok(Vec::new())
    }

    /// Starts a root rotation now; issuance switches after `propagation`.
    pub async fn begin_root_rotation(
        self: &Arc<Self>,
        propagation: Duration,
    ) -> Result<Vec<RotationEvent>> {
        self.with_ca(move |ca| ca.begin_root_rotation(propagation).map(|e| vec![e]))
            .await
    }

    /// The revocation deny-list as published (re-read if the file changed).
    pub async fn revoked_now(self: &Arc<Self>) -> crate::revocation::Published {
        let me = Arc::clone(self);
        match blocking(move || me.revocations.current()).await {
            Ok(list) => list.published(),
            Err(e) => {
                tracing::error!(error = %e, "revocation list unreadable; publishing the last one read");
                self.revocations.cached().published()
            }
        }
    }

    /// The chain handed out with a leaf of the active issuer: the leaf's
    /// own chain, then the cross-certificate during an emergency drain.
    pub(crate) fn chain_pem(&self, chain: &[CertificateDer<'static>]) -> String {
        let cross = self.cross.load();
        chain
            .iter()
            .chain(cross.as_ref().as_ref())
            .map(|c| crate::keystore::pem_encode("CERTIFICATE", c))
            .collect()
    }

    /// The current trust bundle (PEM).
    pub fn bundle_pem(&self) -> Arc<String> {
        self.bundle_pem.load_full()
    }

    /// The trust domain served.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// Prometheus text.
    pub fn metrics_text(&self) -> String {
        self.refresh_expiry_metrics();
        self.metrics.set_audit(self.audit.health());
        let revoked = self.revocations.cached();
        self.metrics
            .revoked
            .with_label_values(&["id"])
            .set(revoked.ids.len() as i64);
        self.metrics
            .revoked
            .with_label_values(&["serial"])
            .set(revoked.serials.len() as i64);
        self.metrics.render()
    }

    /// Count of certificates issued so far, all kinds.
    pub fn issued_total(&self) -> u64 {
        ["bootstrap", "renew"]
            .iter()
            .map(|k| self.metrics.issued.with_label_values(&[k]).get())
            .sum()
    }

    fn reissue_server_cert(&self) -> Result<()> {
        let issuer = self.issuer.load_full();
        self.server_cert_issuer
            .store(Arc::new(issuer.serial().to_string()));
        let (tls, renew_at) = server_tls(
            &self.cfg,
            &self.trust_domain,
            &issuer,
            self.cross.load().as_ref().as_ref(),
            &self.bundle,
            &self.audit,
            &self.metrics,
        )?;
        self.tls.store(tls);
        self.server_cert_renew_at.store(renew_at, Ordering::Relaxed);
        Ok(())
    }

    fn refresh_expiry_metrics(&self) {
        let issuer = self.issuer.load();
        let roots = self.root_expiry.load();
        let mut cas: Vec<(&str, &str, OffsetDateTime)> = roots
            .iter()
            .map(|(serial, na)| ("root", serial.as_str(), *na))
            .collect();
        cas.push(("intermediate", issuer.serial(), issuer.not_after()));
        self.metrics.set_ca_expiry(&cas);
    }
}
