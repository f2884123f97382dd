//! Downstream TLS (S.N.1): the process crypto provider, per-listener rustls `ServerConfig`s
//! with their own protocol versions, SNI certificate sets that reload atomically.
//!
//! Pingora's rustls listener builds one `ServerConfig` with TLS 1.2 and 1.3 for every listener
//! and cannot take a prebuilt one, so per-listener profiles are impossible through it. The edge
//! therefore terminates TLS itself: Pingora accepts plain TCP, and our app wrapper
//! (`edge_app`) runs the rustls handshake with the listener's own `ServerConfig` before handing
//! the decrypted stream to Pingora's HTTP layer. A `modern` listener's config only has TLS 1.3,
//! so a TLS 1.2 ClientHello fails in the handshake, as a scanner expects.

mod certs;
mod terminate;

pub use certs::{load_cert_set, load_certified_key, load_certs_only, CertSet, TlsFileError};
pub use terminate::{accept, TlsConn, TlsInfo};

use crate::config::TlsProfile;
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::sync::Arc;

/// Installs the process-wide ring provider limited to ECDHE key exchange and AEAD suites. Must
/// run before Pingora builds any TLS config (it installs ring's full default otherwise).
pub fn install_crypto_provider() {
    // Err only means a provider was already installed (tests, or a second call).
    let _ = edge_provider().install_default();
}

/// ring with only ECDHE key exchange and AEAD suites.
pub fn edge_provider() -> CryptoProvider {
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
    CryptoProvider {
        cipher_suites,
        ..base
    }
}

/// The live TLS state of one listener: its rustls config (profile, ALPN) and certificates,
/// swapped on reload. Handshakes in progress keep what they started with.
#[derive(Debug)]
pub struct ListenerTlsState {
    pub listener: String,
    config: ArcSwap<ServerConfig>,
    certs: Arc<CertResolver>,
    http2: bool,
    pub metrics: Arc<Metrics>,
}

/// SNI selection over the current certificate set.
#[derive(Debug)]
struct CertResolver {
    certs: ArcSwap<CertSet>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(|s| s.to_ascii_lowercase());
        Some(self.certs.load().select(sni.as_deref()))
    }
}

fn server_config(
    profile: TlsProfile,
    http2: bool,
    resolver: Arc<CertResolver>,
) -> Result<ServerConfig, String> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match profile {
        TlsProfile::Modern => &[&rustls::version::TLS13],
        TlsProfile::Intermediate => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(edge_provider()))
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS config: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(cfg)
}

/// A validated certificate set + config, ready to be committed.
pub struct PreparedTls {
    config: ServerConfig,
    certs: CertSet,
}

impl ListenerTlsState {
    pub fn new(
        listener: String,
        profile: TlsProfile,
        http2: bool,
        certs: CertSet,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let resolver = Arc::new(CertResolver {
            certs: ArcSwap::from_pointee(certs),
        });
        let config = server_config(profile, http2, resolver.clone())?;
        Ok(ListenerTlsState {
            listener,
            config: ArcSwap::from_pointee(config),
            certs: resolver,
            http2,
            metrics,
        })
    }

    /// Builds what a reload would switch to, without switching (this is where it can fail).
    pub fn prepare(&self, profile: TlsProfile, certs: CertSet) -> Result<PreparedTls, String> {
        let config = server_config(profile, self.http2, self.certs.clone())?;
        Ok(PreparedTls { config, certs })
    }

    /// Switches to a prepared certificate set and profile; cannot fail.
    pub fn commit(&self, p: PreparedTls) {
        self.certs.certs.store(Arc::new(p.certs));
        self.config.store(Arc::new(p.config));
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }
}
