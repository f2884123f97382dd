//! One JSON line per client request (S.N.5): the record, its redaction, and the writer (the
//! shared `rampart_ops::json_log` thread, so the request path never waits on I/O: records go
//! through a bounded queue and are dropped, and counted, when the writer falls behind).
//!
//! Never logged: Cookie, Authorization and Set-Cookie values; sensitive query values are
//! replaced by `REDACTED`.

use crate::metrics::Metrics;
use serde::Serialize;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// Query keys (case-insensitive, after percent-decoding) whose values are never logged.
pub const SENSITIVE_KEYS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "client_secret",
    "key",
    "api_key",
    "apikey",
    "sig",
    "signature",
    "code",
    "session",
    "sessionid",
    "session_id",
    "sid",
    "auth",
    "authorization",
    "credentials",
    "jwt",
    "otp",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];
/// Substrings that make a key sensitive anywhere in its name.
const SENSITIVE_PARTS: &[&str] = &[
    "token",
    "password",
    "secret",
    "session",
    "signature",
    "apikey",
    "api_key",
    "credential",
];

pub const MAX_UA: usize = 256;
pub const MAX_PATH: usize = 2048;

/// One access log line, of borrowed fields: serialised on the request's thread straight into
/// the line's buffer (`JsonLog::send_now`), no owned copies. Field names follow OpenTelemetry
/// semantic conventions. Addresses serialise through `serde`'s stack-buffer `Display` (no
/// `String`); a missing one is `""`.
#[derive(Debug, Default, Serialize)]
pub struct AccessRecord<'a> {
    #[serde(rename = "@timestamp")]
    pub timestamp: Timestamp,
    #[serde(rename = "http.request.id")]
    pub request_id: &'a str,
    #[serde(rename = "rampart.listener")]
    pub listener: &'a str,
    #[serde(rename = "client.address")]
    pub client_address: Addr,
    #[serde(rename = "client.port", skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,
    #[serde(rename = "network.peer.address")]
    pub peer_address: Addr,
    #[serde(rename = "network.peer.port")]
    pub peer_port: Option<u16>,
    #[serde(rename = "server.address")]
    pub server_address: ServerAddr<'a>,
    #[serde(rename = "http.request.method")]
    pub method: &'a str,
    #[serde(rename = "url.scheme")]
    pub scheme: &'static str,
    #[serde(rename = "url.path")]
    pub path: &'a str,
    #[serde(rename = "url.query", skip_serializing_if = "Option::is_none")]
    pub query: Option<Cow<'a, str>>,
    #[serde(rename = "http.route")]
    pub route: &'a str,
    #[serde(rename = "network.protocol.version")]
    pub protocol: &'static str,
    #[serde(rename = "user_agent.original")]
    pub user_agent: Cow<'a, str>,
    #[serde(rename = "http.response.status_code")]
    pub status: u16,
    #[serde(rename = "http.request.body.size")]
    pub request_body_size: usize,
    #[serde(rename = "http.response.body.size")]
    pub response_body_size: usize,
    #[serde(rename = "event.duration_ms")]
    pub duration_ms: f64,
    #[serde(rename = "upstream.address", skip_serializing_if = "Option::is_none")]
    pub upstream_address: Option<SocketAddr>,
    #[serde(
        rename = "upstream.connect_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_connect_ms: Option<f64>,
    #[serde(
        rename = "upstream.response_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_response_ms: Option<f64>,
    #[serde(
        rename = "tls.protocol.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_version: Option<&'a str>,
    #[serde(rename = "tls.cipher", skip_serializing_if = "Option::is_none")]
    pub tls_cipher: Option<&'a str>,
    #[serde(rename = "tls.server_name", skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<&'a str>,
    #[serde(rename = "error.type", skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The WAF's decision.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub waf: Option<&'a WafLog>,
    /// Fields added by other stages, e.g. `rampart.limit.policy`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// The WAF's `rampart.waf.*` fields of a request's line.
#[derive(Debug, Default, Serialize)]
pub struct WafLog {
    #[serde(rename = "rampart.waf.action")]
    pub action: &'static str,
    #[serde(rename = "rampart.waf.score", skip_serializing_if = "Option::is_none")]
    pub score: Option<u32>,
    #[serde(
        rename = "rampart.waf.rule_ids",
        skip_serializing_if = "Option::is_none"
    )]
    pub rule_ids: Option<Vec<u32>>,
    #[serde(
        rename = "rampart.waf.targets",
        skip_serializing_if = "Option::is_none"
    )]
    pub targets: Option<Vec<String>>,
    /// `partial` when the body went on past what was read for inspection.
    #[serde(rename = "rampart.waf.body", skip_serializing_if = "Option::is_none")]
    pub body: Option<&'static str>,
    #[serde(rename = "rampart.waf.truncated", skip_serializing_if = "is_false")]
    pub truncated: bool,
    #[serde(rename = "rampart.waf.mode", skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    #[serde(
        rename = "rampart.waf.uninspected",
        skip_serializing_if = "Option::is_none"
    )]
    pub uninspected: Option<&'static str>,
    #[serde(
        rename = "rampart.waf.uninspected_action",
        skip_serializing_if = "Option::is_none"
    )]
    pub uninspected_action: Option<&'static str>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// An address, `""` when unknown.
#[derive(Debug, Default, Clone, Copy)]
pub struct Addr(pub Option<IpAddr>);

impl Serialize for Addr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(ip) => ip.serialize(s),
            None => s.serialize_str(""),
        }
    }
}

/// `server.address`: the request's host, else the address the client connected to.
#[derive(Debug, Clone, Copy)]
pub enum ServerAddr<'a> {
    Host(&'a str),
    Local(Addr),
}

