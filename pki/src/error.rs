//! Every way the CA can refuse or fail, each with a stable machine-readable
//! reason (used as the `reason` label of the refusal metric and in the audit
//! log) and a message that tells an operator what to fix.

use std::path::PathBuf;

/// Errors returned by the `rampart-pki` library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The requested lifetime is over the CA's cap (90 days at most).
    #[error("requested lifetime {requested_secs}s is over the cap of {max_secs}s")]
    LifetimeOverCap { requested_secs: u64, max_secs: u64 },
    /// A zero lifetime was requested.
    #[error("requested lifetime must be at least one second")]
    LifetimeZero,
    /// A DNS name outside the configured DNS suffixes was requested.
    #[error("DNS name {name:?} is not under any configured DNS suffix ({suffixes})")]
    DnsNameNotPermitted { name: String, suffixes: String },
    /// The CSR could not be parsed or its signature is wrong.
    #[error("bad CSR: {0}")]
    BadCsr(String),
    /// The CSR asks for something a workload certificate may not have.
    #[error("CSR refused: {0}")]
    CsrRefused(String),
    /// The key of a CA certificate is not the one the certificate certifies.
    #[error("key/certificate mismatch: {0}")]
    KeyMismatch(String),
    /// The identity is reserved (the CA's own, the bare trust domain, or
    /// listed in `[issuance] reserved_ids`).
    #[error("{id} is reserved ({why}) and is never issued")]
    ReservedIdentity { id: String, why: &'static str },
    /// A workload attestation (service-account token) did not verify.
    #[error("attestation refused: {0}")]
    AttestationRefused(String),
    /// The identity or certificate is on the revocation deny-list.
    #[error("revoked: {0}")]
    Revoked(String),
    /// The CSR's key algorithm is not one the CA certifies.
    #[error("unsupported key algorithm {0}: use ECDSA P-256, ECDSA P-384 or Ed25519")]
    UnsupportedKeyAlgorithm(String),
    /// The CSR names another identity than the one the caller is entitled to.
    #[error("CSR is for {requested} but the caller may only obtain {entitled}")]
    CsrIdentityMismatch { requested: String, entitled: String },
    /// A certificate is expired (or not yet valid).
    #[error("certificate is not valid now: {0}")]
    CertificateNotValidNow(String),
    /// The join token is unknown, malformed, or its identity differs.
    #[error("join token refused: unknown or malformed token")]
    TokenUnknown,
    /// The join token was already used.
    #[error("join token refused: already used (tokens are one-time)")]
    TokenReused,
    /// The join token is past its expiry.
    #[error("join token refused: expired")]
    TokenExpired,
    /// The caller is over its issuance rate.
    #[error("rate limited: too many certificates for {id}; retry in {retry_after_secs}s")]
    RateLimited { id: String, retry_after_secs: u64 },
    /// The key-encryption key does not decrypt a stored private key.
    #[error(
        "cannot decrypt {path}: wrong key-encryption key or passphrase, or the file was altered"
    )]
    BadKeyPassphrase { path: PathBuf },
    /// No key-encryption key was given and unencrypted keys were not asked for.
    #[error("{0}")]
    KekMissing(String),
    /// The key-encryption key has the wrong form.
    #[error("bad key-encryption key from {source_name}: {why}")]
    BadKek {
        source_name: String,
        why: &'static str,
    },
    /// A private key file is stored unencrypted and the insecure flag is off.
    #[error(
        "{path} holds an unencrypted private key; pass --insecure-unencrypted-keys to accept it"
    )]
    UnencryptedKeyRefused { path: PathBuf },
    /// The CA directory already holds a CA.
    #[error("{0} already holds a CA; refusing to overwrite it")]
    AlreadyInitialized(PathBuf),
    /// The CA directory is missing or incomplete.
    #[error("CA directory {path}: {why}")]
    BadCaDir { path: PathBuf, why: String },
    /// A configuration file is invalid.
    #[error("{path}:{line}: {message}")]
    Config {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The audit log is broken.
    #[error("audit log {path} line {line}: {why}")]
    AuditTampered {
        path: PathBuf,
        line: usize,
        why: String,
    },
    /// I/O error with the file it happened on.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Certificate generation failed inside rcgen.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A SPIFFE ID, certificate, key, bundle or TLS configuration refused
    /// by `rampart-tls` (the shared checks; its message is kept as is).
    #[error(transparent)]
    Tls(#[from] rampart_tls::TlsError),
    /// The CA service (or its admin socket) could not be reached, refused,
    /// or answered garbage: the workload side's error, kept as is.
    #[error(transparent)]
    Identity(#[from] rampart_identity::IdentityError),
    /// A request to the CA service was malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The caller's identity may not make this request.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// A crypto primitive failed (random source, AEAD).
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
}

impl PkiError {
    /// Short stable reason label for metrics and audit records.
    pub fn reason(&self) -> &'static str {
        match self {
            PkiError::LifetimeOverCap { .. } => "lifetime_over_cap",
            PkiError::LifetimeZero => "lifetime_zero",
            PkiError::DnsNameNotPermitted { .. } => "dns_name_not_permitted",
            PkiError::BadCsr(_) => "bad_csr",
            PkiError::CsrRefused(_) => "csr_refused",
            PkiError::CsrIdentityMismatch { .. } => "csr_identity_mismatch",
            PkiError::KeyMismatch(_) => "key_mismatch",
            PkiError::Revoked(_) => "revoked",
            PkiError::AttestationRefused(_) => "attestation_refused",
            PkiError::ReservedIdentity { .. } => "reserved_identity",
            PkiError::UnsupportedKeyAlgorithm(_) => "unsupported_key_algorithm",
            PkiError::CertificateNotValidNow(_) => "certificate_expired",
            PkiError::TokenUnknown => "token_unknown",
            PkiError::TokenReused => "token_reused",
            PkiError::TokenExpired => "token_expired",
            PkiError::RateLimited { .. } => "rate_limited",
            PkiError::BadKeyPassphrase { .. } => "bad_key_passphrase",
            PkiError::KekMissing(_) | PkiError::BadKek { .. } => "bad_kek",
            PkiError::UnencryptedKeyRefused { .. } => "unencrypted_key_refused",
            PkiError::AlreadyInitialized(_) | PkiError::BadCaDir { .. } => "bad_ca_dir",
            PkiError::Config { .. } => "config",
            PkiError::AuditTampered { .. } => "audit_tampered",
            PkiError::Io { .. } => "io",
            PkiError::Rcgen(_) => "internal",
            PkiError::Tls(e) => tls_reason(e),
            PkiError::Identity(e) => e.reason(),
            PkiError::Crypto(_) => "crypto",
            PkiError::BadRequest(_) => "bad_request",
            PkiError::NotAuthorized(_) => "not_authorized",
        }
    }

    /// HTTP status the CA service answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            PkiError::RateLimited { .. } => 429,
            PkiError::TokenUnknown
            | PkiError::TokenReused
            | PkiError::TokenExpired
            | PkiError::AttestationRefused(_)
            | PkiError::CertificateNotValidNow(_) => 401,
            PkiError::CsrIdentityMismatch { .. }
            | PkiError::Tls(rampart_tls::TlsError::ForeignTrustDomain { .. })
            | PkiError::ReservedIdentity { .. }
            | PkiError::Revoked(_)
            | PkiError::NotAuthorized(_) => 403,
            PkiError::Io { .. }
            | PkiError::Tls(rampart_tls::TlsError::Io { .. })
            | PkiError::Rcgen(_)
            | PkiError::Crypto(_) => 500,
            _ => 400,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PkiError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The stable reason label of a `rampart-tls` refusal.
fn tls_reason(e: &rampart_tls::TlsError) -> &'static str {
    use rampart_tls::TlsError as T;
    match e {
        T::InvalidSpiffeId { .. } => "invalid_spiffe_id",
        T::InvalidTrustDomain { .. } => "invalid_trust_domain",
        T::ForeignTrustDomain { .. } => "foreign_trust_domain",
        T::NotSvid(_) => "not_svid",
        T::BadCertificate(_) => "bad_certificate",
        T::Io { .. } | T::File { .. } => "io",
        _ => "tls",
    }
}

/// Result alias for this crate.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;
