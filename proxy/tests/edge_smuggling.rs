//! Framing and header parsing judged by what reaches the upstream: the real `rampart-proxy`
//! in front of the probe's recording upstream (raw TCP, every byte kept), raw request bytes
//! from the client. Each request is either refused (4xx, nothing forwarded, counted and logged
//! under its reason) or forwarded as one unambiguous request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use rampart_loadtest::probe::recorder::Recorder;
use rampart_loadtest::probe::wire::strict_requests;
use rampart_loadtest::probe::{exchange, Exchange};
use std::time::Duration;

/// How long the client and the recorder wait for a byte before calling it a stall.
const WAIT: Duration = Duration::from_secs(5);

struct Probe {
    edge: Edge,
    rec: Recorder,
    /// Requests sent so far (each gets one access-log line).
    sent: std::cell::Cell<usize>,
}

impl Probe {
    /// The edge with one plain listener and a catch-all route (WAF in block mode) to the
    /// recorder.
    async fn start() -> Probe {
        let rec = Recorder::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let config = format!(
            "{head}{limits}[[listeners]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\n\
             insecure_plaintext = true\n{route}",
            head = config_head(""),
            limits = GENEROUS_LIMITS,
            route = route_to("all", "rec", &rec.addr().to_string(), r#"["*"]"#),
        );
        let edge = Edge::start(&config, tempfile::tempdir().unwrap());
        Probe {
            edge,
            rec,
            sent: Default::default(),
        }
    }

    /// Sends `bytes`; returns the client's answers and every upstream connection's bytes.
    async fn send(&self, bytes: &[u8]) -> (Exchange, Vec<Vec<u8>>) {
        let mark = self.rec.mark();
        self.sent.set(self.sent.get() + 1);
        let seen = exchange(self.edge.port("plain").into_addr(), bytes, 1, WAIT).await;
        (seen, self.rec.since(mark, WAIT).await)
    }

    /// `bytes` are refused with 400 and nothing reaches the upstream; the access log names
    /// `reason`.
    async fn refused(&self, bytes: &[u8], reason: &str) {
        let (seen, up) = self.send(bytes).await;
        let text = String::from_utf8_lossy(bytes);
        assert_eq!(seen.answers.first().map(|a| a.status), Some(400), "{text}");
        assert!(up.iter().all(Vec::is_empty), "{text}: forwarded {up:?}");
        let lines = self.edge.access_lines(self.sent.get());
        let last = &lines[self.sent.get() - 1];
        assert_eq!(last["rampart.denial.reason"], reason, "{text}: {last}");
    }
}

trait IntoAddr {
    fn into_addr(self) -> std::net::SocketAddr;
}

impl IntoAddr for u16 {
    fn into_addr(self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self))
    }
}

fn get(target: &str, host: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// An absolute-form target and the Host header must agree: byte for byte on HTTP/1 (Pingora's
/// rule, and what RFC 9112 §3.2.2 asks of a client), so a different port, case or trailing dot
/// is `host_mismatch`; when accepted, the upstream gets one Host equal to the authority.
#[tokio::test]
async fn absolute_form_and_host_disagreeing_are_host_mismatch_and_never_forwarded() {
    let p = Probe::start().await;
    for (target, host) in [
        ("http://a.test:8443/", "A.test.:1"),
        ("http://a.test:8443/", "a.test"),
        ("http://a.test:8443/", "a.test:1"),
        ("http://a.test/", "a.test:80"),
        ("http://a.test/", "A.test"),
        ("https://a.test/", "a.test:443"),
        ("http://b.test/", "a.test"),
    ] {
        p.refused(&get(target, host), "host_mismatch").await;
    }
    p.refused(&get("http://u@a.test/", "a.test"), "malformed_host")
        .await;
    p.refused(&get("ftp://a.test/", "a.test"), "malformed_target")
        .await;
    p.refused(&get("http:/\\a.test/", "a.test"), "malformed_target")
        .await;
    p.refused(
        b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n",
        "multiple_host",
    )
    .await;
    for (target, host) in [
        ("http://a.test:8443/x?y", "a.test:8443"),
        ("http://a.test/", "a.test"),
        ("https://a.test:443/", "a.test:443"),
        ("http://[::1]:8080/", "[::1]:8080"),
    ] {
        let (seen, up) = p.send(&get(target, host)).await;
        assert_eq!(
            seen.answers.first().map(|a| a.status),
            Some(200),
            "{target}"
        );
        let reqs = strict_requests(&up.concat()).unwrap();
        assert_eq!(reqs.len(), 1, "{target}");
        assert_eq!(reqs[0].count("host"), 1, "{target}");
        let authority = target.split('/').nth(2).unwrap();
        assert_eq!(reqs[0].one("host"), Some(authority.as_bytes()), "{target}");
        assert_eq!(reqs[0].target, target);
    }
}

/// A Host header that is not one well-formed authority is `malformed_host`: a port out of
/// range or not digits, brackets around something other than an IPv6 address, text after them.
#[tokio::test]
async fn malformed_host_authorities_are_refused() {
    let p = Probe::start().await;
    for host in [
        "a.test:99999",
        "a.test:65536",
        "a.test:8x",
        "a.test:80:81",
        "[::1]junk",
        "[a.test]",
        "[::1",
        "::1",
        "u@a.test",
    ] {
        p.refused(&get("/", host), "malformed_host").await;
    }
    for host in ["a.test:", "a.test:65535", "[::1]", "[::1]:8080", "A.Test."] {
        let (seen, up) = p.send(&get("/", host)).await;
        assert_eq!(seen.answers.first().map(|a| a.status), Some(200), "{host}");
        let reqs = strict_requests(&up.concat()).unwrap();
        assert_eq!(reqs[0].one("host"), Some(host.as_bytes()), "{host}");
    }
}
