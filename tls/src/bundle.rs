//! The trust bundle shared by every verifier of a workload. Updating it
//! swaps one `Arc` (arc-swap): handshakes in progress keep the state they
//! started with, new ones see the new roots. No TLS config is rebuilt.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

use crate::error::{Result, TlsError};
use crate::provider::provider;
use crate::spiffe::TrustDomain;

pub(crate) struct BundleState {
    pub roots: Arc<RootCertStore>,
    pub ders: Vec<CertificateDer<'static>>,
    pub client_chain: Arc<dyn ClientCertVerifier>,
}

/// A hot-swappable trust bundle for one trust domain.
#[derive(Clone)]
pub struct BundleHandle {
    trust_domain: TrustDomain,
    state: Arc<ArcSwap<BundleState>>,
}

impl std::fmt::Debug for BundleHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BundleHandle({}, {} roots)",
            self.trust_domain,
            self.state.load().ders.len()
        )
    }
}

impl BundleHandle {
    /// A bundle of `roots` for `trust_domain`.
    pub fn new(trust_domain: TrustDomain, roots: Vec<CertificateDer<'static>>) -> Result<Self> {
        let state = build(roots)?;
        Ok(BundleHandle {
            trust_domain,
            state: Arc::new(ArcSwap::from_pointee(state)),
        })
    }

    /// Replaces the roots; returns true if they changed.
    pub fn update(&self, roots: Vec<CertificateDer<'static>>) -> Result<bool> {
        if self.state.load().ders == roots {
            return Ok(false);
        }
        self.state.store(Arc::new(build(roots)?));
        Ok(true)
    }

    /// The current roots.
    pub fn roots(&self) -> Vec<CertificateDer<'static>> {
        self.state.load().ders.clone()
    }

    /// The trust domain peers must belong to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<BundleState>> {
        self.state.load()
    }
}

fn build(ders: Vec<CertificateDer<'static>>) -> Result<BundleState> {
    if ders.is_empty() {
        return Err(TlsError::Bundle("no roots".into()));
    }
    let mut store = RootCertStore::empty();
    for der in &ders {
        store
            .add(der.clone())
            .map_err(|e| TlsError::Bundle(format!("bad root: {e}")))?;
    }
    let roots = Arc::new(store);
    let client_chain = WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider())
        .build()
        .map_err(|e| TlsError::Bundle(e.to_string()))?;
    Ok(BundleState {
        roots,
        ders,
        client_chain,
    })
}
