//! Bad handshakes against the inbound port and the connection caps (rampart-protect) in front
//! of it: a 100 KB ClientHello-shaped flood and a client stalling mid-handshake are each cut
//! with a reason in the log and the metrics, the process keeps running, and a connection
//! established before them keeps working. The per-address cap evicts a stalled handshake for a
//! new caller, then refuses; the total cap refuses; each refusal is logged and counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

const FRONTEND: &str = "spiffe://mesh.local/ns/shop/sa/frontend";
const PAYMENTS: &str = "spiffe://mesh.local/ns/shop/sa/payments";

async fn start(dir: &std::path::Path, ca: &TestCa, limits: &str) -> Sidecar {
    let echo = echo_app().await;
    let config = write_files_sidecar(
        dir,
        ca,
        ("payments", PAYMENTS),
        &allow_policy(7000, &[FRONTEND]),
        "",
        &format!("{}[inbound.limits]\n{limits}\n", tcp_port(7000, echo)),
    );
    Sidecar::start(&config)
}

/// A TCP connection from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from((from, 0))).unwrap();
    s.connect(to).await.unwrap()
}

/// The start of a TLS record carrying a ClientHello, then filler up to `len` bytes.
fn client_hello_ish(len: usize) -> Vec<u8> {
    let mut b = vec![
        0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x86, 0xa0, 0x03, 0x03,
    ];
    b.extend((0..len.saturating_sub(b.len())).map(|i| (i * 131 % 251) as u8));
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_stalled_handshakes_are_cut_and_open_connections_keep_working() {
    timeout(Duration::from_secs(90), async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("mesh");
        let mut sc = start(dir.path(), &ca, "handshake_timeout_ms = 800").await;
        let port = sc.addr("inbound:7000");
        let frontend = client_config(&ca, Some(&ca.leaf(&[FRONTEND])));
        let mut open = tls_connect(port, frontend.clone()).await.unwrap();
        echo_roundtrip(&mut open, b"before").await.unwrap();

        // 100 KB shaped like a ClientHello: refused at once, not after the deadline.
        let mut flood = TcpStream::connect(port).await.unwrap();
        let _ = flood.write_all(&client_hello_ish(100 * 1024)).await; // may break mid-way
        let took = closed_within(&mut flood, Duration::from_secs(5)).await.unwrap();
        assert!(took < Duration::from_millis(800), "the flood must be cut before the deadline: {took:?}");
        let line = sc.wait_for(|v| v["event.name"] == "rampart.sidecar.handshake_failure", "flood refusal");
        let kind = line["rampart.reason.kind"].as_str().unwrap().to_string();
        assert!(kind != "timeout" && !kind.is_empty(), "{line}");
        assert!(!line["rampart.reason"].as_str().unwrap().is_empty(), "{line}");

        // Half a ClientHello, then silence: cut at the handshake deadline, with that reason.
        let mut stall = TcpStream::connect(port).await.unwrap();
        stall.write_all(&client_hello_ish(40)).await.unwrap();
        let took = closed_within(&mut stall, Duration::from_secs(10)).await.unwrap();
        assert!(took >= Duration::from_millis(700), "cut too early: {took:?}");
        let line = sc.wait_for(|v| v["rampart.reason.kind"] == "timeout", "stalled handshake cut");
        assert!(line["rampart.reason"].as_str().unwrap().contains("800ms"), "{line}");

        // Nothing crashed; the connection opened before still works; a new one too.
        assert!(sc.child.try_wait().unwrap().is_none(), "the sidecar must keep running");
        echo_roundtrip(&mut open, b"after").await.unwrap();
        let mut again = tls_connect(port, frontend).await.unwrap();
        echo_roundtrip(&mut again, b"new").await.unwrap();
        let metrics = admin_get(sc.addr("admin"), "/metrics").await;
        assert!(
            metrics.contains(&format!("rampart_sidecar_handshake_failures_total{{direction=\"inbound\",reason=\"{kind}\"}} 1")),
            "{metrics}"
        );
        assert!(
            metrics.contains("rampart_sidecar_handshake_failures_total{direction=\"inbound\",reason=\"timeout\"} 1"),
            "{metrics}"
        );
    })
    .await
    .expect("test deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_evict_a_stalled_handshake_then_refuse_with_reasons() {
    timeout(Duration::from_secs(90), async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("mesh");
        let mut sc = start(dir.path(), &ca, "max_per_ip = 2\nmax_connections = 3\nhandshake_timeout_ms = 30000").await;
        let (port, admin) = (sc.addr("inbound:7000"), sc.addr("admin"));
        let frontend = client_config(&ca, Some(&ca.leaf(&[FRONTEND])));
        let tls_from = |from: [u8; 4]| {
            let cfg = frontend.clone();
            async move {
                let tcp = connect_from(from, port).await;
                tokio_rustls::TlsConnector::from(cfg)
                    .connect(rustls_pki_types::ServerName::try_from("payments").unwrap(), tcp)
                    .await
            }
        };

        // 127.0.0.1 holds one established connection and one stalled in its handshake.
        let mut a = tls_from([127, 0, 0, 1]).await.unwrap();
        echo_roundtrip(&mut a, b"a").await.unwrap();
        let mut stalled = connect_from([127, 0, 0, 1], port).await;
        wait_metric(admin, "rampart_sidecar_inbound_connections_open 2").await;

        // At its cap of 2, a new caller from the address takes the stalled one's place…
        let mut c = tls_from([127, 0, 0, 1]).await.unwrap();
        echo_roundtrip(&mut c, b"c").await.unwrap();
        closed_within(&mut stalled, Duration::from_secs(5)).await.expect("the stalled handshake is evicted");
        let line = sc.wait_for(|v| v["rampart.reason.kind"] == "conn_evicted_stalled" && v["event.name"] == "rampart.sidecar.connection_refused", "eviction line");
        assert!(line["rampart.reason"].as_str().unwrap().contains("stalled in its handshake"), "{line}");

        // …and with both established, the next one is refused before its handshake.
        assert!(tls_from([127, 0, 0, 1]).await.is_err(), "a third connection from the address must be refused");
        let line = sc.wait_for(|v| v["rampart.reason.kind"] == "conn_cap_per_ip", "per-address refusal");
        assert_eq!(line["client.address"], "127.0.0.1", "{line}");
        assert!(line["rampart.reason"].as_str().unwrap().contains("max_per_ip"), "{line}");

        // The total cap (3): one more address fits, the next is refused.
        let mut e = tls_from([127, 0, 0, 2]).await.unwrap();
        echo_roundtrip(&mut e, b"e").await.unwrap();
        assert!(tls_from([127, 0, 0, 3]).await.is_err(), "over the total cap");
        let line = sc.wait_for(|v| v["rampart.reason.kind"] == "conn_cap_global", "total-cap refusal");
        assert!(line["rampart.reason"].as_str().unwrap().contains("max_connections"), "{line}");

        let metrics = wait_metric(admin, "rampart_sidecar_connections_refused_total{reason=\"conn_cap_global\"} 1").await;
        assert_contains_all(
            &metrics,
            &[
                "rampart_sidecar_connections_refused_total{reason=\"conn_cap_per_ip\"} 1",
                "rampart_sidecar_connections_refused_total{reason=\"conn_evicted_stalled\"} 1",
                "rampart_sidecar_handshake_failures_total{direction=\"inbound\",reason=\"evicted_stalled\"} 1",
                "rampart_sidecar_inbound_connections_open 3",
            ],
        );
        // The admitted ones were never disturbed.
        for (s, m) in [(&mut a, b"a2"), (&mut c, b"c2"), (&mut e, b"e2")] {
            echo_roundtrip(s, m).await.unwrap();
        }
        drop((a, c, e));
        wait_metric(admin, "rampart_sidecar_inbound_connections_open 0").await;
    })
    .await
    .expect("test deadline");
}
