//! SIGHUP reload: applied atomically under concurrent load with zero failed requests; a bad
//! config is refused and the old one keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a reload may take to be reported: it compiles the WAF rules, seconds of CPU in a
/// debug build on a loaded machine.
const RELOAD_WAIT: Duration = Duration::from_secs(90);

fn route_with_header(value: &str) -> String {
    format!("[routes.headers]\nset = {{ \"X-Config-Generation\" = \"{value}\" }}\n")
}

/// `Basic` config whose `app` route adds X-Config-Generation = `value`.
fn config(b: &Basic, upstream: std::net::SocketAddr, value: &str) -> String {
    b.config(upstream, "").replace(
        "[routes.cookies]\nhttp_only_exceptions = [\"csrf\"]\n",
        &format!(
            "{}[routes.cookies]\nhttp_only_exceptions = [\"csrf\"]\n",
            route_with_header(value)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_under_load_drops_nothing_and_bad_config_is_refused() {
    install_provider();
    let upstream = start_upstream().await;
    let pki = Pki::new("reload");
    let dir = tempfile::tempdir().unwrap();
    pki.leaf(dir.path(), "edge", &["app.test"]);
    let b = Basic::new();
    let edge = Edge::start(&config(&b, upstream, "g0"), dir);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen_last = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (stop, ok, failed, seen_last, ca) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            seen_last.clone(),
            pki.ca_pem.clone(),
        );
        let port = b.https;
        tasks.push(tokio::spawn(async move {
            // Bounded: at most 2000 requests per task, or until told to stop.
            for _ in 0..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match https(port, "app.test", &ca, &get("app.test", "/", "")).await {
                    Ok(r) if r.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if r.header("x-config-generation") == Some("g5") {
                            seen_last.store(true, Ordering::Relaxed);
                        }
                    }
                    Ok(r) => failed.lock().unwrap().push(format!("status {}", r.status)),
                    Err(e) => failed.lock().unwrap().push(e),
                }
            }
        }));
    }
    for g in 1..=5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        std::fs::write(&edge.config_path, config(&b, upstream, &format!("g{g}"))).unwrap();
        edge.signal("HUP");
        edge.wait_stderr_within("config reload ok", g, RELOAD_WAIT);
    }
    // Let requests observe the last generation, then stop the load.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !seen_last.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} failed requests during reloads: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "load too small to mean anything"
    );
    assert!(
        seen_last.load(Ordering::Relaxed),
        "last generation never served"
    );

    // A bad config: unknown key. Refused, the old config keeps serving.
    std::fs::write(
        &edge.config_path,
        config(&b, upstream, "g6").replace("[[routes]]", "[[routes]]\nbogus_key = 1"),
    )
    .unwrap();
    edge.signal("HUP");
    edge.wait_stderr_within("config reload refused", 1, RELOAD_WAIT);
    let stderr = edge.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains(".toml:") && stderr.contains("`routes.0.bogus_key`"),
        "the refusal names file, line and field: {stderr}"
    );
    // stderr is a pipe here, not a terminal: plain text, no ANSI colour codes.
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in piped stderr: {stderr:?}"
    );
    let r = https(b.https, "app.test", &pki.ca_pem, &get("app.test", "/", ""))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-config-generation"), Some("g5"));
    // A config whose certificate is broken: refused as a whole.
    std::fs::write(edge.path("edge2.pem"), "garbage").unwrap();
    std::fs::write(
        &edge.config_path,
        config(&b, upstream, "g7").replace("cert = \"edge.pem\"", "cert = \"edge2.pem\""),
    )
    .unwrap();
    edge.signal("HUP");
    edge.wait_stderr_within("config reload refused", 2, RELOAD_WAIT);
    let r = https(b.https, "app.test", &pki.ca_pem, &get("app.test", "/", ""))
        .await
        .unwrap();
    assert_eq!(r.header("x-config-generation"), Some("g5"));
    let m = admin(b.admin, "/metrics").await.body;
    assert!(
        m.contains("rampart_config_reloads_total{result=\"ok\",what=\"config\"} 5"),
        "{m}"
    );
    assert!(
        m.contains("rampart_config_reloads_total{result=\"error\",what=\"config\"} 2"),
        "{m}"
    );
}

