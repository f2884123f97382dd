//! Framing and header parsing judged by what reaches the upstream: the real `rampart-proxy`
//! in front of the probe's recording upstream (raw TCP, every byte kept), raw request bytes
//! from the client. Each request is either refused (4xx, nothing forwarded, counted and logged
//! under its reason) or forwarded as one unambiguous request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use rampart_loadtest::probe::recorder::Recorder;
use rampart_loadtest::probe::wire::strict_requests;
use rampart_loadtest::probe::{cases, exchange, markdown, run_case, Baseline, Exchange, Verdict};
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
    /// The edge with one plain listener and catch-all routes to the recorder: `/` with the WAF
    /// in block mode (bodies read whole before forwarding), `/s/` with the WAF off (bodies
    /// streamed).
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
        ) + &route_table("streamed", r#"["*"]"#, "rec")
            + "path_prefix = \"/s/\"\n[routes.waf]\nmode = \"off\"\n";
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

/// The probe's cases (loadtest/src/probe/cases.rs: Transfer-Encoding and Content-Length forms,
/// chunk sizes and extensions, trailers, request lines, header fields, Host forms, pipelining,
/// Expect, hop-by-hop fields), each with its body read whole (`/probe`, WAF on) and streamed
/// (`/s/probe`, WAF off): refused with nothing forwarded, or forwarded as one unambiguous
/// request; valid ones forwarded with their body intact; a streamed body's fault after its
/// first chunk may cut an already forwarded head (the upstream connection then closes).
#[tokio::test]
async fn every_probe_case_is_refused_or_forwarded_unambiguously() {
    let p = Probe::start().await;
    let target = p.edge.port("plain").into_addr();
    let mut runs = Vec::new();
    let mut defects = Vec::new();
    for (mode, path) in [("buffered", "/probe"), ("streamed", "/s/probe")] {
        let base = Baseline::learn(target, &p.rec, path, WAIT).await;
        assert!(
            base.added.iter().any(|h| h == "x-forwarded-for"),
            "{base:?}"
        );
        let all = cases(path);
        let mut outcomes = Vec::new();
        for case in &all {
            let o = run_case(target, &p.rec, case, &base, WAIT).await;
            if o.verdict.is_defect() || matches!(o.verdict, Verdict::NoAnswer | Verdict::Closed) {
                defects.push(format!(
                    "{mode} / {} / {}: {} (answers {:?}, forwarded {:?})",
                    case.class,
                    case.name,
                    o.verdict.short(),
                    o.exchange.answers,
                    o.forwarded
                        .iter()
                        .map(|b| String::from_utf8_lossy(b))
                        .collect::<Vec<_>>()
                ));
            }
            outcomes.push(o);
        }
        runs.push((mode.to_string(), outcomes));
    }
    let all = cases("/probe");
    assert!(all.len() >= 150, "{} cases", all.len());
    if let Ok(out) = std::env::var("PROBE_MARKDOWN") {
        std::fs::write(out, markdown(&all, &runs)).unwrap();
    }
    assert!(
        defects.is_empty(),
        "{} defects:\n{}",
        defects.len(),
        defects.join("\n")
    );
}

/// Refusals the probe found unnamed or missing, each under its own reason: a target that is
/// not origin-form (forwarded as sent while routed and inspected as `/`), a field name that
/// reads as a framing or forwarding field with `_` taken for `-`, and Connection options
/// naming Host or a forwarding field the edge sets (refused by Pingora only after connecting
/// upstream, as `malformed_body`).
#[tokio::test]
async fn targets_names_and_connection_options_are_refused_under_their_reason() {
    let p = Probe::start().await;
    for target in ["probe", "mailto:a@probe.test"] {
        p.refused(&get(target, "a.test"), "malformed_target").await;
    }
    for (field, reason) in [
        ("Transfer_Encoding: chunked", "ambiguous_header_name"),
        ("content_length: 5", "ambiguous_header_name"),
        ("X_Forwarded_For: 203.0.113.9", "ambiguous_header_name"),
        ("X_REAL_IP: 203.0.113.9", "ambiguous_header_name"),
        (
            "Connection: close, X-Forwarded-For",
            "bad_connection_option",
        ),
        ("Connection: Host", "bad_connection_option"),
        ("Connection: x-forwarded-proto", "bad_connection_option"),
        ("Connection: \"a\"", "bad_connection_option"),
        ("Connection: a,b,c,d,e,f,g,h,i,j", "bad_connection_option"),
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{field}\r\n\r\n");
        p.refused(req.as_bytes(), reason).await;
    }
    // Neighbours that pass.
    for extra in ["X_Custom: 1", "Connection: keep-alive, X-Real-IP"] {
        let req = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{extra}\r\n\r\n");
        let (seen, up) = p.send(req.as_bytes()).await;
        assert_eq!(seen.answers.first().map(|a| a.status), Some(200), "{extra}");
        assert_eq!(strict_requests(&up.concat()).unwrap().len(), 1, "{extra}");
    }
}
