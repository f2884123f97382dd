//! The trust bundle shared by every verifier of a workload: the roots of one trust domain and
//! its revocation deny-list. Updating it swaps one `Arc` (arc-swap): handshakes in progress
//! keep the state they started with, new ones see the new roots and the new list together. No
//! TLS config is rebuilt.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

use crate::error::{Result, TlsError};
use crate::provider::provider;
use crate::revocation::RevocationList;
use crate::spiffe::TrustDomain;

/// One generation of the bundle, what a handshake verifies against.
pub(crate) struct BundleState {
    pub roots: Arc<RootCertStore>,
    pub ders: Vec<CertificateDer<'static>>,
    pub client_chain: Arc<dyn ClientCertVerifier>,
    pub revoked: Arc<RevocationList>,
}

/// A hot-swappable trust bundle for one trust domain.
#[derive(Clone)]
pub struct BundleHandle {
    trust_domain: TrustDomain,
    state: Arc<ArcSwap<BundleState>>,
}

impl std::fmt::Debug for BundleHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.load();
        write!(
            f,
            "BundleHandle({}, {} roots, {} revoked)",
            self.trust_domain,
            state.ders.len(),
            state.revoked.len()
        )
    }
}

impl BundleHandle {
    /// A bundle of `roots` for `trust_domain`, nothing revoked.
    pub fn new(trust_domain: TrustDomain, roots: Vec<CertificateDer<'static>>) -> Result<Self> {
        let state = build(roots, Arc::new(RevocationList::new()))?;
        Ok(BundleHandle {
            trust_domain,
            state: Arc::new(ArcSwap::from_pointee(state)),
        })
    }

    /// Replaces the roots, keeping the revocation list; returns true if they changed. A bad
    /// root refuses the whole update and the current bundle stays.
    pub fn update(&self, roots: Vec<CertificateDer<'static>>) -> Result<bool> {
        let current = self.state.load();
        if current.ders == roots {
            return Ok(false);
        }
        let next = build(roots, Arc::clone(&current.revoked))?;
        self.state.store(Arc::new(next));
        Ok(true)
    }

    /// Replaces the revocation list, keeping the roots; returns true if it changed.
    pub fn set_revocations(&self, revoked: RevocationList) -> bool {
        let current = self.state.load();
        if *current.revoked == revoked {
            return false;
        }
        self.state.store(Arc::new(BundleState {
            roots: Arc::clone(&current.roots),
            ders: current.ders.clone(),
            client_chain: Arc::clone(&current.client_chain),
            revoked: Arc::new(revoked),
        }));
        true
    }

    /// Replaces roots and revocation list in one step; returns true if either changed.
    pub fn replace(
        &self,
        roots: Vec<CertificateDer<'static>>,
        revoked: RevocationList,
    ) -> Result<bool> {
        let current = self.state.load();
        if current.ders == roots && *current.revoked == revoked {
            return Ok(false);
        }
        let next = build(roots, Arc::new(revoked))?;
        self.state.store(Arc::new(next));
        Ok(true)
    }

    /// The current roots.
    pub fn roots(&self) -> Vec<CertificateDer<'static>> {
        self.state.load().ders.clone()
    }

    /// The current revocation list.
    pub fn revocations(&self) -> Arc<RevocationList> {
        Arc::clone(&self.state.load().revoked)
    }

    /// The trust domain peers must belong to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<BundleState>> {
        self.state.load()
    }
}

fn build(ders: Vec<CertificateDer<'static>>, revoked: Arc<RevocationList>) -> Result<BundleState> {
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
        revoked,
    })
}
