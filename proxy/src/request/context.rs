//! The per-request state the stages share (Pingora's `CTX`).

use super::body::BodyReplay;
use crate::access_log::WafLog;
use crate::policy::headers::HeaderPolicy;
use crate::runtime::{ListenerInfo, Route, Runtime};
use rampart_protect::denial::Denial;
use rampart_protect::shed::InFlightGuard;
use smallvec::SmallVec;
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

fn new_request_id() -> http::HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let v: u128 = rand::random();
    let mut id = [0u8; 32];
    for (i, b) in id.iter_mut().enumerate() {
        *b = HEX[(v >> ((31 - i) * 4)) as usize & 0xf];
    }
    // Hex digits are always a valid value.
    http::HeaderValue::from_bytes(&id).unwrap_or_else(|_| http::HeaderValue::from_static("0"))
}

/// A Pingora socket address as an inet address (`None` for unix sockets).
pub fn inet(addr: Option<&pingora_core::protocols::l4::socket::SocketAddr>) -> Option<SocketAddr> {
    addr.and_then(|a| a.as_inet()).copied()
}
