//! The per-request state the stages share (Pingora's `CTX`).

use super::body::BodyReplay;
use crate::access_log::WafLog;
use crate::policy::headers::HeaderPolicy;
use crate::runtime::{ListenerInfo, Route, Runtime};
use bytes::Bytes;
use rampart_protect::denial::Denial;
use rampart_protect::shed::InFlightGuard;
use smallvec::SmallVec;
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Per-request state.
pub struct RequestCtx {
    pub start: Instant,
    pub started_at: SystemTime,
    /// The request id, kept as the header value it is sent as (a clone shares its bytes): one
    /// allocation per request, the text read from it.
    request_id: http::HeaderValue,
    /// The config generation this request runs under, loaded once in `request_filter`.
    pub runtime: Option<Arc<Runtime>>,
    pub listener: Option<Arc<ListenerInfo>>,
    pub route: Option<Arc<Route>>,
    pub https: bool,
    /// The host as validated (`validate::request`); empty before.
    pub host: HostName,
    pub peer: Option<SocketAddr>,
    pub client_ip: Option<IpAddr>,
    /// Upstream endpoints tried so far (by index), and the current one. Inline: a request
    /// tries one endpoint, a few on connect failures (no allocation per request).
    pub tried: SmallVec<[usize; 4]>,
    pub current: Option<usize>,
    pub upstream_addr: Option<SocketAddr>,
    pub upstream_start: Option<Instant>,
    pub connect_ms: Option<f64>,
    pub response_ms: Option<f64>,
    /// The refusal the edge answered with (counted once, logged as `rampart.denial.*`).
    pub denial: Option<Denial>,
    /// An answer of the edge's own that is not a refusal (`https_redirect`, `no_route`).
    pub answered: Option<&'static str>,
    /// Extra access-log fields from protection stages (`rampart.waf.*`, `rampart.limit.*`).
    pub log_fields: serde_json::Map<String, serde_json::Value>,
    /// The WAF's decision, for the access log.
    pub waf_log: Option<WafLog>,
    /// Counted in `rampart_active_requests` and the drain's in-flight count.
    pub counted_active: bool,
    /// Held while the request is in flight (load shedding counts these).
    pub in_flight: Option<InFlightGuard>,
    /// The body read for inspection, replayed to the upstream.
    pub body: Option<BodyReplay>,
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            start: Instant::now(),
            started_at: SystemTime::now(),
            request_id: new_request_id(),
            runtime: None,
            listener: None,
            route: None,
            https: false,
            host: HostName::None,
            peer: None,
            client_ip: None,
            tried: SmallVec::new(),
            current: None,
            upstream_addr: None,
            upstream_start: None,
            connect_ms: None,
            response_ms: None,
            denial: None,
            answered: None,
            log_fields: serde_json::Map::new(),
            waf_log: None,
            counted_active: false,
            in_flight: None,
            body: None,
        }
    }

    /// Adopts a request id (a trusted proxy's, already checked by `is_sane_request_id`).
    pub fn set_request_id(&mut self, id: http::HeaderValue) {
        self.request_id = id;
    }

    /// The request id (hex digits, or an adopted id of `is_sane_request_id`'s characters).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    /// The request id as a header value (for the upstream request and the responses).
    pub fn request_id_header(&self) -> &http::HeaderValue {
        &self.request_id
    }

    /// The header policy for edge responses to this request.
    pub fn policy<'a>(&'a self, rt: &'a Runtime) -> &'a HeaderPolicy {
        self.route
            .as_ref()
            .map(|r| &r.headers)
            .unwrap_or(&rt.default_headers)
    }
}

/// A request's host as validated: lowercase, without port or trailing dot. Where the Host
/// header holds it whole already (the usual `Host: name`), that header's value, shared (a
/// reference count on the bytes Pingora read; no copy per request); otherwise a copy of its own.
#[derive(Debug, Clone, Default)]
pub enum HostName {
    /// Not validated (yet): reads as empty.
    #[default]
    None,
    /// The whole value of the request's Host header.
    Header(http::HeaderValue),
    Owned(String),
}

impl std::ops::Deref for HostName {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            HostName::None => "",
            // Only a value `normalize_host` returned whole is kept: ASCII, so always UTF-8.
            HostName::Header(v) => std::str::from_utf8(v.as_bytes()).unwrap_or_default(),
            HostName::Owned(s) => s,
        }
    }
}

impl std::fmt::Display for HostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// Short, printable, no separators that could confuse logs or headers.
pub fn is_sane_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Length of a request id made here: 128 random bits in hex.
const ID_LEN: usize = 32;
/// Request ids made at once, in one buffer ([`new_request_id`]).
const IDS_PER_BLOCK: usize = 64;

thread_local! {
    /// This thread's block of request ids not handed out yet: the ids, and how many were taken.
    static ID_BLOCK: RefCell<(Bytes, usize)> = const { RefCell::new((Bytes::new(), IDS_PER_BLOCK)) };
}

/// A new request id: 128 random bits (each id drawn on its own) as 32 hex digits. The ids are
/// written [`IDS_PER_BLOCK`] at a time into one shared buffer and each is a slice of it (a
/// reference count), so a request allocates nothing for its id, where a value of its own costs
/// two allocations (its bytes, and the shared header `Bytes` makes at its first clone).
fn new_request_id() -> http::HeaderValue {
    ID_BLOCK.with(|block| {
        let mut block = block.borrow_mut();
        let (ids, taken) = &mut *block;
        if *taken == IDS_PER_BLOCK {
            *ids = id_block();
            *taken = 0;
        }
        let id = ids.slice(*taken * ID_LEN..(*taken + 1) * ID_LEN);
        *taken += 1;
        // Hex digits are always a valid value.
        http::HeaderValue::from_maybe_shared(id)
            .unwrap_or_else(|_| http::HeaderValue::from_static("0"))
    })
}

/// [`IDS_PER_BLOCK`] request ids back to back, each byte of an id's random bits written as
/// its two hex digits, most significant first.
fn id_block() -> Bytes {
    let mut out = Vec::with_capacity(ID_LEN * IDS_PER_BLOCK);
    for _ in 0..IDS_PER_BLOCK {
        let v: u128 = rand::random();
        for byte in v.to_be_bytes() {
            out.extend_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
    }
    Bytes::from(out)
}

/// Each byte value's two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    pairs
};

/// A Pingora socket address as an inet address (`None` for unix sockets).
pub fn inet(addr: Option<&pingora_core::protocols::l4::socket::SocketAddr>) -> Option<SocketAddr> {
    addr.and_then(|a| a.as_inet()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digit pairs are `{:02x}`'s.
    #[test]
    fn hex_pairs_are_the_bytes_in_hex() {
        for (byte, pair) in HEX_PAIRS.iter().enumerate() {
            assert_eq!(pair, format!("{byte:02x}").as_bytes());
        }
    }

    /// Ids cut from blocks are 32 lowercase hex digits each, and none repeats, across blocks.
    #[test]
    fn request_ids_are_distinct_hex_across_blocks() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 * IDS_PER_BLOCK + 5 {
            let id = new_request_id();
            let text = id.to_str().unwrap();
            assert_eq!(text.len(), ID_LEN, "{text}");
            assert!(
                text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{text}"
            );
            assert!(seen.insert(text.to_owned()), "{text} repeated");
        }
    }
}
