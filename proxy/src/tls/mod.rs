//! Downstream TLS (S.N.1): the process crypto provider, per-listener rustls `ServerConfig`s
//! with their own protocol versions, SNI certificate sets that reload atomically.
//!
//! Pingora's rustls listener builds one `ServerConfig` with TLS 1.2 and 1.3 for every listener
//! and cannot take a prebuilt one, so per-listener profiles are impossible through it. The edge
//! therefore terminates TLS itself: Pingora accepts plain TCP, and our app wrapper
//! (`edge_app`) runs the rustls handshake with the listener's own `ServerConfig` before handing
//! the decrypted stream to Pingora's HTTP layer. A `modern` listener's config only has TLS 1.3,
//! so a TLS 1.2 ClientHello fails in the handshake, as a scanner expects.

pub mod client_hello_log;
mod identity;
mod terminate;

pub use identity::EdgeIdentity;
pub use rampart_tls::sni::CertSet;
pub use rampart_tls::TlsError;
pub use terminate::{accept, TlsConn, TlsInfo};

use crate::config::{CertSource, CertificateConfig, Config, ListenerConfig, TlsProfile};
use crate::error::EdgeError;
use rampart_tls::sni::{CertEntry, KeySource, SniResolver};
use rampart_tls::Profile;
use rustls::ServerConfig;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Installs the workspace's ring provider (ECDHE key exchange, AEAD suites) as the process
/// default. Must run before Pingora builds any TLS config (it installs ring's full default
/// otherwise).
pub fn install_crypto_provider() {
    // False only means a provider was already installed (tests, or a second call).
    let _ = rampart_tls::install_default_provider();
}

/// The certificates of a listener: files are read now (any bad file fails the whole set),
/// certificates from the CA are its live ones (obtained now if new). Without `identity`
/// (`rampart-proxy check`, offline) certificates from the CA are left out.
pub fn load_cert_set(
    certs: &[CertificateConfig],
    identity: Option<&EdgeIdentity>,
) -> Result<CertSet, String> {
    let mut entries = Vec::new();
    for c in certs {
        let (key, names) = match &c.source {
            CertSource::Files { cert, key } => (
                KeySource::Fixed(Arc::new(
                    rampart_tls::pem::load_certified_key(cert, key).map_err(|e| e.to_string())?,
                )),
                c.server_names.clone(),
            ),
            CertSource::Ca(ca) => {
                let Some(identity) = identity else { continue };
                let live = identity.ca_certificate(ca).map_err(|e| e.to_string())?;
                let names = match c.server_names.is_empty() {
                    true => ca.dns_names.clone(),
                    false => c.server_names.clone(),
                };
                (KeySource::Live(live), names)
            }
        };
        entries.push(CertEntry {
            key,
            server_names: names,
            default: c.default,
        });
    }
    CertSet::build(entries).map_err(|e| e.to_string())
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

/// One listener's rustls config (profile, ALPN, certificates chosen by SNI) for one generation.
/// A reload builds a new one beside it; handshakes take the config of the generation current
/// when they start.
///
/// Session resumption: stateless tickets (TLS 1.3, and TLS 1.2 clients that ask for them)
/// sealed by rustls's ring `Ticketer` (ChaCha20-Poly1305 under a random key, a new key every 6
/// hours, the previous one accepted for 6 more; keys only in memory), so every returning
/// client can resume — rustls's default is a 256-session store holding the two TLS 1.3 tickets
/// of each handshake, which forgot all but the last 128 clients (nginx, HAProxy and Envoy
/// resume tens of thousands). Each generation has its own keys: any reload (SIGHUP, whatever
/// it changed, and every certificate-file reload) builds new configs and so ends resumption of
/// the sessions made before it — every returning client then does one full handshake (as
/// nginx with its default per-reload ticket keys). TLS 1.2 clients without
/// ticket support keep the bounded 256-session id store. The edge asks no client
/// certificate, so a resumed session skips no check (the mesh, which does, resumes nothing:
/// `rampart_tls::config::full_handshakes_only`). No 0-RTT data is accepted.
fn server_config(
    l: &ListenerConfig,
    p: TlsProfile,
    certs: CertSet,
) -> Result<Arc<ServerConfig>, String> {
    let mut cfg = profile(p)
        .server_builder()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver::new(certs)));
    cfg.ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| format!("session tickets: {e}"))?;
    cfg.alpn_protocols = if l.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(cfg))
}

/// Every TLS listener's config (listener name → config); all or nothing. Without `identity`
/// (offline check) a listener whose certificates all come from the CA is left out.
pub fn build_listener_configs(
    config: &Config,
    identity: Option<&EdgeIdentity>,
) -> Result<HashMap<String, Arc<ServerConfig>>, EdgeError> {
    let mut out = HashMap::new();
    for l in &config.listeners {
        if let Some(tls) = &l.tls {
            let all_from_ca = tls
                .certificates
                .iter()
                .all(|c| matches!(c.source, CertSource::Ca(_)));
            if identity.is_none() && all_from_ca {
                continue;
            }
            let built = load_cert_set(&tls.certificates, identity)
                .and_then(|set| server_config(l, tls.profile, set));
            let cfg = built.map_err(|message| EdgeError::ListenerTls {
                listener: l.name.clone(),
                message,
            })?;
            out.insert(l.name.clone(), cfg);
        }
    }
    Ok(out)
}
