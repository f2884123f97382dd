//! rampart-proxy: the ingress edge reverse proxy.
#![forbid(unsafe_code)]

/// DoS defences, rate limits and denial alerting (S.N.4, S.N.12).
pub mod protect;
