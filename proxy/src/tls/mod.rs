//! Downstream TLS (S.N.1): the process crypto provider, per-listener SNI certificate sets that
//! reload atomically, and per-listener protocol profiles.
//!
//! Pingora's rustls listener builds its `ServerConfig` with TLS 1.2 and 1.3 for every listener,
//! so versions cannot be set per listener there. The profile is enforced in our certificate
//! resolver instead: on a `modern` listener a ClientHello that offers no TLS 1.3 cipher suite
//! (i.e. a client that cannot do TLS 1.3) gets no certificate and the handshake fails. A client
//! that offers TLS 1.3 suites always negotiates TLS 1.3 with rustls, so a completed TLS 1.2
//! handshake on a `modern` listener can only come from a client lying in its hello; the request
//! filter refuses those connections as a backstop.

mod accept;
mod certs;

pub use accept::{HandshakeCallbacks, TlsInfo};
pub use certs::{load_cert_set, load_certified_key, load_certs_only, CertSet, TlsFileError};

use crate::config::TlsProfile;
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// Installs the process-wide ring provider limited to ECDHE key exchange and AEAD suites. Must
/// run before Pingora builds any TLS config (it installs ring's full default otherwise).
pub fn install_crypto_provider() {
    let base = rustls::crypto::ring::default_provider();
    let cipher_suites = base
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| {
            let name = format!("{:?}", s.suite());
            // TLS 1.3 suites are all AEAD with (EC)DHE; TLS 1.2 ones must be ECDHE + GCM/ChaCha.
            name.starts_with("TLS13_")
                || (name.starts_with("TLS_ECDHE_")
                    && (name.contains("_GCM_") || name.contains("CHACHA20_POLY1305")))
        })
        .collect();
    let provider = CryptoProvider {
        cipher_suites,
        ..base
    };
    // Err only means a provider was already installed (tests, or a second call).
    let _ = provider.install_default();
}

/// The live TLS state of one listener: its profile and certificates, swapped on reload.
#[derive(Debug)]
pub struct ListenerTlsState {
    pub listener: String,
    profile: ArcSwap<TlsProfile>,
    certs: ArcSwap<CertSet>,
    metrics: Arc<Metrics>,
}

impl ListenerTlsState {
    pub fn new(
        listener: String,
        profile: TlsProfile,
        certs: CertSet,
        metrics: Arc<Metrics>,
    ) -> Self {
        ListenerTlsState {
            listener,
            profile: ArcSwap::from_pointee(profile),
            certs: ArcSwap::from_pointee(certs),
            metrics,
        }
    }

    pub fn profile(&self) -> TlsProfile {
        **self.profile.load()
    }

    /// Atomically switches to a new certificate set and profile; handshakes in progress keep
    /// the key they already picked.
    pub fn swap(&self, profile: TlsProfile, certs: CertSet) {
        self.profile.store(Arc::new(profile));
        self.certs.store(Arc::new(certs));
    }

    pub fn certs(&self) -> Arc<CertSet> {
        self.certs.load_full()
    }
}

impl ResolvesServerCert for ListenerTlsState {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if self.profile() == TlsProfile::Modern && !offers_tls13(&hello) {
            self.metrics
                .tls_refused
                .with_label_values(&[&self.listener, "no_tls13"])
                .inc();
            return None;
        }
        let sni = hello.server_name().map(|s| s.to_ascii_lowercase());
        Some(self.certs.load().select(sni.as_deref()))
    }
}

/// A client that can do TLS 1.3 must offer at least one TLS 1.3 suite (RFC 8446 §4.1.2).
fn offers_tls13(hello: &ClientHello<'_>) -> bool {
    use rustls::CipherSuite as C;
    hello.cipher_suites().iter().any(|s| {
        matches!(
            s,
            C::TLS13_AES_128_GCM_SHA256
                | C::TLS13_AES_256_GCM_SHA384
                | C::TLS13_CHACHA20_POLY1305_SHA256
                | C::TLS13_AES_128_CCM_SHA256
                | C::TLS13_AES_128_CCM_8_SHA256
        )
    })
}
