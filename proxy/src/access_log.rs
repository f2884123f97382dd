//! One JSON line per client request (S.N.5): the record, its redaction, and the writer (the
//! shared `rampart_ops::json_log` thread, so the request path never waits on I/O: records go
//! through a bounded queue and are dropped, and counted, when the writer falls behind).
//!
//! Never logged: Cookie, Authorization and Set-Cookie values; sensitive query values are
//! replaced by `REDACTED`.

use crate::metrics::Metrics;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

/// A field's key as it is written after the previous field: `,"name":` (a constant; the line's
/// first field, `@timestamp`, opens the object instead).
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}

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

/// One access log line, of borrowed fields, written by [`AccessRecord::write`] straight into
/// the log's per-thread buffer on the request's thread: no owned copies, no serializer, no
/// allocation. Field names follow
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
        let mut l = Line(out);
        l.0.extend_from_slice(b"{\"@timestamp\":");
        self.timestamp.push(l.0);
        l.clean(key!("http.request.id"), self.request_id);
        l.str(key!("rampart.listener"), self.listener);
        l.ip(key!("client.address"), self.client_address);
        if let Some(port) = self.client_port {
            l.uint(key!("client.port"), port.into());
        }
        l.ip(key!("network.peer.address"), self.peer_address);
        match self.peer_port {
            Some(port) => l.uint(key!("network.peer.port"), port.into()),
            None => l.raw(key!("network.peer.port"), "null"),
        }
        match self.server_address {
            ServerAddr::Host(host) => l.str(key!("server.address"), host),
            ServerAddr::Local(ip) => l.ip(key!("server.address"), ip),
        }
        l.clean(key!("http.request.method"), self.method);
        l.clean(key!("url.scheme"), self.scheme);
        l.str(key!("url.path"), self.path);
        l.opt_str(key!("url.query"), self.query.as_deref());
        l.str(key!("http.route"), self.route);
        l.clean(key!("network.protocol.version"), self.protocol);
        l.str(key!("user_agent.original"), &self.user_agent);
        l.uint(key!("http.response.status_code"), self.status.into());
        l.uint(
            key!("http.request.body.size"),
            self.request_body_size as u64,
        );
        l.uint(
            key!("http.response.body.size"),
            self.response_body_size as u64,
        );
        l.float(key!("event.duration_ms"), self.duration_ms);
        if let Some(addr) = self.upstream_address {
            l.key(key!("upstream.address"));
            l.0.push(b'"');
            push_socket_addr(l.0, addr);
            l.0.push(b'"');
        }
        if let Some(ms) = self.upstream_connect_ms {
            l.float(key!("upstream.connect_ms"), ms);
        }
        if let Some(ms) = self.upstream_response_ms {
            l.float(key!("upstream.response_ms"), ms);
        }
        l.opt_clean(key!("tls.protocol.version"), self.tls_version);
        l.opt_clean(key!("tls.cipher"), self.tls_cipher);
        l.opt_str(key!("tls.server_name"), self.tls_server_name);
        l.opt_str(key!("error.type"), self.error);
        if let Some(waf) = self.waf {
            waf.push(&mut l);
        }
        for (key, value) in self.extra.into_iter().flatten() {
            // Names chosen by the stages: escaped all the same.
            l.0.push(b',');
            push_json_str(l.0, key);
            l.0.push(b':');
            // Writing into a Vec cannot fail; a `Value` always serialises.
            let _ = serde_json::to_writer(&mut *l.0, value);
        }
        l.0.push(b'}');
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

/// A JSON object being written. Keys are the constants above, each written with its comma,
/// quotes and colon in one copy (checked in debug builds to hold no character JSON escapes:
/// every test line goes through it); string values are copied as they are unless they hold a
/// byte JSON must escape (`"`, `\`, control bytes), which `serde_json` then writes.
struct Line<'b>(&'b mut Vec<u8>);

impl Line<'_> {
    /// `key`: `,"name":` from [`key!`].
    fn key(&mut self, key: &str) {
        debug_assert!(
            key.len() > 4
                && key.starts_with(",\"")
                && key.ends_with("\":")
                && key[2..key.len() - 2]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@')),
            "access log key {key:?} is not a plain `,\"name\":`"
        );
        debug_assert!(!self.0.is_empty(), "the line opens with @timestamp");
        self.0.extend_from_slice(key.as_bytes());
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.0.extend_from_slice(json.as_bytes());
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_str(self.0, value);
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    /// A string value known to need no escaping (the edge's own names and digits, a parsed
    /// method: checked in debug builds), copied without looking at its bytes.
    fn clean(&mut self, key: &str, value: &str) {
        debug_assert!(!needs_escape(value.as_bytes()), "{value:?} needs escaping");
        self.key(key);
        self.0.push(b'"');
        self.0.extend_from_slice(value.as_bytes());
        self.0.push(b'"');
    }

    fn opt_clean(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.clean(key, v);
        }
    }

    fn uint(&mut self, key: &str, value: u64) {
        self.raw(key, itoa::Buffer::new().format(value));
    }

    fn float(&mut self, key: &str, value: f64) {
        self.key(key);
        push_float(self.0, value);
    }

    /// An address as a string, `""` when unknown.
    fn ip(&mut self, key: &str, ip: Option<IpAddr>) {
        self.key(key);
        self.0.push(b'"');
        if let Some(ip) = ip {
            push_ip(self.0, ip);
        }
        self.0.push(b'"');
    }
}

