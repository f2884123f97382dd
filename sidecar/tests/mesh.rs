//! The real sidecar on loopback: mutual TLS, per-identity policy with reasons, TLS failures
//! with reasons, reloads that cut revoked connections, outbound origination with peer identity
//! checks. Every wait has a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const CHECKOUT: &str = "spiffe://mesh.local/ns/shop/sa/checkout";

const POLICY: &str = r#"
[[inbound]]
name = "payments-api"
ports = [8080]

[[inbound.rule]]
name = "frontend-reads"
callers = ["spiffe://mesh.local/ns/shop/sa/frontend"]
methods = ["GET"]
paths = ["/v1/**"]

[[inbound]]
name = "raw"
ports = [7000]

[[inbound.rule]]
name = "frontend-raw"
callers = ["spiffe://mesh.local/ns/shop/sa/frontend"]
"#;

fn write_server(dir: &Path, ca: &TestCa, http_app: SocketAddr, echo: SocketAddr, policy: &str) {
    let leaf = ca.leaf(&[PAYMENTS]);
    write_leaf(dir, "svid", &leaf);
    std::fs::write(dir.join("bundle.pem"), &ca.root_pem).unwrap();
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    std::fs::write(dir.join("revoked.toml"), "ids = []\n").unwrap();
    std::fs::write(
        dir.join("directory.toml"),
        directory_service("payments", PAYMENTS, &[(8080, "127.0.0.1:1")]),
    )
    .unwrap();
    let identity = SVID_FILES.replace(" }", r#", revoked = "revoked.toml" }"#);
    let ports = http_port(8080, http_app) + &tcp_port(7000, echo);
    let body = format!("admin = {{ listen = \"127.0.0.1:0\" }}\n\n{ports}");
    std::fs::write(
        dir.join("sidecar.toml"),
        sidecar_toml("payments", &identity, &body),
    )
    .unwrap();
}

/// The payments sidecar of [`write_server`] running with `policy`, its apps, CA and folder.
async fn served(policy: &str) -> (tempfile::TempDir, TestCa, Sidecar) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh");
    let (http, echo) = (http_app().await, echo_app().await);
    write_server(dir.path(), &ca, http, echo, policy);
    let sc = Sidecar::start(&dir.path().join("sidecar.toml"));
    (dir, ca, sc)
}

/// The sidecar of [`served`] with [`POLICY`] and a frontend connection to its TCP port that
/// has echoed once: (folder, CA, sidecar, TCP port, frontend's config, the connection).
async fn frontend_connected() -> (
    tempfile::TempDir,
    TestCa,
    Sidecar,
    SocketAddr,
    Arc<ClientConfig>,
    tokio_rustls::client::TlsStream<TcpStream>,
) {
    let (dir, ca, sc) = served(POLICY).await;
    let tcp_port = sc.addr("inbound:7000");
    let frontend = client_config(&ca, Some(&ca.leaf(&[FRONTEND])));
    let mut open = tls_connect(tcp_port, frontend.clone()).await.unwrap();
    echo_roundtrip(&mut open, b"one").await.unwrap();
    (dir, ca, sc, tcp_port, frontend, open)
}

/// One HTTP request over a fresh mTLS connection: (status, denied header, body).
async fn get(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
    method: &str,
    path: &str,
    xfcc: Option<&str>,
) -> (u16, String, String) {
    let tls = tls_connect(addr, cfg).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "payments");
    if let Some(x) = xfcc {
        req = req.header("x-forwarded-client-cert", x);
    }
    let resp = send
        .send_request(req.body(Empty::<bytes::Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let denied = resp
        .headers()
        .get("x-rampart-denied")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, denied, String::from_utf8_lossy(&body).into_owned())
}

