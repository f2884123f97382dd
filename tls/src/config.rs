//! rustls configs for a workload's identity: mTLS server and client configs whose peers are
//! checked by the SPIFFE verifiers against a hot-swappable bundle.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use crate::bundle::BundleHandle;
use crate::error::Result;
use crate::identity::Identity;
use crate::provider::Profile;
use crate::verifier::{PeerPolicy, SpiffeClientVerifier, SpiffeServerVerifier};

/// Mesh server config (TLS 1.3) presenting `identity`, requiring SVID client certificates
/// that `policy` admits.
pub fn server_config(
    identity: &Identity,
    bundle: &BundleHandle,
    policy: PeerPolicy,
) -> Result<Arc<ServerConfig>> {
    let verifier = SpiffeClientVerifier::new(bundle.clone(), policy);
    let cfg = Profile::Mesh
        .server_builder()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.chain.clone(), identity.key())?;
    Ok(Arc::new(cfg))
}

/// Mesh client config (TLS 1.3) presenting `identity` (if any), verifying the server's SVID
/// against `bundle` and `policy` (by SPIFFE ID, not by DNS name).
pub fn client_config(
    identity: Option<&Identity>,
    bundle: &BundleHandle,
    policy: PeerPolicy,
) -> Result<Arc<ClientConfig>> {
    client_config_with(
        identity,
        Arc::new(SpiffeServerVerifier::new(bundle.clone(), policy)),
    )
}

/// Mesh client config (TLS 1.3) presenting `identity` (if any), verifying the server with
/// `verifier` (e.g. a [`SpiffeServerVerifier`] that also checks host SANs).
pub fn client_config_with(
    identity: Option<&Identity>,
    verifier: Arc<SpiffeServerVerifier>,
) -> Result<Arc<ClientConfig>> {
    let builder = Profile::Mesh
        .client_builder()?
        .dangerous() // custom verifier: SPIFFE ID instead of DNS name
        .with_custom_certificate_verifier(verifier);
    let cfg = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain.clone(), id.key())?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}
