//! `SvidSource`: the workload's current SVID and its renewal loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rand::Rng;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use rampart_tls::pem::certs_from_pem;
use rampart_tls::{
    BundleHandle, Identity, MeshConfigs, MeshOptions, PeerPolicy, SpiffeId, TrustDomain,
};

use crate::api::{IssueResponse, RevokedList};
use crate::ca_client::{CaClient, CaEndpoint};
use crate::csr::new_svid_csr;
use crate::error::{IdentityError, Result};

/// How a workload renews.
#[derive(Clone, Debug)]
pub struct SourceSettings {
    /// Where the CA service listens.
    pub ca: CaEndpoint,
    /// The workload's identity (must match its join token).
    pub spiffe_id: SpiffeId,
    /// Lifetime to ask for (`None`: the CA's default, 24 h).
    pub ttl: Option<Duration>,
    /// Renew after this fraction of the lifetime (2/3).
    pub renew_fraction: f64,
    /// ± jitter as a fraction of the lifetime, so a fleet does not renew
    /// in lockstep (0.05).
    pub jitter_fraction: f64,
    /// First retry delay while the CA is down.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// How often the trust bundle is fetched between renewals.
    pub bundle_refresh: Duration,
    /// How the published TLS configs are built: which peers they accept, the hook called on
    /// each refused peer certificate, ALPN, whether clients without a certificate get in
    /// (default: any peer of the trust domain, no hook, no ALPN, client certificate required).
    pub mesh: MeshOptions,
    /// Where the current SVID is kept (`svid.pem`, `svid.key` 0600) so a
    /// restart renews instead of needing a new join token. `None`: memory only.
    pub state_dir: Option<PathBuf>,
}

impl SourceSettings {
    /// Defaults for `spiffe_id` talking to the CA at `ca` (a `SocketAddr` or a
    /// [`CaEndpoint`]).
    pub fn new(ca: impl Into<CaEndpoint>, spiffe_id: SpiffeId) -> Self {
        SourceSettings {
            ca: ca.into(),
            spiffe_id,
            ttl: None,
            renew_fraction: 2.0 / 3.0,
            jitter_fraction: 0.05,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            bundle_refresh: Duration::from_secs(300),
            mesh: MeshOptions::new(PeerPolicy::AnyInTrustDomain),
            state_dir: None,
        }
    }
}

/// What the renewal loop reports (also for metrics: seconds to expiry).
#[derive(Debug, Clone)]
pub struct SvidStatus {
    /// Our identity.
    pub spiffe_id: SpiffeId,
    /// Expiry of the certificate being served.
    pub not_after: OffsetDateTime,
    /// Successful renewals so far.
    pub renewals: u64,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// The last failure, if the last attempt failed.
    pub last_error: Option<String>,
}

impl SvidStatus {
    /// Seconds until the served certificate expires (negative: expired).
    pub fn seconds_to_expiry(&self) -> f64 {
        (self.not_after - OffsetDateTime::now_utc()).as_seconds_f64()
    }
}

struct Current {
    identity: Arc<Identity>,
    received_at: OffsetDateTime,
}

/// The workload's SVID, kept fresh.
pub struct SvidSource {
    settings: SourceSettings,
    client: CaClient,
    bundle: BundleHandle,
    current: ArcSwap<Current>,
    mesh: MeshConfigs,
    status_tx: watch::Sender<SvidStatus>,
}

impl SvidSource {
    /// Gets a first SVID with a join token. `roots` is the trust bundle the
    /// workload was provisioned with (to authenticate the CA).
    pub async fn bootstrap(
        settings: SourceSettings,
        roots: Vec<CertificateDer<'static>>,
        token: &str,
    ) -> Result<Arc<Self>> {
        let td = TrustDomain::parse(settings.spiffe_id.trust_domain_str())?;
        let bundle = BundleHandle::new(td, roots)?;
        let client = CaClient::new(settings.ca.clone(), bundle.clone());
        let (csr, key) = new_svid_csr(&settings.spiffe_id)?;
        let resp = client.bootstrap(token, &csr, settings.ttl).await?;
        let identity = accept(&settings, &bundle, &resp, key)?;
        persist(settings.state_dir.as_deref(), &identity).await;
        Self::from_identity(settings, bundle, identity)
    }

    /// Resumes from the SVID kept in `settings.state_dir` if it is still
    /// valid and for our identity; otherwise bootstraps with `token`.
    pub async fn resume_or_bootstrap(
        settings: SourceSettings,
        roots: Vec<CertificateDer<'static>>,
        token: Option<&str>,
    ) -> Result<Arc<Self>> {
        if let Some(dir) = settings.state_dir.clone() {
            let (cert, key) = state_files(&dir);
            if cert.exists() && key.exists() {
                match Identity::load(&cert, &key) {
                    Ok(id)
                        if id.spiffe_id == settings.spiffe_id && id.seconds_to_expiry() > 0.0 =>
                    {
                        let td = TrustDomain::parse(settings.spiffe_id.trust_domain_str())?;
                        let bundle = BundleHandle::new(td, roots)?;
                        return Self::from_identity(settings, bundle, id);
                    }
                    Ok(id) => {
                        tracing::warn!(id = %id.spiffe_id, "stored SVID expired or for another identity")
                    }
                    Err(e) => tracing::warn!(error = %e, "stored SVID unreadable"),
                }
            }
        }
        let token = token.ok_or_else(|| {
            IdentityError::NoCredential(
                "no valid stored SVID and no join token: create one with `rampart-pki token create`".into(),
            )
        })?;
        Self::bootstrap(settings, roots, token).await
    }

