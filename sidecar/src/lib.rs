//! rampart-sidecar: the mTLS mesh sidecar. One per workload, between the app and the network:
//! inbound it requires mutual TLS and admits callers per SPIFFE identity, deny by default;
//! outbound it originates mutual TLS to the peer's sidecar and checks who answers.
//!
//! Map of the crate:
//! - [`config`]: the sidecar's own config file (its `[egress]`/`[gateway]` sections in
//!   [`config::egress`]).
//! - [`directory`]: the mesh directory (services, addresses, expected identities).
//! - [`policy`]: the policy file and the engine that decides and explains.
//! - [`mtls`]: TLS 1.3 mutual-TLS configs from our SVID, peer identities, handshake reasons.
//! - [`pki_process`]: the Rampart CA (`rampart-pki`) as a child process, for the demo and tests.
//! - [`redirect`]: the iptables rules of `init-redirect` (transparent mode).
//! - [`runtime`]: the data plane (inbound, outbound, reload, logs, metrics, admin), and
//!   [`runtime::egress`]: connections to destinations outside the mesh (rampart-egress),
//!   decided by the policy's `[egress]` section, directly or through the egress gateway.
//! - [`source`]: TOML files with file:line:field errors and a version hash.
#![forbid(unsafe_code)]

pub mod config;
pub mod directory;
pub mod mtls;
pub mod pki_process;
pub mod policy;
pub mod redirect;
pub mod runtime;
pub mod source;

/// The TOML fixtures the integration tests use too (one payments workload, section builders).
#[cfg(test)]
#[path = "../tests/support/fixtures.rs"]
mod fixtures;
