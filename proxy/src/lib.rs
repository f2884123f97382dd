//! rampart-proxy: the ingress edge reverse proxy, on Pingora.
//!
//! Read it in the order a request meets it:
//! - [`listener`]: a connection is admitted, TLS is accepted, the stream is hardened;
//! - [`proxy`]: the `ProxyHttp` phases, each a few lines calling the stages of [`request`]
//!   (identify, validate, route, limits, body, waf, forward, headers, cookies, respond, log);
//! - [`upstream`]: the pools a route forwards to (round robin, passive health, verified TLS).
//!
//! What they read: [`runtime`] (one compiled generation of the [`config`]: routes, the
//! [`policy`] of each, upstreams, WAF, listener TLS) and [`state`] (what the request path
//! shares with the [`control`] plane: the live generation, defences, [`metrics`], the
//! [`access_log`]). The DoS defences are the `rampart_protect` crate; [`tls`] is the listener
//! TLS and the edge's identity.
//!
//! Modules depend one way only, each on those listed before it (`scripts/check-cycles`):
//! `config`, `error` → `metrics`, `access_log` → `tls` → `upstream`, `policy` → `runtime` →
//! `state` → `listener`, `request` → `proxy` → `control`.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod config;
pub mod control;
/// `rampart-proxy audit dnssec` (S.N.11), on rampart-dns.
pub mod dnssec_audit;
pub mod error;
pub mod listener;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod request;
pub mod runtime;
pub mod state;
pub mod tls;
pub mod upstream;
