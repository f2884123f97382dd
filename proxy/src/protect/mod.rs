//! DoS defences, rate limits and denial alerting (S.N.4, S.N.12).
//!
//! Self-contained building blocks the proxy wires into its Pingora phases:
//! - [`conn_limit`]: connection caps before the TLS handshake (`ConnectionFilter`).
//! - [`shed`]: load shedding on in-flight requests (`request_filter`, first).
//! - [`slow_client`]: whole-header deadline and minimum body rate (stream wrapper).
//! - [`ratelimit`]: per-client GCRA limits per route (`request_filter`).
//! - [`redis_limit`]: fleet-wide GCRA in Redis behind the local limiter.
//! - [`h2_flood`]: HTTP/2 stream limits and the rapid-reset defence.
//! - [`denial`]: one denial event type, its metric and its event line.
//! - [`alert`]: webhook alerts when denials of a reason cross a threshold.
//! - [`defences`]: all of the above from one `[protect]` config, the
//!   request-path check and one background service for the workers.

pub mod alert;
pub mod client_key;
pub mod conn_limit;
pub mod defences;
pub mod denial;
pub mod h2_flood;
mod io_delegate;
pub mod ratelimit;
pub mod redis_limit;
pub mod shed;
pub mod slow_client;