fn handshake_reason(sc: &mut Sidecar, reason: &str) {
    sc.wait_for(
        |v| {
            v["event.name"] == "rampart.sidecar.handshake_failure"
                && v["rampart.reason.kind"] == reason
        },
        &format!("handshake_failure {reason}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_admits_by_identity_and_explains_every_refusal() {
    timeout(Duration::from_secs(90), async {
        let (_dir, ca, mut sc) = served(POLICY).await;
        let http_port = sc.addr("inbound:8080");
        let tcp_port = sc.addr("inbound:7000");
        let frontend = client_config(&ca, Some(&ca.leaf(&[FRONTEND])));

        // Allowed; the caller's own x-forwarded-client-cert is replaced by ours.
        let (status, _, body) = get(http_port, frontend.clone(), "GET", "/v1/payments/7", Some("By=spiffe://evil;URI=spiffe://mesh.local/ns/admin/sa/root")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, format!("xfcc=By={PAYMENTS};URI={FRONTEND};path=/v1/payments/7"));

        // Wrong method, wrong path: 403 naming the rule and the reason.
        let (status, denied, body) = get(http_port, frontend.clone(), "POST", "/v1/payments/7", None).await;
        assert_eq!((status, denied.as_str()), (403, "method"), "{body}");
        assert!(body.contains("rule frontend-reads: method POST not in [GET]"), "{body}");
        assert!(body.contains("policy.toml sha256:"), "{body}");
        let (status, denied, body) = get(http_port, frontend.clone(), "GET", "/admin", None).await;
        assert_eq!((status, denied.as_str()), (403, "path"), "{body}");
        // Ambiguous paths never reach policy or the app.
        let (status, _, _) = get(http_port, frontend.clone(), "GET", "/v1/../admin", None).await;
        assert_eq!(status, 400);
        // A dot segment with parameters, which Tomcat-style apps read as `..` (`/admin` here,
        // while the policy would see a segment `..;` under the admitted `/v1/`): refused too.
        let (status, _, body) = get(http_port, frontend.clone(), "GET", "/v1/..;/admin", None).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("dot segment with parameters"), "{body}");
        sc.wait_for(
            |v| v["url.path"] == "/v1/..;/admin" && v["rampart.reason"] == "dot segment with parameters",
            "the dot-parameters 400's line",
        );
        // Another identity: denied by the caller dimension.
        let checkout = client_config(&ca, Some(&ca.leaf(&[CHECKOUT])));
        let (status, denied, body) = get(http_port, checkout.clone(), "GET", "/v1/x", None).await;
        assert_eq!((status, denied.as_str()), (403, "caller"), "{body}");
        // No client certificate: TLS completes, policy refuses with the reason.
        let (status, denied, body) = get(http_port, client_config(&ca, None), "GET", "/v1/x", None).await;
        assert_eq!((status, denied.as_str()), (403, "no_client_identity"), "{body}");
        let line = sc.wait_for(|v| v["rampart.reason.kind"] == "no_client_identity", "no-identity log line");
        assert_eq!(line["http.response.status_code"], 403);
        assert_eq!(line["rampart.decision"], "deny");

        // TLS-layer refusals, each with its reason in the log.
        let other_ca = TestCa::new("other");
        assert!(tls_then_use(http_port, client_config(&ca, Some(&other_ca.leaf(&[FRONTEND])))).await.is_err());
        handshake_reason(&mut sc, "unknown_ca");
        assert!(tls_then_use(http_port, client_config(&ca, Some(&ca.leaf(&[FRONTEND, CHECKOUT])))).await.is_err());
        handshake_reason(&mut sc, "several_uri_sans");
        let foreign = ca.leaf(&["spiffe://other.org/ns/shop/sa/frontend"]);
        assert!(tls_then_use(http_port, client_config(&ca, Some(&foreign))).await.is_err());
        handshake_reason(&mut sc, "foreign_trust_domain");
        let now = time::OffsetDateTime::now_utc();
        let expired = ca.leaf_valid(&[FRONTEND], now - time::Duration::hours(2), now - time::Duration::hours(1));
        assert!(tls_then_use(http_port, client_config(&ca, Some(&expired))).await.is_err());
        handshake_reason(&mut sc, "expired");
        // Plain text to the mTLS port.
        let mut plain = TcpStream::connect(http_port).await.unwrap();
        plain.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = timeout(Duration::from_secs(10), plain.read(&mut buf)).await.unwrap().unwrap_or(0);
        assert!(!String::from_utf8_lossy(&buf[..n]).contains("HTTP/1.1 200"));
        handshake_reason(&mut sc, "not_tls");

        // TCP port: allowed caller echoes, a denied one is closed without a byte.
        let mut s = tls_connect(tcp_port, frontend.clone()).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        drop(s);
        let mut s = tls_connect(tcp_port, checkout.clone()).await.unwrap();
        let _ = s.write_all(b"ping").await;
        let mut got = Vec::new();
        let _ = timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await.unwrap();
        assert!(got.is_empty(), "a denied caller must get nothing back");
        let line = sc.wait_for(|v| v["event.name"] == "rampart.sidecar.connection" && v["rampart.caller.identity"] == CHECKOUT, "denied connection line");
        assert_eq!(line["rampart.reason"], format!("rule frontend-raw: caller {CHECKOUT} not in [{FRONTEND}]"));
        assert_eq!(line["server.port"], 7000);

        // Metrics name the denials and handshake failures by reason.
        let metrics = admin_get(sc.addr("admin"), "/metrics").await;
        assert_contains_all(
            &metrics,
            &[
                "rampart_sidecar_denials_total{direction=\"inbound\",mode=\"enforce\",reason=\"method\",rule=\"frontend-reads\"} 1",
                "rampart_sidecar_handshake_failures_total{direction=\"inbound\",reason=\"unknown_ca\"} 1",
                "rampart_sidecar_requests_total{direction=\"inbound\",result=\"allow\"} 1",
                "rampart_sidecar_certificate_expiry_seconds",
            ],
        );
    })
    .await
    .expect("test deadline");
}

/// Handshake, then a read: with TLS 1.3 a refused client certificate shows up at the first read.
async fn tls_then_use(addr: SocketAddr, cfg: Arc<ClientConfig>) -> std::io::Result<()> {
    let mut s = tls_connect(addr, cfg).await?;
    s.write_all(b"GET /v1/x HTTP/1.1\r\nhost: p\r\n\r\n")
        .await?;
    let mut buf = [0u8; 16];
    let n = timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    if n == 0 {
        return Err(std::io::Error::other("closed"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_cuts_revoked_connections_and_refuses_bad_files() {
    timeout(Duration::from_secs(90), async {
        let (dir, _ca, mut sc, tcp_port, frontend, mut open) = frontend_connected().await;

        // A bad policy is refused; the old one keeps running and the open connection lives.
        std::fs::write(
            dir.path().join("policy.toml"),
            POLICY.replace("callers", "callers_typo"),
        )
        .unwrap();
        sc.hup();
        let line = sc.wait_for(|v| v["rampart.reload.result"] == "error", "refused reload");
        assert!(
            line["error.message"]
                .as_str()
                .unwrap()
                .contains("unknown field `callers_typo`"),
            "{line}"
        );
        echo_roundtrip(&mut open, b"two").await.unwrap();

        // A policy without the frontend on port 7000: the open connection is cut within a second.
        let revoked = POLICY.replace(
            "name = \"frontend-raw\"\ncallers = [\"spiffe://mesh.local/ns/shop/sa/frontend\"]",
            "name = \"frontend-raw\"\ncallers = [\"spiffe://mesh.local/ns/shop/sa/batch\"]",
        );
        assert_ne!(revoked, POLICY);
        std::fs::write(dir.path().join("policy.toml"), &revoked).unwrap();
        sc.hup();
        sc.wait_for(|v| v["rampart.reload.result"] == "ok", "good reload");
        let since = Instant::now();
        let mut rest = Vec::new();
        let r = timeout(Duration::from_secs(1), open.read_to_end(&mut rest)).await;
        assert!(
            r.is_ok(),
            "the revoked connection was still open 1 s after the reload"
        );
        assert!(since.elapsed() < Duration::from_secs(1));
        let line = sc.wait_for(
            |v| v["rampart.closed_by_policy"] == true,
            "closed-by-policy line",
        );
        assert!(
            line["rampart.closed.reason"]
                .as_str()
                .unwrap()
                .contains("rule frontend-raw: caller"),
            "{line}"
        );
        // New connections follow the new policy.
        let mut s = tls_connect(tcp_port, frontend.clone()).await.unwrap();
        let _ = s.write_all(b"x").await;
        let mut got = Vec::new();
        let _ = timeout(Duration::from_secs(10), s.read_to_end(&mut got))
            .await
            .unwrap();
        assert!(got.is_empty());
    })
    .await
    .expect("test deadline");
}

/// Puts `policy` into `dir` the way a Kubernetes ConfigMap volume updates it: a new timestamped
/// folder, a new `..data` link to it renamed over the old one (`policy.toml` itself is a link
/// to `..data/policy.toml`).
fn configmap_update(dir: &Path, version: u32, policy: &str) {
    let folder = format!("..2026_12_06_{version:02}");
    std::fs::create_dir(dir.join(&folder)).unwrap();
    std::fs::write(dir.join(&folder).join("policy.toml"), policy).unwrap();
    std::os::unix::fs::symlink(&folder, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_style_policy_update_reloads_without_a_signal() {
    timeout(Duration::from_secs(90), async {
        let (dir, _ca, mut sc, _tcp_port, _frontend, mut open) = frontend_connected().await;
        let d = dir.path();
        // The policy becomes a ConfigMap volume's link (same rules), put in place by rename.
        configmap_update(d, 1, POLICY);
        std::os::unix::fs::symlink("..data/policy.toml", d.join("policy.toml.new")).unwrap();
        std::fs::rename(d.join("policy.toml.new"), d.join("policy.toml")).unwrap();
        sc.wait_next(
            |v| v["rampart.reload.result"] == "ok" && v["rampart.reload.cause"] == "file_changed",
            "reload after the rename into place",
        );
        echo_roundtrip(&mut open, b"two").await.unwrap();
        // The update that revokes the frontend: only `..data` changes.
        let revoked = POLICY.replace(
            "name = \"frontend-raw\"\ncallers = [\"spiffe://mesh.local/ns/shop/sa/frontend\"]",
            "name = \"frontend-raw\"\ncallers = [\"spiffe://mesh.local/ns/shop/sa/batch\"]",
        );
        assert_ne!(revoked, POLICY);
        configmap_update(d, 2, &revoked);
        sc.wait_next(
            |v| v["rampart.reload.result"] == "ok" && v["rampart.reload.cause"] == "file_changed",
            "reload after the ..data swap",
        );
        closed_within(&mut open, Duration::from_secs(1))
            .await
            .expect("the revoked connection is closed within a second");
    })
    .await
    .expect("test deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_originates_mtls_and_checks_the_peer_identity() {
    timeout(Duration::from_secs(90), async {
        let ca = TestCa::new("mesh");
        let server_dir = tempfile::tempdir().unwrap();
        let (http, echo) = (http_app().await, echo_app().await);
        write_server(server_dir.path(), &ca, http, echo, POLICY);
        let server = Sidecar::start(&server_dir.path().join("sidecar.toml"));
        let payments_tcp = server.addr("inbound:7000");

        let client_dir = tempfile::tempdir().unwrap();
        let c = client_dir.path();
        write_leaf(c, "svid", &ca.leaf(&[FRONTEND]));
        std::fs::write(c.join("bundle.pem"), &ca.root_pem).unwrap();
        std::fs::write(
            c.join("policy.toml"),
            "[[outbound]]\nname = \"deps\"\n[[outbound.rule]]\nname = \"to-payments-raw\"\nservices = [\"payments\", \"impostor\"]\nports = [7000]\n",
        )
        .unwrap();
        // "impostor" is expected to be ledger, but its address is the payments sidecar (its
        // HTTP listener): the peer presents the payments identity.
        let directory = directory_service("frontend", FRONTEND, &[(80, "127.0.0.1:2")])
            + &directory_service(
                "payments",
                PAYMENTS,
                &[(7000, &payments_tcp.to_string()), (7001, "127.0.0.1:3")],
            )
            + &directory_service(
                "impostor",
                "spiffe://mesh.local/ns/shop/sa/ledger",
                &[(7000, &server.addr("inbound:8080").to_string())],
            );
        std::fs::write(c.join("directory.toml"), directory).unwrap();
        let listeners = outbound_listener("127.0.0.1:0", "payments", 7000)
            + &outbound_listener("127.0.0.1:0", "payments", 7001)
            + &outbound_listener("127.0.0.1:0", "impostor", 7000);
        std::fs::write(
            c.join("sidecar.toml"),
            sidecar_toml("frontend", SVID_FILES, &listeners),
        )
        .unwrap();
        let mut client = Sidecar::start(&c.join("sidecar.toml"));

        // App → frontend sidecar → mTLS → payments sidecar → echo app.
        let mut app = TcpStream::connect(client.addr("outbound:payments:7000")).await.unwrap();
        app.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        app.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        drop(app);

        // Port 7001 is not allowed by the outbound policy: closed, with the reason logged.
        let mut app = TcpStream::connect(client.addr("outbound:payments:7001")).await.unwrap();
        let mut rest = Vec::new();
        let _ = timeout(Duration::from_secs(10), app.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty());
        let line = client.wait_for(|v| v["rampart.direction"] == "outbound" && v["server.port"] == 7001, "outbound denial");
        assert_eq!(line["rampart.reason"], "rule to-payments-raw: port 7001 not in [7000]");

        // The directory expects ledger at the impostor address; payments answers: refused.
        let mut app = TcpStream::connect(client.addr("outbound:impostor:7000")).await.unwrap();
        let _ = app.write_all(b"secret").await;
        let mut rest = Vec::new();
        let _ = timeout(Duration::from_secs(10), app.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty());
        let line = client.wait_for(|v| v["rampart.reason.kind"] == "unexpected_peer_identity", "identity mismatch");
        assert!(line["error.message"].as_str().unwrap().contains(&format!("presented {PAYMENTS}, the directory expects spiffe://mesh.local/ns/shop/sa/ledger")), "{line}");
    })
    .await
    .expect("test deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_caller_cuts_its_open_connection_and_refuses_new_ones() {
    timeout(Duration::from_secs(90), async {
        let (dir, _ca, mut sc, tcp_port, frontend, mut open) = frontend_connected().await;
        // An HTTP keep-alive connection too: the HTTP port's cut runs on its own path.
        let mut open_http = tls_connect(sc.addr("inbound:8080"), frontend.clone())
            .await
            .unwrap();
        open_http
            .write_all(b"GET /v1/payments/7 HTTP/1.1\r\nhost: payments\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 512];
        let n = timeout(Duration::from_secs(10), open_http.read(&mut head))
            .await
            .expect("HTTP answer before the revocation")
            .unwrap();
        assert!(
            head[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head[..n])
        );

        std::fs::write(
            dir.path().join("revoked.toml"),
            format!("ids = [\"{FRONTEND}\"]\n"),
        )
        .unwrap();
        sc.hup();
        sc.wait_for(
            |v| v["rampart.reload.result"] == "ok",
            "reload with the revocation",
        );
        let mut rest = Vec::new();
        let r = timeout(Duration::from_secs(1), open.read_to_end(&mut rest)).await;
        assert!(
            r.is_ok(),
            "the revoked caller's connection was still open 1 s after the reload"
        );
        let mut rest = Vec::new();
        let r = timeout(Duration::from_secs(1), open_http.read_to_end(&mut rest)).await;
        assert!(
            r.is_ok(),
            "the revoked caller's HTTP keep-alive connection was still open 1 s after the reload"
        );
        let line = sc.wait_for(|v| v["rampart.closed_by_policy"] == true, "cut line");
        assert!(
            line["rampart.closed.reason"]
                .as_str()
                .unwrap()
                .contains("revoked"),
            "{line}"
        );

        assert!(tls_then_use(tcp_port, frontend.clone()).await.is_err());
        handshake_reason(&mut sc, "revoked");
    })
    .await
    .expect("test deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_svid_reaches_new_handshakes_while_open_connections_keep_theirs() {
    timeout(Duration::from_secs(90), async {
        let (dir, ca, mut sc, tcp_port, frontend, mut open) = frontend_connected().await;
        let served_leaf = |s: &tokio_rustls::client::TlsStream<TcpStream>| {
            s.get_ref().1.peer_certificates().unwrap()[0].clone()
        };
        let first = served_leaf(&open);

        // The SVID files are renewed (same identity, new certificate and key).
        let renewed = ca.leaf(&[PAYMENTS]);
        write_leaf(dir.path(), "svid", &renewed);
        sc.hup();
        sc.wait_for(
            |v| v["rampart.reload.result"] == "ok",
            "reload with the renewed SVID",
        );

        let mut new = tls_connect(tcp_port, frontend.clone()).await.unwrap();
        echo_roundtrip(&mut new, b"new").await.unwrap();
        assert_eq!(
            served_leaf(&new),
            renewed.chain[0],
            "a new handshake gets the renewed SVID"
        );
        assert_ne!(first, renewed.chain[0]);
        // The connection opened before the renewal goes on, on the certificate it started with.
        echo_roundtrip(&mut open, b"after").await.unwrap();
        assert_eq!(served_leaf(&open), first);
    })
    .await
    .expect("test deadline");
}

/// An HTTP/1.1 app on loopback scripted by path, reporting what it saw: `accept` per
/// connection; `/v1/once` is answered 200 (keep-alive), then, when `close` is notified (after
/// the sidecar has kept the connection for reuse), the app closes its side and reports
/// `closed` once the sidecar has closed its end too; `/v1/reset` is read whole, then the
/// connection is reset (`reset`).
async fn scripted_app(
    close: Arc<tokio::sync::Notify>,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<&'static str>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            let close = close.clone();
            let _ = tx.send("accept");
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                if head.starts_with("GET /v1/hop ") {
                    // Hop-by-hop fields of the app's connection, which it then closes.
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nconnection: close, x-hop, keep-alive\r\nx-hop: 1\r\n\
                              keep-alive: timeout=5\r\nx-kept: 1\r\ncontent-length: 3\r\n\r\nhop",
                        )
                        .await;
                    let _ = s.shutdown().await;
                    let _ = tx.send("hop");
                } else if head.starts_with("GET /v1/reset ") {
                    let _ = s.set_zero_linger();
                    let _ = tx.send("reset");
                    drop(s);
                } else if head.starts_with("GET /v1/once ") {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nonce")
                        .await;
                    close.notified().await;
                    let _ = s.shutdown().await;
                    // The sidecar's end closes once it has seen ours close.
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    let _ = tx.send("closed");
                }
            });
        }
    });
    (addr, rx)
}

/// A test app's next report (deadline): the scripted app's step, or what the recording app
/// received.
async fn next<T>(seen: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
    timeout(Duration::from_secs(20), seen.recv())
        .await
        .expect("app report deadline")
        .expect("app alive")
}

/// A frontend's HTTP/1.1 connection to an inbound port (requests go on it with [`get_on`]).
async fn frontend_http(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
) -> hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>> {
    let tls = tls_connect(addr, cfg).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// One GET on the frontend's connection: (status, body).
async fn get_on(
    send: &mut hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>>,
    path: &str,
) -> (u16, String) {
    send.ready().await.unwrap();
    let req = http::Request::get(path)
        .header("host", "payments")
        .body(Empty::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The app's hop-by-hop fields stay on the app's side (RFC 9110 §7.6.1): its `connection:
/// close` closes its own connection to the sidecar, not the caller's mesh connection, whose
/// next request is served (on a new app connection); the fields `connection` names, and
/// `keep-alive`, are not forwarded; the others are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_hop_by_hop_fields_and_its_close_stay_on_its_side() {
    timeout(Duration::from_secs(60), async {
        let ca = TestCa::new("mesh");
        let frontend = client_config(&ca, Some(&ca.leaf(&[FRONTEND])));
        let close = Arc::new(tokio::sync::Notify::new());
        let (app, mut seen) = scripted_app(close.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        write_server(dir.path(), &ca, app, echo_app().await, POLICY);
        let sc = Sidecar::start(&dir.path().join("sidecar.toml"));
        let mut send = frontend_http(sc.addr("inbound:8080"), frontend).await;
        send.ready().await.unwrap();
        let req = http::Request::get("/v1/hop")
            .header("host", "payments")
            .body(Empty::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hop");
        assert_eq!(next(&mut seen).await, "accept");
        assert_eq!(next(&mut seen).await, "hop");
        assert_eq!(headers.get("x-kept").map(|v| v.as_bytes()), Some(&b"1"[..]));
        for gone in ["connection", "x-hop", "keep-alive"] {
            assert!(!headers.contains_key(gone), "{gone} forwarded: {headers:?}");
        }
        // The caller's connection is still open: the next request on it is served.
        assert!(!send.is_closed(), "the caller's connection was closed");
        assert_eq!(get_on(&mut send, "/v1/once").await, (200, "once".into()));
        assert_eq!(next(&mut seen).await, "accept");
    })
    .await
    .expect("test deadline");
}

/// The HTTP port's app-side failures (4ef1eca's `app_sender`): an app that is not listening is
/// a 502 whose log line names the dial failure; an app connection the app closed after an
/// answer is not reused (the next request on the same inbound connection dials again and gets
/// its 200); an app that resets mid-request is a 502 with `app ADDR: …`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_dial_failures_closed_app_connections_and_resets_are_502_or_redialled() {
    timeout(Duration::from_secs(90), async {
        let ca = TestCa::new("mesh");
        let frontend = client_config(&ca, Some(&ca.leaf(&[FRONTEND])));
        let request_line = |path: &'static str| {
            move |v: &serde_json::Value| {
                v["event.name"] == "rampart.sidecar.request" && v["url.path"] == path
            }
        };

        // (a) Nothing listens on the app's port.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let dir = tempfile::tempdir().unwrap();
        write_server(dir.path(), &ca, closed_addr, echo_app().await, POLICY);
        let mut sc = Sidecar::start(&dir.path().join("sidecar.toml"));
        let mut send = frontend_http(sc.addr("inbound:8080"), frontend.clone()).await;
        let (status, body) = get_on(&mut send, "/v1/closed").await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body, "bad gateway: the app did not answer\n");
        let line = sc.wait_for(request_line("/v1/closed"), "the 502's request line");
        assert_eq!(line["http.response.status_code"], 502);
        let error = line["error.message"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("app {closed_addr} unreachable: ")),
            "{line}"
        );
        drop(sc);

        // (b) The app answers once, then closes its connection, after the sidecar has kept it
        // for the next request (the answer is back here: the sender is kept before it is sent).
        let close = Arc::new(tokio::sync::Notify::new());
        let (app, mut seen) = scripted_app(close.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        write_server(dir.path(), &ca, app, echo_app().await, POLICY);
        let mut sc = Sidecar::start(&dir.path().join("sidecar.toml"));
        let mut send = frontend_http(sc.addr("inbound:8080"), frontend.clone()).await;
        assert_eq!(get_on(&mut send, "/v1/once").await, (200, "once".into()));
        assert_eq!(next(&mut seen).await, "accept");
        close.notify_one();
        assert_eq!(next(&mut seen).await, "closed");
        // Same inbound connection: a new app connection, not the kept one the app closed.
        assert_eq!(get_on(&mut send, "/v1/once").await, (200, "once".into()));
        assert_eq!(next(&mut seen).await, "accept");
        close.notify_one();
        assert_eq!(next(&mut seen).await, "closed");

        // (c) The app resets the connection once it has the request.
        let (status, body) = get_on(&mut send, "/v1/reset").await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(next(&mut seen).await, "accept");
        assert_eq!(next(&mut seen).await, "reset");
        let line = sc.wait_for(request_line("/v1/reset"), "the reset's request line");
        assert_eq!(line["http.response.status_code"], 502);
        let error = line["error.message"].as_str().unwrap_or_default();
        assert!(error.starts_with(&format!("app {app}: ")), "{line}");
        // The request after a failed send dials again too.
        assert_eq!(get_on(&mut send, "/v1/once").await, (200, "once".into()));
        assert_eq!(next(&mut seen).await, "accept");
    })
    .await
    .expect("test deadline");
}

/// Any method and path of `/v1/**` from the frontend (the `connection` options test).
const ANY_METHOD_POLICY: &str = r#"
[[inbound]]
name = "payments-api"
ports = [8080]

[[inbound.rule]]
name = "frontend-any"
callers = ["spiffe://mesh.local/ns/shop/sa/frontend"]
paths = ["/v1/**"]
"#;

/// The index just past a message head's blank line in `buf`, if it is there.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A head's `content-length`, if any (names in any case).
fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// An HTTP/1.1 app on loopback that reports every request it reads — its head, lower-cased,
/// and its body (by `content-length`) — and answers a `HEAD` with `content-length: 1234` and
/// `connection: content-length, x-hop` (no body, as a `HEAD` answer has none), everything else
/// with `200 ok`.
async fn recording_app() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while head_end(&buf).is_none() {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = head_end(&buf).unwrap();
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len = content_length(&head);
                    while buf.len() < end + len {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[end..end + len].to_vec();
                    buf.drain(..end + len);
                    let answer: &[u8] = if head.starts_with("head ") {
                        b"HTTP/1.1 200 OK\r\nconnection: content-length, x-hop\r\n\
                          content-length: 1234\r\nx-hop: 1\r\n\r\n"
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                    };
                    let _ = tx.send((head, body));
                    if s.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Writes `request` on a new mTLS connection to `addr` and reads the answer's head (and
/// `body` more bytes): the head lower-cased, and the body.
async fn raw_exchange(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
    request: &[u8],
    body: usize,
) -> (String, Vec<u8>) {
    let mut tls = tls_connect(addr, cfg).await.unwrap();
    tls.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while head_end(&buf).is_none_or(|end| buf.len() < end + body) {
        let n = tls.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = head_end(&buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    (head, buf[end..].to_vec())
}

/// Review finding F4 (review-s14-sc item 4): a `connection` option naming a field that frames,
/// routes or identifies the message is not honoured, on either side. A caller's `connection:
/// host` left the app a request without `host` (HTTP/1.1 requires one); an app's `connection:
/// content-length` on its `HEAD` answer lost the length it announces (the caller got no
/// `content-length` at all). Fails on 78f8695 at both. Other listed names still go (the caller's own `authorization`, the
/// app's `x-hop`), and a listed `x-forwarded-client-cert` is ours to set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_options_never_remove_host_length_or_identity() {
    timeout(Duration::from_secs(60), async {
        let ca = TestCa::new("mesh");
        let frontend = client_config(&ca, Some(&ca.leaf(&[FRONTEND])));
        let (app, mut seen) = recording_app().await;
        let dir = tempfile::tempdir().unwrap();
        write_server(dir.path(), &ca, app, echo_app().await, ANY_METHOD_POLICY);
        let sc = Sidecar::start(&dir.path().join("sidecar.toml"));
        let inbound = sc.addr("inbound:8080");

        // The caller lists `host`, its own `authorization` and `x-forwarded-client-cert`.
        let (head, body) = raw_exchange(
            inbound,
            frontend.clone(),
            b"GET /v1/e2e HTTP/1.1\r\nHost: payments\r\n\
              Connection: Host, authorization, x-forwarded-client-cert\r\n\
              Authorization: Bearer t\r\nX-Forwarded-Client-Cert: By=forged;URI=forged\r\n\r\n",
            2,
        )
        .await;
        assert!(head.starts_with("http/1.1 200 "), "{head}");
        assert_eq!(body, b"ok");
        let (req, _) = next(&mut seen).await;
        assert!(
            req.contains("\r\nhost: payments\r\n"),
            "no host at the app: {req}"
        );
        let xfcc = format!("\r\nx-forwarded-client-cert: by={PAYMENTS};uri={FRONTEND}\r\n");
        assert!(req.contains(&xfcc), "xfcc: {req}");
        assert_eq!(req.matches("x-forwarded-client-cert").count(), 1, "{req}");
        assert!(
            !req.contains("authorization") && !req.contains("connection"),
            "{req}"
        );

        // The caller lists `content-length` on a request with a body: framed as it was sent.
        let (head, body) = raw_exchange(
            inbound,
            frontend.clone(),
            b"POST /v1/e2e HTTP/1.1\r\nHost: payments\r\nConnection: content-length\r\n\
              Content-Length: 5\r\n\r\nhello",
            2,
        )
        .await;
        assert!(head.starts_with("http/1.1 200 "), "{head}");
        assert_eq!(body, b"ok");
        let (req, body) = next(&mut seen).await;
        assert!(req.contains("\r\ncontent-length: 5\r\n"), "{req}");
        assert_eq!(body, b"hello");

        // The app lists `content-length` (and `x-hop`) on its HEAD answer.
        let (head, body) = raw_exchange(
            inbound,
            frontend.clone(),
            b"HEAD /v1/e2e HTTP/1.1\r\nHost: payments\r\n\r\n",
            0,
        )
        .await;
        assert!(head.starts_with("http/1.1 200 "), "{head}");
        assert!(body.is_empty(), "a HEAD answer with a body: {body:?}");
        assert!(
            head.contains("\r\ncontent-length: 1234\r\n"),
            "length lost: {head}"
        );
        assert!(
            !head.contains("x-hop") && !head.contains("connection:"),
            "{head}"
        );
        assert!(next(&mut seen).await.0.starts_with("head /v1/e2e "));
    })
    .await
    .expect("test deadline");
}
