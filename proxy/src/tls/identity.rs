//! The edge's own identity from the built-in CA: its SVID ([`SvidSource`]: bootstrapped with a
//! join token or resumed from `state_dir`, renewed at 2/3 of its life) and the listener
//! certificates it obtains with it ([`EdgeCertSource`], renewed at 2/3 of their life). Each
//! renewed listener certificate is stored into its SNI entry's [`LiveKey`]: new handshakes get
//! it, open connections keep theirs. While the CA is down the current certificates keep being
//! served and their seconds-to-expiry are exported.
//!
//! All of it runs on the identity's own small tokio runtime: it must exist before Pingora's
//! runtimes do (the first certificates are needed to start), and renewals must not wait behind
//! request traffic.

use crate::config::{CaCertificateConfig, CertSource, Config, IdentityConfig};
use crate::error::EdgeError;
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use rampart_identity::{EdgeCertSource, SourceSettings, SvidSource};
use rampart_tls::sni::LiveKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// One listener certificate from the CA, shared by every listener entry that asks for the same
/// names and lifetime.
struct CaCertificate {
    source: Arc<EdgeCertSource>,
    live: LiveKey,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for CaCertificate {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// The edge's SVID and its certificates from the CA.
pub struct EdgeIdentity {
    config: IdentityConfig,
    svid: Arc<SvidSource>,
    certificates: Mutex<HashMap<CaCertificateConfig, CaCertificate>>,
    metrics: Arc<Metrics>,
    handle: tokio::runtime::Handle,
    /// `Option` only so that `Drop` can shut it down without blocking.
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for EdgeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeIdentity")
            .field("spiffe_id", &self.config.spiffe_id)
            .finish_non_exhaustive()
    }
}

fn identity_error(e: impl std::fmt::Display) -> EdgeError {
    EdgeError::Identity(e.to_string())
}

impl EdgeIdentity {
    /// Resumes the SVID from `state_dir` or bootstraps it with the join token (blocking: at
    /// start only), then keeps it renewed.
    pub fn start(config: &IdentityConfig, metrics: Arc<Metrics>) -> Result<Arc<Self>, EdgeError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("edge-identity")
            .enable_all()
            .build()
            .map_err(|e| identity_error(format!("runtime: {e}")))?;
        let roots = rampart_tls::pem::load_certs(&config.bundle).map_err(identity_error)?;
        let token = match &config.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| identity_error(format!("token_file {}: {e}", path.display())))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let mut settings = SourceSettings::new(config.ca.0.clone(), config.spiffe_id.clone());
        settings.state_dir = config.state_dir.clone();
        settings.ttl = config.ttl_seconds.map(Duration::from_secs);
        let svid = rt
            .block_on(SvidSource::resume_or_bootstrap(
                settings,
                roots,
                token.as_deref(),
            ))
            .map_err(|e| identity_error(format!("{}: {e}", config.spiffe_id)))?;
        let handle = rt.handle().clone();
        let identity = Arc::new(EdgeIdentity {
            config: config.clone(),
            svid,
            certificates: Mutex::new(HashMap::new()),
            metrics,
            handle: handle.clone(),
            rt: Some(rt),
        });
        {
            let _enter = handle.enter();
            // Detached: they live as long as the runtime.
            drop(identity.svid.spawn());
        }
        drop(handle.spawn(export_expiry(Arc::downgrade(&identity))));
        Ok(identity)
    }

    /// The edge's SVID, renewed live.
    pub fn svid(&self) -> &Arc<SvidSource> {
        &self.svid
    }

    /// Whether `config` is the `[identity]` this was started with.
    pub fn is(&self, config: Option<&IdentityConfig>) -> bool {
        config == Some(&self.config)
    }

    /// The live certificate for a `from_ca` entry: the running one if an entry with the same
    /// names and lifetime exists, else a new one obtained from the CA now (blocking: at start
    /// and reload only, never on the request path).
    pub fn ca_certificate(&self, wanted: &CaCertificateConfig) -> Result<LiveKey, EdgeError> {
        if let Some(c) = self.lock().get(wanted) {
            return Ok(c.live.clone());
        }
        let rt = &self.handle;
        let obtain = EdgeCertSource::obtain(
            self.svid.clone(),
            wanted.dns_names.clone(),
            wanted.ttl_seconds.map(Duration::from_secs),
        );
        let source = rt.block_on(obtain).map_err(|e| {
            identity_error(format!(
                "certificate for {:?} from the CA: {e}",
                wanted.dns_names
            ))
        })?;
        let mut keys = source.certified_keys();
        let live: LiveKey = Arc::new(ArcSwap::new(keys.borrow_and_update().clone()));
        let slot = live.clone();
        let names = wanted.dns_names.join(",");
        let forward = rt.spawn(async move {
            while keys.changed().await.is_ok() {
                let key = keys.borrow_and_update().clone();
                slot.store(key);
                tracing::info!(names = %names, "listener certificate renewed by the CA");
            }
        });
        let renew = {
            let _enter = rt.enter();
            source.spawn()
        };
        let mut map = self.lock();
        let entry = map.entry(wanted.clone()).or_insert(CaCertificate {
            source,
            live,
            tasks: vec![forward, renew],
        });
        Ok(entry.live.clone())
    }

    /// Stops renewing the certificates `config` no longer uses (after a reload took effect).
    pub fn retain_used(&self, config: &Config) {
        let used: Vec<&CaCertificateConfig> = config
            .listeners
            .iter()
            .filter_map(|l| l.tls.as_ref())
            .flat_map(|t| &t.certificates)
            .filter_map(|c| match &c.source {
                CertSource::Ca(ca) => Some(ca),
                CertSource::Files { .. } => None,
            })
            .collect();
        let mut gone = Vec::new();
        self.lock().retain(|k, _| {
            let keep = used.contains(&k);
            if !keep {
                gone.push(k.dns_names.join(","));
            }
            keep
        });
        // Forget the gauges of certificates no longer served (the others keep their values).
        for names in gone {
            let _ = self
                .metrics
                .ca_certificate_expiry
                .remove_label_values(&[&names]);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CaCertificateConfig, CaCertificate>> {
        self.certificates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the expiry gauges (SVID and every CA certificate) to their current values.
    pub fn export_expiry_now(&self) {
        let m = &self.metrics;
        m.identity_expiry
            .with_label_values(&[self.config.spiffe_id.as_str()])
            .set(self.svid.seconds_to_expiry() as i64);
        for (k, c) in self.lock().iter() {
            m.ca_certificate_expiry
                .with_label_values(&[&k.dns_names.join(",")])
                .set(c.source.seconds_to_expiry() as i64);
        }
    }
}

/// Refreshes the expiry gauges every second while the identity lives.
async fn export_expiry(me: std::sync::Weak<EdgeIdentity>) {
    loop {
        match me.upgrade() {
            Some(identity) => identity.export_expiry_now(),
            None => return,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Drop for EdgeIdentity {
    fn drop(&mut self) {
        self.lock().clear();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
