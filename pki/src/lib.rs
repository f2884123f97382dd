//! Rampart's built-in CA: short-lived SPIFFE X.509-SVIDs, a renewal
//! service, automatic rotation of leaves, intermediates and roots, and the
//! client side (renewal loop and SPIFFE-aware rustls verifiers) that the
//! sidecar and the edge embed.
//!
//! Map of the crate:
//! - [`spiffe`]: SPIFFE IDs and trust domains (re-exported from `rampart-tls`).
//! - [`keystore`]: private keys encrypted at rest.
//! - [`ca`]: the CA directory, issuance profiles, rotation.
//! - [`csr`], [`inspect`]: reading requests and certificates.
//! - [`token`], [`audit`], [`ratelimit`], [`revocation`], [`metrics`], [`workloads`]: service
//!   building blocks.
//! - [`server`]: the HTTPS service (`rampart-pki serve`).
//! - [`agent`]: `rampart-pki agent`, SVID files for workloads in any language.
//! - [`tls`]: the `rampart-tls` crate (SPIFFE verifiers, trust bundle, profiles), re-exported.
//! - [`client`]: the `rampart-identity` crate (CA client, renewing sources), re-exported.
#![forbid(unsafe_code)]

pub mod agent;
pub mod attest;
pub mod audit;
pub mod ca;
pub mod config;
pub mod csr;
pub mod error;
pub mod inspect;
pub mod keystore;
pub mod metrics;
pub mod ratelimit;
pub mod revocation;
pub mod server;
pub mod token;
pub mod workloads;

pub use error::{PkiError, Result};
pub use rampart_identity as client;
pub use rampart_tls as tls;
pub use rampart_tls::spiffe;
