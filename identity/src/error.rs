//! Errors of the workload side: each with a stable reason label for metrics and a message
//! that says what to fix.

use rampart_tls::TlsError;

/// Why obtaining or renewing a certificate failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A certificate, key, bundle or TLS config was refused locally.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The CA service answered with an error (`status` 0: it refused the TLS handshake).
    #[error("CA refused ({status} {reason}): {message}")]
    CaRefused {
        status: u16,
        reason: String,
        message: String,
    },
    /// The CA service could not be reached, could not be authenticated, or answered garbage.
    #[error("CA unavailable: {0}")]
    CaUnavailable(String),
    /// Our certificate has expired (or the CA says so): renewal is impossible.
    #[error("certificate is not valid now: {0}")]
    CertificateNotValidNow(String),
    /// The CA issued a certificate for another identity than ours.
    #[error("CA issued {requested} but this workload is {entitled}")]
    CsrIdentityMismatch { requested: String, entitled: String },
    /// The CA endpoint is not a valid `https://HOST:PORT` URL.
    #[error("bad CA endpoint {endpoint:?}: {why}")]
    BadEndpoint { endpoint: String, why: &'static str },
    /// Nothing to start from: no stored certificate and no join token.
    #[error("{0}")]
    NoCredential(String),
    /// Key or CSR generation failed.
    #[error("key or CSR generation failed: {0}")]
    Csr(#[from] rcgen::Error),
}

impl IdentityError {
    /// Short stable reason label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            IdentityError::Tls(_) => "tls",
            IdentityError::CaRefused { .. } => "ca_refused",
            IdentityError::CaUnavailable(_) => "ca_unavailable",
            IdentityError::CertificateNotValidNow(_) => "certificate_expired",
            IdentityError::CsrIdentityMismatch { .. } => "csr_identity_mismatch",
            IdentityError::BadEndpoint { .. } => "bad_endpoint",
            IdentityError::NoCredential(_) => "no_credential",
            IdentityError::Csr(_) => "internal",
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = IdentityError> = std::result::Result<T, E>;
