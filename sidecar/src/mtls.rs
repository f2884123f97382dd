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

use rampart_identity::SvidSource;

use crate::config::IdentityConfig;
use rampart_tls::spiffe::{SpiffeId, TrustDomain};
use rampart_tls::svid as inspect;
use rampart_tls::{
    BundleHandle, Identity, LatestAcceptor, LatestConnector, MeshConfigs, MeshOptions, PeerPolicy,
    Prepared, Rejection, RevocationList,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

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
    /// The deny-list file is not valid TOML of its shape (names file, line and field).
    #[error("{0}")]
    DenyList(#[from] crate::source::FileError),
}

/// Our SVID's TLS configs, published through `rampart-tls`'s [`MeshConfigs`]: every new
/// handshake (inbound accept, outbound connect, the gateway) takes the newest config from
/// [`MeshTls::acceptor`] / [`MeshTls::connector`]; connections already open keep theirs. The
/// trust bundle and deny-list are shared by every config, so their updates reach all at once.
#[derive(derive_more::Debug)]
pub struct MeshTls {
    #[debug(skip)]
    source: Source,
    acceptor: LatestAcceptor,
    connector: LatestConnector,
}

/// Who publishes new configs: our reload (identity from files) or the CA's renewal loop.
enum Source {
    Files(MeshConfigs),
    Ca(Arc<SvidSource>),
}

/// How the sidecar's mesh configs are built: TLS 1.3, peers of our trust domain verified
/// against the bundle, a client without a certificate let through the handshake (the policy
/// refuses it with a reason).
pub fn mesh_options() -> MeshOptions {
    let mut options = MeshOptions::new(PeerPolicy::AnyInTrustDomain);
    options.client_cert_optional = true;
    options
}

impl MeshTls {
    /// Configs published by the CA's renewal loop (its settings must ask for
    /// [`mesh_options`]).
    pub fn from_source(source: Arc<SvidSource>) -> Self {
        Self::new(Source::Ca(source))
    }

    /// Configs for the SVID files of `identity = { cert, key, bundle, revoked }`, re-published
    /// by [`MeshTls::stage_files`] on each reload.
    pub fn from_files(files: &SvidFiles, trust_domain: &TrustDomain) -> Result<Self, MtlsError> {
        let read = files.read(trust_domain)?;
        let bundle = BundleHandle::new(trust_domain.clone(), read.roots)
            .map_err(|e| file_err(files.bundle, e))?;
        bundle.set_revocations(read.revoked);
        let mesh = MeshConfigs::new(&read.identity, bundle, mesh_options())?;
        Ok(Self::new(Source::Files(mesh)))
    }

    fn new(source: Source) -> Self {
        let mesh = match &source {
            Source::Files(mesh) => mesh,
            Source::Ca(svid) => svid.mesh(),
        };
        MeshTls {
            acceptor: mesh.acceptor(),
            connector: mesh.connector(),
            source,
        }
    }

    /// The CA's source, when the identity comes from the CA.
    pub fn source(&self) -> Option<&Arc<SvidSource>> {
        match &self.source {
            Source::Ca(svid) => Some(svid),
            Source::Files(_) => None,
        }
    }

    fn mesh(&self) -> &MeshConfigs {
        match &self.source {
            Source::Files(mesh) => mesh,
            Source::Ca(svid) => svid.mesh(),
        }
    }

    /// Reads the SVID files again (identity from files; `None` when the CA publishes), checked
    /// and built but not yet in effect: [`Staged::publish`] puts it in effect.
    pub fn stage_files(&self, files: &SvidFiles) -> Option<Result<Staged<'_>, MtlsError>> {
        let Source::Files(mesh) = &self.source else {
            return None;
        };
        let staged = || {
            let read = files.read(mesh.bundle().trust_domain())?;
            let prepared = mesh.prepare(&read.identity)?;
            Ok(Staged {
                mesh,
                prepared,
                roots: read.roots,
                revoked: read.revoked,
            })
        };
        Some(staged())
    }

    /// Takes the newest server config for each handshake.
    pub fn acceptor(&self) -> &LatestAcceptor {
        &self.acceptor
    }

    /// Takes the newest client config for each handshake.
    pub fn connector(&self) -> &LatestConnector {
        &self.connector
    }

    /// Our SPIFFE ID (the newest published certificate's).
    pub fn id(&self) -> SpiffeId {
        self.mesh().identity().spiffe_id.clone()
    }

    /// True when the bundle's deny-list revokes `id` (open connections of that peer are cut
    /// on the reload that revokes it).
    pub fn is_revoked(&self, id: &SpiffeId) -> bool {
        self.mesh().bundle().revocations().is_id_revoked(id)
    }

    /// Seconds until our newest certificate expires (negative once expired).
    pub fn seconds_to_expiry(&self) -> f64 {
        self.mesh().identity().seconds_to_expiry()
    }

    /// Our certificate has expired and no renewed one is published (fail closed).
    pub fn expired(&self) -> bool {
        self.seconds_to_expiry() <= 0.0
    }
}