/// Appends a JSON number as `ryu`'s shortest round-trip text writes it (`null` when not
/// finite). A millisecond figure measured in nanoseconds (`1.25`, `0.412345`: at most six
/// decimals, 15 significant digits) is written from its integer digits; ryu runs only for the
/// rest (about one duration in four: a value a rounding step away from its nanosecond decimal,
/// whose shortest text has 16-17 digits).
fn push_float(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
    } else if !push_micro_decimal(out, value) {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    }
}

/// Writes `value` when it is the double nearest a decimal of six places at most, within
/// `[1e-5, 1e9)`; `false` (nothing written) otherwise.
///
/// Why this is ryu's text: such a decimal has at most 15 significant digits, and two different
/// decimals of at most 15 significant digits never round to the same double (DBL_DIG is 15), so
/// it is the only decimal that short which reads back as `value`, hence the shortest one ryu
/// finds. In this range ryu writes it in plain notation, `int.frac` (`0.frac` below 1, `.0`
/// for a whole number).
fn push_micro_decimal(out: &mut Vec<u8>, value: f64) -> bool {
    if !(1e-5..1e9).contains(&value) {
        return false;
    }
    // `value * 1e6` is within a quarter of the integer `m` when `value` is `m / 1e6` rounded
    // (m < 2^53: the division below is exact but for its one correct rounding).
    let micros = (value * 1e6).round();
    if micros / 1e6 != value {
        return false;
    }
    let micros = micros as u64;
    out.extend_from_slice(itoa::Buffer::new().format(micros / 1_000_000).as_bytes());
    out.push(b'.');
    let mut frac = (micros % 1_000_000) as u32;
    if frac == 0 {
        out.push(b'0');
        return true;
    }
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let len = 6 - digits.iter().rev().take_while(|&&d| d == b'0').count();
    out.extend_from_slice(&digits[..len]);
    true
}

