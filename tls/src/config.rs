//! rustls configs for a workload's identity: mesh server and client configs (TLS 1.3) whose
//! peers are checked by the SPIFFE verifiers against a hot-swappable bundle.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use crate::bundle::BundleHandle;
use crate::error::Result;
use crate::identity::Identity;
use crate::provider::Profile;
use crate::verifier::{PeerPolicy, RejectHook, SpiffeClientVerifier, SpiffeServerVerifier};

/// How the mesh configs of a workload are built.
#[derive(Clone, derive_more::Debug)]
pub struct MeshOptions {
    /// Which peers are admitted at the TLS layer (an authorization layer may narrow it).
    pub policy: PeerPolicy,
    /// Called on every refused peer certificate, on either side.
    #[debug("{}", on_reject.is_some())]
    pub on_reject: Option<RejectHook>,
    /// ALPN protocols offered, most preferred first (none by default).
    pub alpn: Vec<Vec<u8>>,
    /// Server side: let a client without a certificate finish the handshake (anonymous), so an
    /// authorization layer can refuse it with a reason; a certificate that is sent is still
    /// fully verified. Off by default: the handshake itself refuses such a client.
    pub client_cert_optional: bool,
}

impl MeshOptions {
    /// Peers admitted by `policy`, no hook, no ALPN.
    pub fn new(policy: PeerPolicy) -> Self {
        MeshOptions {
            policy,
            on_reject: None,
            alpn: Vec::new(),
            client_cert_optional: false,
        }
    }
}

/// Builds the mesh server config (TLS 1.3, client SVIDs required) for `identity`.
pub fn mesh_server_config(
    identity: &Identity,
    bundle: &BundleHandle,
    options: &MeshOptions,
) -> Result<Arc<ServerConfig>> {
    let mut verifier = SpiffeClientVerifier::new(bundle.clone(), options.policy.clone());
    if options.client_cert_optional {
        verifier = verifier.optional();
    }
    if let Some(hook) = &options.on_reject {
        verifier = verifier.with_reject_hook(Arc::clone(hook));
    }
    let mut cfg = Profile::Mesh
        .server_builder()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.chain.clone(), identity.key())?;
    cfg.alpn_protocols = options.alpn.clone();
    // Our order of suites (AES-128-GCM first), whatever the client prefers.
    cfg.ignore_client_order = true;
    full_handshakes_only(&mut cfg);
    Ok(Arc::new(cfg))
}

/// Turns session resumption off on a server that verifies client certificates (the mesh
/// server, the CA's listener): a resumed session skips the verifiers, so a caller revoked,
/// expired or of a removed root after its first connection would get in on it. No TLS 1.3
/// tickets are sent (rustls sends two per handshake and keeps them in a locked cache) and no
/// TLS 1.2 session is stored: every connection is a full handshake.
pub fn full_handshakes_only(cfg: &mut ServerConfig) {
    cfg.send_tls13_tickets = 0;
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
}

/// Builds the mesh client config (TLS 1.3, presenting `identity`, server SVIDs verified).
pub fn mesh_client_config(
    identity: &Identity,
    bundle: &BundleHandle,
    options: &MeshOptions,
) -> Result<Arc<ClientConfig>> {
    let mut verifier = SpiffeServerVerifier::new(bundle.clone(), options.policy.clone());
    if let Some(hook) = &options.on_reject {
        verifier = verifier.with_reject_hook(Arc::clone(hook));
    }
    let mut cfg = client_config_with(Some(identity), Arc::new(verifier))?;
    if !options.alpn.is_empty() {
        Arc::make_mut(&mut cfg).alpn_protocols = options.alpn.clone();
    }
    Ok(cfg)
}

/// Mesh server config (TLS 1.3) presenting `identity`, requiring SVID client certificates
/// that `policy` admits.
pub fn server_config(
    identity: &Identity,
    bundle: &BundleHandle,
    policy: PeerPolicy,
) -> Result<Arc<ServerConfig>> {
    mesh_server_config(identity, bundle, &MeshOptions::new(policy))
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
    let mut cfg = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain.clone(), id.key())?,
        None => builder.with_no_client_auth(),
    };
    // Every connection verifies the server's SVID anew (see `mesh_server_config`).
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}
