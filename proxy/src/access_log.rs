//! One JSON line per client request (S.N.5): the record, its redaction, and the writer (the
//! shared `rampart_ops::json_log` thread, so the request path never waits on I/O: records go
//! through a bounded queue and are dropped, and counted, when the writer falls behind).
//!
//! Never logged: Cookie, Authorization and Set-Cookie values; sensitive query values are
//! replaced by `REDACTED`.

use crate::metrics::Metrics;
use rampart_ops::json_key as key;
use rampart_ops::json_log::Fields;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

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

/// One access log line, of borrowed fields, written by [`AccessRecord::write`] through ops' one
/// JSON line writer (`rampart_ops::json_log::Fields`) straight into the log's per-thread buffer
/// on the request's thread: no owned copies, no serializer, no allocation. Field names follow
/// OpenTelemetry semantic conventions.
#[derive(Debug, Default)]
pub struct AccessRecord<'a> {
    pub timestamp: Timestamp,
    pub request_id: &'a str,
    pub listener: &'a str,
    /// `""` when unknown.
    pub client_address: Option<IpAddr>,
    /// Left out when the client is not the TCP peer.
    pub client_port: Option<u16>,
    pub peer_address: Option<IpAddr>,
    /// `null` when unknown.
    pub peer_port: Option<u16>,
    pub server_address: ServerAddr<'a>,
    pub method: &'a str,
    pub scheme: &'static str,
    pub path: &'a str,
    pub query: Option<Cow<'a, str>>,
    pub route: &'a str,
    pub protocol: &'static str,
    pub user_agent: Cow<'a, str>,
    pub status: u16,
    pub request_body_size: usize,
    pub response_body_size: usize,
    pub duration_ms: f64,
    pub upstream_address: Option<SocketAddr>,
    pub upstream_connect_ms: Option<f64>,
    pub upstream_response_ms: Option<f64>,
    pub tls_version: Option<&'a str>,
    pub tls_cipher: Option<&'a str>,
    pub tls_server_name: Option<&'a str>,
    pub error: Option<&'static str>,
    /// The WAF's decision.
    pub waf: Option<&'a WafLog>,
    /// Fields added by other stages, e.g. `rampart.limit.policy`.
    pub extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl AccessRecord<'_> {
    /// Writes the JSON line (without its newline) into `out`, which must be empty: the access
    /// log's own buffer (`JsonLog::send_with`), so a line costs no allocation and one copy.
    pub fn write(&self, out: &mut Vec<u8>) {
        debug_assert!(out.is_empty(), "an access-log line starts an empty buffer");
        let mut l = Fields::open(out);
        l.timestamp(key!("@timestamp"), self.timestamp)
            .clean(key!("http.request.id"), self.request_id)
            .str(key!("rampart.listener"), self.listener)
            .ip(key!("client.address"), self.client_address);
        if let Some(port) = self.client_port {
            l.uint(key!("client.port"), port.into());
        }
        l.ip(key!("network.peer.address"), self.peer_address);
        match self.peer_port {
            Some(port) => l.uint(key!("network.peer.port"), port.into()),
            None => l.raw(key!("network.peer.port"), "null"),
        };
        match self.server_address {
            ServerAddr::Host(host) => l.str(key!("server.address"), host),
            ServerAddr::Local(ip) => l.ip(key!("server.address"), ip),
        };
        l.clean(key!("http.request.method"), self.method)
            .clean(key!("url.scheme"), self.scheme)
            .str(key!("url.path"), self.path)
            .str(key!("url.query"), self.query.as_deref())
            .str(key!("http.route"), self.route)
            .clean(key!("network.protocol.version"), self.protocol)
            .str(key!("user_agent.original"), &*self.user_agent)
            .uint(key!("http.response.status_code"), self.status.into())
            .uint(
                key!("http.request.body.size"),
                self.request_body_size as u64,
            )
            .uint(
                key!("http.response.body.size"),
                self.response_body_size as u64,
            )
            .float(key!("event.duration_ms"), self.duration_ms);
        if let Some(addr) = self.upstream_address {
            l.socket_addr(key!("upstream.address"), addr);
        }
        if let Some(ms) = self.upstream_connect_ms {
            l.float(key!("upstream.connect_ms"), ms);
        }
        if let Some(ms) = self.upstream_response_ms {
            l.float(key!("upstream.response_ms"), ms);
        }
        l.clean(key!("tls.protocol.version"), self.tls_version)
            .clean(key!("tls.cipher"), self.tls_cipher)
            .str(key!("tls.server_name"), self.tls_server_name)
            .str(key!("error.type"), self.error);
        if let Some(waf) = self.waf {
            waf.push(&mut l);
        }
        for (key, value) in self.extra.into_iter().flatten() {
            // Names chosen by the stages: escaped all the same.
            l.named(key, value);
        }
        l.close();
    }

    /// The JSON line (without its newline) as a `String`.
    #[cfg(test)]
    pub fn line(&self) -> String {
        let mut out = Vec::with_capacity(LINE);
        self.write(&mut out);
        String::from_utf8(out).unwrap()
    }
}

