//! SIGHUP reload: applied atomically under concurrent load with zero failed requests; a bad
//! config is refused and the old one keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    let (upstream, pki, dir, b) = bench("reload", &["app.test"]).await;
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
        let port = edge.port("https");
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
    let r = edge
        .send(&pki.ca_pem, "app.test", &get("app.test", "/", ""))
        .await;
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
    let r = edge
        .send(&pki.ca_pem, "app.test", &get("app.test", "/", ""))
        .await;
    assert_eq!(r.header("x-config-generation"), Some("g5"));
    let m = admin(edge.admin(), "/metrics").await.body;
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

/// SIGTERM, with one keep-alive connection idle and one request in flight: the listener closes
/// at once (a new connection is refused), the idle connection is closed, `/readyz` turns 503,
/// the request in flight is answered — with `Connection: close`, so that its client does not
/// send another request onto a connection the edge is closing — and the process exits 0 as soon
/// as nothing is in flight, long before `shutdown_grace_seconds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_the_listener_and_idle_connections_and_drains_in_flight_requests() {
    tokio::time::timeout(Duration::from_secs(120), async {
        use rustls::version::TLS13;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Held {
            mut edge,
            pki,
            mut arrivals,
            release,
            ..
        } = held("term", "x", |c| {
            c.replace("threads = 1", "threads = 1\nshutdown_grace_seconds = 60")
        })
        .await;
        // `run` started itself again with the allocator's settings (control::allocator): the
        // same process, which the signal below still reaches.
        let environ = std::fs::read(format!("/proc/{}/environ", edge.child.id())).unwrap();
        for var in ["MIMALLOC_PURGE_DELAY=0", "MIMALLOC_ALLOW_THP=0"] {
            assert!(
                environ.split(|&b| b == 0).any(|v| v == var.as_bytes()),
                "{var} is not in the edge's environment"
            );
        }
        let port = edge.port("https");
        let tls = client_config(&pki.ca_pem, &[&TLS13], &[b"http/1.1"]);
        let keep_alive = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: app.test\r\n\r\n");
        let mut idle = handshake(port, "app.test", tls.clone()).await.unwrap();
        idle.write_all(keep_alive("/").as_bytes()).await.unwrap();
        let first = read_one(&mut idle).await;
        assert_eq!(
            (first.status, first.header("connection")),
            (200, Some("keep-alive"))
        );
        let mut held = handshake(port, "app.test", tls).await.unwrap();
        held.write_all(keep_alive("/hold").as_bytes())
            .await
            .unwrap();
        arrivals.recv().await.unwrap();

        edge.signal("TERM");
        let mut rest = Vec::new();
        let _ = idle.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "the idle connection got {rest:?}");
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        while admin(edge.admin(), "/readyz").await.status != 503 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            edge.child.try_wait().unwrap().is_none(),
            "exited with a request in flight"
        );
        release.notify_one();
        let answer = read_one(&mut held).await;
        assert_eq!(answer.status, 200, "the request in flight: {answer:?}");
        assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
        // The drain exits as soon as nothing is in flight; Pingora alone would wait out the
        // 60 s grace (and also exit 0), so the exit must come well before it.
        let status = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if let Some(status) = edge.child.try_wait().unwrap() {
                    break status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect(
            "not exited by the drain within 15 s of its last request: waited for the grace period",
        );
        assert!(status.success(), "exit status {status}");
    })
    .await
    .expect("not drained and exited within 120 s (the grace period is 60 s)");
}

