//! PEM in and out: certificate chains and private keys from memory or files (errors name the
//! file), PEM encoding, and atomic file writes (keys 0600).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Result, TlsError};

/// Parses every certificate of a PEM bundle or chain (at least one).
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::BadCertificate("no CERTIFICATE in PEM".into()));
    }
    Ok(certs)
}

/// Reads a PEM certificate chain (leaf first) or bundle, checking each certificate parses.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = fs::read(path).map_err(|e| TlsError::file(path, format!("cannot read: {e}")))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| TlsError::file(path, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::file(path, "no CERTIFICATE block found"));
    }
    for c in &certs {
        x509_parser::parse_x509_certificate(c.as_ref())
            .map_err(|e| TlsError::file(path, format!("bad X.509 certificate: {e}")))?;
    }
    Ok(certs)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let bytes = fs::read(path).map_err(|e| TlsError::file(path, format!("cannot read: {e}")))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| TlsError::file(path, format!("no usable private key: {e}")))
}

/// A chain and key as rustls signs with them, checking the key matches the leaf.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
) -> std::result::Result<CertifiedKey, rustls::Error> {
    let signer = crate::provider::provider()
        .key_provider
        .load_private_key(key.clone_key())?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match()?;
    Ok(ck)
}

/// Reads a certificate + key pair, checking the key matches the leaf.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey> {
    let chain = load_certs(cert)?;
    let der = load_private_key(key)?;
    certified_key(chain, &der).map_err(|e| {
        TlsError::file(
            key,
            format!(
                "unusable, or does not match certificate {}: {e}",
                cert.display()
            ),
        )
    })
}

/// PEM-encodes `der` under `label` (64-character lines, LF).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes `contents` atomically (temporary file, fsync, rename) with mode 0600: private keys.
pub fn write_file_0600(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(|e| TlsError::io(&tmp, e))?;
    f.write_all(contents).map_err(|e| TlsError::io(&tmp, e))?;
    f.sync_all().map_err(|e| TlsError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| TlsError::io(path, e))
}

/// Writes `contents` atomically (temporary file, rename): certificates and public state.
pub fn write_file_public(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    fs::write(&tmp, contents).map_err(|e| TlsError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| TlsError::io(path, e))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}
