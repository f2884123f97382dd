//! The sidecar's mutual-TLS material: TLS 1.3 only, our SVID presented, peers verified by
//! SPIFFE rules against the trust bundle. Server side accepts clients *without* a certificate
//! at the TLS layer so the policy layer can refuse them with a reason (Linkerd does the same);
//! a certificate that is sent is fully verified (chain, one URI SAN, our trust domain).
//!
//! This module is the one seam to the shared TLS code, `rampart-tls` (the `mesh` profile, the
//! SPIFFE verifiers over the hot-swappable bundle, the X.509-SVID rules).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_tls::config::{mesh_client_config, mesh_server_config};
use rampart_tls::spiffe::{SpiffeId, TrustDomain};
use rampart_tls::svid as inspect;
use rampart_tls::Rejection;
use rampart_tls::{BundleHandle, Identity, MeshOptions, PeerPolicy};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

/// Why TLS material could not be loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    /// A file could not be read or parsed.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The certificate is not a usable SVID of our trust domain.
    #[error("{0}")]
    Svid(String),
    /// The certificate, key or configs could not be loaded or built (names the file).
    #[error("{0}")]
    Tls(#[from] rampart_tls::TlsError),
}

/// Our identity and the configs built from it, one generation.
#[derive(Clone)]
pub struct TlsMaterial {
    /// Our SPIFFE ID.
    pub id: SpiffeId,
    /// When our certificate expires.
    pub not_after: OffsetDateTime,
    /// For inbound connections.
    pub server: Arc<ServerConfig>,
    /// For outbound connections.
    pub client: Arc<ClientConfig>,
    /// The trust bundle (roots and revocations) the configs verify peers against.
    pub bundle: BundleHandle,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("id", &self.id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// True when the bundle's deny-list revokes `id` (open connections of that peer are cut
    /// on the reload that revokes it).
    pub fn is_revoked(&self, id: &SpiffeId) -> bool {
        self.bundle.revocations().is_id_revoked(id)
    }

    /// Seconds until our certificate expires (negative once expired).
    pub fn seconds_to_expiry(&self) -> f64 {
        (self.not_after - OffsetDateTime::now_utc()).as_seconds_f64()
    }
}

fn file_err(path: &Path, why: impl std::fmt::Display) -> MtlsError {
    MtlsError::File {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Reads a PEM certificate list.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, MtlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect();
    let certs = certs.map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The trust bundle of `trust_domain` from a PEM file of roots.
pub fn read_bundle(path: &Path, trust_domain: &TrustDomain) -> Result<BundleHandle, MtlsError> {
    BundleHandle::new(trust_domain.clone(), read_certs(path)?).map_err(|e| file_err(path, e))
}

/// Builds the configs from a certificate chain and PKCS#8 key file, checking the key belongs
/// to the leaf and the leaf is an SVID of the trust domain.
pub fn from_files(
    cert: &Path,
    key: &Path,
    bundle: &BundleHandle,
) -> Result<TlsMaterial, MtlsError> {
    build(&Identity::load(cert, key)?, bundle)
}

/// Builds the configs for one SVID with `rampart-tls`'s mesh builders: TLS 1.3, peers of our
/// trust domain verified against `bundle`, a client without a certificate let through the
/// handshake (the policy refuses it with a reason).
pub fn build(identity: &Identity, bundle: &BundleHandle) -> Result<TlsMaterial, MtlsError> {
    identity
        .spiffe_id
        .require_member_of(bundle.trust_domain())
        .map_err(|e| MtlsError::Svid(e.to_string()))?;
    let mut options = MeshOptions::new(PeerPolicy::AnyInTrustDomain);
    options.client_cert_optional = true;
    Ok(TlsMaterial {
        id: identity.spiffe_id.clone(),
        not_after: identity.not_after,
        server: mesh_server_config(identity, bundle, &options)?,
        client: mesh_client_config(identity, bundle, &options)?,
        bundle: bundle.clone(),
    })
}

/// Why an mTLS connection to a peer sidecar (or the gateway) was not made.
pub enum PeerFailure {
    /// The handshake failed: its reason label and text (see [`classify_handshake_error`]).
    Handshake(&'static str, String),
    /// The handshake did not finish within the deadline.
    Timeout,
    /// The peer proved another identity than the directory expects (`None`: none at all).
    Unexpected(Option<SpiffeId>),
}

/// Originates mTLS over `tcp` with `config` and refuses a peer that does not prove `expected`.
pub async fn connect_peer(
    config: Arc<ClientConfig>,
    tcp: tokio::net::TcpStream,
    name: rustls_pki_types::ServerName<'static>,
    expected: &SpiffeId,
    deadline: std::time::Duration,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, PeerFailure> {
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = match tokio::time::timeout(deadline, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let (label, text) = classify_handshake_error(&e);
            return Err(PeerFailure::Handshake(label, text));
        }
        Err(_) => return Err(PeerFailure::Timeout),
    };
    let presented = peer_id(tls.get_ref().1);
    if presented.as_ref() == Some(expected) {
        Ok(tls)
    } else {
        Err(PeerFailure::Unexpected(presented))
    }
}

/// The peer's SPIFFE ID on an established connection (the verifier already checked it).
pub fn peer_id(conn: &rustls::CommonState) -> Option<SpiffeId> {
    let leaf = conn.peer_certificates()?.first()?;
    inspect::check_svid(leaf).ok()
}

/// Why a handshake failed, as a stable metric label and words for the log.
pub fn classify_handshake_error(e: &io::Error) -> (&'static str, String) {
    let text = e.to_string();
    match e.kind() {
        io::ErrorKind::TimedOut => return ("timeout", text),
        io::ErrorKind::ConnectionAborted if text == crate::runtime::limits::EVICTED => {
            return ("evicted_stalled", text)
        }
        _ => {}
    }
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => ("eof", "peer closed during the handshake".into()),
            io::ErrorKind::InvalidData => ("not_tls", format!("not a TLS handshake: {text}")),
            _ => ("io", text),
        };
    };
    let label = match tls {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            let rejection = Rejection::classify(tls);
            return (rejection.reason(), rejection.to_string());
        }
        rustls::Error::InvalidMessage(_) => "not_tls",
        rustls::Error::PeerIncompatible(_) => "incompatible",
        rustls::Error::AlertReceived(_) => "alert_received",
        _ => "tls",
    };
    (label, text)
}
