//! The handshake load client against a real rustls server on loopback: full handshakes are
//! full, resumed ones are resumed and counted as the server counts them, a server that does
//! not resume fails the resumed run, keep-alive counts requests on one handshake per loop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart_loadtest::handshake::{run, Mode, Options, Report};
use rampart_tls::test_ca::{dns, TestCa};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{HandshakeKind, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Counts {
    full: AtomicU64,
    resumed: AtomicU64,
    requests: AtomicU64,
}

struct Pki {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// The workspace's test CA (`rampart_tls::test_ca`): a P-256 root and a `localhost` leaf.
fn pki() -> Pki {
    let ca = TestCa::new();
    let (chain, key) = ca.leaf(vec![dns("localhost")], time::Duration::hours(1));
    Pki {
        ca: ca.root(),
        chain,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// The test servers' rustls config: TLS 1.3 and 1.2, the `localhost` leaf.
fn server_config(pki: &Pki) -> ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .unwrap()
}

/// A server answering each request with a tiny 200 (closing after it unless keep-alive),
/// counting full and resumed handshakes as rustls reports them on its side.
async fn server(pki: &Pki, resumes: bool) -> (SocketAddr, Arc<Counts>) {
    let mut cfg = server_config(pki);
    if resumes {
        cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    } else {
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
    }
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, c) = (acceptor.clone(), c.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                match tls.get_ref().1.handshake_kind() {
                    Some(HandshakeKind::Resumed) => c.resumed.fetch_add(1, Ordering::Relaxed),
                    _ => c.full.fetch_add(1, Ordering::Relaxed),
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    buf.drain(..end + 4);
                    c.requests.fetch_add(1, Ordering::Relaxed);
                    let close = head.contains("connection: close");
                    let answer: &[u8] = if close {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    } else {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    };
                    if tls.write_all(answer).await.is_err() {
                        return;
                    }
                    if close {
                        let _ = tls.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (addr, counts)
}

fn options(addr: SocketAddr, pki: &Pki, mode: Mode, tls12: bool, count: u64) -> Options {
    Options {
        addr,
        server_name: ServerName::try_from("localhost").unwrap(),
        host: "localhost".into(),
        path: "/".into(),
        roots: vec![pki.ca.clone()],
        mode,
        tls12,
        suites: Vec::new(),
        conns: 8,
        clients: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(30),
        max_count: Some(count),
        server_pids: vec![std::process::id()],
        step: rampart_loadtest::handshake::STEP,
    }
}

async fn go(opts: Options) -> Report {
    tokio::time::timeout(DEADLINE, run(opts))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_handshakes_are_full_and_counted_as_the_server_counts_them() {
    let pki = pki();
    // The server would resume: the client must not ask.
    let (addr, counts) = server(&pki, true).await;
    let r = go(options(addr, &pki, Mode::Full, false, 120)).await;
    r.check(0.99).unwrap();
    assert!(r.done >= 120, "{}", r.line());
    assert_eq!(r.resumed, 0, "{}", r.line());
    assert_eq!(counts.resumed.load(Ordering::Relaxed), 0);
    assert_eq!(
        r.all_full + r.all_resumed,
        counts.full.load(Ordering::Relaxed),
        "{}",
        r.line()
    );
    assert_eq!(counts.requests.load(Ordering::Relaxed), r.all_full);
    assert_eq!(r.all_done, r.all_full);
    // What was negotiated and what the server signed with are reported.
    assert!(
        r.negotiated.keys().all(|k| k.starts_with("TLSv1_3 TLS13_")),
        "{:?}",
        r.negotiated
    );
    assert_eq!(
        r.server_signatures.keys().collect::<Vec<_>>(),
        vec!["ECDSA_NISTP256_SHA256"]
    );
    assert!(r.server_cpu.is_some() && r.handshake_p99_us >= r.handshake_p50_us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offered_suite_is_the_one_negotiated() {
    let pki = pki();
    let (addr, _) = server(&pki, true).await;
    for suite in ["TLS13_AES_128_GCM_SHA256", "TLS13_CHACHA20_POLY1305_SHA256"] {
        let mut opts = options(addr, &pki, Mode::Full, false, 20);
        opts.suites = vec![suite.to_string()];
        let r = go(opts).await;
        r.check(0.99).unwrap();
        assert!(
            r.negotiated.keys().all(|k| k.contains(suite)),
            "{:?}",
            r.negotiated
        );
    }
    let mut opts = options(addr, &pki, Mode::Full, false, 20);
    opts.suites = vec!["TLS13_NOPE".into()];
    let err = run(opts).await.unwrap_err();
    assert!(err.contains("unknown cipher suite"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_handshakes_are_counted_as_the_server_counts_them() {
    let pki = pki();
    for tls12 in [false, true] {
        let (addr, counts) = server(&pki, true).await;
        let r = go(options(addr, &pki, Mode::Resumed, tls12, 200)).await;
        assert!(r.done >= 200, "{}", r.line());
        // The server's own counts over the whole run equal the client's.
        assert_eq!(
            (r.all_full, r.all_resumed),
            (
                counts.full.load(Ordering::Relaxed),
                counts.resumed.load(Ordering::Relaxed)
            ),
            "tls12 {tls12}: {}",
            r.line()
        );
        assert!(r.resumed > 0 && r.resumed <= r.full + r.resumed);
        r.check(0.99)
            .unwrap_or_else(|e| panic!("tls12 {tls12}: {e}: {}", r.line()));
        let version = if tls12 { "TLSv1_2" } else { "TLSv1_3" };
        assert!(
            r.negotiated.keys().all(|k| k.starts_with(version)),
            "{:?}",
            r.negotiated
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_resume_fails_the_resumed_run() {
    let pki = pki();
    let (addr, counts) = server(&pki, false).await;
    let r = go(options(addr, &pki, Mode::Resumed, false, 50)).await;
    assert_eq!(r.resumed, 0, "{}", r.line());
    assert_eq!(counts.resumed.load(Ordering::Relaxed), 0);
    let err = r.check(0.99).unwrap_err();
    assert!(err.contains("resumed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_counts_requests_on_one_handshake_per_loop() {
    let pki = pki();
    let (addr, counts) = server(&pki, true).await;
    let r = go(options(addr, &pki, Mode::Keepalive, false, 500)).await;
    r.check(0.99).unwrap();
    assert!(r.done >= 500, "{}", r.line());
    // One warm-up connection, then one per loop.
    assert_eq!(counts.full.load(Ordering::Relaxed), 1 + 8);
    assert!(counts.requests.load(Ordering::Relaxed) >= r.done);
    // Every request counted once: the keep-alive ones and the first connection's.
    assert_eq!(counts.requests.load(Ordering::Relaxed), r.all_done + 1);
}

/// A server whose answer announces a chunk of 2^64 - 20 bytes (review-s15-es F1): the size
/// once wrapped the chunk arithmetic to where it started (debug: overflow panic; release: a
/// loop without an await, for ever). It is an error of that connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_chunk_size_is_an_error_not_a_panic_or_a_spin() {
    let pki = pki();
    let acceptor = TlsAcceptor::from(Arc::new(server_config(&pki)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut chunk = [0u8; 1024];
                let _ = tls.read(&mut chunk).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffec\r\n")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let opts = options(addr, &pki, Mode::Full, false, 5);
    let joined = tokio::time::timeout(Duration::from_secs(20), tokio::spawn(run(opts))).await;
    match joined {
        Err(_) => panic!("the client spun or hung past 20 s"),
        Ok(Err(e)) => panic!("the client panicked: {e}"),
        Ok(Ok(r)) => assert!(r.is_err(), "{:?}", r.map(|r| r.line())),
    }
}

/// Inputs are bounded (review-s15-es F6): loops and clients capped, a resumed floor outside
/// [0, 1] (NaN included) refused instead of passing every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_inputs_are_refused() {
    let pki = pki();
    let (addr, _) = server(&pki, true).await;
    let mut opts = options(addr, &pki, Mode::Full, false, 5);
    opts.conns = rampart_loadtest::handshake::MAX_CONNS + 1;
    assert!(run(opts).await.unwrap_err().contains("conns"));
    let mut opts = options(addr, &pki, Mode::Resumed, false, 5);
    opts.clients = rampart_loadtest::handshake::MAX_CLIENTS + 1;
    assert!(run(opts).await.unwrap_err().contains("clients"));
    let r = go(options(addr, &pki, Mode::Resumed, false, 20)).await;
    r.check(0.99).unwrap();
    for bad in [f64::NAN, -0.1, 1.5] {
        assert!(r.check(bad).is_err(), "{bad}");
    }
}
