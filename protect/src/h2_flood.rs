//! HTTP/2 stream limits and the rapid-reset defence (CVE-2023-44487).
//!
//! Pingora hands HTTP/2 connections to the `h2` crate; [`h2_options`] builds
//! its `H2Options` (max concurrent streams, header-list size, and h2's own
//! bounds on reset streams) for `HttpProxy::h2_options`. h2 has no per-second
//! bound on the RST_STREAM frames a client sends, so [`ResetGuard`] wraps the
//! plaintext downstream stream (after TLS, before Pingora's HTTP layer),
//! follows the HTTP/2 frame headers the client sends, and closes the
//! connection when one connection sends more than `max_resets_per_sec`
//! RST_STREAM frames within a second. HTTP/1.x connections are recognised by
//! their first bytes and pass through untouched.

mod scanner;
#[cfg(feature = "pingora")]
mod stream;

use serde::Deserialize;

pub use scanner::{FrameScanner, Verdict};
#[cfg(feature = "pingora")]
pub use stream::ResetGuard;

/// `[h2]` in the proxy config.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct H2Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients.
    pub max_concurrent_streams: u32,
    /// Decoded header-list limit per request (bytes).
    pub max_header_list_size: u32,
    /// RST_STREAM frames one connection may send per second; more closes it.
    pub max_resets_per_sec: u32,
    /// h2: remotely reset streams waiting to be accepted before GOAWAY.
    pub max_pending_accept_reset_streams: usize,
    /// h2: resets the server may be forced to send for protocol errors.
    pub max_local_error_reset_streams: usize,
}

/// The first field that differs between two `[h2]` tables (reload check).
pub fn changed_field(old: &H2Config, new: &H2Config) -> Option<&'static str> {
    [
        (
            "max_concurrent_streams",
            old.max_concurrent_streams != new.max_concurrent_streams,
        ),
        (
            "max_header_list_size",
            old.max_header_list_size != new.max_header_list_size,
        ),
        (
            "max_resets_per_sec",
            old.max_resets_per_sec != new.max_resets_per_sec,
        ),
        (
            "max_pending_accept_reset_streams",
            old.max_pending_accept_reset_streams != new.max_pending_accept_reset_streams,
        ),
        (
            "max_local_error_reset_streams",
            old.max_local_error_reset_streams != new.max_local_error_reset_streams,
        ),
    ]
    .into_iter()
    .find_map(|(name, changed)| changed.then_some(name))
}

impl Default for H2Config {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            max_header_list_size: 32 * 1024,
            max_resets_per_sec: 100,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 64,
        }
    }
}

/// `max_concurrent_streams`, `max_resets_per_sec`, `max_pending_accept_reset_streams`,
/// `max_local_error_reset_streams`: 1 to 100,000.
pub const STREAMS: rampart_ops::config::Bounds = rampart_ops::config::Bounds::new(1, 100_000, "");
/// `max_header_list_size`: 1 KiB to 16 MiB.
pub const HEADER_LIST_BYTES: rampart_ops::config::Bounds =
    rampart_ops::config::Bounds::new(1024, 16 << 20, "bytes");

impl H2Config {
    pub fn validate(&self) -> Result<(), String> {
        let streams = |v: usize| v as u64;
        rampart_ops::config::Bounds::check_all(
            "h2",
            &[
                (
                    "max_concurrent_streams",
                    self.max_concurrent_streams.into(),
                    STREAMS,
                ),
                (
                    "max_header_list_size",
                    self.max_header_list_size.into(),
                    HEADER_LIST_BYTES,
                ),
                (
                    "max_resets_per_sec",
                    self.max_resets_per_sec.into(),
                    STREAMS,
                ),
                (
                    "max_pending_accept_reset_streams",
                    streams(self.max_pending_accept_reset_streams),
                    STREAMS,
                ),
                (
                    "max_local_error_reset_streams",
                    streams(self.max_local_error_reset_streams),
                    STREAMS,
                ),
            ],
        )
    }
}

/// The h2 server settings for `HttpProxy::h2_options`.
#[cfg(feature = "pingora")]
pub fn h2_options(config: &H2Config) -> pingora_core::protocols::http::v2::server::H2Options {
    use pingora_core::protocols::http::v2::server::default_h2_options;
    let mut options = default_h2_options();
    options
        .max_concurrent_streams(config.max_concurrent_streams)
        .max_header_list_size(config.max_header_list_size)
        .max_pending_accept_reset_streams(config.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(Some(config.max_local_error_reset_streams));
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_validation() {
        let c: H2Config = toml::from_str("max_resets_per_sec = 50").unwrap();
        assert_eq!(c.max_resets_per_sec, 50);
        assert_eq!(c.max_concurrent_streams, 100);
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<H2Config>("max_streams = 5").is_err());
        let bad: H2Config = toml::from_str("max_resets_per_sec = 0").unwrap();
        assert!(bad.validate().unwrap_err().contains("max_resets_per_sec"));
        #[cfg(feature = "pingora")]
        let _ = h2_options(&c);
    }
}
