//! Loading certificates and keys from PEM files ourselves, so that a bad file is an error we
//! report (never Pingora's panic), and choosing a certificate by SNI.

use crate::config::CertificateConfig;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

fn err(path: &Path, message: impl Into<String>) -> TlsFileError {
    TlsFileError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a PEM certificate chain (leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| err(path, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(err(path, "no CERTIFICATE block found"));
    }
    for c in &certs {
        x509_parser::parse_x509_certificate(c.as_ref())
            .map_err(|e| err(path, format!("bad X.509 certificate: {e}")))?;
    }
    Ok(certs)
}

/// Reads a certificate + key pair, checking the key matches the leaf.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsFileError> {
    let chain = load_certs(cert)?;
    let key_bytes = std::fs::read(key).map_err(|e| err(key, format!("cannot read: {e}")))?;
    let der = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| err(key, format!("no usable private key: {e}")))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| err(key, format!("unsupported private key: {e}")))?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match().map_err(|e| {
        err(
            key,
            format!("does not match certificate {}: {e}", cert.display()),
        )
    })?;
    Ok(ck)
}

/// DNS names of a leaf certificate (SANs, else the CN).
fn dns_names(leaf: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.push(s.to_ascii_lowercase());
            }
        }
    }
    names
}

/// The certificates of one listener, indexed by name.
#[derive(Debug)]
pub struct CertSet {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertSet {
    pub fn select(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni else {
            return self.default.clone();
        };
        if let Some(k) = self.exact.get(name) {
            return k.clone();
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(parent) {
                return k.clone();
            }
        }
        self.default.clone()
    }
}

/// Loads all certificates of a listener; any bad file fails the whole set.
pub fn load_cert_set(certs: &[CertificateConfig]) -> Result<CertSet, TlsFileError> {
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    let mut default = None;
    for (i, c) in certs.iter().enumerate() {
        let ck = Arc::new(load_certified_key(&c.cert, &c.key)?);
        let names = if c.server_names.is_empty() {
            ck.cert.first().map(dns_names).unwrap_or_default()
        } else {
            c.server_names
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .collect()
        };
        for n in names {
            match n.strip_prefix("*.") {
                Some(parent) => wildcard
                    .entry(parent.to_string())
                    .or_insert_with(|| ck.clone()),
                None => exact.entry(n).or_insert_with(|| ck.clone()),
            };
        }
        if c.default || (i == 0 && !certs.iter().any(|c| c.default)) {
            default = Some(ck);
        }
    }
    let default = default.ok_or_else(|| err(Path::new("<listener>"), "no certificates"))?;
    Ok(CertSet {
        exact,
        wildcard,
        default,
    })
}

/// Reads a PEM CA bundle (for upstream verification).
pub fn load_certs_only(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    load_certs(path)
}
