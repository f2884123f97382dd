//! rampart-egress: egress control for the sidecar (S.N.7, S.N.8, resolver half of S.N.11).
//!
//! - [`policy`]: allowed destinations per service (exact hosts, `*.suffix` wildcards, ports,
//!   protocol, DNSSEC demand; addresses and CIDRs only explicitly), with warnings on broad rules.
//! - [`peek`]: what the sidecar sees: the SNI of a ClientHello (rustls `Acceptor`, nothing
//!   terminated), the Host header of plain HTTP, CONNECT and absolute-form targets (httparse).
//! - [`decide`]: the decision, with the rule and the reason; pure and offline.
//! - [`dial`]: read, decide, resolve through rampart-dns, dial exactly the vetted address,
//!   optionally from a fixed source address.
#![forbid(unsafe_code)]

pub mod decide;
pub mod dial;
pub mod peek;
pub mod policy;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use decide::{decide, explain, forbidden_response, Decision, Denied, Dial, Mode};
pub use dial::{
    admit, admit_with, dial_one, dial_vetted, Admitted, Connected, DialOptions, Egress, CONNECT_OK,
};
pub use peek::{classify, parse_host_port, Peeked, Seen, Target};
pub use policy::{
    AddressRule, EgressPolicy, HostPattern, HostRule, PolicyError, Ports, Protocol, Warning,
};
