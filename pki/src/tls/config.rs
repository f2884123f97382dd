//! A workload's credential and the rustls configs built from it.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use super::bundle::BundleHandle;
use super::verifier::{PeerPolicy, SpiffeClientVerifier, SpiffeServerVerifier};
use crate::error::{PkiError, Result};
use crate::keystore::{self, pem_encode};
use crate::spiffe::SpiffeId;
use rustls_pki_types::pem::PemObject;

/// The ring crypto provider, built once (one provider across the workspace).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// A certificate chain (leaf first) with its private key.
pub struct Identity {
    /// The SPIFFE ID in the leaf.
    pub spiffe_id: SpiffeId,
    /// Leaf, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    /// Leaf expiry.
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("spiffe_id", &self.spiffe_id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            spiffe_id: self.spiffe_id.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            not_after: self.not_after,
        }
    }
}

impl Identity {
    /// Builds an identity, checking the leaf is an SVID.
    pub fn new(chain: Vec<CertificateDer<'static>>, pkcs8_key: Vec<u8>) -> Result<Self> {
        let leaf = chain
            .first()
            .ok_or_else(|| PkiError::BadCertificate("empty chain".into()))?;
        let spiffe_id = crate::inspect::check_svid(leaf)?;
        let not_after = crate::inspect::not_after(leaf)?;
        Ok(Identity {
            spiffe_id,
            chain,
            key: PrivatePkcs8KeyDer::from(pkcs8_key),
            not_after,
        })
    }

    /// Writes the key (PKCS#8 PEM, 0600) then the chain (PEM), each
    /// atomically, so a restarted workload renews instead of needing a new
    /// join token.
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<()> {
        keystore::write_file_0600(
            key_path,
            pem_encode("PRIVATE KEY", self.key.secret_pkcs8_der()).as_bytes(),
        )?;
        let chain: String = self
            .chain
            .iter()
            .map(|c| pem_encode("CERTIFICATE", c))
            .collect();
        keystore::write_file_public(cert_path, chain.as_bytes())
    }

    /// Reads an identity written by [`Identity::save`], checking the key
    /// belongs to the leaf.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let pem = std::fs::read_to_string(cert_path).map_err(|e| PkiError::io(cert_path, e))?;
        let chain = crate::client::certs_from_pem(&pem)?;
        let key = PrivatePkcs8KeyDer::from_pem_file(key_path)
            .map_err(|e| PkiError::BadCertificate(format!("{}: {e}", key_path.display())))?;
        let pair = rcgen::KeyPair::try_from(key.secret_pkcs8_der())?;
        let leaf_spki = crate::inspect::public_key_der(&chain[0])?;
        if rcgen::PublicKeyData::subject_public_key_info(&pair) != leaf_spki {
            return Err(PkiError::BadCertificate(format!(
                "{} does not hold the key of {}",
                key_path.display(),
                cert_path.display()
            )));
        }
        Self::new(chain, key.secret_pkcs8_der().to_vec())
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// Seconds until the leaf expires (negative once expired).
    pub fn seconds_to_expiry(&self) -> f64 {
        (self.not_after - OffsetDateTime::now_utc()).as_seconds_f64()
    }
}

fn tls_err(e: rustls::Error) -> PkiError {
    PkiError::Tls(e.to_string())
}

/// Server config presenting `identity`, requiring SVID client certs.
pub fn server_config(
    identity: &Identity,
    bundle: &BundleHandle,
    policy: PeerPolicy,
) -> Result<Arc<ServerConfig>> {
    let verifier = SpiffeClientVerifier::new(bundle.clone(), policy);
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(tls_err)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.chain.clone(), identity.key())
        .map_err(tls_err)?;
    Ok(Arc::new(cfg))
}

/// Client config presenting `identity` (if any), verifying the server's SVID.
pub fn client_config(
    identity: Option<&Identity>,
    bundle: &BundleHandle,
    policy: PeerPolicy,
) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(tls_err)?
        .dangerous() // custom verifier: SPIFFE ID instead of DNS name
        .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(
            bundle.clone(),
            policy,
        )));
    let cfg = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key())
            .map_err(tls_err)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}
