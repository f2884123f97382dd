//! rampart-dns: the egress path's own resolver.
//!
//! - DNSSEC validation is always on (hickory-resolver 0.26, ring); every answer is classified
//!   secure / insecure / bogus / indeterminate from hickory's per-record proofs and bogus fails
//!   closed ([`resolver`]).
//! - Every address is vetted: loopback, private, link-local, cloud metadata, multicast,
//!   unspecified, CGNAT and reserved ranges are refused unless the rule names them ([`vet`]).
//! - Answers are cached for their TTL clamped to a floor and a ceiling.
//! - The result, [`Resolved`], is the exact list of addresses the caller dials: there is no
//!   second lookup by anyone, so DNS rebinding cannot swap the target after vetting.
#![forbid(unsafe_code)]

pub mod audit;
pub mod resolver;
pub mod testlab;
pub mod vet;

pub use resolver::{
    normalize, BuildError, DnsDenial, DnssecMode, Resolved, Resolver, ResolverConfig, Security,
    TrustAnchor,
};
pub use vet::{classify, AddressClass, Refusal};
