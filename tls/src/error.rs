//! Errors of this crate. Each says what to fix; those about a file name it.

use std::path::PathBuf;

/// Why a certificate, key, identity, bundle or TLS config was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A SPIFFE ID did not follow the SPIFFE ID rules.
    #[error("invalid SPIFFE ID {id:?}: {why}")]
    InvalidSpiffeId { id: String, why: &'static str },
    /// A trust domain name did not follow the SPIFFE rules.
    #[error("invalid trust domain {domain:?}: {why}")]
    InvalidTrustDomain { domain: String, why: &'static str },
    /// The SPIFFE ID belongs to another trust domain.
    #[error("SPIFFE ID {id} is outside trust domain {trust_domain}")]
    ForeignTrustDomain { id: String, trust_domain: String },
    /// A certificate did not meet the SPIFFE X.509-SVID rules.
    #[error("not a valid X.509-SVID: {0}")]
    NotSvid(String),
    /// A certificate could not be parsed.
    #[error("cannot parse certificate: {0}")]
    BadCertificate(String),
    /// A file could not be read or written, or holds nothing usable.
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// I/O error with the file it happened on.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A trust bundle without roots, or with a root rustls refuses.
    #[error("trust bundle: {0}")]
    Bundle(String),
    /// rustls refused the configuration (key type, protocol versions...).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

impl TlsError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TlsError::Io {
            path: path.into(),
            source,
        }
    }

    /// A problem with the contents of `path`.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        TlsError::File {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = TlsError> = std::result::Result<T, E>;
