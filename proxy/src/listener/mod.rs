//! The connection's path before any request: admission (connection caps, applied outermost by
//! `protect::conn_limit` on the raw TCP stream), TLS accept with the listener's own rustls
//! config ([`accept`]), the slow-client and h2-flood guards, then the hardened stream
//! ([`hardened`]) that replaces Pingora's own parse-error answers with the edge's.

pub mod accept;
pub mod framing;
pub mod hardened;

pub use accept::EdgeApp;
pub use hardened::HardenedStream;
