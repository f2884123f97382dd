//! Request and response bodies of the CA service (JSON), shared by the
//! server and the client library.

use serde::{Deserialize, Serialize};

/// `POST /v1/bootstrap`
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapRequest {
    /// The one-time join token.
    pub token: String,
    /// PEM CSR with exactly the token's SPIFFE ID as URI SAN.
    pub csr: String,
    /// Requested lifetime (capped by the service).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// `POST /v1/renew` (over mTLS with the current certificate)
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// PEM CSR for the same SPIFFE ID as the client certificate.
    pub csr: String,
    /// Requested lifetime (capped by the service).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// Answer to bootstrap and renew.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueResponse {
    pub spiffe_id: String,
    /// Leaf then intermediate, PEM.
    pub chain_pem: String,
    /// Every trusted root, PEM.
    pub bundle_pem: String,
    /// Leaf expiry, unix seconds.
    pub not_after: i64,
    /// The revocation deny-list published with the bundle.
    #[serde(default)]
    pub revoked: Revoked,
}

/// `GET /v1/bundle`
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleResponse {
    pub trust_domain: String,
    pub bundle_pem: String,
    /// The revocation deny-list: verifiers refuse certificates whose
    /// SPIFFE ID or serial is listed.
    #[serde(default)]
    pub revoked: Revoked,
}

/// The CA's revocation deny-list, published with the trust bundle
/// (`GET /v1/bundle` and every issue response): verifiers refuse a
/// certificate whose SPIFFE ID or serial (lower-case hex of the serial's
/// bytes) is listed. Absent in answers of older CAs (empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// Revoked SPIFFE IDs.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Revoked certificate serials.
    #[serde(default)]
    pub serials: Vec<String>,
}

/// Any refusal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorResponse {
    /// Stable reason label.
    pub error: String,
    /// What to fix.
    pub message: String,
}

/// The SPIFFE ID the CA service presents: `spiffe://DOMAIN/rampart/pki`.
pub fn ca_service_id(td: &rampart_tls::TrustDomain) -> rampart_tls::Result<rampart_tls::SpiffeId> {
    rampart_tls::SpiffeId::parse(&format!("{}rampart/pki", td.id_prefix()))
}
