//! Rampart's TLS and identity foundations, shared by the edge proxy, the mesh sidecar and the
//! built-in CA.
//!
//! Map of the crate (each module depends only on those above it; no cycles):
//! - [`error`]: [`TlsError`], typed, naming the file a problem is in.
//! - [`provider`](mod@provider): the workspace's one crypto provider (ring, [`provider()`]) and the TLS
//!   [`Profile`]s (`modern` and `mesh`: TLS 1.3 only; `intermediate`: TLS 1.3 and TLS 1.2
//!   ECDHE + AEAD), suites chosen by their IANA values.
//! - [`spiffe`]: SPIFFE IDs and trust domains, parsed once.
//! - [`svid`]: the X.509-SVID leaf rules, validity, serials and SANs of certificates.
//! - [`pem`]: certificates and keys from PEM memory or files, PEM encoding, atomic writes.
//! - [`sni`]: a listener's certificate set and the SNI resolver a reload swaps.
//! - [`revocation`]: the deny-list of revoked SPIFFE IDs and certificate serials.
//! - [`bundle`]: the hot-swappable trust bundle of one trust domain (roots + deny-list).
//! - [`rejection`]: why a peer was refused, typed ([`Rejection`]), with a stable label.
//! - [`verifier`]: SPIFFE client and server certificate verifiers over the bundle.
//! - [`identity`]: a workload's SVID chain and key.
//! - [`config`]: mesh `ServerConfig` / `ClientConfig` builders for an identity.
//! - [`publish`]: those configs published on watch channels, one generation per identity
//!   ([`MeshConfigs`]), and the acceptor/connector that take the newest for each handshake.
//! - [`web`]: clients of ordinary web servers (alert webhook, JWKS URL): the URL parsed once,
//!   public web roots or a CA file, the `intermediate` profile.
//! - `test_ca` (feature `test-ca`): an in-memory CA for tests of this and other crates.
//!
//! # A workload's mTLS in a few lines
//!
//! The trust bundle is shared by every config built on it: a root or deny-list update reaches
//! new handshakes at once; a renewed identity becomes a new config generation on a watch
//! channel; a refusal carries a typed reason.
//!
//! ```
//! // `test_ca` needs the `test-ca` feature (this crate's tests and doctests have it).
//! use rampart_tls::{MeshConfigs, MeshOptions, PeerPolicy, Rejection, RevocationList, Revoked};
//! use rampart_tls::test_ca::TestCa;
//! use rustls::server::danger::ClientCertVerifier;
//!
//! let ca = TestCa::new();
//! let bundle = ca.bundle("example.org");
//! let me = ca.svid("spiffe://example.org/ns/web/sa/api");
//! let mesh = MeshConfigs::new(&me, bundle.clone(), MeshOptions::new(PeerPolicy::AnyInTrustDomain))?;
//! let acceptor = mesh.acceptor(); // TLS 1.3, client SVIDs required, newest config per handshake
//!
//! // Revoke a peer: every verifier of the bundle refuses it from the next handshake on.
//! let peer = ca.svid("spiffe://example.org/ns/web/sa/worker");
//! let mut revoked = RevocationList::new();
//! revoked.revoke_id(peer.spiffe_id.clone());
//! bundle.set_revocations(revoked);
//! let verifier = rampart_tls::SpiffeClientVerifier::new(bundle, PeerPolicy::AnyInTrustDomain);
//! let err = verifier
//!     .verify_client_cert(&peer.chain[0], &[], rustls_pki_types::UnixTime::now())
//!     .unwrap_err();
//! assert_eq!(Rejection::classify(&err), Rejection::Revoked(Revoked::SpiffeId(peer.spiffe_id)));
//! assert_eq!(Rejection::classify(&err).reason(), "revoked");
//!
//! // Renewal: a new generation for new handshakes; open connections keep theirs.
//! mesh.publish(&ca.svid("spiffe://example.org/ns/web/sa/api"))?;
//! # let _ = acceptor;
//! # Ok::<(), rampart_tls::TlsError>(())
//! ```
#![forbid(unsafe_code)]

pub mod bundle;
pub mod config;
pub mod error;
pub mod identity;
pub mod pem;
pub mod provider;
pub mod publish;
pub mod rejection;
pub mod revocation;
pub mod sni;
pub mod spiffe;
pub mod svid;
#[cfg(feature = "test-ca")]
pub mod test_ca;
pub mod verifier;
pub mod web;

pub use bundle::BundleHandle;
pub use config::{client_config, server_config, MeshOptions};
pub use error::{Result, TlsError};
pub use identity::Identity;
pub use provider::{install_default_provider, provider, Profile};
pub use publish::{Latest, LatestAcceptor, LatestConnector, MeshConfigs, Prepared};
pub use rejection::Rejection;
pub use revocation::{RevocationList, Revoked};
pub use spiffe::{SpiffeId, TrustDomain};
pub use verifier::{PeerPolicy, RejectHook, SpiffeClientVerifier, SpiffeServerVerifier};

/// The peer's SPIFFE ID on an established connection (rustls already verified it with one of
/// our verifiers).
pub fn peer_spiffe_id(conn: &rustls::CommonState) -> Option<SpiffeId> {
    let leaf = conn.peer_certificates()?.first()?;
    svid::check_svid(leaf).ok()
}
