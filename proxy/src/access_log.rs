//! One JSON line per client request (S.N.5): the record, its redaction, and the writer (the
//! shared `rampart_ops::json_log` thread, so the request path never waits on I/O: records go
//! through a bounded queue and are dropped, and counted, when the writer falls behind).
//!
//! Never logged: Cookie, Authorization and Set-Cookie values; sensitive query values are
//! replaced by `REDACTED`.

use crate::metrics::Metrics;
use serde::Serialize;
use std::time::SystemTime;

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

/// One access log line. Field names follow OpenTelemetry semantic conventions.
#[derive(Debug, Default, Serialize)]
pub struct AccessRecord {
    #[serde(rename = "@timestamp", serialize_with = "rfc3339")]
    pub timestamp: Option<SystemTime>,
    #[serde(rename = "http.request.id")]
    pub request_id: String,
    #[serde(rename = "rampart.listener")]
    pub listener: String,
    #[serde(rename = "client.address")]
    pub client_address: String,
    #[serde(rename = "client.port", skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,
    #[serde(rename = "network.peer.address")]
    pub peer_address: String,
    #[serde(rename = "network.peer.port")]
    pub peer_port: Option<u16>,
    #[serde(rename = "server.address")]
    pub server_address: String,
    #[serde(rename = "http.request.method")]
    pub method: String,
    #[serde(rename = "url.scheme")]
    pub scheme: &'static str,
    #[serde(rename = "url.path")]
    pub path: String,
    #[serde(rename = "url.query", skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(rename = "http.route")]
    pub route: String,
    #[serde(rename = "network.protocol.version")]
    pub protocol: &'static str,
    #[serde(rename = "user_agent.original")]
    pub user_agent: String,
    #[serde(rename = "http.response.status_code")]
    pub status: u16,
    #[serde(rename = "http.request.body.size")]
    pub request_body_size: usize,
    #[serde(rename = "http.response.body.size")]
    pub response_body_size: usize,
    #[serde(rename = "event.duration_ms")]
    pub duration_ms: f64,
    #[serde(rename = "upstream.address", skip_serializing_if = "Option::is_none")]
    pub upstream_address: Option<String>,
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
    pub tls_version: Option<String>,
    #[serde(rename = "tls.cipher", skip_serializing_if = "Option::is_none")]
    pub tls_cipher: Option<String>,
    #[serde(rename = "tls.server_name", skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    #[serde(rename = "error.type", skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Fields added by other stages, e.g. `rampart.waf.rule_id`, `rampart.limit.policy`.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn rfc3339<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    let t = time::OffsetDateTime::from(t.unwrap_or_else(SystemTime::now));
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    s.serialize_str(&text)
}

/// The access log: the shared JSON-lines writer thread carrying [`AccessRecord`]s (and ready
/// JSON event lines for connection-level denials).
pub type AccessLog = rampart_ops::json_log::JsonLog<AccessRecord>;

/// Starts the access log writer on `dest` ("stdout" or a file path, appended to); records
/// refused by a full queue are counted in `rampart_access_log_dropped_total`.
pub fn start(dest: &str, capacity: usize, metrics: &Metrics) -> std::io::Result<AccessLog> {
    AccessLog::start(dest, capacity, metrics.access_log_dropped.clone())
}

/// The query string with values of sensitive keys replaced by REDACTED.
pub fn redact_query(query: &str, extra_keys: &[String]) -> String {
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
    out
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
pub fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
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
            tls_version: Some("1.3".into()),
            ..Default::default()
        };
        let v = serde_json::to_value(&rec).unwrap();
        assert!(v.get("tls.protocol.version").is_some());
        assert!(v.get("@timestamp").is_some());
    }

    #[test]
    fn cap_on_char_boundary() {
        assert_eq!(cap("héllo", 2), "h");
    }
}
