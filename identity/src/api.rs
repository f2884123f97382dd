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
    /// The trust domain's revocation deny-list, replaced with the bundle (absent: the CA does
    /// not publish one, the workload keeps its current list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<RevokedList>,
}

/// `GET /v1/bundle`
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleResponse {
    pub trust_domain: String,
    pub bundle_pem: String,
    /// The trust domain's revocation deny-list (as in [`IssueResponse::revoked`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<RevokedList>,
}

/// Revoked SPIFFE IDs and certificate serials (lower-case hex of the serial's content
/// octets, colons allowed), always the full list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedList {
    #[serde(default)]
    pub spiffe_ids: Vec<String>,
    #[serde(default)]
    pub serials: Vec<String>,
}

impl RevokedList {
    /// The wire form of a deny-list.
    pub fn from_list(list: &rampart_tls::RevocationList) -> Self {
        RevokedList {
            spiffe_ids: list.ids().map(|i| i.to_string()).collect(),
            serials: list.serials().map(str::to_string).collect(),
        }
    }

    /// Parses the deny-list; one malformed entry refuses the whole list.
    pub fn to_list(&self) -> rampart_tls::Result<rampart_tls::RevocationList> {
        rampart_tls::RevocationList::from_strings(&self.spiffe_ids, &self.serials)
    }
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