    /// Starts from an existing identity (e.g. one kept across restarts).
    pub fn from_identity(
        settings: SourceSettings,
        bundle: BundleHandle,
        identity: Identity,
    ) -> Result<Arc<Self>> {
        let mesh = MeshConfigs::new(&identity, bundle.clone(), settings.mesh.clone())?;
        let status = SvidStatus {
            spiffe_id: identity.spiffe_id.clone(),
            not_after: identity.not_after,
            renewals: 0,
            consecutive_failures: 0,
            last_error: None,
        };
        let current = Current {
            identity: Arc::new(identity),
            received_at: OffsetDateTime::now_utc(),
        };
        Ok(Arc::new(SvidSource {
            client: CaClient::new(settings.ca.clone(), bundle.clone()),
            settings,
            bundle,
            current: ArcSwap::from_pointee(current),
            mesh,
            status_tx: watch::channel(status).0,
        }))
    }

    /// New `ServerConfig`s, one per renewal. Take `borrow().clone()` per
    /// accepted connection: open connections keep theirs.
    pub fn server_configs(&self) -> watch::Receiver<Arc<ServerConfig>> {
        self.mesh.server_configs()
    }

    /// New `ClientConfig`s, one per renewal.
    pub fn client_configs(&self) -> watch::Receiver<Arc<ClientConfig>> {
        self.mesh.client_configs()
    }

    /// The published configs, with acceptor and connector that follow them.
    pub fn mesh(&self) -> &MeshConfigs {
        &self.mesh
    }

    /// Renewal status (errors, seconds to expiry).
    pub fn status(&self) -> watch::Receiver<SvidStatus> {
        self.status_tx.subscribe()
    }

    /// The identity being served.
    pub fn identity(&self) -> Arc<Identity> {
        Arc::clone(&self.current.load().identity)
    }

    /// A client of the same CA, trusting the same bundle.
    pub fn ca_client(&self) -> CaClient {
        self.client.clone()
    }

    /// The hot-swappable trust bundle all published configs share.
    pub fn bundle(&self) -> &BundleHandle {
        &self.bundle
    }

    /// Seconds until the served certificate expires.
    pub fn seconds_to_expiry(&self) -> f64 {
        self.current.load().identity.seconds_to_expiry()
    }

    /// Renews once, now.
    pub async fn renew_now(&self) -> Result<()> {
        let (csr, key) = new_svid_csr(&self.settings.spiffe_id)?;
        let current = self.identity();
        let resp = self.client.renew(&current, &csr, self.settings.ttl).await?;
        let identity = accept(&self.settings, &self.bundle, &resp, key)?;
        persist(self.settings.state_dir.as_deref(), &identity).await;
        self.install(identity)
    }

    /// Fetches the trust bundle (and the revocation deny-list, when the CA publishes one) now;
    /// the verifiers see both at once.
    pub async fn refresh_bundle(&self) -> Result<bool> {
        let resp = self.client.bundle().await?;
        install_bundle(&self.bundle, &resp.bundle_pem, resp.revoked.as_ref())
    }

    /// Runs the renewal loop in a task (abort the handle to stop it).
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move { me.run().await })
    }

    async fn run(&self) {
        let mut next_bundle = tokio::time::Instant::now() + self.settings.bundle_refresh;
        loop {
            let renew_at = tokio::time::Instant::now() + self.until_renewal();
            tokio::time::sleep_until(renew_at.min(next_bundle)).await;
            if tokio::time::Instant::now() >= next_bundle {
                if let Err(e) = self.refresh_bundle().await {
                    tracing::warn!(error = %e, "trust bundle refresh failed");
                }
                next_bundle = tokio::time::Instant::now() + self.settings.bundle_refresh;
                if tokio::time::Instant::now() < renew_at {
                    continue;
                }
            }
            self.renew_with_backoff().await;
        }
    }

    async fn renew_with_backoff(&self) {
        let mut backoff = self.settings.backoff_initial;
        loop {
            match self.renew_now().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, seconds_to_expiry = self.seconds_to_expiry(), "SVID renewal failed; serving the current certificate");
                    self.status_tx.send_modify(|s| {
                        s.consecutive_failures += 1;
                        s.last_error = Some(e.to_string());
                    });
                    let jitter = rand::thread_rng().gen_range(0.8..1.2);
                    tokio::time::sleep(backoff.mul_f64(jitter)).await;
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                }
            }
        }
    }

    /// Time until the next renewal.
    fn until_renewal(&self) -> Duration {
        let cur = self.current.load();
        renewal_delay(
            cur.received_at,
            cur.identity.not_after,
            self.settings.renew_fraction,
            self.settings.jitter_fraction,
        )
    }

    fn install(&self, identity: Identity) -> Result<()> {
        // Both configs are built before anything changes: a failure keeps the current ones.
        self.mesh.publish(&identity)?;
        let not_after = identity.not_after;
        self.current.store(Arc::new(Current {
            identity: Arc::new(identity),
            received_at: OffsetDateTime::now_utc(),
        }));
        self.status_tx.send_modify(|s| {
            s.not_after = not_after;
            s.renewals += 1;
            s.consecutive_failures = 0;
            s.last_error = None;
        });
        Ok(())
    }
}