/// The SVID files of `identity = { cert, key, bundle, revoked }`.
#[derive(Debug, Clone, Copy)]
pub struct SvidFiles<'a> {
    /// PEM chain, leaf first.
    pub cert: &'a Path,
    /// PEM PKCS#8 key.
    pub key: &'a Path,
    /// PEM roots of the trust domain.
    pub bundle: &'a Path,
    /// The deny-list file, if any.
    pub revoked: Option<&'a Path>,
}

/// What a read of the SVID files found, checked.
struct Read {
    identity: Identity,
    roots: Vec<CertificateDer<'static>>,
    revoked: RevocationList,
}

impl<'a> SvidFiles<'a> {
    /// The files of `identity = { cert, … }`; `None` when the identity comes from the CA.
    pub fn of(identity: &'a IdentityConfig) -> Option<Self> {
        let IdentityConfig::Files {
            cert,
            key,
            bundle,
            revoked,
        } = identity
        else {
            return None;
        };
        Some(SvidFiles {
            cert,
            key,
            bundle,
            revoked: revoked.as_deref(),
        })
    }

    /// Reads and checks every file: the key belongs to the leaf, the leaf is an SVID of
    /// `trust_domain`, the roots make a bundle, the deny-list parses.
    fn read(&self, trust_domain: &TrustDomain) -> Result<Read, MtlsError> {
        let roots = read_certs(self.bundle)?;
        BundleHandle::new(trust_domain.clone(), roots.clone())
            .map_err(|e| file_err(self.bundle, e))?;
        let revoked = match self.revoked {
            Some(path) => read_revocations(path)?,
            None => RevocationList::new(),
        };
        let identity = Identity::load(self.cert, self.key)?;
        identity
            .spiffe_id
            .require_member_of(trust_domain)
            .map_err(|e| MtlsError::Svid(e.to_string()))?;
        Ok(Read {
            identity,
            roots,
            revoked,
        })
    }
}

/// SVID files read and checked, configs built, not yet in effect.
pub struct Staged<'a> {
    mesh: &'a MeshConfigs,
    prepared: Prepared,
    roots: Vec<CertificateDer<'static>>,
    revoked: RevocationList,
}

impl Staged<'_> {
    /// Puts the bundle, the deny-list and the SVID in effect for new handshakes (open
    /// connections keep theirs). Call it once everything else of the reload is checked.
    pub fn publish(self) -> Result<(), MtlsError> {
        self.mesh.bundle().replace(self.roots, self.revoked)?;
        self.mesh.publish_prepared(self.prepared);
        Ok(())
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevocations {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    serials: Vec<String>,
}

/// Reads a revocation file (`ids = ["spiffe://…"]`, `serials = ["0a:1b…"]`).
pub fn read_revocations(path: &Path) -> Result<RevocationList, MtlsError> {
    let raw: RawRevocations = crate::source::SourceFile::read(path)?.parse()?;
    RevocationList::from_strings(&raw.ids, &raw.serials).map_err(|e| file_err(path, e))
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

/// Why an mTLS connection to a peer sidecar (or the gateway) was not made.
pub enum PeerFailure {
    /// The handshake failed: its reason label and text (see [`classify_handshake_error`]).
    Handshake(&'static str, String),
    /// The handshake did not finish within the deadline.
    Timeout,
    /// The peer proved another identity than the directory expects (`None`: none at all).
    Unexpected(Option<SpiffeId>),
}

/// Originates mTLS over `tcp` with the newest client config and refuses a peer that does not
/// prove `expected`.
pub async fn connect_peer(
    connector: &LatestConnector,
    tcp: tokio::net::TcpStream,
    name: rustls_pki_types::ServerName<'static>,
    expected: &SpiffeId,
    deadline: std::time::Duration,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, PeerFailure> {
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

/// What the handshake error says when a stalled handshake was evicted (by the inbound
/// connection caps, to make room for a new caller from the same address).
pub const EVICTED: &str =
    "evicted: stalled in its handshake while its address was at the per-address cap";

/// Why a handshake failed, as a stable metric label and words for the log.
pub fn classify_handshake_error(e: &io::Error) -> (&'static str, String) {
    let text = e.to_string();
    match e.kind() {
        io::ErrorKind::TimedOut => return ("timeout", text),
        io::ErrorKind::ConnectionAborted if text == EVICTED => return ("evicted_stalled", text),
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
