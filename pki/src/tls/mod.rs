//! SPIFFE-aware rustls verifiers, hot-swappable when the trust bundle
//! changes, and TLS config builders for workloads.
//!
//! Both verifiers delegate chain building to rustls/webpki against the
//! current bundle, then apply the X.509-SVID rules: exactly one URI SAN,
//! a SPIFFE ID of our trust domain, not a CA. Server certificates are not
//! matched against a DNS name: in the mesh the SPIFFE ID is the name.

mod bundle;
mod config;
mod verifier;

pub use bundle::BundleHandle;
pub use config::{client_config, provider, server_config, Identity};
pub use verifier::{PeerPolicy, RejectHook, SpiffeClientVerifier, SpiffeServerVerifier};

use crate::spiffe::SpiffeId;

/// The peer's SPIFFE ID on an established connection (rustls already
/// verified it with one of our verifiers).
pub fn peer_spiffe_id(conn: &rustls::CommonState) -> Option<SpiffeId> {
    let leaf = conn.peer_certificates()?.first()?;
    crate::inspect::check_svid(leaf).ok()
}

#[cfg(test)]
mod tests;