use std::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits() {
    install_provider();
    let upstream = start_upstream().await;
    let pki = Pki::new("term");
    let dir = tempfile::tempdir().unwrap();
    pki.leaf(dir.path(), "edge", &["app.test"]);
    let b = Basic::new();
    let mut edge = Edge::start(
        &config(&b, upstream, "x")
            .replace("threads = 1", "threads = 1\nshutdown_grace_seconds = 5"),
        dir,
    );
    // A request in flight (the upstream answers /slow after 800 ms) when SIGTERM arrives.
    let ca = pki.ca_pem.clone();
    let port = b.https;
    let in_flight =
        tokio::spawn(
            async move { https(port, "app.test", &ca, &get("app.test", "/slow", "")).await },
        );
    tokio::time::sleep(Duration::from_millis(200)).await;
    edge.signal("TERM");
    let r = in_flight.await.unwrap().unwrap();
    assert_eq!(
        r.status, 200,
        "in-flight request must complete during the drain"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if edge.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not exit within the bounded drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The serial of the certificate the edge serves to a new handshake.
async fn served_serial(port: u16, ca_pem: &str) -> String {
    let cfg = client_config(ca_pem, &[&rustls::version::TLS13], &[b"http/1.1"]);
    let tls = handshake(port, "app.test", cfg).await.unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    rampart_tls::svid::serial_hex(&leaf).unwrap()
}

/// An upstream that tells `arrived` when a `/hold` request reaches it and answers it only once
/// `release` is notified; anything else at once.
async fn holding_upstream(
    arrived: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let (arrived, release) = (arrived.clone(), release.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let mut len = 0;
                loop {
                    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf[len..]).await {
                            Ok(n) if n > 0 => len += n,
                            _ => return,
                        }
                    }
                    if String::from_utf8_lossy(&buf[..len]).starts_with("GET /hold") {
                        arrived.notify_one();
                        release.notified().await;
                    }
                    len = 0;
                    let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_generation_publishes_routes_and_certificates_and_in_flight_requests_keep_theirs() {
    tokio::time::timeout(Duration::from_secs(180), async {
        install_provider();
        let arrived = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Notify::new());
        let upstream = holding_upstream(arrived.clone(), release.clone()).await;
        let pki = Pki::new("generation");
        let dir = tempfile::tempdir().unwrap();
        pki.leaf(dir.path(), "edge", &["app.test"]);
        let b = Basic::new();
        let edge = Edge::start(&config(&b, upstream, "g1"), dir);
        let first = served_serial(b.https, &pki.ca_pem).await;

        // A request in flight (held by the upstream) across the reload.
        let (ca, port) = (pki.ca_pem.clone(), b.https);
        let in_flight = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // Not `https`: its 10 s read deadline is shorter than a reload on a loaded machine.
            let cfg = client_config(&ca, &[&rustls::version::TLS13], &[b"http/1.1"]);
            let mut s = handshake(port, "app.test", cfg).await.unwrap();
            let req = get("app.test", "/hold", "");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            parse_response(&buf)
        });
        let lines = edge.access_lines(0).len();
        arrived.notified().await;
        // The next generation: another route header and another certificate, in one reload.
        pki.leaf(edge.dir.path(), "edge2", &["app.test"]);
        std::fs::write(
            &edge.config_path,
            config(&b, upstream, "g2")
                .replace("cert = \"edge.pem\"", "cert = \"edge2.pem\"")
                .replace("key = \"edge.key\"", "key = \"edge2.key\""),
        )
        .unwrap();
        edge.signal("HUP");
        edge.wait_stderr_within("config reload ok", 1, RELOAD_WAIT);
        assert!(
            !in_flight.is_finished(),
            "the request is still in flight after the reload"
        );
        assert_eq!(edge.access_lines(0).len(), lines, "nothing logged yet");
        release.notify_one();

        let r = in_flight.await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("x-config-generation"),
            Some("g1"),
            "a request in flight keeps the generation it started in"
        );
        // A new connection: the new certificate and the new routes, from the same generation.
        let second = served_serial(b.https, &pki.ca_pem).await;
        assert_ne!(first, second, "the reload published the new certificate");
        let r = https(b.https, "app.test", &pki.ca_pem, &get("app.test", "/", ""))
            .await
            .unwrap();
        assert_eq!(r.header("x-config-generation"), Some("g2"));
        let m = admin(b.admin, "/metrics").await.body;
        assert!(
            m.contains("rampart_config_reloads_total{result=\"ok\",what=\"config\"} 1"),
            "{m}"
        );
    })
    .await
    .expect("test deadline");
}
