//! rampart-proxy: the ingress edge reverse proxy.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod admin;
pub mod config;
pub mod cookies;
pub mod demo;
/// `rampart-proxy audit dnssec` (S.N.11), on rampart-dns.
pub mod dnssec_audit;
pub mod edge_app;
pub mod errors;
pub mod forwarded;
pub mod h1_rebuild;
pub mod headers;
pub mod inspect;
pub mod metrics;
pub mod parser_errors;
pub mod proxy;
pub mod reload;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod state;
pub mod tls;
pub mod upstream;
