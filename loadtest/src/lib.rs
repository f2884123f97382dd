//! rampart-loadtest: scenario load generator for the Rampart edge.
//!
//! Scenarios run an attack (`flood`, `attack`, `slowloris`, or none for
//! `benign`) while legitimate clients on other loopback source addresses keep
//! sending a realistic mix; the report says how the legitimate traffic fared
//! (success rate, latency percentiles) and what happened to the attack
//! (status counts, blocked vs allowed). Only loopback targets are accepted.
#![forbid(unsafe_code)]

pub mod corpus;
pub mod handshake;
pub mod http;
pub mod malformed;
pub mod message;
pub mod mix;
pub mod probe;
pub mod reload;
pub mod report;
pub mod runner;
pub mod slowloris;
pub mod stats;
pub mod target;

pub use report::Report;
pub use runner::{run, LoadMode, Plan, Scenario};
pub use target::Target;

/// Everything that can stop a run before it starts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("target {0}: only loopback targets are allowed (127.0.0.0/8, ::1, localhost)")]
    NotLoopback(String),
    #[error("source address {0} is not a loopback address")]
    SourceNotLoopback(String),
    #[error("invalid target URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("corpus {path}: {reason}")]
    Corpus { path: String, reason: String },
    #[error("{0}")]
    Plan(String),
}