/// Appends the address as `Display` writes it; an IPv4 address (the usual case) without the
/// formatting machinery.
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Written on the stack, appended once.
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.extend_from_slice(&text[..len]);
        }
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// Whether JSON must escape a byte of `text` (`"`, `\\`, a control byte below 0x20): eight bytes
/// at a time (the classic "has a byte less than n / equal to c" word tests, exact for whether
/// any byte is one), the tail one by one.
fn needs_escape(text: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut words = text.chunks_exact(8);
    for word in &mut words {
        let Ok(bytes) = <[u8; 8]>::try_from(word) else {
            return true;
        };
        let x = u64::from_le_bytes(bytes);
        if below(x, 0x20) | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')))
            != 0
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// `value` as a JSON string.
fn push_json_str(out: &mut Vec<u8>, value: &str) {
    if !needs_escape(value.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // A `str` always serialises, and writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

/// `ip:port`, `[ip6]:port`.
fn push_socket_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    if addr.is_ipv6() {
        out.push(b'[');
        push_ip(out, addr.ip());
        out.push(b']');
    } else {
        push_ip(out, addr.ip());
    }
    out.push(b':');
    out.extend_from_slice(itoa::Buffer::new().format(addr.port()).as_bytes());
}

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
    fn push(&self, l: &mut Line<'_>) {
        l.clean(key!("rampart.waf.action"), self.action);
        if let Some(score) = self.score {
            l.uint(key!("rampart.waf.score"), score.into());
        }
        if let Some(ids) = &self.rule_ids {
            l.key(key!("rampart.waf.rule_ids"));
            l.0.push(b'[');
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    l.0.push(b',');
                }
                l.0.extend_from_slice(itoa::Buffer::new().format(*id).as_bytes());
            }
            l.0.push(b']');
        }
        if let Some(targets) = &self.targets {
            l.key(key!("rampart.waf.targets"));
            l.0.push(b'[');
            for (i, t) in targets.iter().enumerate() {
                if i > 0 {
                    l.0.push(b',');
                }
                push_json_str(l.0, t);
            }
            l.0.push(b']');
        }
        l.opt_clean(key!("rampart.waf.body"), self.body);
        if self.truncated {
            l.raw(key!("rampart.waf.truncated"), "true");
        }
        l.opt_clean(key!("rampart.waf.mode"), self.mode);
        l.opt_clean(key!("rampart.waf.uninspected"), self.uninspected);
        l.opt_clean(
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

/// A point in time, written as an RFC 3339 UTC string with microseconds
/// (`"2026-12-06T12:47:00.123456Z"`). The date and time of day are formatted once per second
/// per thread; each line only writes its microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp(pub SystemTime);

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp(SystemTime::now())
    }
}

impl Timestamp {
    /// Appends the quoted timestamp (`rampart_ops::json_log::Timestamp`: the date and time of
    /// day formatted once per second per thread, each line writing only its microseconds).
    fn push(&self, out: &mut Vec<u8>) {
        let mut text = [0; 27];
        rampart_ops::json_log::Timestamp::at(self.0).write(&mut text);
        out.push(b'"');
        out.extend_from_slice(&text);
        out.push(b'"');
    }
}

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
            timestamp: Timestamp(
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
    fn timestamps_are_rfc3339_and_the_cached_second_moves() {
        let text = |micros| {
            let mut out = Vec::new();
            Timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros))
                .push(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            text(1_796_000_000_000_042),
            "\"2026-11-30T00:53:20.000042Z\""
        );
        assert_eq!(
            text(1_796_000_001_500_000),
            "\"2026-11-30T00:53:21.500000Z\""
        );
    }

    #[test]
    fn floats_are_ryus_text() {
        let ryu_text = |v: f64| {
            if v.is_finite() {
                ryu::Buffer::new().format_finite(v).to_string()
            } else {
                "null".to_string()
            }
        };
        let check = |v: f64| {
            let mut out = Vec::new();
            push_float(&mut out, v);
            assert_eq!(out, ryu_text(v).into_bytes(), "{v:e} ({:#x})", v.to_bits());
        };
        // Durations as the edge computes them, every nanosecond count below 1 ms and spread
        // samples up to 20 minutes, with the seconds part both zero and not.
        let mut fast = 0u64;
        let mut all = 0u64;
        for nanos in (0..1_000_000u64).chain((0..500_000u64).map(|i| i * 2_400_011 + 7)) {
            let v = std::time::Duration::from_nanos(nanos).as_secs_f64() * 1000.0;
            check(v);
            all += 1;
            fast += u64::from(push_micro_decimal(&mut Vec::new(), v));
        }
        // The shortcut takes most of them (the rest go to ryu).
        assert!(fast * 3 > all * 2, "{fast} of {all}");
        // Bit patterns around the range's ends and doubles of every magnitude.
        for edge in [
            1e-5,
            1e9,
            1.0,
            0.1,
            1e-6,
            999_999_999.999_999,
            1e-300,
            1e300,
        ] {
            let bits = f64::to_bits(edge);
            for d in 0..200u64 {
                check(f64::from_bits(bits + d));
                check(f64::from_bits(bits - d));
                check(-f64::from_bits(bits + d));
            }
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..300_000 {
            // xorshift: arbitrary bit patterns, and decimals of up to six places.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(f64::from_bits(x));
            check((x % 1_000_000_000_000_000) as f64 / 1e6);
            check((x % 100_000_000) as f64 / 1e6);
            check((x % 1000) as f64 / 1e3);
        }
        for v in [
            0.0,
            -0.0,
            1.25,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
        ] {
            check(v);
        }
    }

    #[test]
    fn ip_text_is_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "192.0.2.9",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = b"x".to_vec();
            push_ip(&mut out, ip);
            assert_eq!(out, format!("x{ip}").into_bytes());
        }
    }

    #[test]
    fn escape_check_is_the_byte_rule() {
        let naive = |t: &[u8]| t.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        // Every byte value at every position of texts of 0..=19 bytes around it, on a plain
        // and on a UTF-8 background (high bytes next to the probe must not hide or fake one).
        for background in [b'a', 0xc3] {
            for len in 0..20 {
                for at in 0..len {
                    for probe in 0..=255u8 {
                        let mut text = vec![background; len];
                        text[at] = probe;
                        assert_eq!(needs_escape(&text), naive(&text), "{text:?}");
                    }
                }
            }
        }
        assert!(!needs_escape(b"/index.html?q=1&r=\xc3\xa9"));
        assert!(needs_escape(b"/index.html?q=1&r=\xc3\xa9\"") && needs_escape(b"/a\tb"));
    }

    #[test]
    fn cap_on_char_boundary() {
        assert_eq!(cap("héllo", 2), "h");
        assert_eq!(cap_cow(Cow::Owned("héllo".into()), 3), "hé");
    }
}
