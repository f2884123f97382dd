//! The workload side of Rampart's CA, embedded by the sidecar and the edge; it links no CA
//! server code and no command-line parser.
//!
//! - [`CaClient`] speaks the CA's HTTPS API ([`api`]) over hyper, authenticating the CA by its
//!   chain to the trust bundle, its SPIFFE ID and, when its certificate names hosts, the
//!   endpoint's host name or IP.
//! - [`SvidSource`] holds the current SVID, renews it at about 2/3 of its life (with jitter),
//!   backs off while the CA is down, keeps serving the current certificate until it expires,
//!   and publishes each new rustls config on a watch channel.
//! - [`EdgeCertSource`] does the same for an edge listener's DNS server certificate.
//! - [`csr`]: fresh keys and CSRs.
#![forbid(unsafe_code)]

pub mod api;
mod ca_client;
pub mod csr;
mod edge;
pub mod error;
mod source;

pub use ca_client::{CaClient, CaEndpoint};
pub use edge::EdgeCertSource;
pub use error::{IdentityError, Result};
pub use rampart_tls::pem::certs_from_pem;
pub use source::{SourceSettings, SvidSource, SvidStatus};