/// Checks an issue response is for us, updates the bundle, builds the identity.
fn accept(
    settings: &SourceSettings,
    bundle: &BundleHandle,
    resp: &IssueResponse,
    key: rcgen::KeyPair,
) -> Result<Identity> {
    let identity = Identity::new(certs_from_pem(&resp.chain_pem)?, key.serialize_der())?;
    if identity.spiffe_id != settings.spiffe_id {
        return Err(IdentityError::CsrIdentityMismatch {
            requested: identity.spiffe_id.to_string(),
            entitled: settings.spiffe_id.to_string(),
        });
    }
    // The new roots first: a leaf under a new root must verify at once.
    install_bundle(bundle, &resp.bundle_pem, resp.revoked.as_ref())?;
    Ok(identity)
}

/// Installs the roots and, when the CA sent one, the revocation deny-list in one swap. A
/// malformed answer changes nothing.
pub(crate) fn install_bundle(
    bundle: &BundleHandle,
    bundle_pem: &str,
    revoked: Option<&RevokedList>,
) -> Result<bool> {
    let roots = certs_from_pem(bundle_pem)?;
    Ok(match revoked {
        Some(list) => bundle.replace(roots, list.to_list()?)?,
        None => bundle.update(roots)?,
    })
}

/// Time until `fraction` of the life left at `received_at` has passed,
/// ± `jitter` of that life.
pub(crate) fn renewal_delay(
    received_at: OffsetDateTime,
    not_after: OffsetDateTime,
    fraction: f64,
    jitter: f64,
) -> Duration {
    let life = (not_after - received_at).as_seconds_f64().max(0.0);
    let jitter = life * jitter * rand::thread_rng().gen_range(-1.0..=1.0);
    let offset = time::Duration::checked_seconds_f64(life * fraction + jitter)
        .unwrap_or(time::Duration::ZERO);
    Duration::try_from(received_at + offset - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO)
}

fn state_files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("svid.pem"), dir.join("svid.key"))
}

/// Saves the identity off the async threads. A failure is logged, not
/// fatal: serving the new certificate matters more than keeping a copy.
async fn persist(dir: Option<&Path>, identity: &Identity) {
    let Some(dir) = dir else { return };
    let (cert, key) = state_files(dir);
    let identity = identity.clone();
    let saved = tokio::task::spawn_blocking(move || identity.save(&cert, &key)).await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not keep the SVID on disk"),
        Err(e) => tracing::warn!(error = %e, "could not keep the SVID on disk"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_tls::test_ca::TestCa;

    #[test]
    fn bundle_answers_install_roots_and_deny_list_together_or_not_at_all() {
        let (ca, other) = (TestCa::new(), TestCa::new());
        let bundle = ca.bundle("example.org");
        let both = format!("{}{}", ca.root_pem(), other.root_pem());
        let list = RevokedList {
            spiffe_ids: vec!["spiffe://example.org/ns/a/sa/gone".into()],
            serials: vec!["0a:0b".into()],
        };
        assert!(install_bundle(&bundle, &both, Some(&list)).unwrap());
        assert_eq!(bundle.roots().len(), 2);
        assert_eq!(bundle.revocations().len(), 2);
        // No list in the answer: the roots change, the current list stays.
        assert!(install_bundle(&bundle, &ca.root_pem(), None).unwrap());
        assert_eq!(bundle.roots().len(), 1);
        assert_eq!(bundle.revocations().len(), 2);
        // A malformed list refuses the whole answer: neither roots nor list change.
        let bad = RevokedList {
            spiffe_ids: vec!["not a spiffe id".into()],
            serials: vec![],
        };
        assert!(install_bundle(&bundle, &both, Some(&bad)).is_err());
        assert_eq!(bundle.roots().len(), 1);
        assert_eq!(bundle.revocations().len(), 2);
        // An empty list lifts every revocation.
        assert!(install_bundle(&bundle, &ca.root_pem(), Some(&RevokedList::default())).unwrap());
        assert!(bundle.revocations().is_empty());
    }
}