/// One response (a `Content-Length` body) read from a connection left open.
async fn read_one<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Resp {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    loop {
        let r = parse_response(&buf);
        let complete = buf.windows(4).any(|w| w == b"\r\n\r\n")
            && r.header("content-length")
                .and_then(|n| n.parse().ok())
                .is_some_and(|n: usize| r.body.len() >= n);
        if complete {
            return r;
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => panic!("connection closed in the response: {r:?}"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The serial of the certificate the edge serves to a new handshake.
async fn served_serial(port: u16, ca_pem: &str) -> String {
    let cfg = client_config(ca_pem, &[&rustls::version::TLS13], &[b"http/1.1"]);
    let tls = handshake(port, "app.test", cfg).await.unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    rampart_tls::svid::serial_hex(&leaf).unwrap()
}

/// A TLS connection from `source` with a `GET /hold` for `host` sent on it (see
/// [`holding_upstream`]).
async fn send_hold(
    source: std::net::IpAddr,
    port: u16,
    host: &str,
    ca: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let cfg = client_config(ca, &[&rustls::version::TLS13], &[b"http/1.1"]);
    let mut s = handshake_from(source, port, host, cfg).await.unwrap();
    s.write_all(get(host, "/hold", "").as_bytes())
        .await
        .unwrap();
    s
}

/// An upstream that tells `arrived` when a `/hold` request reaches it and answers it only once
/// `release` is notified; anything else at once.
async fn holding_upstream(
    arrived: tokio::sync::mpsc::UnboundedSender<()>,
    release: Arc<tokio::sync::Notify>,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rampart_ops::testing::serve_loopback(move |mut s| {
        let (arrived, release) = (arrived.clone(), release.clone());
        async move {
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
                    let _ = arrived.send(());
                    release.notified().await;
                }
                len = 0;
                let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if s.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

/// An edge in front of [`holding_upstream`], with a CA and the edge's leaf for `app.test`.
struct Held {
    edge: Edge,
    pki: Pki,
    upstream: std::net::SocketAddr,
    /// One message per `/hold` request reaching the upstream.
    arrivals: tokio::sync::mpsc::UnboundedReceiver<()>,
    /// Answers one held request.
    release: Arc<tokio::sync::Notify>,
}

/// Starts [`Held`]: the config of [`config`] with `value`, changed by `edit`.
async fn held(name: &str, value: &str, edit: impl FnOnce(String) -> String) -> Held {
    install_provider();
    let (arrived, arrivals) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let upstream = holding_upstream(arrived, release.clone()).await;
    let pki = Pki::new(name);
    let dir = tempfile::tempdir().unwrap();
    pki.leaf(dir.path(), "edge", &["app.test"]);
    let edge = Edge::start(&edit(config(&Basic::new(), upstream, value)), dir);
    Held {
        edge,
        pki,
        upstream,
        arrivals,
        release,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_generation_publishes_routes_and_certificates_and_in_flight_requests_keep_theirs() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let Held {
            edge,
            pki,
            upstream,
            mut arrivals,
            release,
        } = held("generation", "g1", |c| c).await;
        let first = served_serial(edge.port("https"), &pki.ca_pem).await;

        // A request in flight (held by the upstream) across the reload.
        let (ca, port) = (pki.ca_pem.clone(), edge.port("https"));
        let in_flight = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            // Not `https`: its 10 s read deadline is shorter than a reload on a loaded machine.
            let mut s = send_hold(LOOPBACK, port, "app.test", &ca).await;
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            parse_response(&buf)
        });
        let lines = edge.access_lines(0).len();
        arrivals.recv().await.unwrap();
        // The next generation: another route header and another certificate, in one reload.
        pki.leaf(edge.dir.path(), "edge2", &["app.test"]);
        std::fs::write(
            &edge.config_path,
            config(&Basic::new(), upstream, "g2")
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
        let second = served_serial(edge.port("https"), &pki.ca_pem).await;
        assert_ne!(first, second, "the reload published the new certificate");
        let r = edge
            .send(&pki.ca_pem, "app.test", &get("app.test", "/", ""))
            .await;
        assert_eq!(r.header("x-config-generation"), Some("g2"));
        let m = admin(edge.admin(), "/metrics").await.body;
        assert!(
            m.contains("rampart_config_reloads_total{result=\"ok\",what=\"config\"} 1"),
            "{m}"
        );
    })
    .await
    .expect("test deadline");
}

/// `[protect]` of the defence-reload test: the `app` route limited to `app_burst` requests per
/// hour, `max_per_ip` concurrent connections per client address.
fn defences(app_burst: u32, max_per_ip: u32) -> String {
    format!(
        r#"
[protect.rate_limit]
default = {{ requests = 100000, burst = 100000 }}
[protect.rate_limit.routes.app]
requests = {app_burst}
per_seconds = 3600
burst = {app_burst}
[protect.connections]
max_per_ip = {max_per_ip}
new_per_ip = {{ requests = 100000, burst = 100000 }}
"#
    )
}

/// A `hold` route to the app upstream (which waits for the test on `/hold`): its requests keep
/// their connections open and established.
const HOLD_ROUTE: &str =
    "[[routes]]\nname = \"hold\"\nhosts = [\"hold.test\"]\nupstream = \"app\"\n";

/// The defence-reload test's config: `app` adds X-Config-Generation = `generation`.
fn defence_config(
    b: &Basic,
    upstream: std::net::SocketAddr,
    generation: &str,
    protect: &str,
) -> String {
    // Long enough for held requests to outlast a reload on a loaded machine.
    b.config_with(upstream, HOLD_ROUTE, protect)
        .replacen(
            "connect_timeout_ms = 500",
            "connect_timeout_ms = 500\nread_timeout_ms = 600000",
            1,
        )
        .replace(
            "[routes.cookies]\nhttp_only_exceptions = [\"csrf\"]\n",
            &format!(
                "{}[routes.cookies]\nhttp_only_exceptions = [\"csrf\"]\n",
                route_with_header(generation)
            ),
        )
}

/// What one probe saw: its start and end on a counter shared by all probes (`end` < another's
/// `start` means it had its answer before the other was sent), and the answer.
#[derive(Debug, Clone)]
struct Seen {
    start: usize,
    end: usize,
    /// `None`: the connection was refused (closed before a response).
    answer: Option<(u16, String)>,
}

/// One request on a new connection from `source` to `app.test`.
async fn probe(clock: &AtomicUsize, source: std::net::IpAddr, port: u16, ca: &str) -> Seen {
    let start = clock.fetch_add(1, Ordering::SeqCst);
    let answer = match https_from(source, port, "app.test", ca, &get("app.test", "/", "")).await {
        Ok(r) if r.status != 0 => Some((
            r.status,
            r.header("x-config-generation").unwrap_or("").to_string(),
        )),
        _ => None,
    };
    let end = clock.fetch_add(1, Ordering::SeqCst);
    Seen { start, end, answer }
}

/// One reload changes a route header, a route's rate limit and the per-IP connection cap, and
/// they take effect together: every request sees either the old header with the old limit or
/// the new header with the new one, a connection refused under the old cap was sent before any
/// request saw the new header, and one admitted over the old cap only sees the new header.
/// A bad reload that would change all three changes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_swaps_headers_rate_limits_and_connection_caps_together() {
    tokio::time::timeout(Duration::from_secs(240), async {
        install_provider();
        let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let upstream = holding_upstream(arrived, release.clone()).await;
        let pki = Pki::new("defences");
        let dir = tempfile::tempdir().unwrap();
        pki.leaf(dir.path(), "edge", &["app.test", "hold.test"]);
        let b = Basic::new();
        // Old: app limited to 1 request an hour, 4 connections per address.
        let edge = Edge::start(&defence_config(&b, upstream, "a", &defences(1, 4)), dir);
        let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();

        // 127.0.0.2 holds 4 connections, each with a request waiting at the upstream (served,
        // so never evicted as stalled): it is at its cap.
        let mut holders = Vec::new();
        for _ in 0..4 {
            holders.push(send_hold(other, edge.port("https"), "hold.test", &pki.ca_pem).await);
            arrivals.recv().await.unwrap();
        }
        let clock = Arc::new(AtomicUsize::new(0));
        let before = vec![
            probe(&clock, LOOPBACK, edge.port("https"), &pki.ca_pem).await,
            probe(&clock, LOOPBACK, edge.port("https"), &pki.ca_pem).await,
            probe(&clock, other, edge.port("https"), &pki.ca_pem).await,
        ];
        let answers: Vec<_> = before.iter().map(|s| s.answer.clone()).collect();
        assert_eq!(
            answers,
            vec![Some((200, "a".into())), Some((429, "a".into())), None],
            "old generation: one request an hour, 127.0.0.2 at its cap"
        );

        // Probes from both addresses while the reload happens.
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for source in [LOOPBACK, other] {
            let (stop, clock, ca, port) = (stop.clone(), clock.clone(), pki.ca_pem.clone(), edge.port("https"));
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                // Bounded: at most 3000 probes per address, or until told to stop.
                for _ in 0..3000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    seen.push(probe(&clock, source, port, &ca).await);
                }
                seen
            }));
        }
        // New: another header, app unlimited, 64 connections per address.
        std::fs::write(
            &edge.config_path,
            defence_config(&b, upstream, "b", &defences(100_000, 64)),
        )
        .unwrap();
        edge.signal("HUP");
        edge.wait_stderr_within("config reload ok", 1, RELOAD_WAIT);
        // Let both addresses see the new generation, then stop.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let mut seen = before.clone();
        for t in tasks {
            seen.extend(t.await.unwrap());
        }

        // The first answer with the new header; nothing sent after it may see the old
        // generation (header, limit or cap).
        let first_new = seen
            .iter()
            .filter(|s| matches!(&s.answer, Some((_, g)) if g == "b"))
            .map(|s| s.end)
            .min()
            .expect("no request saw the new generation");
        let mut old_pass = 0;
        for s in &seen {
            match &s.answer {
                Some((200, g)) if g == "a" => old_pass += 1,
                Some((429, g)) if g == "a" => {}
                Some((200, g)) if g == "b" => {}
                None => {} // refused under the old cap: checked below
                other => panic!("answer {other:?}: not the old header with the old limit, nor the new with the new ({s:?})"),
            }
            if s.start > first_new {
                assert!(
                    matches!(&s.answer, Some((200, g)) if g == "b"),
                    "sent after a request saw the new header, yet answered {:?}",
                    s.answer
                );
            }
        }
        assert_eq!(old_pass, 1, "the old limit let exactly one request through");
        assert!(
            seen.iter().filter(|s| s.answer.is_none()).count() > 1,
            "no probe met the old cap during the reload"
        );
        assert!(
            seen.iter().filter(|s| s.start > first_new).count() > 1,
            "too few probes after the reload to mean anything"
        );

        // A bad reload: the old header, limit and cap again, but a broken certificate. Refused
        // as a whole: the new header, limit and cap stay.
        std::fs::write(edge.path("edge2.pem"), "garbage").unwrap();
        std::fs::write(
            &edge.config_path,
            defence_config(&b, upstream, "c", &defences(1, 4))
                .replace("cert = \"edge.pem\"", "cert = \"edge2.pem\""),
        )
        .unwrap();
        edge.signal("HUP");
        edge.wait_stderr_within("config reload refused", 1, RELOAD_WAIT);
        for source in [LOOPBACK, LOOPBACK, LOOPBACK, other] {
            let s = probe(&clock, source, edge.port("https"), &pki.ca_pem).await;
            assert_eq!(
                s.answer,
                Some((200, "b".into())),
                "after the refused reload, from {source}"
            );
        }
        let m = admin(edge.admin(), "/metrics").await.body;
        assert!(
            m.contains("rampart_config_reloads_total{result=\"ok\",what=\"config\"} 1")
                && m.contains("rampart_config_reloads_total{result=\"error\",what=\"config\"} 1"),
            "{m}"
        );
        drop(holders);
    })
    .await
    .expect("test deadline");
}
