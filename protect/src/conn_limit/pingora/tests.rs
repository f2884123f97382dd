//! The filter + wrapper on real loopback sockets behind Pingora's own listening
//! `Service`: `should_accept` after `accept()`, then the app, which loops
//! `process_new` while it returns the stream for keep-alive.

use super::*;
use crate::conn_limit::{ConnLimitConfig, ConnLimiter};
use crate::denial::{Denial, DenialReason};
use pingora_core::services::listening::Service;
use pingora_core::services::Service as _;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Stands in for the HTTP app: one "request" per read, keep-alive until EOF.
struct KeepAliveApp;

#[async_trait]
impl ServerApp for KeepAliveApp {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        _: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut buf = [0u8; 64];
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => {
                // Served: established, so the per-IP cap will not evict it
                // (the slot is reachable on the connection's first request).
                if let Some(slot) = crate::conn_limit::slot::current() {
                    slot.established();
                }
                stream.write_all(b"ok").await.ok()?;
                stream.flush().await.ok()?;
                Some(stream)
            }
            _ => None,
        }
    }
}

struct Harness {
    addr: SocketAddr,
    filter: Arc<ConnCapFilter>,
    denials: Arc<Mutex<Vec<Denial>>>,
}

async fn harness(config: &ConnLimitConfig) -> Harness {
    let limiter = Arc::new(ConnLimiter::new(config).unwrap());
    let denials = Arc::new(Mutex::new(Vec::new()));
    let seen = denials.clone();
    let filter = Arc::new(ConnCapFilter::new(
        limiter,
        Duration::from_millis(50),
        Arc::new(move |d| seen.lock().unwrap().push(d)),
    ));
    // Pingora's own listener stack: the filter is called with the peer address after
    // `accept()`, then the app (looping `process_new` for keep-alive).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut service = Service::new(
        "protect-test".into(),
        ConnTracked::new(KeepAliveApp, filter.clone()),
    );
    service.add_tcp(&addr.to_string());
    service.set_connection_filter(filter.clone());
    let (tx, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _keep = tx;
        service.start_service(None, shutdown, 1).await
    });
    // Readiness: the listener is up once a connection is served (and closed again).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut c) = TcpStream::connect(addr).await {
            if round_trip(&mut c).await {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pingora listener never came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for("the readiness probe's slot to come back", || {
        filter.limiter().active() == 0 && filter.pending_count() == 0
    })
    .await;
    Harness {
        addr,
        filter,
        denials,
    }
}

/// One round trip; false if the server closed the connection.
async fn round_trip(c: &mut TcpStream) -> bool {
    if c.write_all(b"hi").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 2];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut buf)).await,
        Ok(Ok(_))
    )
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

fn config(max_per_ip: u32) -> ConnLimitConfig {
    ConnLimitConfig {
        max_per_ip,
        new_per_ip: crate::ratelimit::Rate::per_second(1000, 1000),
        ..ConnLimitConfig::default()
    }
}

#[tokio::test]
async fn per_ip_cap_holds_across_keepalive_and_frees_on_close() {
    let h = harness(&config(2)).await;
    let ip = h.addr.ip();
    let mut a = TcpStream::connect(h.addr).await.unwrap();
    let mut b = TcpStream::connect(h.addr).await.unwrap();
    // Several requests per connection: the slot is kept between them.
    for _ in 0..3 {
        assert!(round_trip(&mut a).await);
        assert!(round_trip(&mut b).await);
    }
    assert_eq!(h.filter.limiter().active_for(ip), 2);

    let mut c = TcpStream::connect(h.addr).await.unwrap();
    assert!(!round_trip(&mut c).await, "third connection was served");
    {
        let denials = h.denials.lock().unwrap();
        assert_eq!(denials.len(), 1);
        assert_eq!(denials[0].reason, DenialReason::ConnCapPerIp);
        assert!(denials[0].event_line().contains("conn_cap_per_ip"));
    }

    drop(a);
    let filter = h.filter.clone();
    wait_for("slot release after close", || {
        filter.limiter().active_for(ip) == 1
    })
    .await;
    let mut d = TcpStream::connect(h.addr).await.unwrap();
    assert!(round_trip(&mut d).await, "freed slot not reusable");
    assert!(round_trip(&mut b).await);
    drop((b, d));
    wait_for("all slots released", || filter.limiter().active() == 0).await;
    assert_eq!(h.filter.pending_count(), 0);
}

#[tokio::test]
async fn slots_of_unfinished_handshakes_are_reclaimed() {
    let h = harness(&config(1)).await;
    // Admitted by the filter but never handed to the app (as when a TLS
    // handshake fails or times out in Pingora).
    let peer: SocketAddr = "192.0.2.1:5555".parse().unwrap();
    assert!(h.filter.should_accept(Some(&peer)).await);
    // Not yet at the HTTP layer, so stalled: evicted for the next one, and
    // the cap of 1 is never exceeded.
    assert!(
        h.filter
            .should_accept(Some(&"192.0.2.1:5556".parse().unwrap()))
            .await
    );
    assert_eq!(h.filter.limiter().active_for(peer.ip()), 1);
    assert_eq!(
        h.denials.lock().unwrap()[0].reason,
        DenialReason::ConnEvictedStalled
    );
    let filter = h.filter.clone();
    wait_for("sweep to reclaim the pending slots", || {
        filter.sweep();
        filter.pending_count() == 0
    })
    .await;
    assert_eq!(h.filter.limiter().active(), 0);
    assert!(h.filter.should_accept(Some(&peer)).await);
    // Unix-socket peers (no address) are not capped.
    assert!(h.filter.should_accept(None).await);
}