impl Default for ServerAddr<'_> {
    fn default() -> Self {
        ServerAddr::Local(Addr(None))
    }
}

impl Serialize for ServerAddr<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ServerAddr::Host(h) => s.serialize_str(h),
            ServerAddr::Local(a) => a.serialize(s),
        }
    }
}

/// A point in time, serialised as RFC 3339 UTC with microseconds
/// (`2026-12-06T12:47:00.123456Z`). The date and time of day are formatted once per second
/// per thread; each line only writes its microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp(pub SystemTime);

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp(SystemTime::now())
    }
}

/// `YYYY-MM-DDTHH:MM:SS`
const SECOND_TEXT: usize = 19;

thread_local! {
    /// The last second formatted on this thread, and its text.
    static SECOND: std::cell::Cell<(u64, [u8; SECOND_TEXT])> =
        const { std::cell::Cell::new((u64::MAX, [0; SECOND_TEXT])) };
}

fn second_text(secs: u64) -> [u8; SECOND_TEXT] {
    let (cached, text) = SECOND.get();
    if cached == secs {
        return text;
    }
    let mut text = [b'0'; SECOND_TEXT];
    let formatted = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            ))
            .ok()
        });
    if let Some(f) = formatted.filter(|f| f.len() == SECOND_TEXT) {
        text.copy_from_slice(f.as_bytes());
        SECOND.set((secs, text));
    }
    text
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut out = [0u8; SECOND_TEXT + 8];
        out[..SECOND_TEXT].copy_from_slice(&second_text(since.as_secs()));
        out[SECOND_TEXT] = b'.';
        let mut micros = since.subsec_micros();
        for d in out[SECOND_TEXT + 1..SECOND_TEXT + 7].iter_mut().rev() {
            *d = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        out[SECOND_TEXT + 7] = b'Z';
        // ASCII digits and punctuation only.
        s.serialize_str(std::str::from_utf8(&out).unwrap_or_default())
    }
}

/// The access log: the shared JSON-lines writer thread carrying [`AccessRecord`]s (and ready
/// JSON event lines for connection-level denials).
///
/// Lines are serialised on the caller's thread (`send_now`); the writer thread only writes them.
pub type AccessLog = rampart_ops::json_log::JsonLog<AccessRecord<'static>>;

/// Starts the access log writer on `dest` ("stdout" or a file path, appended to); records
/// refused by a full queue are counted in `rampart_access_log_dropped_total`.
pub fn start(dest: &str, capacity: usize, metrics: &Metrics) -> std::io::Result<AccessLog> {
    AccessLog::start(dest, capacity, metrics.access_log_dropped.clone())
}

/// The query string with values of sensitive keys replaced by REDACTED (borrowed when none).
pub fn redact_query<'q>(query: &'q str, extra_keys: &[String]) -> Cow<'q, str> {
    let sensitive = |pair: &str| {
        pair.split_once('=')
            .is_some_and(|(k, _)| is_sensitive(k, extra_keys))
    };
    if !query.split('&').any(sensitive) {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((k, _)) if is_sensitive(k, extra_keys) => {
                out.push_str(k);
                out.push_str("=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    Cow::Owned(out)
}

fn is_sensitive(raw_key: &str, extra: &[String]) -> bool {
    let key = percent_encoding::percent_decode_str(&raw_key.replace('+', " "))
        .decode_utf8_lossy()
        .trim()
        .to_ascii_lowercase();
    SENSITIVE_KEYS.contains(&key.as_str())
        || SENSITIVE_PARTS.iter().any(|p| key.contains(p))
        || extra.iter().any(|e| e.eq_ignore_ascii_case(&key))
}

/// Truncates to at most `max` bytes on a char boundary.
pub fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// [`cap`] for a `Cow`, keeping it borrowed when it was.
pub fn cap_cow(s: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(cap(b, max)),
        Cow::Owned(o) => Cow::Owned(cap(&o, max).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_sensitive_values() {
        let q = redact_query(
            "a=1&token=abc&Pass%77ord=x&my_session_id=9&code=c&q=ok",
            &["custom".into()],
        );
        assert_eq!(
            q,
            "a=1&token=REDACTED&Pass%77ord=REDACTED&my_session_id=REDACTED&code=REDACTED&q=ok"
        );
        assert_eq!(
            redact_query("custom=1", &["custom".into()]),
            "custom=REDACTED"
        );
    }

    #[test]
    fn record_field_names() {
        let rec = AccessRecord {
            tls_version: Some("1.3"),
            ..Default::default()
        };
        let v = serde_json::to_value(&rec).unwrap();
        assert!(v.get("tls.protocol.version").is_some());
        let t = v["@timestamp"].as_str().unwrap();
        assert!(
            t.len() == 27 && t.as_bytes()[10] == b'T' && t.ends_with('Z'),
            "{t}"
        );
        let at = |secs| Timestamp(UNIX_EPOCH + std::time::Duration::from_micros(secs));
        let text = |t: Timestamp| serde_json::to_value(t).unwrap();
        assert_eq!(
            text(at(1_796_000_000_000_042)),
            "2026-11-30T00:53:20.000042Z"
        );
        // The cached second is replaced when the second changes.
        assert_eq!(
            text(at(1_796_000_001_500_000)),
            "2026-11-30T00:53:21.500000Z"
        );
    }

    #[test]
    fn cap_on_char_boundary() {
        assert_eq!(cap("héllo", 2), "h");
        assert_eq!(cap_cow(Cow::Owned("héllo".into()), 3), "hé");
    }
}
