//! The policy file as written by operators: serde types, `deny_unknown_fields` everywhere.
//! These are turned into the matcher's types once, in `compile`.
//!
//! ```toml
//! [[inbound]]                       # an inbound rule set
//! name = "payments-api"
//! mode = "enforce"                  # or "audit": would-be denials are logged, traffic passes
//! ports = [8080]                    # the app ports this set governs
//!
//! [[inbound.rule]]
//! name = "frontend-reads"
//! callers = ["spiffe://mesh.local/ns/shop/sa/frontend"]
//! methods = ["GET"]                 # HTTP ports only; optional
//! paths = ["/v1/payments/*"]        # optional
//! sources = ["10.0.0.0/8"]          # optional, only narrows an identity rule (S.N.10)
//!
//! [[outbound]]
//! name = "payments-deps"
//!
//! [[outbound.rule]]
//! name = "to-ledger"
//! services = ["ledger"]             # names from the mesh directory
//! ports = [9000]
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::pattern::{IdPattern, Method, PathPattern, SourceNet};

/// Whether a rule set decides (`enforce`) or only reports what it would decide (`audit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Denials are enforced.
    #[default]
    Enforce,
    /// Dry run: would-be denials are logged and counted, the traffic passes.
    Audit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    #[serde(default)]
    pub inbound: Vec<Spanned<RawInboundSet>>,
    #[serde(default)]
    pub outbound: Vec<Spanned<RawOutboundSet>>,
    /// This service's egress (rampart-egress's one policy type; see `policy::egress`).
    #[serde(default)]
    pub egress: Option<Spanned<rampart_egress::EgressPolicy>>,
    /// The egress gateway's rules: each calling service's egress, by directory name.
    #[serde(default)]
    pub gateway: std::collections::BTreeMap<String, Spanned<rampart_egress::EgressPolicy>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInboundSet {
    pub name: Spanned<String>,
    #[serde(default)]
    pub mode: Mode,
    pub ports: Spanned<Vec<u16>>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Spanned<RawInboundRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInboundRule {
    pub name: Spanned<String>,
    #[serde(default)]
    pub callers: Option<Spanned<Vec<IdPattern>>>,
    #[serde(default)]
    pub ports: Option<Spanned<Vec<u16>>>,
    #[serde(default)]
    pub methods: Option<Spanned<Vec<Method>>>,
    #[serde(default)]
    pub paths: Option<Spanned<Vec<PathPattern>>>,
    #[serde(default)]
    pub sources: Option<Spanned<Vec<SourceNet>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutboundSet {
    pub name: Spanned<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Spanned<RawOutboundRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutboundRule {
    pub name: Spanned<String>,
    #[serde(default)]
    pub services: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub identities: Option<Spanned<Vec<IdPattern>>>,
    #[serde(default)]
    pub ports: Option<Spanned<Vec<u16>>>,
}
