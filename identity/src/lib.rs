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
//! - [`api`]: the CA's JSON wire types, shared with the CA service.
//!
//! Errors are [`IdentityError`]s with a stable [`IdentityError::reason`] label.
//!
//! # A workload's identity
//!
//! ```no_run
//! use rampart_identity::{CaEndpoint, SourceSettings, SvidSource};
//! use rampart_tls::SpiffeId;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let ca: CaEndpoint = "https://ca.mesh.example.org:8443".parse()?;
//! let mut settings = SourceSettings::new(ca, SpiffeId::parse("spiffe://example.org/ns/web/sa/api")?);
//! settings.state_dir = Some("/var/lib/rampart/svid".into()); // resume after a restart
//! let roots = rampart_tls::pem::load_certs("/etc/rampart/bundle.pem".as_ref())?;
//! let token = std::fs::read_to_string("/etc/rampart/join-token")?;
//! let source = SvidSource::resume_or_bootstrap(settings, roots, Some(token.trim())).await?;
//! source.spawn(); // renews at 2/3 of the lifetime, refreshes the bundle and its deny-list
//! let acceptor = source.mesh().acceptor(); // inbound mTLS with the newest SVID
//! let connector = source.mesh().connector(); // outbound mTLS
//! # let _ = (acceptor, connector);
//! # Ok(())
//! # }
//! ```
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
