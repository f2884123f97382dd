//! Downstream TLS (S.N.1): the process crypto provider, per-listener rustls `ServerConfig`s
//! with their own protocol versions, SNI certificate sets that reload atomically.
//!
//! Pingora's rustls listener builds one `ServerConfig` with TLS 1.2 and 1.3 for every listener
//! and cannot take a prebuilt one, so per-listener profiles are impossible through it. The edge
//! therefore terminates TLS itself: Pingora accepts plain TCP, and our app wrapper
//! (`edge_app`) runs the rustls handshake with the listener's own `ServerConfig` before handing
//! the decrypted stream to Pingora's HTTP layer. A `modern` listener's config only has TLS 1.3,
//! so a TLS 1.2 ClientHello fails in the handshake, as a scanner expects.

mod terminate;

pub use rampart_tls::sni::CertSet;
pub use rampart_tls::TlsError;
pub use terminate::{accept, TlsConn, TlsInfo};

use crate::config::{CertificateConfig, TlsProfile};
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use rampart_tls::sni::{CertFiles, SniResolver};
use rampart_tls::Profile;
use rustls::ServerConfig;
use std::path::Path;
use std::sync::Arc;

/// Installs the workspace's ring provider (ECDHE key exchange, AEAD suites) as the process
/// default. Must run before Pingora builds any TLS config (it installs ring's full default
/// otherwise).
pub fn install_crypto_provider() {
    // False only means a provider was already installed (tests, or a second call).
    let _ = rampart_tls::install_default_provider();
}

/// Loads all certificates of a listener; any bad file fails the whole set.
pub fn load_cert_set(certs: &[CertificateConfig]) -> Result<CertSet, TlsError> {
    CertSet::load(certs.iter().map(|c| CertFiles {
        cert: &c.cert,
        key: &c.key,
        server_names: &c.server_names,
        default: c.default,
    }))
}

/// Reads a PEM CA bundle (for upstream verification).
pub fn load_certs_only(
    path: &Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, TlsError> {
    rampart_tls::pem::load_certs(path)
}

fn profile(p: TlsProfile) -> Profile {
    match p {
        TlsProfile::Modern => Profile::Modern,
        TlsProfile::Intermediate => Profile::Intermediate,
    }
}

/// The live TLS state of one listener: its rustls config (profile, ALPN) and certificates,
/// swapped on reload. Handshakes in progress keep what they started with.
#[derive(Debug)]
pub struct ListenerTlsState {
    pub listener: String,
    config: ArcSwap<ServerConfig>,
    certs: Arc<SniResolver>,
    http2: bool,
    pub metrics: Arc<Metrics>,
}

fn server_config(
    p: TlsProfile,
    http2: bool,
    resolver: Arc<SniResolver>,
) -> Result<ServerConfig, String> {
    let mut cfg = profile(p)
        .server_builder()
        .map_err(|e| e.to_string())?
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
        let resolver = Arc::new(SniResolver::new(certs));
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
        self.certs.store(p.certs);
        self.config.store(Arc::new(p.config));
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }
}