/// First capacity of a line built on its own (most fit).
#[cfg(test)]
const LINE: usize = 1024;

/// The WAF's `rampart.waf.*` fields of a request's line.
#[derive(Debug, Default)]
pub struct WafLog {
    pub action: &'static str,
    pub score: Option<u32>,
    pub rule_ids: Option<Vec<u32>>,
    pub targets: Option<Vec<String>>,
    /// `partial` when the body went on past what was read for inspection.
    pub body: Option<&'static str>,
    pub truncated: bool,
    pub mode: Option<&'static str>,
    pub uninspected: Option<&'static str>,
    pub uninspected_action: Option<&'static str>,
}

impl WafLog {
    fn push(&self, l: &mut Fields<'_>) {
        l.clean(key!("rampart.waf.action"), self.action);
        if let Some(score) = self.score {
            l.uint(key!("rampart.waf.score"), score.into());
        }
        if let Some(ids) = &self.rule_ids {
            l.uints(
                key!("rampart.waf.rule_ids"),
                ids.iter().map(|&id| u64::from(id)),
            );
        }
        if let Some(targets) = &self.targets {
            l.strs(
                key!("rampart.waf.targets"),
                targets.iter().map(String::as_str),
            );
        }
        l.clean(key!("rampart.waf.body"), self.body);
        if self.truncated {
            l.raw(key!("rampart.waf.truncated"), "true");
        }
        l.clean(key!("rampart.waf.mode"), self.mode)
            .clean(key!("rampart.waf.uninspected"), self.uninspected)
            .clean(
                key!("rampart.waf.uninspected_action"),
                self.uninspected_action,
            );
    }
}

/// `server.address`: the request's host, else the address the client connected to.
#[derive(Debug, Clone, Copy)]
pub enum ServerAddr<'a> {
    Host(&'a str),
    Local(Option<IpAddr>),
}

impl Default for ServerAddr<'_> {
    fn default() -> Self {
        ServerAddr::Local(None)
    }
}

/// A point in time, written as an RFC 3339 UTC string with microseconds.
pub use rampart_ops::json_log::Timestamp;

