//! A workload's credential: its SVID chain and private key.

use std::path::Path;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::error::{Result, TlsError};
use crate::pem::{certified_key, certs_from_pem, pem_encode, write_file_0600, write_file_public};
use crate::spiffe::SpiffeId;
use rustls_pki_types::pem::PemObject;

/// A certificate chain (leaf first) with its private key (never printed).
#[derive(derive_more::Debug)]
pub struct Identity {
    /// The SPIFFE ID in the leaf.
    pub spiffe_id: SpiffeId,
    /// Leaf, then intermediates.
    #[debug(skip)]
    pub chain: Vec<CertificateDer<'static>>,
    #[debug(skip)]
    key: PrivatePkcs8KeyDer<'static>,
    /// Leaf expiry.
    pub not_after: OffsetDateTime,
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
            .ok_or_else(|| TlsError::BadCertificate("empty chain".into()))?;
        let spiffe_id = crate::svid::check_svid(leaf)?;
        let not_after = crate::svid::not_after(leaf)?;
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
        write_file_0600(
            key_path,
            pem_encode("PRIVATE KEY", self.key.secret_pkcs8_der()).as_bytes(),
        )?;
        let chain: String = self
            .chain
            .iter()
            .map(|c| pem_encode("CERTIFICATE", c))
            .collect();
        write_file_public(cert_path, chain.as_bytes())
    }

    /// Reads an identity written by [`Identity::save`], checking the key
    /// belongs to the leaf.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let pem = std::fs::read_to_string(cert_path).map_err(|e| TlsError::io(cert_path, e))?;
        let chain = certs_from_pem(&pem).map_err(|e| TlsError::file(cert_path, e.to_string()))?;
        let key = PrivatePkcs8KeyDer::from_pem_file(key_path)
            .map_err(|e| TlsError::file(key_path, format!("no PKCS#8 private key: {e}")))?;
        certified_key(chain.clone(), &PrivateKeyDer::Pkcs8(key.clone_key())).map_err(|e| {
            TlsError::file(
                key_path,
                format!("does not hold the key of {}: {e}", cert_path.display()),
            )
        })?;
        Self::new(chain, key.secret_pkcs8_der().to_vec())
            .map_err(|e| TlsError::file(cert_path, e.to_string()))
    }

    /// The private key, for a rustls config.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// Seconds until the leaf expires (negative once expired).
    pub fn seconds_to_expiry(&self) -> f64 {
        (self.not_after - OffsetDateTime::now_utc()).as_seconds_f64()
    }
}
