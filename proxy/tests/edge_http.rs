//! The real binary in front of a test upstream: headers, cookies, error pages, forwarding,
//! access log, metrics, malformed requests, redirects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

const LEAKY: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-runtime",
    "x-drupal-cache",
];

fn assert_hardened(r: &Resp, https: bool) {
    for h in LEAKY {
        assert!(r.header(h).is_none(), "{h} leaked in {r:?}");
    }
    assert!(
        !format!("{r:?}").contains("Pingora"),
        "Pingora leaked: {r:?}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        r.header("referrer-policy"),
        Some("strict-origin-when-cross-origin")
    );
    assert_eq!(r.header("cross-origin-opener-policy"), Some("same-origin"));
    assert_eq!(
        r.header("cross-origin-resource-policy"),
        Some("same-origin")
    );
    assert!(r.header("permissions-policy").is_some());
    assert!(r.header("x-request-id").is_some_and(|v| v.len() == 32));
    if https {
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=63072000; includeSubDomains")
        );
    } else {
        assert!(r.header("strict-transport-security").is_none());
    }
}

/// The edge certificate's names.
const NAMES: &[&str] = &["app.test", "*.app.test", "dead.test", "other.test"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_response_is_hardened_and_forwarding_replaced() {
    let (upstream, pki, dir, b) = bench("t1", NAMES).await;
    let edge = Edge::start(&b.config(upstream, ""), dir);

    let r = edge.send(&pki.ca_pem, "app.test", &get("app.test", "/?token=s3cr3t&q=1", "X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nCookie: sid=cookiesecret\r\nAuthorization: Bearer authsecret\r\nUser-Agent: tester\r\n")).await;
    assert_eq!(r.status, 200);
    assert_hardened(&r, true);
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    // The upstream saw our forwarding headers, not the client's.
    let seen = r.body.to_ascii_lowercase();
    assert!(seen.contains("x-forwarded-for: 127.0.0.1\n"), "{seen}");
    assert!(seen.contains("x-real-ip: 127.0.0.1\n"), "{seen}");
    assert!(seen.contains("x-forwarded-proto: https\n"), "{seen}");
    assert!(
        seen.contains("forwarded: for=127.0.0.1;proto=https;host=\"app.test\"\n"),
        "{seen}"
    );
    assert!(!seen.contains("6.6.6.6"), "{seen}");
    let id = r.header("x-request-id").unwrap();
    assert!(
        seen.contains(&format!("x-request-id: {id}")),
        "request id sent upstream"
    );
    // Cookie hardened.
    assert_eq!(
        r.all("set-cookie"),
        vec!["session=abc; Path=/; Secure; HttpOnly; SameSite=Lax"]
    );

    // Access log: fields present, secrets absent.
    let lines = edge.access_lines(1);
    let l = lines
        .iter()
        .find(|l| l["http.request.id"] == id)
        .expect("log line for request");
    for f in [
        "@timestamp",
        "client.address",
        "client.port",
        "network.peer.address",
        "server.address",
        "http.request.method",
        "url.path",
        "http.route",
        "network.protocol.version",
        "user_agent.original",
        "http.response.status_code",
        "http.request.body.size",
        "http.response.body.size",
        "event.duration_ms",
        "upstream.address",
        "tls.protocol.version",
        "tls.cipher",
        "tls.server_name",
    ] {
        assert!(l.get(f).is_some(), "missing {f} in {l}");
    }
    assert_eq!(l["url.query"], "token=REDACTED&q=1");
    assert_eq!(l["tls.server_name"], "app.test");
    assert_eq!(l["http.route"], "app");
    assert_eq!(l["http.response.status_code"], 200);
    let text = std::fs::read_to_string(edge.path("access.log")).unwrap();
    for secret in ["s3cr3t", "cookiesecret", "authsecret", "abc;"] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the access log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_csp_kept_cookies_rules() {
    let (upstream, pki, dir, b) = bench("t2", NAMES).await;
    let edge = Edge::start(&b.config(upstream, ""), dir);
    let r = edge
        .send(
            &pki.ca_pem,
            "app.test",
            &get("app.test", "/csp/cookies", ""),
        )
        .await;
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'self' upstream.example")
    );
    let cookies = r.all("set-cookie");
    assert!(
        cookies.contains(&"__Host-id=1; Path=/; Secure; HttpOnly; SameSite=Lax"),
        "{cookies:?}"
    );
    assert!(
        cookies.contains(&"csrf=tok; Path=/; Secure; SameSite=Lax"),
        "HttpOnly exception: {cookies:?}"
    );
    assert!(
        cookies.contains(&"strictone=1; SameSite=Strict; Secure; HttpOnly"),
        "{cookies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_error_pages_are_hardened() {
    let (upstream, pki, dir, b) = bench("t3", NAMES).await;
    let edge = Edge::start(&b.config(upstream, ""), dir);

    // Every answer of the edge's own is hardened: (SNI, request, acceptable statuses).
    let cases: [(&str, String, &[u16]); 6] = [
        // No route.
        ("other.test", get("other.test", "/", ""), &[404]),
        // Unreachable upstream, answered fast (checked below).
        ("dead.test", get("dead.test", "/", ""), &[502, 503]),
        // A Host header that is not a host.
        ("app.test", "GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n".into(), &[400]),
        // Two Host headers; never forwarded.
        (
            "app.test",
            "GET / HTTP/1.1\r\nHost: app.test\r\nHost: evil.test\r\nConnection: close\r\n\r\n".into(),
            &[400],
        ),
        // Conflicting Content-Length values (smuggling material). (CL + TE is handled by
        // Pingora per RFC 9112: CL dropped, keep-alive off.)
        (
            "app.test",
            "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello"
                .into(),
            &[400],
        ),
        // CONNECT: 405 from the edge.
        (
            "app.test",
            "CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n".into(),
            &[405],
        ),
    ];
    for (sni, request, statuses) in cases {
        let t = std::time::Instant::now();
        let r = edge.send(&pki.ca_pem, sni, &request).await;
        assert!(statuses.contains(&r.status), "{request:?}: {r:?}");
        if sni == "dead.test" {
            assert!(t.elapsed() < std::time::Duration::from_secs(2));
        }
        assert_hardened(&r, true);
    }
    // Plain listener: redirect to https, hardened, no HSTS.
    let r = raw(edge.port("http"), &get("app.test", "/a?b=1", "")).await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://app.test/a?b=1"),
        "redirect_https_port defaults to 443, left out of the URL"
    );
    assert_hardened(&r, false);

    // Metrics moved: 4xx and 5xx counted, upstream error recorded.
    let m = admin(edge.admin(), "/metrics").await.body;
    assert!(
        m.contains("rampart_requests_total{route=\"\",status_class=\"4xx\"}"),
        "{m}"
    );
    assert!(
        m.contains("rampart_requests_total{route=\"dead\",status_class=\"5xx\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("rampart_upstream_errors_total{kind=\"connectrefused\",upstream=\"dead\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("rampart_tls_handshakes_total{listener=\"https\",version=\"1.3\"}"),
        "{m}"
    );
    assert!(m.contains("rampart_request_duration_seconds_bucket"), "{m}");
    assert_eq!(admin(edge.admin(), "/healthz").await.status, 200);
    assert_eq!(admin(edge.admin(), "/readyz").await.status, 200);
    let log = edge.access_lines(7);
    assert_eq!(log.len(), 7, "{log:?}");
    assert!(
        log.iter()
            .all(|l| l.get("upstream.address").is_none() || l["http.route"] == "dead"),
        "refused requests never reach an upstream: {log:?}"
    );
    assert!(log.iter().any(|l| l["rampart.denial.reason"] == "no_route"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_request_gets_400_without_pingora_banner() {
    let (upstream, pki, dir, b) = bench("t4", NAMES).await;
    let edge = Edge::start(&b.config(upstream, ""), dir);
    let r = edge
        .send(
            &pki.ca_pem,
            "app.test",
            "GET / HTTP/1.1\r\nHost: app.test\r\nBad Header\r\n\r\n",
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.header("server").is_none(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_via_alpn() {
    let (upstream, pki, dir, b) = bench("t5", NAMES).await;
    let edge = Edge::start(&b.config(upstream, ""), dir);
    let cfg = client_config(
        &pki.ca_pem,
        &[&rustls::version::TLS13],
        &[b"h2", b"http/1.1"],
    );
    let s = handshake(edge.port("https"), "app.test", cfg)
        .await
        .unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_endpoint_is_retried_then_ejected() {
    let (upstream, pki, dir, b) = bench("t6", NAMES).await;
    let refused = RefusedPort::new();
    let dead = refused.port;
    let config = b.config(upstream, "").replace(
        &format!("endpoints = [\"{upstream}\"]"),
        &format!("endpoints = [\"127.0.0.1:{dead}\", \"{upstream}\"]\nhealth = {{ max_failures = 1, eject_seconds = 60 }}"),
    );
    let edge = Edge::start(&config, dir);
    for _ in 0..6 {
        let r = edge
            .send(&pki.ca_pem, "app.test", &get("app.test", "/", ""))
            .await;
        assert_eq!(
            r.status, 200,
            "a dead endpoint must not fail requests while another is up"
        );
    }
    let m = admin(edge.admin(), "/metrics").await.body;
    let ep = format!(
        "rampart_upstream_ejections_total{{endpoint=\"127.0.0.1:{dead}\",upstream=\"app\"}} 1"
    );
    assert!(m.contains(&ep), "{m}");
    // Ejected: no further connect attempts to it.
    assert!(
        m.contains("rampart_upstream_errors_total{kind=\"connectrefused\",upstream=\"app\"} 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_request_end_to_end_with_curl() {
    let (upstream, pki, dir, b) = bench("t7", NAMES).await;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let edge = Edge::start(&b.config(upstream, ""), dir);
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--http2", "--cacert"])
        .arg(&ca)
        .args([
            "--resolve",
            &format!("app.test:{}:127.0.0.1", edge.port("https")),
            &format!("https://app.test:{}/", edge.port("https")),
        ])
        .output()
        .await
        .expect("curl (installed by scripts/ensure-deps.sh)");
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/2 200"), "{head}");
    assert!(
        head.contains("strict-transport-security: max-age=63072000"),
        "{head}"
    );
    assert!(
        !head.contains("\nserver:") && !head.contains("x-powered-by"),
        "{head}"
    );
    assert!(
        head.contains("set-cookie: session=abc; path=/; secure; httponly; samesite=lax"),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_plaintext_listener_proxies_without_hsts() {
    let (upstream, _, dir, b) = bench("t8", NAMES).await;
    let config = b.config(upstream, "").replacen(
        "[[upstreams]]",
        "[[listeners]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\ninsecure_plaintext = true\n\n[[upstreams]]",
        1,
    );
    let edge = Edge::start(&config, dir);
    edge.wait_stderr("warning: listener `plain` serves plain HTTP", 1);
    let r = raw(edge.port("plain"), &get("app.test", "/", "")).await;
    assert_eq!(r.status, 200);
    assert_hardened(&r, false);
    assert!(
        r.body
            .to_ascii_lowercase()
            .contains("x-forwarded-proto: http\n"),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_connections_gauge_follows_connections() {
    let (upstream, pki, dir, b) = bench("t9", NAMES).await;
    let edge = Edge::start(&b.config(upstream, ""), dir);
    let gauge = |m: &str| -> Option<String> {
        m.lines()
            .find(|l| l.starts_with("rampart_active_connections{listener=\"https\"}"))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    let cfg = client_config(&pki.ca_pem, &[&rustls::version::TLS13], &[]);
    let held = handshake(edge.port("https"), "app.test", cfg)
        .await
        .unwrap();
    let mut seen_one = false;
    for _ in 0..100 {
        if gauge(&admin(edge.admin(), "/metrics").await.body).as_deref() == Some("1") {
            seen_one = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen_one, "open connection not counted");
    drop(held);
    let mut back_to_zero = false;
    for _ in 0..100 {
        if gauge(&admin(edge.admin(), "/metrics").await.body).as_deref() == Some("0") {
            back_to_zero = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(back_to_zero, "closed connection still counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_forwarding_is_believed() {
    let (upstream, pki, dir, b) = bench("t10", NAMES).await;
    let config = b.config(upstream, "").replace(
        "trusted_proxies = [\"10.0.0.0/8\"]",
        "trusted_proxies = [\"127.0.0.1/32\"]",
    );
    let edge = Edge::start(&config, dir);
    let r = edge.send(&pki.ca_pem, "app.test", &get("app.test", "/", "X-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\nX-Request-Id: lb-1234\r\n")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("lb-1234"));
    let seen = r.body.to_ascii_lowercase();
    assert!(
        seen.contains("x-forwarded-for: 198.51.100.7, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(seen.contains("x-real-ip: 198.51.100.7\n"), "{seen}");
    let log = edge.access_lines(1);
    assert_eq!(log[0]["client.address"], "198.51.100.7");
    assert_eq!(log[0]["network.peer.address"], "127.0.0.1");
    assert!(
        log[0].get("client.port").is_none(),
        "the client's port is unknown behind a proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_gets_hardened_504() {
    let (upstream, pki, dir, b) = bench("t11", NAMES).await;
    let config = b.config(upstream, "").replacen(
        "connect_timeout_ms = 500",
        "connect_timeout_ms = 500\nread_timeout_ms = 200",
        1,
    );
    let edge = Edge::start(&config, dir);
    let r = edge
        .send(&pki.ca_pem, "app.test", &get("app.test", "/slow", ""))
        .await;
    assert_eq!(r.status, 504);
    assert_hardened(&r, true);
    let m = admin(edge.admin(), "/metrics").await.body;
    assert!(
        m.contains("rampart_upstream_errors_total{kind=\"readtimedout\",upstream=\"app\"} 1"),
        "{m}"
    );
}

/// A ClientHello whose SNI is an IP address (openssl sends one; rustls clients do not): rustls
/// ignores the name and warns; the edge counts it and logs one summary line, not one per client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_address_sni_is_counted_and_logged_once() {
    let (upstream, _, dir, b) = bench("ipsni", NAMES).await;
    let edge = Edge::start(&b.config(upstream, ""), dir);
    let series = "rampart_tls_client_hello_warnings_total{kind=\"ip_address_sni\"}";
    for _ in 0..3 {
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            tokio::process::Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &format!("127.0.0.1:{}", edge.port("https")),
                ])
                .args(["-servername", "127.0.0.1", "-brief"])
                .stdin(std::process::Stdio::null())
                .output(),
        )
        .await
        .expect("openssl s_client hung")
        .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("CONNECTION ESTABLISHED"), "{text}");
    }
    let metrics = admin(edge.admin(), "/metrics").await.body;
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .map(|v| v.trim().to_string());
    assert_eq!(count.as_deref(), Some("3"), "{metrics}");
    edge.wait_stderr("TLS clients sent an unusable SNI", 1);
    let stderr = edge.stderr.lock().unwrap().clone();
    assert!(
        !stderr.contains("Illegal SNI"),
        "rustls warning on stderr:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("TLS clients sent an unusable SNI").count(),
        1,
        "{stderr}"
    );
}

/// The request head the upstream receives, byte for byte but the request id: the request line,
/// the client's fields in the order sent with their names in lower case (Pingora's title-cased
/// few, `Host` and `Content-Length`, in title case even when the client sent them in lower
/// case); the fields the edge sets (`X-Forwarded-For`, `Forwarded`, `X-Request-Id` here) are
/// replaced in place, in lower case, and those the client did not send are appended.
/// (`Connection`, hop-by-hop, is removed by Pingora's swap-remove: the last field takes its
/// place.) Pins the bytes the speed levers on the request's head must not change (the case map
/// dropped before Pingora's upstream copy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_head_bytes_are_pinned() {
    let (upstream, pki, dir, b) = bench("t-head", NAMES).await;
    let edge = Edge::start(&b.config(upstream, ""), dir);
    let request = "GET /p/q?a=1&B=2 HTTP/1.1\r\nhost: app.test\r\nConnection: close\r\nUser-Agent: Tester/1.0\r\nX-Mixed-CASE: One\r\nx-mixed-case: Two\r\nACCEPT: */*\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=1.1.1.1\r\ncontent-length: 0\r\nX-Request-Id: abc\r\nCookie: a=b\r\n\r\n";
    let r = edge.send(&pki.ca_pem, "app.test", request).await;
    assert_eq!(r.status, 200);
    let id = r.header("x-request-id").unwrap();
    assert_ne!(id, "abc", "the client's request id is replaced");
    let expected = format!(
        "GET /p/q?a=1&B=2 HTTP/1.1\n\
         Host: app.test\n\
         cookie: a=b\n\
         user-agent: Tester/1.0\n\
         x-mixed-case: One\n\
         x-mixed-case: Two\n\
         accept: */*\n\
         x-forwarded-for: 127.0.0.1\n\
         forwarded: for=127.0.0.1;proto=https;host=\"app.test\"\n\
         Content-Length: 0\n\
         x-request-id: {id}\n\
         x-real-ip: 127.0.0.1\n\
         x-forwarded-proto: https\n\
         x-forwarded-host: app.test\n\n"
    );
    assert_eq!(r.body, expected);
}