/// The access log: the shared JSON-lines writer thread carrying [`AccessRecord`]s (and ready
/// JSON event lines for connection-level denials).
///
/// Lines are written on the request's thread ([`AccessRecord::write`], through `send_with`):
/// the writer thread only writes them, so its record type is unused.
pub type AccessLog = rampart_ops::json_log::JsonLog<()>;

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

    /// A blocking decision with a target that needs escaping.
    fn blocked() -> WafLog {
        WafLog {
            action: "block",
            score: Some(7),
            rule_ids: Some(vec![942100, 941100]),
            targets: Some(vec!["args:q".into(), "header:x-\"odd\"".into()]),
            truncated: true,
            mode: Some("block"),
            ..WafLog::default()
        }
    }

    #[test]
    fn line_is_json_with_every_field() {
        let waf = blocked();
        let mut extra = serde_json::Map::new();
        extra.insert("rampart.limit.policy".into(), "per_ip".into());
        let rec = AccessRecord {
            request_id: "id1",
            listener: "tls",
            client_address: Some("192.0.2.7".parse().unwrap()),
            client_port: Some(4711),
            peer_address: Some("2001:db8::1".parse().unwrap()),
            server_address: ServerAddr::Host("a.test"),
            method: "GET",
            scheme: "https",
            path: "/p\"q\\r\u{1}é",
            query: Some(Cow::Borrowed("a=1")),
            user_agent: Cow::Borrowed("curl/8"),
            status: 403,
            duration_ms: 1.25,
            upstream_address: Some("[2001:db8::2]:8443".parse().unwrap()),
            upstream_connect_ms: Some(f64::NAN),
            tls_version: Some("1.3"),
            waf: Some(&waf),
            extra: Some(&extra),
            ..Default::default()
        };
        let line = rec.line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["http.request.id"], "id1");
        assert_eq!(v["client.address"], "192.0.2.7");
        assert_eq!(v["client.port"], 4711);
        assert_eq!(v["network.peer.address"], "2001:db8::1");
        assert!(v["network.peer.port"].is_null());
        assert_eq!(v["server.address"], "a.test");
        assert_eq!(v["url.path"], "/p\"q\\r\u{1}é");
        assert_eq!(v["url.query"], "a=1");
        assert_eq!(v["http.response.status_code"], 403);
        assert_eq!(v["event.duration_ms"], 1.25);
        assert_eq!(v["upstream.address"], "[2001:db8::2]:8443");
        assert!(v["upstream.connect_ms"].is_null());
        assert!(v.get("upstream.response_ms").is_none());
        assert_eq!(v["tls.protocol.version"], "1.3");
        assert!(v.get("tls.cipher").is_none());
        assert_eq!(
            v["rampart.waf.rule_ids"],
            serde_json::json!([942100, 941100])
        );
        assert_eq!(v["rampart.waf.targets"][1], "header:x-\"odd\"");
        assert_eq!(v["rampart.waf.truncated"], true);
        assert_eq!(v["rampart.limit.policy"], "per_ip");
        let t = v["@timestamp"].as_str().unwrap();
        assert!(
            t.len() == 27 && t.as_bytes()[10] == b'T' && t.ends_with('Z'),
            "{t}"
        );
        // An empty record is still an object with every always-present field.
        let v: serde_json::Value = serde_json::from_str(&AccessRecord::default().line()).unwrap();
        assert_eq!(v["client.address"], "");
        assert_eq!(v["server.address"], "");
    }

    #[test]
    fn line_text_is_exact() {
        // The exact bytes of a line (the same as before keys were written in one copy and
        // clean values copied without a look).
        let waf = WafLog {
            body: Some("partial"),
            uninspected: Some("inspect_limit"),
            uninspected_action: Some("passed"),
            ..blocked()
        };
        let rec = AccessRecord {
            timestamp: Timestamp::at(
                std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_796_000_000_000_042),
            ),
            request_id: "0123456789abcdef0123456789abcdef",
            listener: "tls \"main\"",
            client_address: Some("192.0.2.7".parse().unwrap()),
            client_port: Some(4711),
            peer_address: Some("192.0.2.7".parse().unwrap()),
            peer_port: Some(4711),
            server_address: ServerAddr::Host("a.test"),
            method: "GET",
            scheme: "https",
            path: "/p",
            query: Some(Cow::Borrowed("a=1")),
            route: "app",
            protocol: "1.1",
            user_agent: Cow::Borrowed("curl/8"),
            status: 200,
            request_body_size: 0,
            response_body_size: 3,
            duration_ms: 0.412345,
            upstream_address: Some("127.0.0.1:8080".parse().unwrap()),
            upstream_connect_ms: Some(0.1 + 0.2),
            upstream_response_ms: Some(12.0),
            tls_version: Some("1.3"),
            tls_cipher: Some("TLS13_AES_128_GCM_SHA256"),
            tls_server_name: Some("a.test"),
            error: Some("ConnectTimedout"),
            waf: Some(&waf),
            extra: None,
        };
        assert_eq!(
            rec.line(),
            concat!(
                r#"{"@timestamp":"2026-11-30T00:53:20.000042Z","http.request.id":"0123456789abcdef0123456789abcdef","#,
                r#""rampart.listener":"tls \"main\"","client.address":"192.0.2.7","client.port":4711,"#,
                r#""network.peer.address":"192.0.2.7","network.peer.port":4711,"server.address":"a.test","#,
                r#""http.request.method":"GET","url.scheme":"https","url.path":"/p","url.query":"a=1","#,
                r#""http.route":"app","network.protocol.version":"1.1","user_agent.original":"curl/8","#,
                r#""http.response.status_code":200,"http.request.body.size":0,"http.response.body.size":3,"#,
                r#""event.duration_ms":0.412345,"upstream.address":"127.0.0.1:8080","#,
                r#""upstream.connect_ms":0.30000000000000004,"upstream.response_ms":12.0,"#,
                r#""tls.protocol.version":"1.3","tls.cipher":"TLS13_AES_128_GCM_SHA256","tls.server_name":"a.test","#,
                r#""error.type":"ConnectTimedout","rampart.waf.action":"block","rampart.waf.score":7,"#,
                r#""rampart.waf.rule_ids":[942100,941100],"rampart.waf.targets":["args:q","header:x-\"odd\""],"#,
                r#""rampart.waf.body":"partial","#,
                r#""rampart.waf.truncated":true,"rampart.waf.mode":"block","rampart.waf.uninspected":"inspect_limit","#,
                r#""rampart.waf.uninspected_action":"passed"}"#
            )
        );
    }

    #[test]
    fn cap_on_char_boundary() {
        assert_eq!(cap("héllo", 2), "h");
        assert_eq!(cap_cow(Cow::Owned("héllo".into()), 3), "hé");
    }
}
